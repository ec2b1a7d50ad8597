"""`make bench`: the guide's training settings against the course's recommended ones, on the same job.

For SFT and for DPO, the same examples are trained for one pass with (A) the guide's settings as written and
(B) `smolkit.settings.recommended_settings` for this machine plus `smolkit.speed.speed_up`, interleaved A, B, A, B
so that a noisy neighbour hurts both; each variant's best run counts (its median is kept too). Every run has a
fresh process of its own, so the speed-ups of B never reach A and each peak memory is its own. Printed and
written to outputs/bench/bench.json (+ bench.png): wall time of the job, step time, tokens/s (only tokens that
carry loss, the same count for A and B), peak memory, the speed-up, and the fraction of this machine's measured
matmul peak that training reaches (nominal work, 6 x parameters per token for SFT and 8 for DPO, over wall time).

A pass is not the whole story: B takes fewer, larger optimizer steps at the same learning rate, and so may learn
less in its pass. Every run therefore also evaluates a fixed held-out slice of the test split (the same for A and B)
with TRL's own evaluation (in fp32 for both), at the start and a few times during the pass, on a training clock
that leaves the evaluations out. From those points the bench reports each variant's final held-out loss, the
training seconds each needs to reach the worse of the two final losses, and the speed-up on that basis ("at
equal held-out loss") beside the per-pass one.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import json
import math
import statistics
import sys
import time
from pathlib import Path

import torch

from smolkit.data import load_preferences, load_sft
from smolkit.hardware import describe, matmul_gflops, pick_device
from smolkit.lengths import group_by_length, loss_token_count, total_tokens
from smolkit.measure import in_fresh_process, peak_memory_mib, reset_peak_memory, track
from smolkit.models import load_model
from smolkit.paths import atomic_write_text, outputs_dir
from smolkit.profiles import PROFILES
from smolkit.settings import guide_config, recommended_settings
from smolkit.speed import speed_up
from smolkit.templates import use_template
from smolkit.trainer import build_trainer


def job(stage: str, n: int, tokenizer):
    """The benchmark's job: the first `n` examples of the shuffled training split, only the columns TRL reads."""
    data = (load_sft if stage == "sft" else load_preferences)(split="train").shuffle(seed=0)
    data = data.select(range(min(n, len(data))))
    return data.select_columns(["messages"] if stage == "sft" else ["prompt", "chosen", "rejected"])


def held_out(stage: str, n: int):
    """The fixed held-out slice every run evaluates: `n` rows of the shuffled test split, the same for A and B."""
    data = (load_sft if stage == "sft" else load_preferences)(split="test").shuffle(seed=0)
    data = data.select(range(min(n, len(data))))
    return data.select_columns(["messages"] if stage == "sft" else ["prompt", "chosen", "rejected"])


def seconds_to_loss(curve: list[dict], target: float) -> float | None:
    """Training seconds at which a held-out curve first reaches `target` or lower; None if it never does.

    `curve` holds the evaluations in order, each with `eval_loss` and `train_seconds`. Between two evaluations the
    loss is interpolated linearly in training seconds (the bench evaluates only a few times per pass, so this is
    an estimate of the crossing, not a measurement); a curve that starts at or below the target reaches it at its
    first point.
    """
    previous = None
    for point in curve:
        loss = point.get("eval_loss")
        if loss is None or not math.isfinite(loss):
            continue
        if loss <= target:
            if previous is None or previous["eval_loss"] == loss:
                return point["train_seconds"]
            share = (previous["eval_loss"] - target) / (previous["eval_loss"] - loss)
            return previous["train_seconds"] + share * (point["train_seconds"] - previous["train_seconds"])
        previous = point
    return None


NEVER = "never reached within the budget"


def equal_loss(guide: list[dict], recommended: list[dict]) -> dict:
    """The comparison at equal held-out loss: each variant's time to the worse of the two final losses, and their ratio.

    The target is the higher (worse) final held-out loss, so the variant that learned more in its pass is timed
    to the point where it matched the other's end result. A variant that never gets there (no finite loss at or
    below the target) has None seconds and the note "never reached within the budget"; `lower_target` times both
    to the better final loss the same way, which shows whether the worse variant ever matched the better one.
    The speed-up is None when either time is None, or when the target is no lower than a start loss (neither
    pass learned anything on the held-out slice that could be compared).
    """
    curves = {"guide": guide, "recommended": recommended}
    finals = {v: _final_loss(c) for v, c in curves.items()}
    out: dict = {"final_eval_loss": finals, "target": None, "seconds_to_target": {v: None for v in curves},
                 "speedup": None, "notes": []}
    if any(f is None for f in finals.values()):
        out["notes"].append("a variant has no finite held-out loss: no comparison")
        return out
    target = max(finals.values())
    out["target"] = target
    for variant, curve in curves.items():
        seconds = seconds_to_loss(curve, target)
        out["seconds_to_target"][variant] = seconds
        if seconds is None:
            out["notes"].append(f"{variant}: {NEVER}")
    starts = [c[0]["eval_loss"] for c in curves.values() if c and c[0].get("step") == 0]
    times = out["seconds_to_target"]
    if starts and target >= min(starts):
        out["notes"].append("the worse final held-out loss is no lower than a start loss: no equal-loss comparison")
    elif times["guide"] is not None and times["recommended"] is not None and times["recommended"] > 0:
        out["speedup"] = times["guide"] / times["recommended"]
    lower = min(finals.values())
    out["lower_target"] = {"target": lower, "seconds": {v: seconds_to_loss(c, lower) for v, c in curves.items()}}
    out["lower_target"]["notes"] = [f"{v}: {NEVER}" for v, s in out["lower_target"]["seconds"].items() if s is None]
    return out


def _final_loss(curve: list[dict]) -> float | None:
    """The held-out loss of a curve's last evaluation, or None where there is none (or it is not finite)."""
    losses = [p.get("eval_loss") for p in curve]
    losses = [x for x in losses if x is not None and math.isfinite(x)]
    return losses[-1] if losses else None


class EvalClock:
    """Wraps `trainer.evaluate` to keep the held-out curve on a training clock that leaves evaluation out.

    `start()` marks the call of `trainer.train()`. Each evaluation (the one at the start and those every
    `eval_steps`) records its step, its `eval_loss` and the training seconds so far: the wall time since the
    start minus the time spent in earlier evaluations. The whole `evaluate` call is timed (not only TRL's
    `eval_runtime`, which misses the metric bookkeeping around it), so `eval_seconds`, subtracted from the run's
    wall time, gives the pass's time as it was before the bench evaluated anything.

    Peak memory likewise: before each evaluation the peak so far is kept (`training_peaks`), and after it the
    peak window starts again, so an evaluation batch larger than a training batch does not become the run's
    peak (`eval_peak_mib` keeps the evaluations' own).

    Every evaluation runs in fp32, whatever the variant trains in, so both variants' held-out losses are measured
    the same way. Under bf16 autocast DPO's held-out loss is not a measure of the model: on a CPU whose probe
    picked bf16, this bench's recommended DPO run ended at a held-out loss of 0.496 under autocast and 0.642 in
    fp32 for the same weights (trained in fp32 instead: 0.639), because rounding shifts the policy's and the
    reference's log-probs differently and the margins take that for learning. So for the evaluation the autocast
    that accelerate put around each model's forward is lifted (its `_original_forward`), and put back before
    training goes on.
    """

    def __init__(self, trainer, device: str = "cpu") -> None:
        self.trainer, self.device, self.curve, self.eval_seconds, self._start = trainer, device, [], 0.0, None
        self.training_peaks: list[float] = []
        self.eval_peak_mib: float | None = None
        self._evaluate = trainer.evaluate
        trainer.evaluate = self._timed  # Trainer._evaluate calls self.evaluate: the instance attribute wins

    def start(self) -> None:
        self._start = time.perf_counter()

    def _timed(self, *args, **kwargs):
        if self._start is not None:
            self._peak(self.training_peaks)
        began = time.perf_counter()
        with self.full_precision():
            metrics = self._evaluate(*args, **kwargs)
        ended = time.perf_counter()
        if self._start is not None:
            evaluation: list[float] = []
            self._peak(evaluation)
            self.eval_peak_mib = max(evaluation + [self.eval_peak_mib or 0.0]) or None
            reset_peak_memory(self.device)
            loss = metrics.get("eval_loss")
            self.curve.append({"step": self.trainer.state.global_step,
                               "eval_loss": None if loss is None or not math.isfinite(loss) else float(loss),
                               "train_seconds": began - self._start - self.eval_seconds,
                               "eval_seconds": ended - began})
            self.eval_seconds += ended - began
        return metrics

    @contextlib.contextmanager
    def full_precision(self):
        """No mixed-precision autocast inside the block: each model's own forward, accelerate's autocast off."""
        accelerator = self.trainer.accelerator
        models = [m for m in (self.trainer.model, getattr(self.trainer, "ref_model", None))
                  if m is not None and hasattr(m, "_original_forward")]
        wrapped = [(m, m.forward) for m in models]
        native = accelerator.native_amp
        for m in models:
            m.forward = m._original_forward
        accelerator.native_amp = False  # accelerator.autocast(), which TRL enters itself, becomes a no-op
        try:
            yield
        finally:
            accelerator.native_amp = native
            for m, forward in wrapped:
                m.forward = forward

    def _peak(self, into: list[float]) -> None:
        peak = peak_memory_mib(self.device)
        if peak is not None:
            into.append(peak)


def load_base(name: str, device: str):
    """The start model (fp32, no KV cache while training) and its tokenizer with the course template."""
    base, tokenizer = load_model(name, device=device, dtype=torch.float32)
    use_template(tokenizer, "guide")
    base.config.use_cache = False
    return base, tokenizer


def child(spec: dict, queue) -> None:
    """One run in a fresh process: load, apply the variant's speed-ups (B only), train, report."""
    try:
        torch.manual_seed(0)
        base, tokenizer = load_base(spec["model"], spec["device"])
        changes = speed_up(base, spec["device"]) if spec["variant"] == "recommended" else []
        data = job(spec["stage"], spec["examples"], tokenizer)
        evaluation = held_out(spec["stage"], spec["eval_examples"])
        result = run_once(spec["stage"], spec["variant"], base, tokenizer, data, spec["device"], Path(spec["work"]),
                          evaluation, spec["evaluations"])
        queue.put({**result, "speed_ups": changes})
    except BaseException as exc:  # the parent reports it; a silent child would look like a hang
        import traceback

        queue.put({"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()})


def run_in_child(spec: dict) -> dict:
    """`child` in a spawned process; its measurements, or the error it raised."""
    result = in_fresh_process(child, spec, timeout=1800)
    if "error" in result:
        raise RuntimeError(f"{spec['stage']} {spec['variant']} run failed: {result['error']}\n"
                           f"traceback of the child process:\n{result.get('traceback', '')}")
    return result


def run_once(stage: str, variant: str, base, tokenizer, dataset, device: str, workdir: Path, evaluation=None,
             evaluations: int = 4) -> dict:
    """Train one pass over `dataset` with one variant's settings; return its measurements.

    With `evaluation` (a held-out slice), TRL evaluates it at the start and about `evaluations` times more,
    evenly over the pass (always at the last step); the per-pass seconds still leave those evaluations out.
    """
    common = {"num_train_epochs": 1, "max_steps": -1, "logging_steps": 10, "seed": 0, "report_to": "none",
              "save_strategy": "no", "disable_tqdm": True}
    if stage == "sft":
        common["assistant_only_loss"] = True  # the course's objective, for both: loss on the answers only
    overrides = dict(common)
    if variant == "recommended":
        fast = recommended_settings(stage, device)
        rate = getattr(PROFILES["default"], f"{stage}_learning_rate")  # scaled with the batch, as the notebooks do
        overrides.update({**fast, "learning_rate": rate})
    config = guide_config(stage, str(workdir / variant), **overrides)
    if evaluation is not None:
        # One epoch has ceil(rows / batch) steps: evaluate every 1/evaluations of them, and once before the first
        # (TRL also adds the last step when it is not a multiple). Eval batches of 8 for both variants, so both
        # average their held-out loss over the same batches.
        steps = math.ceil(len(dataset) / (config.per_device_train_batch_size * config.gradient_accumulation_steps))
        overrides.update(eval_strategy="steps", eval_steps=max(1, math.ceil(steps / evaluations)), eval_on_start=True,
                         per_device_eval_batch_size=8)
        config = guide_config(stage, str(workdir / variant), **overrides)
    if variant == "recommended" and config.train_sampling_strategy == "sequential":  # batches of similar length
        dataset = group_by_length(dataset, tokenizer, config.per_device_train_batch_size, seed=0)
    model = copy.deepcopy(base)
    trainer = build_trainer(model, tokenizer, config, dataset, eval_dataset=evaluation)
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # no metric dicts between the bench's own lines
    clock = EvalClock(trainer, device)
    gc.collect()
    with track(device) as m:
        clock.start()
        result = trainer.train()
    settings = {k: getattr(config, k) for k in (
        "per_device_train_batch_size", "gradient_accumulation_steps", "bf16", "gradient_checkpointing",
        "dataloader_num_workers", "train_sampling_strategy", "optim")}
    for key in ("padding_free", "precompute_ref_log_probs", "max_length"):
        settings[key] = getattr(config, key, None)
    settings["optim"] = str(settings["optim"]).split(".")[-1]
    settings["eval_steps"] = config.eval_steps if evaluation is not None else None
    del trainer, model
    gc.collect()
    seconds = m["seconds"] - clock.eval_seconds  # the pass's training time: the evaluations taken out
    peaks = clock.training_peaks + ([m["peak_mib"]] if m["peak_mib"] is not None else [])
    return {"seconds": seconds, "seconds_with_eval": m["seconds"], "eval_seconds": clock.eval_seconds,
            "peak_mib": round(max(peaks), 1) if peaks else None, "eval_peak_mib": clock.eval_peak_mib,
            "steps": result.global_step,
            "step_seconds": seconds / max(result.global_step, 1), "training_loss": result.training_loss,
            "eval_curve": clock.curve, "settings": settings}


def summarize(stage: str, runs: dict, loss_tokens: int, tokens: int, params: int, peak: dict) -> dict:
    """Best run per variant (the one least disturbed by other work), the speed-up, tokens/s, matmul-peak fraction."""
    flops_per_token = (6 if stage == "sft" else 8) * params  # DPO adds a forward of the reference
    out = {"loss_tokens": loss_tokens, "tokens": tokens}
    best = {}
    for variant, rs in runs.items():
        best[variant] = min(rs, key=lambda r: r["seconds"])
        wall = best[variant]["seconds"]
        dtype = "bf16" if rs[0]["settings"]["bf16"] else "fp32"
        achieved = flops_per_token * tokens / wall / 1e9
        out[variant] = {
            "wall_seconds": wall, "runs_seconds": [r["seconds"] for r in rs],
            "step_seconds": min(r["step_seconds"] for r in rs), "steps": rs[0]["steps"],
            "median_wall_seconds": statistics.median(r["seconds"] for r in rs),
            "loss_tokens_per_second": loss_tokens / wall, "tokens_per_second": tokens / wall,
            "peak_mib": max(r["peak_mib"] or 0 for r in rs), "training_loss": rs[-1]["training_loss"],
            "achieved_gflops": achieved, "matmul_peak_fraction": achieved / peak[dtype],
            "settings": rs[0]["settings"], "speed_ups": rs[0].get("speed_ups", []),
            # held out: the best run's curve (its clock is the one the wall time comes from); every run's end
            "eval_curve": best[variant].get("eval_curve", []),
            "final_eval_loss": _final_loss(best[variant].get("eval_curve", [])),
            "runs_final_eval_loss": [_final_loss(r.get("eval_curve", [])) for r in rs],
            "eval_seconds": best[variant].get("eval_seconds"),
            "eval_peak_mib": max((r.get("eval_peak_mib") or 0 for r in rs), default=0) or None,
        }
    out["speedup"] = out["guide"]["wall_seconds"] / out["recommended"]["wall_seconds"]
    out["equal_loss"] = equal_loss(out["guide"]["eval_curve"], out["recommended"]["eval_curve"])
    for variant in runs:
        out[variant]["seconds_to_target"] = out["equal_loss"]["seconds_to_target"][variant]
    out["speedup_at_equal_loss"] = out["equal_loss"]["speedup"]
    return out


def finite(value):
    """`value` with every NaN or infinite float inside it (dicts, lists) replaced by None, for JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def fmt(value: float | None, spec: str, none: str = "never") -> str:
    """`value` formatted with `spec`, or `none` where it is None."""
    return none if value is None else format(value, spec)


def chart(report: dict, path: Path) -> None:
    """Per stage: wall time of the job, guide vs recommended; below it, held-out loss over training seconds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = [s for s in ("sft", "dpo") if s in report]
    colors = {"guide": "#999999", "recommended": "#2a7ab9"}
    fig, axes = plt.subplots(2, len(stages), figsize=(4.6 * len(stages), 6.6), squeeze=False)
    for ax, curves, stage in zip(axes[0], axes[1], stages):
        r = report[stage]
        walls = [r["guide"]["wall_seconds"], r["recommended"]["wall_seconds"]]
        bars = ax.bar(["guide as written", "recommended"], walls, color=list(colors.values()))
        ax.bar_label(bars, [f"{w:.0f} s" for w in walls])
        ax.set_ylim(0, 1.15 * max(walls))  # room for the labels under the title
        ax.set_title(f"{stage.upper()}: {r['speedup']:.2f}x faster per pass")
        ax.set_ylabel("wall time for one pass (s)")
        for variant, color in colors.items():
            points = [p for p in r[variant]["eval_curve"] if p["eval_loss"] is not None]
            curves.plot([p["train_seconds"] for p in points], [p["eval_loss"] for p in points], "o-", color=color,
                        label=variant)
        eq = r["equal_loss"]
        if eq["target"] is not None:
            curves.axhline(eq["target"], color="#cc6600", lw=0.8, ls="--", label="worse final loss")
        speed = "no comparison" if eq["speedup"] is None else f"{eq['speedup']:.2f}x"
        curves.set_title(f"at equal held-out loss: {speed}")
        curves.set_xlabel("training seconds (evaluation left out)")
        curves.set_ylabel("held-out eval loss")
        curves.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    """Run the A/B benchmark and write outputs/bench/bench.json and bench.png."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sft-examples", type=int, default=192, help="SFT conversations in the job")
    parser.add_argument("--dpo-examples", type=int, default=64, help="DPO pairs in the job")
    parser.add_argument("--sft-eval-examples", type=int, default=32, help="held-out SFT conversations evaluated")
    parser.add_argument("--dpo-eval-examples", type=int, default=16, help="held-out DPO pairs evaluated")
    parser.add_argument("--evaluations", type=int, default=4, help="held-out evaluations per pass, after the start")
    parser.add_argument("--repeats", type=int, default=2, help="A/B rounds (A, B, A, B, ...)")
    parser.add_argument("--stages", default="sft,dpo")
    parser.add_argument("--model", default="embedded")
    opts = parser.parse_args(argv)

    torch.manual_seed(0)
    device = pick_device()
    out_dir = outputs_dir() / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    peak = {"fp32": matmul_gflops(torch.float32, device), "bf16": matmul_gflops(torch.bfloat16, device)}
    print(f"matmul probe ({device}, 2048x2048): fp32 {peak['fp32']:.0f} GFLOP/s, bf16 {peak['bf16']:.0f} GFLOP/s")
    base, tokenizer = load_base(opts.model, device)
    params = sum(p.numel() for p in base.parameters())
    del base
    report: dict = {"machine": describe(), "device": device, "model": opts.model, "parameters": params,
                    "matmul_gflops": peak, "repeats": opts.repeats, "evaluations": opts.evaluations,
                    "eval_precision": "fp32"}
    started = time.perf_counter()
    for stage in opts.stages.split(","):
        n = opts.sft_examples if stage == "sft" else opts.dpo_examples
        n_eval = opts.sft_eval_examples if stage == "sft" else opts.dpo_eval_examples
        data = job(stage, n, tokenizer)
        loss_tokens, tokens = loss_token_count(data, tokenizer), total_tokens(data, tokenizer)
        runs: dict[str, list] = {"guide": [], "recommended": []}
        for rep in range(opts.repeats):
            for variant in ("guide", "recommended"):
                r = run_in_child({"stage": stage, "variant": variant, "model": opts.model, "device": device,
                                  "examples": n, "eval_examples": n_eval, "evaluations": opts.evaluations,
                                  "work": str(out_dir / "work")})
                runs[variant].append(r)
                curve = " ".join(f"{p['step']}:{fmt(p['eval_loss'], '.3f', 'nan')}@{p['train_seconds']:.0f}s"
                                 for p in r["eval_curve"])
                print(f"{stage} round {rep + 1} {variant:12s} {r['seconds']:7.1f} s  {r['steps']:4d} steps  "
                      f"{r['step_seconds']:5.2f} s/step  peak {r['peak_mib']:.0f} MiB  loss {r['training_loss']:.3f}  "
                      f"(+{r['eval_seconds']:.0f} s held-out evaluation, not counted)\n"
                      f"{'':6s}held-out loss step:loss@training s  {curve}", flush=True)
        report[stage] = summarize(stage, runs, loss_tokens, tokens, params, peak)
        report[stage]["examples"] = len(data)
        report[stage]["eval_examples"] = len(held_out(stage, n_eval))
    report["matmul_peak_fraction"] = report.get("sft", report.get("dpo", {})).get("recommended", {}).get(
        "matmul_peak_fraction")
    report["total_seconds"] = time.perf_counter() - started
    # A missing or undefined number is null in the file, never NaN (which is not JSON)
    atomic_write_text(out_dir / "bench.json", json.dumps(finite(report), indent=2, default=str, allow_nan=False))
    chart(report, out_dir / "bench.png")
    print()
    print(f"{'':6s}{'variant':14s}{'wall s':>8s}{'s/step':>8s}{'loss tok/s':>11s}{'peak MiB':>10s}"
          f"{'% matmul peak':>15s}{'held-out loss':>15s}{'s to target':>13s}")
    for stage in opts.stages.split(","):
        r = report[stage]
        eq = r["equal_loss"]
        for variant in ("guide", "recommended"):
            v = r[variant]
            print(f"{stage:6s}{variant:14s}{v['wall_seconds']:8.1f}{v['step_seconds']:8.2f}"
                  f"{v['loss_tokens_per_second']:11.1f}{v['peak_mib']:10.0f}{100 * v['matmul_peak_fraction']:14.1f}%"
                  f"{fmt(v['final_eval_loss'], '.3f', 'n/a'):>15s}{fmt(v['seconds_to_target'], '.1f', 'never'):>13s}")
        print(f"{stage:6s}speed-up per pass (guide wall / recommended wall): {r['speedup']:.2f}x "
              f"on {r['examples']} examples, {r['loss_tokens']} loss tokens")
        print(f"{stage:6s}speed-up at equal held-out loss (seconds to {fmt(eq['target'], '.3f', 'n/a')}, the worse "
              f"final loss on {r['eval_examples']} held-out examples): {fmt(eq['speedup'], '.2f', 'none')}"
              f"{'x' if eq['speedup'] is not None else ''}")
        lower = eq.get("lower_target")
        if lower:
            times = ", ".join(f"{v} {fmt(s, '.1f', 'never')}" + (" s" if s is not None else "")
                              for v, s in lower["seconds"].items())
            print(f"{stage:6s}to the better final loss {lower['target']:.3f}: {times}")
        for note in eq["notes"] + (lower["notes"] if lower else []):
            print(f"{stage:6s}note: {note}")
    for stage in opts.stages.split(","):
        for line in report[stage]["recommended"]["speed_ups"]:
            print(f"{stage} recommended also: {line}")
    print(f"wrote {out_dir / 'bench.json'} and {out_dir / 'bench.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
