"""Time and memory of a piece of work (CPU resident set or GPU allocator), and training runs measured in a fresh
process."""

from __future__ import annotations

import ctypes
import ctypes.util
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

_STATUS = "/proc/self/status"


def _status_mib(field: str) -> float | None:
    """A memory line of /proc/self/status in MiB (VmHWM: peak since the last reset; VmRSS: now), else None."""
    try:
        with open(_STATUS, encoding="utf-8") as fh:
            match = re.search(rf"{field}:\s+(\d+)\s+kB", fh.read())
    except OSError:
        return None
    return int(match.group(1)) / 1024 if match else None


def reset_peak_memory(device: str = "cpu") -> None:
    """Start a new peak-memory window: the GPU allocator's peak, or the process's resident peak on Linux."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return
    try:  # Linux: writing 5 to clear_refs resets VmHWM to the current resident size
        with open("/proc/self/clear_refs", "w", encoding="utf-8") as fh:
            fh.write("5")
    except OSError:
        pass


def peak_memory_mib(device: str = "cpu") -> float | None:
    """Peak memory in MiB since the last reset: GPU tensors on CUDA, whole-process resident set on CPU."""
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    if device.startswith("mps"):
        return torch.mps.driver_allocated_memory() / 2**20  # MPS keeps no peak: this is the current total
    peak = _status_mib("VmHWM")
    if peak is None:  # macOS and others: the lifetime peak, in bytes on macOS and KiB elsewhere
        import resource
        import sys

        raw = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak = raw / 2**20 if sys.platform == "darwin" else raw / 1024
    return peak


def _release_free_heap() -> None:
    """Hand memory that Python and torch have freed back to the OS (glibc only), so RSS shows what is in use."""
    name = ctypes.util.find_library("c")
    try:
        ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError, TypeError):  # not glibc (macOS, musl, Windows): nothing to do
        pass


def resident_mib(device: str = "cpu") -> float | None:
    """Memory in use right now, in MiB: the process's resident set on CPU, allocated tensors on CUDA.

    Read before a stage starts, it is the baseline that the stage's peak (`track`) adds to.
    """
    if not device.startswith(("cuda", "mps")):
        _release_free_heap()
    reset_peak_memory(device)  # a fresh peak window starts at the current level, so its peak is that level
    value = peak_memory_mib(device)
    return None if value is None else round(value, 1)


@contextmanager
def track(device: str = "cpu") -> Iterator[dict[str, Any]]:
    """Measure a block: yields a dict that holds `seconds` and `peak_mib` once the block ends."""
    result: dict[str, Any] = {"device": device}
    reset_peak_memory(device)
    start = time.perf_counter()
    try:
        yield result
    finally:
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        result["seconds"] = time.perf_counter() - start
        peak = peak_memory_mib(device)
        result["peak_mib"] = None if peak is None else round(peak, 1)


# ---------------------------------------------------------------------------------------------
# Training runs measured in a fresh process


def _step_timer() -> Any:
    """A TrainerCallback that keeps each optimizer step's wall time."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.times: list[float] = []
            self._start = 0.0

        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self._start = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.times.append(time.perf_counter() - self._start)

    return StepTimer()


def _training_child(spec: dict[str, Any], queue: Any) -> None:
    """Body of training_run, in the child process: train, time every step, report through the queue."""
    import os
    import warnings

    os.environ["TQDM_DISABLE"] = "1"  # the parent prints one line per run; progress bars would bury it
    warnings.filterwarnings("ignore")
    try:
        import datasets
        import transformers

        datasets.disable_progress_bars()
        transformers.logging.set_verbosity_error()
        queue.put(_train_and_measure(spec))
    except BaseException as err:  # the parent re-raises it with the child's message and traceback
        import traceback

        queue.put({"error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()})


def _train_and_measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Train spec['steps'] steps of one setting and measure step time, tokens/s, memory and trainable parameters."""
    import statistics
    import tempfile

    from smolkit.data import load_preferences, load_sft
    from smolkit.lengths import sequence_lengths
    from smolkit.models import load_model
    from smolkit.settings import config_class
    from smolkit.templates import use_template
    from smolkit.trainer import build_trainer

    torch.manual_seed(spec.get("seed", 0))
    baseline = _status_mib("VmRSS")
    stage, steps, settings = spec["stage"], spec["steps"], dict(spec.get("settings", {}))
    model, tokenizer = load_model(spec.get("model", "embedded"), device="cpu", dtype=torch.float32)
    use_template(tokenizer, "guide")
    model.config.use_cache = False
    if spec.get("speed_ups"):
        from smolkit.speed import speed_up

        speed_up(model, "cpu")
    after_load = _status_mib("VmRSS")
    micro = settings.get("per_device_train_batch_size", 8)
    batch = micro * settings.get("gradient_accumulation_steps", 1)
    if stage == "sft":
        data = load_sft(split="train").select_columns(["messages"])
    else:
        data = load_preferences(split="train").select_columns(["prompt", "chosen", "rejected"])
    data = data.select(range(batch * steps))
    lengths = [sequence_lengths(row, tokenizer) for row in data]
    tokens = sum(map(sum, lengths))
    # What the model really runs through: each micro-batch padded to its longest sequence, unless padding-free
    processed = tokens if settings.get("padding_free") else sum(
        len(sum(lengths[i:i + micro], [])) * max(sum(lengths[i:i + micro], []))
        for i in range(0, len(lengths), micro))
    peft_config = None
    if spec.get("lora"):
        from peft import LoraConfig

        peft_config = LoraConfig(task_type="CAUSAL_LM", **spec["lora"])
    if stage == "dpo" and spec.get("reference", "copy") == "precompute":
        settings["precompute_ref_log_probs"] = True
    with tempfile.TemporaryDirectory() as tmp:
        common = {"output_dir": tmp, "max_steps": steps, "report_to": "none", "save_strategy": "no",
                  "train_sampling_strategy": "sequential", "disable_tqdm": True, "use_cpu": True,
                  "logging_steps": max(steps, 1), "seed": spec.get("seed", 0)}
        stage_defaults = {"assistant_only_loss": True} if stage == "sft" else {"max_length": 512}
        config = config_class(stage)(**{**stage_defaults, **common, **settings})
        trainer = build_trainer(model, tokenizer, config, data, peft_config=peft_config)
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)  # no per-step dicts in the notebook
        timer = _step_timer()
        trainer.add_callback(timer)
        reset_peak_memory("cpu")
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
        peak = peak_memory_mib("cpu")
        trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
        params = sum(p.numel() for p in trainer.model.parameters())
    steady = timer.times[1:] or timer.times  # the first step pays for warm-up
    step = statistics.median(steady)
    return {"stage": stage, "steps": steps, "seconds": seconds, "step_seconds": step, "step_times": timer.times,
            "tokens": tokens, "tokens_per_second": tokens / steps / step, "peak_mib": peak,
            "baseline_mib": baseline, "after_load_mib": after_load,
            "processed_tokens_per_micro_batch": processed / (steps * batch // micro),
            "training_mib": None if peak is None or baseline is None else peak - baseline,
            "trainable": trainable, "parameters": params, "batch": batch,
            "batch_tokens": tokens / steps}


def training_run(stage: str, settings: dict[str, Any], steps: int = 4, *, model: str = "embedded",
                 lora: dict[str, Any] | None = None, reference: str = "copy", seed: int = 0,
                 speed_ups: bool = False, timeout: float = 900) -> dict[str, Any]:
    """Train `steps` steps with `settings` (and `speed.speed_up` if `speed_ups`) in a fresh process; measure it."""
    spec = {"stage": stage, "settings": settings, "steps": steps, "model": model, "lora": lora,
            "reference": reference, "seed": seed, "speed_ups": speed_ups}
    result = in_fresh_process(_training_child, spec, timeout)
    if "error" in result:
        raise RuntimeError(f"training run {stage} {settings} failed: {result['error']}\n"
                           f"traceback of the child process:\n{result.get('traceback', '')}")
    return result


# What the fork server imports before any run: the libraries every training run needs (none touches a device).
PRELOAD = ("torch", "transformers", "datasets", "peft", "trl", "trl.trainer.sft_trainer", "trl.trainer.dpo_trainer",
           "transformers.models.llama.modeling_llama", "smolkit.measure", "smolkit.models", "smolkit.data")


def in_fresh_process(target: Any, spec: dict[str, Any], timeout: float, poll: float = 0.5) -> dict[str, Any]:
    """Run `target(spec, queue)` in a fresh process; return the one dict it puts on the queue, or raise at once.

    The process is forked from a fork server that has only imported the training libraries (started once per
    parent process; a new process per run, nothing of an earlier run in it), so a run does not pay the ~5 s of
    imports again; spawned afresh where the platform has no fork server.
    """
    import multiprocessing as mp
    import queue as queues
    import signal

    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(list(PRELOAD))
    else:
        ctx = mp.get_context("spawn")
    results = ctx.Queue()
    child = ctx.Process(target=target, args=(spec, results))
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
                    code = child.exitcode
                    how = f"exit code {code}"
                    if code is not None and code < 0:
                        name = signal.Signals(-code).name
                        oom = "; often the kernel's out-of-memory killer" if name == "SIGKILL" else ""
                        how = f"signal {-code} ({name}{oom})"
                    raise RuntimeError(f"the child process running {_describe(spec)} died with {how} "
                                       "before it reported a result") from None
            if time.monotonic() > deadline:
                raise TimeoutError(f"the child process running {_describe(spec)} gave no result within {timeout:.0f} s")
    finally:
        child.join(timeout=5)
        if child.is_alive():
            child.kill()
            child.join()


def _describe(spec: dict[str, Any]) -> str:
    """A short description of a child's job for error messages: its stage and settings."""
    shown = {k: spec[k] for k in ("stage", "variant", "settings", "steps") if k in spec}
    return ", ".join(f"{k}={v!r}" for k, v in shown.items()) or repr(spec)[:200]
