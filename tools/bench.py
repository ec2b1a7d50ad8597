"""`make bench`: the guide's training settings against the course's recommended ones, on the same job.

For SFT and for DPO, the same examples are trained for one pass with (A) the guide's settings as written and
(B) `smolkit.train.recommended_settings` for this machine plus `smolkit.speed.speed_up`, interleaved A, B, A, B
so that a noisy neighbour hurts both; each variant's best run counts (its median is kept too). Every run has a
fresh process of its own, so the speed-ups of B never reach A and each peak memory is its own. Printed and
written to outputs/bench/bench.json (+ bench.png): wall time of the job, step time, tokens/s (only tokens that
carry loss, the same count for A and B), peak memory, the speed-up, and the fraction of this machine's measured
matmul peak that training reaches (nominal work, 6 x parameters per token for SFT and 8 for DPO, over wall time).
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from smolkit import describe, load_model, outputs_dir, use_template
from smolkit.data import load_preferences, load_sft
from smolkit.hardware import matmul_gflops, pick_device
from smolkit.measure import in_fresh_process, track
from smolkit.paths import atomic_write_text
from smolkit.profiles import PROFILES
from smolkit.speed import speed_up
from smolkit.train import group_by_length, guide_config, loss_token_count, recommended_settings, token_ids


def all_tokens(stage: str, dataset, tokenizer) -> int:
    """Non-padding tokens a pass over the data runs through the model (prompt and answers)."""
    if stage == "sft":
        return sum(len(token_ids(tokenizer, m)) for m in dataset["messages"])
    return sum(len(token_ids(tokenizer, r["prompt"] + r[k])) for r in dataset for k in ("chosen", "rejected"))


def job(stage: str, n: int, tokenizer):
    """The benchmark's job: the first `n` examples of the shuffled training split, only the columns TRL reads."""
    data = (load_sft if stage == "sft" else load_preferences)(split="train").shuffle(seed=0)
    data = data.select(range(min(n, len(data))))
    return data.select_columns(["messages"] if stage == "sft" else ["prompt", "chosen", "rejected"])


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
        result = run_once(spec["stage"], spec["variant"], base, tokenizer, data, spec["device"], Path(spec["work"]))
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


def run_once(stage: str, variant: str, base, tokenizer, dataset, device: str, workdir: Path) -> dict:
    """Train one pass over `dataset` with one variant's settings; return its measurements."""
    from trl import DPOTrainer, SFTTrainer

    common = {"num_train_epochs": 1, "max_steps": -1, "logging_steps": 10, "seed": 0, "report_to": "none",
              "save_strategy": "no", "disable_tqdm": True}
    if stage == "sft":
        common["assistant_only_loss"] = True  # the course's objective, for both: loss on the answers only
    if variant == "guide":
        config = guide_config(stage, str(workdir / variant), **common)
    else:
        fast = recommended_settings(stage, device)
        rate = getattr(PROFILES["default"], f"{stage}_learning_rate")  # scaled with the batch, as the notebooks do
        config = guide_config(stage, str(workdir / variant), **{**common, **fast, "learning_rate": rate})
    if variant == "recommended" and config.train_sampling_strategy == "sequential":  # batches of similar length
        dataset = group_by_length(dataset, tokenizer, config.per_device_train_batch_size, seed=0)
    model = copy.deepcopy(base)
    if stage == "sft":
        trainer = SFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer)
    else:
        ref = None if config.precompute_ref_log_probs else copy.deepcopy(base).eval().requires_grad_(False)
        trainer = DPOTrainer(model=model, ref_model=ref, args=config, train_dataset=dataset,
                             processing_class=tokenizer)
    gc.collect()
    with track(device) as m:
        result = trainer.train()
    settings = {k: getattr(config, k) for k in (
        "per_device_train_batch_size", "gradient_accumulation_steps", "bf16", "gradient_checkpointing",
        "dataloader_num_workers", "train_sampling_strategy", "optim")}
    for key in ("padding_free", "precompute_ref_log_probs", "max_length"):
        settings[key] = getattr(config, key, None)
    settings["optim"] = str(settings["optim"]).split(".")[-1]
    del trainer, model
    gc.collect()
    return {"seconds": m["seconds"], "peak_mib": m["peak_mib"], "steps": result.global_step,
            "step_seconds": m["seconds"] / max(result.global_step, 1), "training_loss": result.training_loss,
            "settings": settings}


def summarize(stage: str, runs: dict, loss_tokens: int, tokens: int, params: int, peak: dict) -> dict:
    """Best run per variant (the one least disturbed by other work), the speed-up, tokens/s, matmul-peak fraction."""
    flops_per_token = (6 if stage == "sft" else 8) * params  # DPO adds a forward of the reference
    out = {"loss_tokens": loss_tokens, "tokens": tokens}
    for variant, rs in runs.items():
        wall = min(r["seconds"] for r in rs)
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
        }
    out["speedup"] = out["guide"]["wall_seconds"] / out["recommended"]["wall_seconds"]
    return out


def chart(report: dict, path: Path) -> None:
    """Wall time of the job, guide vs recommended, per stage."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = [s for s in ("sft", "dpo") if s in report]
    fig, axes = plt.subplots(1, len(stages), figsize=(4.2 * len(stages), 3.4), squeeze=False)
    for ax, stage in zip(axes[0], stages):
        r = report[stage]
        walls = [r["guide"]["wall_seconds"], r["recommended"]["wall_seconds"]]
        bars = ax.bar(["guide as written", "recommended"], walls, color=["#999999", "#2a7ab9"])
        ax.bar_label(bars, [f"{w:.0f} s" for w in walls])
        ax.set_title(f"{stage.upper()}: {r['speedup']:.2f}x faster, same job")
        ax.set_ylabel("wall time for one pass (s)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    """Run the A/B benchmark and write outputs/bench/bench.json and bench.png."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sft-examples", type=int, default=192, help="SFT conversations in the job")
    parser.add_argument("--dpo-examples", type=int, default=64, help="DPO pairs in the job")
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
                    "matmul_gflops": peak, "repeats": opts.repeats}
    started = time.perf_counter()
    for stage in opts.stages.split(","):
        n = opts.sft_examples if stage == "sft" else opts.dpo_examples
        data = job(stage, n, tokenizer)
        loss_tokens, tokens = loss_token_count(stage, data, tokenizer), all_tokens(stage, data, tokenizer)
        runs: dict[str, list] = {"guide": [], "recommended": []}
        for rep in range(opts.repeats):
            for variant in ("guide", "recommended"):
                r = run_in_child({"stage": stage, "variant": variant, "model": opts.model, "device": device,
                                  "examples": n, "work": str(out_dir / "work")})
                runs[variant].append(r)
                print(f"{stage} round {rep + 1} {variant:12s} {r['seconds']:7.1f} s  {r['steps']:4d} steps  "
                      f"{r['step_seconds']:5.2f} s/step  peak {r['peak_mib']:.0f} MiB  loss {r['training_loss']:.3f}",
                      flush=True)
        report[stage] = summarize(stage, runs, loss_tokens, tokens, params, peak)
        report[stage]["examples"] = len(data)
    report["matmul_peak_fraction"] = report.get("sft", report.get("dpo", {})).get("recommended", {}).get(
        "matmul_peak_fraction")
    report["total_seconds"] = time.perf_counter() - started
    atomic_write_text(out_dir / "bench.json", json.dumps(report, indent=2, default=str))
    chart(report, out_dir / "bench.png")
    print()
    print(f"{'':6s}{'variant':14s}{'wall s':>8s}{'s/step':>8s}{'loss tok/s':>11s}{'peak MiB':>10s}"
          f"{'% matmul peak':>15s}")
    for stage in opts.stages.split(","):
        r = report[stage]
        for variant in ("guide", "recommended"):
            v = r[variant]
            print(f"{stage:6s}{variant:14s}{v['wall_seconds']:8.1f}{v['step_seconds']:8.2f}"
                  f"{v['loss_tokens_per_second']:11.1f}{v['peak_mib']:10.0f}{100 * v['matmul_peak_fraction']:14.1f}%")
        print(f"{stage:6s}speed-up (guide wall / recommended wall): {r['speedup']:.2f}x "
              f"on {r['examples']} examples, {r['loss_tokens']} loss tokens")
    for stage in opts.stages.split(","):
        for line in report[stage]["recommended"]["speed_ups"]:
            print(f"{stage} recommended also: {line}")
    print(f"wrote {out_dir / 'bench.json'} and {out_dir / 'bench.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
