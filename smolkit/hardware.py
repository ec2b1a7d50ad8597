"""What machine this is, and the device and dtype that suit it."""

from __future__ import annotations

import functools
import os
import platform
import time
from typing import Any

import torch


def pick_device() -> str:
    """The best available device: 'cuda', then 'mps', else 'cpu'."""
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def pick_dtype(device: str) -> torch.dtype:
    """The weight dtype for inference only: bf16 (or fp16) on CUDA, fp32 on MPS and CPU; training weights stay fp32."""
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def mixed_precision(device: str) -> dict[str, bool]:
    """The SFTConfig/DPOConfig precision flags for fp32 weights on a device: bf16, or fp16 with loss scaling.

    CUDA: bf16 where the GPU has it (Ampere and newer), else fp16, which the Trainer pairs with a loss scaler
    (accelerate's `Accelerator.__init__`: `mixed_precision == "fp16"` on a non-CPU device makes a GradScaler).
    CPU: bf16 only where `bf16_training` measures it faster. MPS: off. accelerate 1.15 accepts fp16 autocast on
    MPS with torch >= 2.5 and bf16 with torch >= 2.6 (same function), but the course has not measured either there.
    """
    if device.startswith("cuda"):
        bf16 = torch.cuda.is_bf16_supported()
        return {"bf16": bf16, "fp16": not bf16}
    return {"bf16": device.startswith("cpu") and bf16_training(device), "fp16": False}


def device_name(device: str) -> str:
    """A readable name of the device: the GPU's model, 'Apple MPS', or the CPU's model name."""
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    if device.startswith("mps"):
        return "Apple MPS"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return f"CPU: {line.split(':', 1)[1].strip()}"
    except OSError:
        pass
    return f"CPU: {platform.processor() or platform.machine()}"


def cpu_flags() -> set[str]:
    """CPU feature flags from /proc/cpuinfo (empty where that file does not exist)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_has_fast_bf16() -> bool:
    """True when the CPU has bf16 matrix instructions (AMX or AVX512-BF16)."""
    flags = cpu_flags()
    return bool({"amx_bf16", "avx512_bf16"} & flags)


def describe() -> dict[str, Any]:
    """A summary of this machine: device, cores, memory, CPU bf16 support, GPU name."""
    info: dict[str, Any] = {
        "device": pick_device(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_fast_bf16": cpu_has_fast_bf16(),
        "torch": torch.__version__,
    }
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        info["memory_gib"] = round(pages * page_size / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        info["memory_gib"] = None
    if info["device"] == "cuda":
        props = torch.cuda.get_device_properties(0)
        info["gpu"] = props.name
        info["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
        info["compute_capability"] = f"{props.major}.{props.minor}"
    return info


def matmul_gflops(dtype: torch.dtype = torch.float32, device: str = "cpu", size: int = 2048,
                  seconds: float = 0.5, max_runs: int = 50) -> float:
    """Measured matrix-multiply speed in GFLOP/s: the practical peak that training is compared with.

    The time is capped: at most `max_runs` timed products, none after `seconds`, and when the warm-up product
    alone takes ten times `seconds` (bf16 emulated on a CPU without bf16 instructions) it is the measurement.
    """
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    start = time.perf_counter()
    a @ b  # warm-up: kernels chosen, caches filled
    _sync(device)
    warm_up = time.perf_counter() - start
    if warm_up > 10 * seconds:  # a slow format: more runs would take minutes and say the same
        return 2 * size**3 / warm_up / 1e9
    runs, start = 0, time.perf_counter()
    while runs < max_runs and (runs < 3 or time.perf_counter() - start < seconds):
        a @ b
        runs += 1
        _sync(device)
    return 2 * size**3 * runs / (time.perf_counter() - start) / 1e9


def _sync(device: str) -> None:
    """Wait for queued GPU work, so a timer measures it."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    elif device.startswith("mps"):
        torch.mps.synchronize()


@functools.cache
def bf16_speedup(device: str = "cpu") -> float:
    """How much faster bf16 matmuls run than fp32 on this device, at the shapes of a small model's training."""
    fp32 = matmul_gflops(torch.float32, device, size=1024, seconds=0.3)
    bf16 = matmul_gflops(torch.bfloat16, device, size=1024, seconds=0.3)
    return bf16 / fp32


def bf16_training(device: str) -> bool:
    """Whether to train with bf16 mixed precision: on GPUs that support it; on CPUs only where it measures faster.

    CPUs with AMX run bf16 matmuls about 3x faster than fp32; CPUs with only AVX512-BF16 ran them slower here
    (163 vs 291 GFLOP/s at 2048x2048), and bf16 autocast then slows training down. So a CPU is measured,
    once per process, and bf16 is used only when it is at least 1.5x faster.
    """
    if device.startswith("cuda"):
        return torch.cuda.is_bf16_supported()
    if device.startswith("cpu"):
        return cpu_has_fast_bf16() and bf16_speedup("cpu") >= 1.5
    return False
