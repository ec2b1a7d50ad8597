"""What this machine is and what training needs of a machine: CPU flags, a matmul probe, the memory estimate, and
settings per target device printed as TRL config code."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

import psutil
import torch

from smolkit.profiles import recipe
from smolkit.runtime import device_name, pick_device

BF16_INSTRUCTIONS = ("amx_bf16", "avx512_bf16")  # CPU flags for bf16 matrix products (AMX, or AVX-512 BF16)


def cpu_flags() -> set[str]:
    """CPU feature flags from /proc/cpuinfo (empty where that file does not exist, as on macOS)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith(("flags", "Features")):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def bf16_instructions(flags: set[str] | None = None) -> list[str]:
    """The bf16 matrix instructions this CPU has (AMX, AVX512-BF16); empty: bf16 would be emulated, and slow."""
    return sorted(set(BF16_INSTRUCTIONS) & (cpu_flags() if flags is None else flags))


def describe() -> dict[str, Any]:
    """This machine in a few fields: device and its name, CPU model and vector flags, cores, memory, torch."""
    device = pick_device()
    flags = cpu_flags()
    info: dict[str, Any] = {
        "device": device, "device_name": device_name(device), "cpu": device_name("cpu").removeprefix("CPU: "),
        "cpu_flags": sorted(f for f in flags if f.startswith(("avx", "amx", "fma", "sse4", "neon", "asimd"))),
        "bf16_instructions": bf16_instructions(flags), "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(), "torch": torch.__version__,
    }
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        info.update(gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    compute_capability=f"{props.major}.{props.minor}")
    return info


def matmul_gflops(dtype: torch.dtype = torch.float32, device: str = "cpu", size: int = 2048,
                  seconds: float = 0.5, max_runs: int = 50) -> float:
    """Measured speed of a size x size matrix product in GFLOP/s: the practical peak training is compared with."""
    # At most `max_runs` products and none after `seconds`; a warm-up that alone takes 10 x `seconds` is the answer.
    a, b = (torch.randn(size, size, device=device).to(dtype) for _ in range(2))
    start = time.perf_counter()
    a @ b  # warm-up: kernels chosen, caches filled
    _sync(device)
    warm_up = time.perf_counter() - start
    if warm_up > 10 * seconds:  # an emulated format: more products would take minutes and say the same
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


def precision_probe(device: str = "cpu", size: int = 2048) -> dict[str, Any]:
    """fp32 and bf16 matmul GFLOP/s; bf16 only on GPUs and on CPUs with bf16 instructions (else None, and why)."""
    fp32 = matmul_gflops(torch.float32, device, size)
    if device == "cpu" and not bf16_instructions():
        return {"fp32": fp32, "bf16": None, "bf16_ratio": None,
                "bf16_note": "not probed: no AMX or AVX512-BF16, so bf16 products would be emulated, far slower"}
    bf16 = matmul_gflops(torch.bfloat16, device, size)
    return {"fp32": fp32, "bf16": bf16, "bf16_ratio": bf16 / fp32, "bf16_note": "measured"}


# Published shapes of the two SmolLM2 sizes the course talks about (their parameters are counted, not typed in).
ARCHITECTURES: dict[str, dict[str, int]] = {
    "SmolLM2-135M": {"hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
                     "num_attention_heads": 9, "num_key_value_heads": 3, "vocab_size": 49152},
    "SmolLM2-1.7B": {"hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 24,
                     "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 49152},
}


def architecture_parameters(name: str) -> int:
    """Parameters of one of ARCHITECTURES, counted on a model built on the meta device (no memory used)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    with torch.device("meta"):
        model = LlamaForCausalLM(LlamaConfig(tie_word_embeddings=True, **ARCHITECTURES[name]))
    return model.num_parameters()


def estimate_memory(params: int, trainable: int, tokens: float, *, hidden_size: int, intermediate_size: int,
                    num_hidden_layers: int, num_key_value_heads: int, num_attention_heads: int,
                    weight_bytes: int = 4, checkpointing: bool = False, reference_copy: bool = False,
                    **_: Any) -> dict[str, float]:
    """Training memory in MiB: weights, gradients, AdamW's two moments, activations (and a DPO reference copy)."""
    mib = 2**20
    kv = hidden_size * num_key_value_heads // num_attention_heads
    # Per token, a decoder layer keeps for the backward pass its norms, q/k/v, attention output and residuals
    # (about 6 x hidden + 2 x kv) and the MLP's gate, up, activation and product (4 x intermediate).
    per_token_layer = 6 * hidden_size + 2 * kv + 4 * intermediate_size
    kept_layers = 1 if checkpointing else num_hidden_layers
    activation_floats = tokens * (per_token_layer * kept_layers + 2 * hidden_size * num_hidden_layers)
    parts = {"weights": params * weight_bytes / mib, "gradients": trainable * 4 / mib,
             "optimizer": trainable * 8 / mib, "activations": activation_floats * 4 / mib}
    if reference_copy:
        parts["reference"] = params * weight_bytes / mib
    parts["total"] = sum(parts.values())
    return parts


# Each target's memory in GiB (None: this machine's) and the mixed precision its hardware runs fast.
TARGETS: dict[str, dict[str, Any]] = {
    "this CPU": {"memory_gib": None, "precision": "fp32"},  # bf16 autocast only where measured to pay
    "Apple MPS (16 GB)": {"memory_gib": 16, "precision": "fp32"},  # autocast there is not measured by the course
    "T4 16 GB": {"memory_gib": 16, "precision": "fp16"},  # compute capability 7.5: no bf16
    "A100/H100 80 GB": {"memory_gib": 80, "precision": "bf16"},
}


def setup_for(target: str, params: int, shape: dict[str, int], memory_gib: float, cpu_bf16: bool = False,
              tokens_per_example: int = 64) -> dict[str, Any]:
    """SFT and DPO settings for a target and a model size, chosen from the memory estimate, with the reasons."""
    gpu = TARGETS[target]["precision"] != "fp32"
    precision = "bf16" if target == "this CPU" and cpu_bf16 else TARGETS[target]["precision"]
    budget = 0.8 * memory_gib * 1024  # a fifth left for the runtime, the allocator and the data
    batch = (32 if params < 1e9 else 8) if gpu and memory_gib >= 40 else (16 if params < 1e9 else 2) if gpu else 8
    tokens = batch * tokens_per_example
    full = estimate_memory(params, params, tokens, reference_copy=True, **shape)
    lora = estimate_memory(params, int(params * 0.01), tokens, **shape)  # adapters ~1% of the weights, fp32
    without_copy = full["total"] - full["reference"]
    reasons = [f"full fine-tuning needs about {full['total'] / 1024:.1f} GiB for DPO with a reference copy "
               f"({without_copy / 1024:.1f} GiB without it); the budget is {budget / 1024:.1f} GiB"]
    use_lora, checkpointing = without_copy > budget, False
    if use_lora:
        reasons.append(f"so train LoRA adapters (~1% of the weights): about {lora['total'] / 1024:.1f} GiB")
        if lora["total"] > budget:
            checkpointing = True
            reasons.append("and recompute activations (activation_checkpointing) to fit")
    reference = "adapter" if use_lora else ("copy" if full["total"] <= budget else "precompute")
    reasons.append({"adapter": "DPO reference: the same model with its adapter switched off (no copy)",
                    "copy": "DPO reference: a frozen copy fits in memory",
                    "precompute": "DPO reference: precompute its log-probs, so no copy stays in memory"}[reference])
    accumulation = max(1, 8 // batch) if params > 1e9 else 1
    common = {"gradient_accumulation_steps": accumulation, "bf16": precision == "bf16", "fp16": precision == "fp16",
              "activation_checkpointing": checkpointing, "dataloader_num_workers": 2 if gpu else 0}
    sft = {"per_device_train_batch_size": batch, "learning_rate": 2e-4 if use_lora else 5e-5,
           "assistant_only_loss": True, "padding_free": True, "max_length": None, **common}
    course = recipe("dpo")  # the lessons' DPO (configs/dpo.yaml); LoRA at 4x, SFT's own LoRA ratio (2e-4 / 5e-5)
    dpo = {"per_device_train_batch_size": max(1, batch // 2),
           "learning_rate": course["learning_rate"] * (4 if use_lora else 1), "beta": course["beta"],
           "loss_type": course["loss_type"], "loss_weights": course["loss_weights"], "max_length": 512,
           "precompute_ref_log_probs": reference == "precompute", **common}
    if target == "this CPU":
        sft["use_cpu"] = dpo["use_cpu"] = True
    return {"target": target, "precision": precision, "lora": use_lora, "reference": reference, "sft": sft,
            "dpo": dpo, "estimate_full_mib": full["total"], "estimate_lora_mib": lora["total"],
            "budget_mib": budget, "reasons": reasons}


def config_code(stage: str, settings: dict[str, Any], lora: bool = False) -> str:
    """Runnable Python for the TRL config (and a LoRA config) holding these settings."""
    lines = [f"{'SFTConfig' if stage == 'sft' else 'DPOConfig'}(", f'    output_dir="outputs/checkpoints/{stage}-04",']
    lines += [f"    {key}={value!r}," for key, value in settings.items()]
    code = "\n".join(lines + [")"])
    if lora:
        code += '\npeft_config = LoraConfig(task_type="CAUSAL_LM", r=16, lora_alpha=32, target_modules="all-linear")'
    return code
