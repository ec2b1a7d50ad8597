"""Load, convert and check SFT and preference data; every problem of a file in one DataError (file, line, field)."""

from __future__ import annotations

import difflib
import json
import re
from collections import namedtuple
from collections.abc import Callable
from pathlib import Path
from typing import Any

from datasets import Dataset, load_dataset

from smolkit.models import HUB_ID, hub_offline
from smolkit.runtime import data_dir

ROLES = ("system", "user", "assistant")
COLUMNS = {"sft": ("messages", "category", "answer"), "dpo": ("prompt", "chosen", "rejected", "dimension")}
LAST_ROLE = {"messages": "assistant", "prompt": "user"}  # chosen and rejected: exactly one assistant message
TURN = re.compile(r"\n\n(System|Human|Assistant): ?")
SPEAKERS = {"System": "system", "Human": "user", "Assistant": "assistant"}
LAYOUT = "an optional 'System:' turn, then 'Human:' and 'Assistant:' alternating, separated by a blank line"
MESSAGES_HINT = ('write it as {"messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": '
                 '"..."}]} or as {"prompt": "...", "completion": "..."}')
Problem = namedtuple("Problem", "file line field message")  # one thing wrong with one row
Report = Callable[[str, str], None]  # report(field, message) records a problem of the current row

class DataError(ValueError):
    """Invalid data: `.problems` lists every problem found, and str() shows one per line."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        lines = [f"{p.file} line {p.line}, field {p.field!r}: {p.message}" for p in self.problems]
        super().__init__("\n".join([f"{len(lines)} problem{'s' * (len(lines) != 1)} found:", *lines]))

def load_sft(source: str | Path = "local", split: str = "train", tokenizer: Any = None,
             max_length: int | None = None) -> Dataset:
    """Checked SFT conversations; columns messages, category, answer (None where a row has none)."""
    return _load(source, "sft", split, tokenizer, max_length)

def load_preferences(source: str | Path = "local", split: str = "train", tokenizer: Any = None,
                     max_length: int | None = None) -> Dataset:
    """Checked preference pairs; columns prompt, chosen, rejected, dimension (None where a row has none)."""
    return _load(source, "dpo", split, tokenizer, max_length)

def _load(source: str | Path, kind: str, split: str, tokenizer: Any, max_length: int | None) -> Dataset:
    """Parse, convert, check and measure every row of a source; raise all problems together."""
    if (tokenizer is None) != (max_length is None):
        raise ValueError("pass both tokenizer and max_length to check example lengths, or neither")
    file, lines = _read(source, kind, split)
    problems, clean = [], []
    for line, row in lines:
        report = _reporter(file, line, found := [])
        try:
            if isinstance(row, bytes):  # a line of a file; hub rows are objects already
                row = json.loads(row.decode("utf-8")) if row.strip() else report("json", "empty line")
            row = to_conversational(row, file, line) if isinstance(row, dict) else row
        except UnicodeDecodeError as err:
            report("encoding", f"byte 0x{row[err.start]:02x} at column {err.start + 1} is not UTF-8; "
                   "save the file as UTF-8")
        except json.JSONDecodeError as err:
            report("json", f"invalid JSON: {err.msg} (column {err.colno})")
        except DataError as err:
            found += err.problems
        row = None if found else _check(row, kind, report)
        if not found and max_length is not None:
            _check_length(row, tokenizer, max_length, report)
        problems += found
        clean += [] if found else [row]
    if problems or not lines:
        raise DataError(problems or [Problem(file, 1, "json", "no rows found")])
    return Dataset.from_dict({key: [row[key] for row in clean] for key in COLUMNS[kind]})

def _read(source: str | Path, kind: str, split: str) -> tuple[str, list[tuple[int, Any]]]:
    """(name for messages, [(line number, bytes of the line or a hub row)]) of a source."""
    if isinstance(source, str) and HUB_ID.match(source) and not source.endswith(".jsonl") and not Path(source).exists():
        if hub_offline():
            raise ConnectionError(f"cannot load {source!r}: Hugging Face Hub offline mode is on (HF_HUB_OFFLINE or a "
                                  "sibling is set); use source='local' for the course data, or a .jsonl file")
        return f"{source} ({split})", list(enumerate(load_dataset(source, split=split), start=1))
    path = data_dir() / kind / f"{split}.jsonl" if source == "local" else Path(source)
    path = path / f"{split}.jsonl" if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"no data for split {split!r}: {path} does not exist")
    root = data_dir().resolve().parent
    file = path.resolve().relative_to(root).as_posix() if path.resolve().is_relative_to(root) else str(path)
    data = path.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError([Problem(file, 1, "encoding", "the file is UTF-16 (it starts with a UTF-16 byte order "
                                 "mark), not UTF-8; save the file as UTF-8")])
    return file, list(enumerate(data.removeprefix(b"\xef\xbb\xbf").splitlines(), start=1))

def _check(row: Any, kind: str, report: Report) -> dict | None:
    """Report every problem of one SFT ("sft") or preference ("dpo") row; the row with exactly its columns."""
    fields = [key for key in COLUMNS[kind] if key in ("messages", "prompt", "chosen", "rejected")]  # the rest: str
    if not _keys(row, COLUMNS[kind], fields, "", report):
        return None
    for key in [key for key in COLUMNS[kind] if key not in fields]:
        if row.get(key) is not None and not isinstance(row[key], str):
            report(key, f"must be a string or null, got {row[key]!r:.40}")
    roles = {key: _messages(row[key], key, order=key in LAST_ROLE, report=report) for key in fields}
    for key, got in roles.items():
        if got and key in LAST_ROLE and got[-1] != LAST_ROLE[key]:
            report(key, f"{key} must end with a message of role {LAST_ROLE[key]!r}")
        elif got and key not in LAST_ROLE and got != ["assistant"]:
            report(key, f"must be a list with exactly one 'assistant' message, got roles {got}")
    answers = [row[key][0]["content"].strip() for key in ("chosen", "rejected") if roles.get(key)]
    if len(answers) == 2 and answers[0] == answers[1]:
        report("rejected", "identical to 'chosen': a preference pair needs two different answers")
    return {key: row.get(key) for key in COLUMNS[kind]}

def _keys(obj: Any, allowed: tuple[str, ...], required: list[str], prefix: str, report: Report) -> bool:
    """Report a non-object, unknown keys (with a did-you-mean) and missing keys; True when none is missing."""
    if not isinstance(obj, dict):
        report(prefix.rstrip(".") or "row", f"expected a JSON object, got {obj!r:.40}")
        return False
    guessed: list[str] = []
    for key in [key for key in obj if key not in allowed]:
        guessed += (close := difflib.get_close_matches(str(key), allowed, n=1))
        hint = f"did you mean {close[0]!r}?" if close else f"expected one of: {', '.join(allowed)}"
        report(f"{prefix}{key}", f"unknown key {key!r} ({hint})")
    for key in [key for key in required if key not in obj and key not in guessed]:
        report(f"{prefix}{key}", f"missing key {key!r}")
    return all(key in obj for key in required)

def _messages(value: Any, field: str, order: bool, report: Report) -> list[str] | None:
    """Roles of a list of {"role", "content"} messages (in a valid order when `order`); None after a problem."""
    if not isinstance(value, list) or not value:
        return report(field, f"expected a list of messages, got {value!r:.40}")
    ok = True
    for i, message in enumerate(value):
        ok = _keys(message, ("role", "content"), ["role", "content"], f"{field}[{i}].", report) and ok
        known = message if isinstance(message, dict) else {}  # _keys reported what is missing
        role, content = known.get("role", "user"), known.get("content", "-")
        if role not in ROLES:
            ok = False
            report(f"{field}[{i}].role", f"unknown role {role!r} (expected one of: {', '.join(ROLES)})")
        if not isinstance(content, str) or not content.strip():
            ok = False
            report(f"{field}[{i}].content", "empty content" if isinstance(content, str)
                   else f"content must be a string, got {content!r:.40}")
    roles = [message["role"] for message in value] if ok else []
    turns = [(i, role) for i, role in enumerate(roles) if i or role != "system"] if order else []
    for n, (i, role) in enumerate(turns):
        if role != (want := ("user", "assistant")[n % 2]):
            why = "a 'system' message may only come first" if role == "system" else "turns alternate, user first"
            return report(f"{field}[{i}].role", f"expected {want!r}, got {role!r} ({why})")
    return roles or None

def _check_length(row: dict, tokenizer: Any, max_length: int, report: Report) -> None:
    """Report an example longer than max_length tokens, rendered with the tokenizer's chat template."""
    sequences = {"messages": row["messages"]} if "messages" in row else \
        {key: row["prompt"] + row[key] for key in ("chosen", "rejected")}
    for field, messages in sequences.items():
        n = len(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])
        if n > max_length:
            what = "example" if field == "messages" else f"prompt + {field}"
            report(field, f"{what} is {n} tokens, longer than max_length={max_length}")

def _reporter(file: str, line: int, found: list[Problem]) -> Report:
    """A report(field, message) that adds a problem of this row to `found` (and returns None)."""
    return lambda field, message: found.append(Problem(file, line, field, message))

def to_conversational(row: dict, file: str = "<memory>", line: int = 1) -> dict:
    """One row in the course's conversational shape (string fields become messages); DataError when it can't be."""
    report = _reporter(file, line, found := [])
    if "prompt" not in row and isinstance(row.get("chosen"), str) and isinstance(row.get("rejected"), str):
        return hh_rlhf_to_preference(row, file, line)
    out = {key: value for key, value in row.items() if key != "full_topic"}  # smoltalk's topic column
    if "chosen" in row or "rejected" in row:  # TRL's standard preference strings
        out |= {key: _as_messages(row[key], key, report) for key in ("prompt", "chosen", "rejected") if key in row}
    elif "text" in row and "messages" not in row:  # the guide's "Human: ...\n\nAssistant: ..." text
        out = {"messages": _text_messages(row["text"], "text", "Assistant", report)} | out
        del out["text"]
    elif "completion" in row and "messages" not in row:  # prompt and completion: strings, or lists of messages
        if "prompt" not in row:
            report("prompt", "missing key 'prompt' (a 'completion' needs the prompt it answers)")
        parts = [_as_messages(out.pop(key), key, report) for key in ("prompt", "completion") if key in row]
        out = {"messages": None if found else parts[0] + parts[1]} | out
    if found:
        raise DataError(found)
    return out

def hh_rlhf_to_preference(row: dict, file: str = "<memory>", line: int = 1) -> dict:
    """A raw hh-rlhf pair as prompt messages plus one answer each, split at each transcript's LAST Assistant turn."""
    report = _reporter(file, line, found := [])  # so words both answers start with stay in the answers
    chosen, rejected = (_text_messages(row.get(key), key, "Assistant", report) for key in ("chosen", "rejected"))
    if chosen and rejected and chosen[:-1] != rejected[:-1]:
        report("rejected", "the turns before the last Assistant turn differ from 'chosen' (a pair has one prompt)")
    if found:
        raise DataError(found)
    return {"prompt": chosen[:-1], "chosen": chosen[-1:], "rejected": rejected[-1:], "dimension": None}

def _as_messages(value: Any, field: str, report: Report) -> list | None:
    """A prompt or answer string as messages (a prompt in "Human: ..." turns is split); lists pass unchanged."""
    if isinstance(value, list):
        return value
    if not isinstance(value, str):
        return report(field, f"expected a string or a list of messages, got {value!r:.40}")
    text = value.strip()
    if field == "prompt" and text.startswith(("System:", "Human:")):
        return _text_messages(text.removesuffix("Assistant:"), field, "Human", report)
    if field != "prompt" and "\n\nHuman:" in text:
        return report(field, "contains a '\\n\\nHuman:' turn: an answer must be a single assistant reply")
    return [{"role": "user" if field == "prompt" else "assistant", "content": text.removeprefix("Assistant:").strip()}]

def _text_messages(text: Any, field: str, last: str, report: Report) -> list | None:
    """Messages of "System: ...\\n\\nHuman: ...\\n\\nAssistant: ..." text whose turns alternate and end with `last`."""
    if not isinstance(text, str):
        return report(field, f"expected a string, got {text!r:.40}")
    if not text.strip().startswith(("System:", "Human:")):
        why = f" can't be turned into a conversation safely; {MESSAGES_HINT}" if field == "text" else ""
        return report(field, f"text without 'Human:' and 'Assistant:' turns{why}")
    pieces = TURN.split("\n\n" + text.strip())
    turns = list(zip(pieces[1::2], [piece.strip() for piece in pieces[2::2]]))
    expected = ["System"] * (turns[0][0] == "System") + ["Human", "Assistant"] * len(turns)
    for i, ((speaker, content), want) in enumerate(zip(turns, expected), start=1):
        if speaker != want:
            return report(field, f"turn {i} is '{speaker}:', expected '{want}:' ({LAYOUT})")
        if not content:
            return report(field, f"turn {i} ('{speaker}:') is empty")
    if turns[-1][0] != last:
        return report(field, f"the last turn must be '{last}:' ({LAYOUT})")
    return [{"role": SPEAKERS[speaker], "content": content} for speaker, content in turns]
