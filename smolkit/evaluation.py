"""Generating replies and measuring them on held-out prompts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class Reply:
    """One generated reply: its text, whether it ended with EOS, and how many tokens it used."""

    text: str
    stopped: bool
    new_tokens: int


@torch.no_grad()
def generate(model: Any, tokenizer: Any, conversations: list[list[dict[str, str]]],
             max_new_tokens: int = 64, batch_size: int = 8) -> list[Reply]:
    """Greedy replies to conversations (each ending with a user turn) under the tokenizer's template."""
    was_training, side = model.training, tokenizer.padding_side
    model.eval()
    tokenizer.padding_side = "left"  # decoder-only models continue from the right edge
    eos = tokenizer.eos_token_id
    replies: list[Reply] = []
    try:
        for start in range(0, len(conversations), batch_size):
            texts = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
                     for c in conversations[start:start + batch_size]]
            batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
            batch = batch.to(model.device)
            out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id, eos_token_id=eos)
            for row in out[:, batch["input_ids"].shape[1]:].tolist():
                stopped = eos in row
                row = row[: row.index(eos) + 1] if stopped else row
                text = tokenizer.decode(row, skip_special_tokens=True).strip()
                replies.append(Reply(text=text, stopped=stopped, new_tokens=len(row)))
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    return replies
