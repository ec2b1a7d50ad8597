"""Catch a bad training setting before training starts, with a message that says what would be valid."""

from __future__ import annotations

from typing import Any

from smolkit.data import count_tokens


def config_problems(config: Any) -> list[str]:
    """Readable problems with an SFTConfig/DPOConfig's numbers (empty when all are valid)."""
    problems = []
    lr = config.learning_rate
    if not lr > 0:
        problems.append(f"learning_rate={lr!r} must be > 0 (the guide uses 5e-5 for SFT and 1e-6 for DPO)")
    if config.max_steps == 0 or config.max_steps < -1:
        problems.append(f"max_steps={config.max_steps!r} must be a positive step count "
                        "(or -1 to train for num_train_epochs)")
    if config.max_steps == -1 and not config.num_train_epochs > 0:
        problems.append(f"num_train_epochs={config.num_train_epochs!r} must be > 0 when max_steps is -1")
    for name in ("per_device_train_batch_size", "gradient_accumulation_steps"):
        value = getattr(config, name)
        if not (isinstance(value, int) and value > 0):
            problems.append(f"{name}={value!r} must be a whole number >= 1")
    beta = getattr(config, "beta", None)
    if beta is not None and not beta > 0:
        problems.append(f"beta={beta!r} must be > 0 (the guide and TRL use 0.1; larger keeps the model "
                        "closer to its reference)")
    max_length = getattr(config, "max_length", None)
    if max_length is not None and not (isinstance(max_length, int) and max_length > 0):
        problems.append(f"max_length={max_length!r} must be a positive number of tokens, or None")
    return problems


def length_problems(dataset: Any, tokenizer: Any, max_length: int | None) -> list[str]:
    """Examples that do not fit in max_length: SFT conversations, or DPO prompt plus the longer answer."""
    if max_length is None:
        return []
    too_long = []
    for i, row in enumerate(dataset):
        if "messages" in row:
            length = count_tokens(tokenizer, row["messages"])
        else:
            length = max(count_tokens(tokenizer, row["prompt"] + row[k]) for k in ("chosen", "rejected"))
        if length > max_length:
            too_long.append((i, length))
    if not too_long:
        return []
    longest = max(n for _, n in too_long)
    rows = ", ".join(str(i) for i, _ in too_long[:10]) + (" ..." if len(too_long) > 10 else "")
    return [f"max_length={max_length} is shorter than {len(too_long)} example(s) (rows {rows}; longest "
            f"{longest} tokens): they would be cut, or dropped by DPO; raise max_length to at least {longest}"]


def check_training(config: Any, train_dataset: Any = None, tokenizer: Any = None) -> None:
    """Raise one ValueError listing every invalid setting, before any trainer is built."""
    problems = config_problems(config)
    if train_dataset is not None and tokenizer is not None and not problems:
        problems += length_problems(train_dataset, tokenizer, getattr(config, "max_length", None))
    if problems:
        raise ValueError("invalid training settings:\n  - " + "\n  - ".join(problems))
