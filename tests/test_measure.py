"""smolkit.measure (time, peak memory, measured runs) and smolkit.hardware's memory estimate and per-target settings."""

import sys
from types import SimpleNamespace

import numpy as np
import pytest
from trl import DPOConfig, SFTConfig

from smolkit.hardware import (
    ARCHITECTURES,
    TARGETS,
    architecture_parameters,
    bf16_training,
    config_code,
    estimate_memory,
    matmul_gflops,
    mixed_precision,
    setup_for,
)
from smolkit.measure import peak_memory_mib, track, training_run


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the CPU peak window resets on Linux only")
def test_track_sees_a_block_allocate_memory(monkeypatch):
    import smolkit.measure as measure

    clock = iter([100.0, 102.5, 200.0, 200.25])  # perf_counter at the start and end of each block
    monkeypatch.setattr(measure, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    with track("cpu") as busy:
        block = np.ones(300 * 2**20 // 8)  # 300 MiB, touched, freed before the block ends
        block.sum()
        del block
    with track("cpu") as quiet:
        pass
    assert busy["seconds"] == 2.5 and quiet["seconds"] == 0.25
    # the peak kept the freed block (a peak, not the current size), and the next window forgot it (reset)
    assert busy["peak_mib"] - quiet["peak_mib"] > 250
    assert peak_memory_mib("cpu") > 0


def test_parameter_counts_match_the_published_sizes():
    assert 134e6 < architecture_parameters("SmolLM2-135M") < 135e6
    assert 1.70e9 < architecture_parameters("SmolLM2-1.7B") < 1.72e9


def test_memory_estimate_adds_up_and_responds_to_each_setting():
    shape = ARCHITECTURES["SmolLM2-135M"]
    p = 134_515_008
    full = estimate_memory(p, p, 512, **shape)
    assert full["weights"] == pytest.approx(p * 4 / 2**20)
    assert full["optimizer"] == pytest.approx(2 * full["gradients"])
    assert full["total"] == pytest.approx(sum(v for k, v in full.items() if k != "total"))
    assert estimate_memory(p, p, 512, checkpointing=True, **shape)["activations"] < full["activations"] / 5
    assert estimate_memory(p, p, 1024, **shape)["activations"] == pytest.approx(2 * full["activations"])
    lora = estimate_memory(p, p // 100, 512, **shape)
    assert lora["gradients"] + lora["optimizer"] < 0.02 * (full["gradients"] + full["optimizer"])
    assert estimate_memory(p, p, 512, reference_copy=True, **shape)["reference"] == full["weights"]


def test_settings_per_target_follow_the_memory_estimate():
    small, big = architecture_parameters("SmolLM2-135M"), architecture_parameters("SmolLM2-1.7B")
    t4 = setup_for("T4 16 GB", big, ARCHITECTURES["SmolLM2-1.7B"], TARGETS["T4 16 GB"]["memory_gib"])
    assert t4["lora"] and t4["reference"] == "adapter" and t4["sft"]["fp16"] and not t4["sft"]["bf16"]
    a100 = setup_for("A100/H100 80 GB", big, ARCHITECTURES["SmolLM2-1.7B"], 80)
    assert not a100["lora"] and a100["sft"]["bf16"] and a100["estimate_full_mib"] < a100["budget_mib"]
    cpu = setup_for("this CPU", small, ARCHITECTURES["SmolLM2-135M"], 24, cpu_bf16=False)
    assert cpu["precision"] == "fp32" and not cpu["lora"] and cpu["sft"]["use_cpu"]
    for stage, config_class in (("sft", SFTConfig), ("dpo", DPOConfig)):  # the code shown builds these settings
        built = eval(config_code(stage, cpu[stage]), {config_class.__name__: config_class})
        assert type(built) is config_class and built.output_dir == f"outputs/checkpoints/{stage}"
        assert {key: getattr(built, key) for key in cpu[stage]} == cpu[stage]


def test_bf16_follows_the_measurement_on_cpus(monkeypatch):
    import torch

    import smolkit.hardware as hardware

    assert matmul_gflops(size=64, seconds=0.01, max_runs=3) > 0
    # the speed-up is bf16's measured GFLOP/s over fp32's (the cached function called afresh, on fake speeds)
    speeds = {torch.float32: 300.0, torch.bfloat16: 900.0}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(hardware, "matmul_gflops", lambda dtype, device, **_: speeds[dtype])
        assert hardware.bf16_speedup.__wrapped__("cpu") == 3.0

    probed: list[str] = []

    def measured(speedup: float, fast_instructions: bool = True) -> None:
        """Fake this CPU: whether it has bf16 instructions, and the speed-up its probe would measure."""
        def probe(device: str = "cpu") -> float:
            probed.append(device)
            return speedup

        monkeypatch.setattr(hardware, "cpu_has_fast_bf16", lambda: fast_instructions)
        monkeypatch.setattr(hardware, "bf16_speedup", probe)

    measured(2.0)
    assert bf16_training("cpu") is True and mixed_precision("cpu") == {"bf16": True, "fp16": False}
    measured(1.5)
    assert bf16_training("cpu") is True  # "at least 1.5x faster"
    measured(1.2)
    assert bf16_training("cpu") is False and mixed_precision("cpu") == {"bf16": False, "fp16": False}
    assert probed == ["cpu"] * 5  # each decision above asked the probe
    measured(3.0, fast_instructions=False)  # bf16 emulated: no probe (it would take minutes), no bf16
    assert bf16_training("cpu") is False and mixed_precision("cpu")["bf16"] is False
    measured(3.0)
    assert bf16_training("mps") is False and mixed_precision("mps") == {"bf16": False, "fp16": False}
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert bf16_training("cuda") is False  # CUDA: what the GPU supports, even where a CPU probe says 3x
    assert probed == ["cpu"] * 5  # neither an emulating CPU, nor MPS, nor CUDA was probed


def test_a_measured_run_reports_its_numbers_and_a_bad_setting_names_itself():
    from transformers import AutoTokenizer

    from smolkit.data import load_sft
    from smolkit.lengths import sequence_lengths
    from smolkit.models import embedded_checkpoint
    from smolkit.templates import use_template

    r = training_run("sft", {"per_device_train_batch_size": 2, "bf16": False, "activation_checkpointing": False},
                     steps=2)
    # its numbers are those of this run's rows and clock: 2 steps of 2 conversations, the second step's time
    # (the first pays for warm-up), and the tokens through the template the trainer uses
    tok = use_template(AutoTokenizer.from_pretrained(embedded_checkpoint()))
    lengths = [sequence_lengths(row, tok)[0] for row in load_sft(split="train").select(range(4))]
    assert r["steps"] == 2 and len(r["step_times"]) == 2 and r["step_seconds"] == r["step_times"][1]
    assert r["tokens"] == sum(lengths) and r["batch_tokens"] == sum(lengths) / 2
    assert r["tokens_per_second"] == pytest.approx(sum(lengths) / 2 / r["step_times"][1])
    padded = 2 * max(lengths[:2]) + 2 * max(lengths[2:])  # each micro-batch padded to its longest conversation
    assert r["processed_tokens_per_micro_batch"] == padded / 2
    assert r["trainable"] == r["parameters"] > 1e8  # full fine-tuning of the 135M model
    assert r["peak_mib"] > r["baseline_mib"] > 0
    with pytest.raises(RuntimeError, match="per_device_train_batch_siz"):
        training_run("sft", {"per_device_train_batch_siz": 2}, steps=1)


def _killed_child(spec, queue):
    """A child that dies the way the out-of-memory killer ends a process: SIGKILL, no result."""
    import os
    import signal

    os.kill(os.getpid(), signal.SIGKILL)


def _failing_child(spec, queue):
    """A child that raises inside its job, reporting as training_run's child does."""
    import traceback

    try:
        raise ValueError("bad setting deep inside")
    except ValueError as err:
        queue.put({"error": f"ValueError: {err}", "traceback": traceback.format_exc()})


def test_a_dead_child_is_reported_at_once_with_its_exit_code_and_setting():
    from smolkit.measure import in_fresh_process

    with pytest.raises(RuntimeError, match=r"stage='sft'.*signal 9 \(SIGKILL") as err:
        in_fresh_process(_killed_child, {"stage": "sft", "settings": {"bf16": True}}, timeout=3600)
    assert "settings={'bf16': True}" in str(err.value)  # which setting was running
    assert "queue" not in str(err.value).lower()  # not a bare queue.Empty after the timeout


def test_a_child_error_keeps_the_child_traceback(monkeypatch):
    import smolkit.measure as measure

    monkeypatch.setattr(measure, "_training_child", _failing_child)
    with pytest.raises(RuntimeError, match="bad setting deep inside") as err:
        measure.training_run("sft", {"bf16": False}, steps=1)
    assert "Traceback (most recent call last)" in str(err.value) and "_failing_child" in str(err.value)
