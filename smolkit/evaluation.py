"""Measuring models: replies on held-out prompts, answer log-probs on held-out pairs, how far weights moved."""

from __future__ import annotations

import json
import math
import re
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
             max_new_tokens: int = 64, batch_size: int = 32) -> list[Reply]:
    """Greedy replies to conversations (each ending with a user turn) under the tokenizer's template."""
    was_training, side = model.training, tokenizer.padding_side
    model.eval()
    tokenizer.padding_side = "left"  # decoder-only models continue from the right edge
    eos = tokenizer.eos_token_id
    texts = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in conversations]
    # Prompts of similar length share a batch, so little of each batch is padding; replies return in input order.
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    order = sorted(range(len(texts)), key=lambda i: lengths[i])
    replies: list[Reply | None] = [None] * len(texts)
    try:
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            batch = tokenizer([texts[i] for i in rows], return_tensors="pt", padding=True, add_special_tokens=False)
            batch = batch.to(model.device)
            out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False, use_cache=True,
                                 pad_token_id=tokenizer.pad_token_id, eos_token_id=eos)
            for i, row in zip(rows, out[:, batch["input_ids"].shape[1]:].tolist()):
                stopped = eos in row
                row = row[: row.index(eos) + 1] if stopped else row
                text = tokenizer.decode(row, skip_special_tokens=True).strip()
                replies[i] = Reply(text=text, stopped=stopped, new_tokens=len(row))
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    return replies  # type: ignore[return-value]  # every slot was filled


TURN_MARKERS = ("Human:", "Assistant:", "System:", "<|im_start|>", "User:")
ANSWER_PREFIX = "The answer is "


def _normalise(text: str) -> str:
    """Lower-case, drop commas and surrounding punctuation/space: ' 3,500 m. ' -> '3500 m'."""
    return " ".join(text.lower().replace(",", "").strip().strip(".!?").split())


def _mentions(text: str, answer: str) -> bool:
    """True when the answer's words appear, in order and whole, anywhere in the text."""
    words = re.findall(r"[a-z0-9]+(?:\.[0-9]+)?", text.lower().replace(",", ""))
    target = re.findall(r"[a-z0-9]+(?:\.[0-9]+)?", answer.lower().replace(",", ""))
    return bool(target) and any(words[i:i + len(target)] == target for i in range(len(words)))


def sentences(text: str) -> list[str]:
    """Split text into sentences at ., ! or ? followed by whitespace (decimals stay whole)."""
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


def extract_answer(text: str) -> str | None:
    """The answer stated as 'The answer is X.' in a reply's first sentence, or None."""
    first = sentences(text)[0] if text.strip() else ""
    if not first.startswith(ANSWER_PREFIX):
        return None
    return _normalise(first[len(ANSWER_PREFIX):])


def follows_format(reply: Reply, answer: str | None, max_sentences: int = 3, max_words: int = 60) -> bool:
    """The course's answer style: stops by itself, no invented turn, short, verifiable answers stated first."""
    if not reply.stopped or any(m in reply.text for m in TURN_MARKERS) or not reply.text.strip():
        return False
    if len(sentences(reply.text)) > max_sentences or len(reply.text.split()) > max_words:
        return False
    return answer is None or extract_answer(reply.text) is not None


def sft_metrics(replies: list[Reply], answers: list[str | None]) -> dict[str, float]:
    """Held-out SFT metrics: format compliance, exact match, answer mentioned, length, clean stops."""
    verifiable = [(r, a) for r, a in zip(replies, answers) if a is not None]
    clean = [r.stopped and not any(m in r.text for m in TURN_MARKERS) for r in replies]
    return {
        "format_compliance": sum(follows_format(r, a) for r, a in zip(replies, answers)) / len(replies),
        "exact_match": (sum(extract_answer(r.text) == _normalise(a) for r, a in verifiable) / len(verifiable)
                        if verifiable else float("nan")),
        "answer_mentioned": (sum(_mentions(r.text, a) for r, a in verifiable) / len(verifiable)
                             if verifiable else float("nan")),
        "mean_words": sum(len(r.text.split()) for r in replies) / len(replies),
        "clean_stop_rate": sum(clean) / len(replies),
        "n": len(replies),
        "n_verifiable": len(verifiable),
    }


def _completion_ids(tokenizer: Any, prompt: list[dict], completion: list[dict]) -> tuple[list[int], list[int]]:
    """Prompt and completion token ids, split where TRL's DPOTrainer splits them (common prefix)."""
    prompt_ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True,
                                               return_dict=True)["input_ids"]
    full_ids = tokenizer.apply_chat_template(prompt + completion, tokenize=True, return_dict=True)["input_ids"]
    cut = 0
    while cut < min(len(prompt_ids), len(full_ids)) and prompt_ids[cut] == full_ids[cut]:
        cut += 1
    return full_ids[:cut], full_ids[cut:]


@torch.no_grad()
def completion_logps(model: Any, tokenizer: Any, prompts: list[list[dict]], completions: list[list[dict]],
                     batch_size: int = 16) -> torch.Tensor:
    """Summed log-probability of each completion given its prompt, tokenized as DPOTrainer does."""
    was_training = model.training
    model.eval()
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    pairs = [_completion_ids(tokenizer, p, c) for p, c in zip(prompts, completions)]
    order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))  # little padding per batch
    totals = torch.zeros(len(pairs))
    try:
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            width = max(len(pairs[i][0]) + len(pairs[i][1]) for i in rows)
            ids = torch.full((len(rows), width), pad, dtype=torch.long)
            mask = torch.zeros_like(ids)
            scored = torch.zeros_like(ids, dtype=torch.bool)
            for j, i in enumerate(rows):
                p, c = pairs[i]
                ids[j, : len(p) + len(c)] = torch.tensor(p + c)
                mask[j, : len(p) + len(c)] = 1
                scored[j, len(p): len(p) + len(c)] = True
            # Position t predicts token t + 1, so only the positions from the first completion token's
            # predecessor on need logits: `logits_to_keep` has the model compute just those (its own LM head).
            first = max(min(len(pairs[i][0]) for i in rows) - 1, 0)
            logits = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device),
                           logits_to_keep=width - first).logits[:, :-1]
            keep = scored[:, first + 1:].to(model.device)
            logits = logits[keep].float()
            targets = ids[:, first + 1:].to(model.device)[keep]
            logp = logits.gather(-1, targets[:, None])[:, 0] - torch.logsumexp(logits, dim=-1)
            owner = torch.arange(len(rows), device=model.device)[:, None].expand_as(keep)[keep]
            sums = torch.zeros(len(rows), device=model.device, dtype=logp.dtype).index_add_(0, owner, logp)
            totals[rows] = sums.cpu()
    finally:
        model.train(was_training)
    return totals


def completion_lengths(tokenizer: Any, prompts: list[list[dict]], completions: list[list[dict]]) -> torch.Tensor:
    """Number of answer tokens of each completion, counted where `completion_logps` sums them."""
    return torch.tensor([len(_completion_ids(tokenizer, p, c)[1]) for p, c in zip(prompts, completions)])


def _by_dimension(dimensions: list[str | None], values: torch.Tensor) -> dict[str, float]:
    """Mean of one value per pair, overall and per dimension."""
    table = {"overall": float(values.float().mean())}
    for dim in sorted({d for d in dimensions if d is not None}):
        table[dim] = float(values[torch.tensor([i for i, d in enumerate(dimensions) if d == dim])].float().mean())
    return table


def preference_metrics(dimensions: list[str | None], chosen: torch.Tensor, rejected: torch.Tensor,
                       chosen_tokens: torch.Tensor, rejected_tokens: torch.Tensor,
                       ref_chosen: torch.Tensor | None = None, ref_rejected: torch.Tensor | None = None,
                       beta: float = 0.1) -> dict[str, dict[str, float]]:
    """Held-out preference measures, overall and per dimension, from summed answer log-probs.

    logp_accuracy: chosen has the higher summed log-prob (favours the shorter answer);
    logp_per_token_accuracy: the same per answer token (length-normalised);
    with a reference, reward_accuracy: chosen's log-ratio to the reference beats rejected's (DPO's implicit reward;
    it sees only the sign, so any move toward chosen counts), and mean_margin: the mean of
    beta * (chosen's log-ratio - rejected's), TRL's `rewards/margins`, which shows the size of that move.
    """
    table = {
        "logp_accuracy": _by_dimension(dimensions, chosen > rejected),
        "logp_per_token_accuracy": _by_dimension(dimensions, chosen / chosen_tokens > rejected / rejected_tokens),
    }
    if ref_chosen is not None and ref_rejected is not None:
        margin = beta * ((chosen - ref_chosen) - (rejected - ref_rejected))
        table["reward_accuracy"] = _by_dimension(dimensions, margin > 0)
        table["mean_margin"] = _by_dimension(dimensions, margin)
    return table


def shorter_answer_baseline(dimensions: list[str | None], chosen_tokens: torch.Tensor,
                            rejected_tokens: torch.Tensor) -> dict[str, float]:
    """Accuracy of always preferring the shorter answer (in tokens; a tie counts as a coin flip), per dimension."""
    score = (chosen_tokens < rejected_tokens).float() + 0.5 * (chosen_tokens == rejected_tokens).float()
    return _by_dimension(dimensions, score)


FILLER_OPENERS = re.compile(r"^(sure|absolutely|of course|great question|what a great|ah,|oh,|okay, so|well,|"
                            r"thanks so much|i'd be happy)", re.IGNORECASE)
REFUSAL = re.compile(r"\b(i can't|i cannot|i can not|i won't|i'm not able|i am not able|i'm unable)\b", re.IGNORECASE)


def follows_request(prompt: str, reply: str) -> bool | None:
    """Whether a reply keeps an explicit format request in the prompt; None when the prompt makes none."""
    p, text = prompt.lower(), reply.strip()
    if "json" in p:
        try:
            return isinstance(json.loads(text), dict)
        except ValueError:
            return False
    if "bullet" in p:
        lines = [line for line in text.splitlines() if line.strip()]
        return len(lines) == 3 and all(line.lstrip().startswith(("-", "*", "•")) for line in lines)
    if "yes or no" in p:
        return text.lower().strip(".! ") in {"yes", "no"}
    if "one word" in p:
        return len(text.strip(".! ").split()) == 1
    if "number" in p and ("just the number" in p or "nothing else" in p or "number only" in p):
        return re.fullmatch(r"-?\d+(\.\d+)?", text.strip(". ")) is not None
    return None


def reply_measures(prompts: list[list[dict]], replies: list[Reply], dimensions: list[str | None]) -> dict:
    """Generation-level measures tied to the preference dimensions."""
    def rate(flags: list[bool]) -> float:
        return sum(flags) / len(flags) if flags else float("nan")

    unsafe = [r for r, d in zip(replies, dimensions) if d == "safe"]
    formats = [follows_request(p[-1]["content"], r.text) for p, r in zip(prompts, replies)]
    return {
        "mean_words": rate([len(r.text.split()) for r in replies]),
        "filler_opening_rate": rate([bool(FILLER_OPENERS.match(r.text)) for r in replies]),
        "refusal_rate_on_unsafe": rate([bool(REFUSAL.search(r.text)) for r in unsafe]),
        "format_request_kept": rate([f for f in formats if f is not None]),
        "stopped_rate": rate([r.stopped for r in replies]),
        "n": len(replies),
    }


@torch.no_grad()
def weight_shift(model: Any, other: Any) -> float:
    """How far training moved the weights: ||theta - theta_other|| / ||theta_other|| over all parameters."""
    theirs = dict(other.named_parameters())
    diff = norm = 0.0
    for name, param in model.named_parameters():
        ref = theirs[name].to(param.device, torch.float32)
        diff += float((param.float() - ref).pow(2).sum())
        norm += float(ref.pow(2).sum())
    return math.sqrt(diff / norm) if norm else float("nan")
