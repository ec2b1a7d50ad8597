"""The GPU and Apple paths, simulated on this CPU: fp32 weights to train, precision from the config.

Each device is simulated in its own process (accelerate and transformers keep device state per process) by
patching torch's device queries; the model is built there, trained weights inspected, and the SFTConfig and
DPOConfig built with the same fields the notebooks pass.
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

SIMULATE = textwrap.dedent('''
    import json, sys
    from unittest import mock
    import torch

    kind = sys.argv[1]
    cuda, bf16 = kind in ("a100", "t4"), kind == "a100"
    patches = [mock.patch.object(torch.cuda, "is_available", return_value=cuda),
               mock.patch.object(torch.cuda, "is_bf16_supported", return_value=bf16),
               mock.patch.object(torch.cuda, "device_count", return_value=int(cuda)),
               mock.patch.object(torch.cuda, "set_device"),
               mock.patch.object(torch.cuda, "current_device", return_value=0),
               mock.patch.object(torch.backends.mps, "is_available", return_value=kind == "mps"),
               # no real device: moving a module there keeps it where it is, with its dtype
               mock.patch.object(torch.nn.Module, "to", lambda self, *a, **k: self)]
    for p in patches:
        p.start()

    from trl import DPOConfig, SFTConfig
    from smolkit.hardware import pick_device, pick_dtype
    from smolkit.models import load_model, tiny_model
    from smolkit.speed import speed_up
    from smolkit.settings import recommended_settings

    folder = sys.argv[2]
    model, tokenizer = tiny_model()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    device = pick_device()
    model, _ = load_model(folder, device=device)  # as every notebook loads the model it trains
    out = {"device": device, "trainable_dtypes": sorted({str(p.dtype) for p in model.parameters() if p.requires_grad}),
           "inference_dtype": str(pick_dtype(device)), "speed_up": speed_up(model, device)}
    for stage, cls in (("sft", SFTConfig), ("dpo", DPOConfig)):
        fast = recommended_settings(stage, device)
        config = cls(output_dir=folder + "-" + stage, bf16=fast["bf16"], fp16=fast["fp16"],
                     use_cpu=device == "cpu", report_to="none")
        out[stage] = {"bf16": config.bf16, "fp16": config.fp16, "use_cpu": config.use_cpu}
    print("RESULT " + json.dumps(out))
''')

EXPECTED = {  # device, bf16, fp16 of both configs, and the dtype for inference only
    "a100": ("cuda", True, False, "torch.bfloat16"),
    "t4": ("cuda", False, True, "torch.float16"),
    "mps": ("mps", False, False, "torch.float32"),
}


@pytest.mark.parametrize("kind", list(EXPECTED))
def test_simulated_device_trains_fp32_weights_with_precision_from_the_config(kind, tmp_path):
    proc = subprocess.run([sys.executable, "-c", SIMULATE, kind, str(tmp_path / "model")], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))[7:])
    device, bf16, fp16, inference = EXPECTED[kind]
    assert got["device"] == device
    assert got["trainable_dtypes"] == ["torch.float32"], "half-precision weights would be trained"
    assert got["inference_dtype"] == inference
    for stage in ("sft", "dpo"):
        assert got[stage] == {"bf16": bf16, "fp16": fp16, "use_cpu": False}, stage
    assert got["speed_up"] == []  # the CPU-only speed-ups leave GPUs and MPS alone


def test_notebooks_pass_both_precision_flags_to_every_trl_config():
    for path in sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            text = "".join(cell["source"])
            for call in ("SFTConfig(", "DPOConfig("):
                if cell["cell_type"] == "code" and f"= {call}" in text and "bf16=" in text:
                    assert "fp16=" in text, f"{path.name}: a {call[:-1]} sets bf16 but not fp16 (a T4 needs fp16)"
