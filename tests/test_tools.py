"""tools/bench.py's arithmetic (equal-loss summaries, the winner, the table), its candidates; gpu_check's verdicts."""

import json

import pytest
import torch


@pytest.fixture(scope="module")
def bench(load_tool):
    return load_tool("bench")


def curve(*points):
    """Evaluations as the bench records them: (step, held-out loss, training seconds)."""
    return [{"step": s, "eval_loss": loss, "train_seconds": t} for s, loss, t in points]


def run(seconds, *points, tokens=1000):
    """One run as run_variant reports it."""
    return {"seconds": seconds, "steps": len(points) - 1, "peak_mib": 100.0, "curve": curve(*points),
            "tokens": tokens, "settings": {}, "speed_ups": []}


def test_time_to_a_loss_is_interpolated_between_evaluations(bench):
    c = curve((0, 3.0, 0.0), (12, 2.6, 30.0), (24, 2.2, 60.0))
    assert bench.seconds_to_loss(c, 3.0) == 0.0  # there at the start
    assert bench.seconds_to_loss(c, 2.4) == pytest.approx(45.0)  # halfway from 2.6 at 30 s to 2.2 at 60 s
    assert bench.seconds_to_loss(c, 2.1) is None
    assert bench.seconds_to_loss(curve((0, float("nan"), 0.0), (4, 2.5, 10.0)), 2.5) == 10.0  # NaN skipped


def test_loss_at_a_time_is_interpolated_and_held_after_the_run_ends(bench):
    c = curve((0, 3.0, 0.0), (4, 2.0, 10.0), (8, 1.5, 20.0))
    assert bench.loss_at_seconds(c, 5.0) == pytest.approx(2.5)
    assert bench.loss_at_seconds(c, 15.0) == pytest.approx(1.75)
    assert bench.loss_at_seconds(c, 60.0) == 1.5  # finished: its final loss
    assert bench.loss_at_seconds(curve((0, None, 0.0)), 5.0) is None


def test_equal_loss_targets_the_guides_final_loss(bench):
    guide = run(100.0, (0, 3.0, 0.0), (10, 2.5, 50.0), (20, 2.2, 100.0))
    fast = run(40.0, (0, 3.0, 0.0), (5, 2.4, 20.0), (10, 2.0, 40.0))
    out = bench.equal_loss(guide, fast)
    assert out["target"] == 2.2 and out["guide_seconds"] == 100.0 and out["reached"]
    assert out["seconds"] == pytest.approx(20.0 + 0.5 * 20.0)  # 2.4 -> 2.0 crosses 2.2 halfway
    assert out["speedup"] == pytest.approx(100.0 / 30.0) and out["per_pass_speedup"] == 2.5
    assert out["loss_at_guide_seconds"] == 2.0
    slow = run(40.0, (0, 3.0, 0.0), (10, 2.6, 40.0))  # 2.5x per pass, never at the guide's 2.2
    out = bench.equal_loss(guide, slow)
    assert not out["reached"] and out["speedup"] is None and out["per_pass_speedup"] == 2.5
    flat = run(100.0, (0, 3.0, 0.0), (20, 3.1, 100.0))  # the guide learned nothing: nothing to compare
    assert bench.equal_loss(flat, fast)["speedup"] is None


def test_summary_takes_medians_over_repeats_and_picks_the_fastest_that_always_reached(bench):
    guide = [run(100.0, (0, 3.0, 0.0), (20, 2.2, 100.0)), run(120.0, (0, 3.0, 0.0), (20, 2.2, 120.0))]
    runs = {"quick": [run(30.0, (0, 3.0, 0.0), (5, 2.1, 30.0)), run(40.0, (0, 3.0, 0.0), (5, 2.1, 40.0))],
            "quicker": [run(20.0, (0, 3.0, 0.0), (5, 2.2, 20.0)), run(25.0, (0, 3.0, 0.0), (5, 2.2, 25.0))],
            "short": [run(10.0, (0, 3.0, 0.0), (2, 2.9, 10.0)), run(10.0, (0, 3.0, 0.0), (2, 2.9, 10.0))]}
    out = bench.summarize("sft", guide, runs, params=1_000_000, peak={"fp32": 1.0, "bf16": None})
    quick = out["candidates"]["quick"]
    assert quick["seconds"] == {"min": 30.0, "median": 35.0, "max": 40.0, "n": 2, "values": [30.0, 40.0]}
    crossing = 0.8 / 0.9  # 3.0 -> 2.1 passes the target 2.2 at 8/9 of the way
    assert [p["speedup"] for p in quick["per_repeat"]] == pytest.approx([100 / (30 * crossing), 120 / (40 * crossing)])
    assert out["recommended"] == "quicker" and out["lost"] == ["quick", "short"]
    assert out["equal_loss"]["median"] == pytest.approx((100 / 20 + 120 / 25) / 2)
    assert out["equal_loss"]["reached"] and out["equal_loss"]["repeats"] == 2
    assert not out["candidates"]["short"]["reached"] and out["candidates"]["short"]["equal_loss_speedup"]["n"] == 0
    # nominal work: 6 x parameters x tokens over the median seconds, against the fp32 peak (1 GFLOP/s here)
    assert out["matmul_share_fp32"]["guide"] == pytest.approx(6 * 1e6 * 1000 / 110 / 1e9)
    assert out["guide"]["matmul_share"]["bf16"] is None
    json.dumps(out, allow_nan=False)  # strict JSON as it is
    lines = bench.table({"sft": {**out, "skipped": {"bf16": "no bf16 instructions"}}})
    assert any(line.startswith("sft   *quicker") for line in lines) and any("never" in line for line in lines)
    assert any("skipped: no bf16 instructions" in line for line in lines)


def test_without_a_candidate_that_reaches_the_target_the_closest_is_named_and_not_reached(bench):
    guide = [run(100.0, (0, 3.0, 0.0), (20, 2.2, 100.0))] * 2
    runs = {"a": [run(30.0, (0, 3.0, 0.0), (5, 2.5, 30.0))] * 2, "b": [run(30.0, (0, 3.0, 0.0), (5, 2.3, 30.0))] * 2}
    out = bench.summarize("dpo", guide, runs, params=10, peak={"fp32": 1.0, "bf16": 2.0})
    assert out["recommended"] == "b" and out["equal_loss"]["reached"] is False and out["equal_loss"]["median"] is None
    assert out["guide"]["matmul_share"]["bf16"] == pytest.approx(out["guide"]["matmul_share"]["fp32"] / 2)


def test_candidates_scale_the_learning_rate_and_change_only_what_they_name(bench, monkeypatch):
    assert bench.learning_rate("sft", 16, "linear") == pytest.approx(2e-4)
    assert bench.learning_rate("sft", 16, "sqrt") == pytest.approx(1e-4)
    assert bench.learning_rate("dpo", 8, "same") == 1e-6 and bench.learning_rate("dpo", 8, 2e-5) == 2e-5
    guide = bench.candidate_settings("sft", None)
    fast = bench.candidate_settings("sft", bench.CANDIDATES["sft-b16-linear-bf16"])
    changed = {k for k in fast.keys() | guide.keys() if fast.get(k, "unset") != guide.get(k, "unset")}
    assert changed == {"per_device_train_batch_size", "learning_rate", "bf16", "padding_free", "max_length"}
    rules = [c["lr"] for c in bench.CANDIDATES.values()]
    assert all(rule in ("same", "linear", "sqrt") or rule > 0 for rule in rules)
    assert all(c["stage"] in bench.STAGES for c in bench.CANDIDATES.values())
    assert set(bench.DEFAULT_CANDIDATES.split(",")) <= set(bench.CANDIDATES)
    for instructions, skipped in (([], True), (["amx_bf16"], False)):  # bf16 only where it is not emulated
        monkeypatch.setattr(bench, "bf16_instructions", lambda found=instructions: found)
        assert (bench.unavailable(bench.CANDIDATES["sft-b16-linear-bf16"], "cpu") is not None) == skipped
    assert bench.unavailable(bench.CANDIDATES["sft-b16-linear"], "cpu") is None


def test_the_guide_config_keeps_trainingarguments_defaults_not_trls(bench, tmp_path):
    config = bench.guide_config("dpo", str(tmp_path), use_cpu=True, **bench.candidate_settings("dpo", None))
    assert type(config).__name__ == "DPOConfig" and config.per_device_train_batch_size == 2
    assert config.activation_checkpointing is False and config.logging_steps == 500  # DPOConfig: True and 10
    with pytest.raises(SystemExit):
        bench.main(["--candidates", "no-such-candidate"])


def _metrics(first=2.5, last=1.9, weights_dtype="torch.float32"):
    return {"run": {"device_name": "NVIDIA T4", "weights_dtype": weights_dtype, "peak_mib": 3000.0,
                    "parameters": 134_515_008}, "bf16": False, "fp16": True,
            "log_history": [{"loss": first, "num_tokens": 45_000}, {"loss": last, "num_tokens": 90_000}],
            "train_seconds": 30.0, "steps": 20,
            "before": {"format_compliance": 0.1, "refusal_rate_on_unsafe": 0.0},
            "after": {"format_compliance": 0.9, "refusal_rate_on_unsafe": 0.6}}


def test_gpu_check_passes_a_correct_run_and_fails_half_weights_or_a_flat_loss(capsys, load_tool):
    tool = load_tool("gpu_check")
    seconds = {"01_sft": 60.0, "02_dpo": 80.0}
    table, problems = tool.rows({"01_sft": _metrics(), "02_dpo": _metrics(first=0.693, last=0.61)}, seconds)
    assert problems == [] and dict((w, a) for w, a, _ in table)["trained weights"] == "torch.float32"
    _, problems = tool.rows({"01_sft": _metrics(weights_dtype="torch.bfloat16"), "02_dpo": _metrics(last=2.5)}, seconds)
    assert any("bfloat16" in p for p in problems) and any("did not fall" in p for p in problems)
    if not torch.cuda.is_available():  # without CUDA it stops at once and says why
        assert tool.main() == 1 and "no CUDA device is present" in capsys.readouterr().err
