"""What machine this is and what suits it: device, precision, the memory training needs, settings per target."""

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


# ---------------------------------------------------------------------------------------------
# What training needs of a machine: memory, and settings per target

# Published architectures of the two SmolLM2 sizes the course uses (parameters are counted, not typed).
ARCHITECTURES: dict[str, dict[str, int]] = {
    "SmolLM2-135M": {"hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
                     "num_attention_heads": 9, "num_key_value_heads": 3, "vocab_size": 49152},
    "SmolLM2-1.7B": {"hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 24,
                     "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 49152},
}


def architecture_parameters(name: str) -> int:
    """Parameter count of one of ARCHITECTURES, counted on a model built on the meta device (no memory)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    with torch.device("meta"):
        model = LlamaForCausalLM(LlamaConfig(tie_word_embeddings=True, **ARCHITECTURES[name]))
    return sum(p.numel() for p in model.parameters())


def estimate_memory(params: int, trainable: int, tokens: int, *, hidden_size: int, intermediate_size: int,
                    num_hidden_layers: int, num_key_value_heads: int, num_attention_heads: int,
                    weight_bytes: int = 4, checkpointing: bool = False, reference_copy: bool = False,
                    **_: Any) -> dict[str, float]:
    """Training memory in MiB: weights, gradients, AdamW states, activations (and a DPO reference copy)."""
    mib = 2**20
    kv = hidden_size * num_key_value_heads // num_attention_heads
    # Tensors one decoder layer keeps per token for the backward pass: norms, q/k/v, attention output,
    # residuals (about 6 x hidden + 2 x kv) and the MLP's gate, up, activation and product (4 x intermediate).
    per_token_layer = 6 * hidden_size + 2 * kv + 4 * intermediate_size
    kept_layers = 1 if checkpointing else num_hidden_layers
    activation_floats = tokens * (per_token_layer * kept_layers + 2 * hidden_size * num_hidden_layers)
    parts = {
        "weights": params * weight_bytes / mib,
        "gradients": trainable * 4 / mib,
        "optimizer": trainable * 8 / mib,  # AdamW: two fp32 moments per trainable parameter
        "activations": activation_floats * 4 / mib,
    }
    if reference_copy:
        parts["reference"] = params * weight_bytes / mib
    parts["total"] = sum(parts.values())
    return parts


# Memory of each target in GiB (None: this machine's, measured), and its fast mixed precision.
TARGETS: dict[str, dict[str, Any]] = {
    "this CPU": {"memory_gib": None, "precision": "cpu"},
    "Apple MPS (16 GB)": {"memory_gib": 16, "precision": "fp32"},
    "T4 16 GB": {"memory_gib": 16, "precision": "fp16"},  # compute capability 7.5: no bf16
    "A100/H100 80 GB": {"memory_gib": 80, "precision": "bf16"},
}


def setup_for(target: str, params: int, shape: dict[str, int], memory_gib: float, cpu_bf16: bool = False,
              tokens_per_example: int = 64) -> dict[str, Any]:
    """SFT and DPO settings for a target and a model size, chosen from the memory estimate; with the reasons."""
    gpu = target not in ("this CPU", "Apple MPS (16 GB)")
    precision = TARGETS[target]["precision"]
    if precision == "cpu":
        precision = "bf16" if cpu_bf16 else "fp32"
    budget = 0.8 * memory_gib * 1024  # leave a fifth for the runtime, the allocator and the data
    batch = 8 if not gpu else (32 if params < 1e9 else 8) if memory_gib >= 40 else (16 if params < 1e9 else 2)
    tokens_per_batch = batch * tokens_per_example
    full = estimate_memory(params, params, tokens_per_batch, weight_bytes=4, reference_copy=True, **shape)
    lora_trainable = int(params * 0.01)
    lora = estimate_memory(params, lora_trainable, tokens_per_batch, weight_bytes=4, **shape)  # fp32, as trained
    reasons = [f"full fine-tuning needs about {full['total'] / 1024:.1f} GiB for DPO with a reference copy "
               f"({full['total'] - full['reference']:.0f} MiB without it); the budget is {budget / 1024:.1f} GiB"]
    use_lora = full["total"] - full["reference"] > budget
    checkpointing = False
    if use_lora:
        reasons.append(f"so train LoRA adapters (~1% of the weights): about {lora['total'] / 1024:.1f} GiB")
        if lora["total"] > budget:
            checkpointing = True
            reasons.append("and recompute activations (activation_checkpointing) to fit")
    reference = "adapter" if use_lora else ("copy" if full["total"] <= budget else "precompute")
    reasons.append({"adapter": "DPO reference: the same model with the adapter switched off (no copy)",
                    "copy": "DPO reference: a frozen copy fits in memory",
                    "precompute": "DPO reference: precompute its log-probs, so no copy stays in memory"}[reference])
    accumulation = max(1, 8 // batch) if params > 1e9 else 1
    sft = {"per_device_train_batch_size": batch, "gradient_accumulation_steps": accumulation,
           "learning_rate": 2e-4 if use_lora else 5e-5, "assistant_only_loss": True,
           "padding_free": True, "max_length": None,
           "bf16": precision == "bf16", "fp16": precision == "fp16",
           "activation_checkpointing": checkpointing, "dataloader_num_workers": 2 if gpu else 0}
    dpo = {"per_device_train_batch_size": max(1, batch // 2), "gradient_accumulation_steps": accumulation,
           "learning_rate": 5e-6 if use_lora else 1e-6, "beta": 0.1, "max_length": 512,
           "precompute_ref_log_probs": reference == "precompute",
           "bf16": precision == "bf16", "fp16": precision == "fp16",
           "activation_checkpointing": checkpointing, "dataloader_num_workers": 2 if gpu else 0}
    if not gpu:
        sft["use_cpu"] = dpo["use_cpu"] = target == "this CPU"
    return {"target": target, "precision": precision, "lora": use_lora, "reference": reference, "sft": sft,
            "dpo": dpo, "estimate_full_mib": full["total"], "estimate_lora_mib": lora["total"],
            "budget_mib": budget, "reasons": reasons}


def config_code(stage: str, settings: dict[str, Any], lora: bool = False) -> str:
    """Runnable Python for a TRL config (and a LoRA config) with these settings."""
    name = "SFTConfig" if stage == "sft" else "DPOConfig"
    lines = [f"{name}(", f'    output_dir="outputs/checkpoints/{stage}",']
    lines += [f"    {key}={value!r}," for key, value in settings.items()]
    lines.append(")")
    code = "\n".join(lines)
    if lora:
        code += '\npeft_config = LoraConfig(task_type="CAUSAL_LM", r=16, lora_alpha=32, target_modules="all-linear")'
    return code
