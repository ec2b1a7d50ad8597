"""Chat templates (the guide's Human/Assistant layout, fixed for current TRL) and the checks to run before training."""

from __future__ import annotations

import re
from typing import Any

from smolkit.runtime import REPO_ROOT

# The seed guide's "Human: ... / Assistant: ..." template, corrected in four ways: {% generation %} markers around
# assistant text (TRL's assistant_only_loss needs them); the EOS token closes every assistant turn (so the model
# learns to stop); system messages are rendered, not dropped; and the generation prompt ends in "Assistant:" without
# the trailing space, so the prompt's tokens are a prefix of prompt + answer (the space goes with the answer). It
# lives in configs/, where TRL's command line reads it too (`chat_template_path` in configs/sft.yaml).
GUIDE_TEMPLATE = (REPO_ROOT / "configs" / "guide_chat_template.jinja").read_text(encoding="utf-8")
# The template exactly as the guide writes it (no EOS, no markers, system dropped), kept to show what breaks.
GUIDE_TEMPLATE_AS_WRITTEN = (REPO_ROOT / "configs" / "guide_chat_template_as_written.jinja").read_text(encoding="utf-8")
TEMPLATES = {"guide": GUIDE_TEMPLATE, "guide-as-written": GUIDE_TEMPLATE_AS_WRITTEN}
GENERATION_MARKER = re.compile(r"\{%-?\s*generation\s*-?%\}")
FIX = "use_template(tokenizer, 'guide') sets the course's fixed template"

def use_template(tokenizer: Any, name: str = "guide") -> Any:
    """Set one of the course's chat templates on a tokenizer and return it."""
    if name not in TEMPLATES:
        raise ValueError(f"unknown chat template {name!r}; choose one of {sorted(TEMPLATES)}")
    tokenizer.chat_template = TEMPLATES[name]
    return tokenizer

def render(tokenizer: Any, messages: list[dict], add_generation_prompt: bool = False) -> str:
    """A conversation as the exact text the model sees."""
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)

def loss_tokens(tokenizer: Any, messages: list[dict]) -> list[tuple[str, bool]]:
    """Each token of a conversation, and whether it carries loss under assistant-only training."""
    enc = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    return list(zip(tokenizer.convert_ids_to_tokens(enc["input_ids"]), map(bool, enc["assistant_masks"])))

def split_answer(tokenizer: Any, prompt: list[dict], answer: list[dict]) -> tuple[list[int], list[int], int]:
    """Prompt ids, prompt + answer ids and the length of their common start: where DPOTrainer splits a pair."""
    prompt_ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True,
                                               return_dict=True)["input_ids"]
    full_ids = tokenizer.apply_chat_template(prompt + answer, tokenize=True, return_dict=True)["input_ids"]
    cut = 0
    while cut < min(len(prompt_ids), len(full_ids)) and prompt_ids[cut] == full_ids[cut]:
        cut += 1
    return list(prompt_ids), list(full_ids), cut

def _sft_row_problem(tokenizer: Any, messages: list[dict], eot_id: int) -> str | None:
    """What is wrong with one SFT conversation's loss mask, or None: each reply must end in a trained end-of-turn."""
    enc = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    ids, mask = enc["input_ids"], list(enc["assistant_masks"]) + [0]
    ends = [ids[i] for i in range(len(ids)) if mask[i] and not mask[i + 1]]  # the last trained token of each reply
    replies = sum(m["role"] == "assistant" for m in messages)
    if len(ends) != replies or ids.count(eot_id) < replies:
        return f"{replies} assistant replies but {len(ends)} trained spans and {ids.count(eot_id)} end-of-turn tokens"
    return None if all(i == eot_id for i in ends) else "a reply's end-of-turn token is outside the loss mask"

def preflight(tokenizer: Any, rows: Any, kind: str, n: int = 4) -> Any:
    """Checks on the template and the first `n` rows (SFT: trained end-of-turn; DPO: prompt prefix, ends); raises."""
    import pandas as pd

    eot = "<|im_end|>" if "<|im_end|>" in (tokenizer.chat_template or "") else tokenizer.eos_token  # ends a turn
    eot_id = tokenizer.convert_tokens_to_ids(eot)
    sample = [rows[i] for i in range(min(n, len(rows)))]
    checks = [("pad token", tokenizer.pad_token is not None, f"pad {tokenizer.pad_token!r}, end of turn {eot!r}")]
    if kind == "sft":
        marked = bool(GENERATION_MARKER.search(tokenizer.chat_template or ""))
        checks.append(("generation markers", marked, "assistant_only_loss finds the replies" if marked else FIX))
        problems = [p for row in sample if marked and (p := _sft_row_problem(tokenizer, row["messages"], eot_id))]
        checks.append(("every reply ends in a trained end-of-turn", marked and not problems,
                       problems[0] if problems else f"{len(sample)} rows checked"))
    elif kind == "dpo":
        splits = [(split_answer(tokenizer, r["prompt"], r[k]), k) for r in sample for k in ("chosen", "rejected")]
        bad = [k for (p, _, cut), k in splits if cut < len(p)]
        checks.append(("prompt is a prefix of prompt + answer", not bad,
                       f"not for a {bad[0]} answer; {FIX}" if bad else f"{len(splits)} answers checked"))
        last = [next((i for i in reversed(full) if i == eot_id or tokenizer.decode([i]).strip()), None)
                for (_, full, _), _ in splits]  # the last token that is not whitespace
        unended = [k for i, (_, k) in zip(last, splits) if i != eot_id]
        checks.append(("every answer ends in end-of-turn", not unended,
                       f"a {unended[0]} answer does not; {FIX}" if unended else f"{len(splits)} answers end well"))
    else:
        raise ValueError(f"kind={kind!r} must be 'sft' or 'dpo'")
    table = pd.DataFrame(checks, columns=["check", "ok", "detail"])
    if not table["ok"].all():
        failed = table[~table["ok"]]
        raise ValueError("preflight failed; fix before training:\n  - "
                         + "\n  - ".join(f"{c}: {d}" for c, d in zip(failed["check"], failed["detail"])))
    return table
