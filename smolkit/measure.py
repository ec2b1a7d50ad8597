"""Time and peak memory of a piece of work, on CPU (resident set) or GPU (allocator)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

_STATUS = "/proc/self/status"


def _vm_hwm_mib() -> float | None:
    """This process's peak resident memory in MiB since the last reset (Linux), else None."""
    try:
        with open(_STATUS, encoding="utf-8") as fh:
            match = re.search(r"VmHWM:\s+(\d+)\s+kB", fh.read())
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
    peak = _vm_hwm_mib()
    if peak is None:  # macOS and others: the lifetime peak, in bytes on macOS and KiB elsewhere
        import resource
        import sys

        raw = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak = raw / 2**20 if sys.platform == "darwin" else raw / 1024
    return peak


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
