"""`make bench`: do the course's fast settings reach the guide's held-out loss faster, for SFT and for DPO?

For each stage the same examples are trained for one pass with (A) the guide's settings as written and with each
candidate of CANDIDATES (B, C, ...): a batch shape, a learning rate scaled from the guide's (linear or square-root
in the batch), padding-free batches, the CPU speed-ups of `smolkit.perf.speed`, bf16 autocast where the CPU has
bf16 instructions. Runs are interleaved A, B, C, A, B, C, ... so a noisy neighbour hurts all, each in a fresh
process of its own. Every run evaluates the same held-out slice of the test split, with fp32 weights and an fp32
forward whatever it trains in, at the start and a few times during the pass, on a training clock that leaves the
evaluations out.

Per candidate and repeat, the target is that repeat's guide final held-out loss: the seconds each needs to reach
it (interpolated between evaluations) give the speed-up at equal loss; the candidate's held-out loss at the
guide's total training seconds is the loss at equal time. The winner has the highest median equal-loss speed-up
among the candidates that reached the target in every repeat. Throughput is nominal work (6 x parameters per
token for SFT, 8 for DPO, whose reference adds a forward) as a share of the probed fp32 (and bf16) matmul peak.
Written to <out>/bench.json and bench.png (default outputs/bench/); the table is printed.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import gc
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from smolkit.chat import use_template
from smolkit.data import load_preferences, load_sft
from smolkit.models import load_model
from smolkit.perf import (
    TrainingClock,
    answer_logps,
    bf16_instructions,
    build_trainer,
    describe,
    eval_steps,
    heldout_examples,
    heldout_loss,
    in_fresh_process,
    precision_probe,
    sequence_lengths,
    speed_up,
    track,
)
from smolkit.runtime import outputs_dir, pick_device, write_json

STAGES = ("sft", "dpo")
# The guide's TrainingArguments as written (its output, logging and saving left out); the rest TrainingArguments'
# defaults. Both stages train on the answer tokens (assistant_only_loss, DPO's completions).
GUIDE = {"sft": {"per_device_train_batch_size": 4, "learning_rate": 5e-5},
         "dpo": {"per_device_train_batch_size": 2, "learning_rate": 1e-6}}
# What a candidate changes: batch (per step), lr ("same" as the guide, scaled "linear"/"sqrt" with the batch, or a
# number: that rate), padding_free (SFT), grouped (DPO: batches of pairs of similar length), speed_ups, bf16
# (autocast; on a CPU only with AMX or AVX512-BF16).
CANDIDATES: dict[str, dict[str, Any]] = {
    "sft-b16-same": {"stage": "sft", "batch": 16, "lr": "same", "padding_free": True, "speed_ups": True},
    "sft-b16-sqrt": {"stage": "sft", "batch": 16, "lr": "sqrt", "padding_free": True, "speed_ups": True},
    "sft-b16-linear": {"stage": "sft", "batch": 16, "lr": "linear", "padding_free": True, "speed_ups": True},
    "sft-b8-linear": {"stage": "sft", "batch": 8, "lr": "linear", "padding_free": True, "speed_ups": True},
    "sft-b16-linear-stock": {"stage": "sft", "batch": 16, "lr": "linear", "padding_free": True},
    "sft-b16-linear-bf16": {"stage": "sft", "batch": 16, "lr": "linear", "padding_free": True, "speed_ups": True,
                            "bf16": True},
    "sft-b16-4e-4": {"stage": "sft", "batch": 16, "lr": 4e-4, "padding_free": True, "speed_ups": True},
    "sft-b16-4e-4-bf16": {"stage": "sft", "batch": 16, "lr": 4e-4, "padding_free": True, "speed_ups": True,
                          "bf16": True},
    "dpo-b4-same": {"stage": "dpo", "batch": 4, "lr": "same", "grouped": True, "speed_ups": True},
    "dpo-b4-sqrt": {"stage": "dpo", "batch": 4, "lr": "sqrt", "grouped": True, "speed_ups": True},
    "dpo-b4-linear": {"stage": "dpo", "batch": 4, "lr": "linear", "grouped": True, "speed_ups": True},
    "dpo-b8-linear": {"stage": "dpo", "batch": 8, "lr": "linear", "grouped": True, "speed_ups": True},
    "dpo-b4-linear-bf16": {"stage": "dpo", "batch": 4, "lr": "linear", "grouped": True, "speed_ups": True,
                           "bf16": True},
    "dpo-b4-1e-5": {"stage": "dpo", "batch": 4, "lr": 1e-5, "grouped": True, "speed_ups": True},
    "dpo-b4-2e-5": {"stage": "dpo", "batch": 4, "lr": 2e-5, "grouped": True, "speed_ups": True},  # 02's rate
    "dpo-b8-2e-5": {"stage": "dpo", "batch": 8, "lr": 2e-5, "grouped": True, "speed_ups": True},
    "dpo-b4-2e-5-bf16": {"stage": "dpo", "batch": 4, "lr": 2e-5, "grouped": True, "speed_ups": True, "bf16": True},
}
# The default: the winners of the 2026-12-07 run (docs/hardware.md) and the runner-up of each stage, about 18 min.
DEFAULT_CANDIDATES = "sft-b16-linear,sft-b16-linear-bf16,dpo-b4-2e-5,dpo-b8-2e-5"
NEVER = "never reached the guide's final held-out loss in its pass"


def learning_rate(stage: str, batch: int, rule: str | float) -> float:
    """The guide's rate kept ("same"), scaled with batch / guide batch ("linear") or its root ("sqrt"), or `rule`."""
    if not isinstance(rule, str):
        return float(rule)
    ratio = batch / GUIDE[stage]["per_device_train_batch_size"]
    return GUIDE[stage]["learning_rate"] * {"same": 1.0, "linear": ratio, "sqrt": math.sqrt(ratio)}[rule]


def candidate_settings(stage: str, candidate: dict[str, Any] | None) -> dict[str, Any]:
    """Config fields of the guide (None) or of a candidate, over the guide's."""
    settings = {**GUIDE[stage], "assistant_only_loss": True} if stage == "sft" else dict(GUIDE[stage])
    if candidate:
        settings.update(per_device_train_batch_size=candidate["batch"], bf16=bool(candidate.get("bf16")),
                        learning_rate=learning_rate(stage, candidate["batch"], candidate["lr"]))
        if candidate.get("padding_free"):
            settings.update(padding_free=True, max_length=None)
        if candidate.get("grouped"):
            settings["train_sampling_strategy"] = "sequential"  # keep the batches group_by_length built
    return settings


def unavailable(candidate: dict[str, Any], device: str) -> str | None:
    """Why a candidate cannot run fairly on this device, or None."""
    if candidate.get("bf16") and device == "cpu" and not bf16_instructions():
        return "bf16 autocast needs AMX or AVX512-BF16 on a CPU; without them bf16 is emulated, far slower"
    if candidate.get("bf16") and device.startswith("cuda") and not torch.cuda.is_bf16_supported():
        return "this GPU has no bf16"
    return None


def guide_config(stage: str, output_dir: str, **values: Any) -> Any:
    """The TRL config of `values` on TrainingArguments' defaults (not TRL's), as the guide's TrainingArguments are."""
    from transformers import TrainingArguments
    from trl import DPOConfig, SFTConfig

    fields = {f.name for f in dataclasses.fields(TrainingArguments)}
    plain = TrainingArguments(output_dir=output_dir, **{k: v for k, v in values.items() if k in fields})
    extra = {k: v for k, v in values.items() if k not in fields}
    return (SFTConfig if stage == "sft" else DPOConfig)(**{**plain.to_dict(), **extra})


def rows(stage: str, split: str, n: int) -> Any:
    """The first `n` rows of a split, shuffled with a fixed seed, only the columns TRL reads: the same every run."""
    data = (load_sft if stage == "sft" else load_preferences)(split=split).shuffle(seed=0)
    data = data.select(range(min(n, len(data))))
    return data.select_columns(["messages"] if stage == "sft" else ["prompt", "chosen", "rejected"])


def group_by_length(data: Any, tokenizer: Any, batch: int) -> Any:
    """Rows reordered so each batch holds examples of similar length, the batches in a fixed random order."""
    import random

    lengths = [max(sequence_lengths(row, tokenizer)) for row in data]
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches = [order[i:i + batch] for i in range(0, len(order), batch)]
    random.Random(0).shuffle(batches)
    return data.select([i for b in batches for i in b])


def run_variant(spec: dict[str, Any]) -> dict[str, Any]:
    """One run, in its own process: load, speed-ups (if the candidate has them), train one pass, measure."""
    stage, device = spec["stage"], spec["device"]
    candidate = CANDIDATES.get(spec["variant"])
    torch.manual_seed(0)
    model, tokenizer = load_model(spec["model"], device=device, dtype=torch.float32)
    use_template(tokenizer, "guide")
    model.config.use_cache = False
    changes = speed_up(model, device) if candidate and candidate.get("speed_ups") else []
    data, held = rows(stage, "train", spec["examples"]), rows(stage, "test", spec["eval_examples"])
    examples = heldout_examples(held, tokenizer, stage)
    reference = answer_logps(model, examples) if stage == "dpo" else None  # DPO's reference is the start model
    settings = candidate_settings(stage, candidate)
    with tempfile.TemporaryDirectory() as work:  # save_strategy "no": nothing is written there
        config = guide_config(stage, work, num_train_epochs=1, seed=0, report_to="none", save_strategy="no",
                              disable_tqdm=True, logging_steps=10, use_cpu=device == "cpu", **settings)
        if candidate and candidate.get("grouped"):
            data = group_by_length(data, tokenizer, config.per_device_train_batch_size)
        steps = math.ceil(len(data) / (config.per_device_train_batch_size * config.gradient_accumulation_steps))
        beta = getattr(config, "beta", 0.1)
        every = eval_steps(steps, spec["evaluations"])
        clock = TrainingClock(lambda m: heldout_loss(m, examples, stage, reference, beta), every)
        trainer = build_trainer(model, tokenizer, config, data, callbacks=[clock])
        gc.collect()
        with track(device) as m:
            result = trainer.train()
    return {"seconds": m["seconds"] - clock.eval_seconds, "eval_seconds": clock.eval_seconds,
            "peak_mib": m["peak_mib"], "steps": result.global_step, "curve": clock.curve,
            "tokens": sum(sum(sequence_lengths(row, tokenizer)) for row in data), "speed_ups": changes,
            "parameters": model.num_parameters(),
            "settings": {k: v for k, v in settings.items() if k != "assistant_only_loss"}}


# ---------------------------------------------------------------------------------------------------------------
# From runs to the report: pure functions of the curves and times


def seconds_to_loss(curve: list[dict], target: float) -> float | None:
    """Training seconds at which a held-out curve first reaches `target` or lower, interpolated linearly between
    evaluations; None if it never does. A curve at or below the target at its first point reaches it there."""
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


def loss_at_seconds(curve: list[dict], seconds: float) -> float | None:
    """A curve's held-out loss after `seconds` of training, interpolated; past its last point the run is over, so
    its final loss. None without a finite point."""
    points = [p for p in curve if p.get("eval_loss") is not None and math.isfinite(p["eval_loss"])]
    if not points:
        return None
    if seconds <= points[0]["train_seconds"]:
        return points[0]["eval_loss"]
    for a, b in zip(points, points[1:]):
        if seconds <= b["train_seconds"]:
            share = (seconds - a["train_seconds"]) / (b["train_seconds"] - a["train_seconds"])
            return a["eval_loss"] + share * (b["eval_loss"] - a["eval_loss"])
    return points[-1]["eval_loss"]


def final_loss(curve: list[dict]) -> float | None:
    """The last finite held-out loss of a curve, or None."""
    losses = [p.get("eval_loss") for p in curve]
    losses = [x for x in losses if x is not None and math.isfinite(x)]
    return losses[-1] if losses else None


def spread(values: list[float | None]) -> dict[str, Any]:
    """min, median and max of the values that are not None, how many those are, and all values in order."""
    known = [v for v in values if v is not None]
    if not known:
        return {"min": None, "median": None, "max": None, "n": 0, "values": values}
    return {"min": min(known), "median": statistics.median(known), "max": max(known), "n": len(known),
            "values": values}


def equal_loss(guide: dict, run: dict) -> dict[str, Any]:
    """One repeat: the guide's final held-out loss as the target, each run's seconds to it and the speed-up (None
    when the candidate never reaches it, or when the guide learned nothing: a target no lower than its start)."""
    target = final_loss(guide["curve"])
    out = {"target": target, "guide_seconds": None, "seconds": None, "speedup": None, "reached": False,
           "loss_at_guide_seconds": loss_at_seconds(run["curve"], guide["seconds"]),
           "per_pass_speedup": guide["seconds"] / run["seconds"] if run["seconds"] > 0 else None}
    if target is None:
        return out
    out["guide_seconds"] = seconds_to_loss(guide["curve"], target)
    out["seconds"] = seconds_to_loss(run["curve"], target)
    out["reached"] = out["seconds"] is not None
    start = guide["curve"][0].get("eval_loss")
    learned = start is not None and target < start
    if learned and out["reached"] and out["guide_seconds"] and out["seconds"] > 0:
        out["speedup"] = out["guide_seconds"] / out["seconds"]
    return out


def matmul_share(stage: str, params: int, tokens: int, seconds: float, peak: dict) -> dict[str, float | None]:
    """Nominal training work per second (6 x parameters x tokens for SFT, 8 x for DPO) and its share of each peak."""
    gflops = (6 if stage == "sft" else 8) * params * tokens / seconds / 1e9
    bf16 = gflops / peak["bf16"] if peak.get("bf16") else None
    return {"gflops": gflops, "fp32": gflops / peak["fp32"], "bf16": bf16}


def summarize(stage: str, guide_runs: list[dict], runs: dict[str, list[dict]], params: int, peak: dict) -> dict:
    """A stage's report: each variant's spread over repeats, each candidate against the guide repeat by repeat,
    and the winner (highest median equal-loss speed-up among those that always reached the target)."""
    def variant(rs: list[dict]) -> dict:
        seconds = spread([r["seconds"] for r in rs])
        return {"seconds": seconds, "steps": rs[0]["steps"], "peak_mib": max(r["peak_mib"] for r in rs),
                "final_eval_loss": spread([final_loss(r["curve"]) for r in rs]), "settings": rs[0]["settings"],
                "speed_ups": rs[0]["speed_ups"], "curves": [r["curve"] for r in rs],
                "matmul_share": matmul_share(stage, params, rs[0]["tokens"], seconds["median"], peak)}

    out: dict[str, Any] = {"tokens": guide_runs[0]["tokens"], "guide": variant(guide_runs), "candidates": {}}
    for name, rs in runs.items():
        pairs = [equal_loss(g, r) for g, r in zip(guide_runs, rs)]
        speedups = [p["speedup"] for p in pairs]
        out["candidates"][name] = {**variant(rs), "per_repeat": pairs, "reached": all(p["reached"] for p in pairs),
                                   "equal_loss_speedup": {**spread(speedups), "median": statistics.median(speedups)
                                                          if None not in speedups else None},
                                   "per_pass_speedup": spread([p["per_pass_speedup"] for p in pairs]),
                                   "loss_at_equal_time": spread([p["loss_at_guide_seconds"] for p in pairs])}
    cands = out["candidates"]
    eligible = [n for n, c in cands.items() if c["reached"] and c["equal_loss_speedup"]["median"] is not None]
    if eligible:
        winner = max(eligible, key=lambda n: cands[n]["equal_loss_speedup"]["median"])
        why = "highest median speed-up at equal held-out loss among the candidates that reached the target"
    else:
        winner = min(cands, key=lambda n: cands[n]["loss_at_equal_time"]["median"] or math.inf) if cands else None
        why = f"no candidate reached the target in every repeat; lowest held-out loss at equal time ({NEVER})"
    out.update(recommended=winner, why=why, lost=sorted(n for n in cands if n != winner))
    if winner:
        w = cands[winner]
        out["equal_loss"] = {**w["equal_loss_speedup"], "reached": w["reached"], "repeats": len(w["per_repeat"]),
                             "target": spread([p["target"] for p in w["per_repeat"]])}
        out["matmul_share_fp32"] = {"guide": out["guide"]["matmul_share"]["fp32"],
                                    "recommended": w["matmul_share"]["fp32"]}
    return out


def fmt(value: float | None, spec: str, none: str = "-") -> str:
    """`value` formatted with `spec`, or `none` where it is None."""
    return none if value is None else format(value, spec)


def table(report: dict) -> list[str]:
    """The printed table: per stage, the guide and each candidate (medians, [min-max] over repeats), the winner."""
    lines = [f"{'stage':6}{'variant':22}{'train s':>9}{'final loss':>11}{'s to target':>12}{'equal-loss x':>22}"
             f"{'loss at equal s':>16}{'% fp32 peak':>12}  reached"]
    for stage in (s for s in STAGES if s in report):
        r = report[stage]
        g = r["guide"]
        lines.append(f"{stage:6}{'guide':22}{fmt(g['seconds']['median'], '9.1f')}"
                     f"{fmt(g['final_eval_loss']['median'], '11.3f')}{'':>12}{'1.00':>22}{'':>16}"
                     f"{fmt(100 * g['matmul_share']['fp32'], '11.1f')}%")
        for name, c in r["candidates"].items():
            eq = c["equal_loss_speedup"]
            times = spread([p["seconds"] for p in c["per_repeat"]])["median"]
            speedup = f"{fmt(eq['median'], '.2f', 'none')} [{eq['min']:.2f}-{eq['max']:.2f}]" if eq["n"] else "none"
            mark = "*" if name == r["recommended"] else " "
            lines.append(f"{stage:6}{mark + name:22}{fmt(c['seconds']['median'], '9.1f')}"
                         f"{fmt(c['final_eval_loss']['median'], '11.3f')}{fmt(times, '12.1f', 'never'):>12}"
                         f"{speedup:>22}"
                         f"{fmt(c['loss_at_equal_time']['median'], '16.3f')}"
                         f"{fmt(100 * c['matmul_share']['fp32'], '11.1f')}%  {'yes' if c['reached'] else 'no'}")
        for name, why in r.get("skipped", {}).items():
            lines.append(f"{stage:6} {name:21} skipped: {why}")
        lines.append(f"{stage:6}recommended: {r['recommended']} ({r['why']})")
    return lines


def chart(report: dict, path: Path) -> None:
    """Held-out loss against training seconds per stage: the guide and every candidate, every repeat."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = [s for s in STAGES if s in report]
    fig, axes = plt.subplots(1, len(stages), figsize=(5.5 * len(stages), 4.2), squeeze=False)
    for ax, stage in zip(axes[0], stages):
        r = report[stage]
        lines = [("guide", r["guide"], "#888888")]
        lines += [(name, c, f"C{i}") for i, (name, c) in enumerate(r["candidates"].items())]
        for name, v, color in lines:
            for k, curve in enumerate(v["curves"]):
                pts = [p for p in curve if p["eval_loss"] is not None]
                ax.plot([p["train_seconds"] for p in pts], [p["eval_loss"] for p in pts], "o-", ms=3, color=color,
                        lw=2 if name == r["recommended"] else 1, alpha=0.8, label=name if k == 0 else None)
        if r.get("equal_loss"):
            ax.axhline(r["equal_loss"]["target"]["median"], color="#cc6600", lw=0.8, ls="--",
                       label="target: the guide's final loss")
        ax.set(title=f"{stage.upper()}: recommended {r['recommended']}", ylabel="held-out loss (fp32)",
               xlabel="training seconds (evaluation left out)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Run the interleaved benchmark, print the table, write bench.json and bench.png."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", default="sft,dpo", help="comma-separated: sft, dpo")
    parser.add_argument("--candidates", default=DEFAULT_CANDIDATES, help="comma-separated names, or 'all' (--list)")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved rounds: guide, candidates, guide, ...")
    parser.add_argument("--sft-examples", type=int, default=128, help="SFT conversations in the pass")
    parser.add_argument("--dpo-examples", type=int, default=48, help="DPO pairs in the pass")
    parser.add_argument("--sft-eval-examples", type=int, default=32, help="held-out SFT conversations")
    parser.add_argument("--dpo-eval-examples", type=int, default=16, help="held-out DPO pairs")
    parser.add_argument("--evaluations", type=int, default=4, help="held-out evaluations per pass after the start")
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--out", type=Path, default=None, help="folder for bench.json and bench.png")
    parser.add_argument("--list", action="store_true", help="print the candidates and exit")
    opts = parser.parse_args(argv)
    if opts.list:
        for name, c in CANDIDATES.items():
            print(f"{name:22} {candidate_settings(c['stage'], c)} speed_ups={bool(c.get('speed_ups'))}")
        return 0
    stages = [s for s in opts.stages.split(",") if s]
    names = list(CANDIDATES) if opts.candidates == "all" else [n for n in opts.candidates.split(",") if n]
    unknown = [n for n in names if n not in CANDIDATES] + [s for s in stages if s not in STAGES]
    if unknown or opts.repeats < 1:
        parser.error(f"unknown {unknown} or repeats < 1; candidates: {', '.join(CANDIDATES)}")
    out = (opts.out or outputs_dir() / "bench").resolve()
    out.mkdir(parents=True, exist_ok=True)
    device, started = pick_device(), time.perf_counter()
    peak = precision_probe(device)
    print(f"matmul probe on {device}: fp32 {peak['fp32']:.0f} GFLOP/s, bf16 {fmt(peak['bf16'], '.0f', 'n/a')} "
          f"({peak['bf16_note']})", flush=True)
    report: dict[str, Any] = {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                              "machine": describe(), "device": device, "model": opts.model,
                              "matmul_gflops": peak, "repeats": opts.repeats, "evaluations": opts.evaluations,
                              "eval_precision": "fp32 weights, fp32 forward", "args": vars(opts) | {"out": str(out)}}
    for stage in stages:
        n, n_eval = (opts.sft_examples, opts.sft_eval_examples) if stage == "sft" else (opts.dpo_examples,
                                                                                          opts.dpo_eval_examples)
        mine = [c for c in names if CANDIDATES[c]["stage"] == stage]
        skipped = {c: why for c in mine if (why := unavailable(CANDIDATES[c], device))}
        runs: dict[str, list[dict]] = {"guide": [], **{c: [] for c in mine if c not in skipped}}
        for rep in range(opts.repeats):
            for variant in runs:
                spec = {"stage": stage, "variant": variant, "model": opts.model, "device": device, "examples": n,
                        "eval_examples": n_eval, "evaluations": opts.evaluations}
                r = in_fresh_process(run_variant, spec, timeout=3600)
                if "error" in r:
                    raise RuntimeError(f"{stage} {variant} failed: {r['error']}\n{r.get('traceback', '')}")
                runs[variant].append(r)
                curve = " ".join(f"{fmt(p['eval_loss'], '.3f')}@{p['train_seconds']:.0f}s" for p in r["curve"])
                print(f"{stage} round {rep + 1} {variant:22} {r['seconds']:6.1f} s  {r['steps']:3d} steps  "
                      f"peak {r['peak_mib']:.0f} MiB (+{r['eval_seconds']:.0f} s evaluation)  {curve}", flush=True)
        report["parameters"] = params = runs["guide"][0]["parameters"]
        report[stage] = summarize(stage, runs.pop("guide"), runs, params, peak)
        report[stage].update(examples=n, eval_examples=n_eval, skipped=skipped)
    report["seconds"] = time.perf_counter() - started
    write_json(out / "bench.json", report)
    chart(report, out / "bench.png")
    print("\n".join(["", *table(report), f"wrote {out / 'bench.json'} and {out / 'bench.png'}"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
