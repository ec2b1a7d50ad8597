"""The GPU check: stops at once without CUDA, and fails on half-precision weights or a loss that did not fall."""

import subprocess
from pathlib import Path

import pytest
import torch
from scripts import load_script

REPO = Path(__file__).resolve().parent.parent


def load_tool():
    return load_script("gpu_check")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device: the check would run")
def test_without_cuda_it_stops_at_once_and_says_why():
    proc = subprocess.run(["make", "-s", "gpu-check"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "no CUDA device is present" in proc.stderr


def _metrics(first=2.5, last=1.9, **changes):
    log = [{"loss": first, "num_tokens": 45_000, "step": 10}, {"loss": last, "num_tokens": 90_000, "step": 20},
           {"train_runtime": 30.0, "step": 20}]
    m = {"device_name": "NVIDIA T4", "weights_dtype": "torch.float32", "bf16": False, "fp16": True,
         "log_history": log, "train_seconds": 30.0, "steps": 20, "peak_mib": 3000.0, "parameters": 134_515_008,
         "before": {"format_compliance": 0.1, "logp_accuracy": 0.5},
         "after": {"format_compliance": 0.9, "logp_accuracy": 0.6}}
    return {**m, **changes}


def test_the_table_passes_a_correct_run_and_fails_half_weights_or_a_flat_loss():
    tool = load_tool()
    seconds = {"01_sft": 60.0, "02_dpo": 80.0}
    table, problems = tool.rows({"01_sft": _metrics(), "02_dpo": _metrics(first=0.693, last=0.61)}, seconds)
    assert problems == [] and dict((w, a) for w, a, _ in table)["trained weights"] == "torch.float32"
    _, problems = tool.rows({"01_sft": _metrics(weights_dtype="torch.bfloat16"),
                             "02_dpo": _metrics(last=2.5)}, seconds)
    assert any("bfloat16" in p for p in problems) and any("did not fall" in p for p in problems)
