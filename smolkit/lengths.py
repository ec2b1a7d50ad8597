"""Token lengths of training examples, counted the way TRL tokenizes them: through the chat template."""

from __future__ import annotations

import random
from typing import Any


def token_ids(tokenizer: Any, messages: list[dict], add_generation_prompt: bool = False) -> list[int]:
    """Token ids of a conversation rendered with the tokenizer's chat template (TRL's `apply_chat_template` call)."""
    enc = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True,
                                        add_generation_prompt=add_generation_prompt)
    return list(enc["input_ids"])


def sequence_lengths(row: dict[str, Any], tokenizer: Any) -> list[int]:
    """Tokens of each sequence the trainer builds from a row: the conversation (SFT), or prompt + chosen and
    prompt + rejected (DPO)."""
    if "messages" in row:
        return [len(token_ids(tokenizer, row["messages"]))]
    return [len(token_ids(tokenizer, row["prompt"] + row[k])) for k in ("chosen", "rejected")]


def example_length(row: dict[str, Any], tokenizer: Any) -> int:
    """Length of one example: its longest sequence, which is what `max_length` cuts and padding stretches to."""
    return max(sequence_lengths(row, tokenizer))


def total_tokens(dataset: Any, tokenizer: Any) -> int:
    """Non-padding tokens a pass over the rows runs through the model (prompts and answers)."""
    return sum(sum(sequence_lengths(row, tokenizer)) for row in dataset)


def loss_token_count(dataset: Any, tokenizer: Any) -> int:
    """Tokens that carry loss: assistant tokens (SFT rows), or both answers of each pair (DPO rows)."""
    total = 0
    for row in dataset:
        if "messages" in row:
            enc = tokenizer.apply_chat_template(row["messages"], tokenize=True, return_dict=True,
                                                return_assistant_tokens_mask=True)
            total += int(sum(enc["assistant_masks"]))
        else:
            prompt = len(token_ids(tokenizer, row["prompt"], add_generation_prompt=True))
            total += sum(length - prompt for length in sequence_lengths(row, tokenizer))
    return total


def group_by_length(dataset: Any, tokenizer: Any, batch_size: int, seed: int = 0) -> Any:
    """Reorder rows so each batch holds examples of similar length, the batches in random order.

    Train the result with `train_sampling_strategy="sequential"`, so batches stay as built. A padded batch
    is as long as its longest example; grouped batches carry little padding. (transformers' own
    `group_by_length` sampler needs an `input_ids` column, which DPO datasets do not have.)
    """
    lengths = [example_length(row, tokenizer) for row in dataset]
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    random.Random(seed).shuffle(batches)
    return dataset.select([i for batch in batches for i in batch])
