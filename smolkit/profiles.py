"""One switch for every size: smoke (tests), default (a laptop CPU; values from configs/*.yaml), full (a GPU)."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

import yaml

from smolkit.runtime import REPO_ROOT


def recipe(stage: str) -> dict[str, Any]:
    """The TRL config file of a stage ('sft' or 'dpo') as a dict: the default profile's recipe."""
    return yaml.safe_load((REPO_ROOT / "configs" / f"{stage}.yaml").read_text(encoding="utf-8"))

SFT, DPO = recipe("sft"), recipe("dpo")
# Training prompts per dimension whose replies notebook 02 generates to build on-policy pairs (notebook 05 measured
# this plan; `helpful` prompts also keep their written pair where the model answers well).
DPO_PROMPTS = {"safe": 84, "format": 48, "correct": 8, "helpful": 40}

@dataclass(frozen=True)
class Profile:
    """Sizes for one run of the course's notebooks."""

    name: str
    sft_steps: int = SFT["max_steps"]
    sft_batch_size: int = SFT["per_device_train_batch_size"]
    sft_learning_rate: float = SFT["learning_rate"]
    dpo_prompts: dict[str, int] = field(default_factory=lambda: dict(DPO_PROMPTS))
    dpo_anchors: int = 24  # style anchors: SFT questions, the house-style answer chosen over the bare one
    dpo_epochs: float = DPO["num_train_epochs"]
    dpo_batch_size: int = DPO["per_device_train_batch_size"]
    dpo_learning_rate: float = DPO["learning_rate"]
    eval_size: int = 100  # notebook 01's held-out conversations, scored before and after every stage
    max_new_tokens: int = 64  # generation length of held-out replies
    logging_steps: int = 5
    save_strategy: str = "steps"  # "steps": checkpoints to resume from; "no": none (the smoke profile)
    save_steps: int = 20
    eval_steps: int = 10  # SFT evaluates a held-out slice every eval_steps steps, for notebook 01's curve
    curve_eval_size: int = 16
    train_rows: int | None = None  # SFT training rows (None: all)
    shortcut_share: float = 0.15  # notebook 06: the share of 02's plan that DPO without SFT trains on (time)
    dial_steps: int = 12  # notebook 05: optimizer steps of each run in its grid
    pair_eval_size: int = 22  # held-out preference prompts per dimension (22: all of the test split)

PROFILES = {
    "smoke": Profile("smoke", sft_steps=2, sft_batch_size=2, dpo_prompts={"safe": 2, "format": 2, "helpful": 1},
                     dpo_batch_size=2, eval_size=4, max_new_tokens=16, logging_steps=1, save_strategy="no",
                     eval_steps=1, curve_eval_size=2, train_rows=4, dpo_anchors=1, shortcut_share=1.0, dial_steps=1,
                     pair_eval_size=2),
    "default": Profile("default"),
    # The guide's SFT run (1000 steps of 4 at 5e-5) for a GPU; DPO over every training prompt, three passes.
    "full": Profile("full", sft_steps=1000, sft_batch_size=4, sft_learning_rate=5e-5, dpo_epochs=3,
                    dpo_prompts={"safe": 84, "format": 84, "correct": 84, "helpful": 84, "concise": 84}, eval_size=150,
                    max_new_tokens=128, logging_steps=10, save_steps=100, eval_steps=50, curve_eval_size=64,
                    shortcut_share=1.0, dial_steps=100),
}

def get_profile(name: str, **overrides: Any) -> Profile:
    """The profile `name` ($SMOLKIT_PROFILE wins: tests set smoke), fields overridden; errors list valid ones."""
    key = os.environ.get("SMOLKIT_PROFILE") or str(name).strip().lower()
    if key not in PROFILES:
        raise ValueError(f"unknown profile {key!r}; valid profiles: {', '.join(PROFILES)}")
    fields = {f.name for f in dataclasses.fields(Profile)} - {"name"}
    if unknown := sorted(set(overrides) - fields):
        raise ValueError(f"unknown profile field(s) {unknown}; valid fields: {', '.join(sorted(fields))}")
    return dataclasses.replace(PROFILES[key], **{k: v for k, v in overrides.items() if v is not None})

SIZED = {"sft": {"max_steps": "sft_steps", "per_device_train_batch_size": "sft_batch_size",
                 "learning_rate": "sft_learning_rate"},
         "dpo": {"num_train_epochs": "dpo_epochs", "per_device_train_batch_size": "dpo_batch_size",
                 "learning_rate": "dpo_learning_rate"}}
NOT_WEIGHTS = {"model_name_or_path", "dtype", "datasets", "chat_template_path", "output_dir", "logging_steps",
               "save_steps", "report_to", "eval_strategy", "bf16", "fp16"}  # where, how often, and the device's

def training_settings(stage: str, profile: Profile) -> dict[str, Any]:
    """The settings that decide a stage's weights at this profile (what 03 compares with a saved model's recipe)."""
    return {k: v for k, v in recipe(stage).items() if k not in NOT_WEIGHTS} | {
        key: getattr(profile, name) for key, name in SIZED[stage].items()}
