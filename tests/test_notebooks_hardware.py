"""Notebook 04's measurements, read after nbval executed it (see conftest.py)."""

import json

import pytest

from smolkit.paths import outputs_dir

pytestmark = pytest.mark.notebook_outputs


@pytest.fixture(scope="module")
def hw():
    path = outputs_dir() / "metrics" / "04_hardware.json"
    if not path.exists():
        pytest.fail(f"{path} is missing: notebooks/04_hardware.ipynb did not run to its end in this session")
    return json.loads(path.read_text())


def test_every_setting_was_measured_on_this_machine(hw):
    names = {(r["stage"], r["setting"]) for r in hw["runs"]}
    assert len(names) == 11 and {s for s, _ in names} == {"sft", "dpo"}
    assert {("sft", "padding-free + speed_up"), ("dpo", "frozen copy + speed_up")} <= names
    for r in hw["runs"]:
        assert r["step_seconds"] > 0 and r["tokens_per_second"] > 0 and r["peak_mib"] > r["baseline_mib"] > 0
    lora = [r for r in hw["runs"] if "LoRA" in r["setting"]]
    assert lora and all(r["trainable"] < 0.1 * r["parameters"] for r in lora)
    assert hw["matmul_gflops"]["fp32"] > 0
    bf16 = hw["matmul_gflops"]["bf16"]  # probed only where the CPU has bf16 instructions (or on a GPU)
    if bf16 is None:
        assert hw["bf16_speedup"] is None and hw["bf16_probe"].startswith("not probed") and not hw["bf16_training"]
    else:
        assert bf16 > 0 and hw["bf16_speedup"] > 0 and hw["bf16_probe"].startswith("measured")


def test_memory_estimate_is_within_30_percent_for_full_fine_tuning(hw):
    assert abs(hw["full_ft_estimate_error"]) < 0.30
    checked = {e["setting"]: e for e in hw["memory_estimate"]}
    assert checked["fp32, batch 8 (baseline)"]["measured MiB"] > 0


def test_settings_are_given_for_each_target_and_size(hw):
    assert len(hw["setups"]) == 8
    by = {(s["model"], s["target"]): s for s in hw["setups"]}
    assert by[("SmolLM2-1.7B", "T4 16 GB")]["lora"] is True
    assert by[("SmolLM2-135M", "this CPU")]["sft"]["bf16"] == hw["bf16_training"]
