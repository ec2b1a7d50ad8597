"""Profiles: one name decides step counts, batch sizes, eval sizes and generation lengths."""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Profile:
    """Sizes for one run of the course's notebooks."""

    name: str
    sft_steps: int  # optimizer steps of SFT
    dpo_steps: int  # optimizer steps of DPO
    sft_batch_size: int  # per-device batch of SFT (the guide: 4)
    dpo_batch_size: int  # per-device batch of DPO (the guide: 2)
    sft_learning_rate: float  # the guide: 5e-5 at batch 4
    dpo_learning_rate: float  # the guide: 1e-6 at batch 2
    eval_size: int | None  # held-out rows scored per metric (None: the whole test split)
    show_size: int  # held-out prompts printed before/after, side by side
    max_new_tokens: int  # generation length for evaluation
    logging_steps: int
    save_steps: int
    train_rows: int | None = None  # training rows the notebooks use (None: all); smoke: enough for its steps x batch
    save_strategy: str = "steps"  # "steps": a checkpoint every save_steps and one when training ends; "no": none
    eval_steps: int = 10  # the trainer evaluates a held-out slice at the start and every eval_steps steps
    curve_eval_size: int = 16  # held-out rows in that slice (conversations for SFT, pairs for DPO)
    dial_steps: int = 12  # notebook 05: optimizer steps of each DPO run in the grid
    dial_batch_size: int = 2  # notebook 05: pairs per step of each run
    dial_eval_size: int = 4  # notebook 05: held-out pairs (and reply prompts) per preference dimension
    dial_sft_size: int = 16  # notebook 05: held-out SFT conversations scored for what DPO costs SFT's skills
    dial_new_tokens: int = 48  # notebook 05: generation length of its held-out replies


PROFILES: dict[str, Profile] = {
    # For tests: every notebook end to end, as small as a correctness check needs. save_strategy="no": with
    # "steps" the Trainer also saves when training ends, whatever save_steps says, a 1.6 GB checkpoint per run
    # (resuming from one is tested in tests/test_resume.py).
    "smoke": Profile("smoke", sft_steps=2, dpo_steps=2, sft_batch_size=2, dpo_batch_size=2,
                     sft_learning_rate=5e-5, dpo_learning_rate=1e-6, eval_size=4, show_size=2, max_new_tokens=16,
                     logging_steps=1, save_steps=1000, save_strategy="no", train_rows=4, eval_steps=1,
                     curve_eval_size=2, dial_steps=1, dial_batch_size=2, dial_eval_size=1, dial_sft_size=2,
                     dial_new_tokens=16),
    # A laptop CPU finishes each notebook in minutes, with measurable effects. The batch shapes are the
    # measured fast ones (make bench): the guide's 480 SFT and 160 DPO examples in fewer, larger steps, at
    # the guide's learning rates. Held-out metrics stayed within a question of the smaller batches (SFT 30 x 16
    # measured in notebook 01 against 60 x 8; DPO 40 x 4 in notebook 03 against 80 x 2): see the README.
    "default": Profile("default", sft_steps=30, dpo_steps=40, sft_batch_size=16, dpo_batch_size=4,
                       sft_learning_rate=5e-5, dpo_learning_rate=1e-6, eval_size=100, show_size=5, max_new_tokens=64,
                       logging_steps=5, save_steps=20, eval_steps=10, curve_eval_size=16),
    # The seed guide's settings, for a GPU.
    "full": Profile("full", sft_steps=1000, dpo_steps=500, sft_batch_size=4, dpo_batch_size=2,
                    sft_learning_rate=5e-5, dpo_learning_rate=1e-6, eval_size=None, show_size=8, max_new_tokens=128,
                    logging_steps=10, save_steps=100, eval_steps=50, curve_eval_size=64,
                    dial_steps=100, dial_batch_size=4, dial_eval_size=22, dial_sft_size=150, dial_new_tokens=128),
}


# What an override may be: whole numbers with their minimum (eval_size and train_rows may also stay None), and
# learning rates in (0, MAX_LEARNING_RATE], a guard against typos: the guide uses 5e-5 (SFT) and 1e-6 (DPO).
MINIMUMS = {"sft_steps": 1, "dpo_steps": 1, "sft_batch_size": 1, "dpo_batch_size": 1, "eval_size": 1, "show_size": 0,
            "max_new_tokens": 1, "logging_steps": 1, "save_steps": 1, "train_rows": 1, "eval_steps": 1,
            "curve_eval_size": 1, "dial_steps": 1, "dial_batch_size": 1, "dial_eval_size": 1, "dial_sft_size": 1,
            "dial_new_tokens": 1}
LEARNING_RATES = ("sft_learning_rate", "dpo_learning_rate")
MAX_LEARNING_RATE = 1e-2


SAVE_STRATEGIES = ("no", "steps")


def _checked_override(field: str, value: Any) -> int | float | str:
    """`value` for a profile field when it is valid; otherwise a ValueError naming field, value and valid range."""
    if field == "save_strategy":
        if value not in SAVE_STRATEGIES:
            valid = ", ".join(map(repr, SAVE_STRATEGIES))
            raise ValueError(f"save_strategy={value!r} is not valid: expected one of {valid} "
                             "(None keeps the profile's value)")
        return str(value)
    if field in LEARNING_RATES:
        number = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if not (number and 0 < value <= MAX_LEARNING_RATE):
            got = "" if number else f", got {type(value).__name__}"
            raise ValueError(f"{field}={value!r} is not valid: expected a number with 0 < {field} <= "
                             f"{MAX_LEARNING_RATE:g}{got} (None keeps the profile's value)")
        return float(value)
    whole = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not (whole and value >= MINIMUMS[field]):
        got = "" if whole else f", got {type(value).__name__}"
        raise ValueError(f"{field}={value!r} is not valid: expected a whole number >= {MINIMUMS[field]}{got} "
                         "(None keeps the profile's value)")
    return int(value)


def get_profile(name: str, **overrides: Any) -> Profile:
    """The profile called `name` with fields overridden (None keeps the profile's value), each override checked."""
    key = str(name).strip().lower()
    if key not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; valid profiles: {', '.join(PROFILES)}")
    profile = PROFILES[key]
    fields = {f.name for f in dataclasses.fields(Profile)} - {"name"}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown profile field(s) {unknown}; valid fields: {', '.join(sorted(fields))}")
    return dataclasses.replace(profile, **{k: _checked_override(k, v) for k, v in overrides.items() if v is not None})
