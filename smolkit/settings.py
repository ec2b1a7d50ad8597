"""Training settings as TRL config values: the guide's as written, and the course's measured fast ones."""

from __future__ import annotations

import dataclasses
from typing import Any

from smolkit.hardware import mixed_precision
from smolkit.profiles import PROFILES

STAGES = ("sft", "dpo")

# The guide's TrainingArguments, as written (its output, logging and saving settings left out).
GUIDE_ARGS: dict[str, dict[str, Any]] = {
    "sft": {"per_device_train_batch_size": 4, "learning_rate": 5e-5, "bf16": False, "fp16": False,
            "dataloader_num_workers": 0},
    "dpo": {"per_device_train_batch_size": 2, "learning_rate": 1e-6, "bf16": False, "fp16": False,
            "dataloader_num_workers": 0},
}


def config_class(stage: str) -> Any:
    """SFTConfig or DPOConfig for a stage name."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; choose one of {', '.join(STAGES)}")
    from trl import DPOConfig, SFTConfig

    return SFTConfig if stage == "sft" else DPOConfig


def guide_config(stage: str, output_dir: str, **overrides: Any) -> Any:
    """The guide's settings as written: its values on TrainingArguments defaults, as the TRL config TRL needs."""
    import torch
    from transformers import TrainingArguments

    fields = {f.name for f in dataclasses.fields(TrainingArguments)}
    values = {**GUIDE_ARGS[stage], "report_to": "none", "save_strategy": "no", **overrides}
    if not torch.cuda.is_available():
        values.setdefault("use_cpu", True)
    # SFTTrainer turns TrainingArguments into SFTConfig exactly like this; DPOTrainer refuses TrainingArguments,
    # so the same translation is the guide's intent on current TRL (TrainingArguments defaults, not TRL's).
    plain = TrainingArguments(output_dir=output_dir, **{k: v for k, v in values.items() if k in fields})
    extra = {k: v for k, v in values.items() if k not in fields}
    return config_class(stage)(**{**plain.to_dict(), **extra})


def recommended_settings(stage: str, device: str) -> dict[str, Any]:
    """The course's measured fast settings for a stage on a device (see `make bench` and notebook 04).

    They are config fields only. On a CPU, `make bench` and notebook 04 pair them with
    `smolkit.speed.speed_up(model, device)`, which reaches what no field does.
    """
    config_class(stage)
    cuda = device.startswith("cuda")
    settings: dict[str, Any] = {
        **mixed_precision(device),  # bf16 on GPUs that have it, else fp16; on CPUs bf16 only where it measures faster
        "activation_checkpointing": False,  # recomputing activations costs ~30% time; 135M fits without it
        "dataloader_num_workers": 2 if cuda else 0,  # on a 2-core CPU, workers steal the cores training needs
        "dataloader_pin_memory": cuda,
    }
    if stage == "sft":
        # Padding-free batches: the examples of a batch are concatenated into one row, so no token is padding.
        # With speed_up's packed attention the row's documents do not attend to each other, so a bigger
        # batch costs no extra attention; 16 halves the per-step work (optimizer, clipping) of batches of 8.
        settings.update(padding_free=True, max_length=None,
                        per_device_train_batch_size=PROFILES["default"].sft_batch_size)
    else:
        # Batches of pairs of similar length (built by smolkit.lengths.group_by_length, kept in order): little
        # padding. The reference is a frozen copy: precomputing its log-probs costs the same forward passes on a
        # single pass over the data, and only pays when training goes over the data more than once.
        settings.update(per_device_train_batch_size=PROFILES["default"].dpo_batch_size,
                        train_sampling_strategy="sequential", precompute_ref_log_probs=False)
    return settings
