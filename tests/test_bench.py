"""make bench at equal held-out loss: the time to a target loss and the speed-up on that basis (no training)."""

import json
import math
from pathlib import Path

import pytest
from scripts import load_script

REPO = Path(__file__).resolve().parent.parent


def load_tool():
    return load_script("bench")


def curve(*points):
    """Evaluations as the bench records them: (step, eval_loss, training seconds)."""
    return [{"step": s, "eval_loss": loss, "train_seconds": t} for s, loss, t in points]


def test_time_to_a_loss_is_interpolated_between_evaluations_and_none_when_never_reached():
    tool = load_tool()
    c = curve((0, 3.0, 0.5), (12, 2.6, 30.0), (24, 2.2, 60.0))
    assert tool.seconds_to_loss(c, 3.0) == 0.5  # already there at the start
    assert tool.seconds_to_loss(c, 2.4) == pytest.approx(45.0)  # halfway between 2.6 at 30 s and 2.2 at 60 s
    assert tool.seconds_to_loss(c, 2.2) == pytest.approx(60.0)
    assert tool.seconds_to_loss(c, 2.1) is None
    assert tool.seconds_to_loss(curve((0, float("nan"), 0.5), (4, 2.5, 10.0)), 2.5) == 10.0  # NaN is skipped


def test_equal_loss_times_both_to_the_worse_final_loss():
    tool = load_tool()
    guide = curve((0, 3.0, 0.5), (12, 2.6, 36.0), (24, 2.4, 72.0), (36, 2.25, 108.0), (48, 2.16, 144.0))
    fast = curve((0, 3.0, 0.5), (3, 2.8, 18.0), (6, 2.6, 36.0), (9, 2.5, 54.0), (12, 2.42, 72.0))
    out = tool.equal_loss(guide, fast)
    assert out["target"] == 2.42 and out["final_eval_loss"] == {"guide": 2.16, "recommended": 2.42}
    assert out["seconds_to_target"]["recommended"] == pytest.approx(72.0)
    assert out["seconds_to_target"]["guide"] == pytest.approx(36.0 + 0.9 * 36.0)  # 2.6 -> 2.4 crosses 2.42 at 90%
    assert out["speedup"] == pytest.approx(68.4 / 72.0)  # 2x per pass, slower at equal held-out loss
    assert out["notes"] == []
    lower = out["lower_target"]
    assert lower["target"] == 2.16 and lower["seconds"]["guide"] == pytest.approx(144.0)
    assert lower["seconds"]["recommended"] is None
    assert lower["notes"] == ["recommended: never reached within the budget"]


def test_no_speed_up_when_a_variant_never_reaches_the_target_or_nothing_was_learned():
    tool = load_tool()
    # A variant whose last evaluation is not finite: its final loss is the last finite one, which it reaches
    broken = curve((0, 0.693, 0.5), (4, 0.68, 10.0), (8, float("nan"), 20.0))
    good = curve((0, 0.693, 0.5), (8, 0.67, 20.0), (16, 0.66, 40.0))
    out = tool.equal_loss(good, broken)
    assert out["target"] == 0.68 and out["speedup"] is not None
    # No finite loss at all: no target, no times, no speed-up
    out = tool.equal_loss(good, curve((0, float("nan"), 0.5)))
    assert out["target"] is None and out["speedup"] is None and out["seconds_to_target"]["recommended"] is None
    # The worse final is no lower than the start: both "reach" it at once; no speed-up claimed
    flat = curve((0, 0.693, 0.5), (8, 0.70, 20.0))
    out = tool.equal_loss(good, flat)
    assert out["target"] == 0.70 and out["speedup"] is None and "no lower than a start loss" in out["notes"][0]
    # seconds_to_loss never reaching its target gives None, and the JSON holds null for it, never NaN
    report = tool.finite({"speedup": None, "x": float("nan"), "runs": [float("inf"), 1.0]})
    assert json.loads(json.dumps(report, allow_nan=False)) == {"speedup": None, "x": None, "runs": [None, 1.0]}
    assert math.isfinite(tool.equal_loss(good, good)["speedup"])


def test_summarize_reports_per_pass_and_equal_loss_speed_ups():
    tool = load_tool()
    settings = {"bf16": False}

    def run(seconds, points):
        return {"seconds": seconds, "step_seconds": seconds / 10, "steps": 10, "peak_mib": 100.0,
                "training_loss": 2.0, "settings": settings, "eval_curve": curve(*points), "eval_seconds": 5.0}

    runs = {"guide": [run(150.0, [(0, 3.0, 1.0), (48, 2.2, 150.0)]), run(146.0, [(0, 3.0, 1.0), (48, 2.2, 146.0)])],
            "recommended": [run(73.0, [(0, 3.0, 1.0), (12, 2.4, 73.0)]), run(75.0, [(0, 3.0, 1.0), (12, 2.4, 75.0)])]}
    out = tool.summarize("sft", runs, loss_tokens=1000, tokens=2000, params=100, peak={"fp32": 1.0, "bf16": 1.0})
    assert out["speedup"] == pytest.approx(146.0 / 73.0)
    assert out["guide"]["final_eval_loss"] == 2.2 and out["recommended"]["final_eval_loss"] == 2.4
    assert out["guide"]["runs_final_eval_loss"] == [2.2, 2.2]
    # the best (fastest) run's curve: the guide reaches 2.4 three quarters of the way from 1 s to 146 s
    assert out["guide"]["seconds_to_target"] == pytest.approx(1.0 + 0.75 * 145.0)
    assert out["speedup_at_equal_loss"] == pytest.approx((1.0 + 0.75 * 145.0) / 73.0)


def test_evaluations_run_without_the_autocast_that_training_uses_and_put_it_back():
    from types import SimpleNamespace

    tool = load_tool()

    class Model:
        def own(self):
            return "fp32"

        def autocast(self):
            return "bf16"

    model, ref = Model(), Model()
    for m in (model, ref):  # what accelerate's prepare_model does under mixed precision
        m._original_forward, m.forward = m.own, m.autocast
    seen = []
    trainer = SimpleNamespace(model=model, ref_model=ref, accelerator=SimpleNamespace(native_amp=True),
                              state=SimpleNamespace(global_step=3))
    trainer.evaluate = lambda: seen.append((model.forward(), ref.forward(), trainer.accelerator.native_amp)) or {
        "eval_loss": 0.6}
    clock = tool.EvalClock(trainer, "cpu")
    clock.start()
    trainer.evaluate()
    assert seen == [("fp32", "fp32", False)]  # evaluated in full precision
    assert (model.forward(), ref.forward(), trainer.accelerator.native_amp) == ("bf16", "bf16", True)  # restored
    assert clock.curve[0]["step"] == 3 and clock.curve[0]["eval_loss"] == 0.6 and clock.eval_seconds >= 0
