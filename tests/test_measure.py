"""smolkit.measure (time, peak memory, measured runs) and smolkit.hardware's memory estimate and per-target settings."""

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
    setup_for,
)
from smolkit.measure import peak_memory_mib, track, training_run


def test_track_sees_a_block_allocate_memory():
    with track("cpu") as quiet:
        pass
    with track("cpu") as busy:
        block = np.ones(300 * 2**20 // 8)  # 300 MiB, touched
        block.sum()
    del block
    assert busy["seconds"] >= 0 and quiet["seconds"] >= 0
    assert busy["peak_mib"] - quiet["peak_mib"] > 250  # the window was reset, and the block counted
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
    built = eval(config_code("sft", cpu["sft"]), {"SFTConfig": SFTConfig})
    assert isinstance(built, SFTConfig) and built.padding_free
    assert isinstance(eval(config_code("dpo", cpu["dpo"]), {"DPOConfig": DPOConfig}), DPOConfig)


def test_bf16_is_chosen_by_measurement_on_cpus():
    assert matmul_gflops(size=256, seconds=0.05) > 0
    assert bf16_training("mps") is False
    assert isinstance(bf16_training("cpu"), bool)


def test_a_measured_run_reports_its_numbers_and_a_bad_setting_names_itself():
    r = training_run("sft", {"per_device_train_batch_size": 2, "bf16": False, "activation_checkpointing": False},
                     steps=2)
    assert r["steps"] == 2 and len(r["step_times"]) == 2 and r["step_seconds"] > 0
    assert r["tokens_per_second"] > 0 and r["trainable"] == r["parameters"] > 1e8
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
