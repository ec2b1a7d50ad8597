"""The GPU check: run notebooks 01 and 02 on a CUDA device and print what a correct GPU path must show.

Runs 01 (SFT) and 02 (DPO) with papermill at the default profile (short on a GPU) on the embedded model, into
`outputs/gpu-check/`, then prints one table: the device, the dtype of the trained weights, the bf16/fp16 flags,
the loss first -> last, held-out metrics before -> after, tokens per second, and the peak GPU memory against
`smolkit.perf.estimate_memory`. Exits 1 when no CUDA device is present (at once), when a loss did not fall,
or when a trained weight was half precision. Run it with `make gpu-check` (or `bash tools/gpu_check.sh`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "outputs" / "gpu-check"
NOTEBOOKS = ("01_sft", "02_dpo")


def no_cuda_reason() -> str | None:
    """Why this machine cannot run the check, or None when torch sees a CUDA device."""
    import torch

    if not torch.cuda.is_available():
        return (f"no CUDA device is present (torch {torch.__version__}, torch.cuda.is_available() is False): "
                "run the GPU check on a machine with an NVIDIA GPU")
    return None


def run_notebooks() -> dict[str, float]:
    """Execute 01 and 02 with papermill into OUT; return each one's wall seconds."""
    env = {**os.environ, "SMOLKIT_OUTPUTS": str(OUT), "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
    seconds = {}
    for name in NOTEBOOKS:
        start = time.monotonic()
        subprocess.run([sys.executable, "-m", "papermill", "--cwd", "notebooks", "-k", "python3", "--log-level",
                        "WARNING", "-p", "PROFILE", "default", f"notebooks/{name}.ipynb",
                        str(OUT / "notebooks" / f"{name}.ipynb")], cwd=ROOT, env=env, check=True)
        seconds[name] = time.monotonic() - start
    return seconds


def estimate_mib(metrics: dict, stage: str) -> float:
    """estimate_memory for the run a notebook recorded: full fine-tuning, fp32 weights, its mean batch in tokens."""
    from smolkit.perf.hardware import ARCHITECTURES, estimate_memory

    params = metrics["run"]["parameters"]
    return estimate_memory(params, params, logged(metrics)["tokens"] // metrics["steps"],
                           reference_copy=stage == "dpo", **ARCHITECTURES["SmolLM2-135M"])["total"]


def logged(metrics: dict) -> dict[str, float]:
    """From the trainer's log a notebook saved: the first and last logged loss, and the tokens trained on."""
    losses = [row["loss"] for row in metrics["log_history"] if "loss" in row]
    tokens = [row["num_tokens"] for row in metrics["log_history"] if "num_tokens" in row]
    return {"first": losses[0], "last": losses[-1], "tokens": int(tokens[-1])}


def rows(metrics: dict[str, dict], seconds: dict[str, float]) -> tuple[list[tuple[str, str, str]], list[str]]:
    """The table's rows (what, SFT, DPO) and the problems that fail the check."""
    sft, dpo = metrics["01_sft"], metrics["02_dpo"]
    problems = []
    log = {name: logged(m) for name, m in metrics.items()}
    for name, m in metrics.items():
        if m["run"]["weights_dtype"] != "torch.float32":
            problems.append(f"{name}: trained weights were {m['run']['weights_dtype']}, not fp32")
        if not log[name]["last"] < log[name]["first"]:
            problems.append(f"{name}: loss did not fall ({log[name]['first']:.4f} -> {log[name]['last']:.4f})")
    table = [
        ("device", sft["run"]["device_name"], dpo["run"]["device_name"]),
        ("trained weights", sft["run"]["weights_dtype"], dpo["run"]["weights_dtype"]),
        ("bf16 / fp16", f"{sft['bf16']} / {sft['fp16']}", f"{dpo['bf16']} / {dpo['fp16']}"),
        ("loss first -> last", *(f"{log[n]['first']:.4f} -> {log[n]['last']:.4f}" for n in NOTEBOOKS)),
        ("held-out before -> after",
         f"format {sft['before']['format_compliance']:.2f} -> {sft['after']['format_compliance']:.2f}",
         f"refusals {dpo['before']['refusal_rate_on_unsafe']:.2f} -> {dpo['after']['refusal_rate_on_unsafe']:.2f}"),
        ("training tokens/s", *(f"{log[n]['tokens'] / metrics[n]['train_seconds']:.0f}" for n in NOTEBOOKS)),
        ("peak GPU MiB (estimate for the mean batch)", f"{sft['run']['peak_mib']:.0f} ({estimate_mib(sft, 'sft'):.0f})",
         f"{dpo['run']['peak_mib']:.0f} ({estimate_mib(dpo, 'dpo'):.0f})"),
        ("notebook seconds", f"{seconds['01_sft']:.0f}", f"{seconds['02_dpo']:.0f}"),
    ]
    return table, problems


def main() -> int:
    """Check for CUDA, run the notebooks, print the table; non-zero on any problem."""
    sys.path.insert(0, str(ROOT))
    reason = no_cuda_reason()
    if reason:
        print(f"gpu-check: {reason}", file=sys.stderr)
        return 1
    seconds = run_notebooks()
    metrics = {n: json.loads((OUT / "metrics" / f"{n}.json").read_text()) for n in NOTEBOOKS}
    table, problems = rows(metrics, seconds)
    print("| what | 01 SFT | 02 DPO |\n| --- | --- | --- |")
    for what, a, b in table:
        print(f"| {what} | {a} | {b} |")
    for problem in problems:
        print(f"gpu-check FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
