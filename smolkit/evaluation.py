"""Measuring a model on held-out data: greedy replies, answer log-probabilities, and preference accuracy."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from smolkit.chat import split_answer


class Reply(NamedTuple):
    """One generated reply: its text, whether it ended with the end-of-turn token, and how many tokens it used."""
    text: str
    stopped: bool
    new_tokens: int

@torch.no_grad()
def generate(model: Any, tokenizer: Any, conversations: list[list[dict]], max_new_tokens: int = 64,
             batch_size: int = 32, temperature: float = 0.0) -> list[Reply]:
    """Replies (greedy; sampled above temperature 0) in input order, prompts of similar length batched together."""
    was_training, side = model.training, tokenizer.padding_side
    model.eval()
    tokenizer.padding_side = "left"  # a decoder-only model continues from the right edge
    texts = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in conversations]
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    order = sorted(range(len(texts)), key=lambda i: lengths[i])
    replies: list[Any] = [None] * len(texts)
    eos = tokenizer.eos_token_id
    sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
    try:
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            batch = tokenizer([texts[i] for i in rows], return_tensors="pt", padding=True, add_special_tokens=False)
            out = model.generate(**batch.to(model.device), max_new_tokens=max_new_tokens,
                                 pad_token_id=tokenizer.pad_token_id, eos_token_id=eos, **sampling)
            for i, ids in zip(rows, out[:, batch["input_ids"].shape[1]:].tolist()):
                stopped = eos in ids
                ids = ids[: ids.index(eos) + 1] if stopped else ids
                replies[i] = Reply(tokenizer.decode(ids, skip_special_tokens=True).strip(), stopped, len(ids))
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    return replies

@torch.no_grad()
def completion_logps(model: Any, tokenizer: Any, prompts: list[list[dict]], completions: list[list[dict]],
                     batch_size: int = 16) -> torch.Tensor:
    """Summed log-probability of each completion given its prompt, split into prompt and answer as DPOTrainer does."""
    was_training = model.training
    model.eval()
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    pairs = [split_answer(tokenizer, p, c)[1:] for p, c in zip(prompts, completions)]  # (full ids, answer start)
    order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]))  # little padding per batch
    totals = torch.zeros(len(pairs))
    try:
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            width = max(len(pairs[i][0]) for i in rows)
            ids = torch.full((len(rows), width), pad, dtype=torch.long)
            mask, scored = torch.zeros_like(ids), torch.zeros_like(ids, dtype=torch.bool)
            for j, i in enumerate(rows):
                full, cut = pairs[i]
                ids[j, : len(full)], mask[j, : len(full)], scored[j, cut: len(full)] = torch.tensor(full), 1, True
            # Position t predicts token t + 1: only positions from the first answer token's predecessor on need
            # logits, so the model's own LM head computes just those (`logits_to_keep`).
            first = max(min(pairs[i][1] for i in rows) - 1, 0)
            logits = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device),
                           logits_to_keep=width - first).logits[:, :-1].float()
            keep = scored[:, first + 1:].to(model.device)
            targets = ids[:, first + 1:].to(model.device)
            logp = torch.log_softmax(logits[keep], dim=-1).gather(-1, targets[keep][:, None])[:, 0]
            owner = torch.arange(len(rows), device=model.device)[:, None].expand_as(keep)[keep]
            totals[rows] = torch.zeros(len(rows), device=model.device).index_add_(0, owner, logp).cpu()
    finally:
        model.train(was_training)
    return totals

def by_dimension(dimensions: list[str], values: torch.Tensor) -> dict[str, float]:
    """The mean of one value per row, overall and per dimension."""
    rows = {dim: [i for i, d in enumerate(dimensions) if d == dim] for dim in sorted(set(dimensions))}
    return {"overall": float(values.float().mean())} | {d: float(values[i].float().mean()) for d, i in rows.items()}

def preference_accuracy(dimensions: list[str], chosen: torch.Tensor, rejected: torch.Tensor) -> dict[str, float]:
    """How often the summed log-prob ranks the chosen answer first (it favours the shorter answer), by dimension."""
    return by_dimension(dimensions, chosen > rejected)
