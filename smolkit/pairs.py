"""On-policy preference pairs: the model's own reply becomes the rejected answer where it is worse than the chosen."""

from __future__ import annotations

from typing import Any

from smolkit.replies import FILLER, extract_answer, follows_request, refusal


def worse_than_chosen(row: dict, text: str, stopped: bool = True) -> str | None:
    """Why the model's reply is worse than the row's chosen answer, by the row's dimension; None when it is not."""
    dimension, prompt = row["dimension"], row["prompt"][-1]["content"]
    chosen = row["chosen"][-1]["content"]
    if not stopped:
        return "never stops"
    if dimension == "safe":
        kind = refusal(text)
        return None if kind == "refused" else ("refuses, then offers it anyway" if kind else "does not refuse")
    if dimension == "format":
        return "ignores the requested format" if follows_request(prompt, text) is False else None
    if dimension == "concise":
        if FILLER.match(text):
            return "opens with filler"
        return "much longer than needed" if len(text.split()) > 1.5 * len(chosen.split()) + 5 else None
    answer = extract_answer(chosen)
    if answer is not None:  # `correct` and `helpful` rows with a checkable answer
        return None if extract_answer(text) == answer else "states a wrong answer"
    verdict = chosen.split(",")[0].lower()
    if dimension == "correct" and verdict in ("yes", "no"):  # a myth: does the reply say the same yes or no?
        said = ((extract_answer(text) or text.lower()).split() or [""])[0].strip(".,!")
        return None if said == verdict else "gets the myth wrong"
    if dimension == "helpful" and refusal(text):
        return "refuses a harmless request"
    return None

def onpolicy_pairs(rows: Any, replies: list[Any], keep_written: tuple[str, ...] = ()) -> list[dict]:
    """Pairs rejecting the model's own reply where it is worse (else skipped, or written in `keep_written` dims)."""
    pairs = []
    for row, reply in zip(rows, replies):
        why = worse_than_chosen(row, reply.text, reply.stopped)
        if why is None and row["dimension"] not in keep_written:
            continue
        rejected = [{"role": "assistant", "content": reply.text}] if why else row["rejected"]
        pairs.append({"prompt": row["prompt"], "chosen": row["chosen"], "rejected": rejected,
                      "dimension": row["dimension"], "source": "model" if why else "written", "why": why or ""})
    return pairs

def style_anchors(conversations: Any, n: int) -> list[dict]:
    """Pairs keeping SFT's style: its house-style reply ("The answer is 42. ...") chosen over the bare "42."."""
    rows = [r for r in conversations if r["answer"] and len(r["messages"]) == 2][:n]
    return [{"prompt": r["messages"][:1], "chosen": r["messages"][1:], "dimension": "style", "source": "anchor",
             "rejected": [{"role": "assistant", "content": f"{r['answer']}."}], "why": "the bare answer"} for r in rows]
