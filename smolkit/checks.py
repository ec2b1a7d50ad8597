"""Catch a bad training setting, chat template or data before training starts, saying what would be valid."""

from __future__ import annotations

import math
import re
from typing import Any

import torch

from smolkit.evaluation import completion_logps
from smolkit.lengths import example_length


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
        length = example_length(row, tokenizer)
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


# ---------------------------------------------------------------------------------------------
# Preflight: the tokenizer, its chat template and the first rows, right before a training run

CHATML_END = "<|im_end|>"
LN2 = math.log(2)
GENERATION_MARKER = re.compile(r"\{%-?\s*generation\s*-?%\}")
USE_GUIDE = "use_template(tokenizer, 'guide') sets the course's fixed template"


class PreflightError(ValueError):
    """Failed preflight checks, one per line; `.table` holds every check's row."""

    table: Any = None


def end_of_turn(tokenizer: Any) -> str | None:
    """The token that closes an assistant turn: <|im_end|> in a ChatML template, else the EOS token."""
    return CHATML_END if CHATML_END in (tokenizer.chat_template or "") else tokenizer.eos_token


def _ids(tokenizer: Any, messages: list[dict], **kwargs: Any) -> Any:
    """Token ids (and masks) of a conversation under the tokenizer's chat template."""
    return tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, **kwargs)


def _turn_ends(tokenizer: Any, conversation: list[dict], eot: str) -> list[int | None]:
    """How many end-of-turn tokens close each assistant turn of the rendered text (None: turn not found)."""
    text = tokenizer.apply_chat_template(conversation, tokenize=False)
    starts, pos = [], 0
    for message in conversation:
        content = message["content"].strip()
        at = text.find(content, pos) if content else pos
        starts.append((at, at + len(content)) if at >= 0 else None)
        pos = at + len(content) if at >= 0 else pos
    counts: list[int | None] = []
    for k, message in enumerate(conversation):
        if message["role"] != "assistant":
            continue
        if starts[k] is None:
            counts.append(None)
            continue
        end = next((s[0] for s in starts[k + 1:] if s is not None), len(text))
        content, after = text[starts[k][0]:starts[k][1]], text[starts[k][1]:end]
        inside = 0
        while content.endswith(eot):  # the data itself already closes the reply
            content, inside = content[: -len(eot)].rstrip(), inside + 1
        counts.append(inside + after.count(eot))
    return counts


def _last_content_id(tokenizer: Any, ids: list[int], eot_id: int) -> int | None:
    """The last token id that is not whitespace (the end-of-turn token always counts)."""
    for token_id in reversed(ids):
        if token_id == eot_id or tokenizer.decode([token_id]).strip():
            return token_id
    return None


def _conversations(sample: list[dict], kind: str) -> list[tuple[str, list[dict]]]:
    """(label, conversation) for each row: the SFT messages, or DPO prompt + chosen and prompt + rejected."""
    if kind == "sft":
        return [(f"row {i}", row["messages"]) for i, row in enumerate(sample)]
    return [(f"row {i} ({k})", row["prompt"] + row[k]) for i, row in enumerate(sample) for k in ("chosen", "rejected")]


def check_end_of_turn(tokenizer: Any, sample: list[dict], kind: str) -> tuple[bool, str]:
    """Every assistant turn of the rendered rows is closed by exactly one end-of-turn token."""
    eot = end_of_turn(tokenizer)
    if eot is None:
        return False, ("The tokenizer has no EOS token, so nothing can close an assistant turn; "
                       "load the tokenizer with load_model, which keeps SmolLM2's <|im_end|>.")
    for label, conversation in _conversations(sample, kind):
        for turn, count in enumerate(_turn_ends(tokenizer, conversation, eot), start=1):
            if count is None:
                return False, (f"{label}: the chat template changes assistant turn {turn}'s text, so its end cannot "
                               f"be found; use a template that renders message['content'] unchanged ({USE_GUIDE}).")
            if count == 0:
                return False, (f"{label}: assistant turn {turn} is not closed by {eot!r}, so the model never learns "
                               f"to stop and runs on into an invented next turn; the template must add "
                               f"{{{{ eos_token }}}} after every assistant reply ({USE_GUIDE}).")
            if count > 1:
                return False, (f"{label}: assistant turn {turn} ends with {count} {eot!r} tokens instead of one; the "
                               f"template and the data both add it (or the template adds it twice): add it in one "
                               f"place only, after the reply.")
    return True, f"every assistant turn of the first {len(sample)} rows ends with exactly one {eot!r}."


def check_sft_loss_mask(tokenizer: Any, sample: list[dict]) -> tuple[bool, str]:
    """assistant_only_loss marks each reply and its end-of-turn token (what SFTTrainer trains on)."""
    if not GENERATION_MARKER.search(tokenizer.chat_template or ""):
        return False, ("The chat template has no {% generation %} ... {% endgeneration %} markers, so no token is "
                       "marked as the assistant's: assistant_only_loss=True needs these markers around every reply "
                       f"and its end-of-turn token to know what to train on ({USE_GUIDE}).")
    eot = end_of_turn(tokenizer)
    eot_id = tokenizer.convert_tokens_to_ids(eot) if eot is not None else None
    for label, conversation in _conversations(sample, "sft"):
        enc = _ids(tokenizer, conversation, return_assistant_tokens_mask=True)
        ids, mask = list(enc["input_ids"]), list(enc["assistant_masks"])
        if 1 not in mask:
            return False, (f"{label}: no token is marked as the assistant's, so this row teaches nothing under "
                           "assistant_only_loss; give it an assistant reply and keep the reply inside the template's "
                           "generation markers.")
        spans, start = [], None
        for i, m in enumerate(mask + [0]):
            if m and start is None:
                start = i
            elif not m and start is not None:
                spans.append(ids[start:i])
                start = None
        for turn, span in enumerate(spans, start=1):
            if _last_content_id(tokenizer, span, eot_id) != eot_id:
                return False, (f"{label}: the end-of-turn token {eot!r} of assistant turn {turn} is outside the loss "
                               "mask, so the model is never trained to stop; put {{ eos_token }} inside "
                               f"{{% generation %}} ... {{% endgeneration %}} ({USE_GUIDE}).")
    return True, f"the loss mask covers every assistant reply and its closing {eot!r} in the first {len(sample)} rows."


def _dpo_split(tokenizer: Any, row: dict, key: str) -> tuple[list[int], list[int], int]:
    """Prompt ids, prompt+answer ids and their common prefix length, tokenized as TRL's DPOTrainer does."""
    prompt = list(_ids(tokenizer, row["prompt"], add_generation_prompt=True)["input_ids"])
    full = list(_ids(tokenizer, row["prompt"] + row[key])["input_ids"])
    cut = 0
    while cut < min(len(prompt), len(full)) and prompt[cut] == full[cut]:
        cut += 1
    return prompt, full, cut


def check_dpo_prefix(tokenizer: Any, sample: list[dict]) -> tuple[bool, str]:
    """The tokenized prompt is the start of the tokenized prompt + answer, as DPO's split assumes."""
    for i, row in enumerate(sample):
        for key in ("chosen", "rejected"):
            prompt, full, cut = _dpo_split(tokenizer, row, key)
            if cut < len(prompt):
                alone, joined = tokenizer.decode(prompt[cut:]), tokenizer.decode(full[cut:cut + 2])
                return False, (f"row {i} ({key}): the prompt alone ends in {alone!r}, but with the answer those "
                               f"characters tokenize differently ({joined!r}), so TRL cuts the prompt where they "
                               "differ and warns that the tokenized prompt is not a prefix of prompt + completion; "
                               "the model then trains on a prompt it never sees when it generates. End the generation "
                               f"prompt on a token boundary, e.g. 'Assistant:' with no trailing space ({USE_GUIDE}).")
    return True, f"in the first {len(sample)} pairs the tokenized prompt is the start of prompt + answer."


def check_dpo_answer_end(tokenizer: Any, sample: list[dict]) -> tuple[bool, str]:
    """Each chosen and rejected answer DPO scores ends with the end-of-turn token."""
    eot = end_of_turn(tokenizer)
    eot_id = tokenizer.convert_tokens_to_ids(eot) if eot is not None else None
    for i, row in enumerate(sample):
        for key in ("chosen", "rejected"):
            _, full, cut = _dpo_split(tokenizer, row, key)
            if eot_id is None or _last_content_id(tokenizer, full[cut:], eot_id) != eot_id:
                tail = tokenizer.decode(full[cut:][-3:])
                return False, (f"row {i} ({key}): the answer DPO scores ends in {tail!r}, not {eot!r}, so DPO never "
                               "scores the choice to stop; the template must add {{ eos_token }} after every "
                               f"assistant reply ({USE_GUIDE}).")
    return True, f"every chosen and rejected answer of the first {len(sample)} pairs ends with {eot!r}."


def check_pad(tokenizer: Any, end_in_loss: bool) -> tuple[bool, str]:
    """A pad token is set; where it is the end-of-turn token, that token must still be in the loss."""
    eot, pad = end_of_turn(tokenizer), tokenizer.pad_token
    if pad is None:
        return False, ("The tokenizer has no pad token, so rows of different lengths cannot share a batch; set "
                       "tokenizer.pad_token = tokenizer.eos_token (load_model does this).")
    if pad != eot:
        return True, f"pad token {pad!r} differs from the end-of-turn token {eot!r}."
    if not end_in_loss:
        return False, (f"the pad token is the end-of-turn token {eot!r}, and that token is outside the loss (see the "
                       "checks below), so the model is never taught to stop; fix the template so each reply's "
                       "end-of-turn token is trained.")
    return True, (f"the pad token is the end-of-turn token {eot!r}; that is harmless here because TRL leaves padding "
                  "out of the loss by the attention mask, not by the pad id, and each reply's end-of-turn token is "
                  "inside the loss (checked below).")


def check_first_dpo_loss(model: Any, ref_model: Any, tokenizer: Any, sample: list[dict],
                         beta: float = 0.1) -> tuple[bool, str]:
    """The DPO loss of the first pairs is ln 2, as it must be when the reference is a copy of the model."""
    prompts = [row["prompt"] for row in sample]
    chosen, rejected = [row["chosen"] for row in sample], [row["rejected"] for row in sample]
    pc, pr = completion_logps(model, tokenizer, prompts, chosen), completion_logps(model, tokenizer, prompts, rejected)
    rc = completion_logps(ref_model, tokenizer, prompts, chosen)
    rr = completion_logps(ref_model, tokenizer, prompts, rejected)
    loss = float(-torch.nn.functional.logsigmoid(beta * ((pc - rc) - (pr - rr))).mean())
    if abs(loss - LN2) <= 1e-3:
        return True, (f"the DPO loss of the first {len(sample)} pairs is {loss:.4f} = ln 2: the reference scores "
                      "every answer as the model does, as it must before the first step.")
    return False, (f"the DPO loss of the first {len(sample)} pairs is {loss:.4f}, not ln 2 = {LN2:.4f}: the reference "
                   "scores the answers differently from the model. The reference must be a frozen copy of the model "
                   "DPO starts from (ref_model = copy.deepcopy(model).eval(), made right before training), not "
                   "another model or checkpoint.")


def preflight(tokenizer: Any, dataset: Any, kind: str, model: Any = None, ref_model: Any = None,
              beta: float = 0.1, rows: int = 4, strict: bool = True) -> Any:
    """Table of checks (check, ok, detail) on template and first rows; raises PreflightError unless strict=False."""
    import pandas as pd

    if kind not in ("sft", "dpo"):
        raise ValueError(f"kind={kind!r} must be 'sft' or 'dpo'.")
    if not tokenizer.chat_template:
        raise PreflightError(f"The tokenizer has no chat template; {USE_GUIDE}.")
    sample = [dataset[i] for i in range(min(rows, len(dataset)))]
    columns = ("messages",) if kind == "sft" else ("prompt", "chosen", "rejected")
    if not sample or any(not isinstance(row.get(c), list) for row in sample for c in columns):
        raise PreflightError(f"preflight({kind!r}) needs conversational rows with {', '.join(columns)} as lists of "
                             "messages; load them with load_sft or load_preferences from smolkit.data.")
    checks = {"end of turn": check_end_of_turn(tokenizer, sample, kind)}
    if kind == "sft":
        checks["loss covers end of turn"] = check_sft_loss_mask(tokenizer, sample)
    else:
        checks["prompt is a prefix"] = check_dpo_prefix(tokenizer, sample)
        checks["loss covers end of turn"] = check_dpo_answer_end(tokenizer, sample)
        if model is not None and ref_model is not None:
            checks["first DPO loss is ln 2"] = check_first_dpo_loss(model, ref_model, tokenizer, sample, beta)
    checks = {"pad token": check_pad(tokenizer, checks["loss covers end of turn"][0]), **checks}
    table = pd.DataFrame([{"check": name, "ok": ok, "detail": detail} for name, (ok, detail) in checks.items()])
    failed = table[~table["ok"]]
    if strict and len(failed):
        err = PreflightError(f"preflight found {len(failed)} problem(s); fix them before training:\n  - "
                             + "\n  - ".join(f"{c}: {d}" for c, d in zip(failed["check"], failed["detail"])))
        err.table = table
        raise err
    return table
