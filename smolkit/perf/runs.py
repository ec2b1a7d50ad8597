"""Time and peak memory of a block of work, and training runs measured in a fresh process each."""

from __future__ import annotations

import multiprocessing as mp
import queue as queues
import signal
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psutil
import torch

MIB = 2**20


def resident_mib() -> float:
    """This process's resident memory right now, in MiB."""
    return psutil.Process().memory_info().rss / MIB


def lifetime_peak_mib() -> float | None:
    """The kernel's count of this process's highest resident memory so far (getrusage), in MiB; None on Windows."""
    try:
        import resource
    except ImportError:
        return None
    raw = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return raw / MIB if psutil.MACOS else raw / 1024  # bytes on macOS, KiB elsewhere


@contextmanager
def track(device: str = "cpu", interval: float = 0.005) -> Iterator[dict[str, Any]]:
    """Time and peak memory of a block: the yielded dict gets seconds, start_mib, peak_mib and peak_source."""
    # CPU: where the kernel's lifetime peak rose during the block, that is the block's peak ("kernel", exact);
    # otherwise an earlier peak hides it, and the highest resident size a sampler thread saw is used ("sampled").
    # CUDA: the allocator's peak of tensors, reset at the start.
    result: dict[str, Any] = {"device": device}
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        result["start_mib"], start = torch.cuda.memory_allocated() / MIB, time.perf_counter()
        try:
            yield result
        finally:
            torch.cuda.synchronize()
            result.update(seconds=time.perf_counter() - start, peak_source="cuda allocator",
                          peak_mib=torch.cuda.max_memory_allocated() / MIB)
        return
    process, before, stop = psutil.Process(), lifetime_peak_mib(), threading.Event()
    seen = [process.memory_info().rss]
    result["start_mib"] = seen[0] / MIB

    def sample() -> None:
        """Keep the highest resident size seen, every `interval` seconds until the block ends."""
        while not stop.wait(interval):
            seen[0] = max(seen[0], process.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    try:
        yield result
    finally:
        result["seconds"] = time.perf_counter() - start
        stop.set()
        sampler.join()
        seen[0] = max(seen[0], process.memory_info().rss)
        after = lifetime_peak_mib()
        rose = before is not None and after is not None and after > before
        result.update(peak_mib=after if rose else seen[0] / MIB, peak_source="kernel" if rose else "sampled")


# What the fork server imports before any run: the libraries every training run needs (none touches a device).
PRELOAD = ("torch", "transformers", "datasets", "peft", "trl", "trl.trainer.sft_trainer", "trl.trainer.dpo_trainer",
           "transformers.models.llama.modeling_llama", "smolkit.models", "smolkit.data", "smolkit.perf.runs")


def in_fresh_process(body: Callable[[dict], dict], spec: dict[str, Any], timeout: float,
                     poll: float = 0.5) -> dict[str, Any]:
    """`body(spec)` in a fresh process: its dict, or {"error", "traceback"}; raises at once if the process dies."""
    # Forked from a server that has imported the training libraries (a run does not pay for them), else spawned.
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(list(PRELOAD))
    else:
        ctx = mp.get_context("spawn")
    results = ctx.Queue()
    child = ctx.Process(target=_child, args=(body, spec, results))
    child.start()
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                return results.get(timeout=poll)
            except queues.Empty:
                pass
            if not child.is_alive():  # it may have put its result just before it ended
                try:
                    return results.get(timeout=poll)
                except queues.Empty:
                    raise RuntimeError(f"the child process running {describe_spec(spec)} died with "
                                       f"{exit_reason(child.exitcode)} before it reported a result") from None
            if time.monotonic() > deadline:
                raise TimeoutError(f"the child process running {describe_spec(spec)} gave no result in {timeout:.0f} s")
    finally:
        child.join(timeout=5)
        if child.is_alive():
            child.kill()
            child.join()


def _child(body: Callable[[dict], dict], spec: dict, results: Any) -> None:
    """A fresh process's life: quiet libraries, then `body(spec)` or its error and traceback onto the queue."""
    import os
    import traceback
    import warnings

    os.environ["TQDM_DISABLE"] = "1"  # the parent prints one line per run; progress bars would bury it
    warnings.filterwarnings("ignore")
    try:
        import datasets
        import transformers

        datasets.disable_progress_bars()
        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
        results.put(body(spec))
    except BaseException as err:  # the parent raises it, with the child's traceback
        results.put({"error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()})


def exit_reason(code: int | None) -> str:
    """A child's exit code in words: 'exit code 1', or 'signal 9 (SIGKILL; often the out-of-memory killer)'."""
    if code is None or code >= 0:
        return f"exit code {code}"
    name = signal.Signals(-code).name
    return f"signal {-code} ({name}{'; often the out-of-memory killer' if name == 'SIGKILL' else ''})"


def describe_spec(spec: dict[str, Any]) -> str:
    """A child's job in a few words for error messages: its stage, variant, settings and steps."""
    shown = {k: spec[k] for k in ("stage", "variant", "settings", "steps") if k in spec}
    return ", ".join(f"{k}={v!r}" for k, v in shown.items()) or repr(spec)[:200]


def _train_and_measure(spec: dict[str, Any]) -> dict[str, Any]:
    """training_run's child: train spec['steps'] steps of one setting; step time, tokens/s, memory, parameters."""
    from trl import DPOConfig, SFTConfig

    from smolkit.chat import use_template
    from smolkit.data import load_preferences, load_sft
    from smolkit.models import load_model
    from smolkit.perf.speed import speed_up
    from smolkit.perf.training import TrainingClock, build_trainer, sequence_lengths

    torch.manual_seed(spec["seed"])
    stage, steps, settings, device = spec["stage"], spec["steps"], dict(spec["settings"]), spec["device"]
    baseline = resident_mib()
    model, tokenizer = load_model(spec["model"], device=device, dtype=torch.float32)
    use_template(tokenizer, "guide")
    model.config.use_cache = False
    changes = speed_up(model, device) if spec["speed_ups"] else []
    micro = settings.get("per_device_train_batch_size", 8)
    batch = micro * settings.get("gradient_accumulation_steps", 1)
    data = (load_sft(split="train").select_columns(["messages"]) if stage == "sft" else
            load_preferences(split="train").select_columns(["prompt", "chosen", "rejected"]))
    data = data.select(range(batch * steps))
    lengths = [sequence_lengths(row, tokenizer) for row in data]
    micro_batches = [sum(lengths[i:i + micro], []) for i in range(0, len(lengths), micro)]
    # What the model runs through: each micro-batch padded to its longest sequence, unless padding-free
    processed = sum(sum(m) if settings.get("padding_free") else len(m) * max(m) for m in micro_batches)
    peft_config = None
    if spec["lora"]:
        from peft import LoraConfig

        peft_config = LoraConfig(task_type="CAUSAL_LM", **spec["lora"])
    if stage == "dpo" and spec["reference"] == "precompute":
        settings["precompute_ref_log_probs"] = True
    clock = TrainingClock()
    with tempfile.TemporaryDirectory() as tmp:
        fixed = {"output_dir": tmp, "max_steps": steps, "report_to": "none", "save_strategy": "no",
                 "train_sampling_strategy": "sequential", "disable_tqdm": True, "use_cpu": device == "cpu",
                 "logging_steps": steps, "seed": spec["seed"], "activation_checkpointing": False,
                 "bf16": False, "fp16": False}  # fp32 unless a setting says otherwise (TRL's default is bf16)
        config_class, stage_defaults = ((SFTConfig, {"assistant_only_loss": True}) if stage == "sft" else
                                        (DPOConfig, {"max_length": 512}))
        config = config_class(**{**stage_defaults, **fixed, **settings})
        trainer = build_trainer(model, tokenizer, config, data, peft_config=peft_config, callbacks=[clock])
        with track(device) as memory:
            trainer.train()
        trainable, params = trainer.model.num_parameters(only_trainable=True), trainer.model.num_parameters()
    step = statistics.median(clock.step_times[1:] or clock.step_times)  # the first step pays for warm-up
    tokens = sum(map(sum, lengths))
    return {"stage": stage, "steps": steps, "seconds": memory["seconds"], "step_seconds": step,
            "step_times": clock.step_times, "tokens": tokens, "tokens_per_second": tokens / steps / step,
            "processed_tokens_per_micro_batch": processed / len(micro_batches), "baseline_mib": baseline,
            "peak_mib": memory["peak_mib"], "peak_source": memory["peak_source"],
            "training_mib": memory["peak_mib"] - baseline, "trainable": trainable, "parameters": params,
            "batch": batch, "bf16": config.bf16, "speed_ups": changes}


def training_run(stage: str, settings: dict[str, Any], steps: int = 4, *, model: str = "embedded",
                 device: str = "cpu", lora: dict[str, Any] | None = None, reference: str = "copy", seed: int = 0,
                 speed_ups: bool = False, timeout: float = 900) -> dict[str, Any]:
    """Train `steps` steps with `settings` (plus `speed_up` if `speed_ups`) in a fresh process, and measure it."""
    spec = {"stage": stage, "settings": settings, "steps": steps, "model": model, "device": device, "lora": lora,
            "reference": reference, "seed": seed, "speed_ups": speed_ups}
    result = in_fresh_process(_train_and_measure, spec, timeout)
    if "error" in result:
        raise RuntimeError(f"training run {stage} {settings} failed: {result['error']}\n"
                           f"traceback of the child process:\n{result.get('traceback', '')}")
    return result
