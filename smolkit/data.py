"""Load, validate and convert the course's SFT and preference (DPO) data.

Both loaders accept the same kinds of `source`:
  * "local": the course data in data/sft/{split}.jsonl or data/dpo/{split}.jsonl;
  * a path to a UTF-8 .jsonl file (a UTF-8 byte order mark is fine), or to a folder that contains {split}.jsonl;
  * a Hugging Face Hub id "owner/name" (needs network; rows are converted by their columns).

Rows come in the course's conversational shape (lists of {"role", "content"} messages) or in a shape that
`to_conversational` converts: TRL's standard preference strings {"prompt", "chosen", "rejected"}, SFT
{"prompt", "completion"} strings or "Human: ...\n\nAssistant: ..." {"text"}, smoltalk rows and raw hh-rlhf
transcripts. Every row is checked before a Dataset is returned. All problems (a file that is not UTF-8, bad
JSON, a bad field, a row that cannot be converted) are collected and raised together as one DataError with
file, line and field, so a broken file shows every bad line at once. Nothing is silently dropped.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets import Dataset, load_dataset

from smolkit.lengths import token_ids
from smolkit.paths import HUB_ID, REPO_ROOT, atomic_write_text, data_dir, hub_offline

ROLES = ("system", "user", "assistant")
MESSAGE_KEYS = ("role", "content")
SFT_KEYS = ("messages", "category", "answer")
PREFERENCE_KEYS = ("prompt", "chosen", "rejected", "dimension")
HH_TURN = re.compile(r"\n\n(Human|Assistant): ?")
GUIDE_TURN = re.compile(r"\n\n(System|Human|Assistant): ?")  # the guide's text layout, system first if any
SPEAKERS = {"System": "system", "Human": "user", "Assistant": "assistant"}
MESSAGES_HINT = (
    'write it as {"messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]}, '
    'as {"prompt": "...", "completion": "..."}, or as the guide\'s "Human: ...\\n\\nAssistant: ..." text'
)
STRING_OR_MESSAGES = "a string or a list of messages"  # what prompt, chosen and rejected may be
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
SAVE_UTF8 = "save the file as UTF-8"
MAX_ENCODING_PROBLEMS = 10  # bad lines listed before the rest are summed up in one more problem

Report = Callable[[str, str], None]  # report(field, message) records one problem of the current row


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one row: where it is and what is wrong."""

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file} line {self.line}, field {self.field!r}: {self.message}"


class DataError(ValueError):
    """Invalid data; `.problems` lists every problem found, and str() shows one per line."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = list(problems)
        count = len(self.problems)
        header = f"{count} problem{'s' if count != 1 else ''} found:"
        super().__init__("\n".join([header, *(str(p) for p in self.problems)]))


# ---------------------------------------------------------------------------------------------
# Public loaders


def load_sft(
    source: str | Path = "local",
    split: str = "train",
    tokenizer: Any = None,
    max_length: int | None = None,
    subset: str | None = None,
) -> Dataset:
    """Load and validate SFT conversations; columns: messages (+ category, answer when present)."""
    file, rows = _read_source(source, "sft", split, subset)
    clean = validate_sft_rows(rows, file=file, tokenizer=tokenizer, max_length=max_length)
    columns = [key for key in SFT_KEYS if any(key in row for row in clean)]
    return Dataset.from_dict({key: [row.get(key) for row in clean] for key in columns})


def load_preferences(
    source: str | Path = "local",
    split: str = "train",
    tokenizer: Any = None,
    max_length: int | None = None,
    subset: str | None = None,
) -> Dataset:
    """Load and validate preference pairs; columns: prompt, chosen, rejected, dimension (may be None)."""
    file, rows = _read_source(source, "dpo", split, subset)
    clean = validate_preference_rows(rows, file=file, tokenizer=tokenizer, max_length=max_length)
    return Dataset.from_dict({key: [row[key] for row in clean] for key in PREFERENCE_KEYS})


# ---------------------------------------------------------------------------------------------
# Validation


def validate_sft_rows(
    rows: Iterable[tuple[int, Any]],
    file: str = "<memory>",
    tokenizer: Any = None,
    max_length: int | None = None,
) -> list[dict]:
    """Check (line number, JSON text or object) SFT rows; return clean rows or raise one DataError."""

    def convert(obj: Any, line: int) -> Any:  # smoltalk rows, prompt/completion strings, Human/Assistant text
        return _sft_to_conversational(obj, file, line)

    def lengths(row: dict) -> list[tuple[str, str, int]]:
        return [("messages", "example", len(token_ids(tokenizer, row["messages"])))]

    return _validate(rows, file, tokenizer, max_length, convert, _check_sft, lengths)


def validate_preference_rows(
    rows: Iterable[tuple[int, Any]],
    file: str = "<memory>",
    tokenizer: Any = None,
    max_length: int | None = None,
) -> list[dict]:
    """Check (line number, JSON text or object) preference rows; return clean rows or raise one DataError."""

    def convert(obj: Any, line: int) -> Any:  # raw hh-rlhf transcripts, TRL's standard prompt/chosen/rejected strings
        return _preference_to_conversational(obj, file, line)

    def lengths(row: dict) -> list[tuple[str, str, int]]:
        return [(k, f"prompt + {k}", len(token_ids(tokenizer, row["prompt"] + row[k]))) for k in ("chosen", "rejected")]

    return _validate(rows, file, tokenizer, max_length, convert, _check_preference, lengths)


def _validate(rows: Iterable[tuple[int, Any]], file: str, tokenizer: Any, max_length: int | None,
              convert: Callable[[Any, int], Any], check: Callable[[Any, Report], dict | None],
              lengths: Callable[[dict], list[tuple[str, str, int]]]) -> list[dict]:
    """Parse, convert hub shapes, check and measure every row; collect all problems and raise them once."""
    _check_length_args(tokenizer, max_length)
    problems: list[Problem] = []
    clean: list[dict] = []
    for line, raw in rows:
        found: list[Problem] = []
        report = _reporter(file, line, found)
        obj = _parse(raw, report)
        if not found:
            try:
                obj = convert(obj, line)
            except DataError as err:
                found += err.problems
        row = None if found else check(obj, report)
        if not found and max_length is not None:
            for field, what, length in lengths(row):
                if length > max_length:
                    report(field, f"{what} is {length} tokens, longer than max_length={max_length}")
        problems += found
        if not found:
            clean.append(row)
    _raise_if_any(problems, clean, file)
    return clean


def _check_sft(obj: Any, report: Report) -> dict | None:
    """Check one SFT row object and report every problem; return it normalised (None if it can't be)."""
    if not _check_object(obj, SFT_KEYS, ("messages",), report):
        return None
    roles = _check_messages(obj["messages"], "messages", report)
    ok = _check_optional_strings(obj, ("category", "answer"), report)
    if roles is None or not ok:
        return None
    if not _check_order(roles, "messages", report):
        return None
    if roles[-1] != "assistant":
        report("messages", "conversation must end with an 'assistant' message")
        return None
    row = {"messages": _clean_messages(obj["messages"])}
    row.update({key: obj[key] for key in ("category", "answer") if key in obj})
    return row


def _check_preference(obj: Any, report: Report) -> dict | None:
    """Check one preference row and report every problem; return it normalised (None if it can't be)."""
    if not _check_object(obj, PREFERENCE_KEYS, ("prompt", "chosen", "rejected"), report):
        return None
    prompt_roles = _check_messages(obj["prompt"], "prompt", report, STRING_OR_MESSAGES)
    ok = _check_optional_strings(obj, ("dimension",), report)
    if prompt_roles is not None:
        if not _check_order(prompt_roles, "prompt", report):
            ok = False
        elif prompt_roles[-1] != "user":
            report("prompt", "prompt must end with a 'user' message")
            ok = False
    for answer in ("chosen", "rejected"):
        roles = _check_messages(obj[answer], answer, report, STRING_OR_MESSAGES)
        if roles is not None and roles != ["assistant"]:
            report(answer, f"must be a list with exactly one 'assistant' message, got roles {roles}")
            ok = False
        ok = ok and roles is not None
    if prompt_roles is None or not ok:
        return None
    if obj["chosen"][0]["content"].strip() == obj["rejected"][0]["content"].strip():
        report("rejected", "identical to 'chosen': a preference pair needs two different answers")
        return None
    row = {key: _clean_messages(obj[key]) for key in ("prompt", "chosen", "rejected")}
    row["dimension"] = obj.get("dimension")
    return row


def _check_object(
    obj: Any, allowed: tuple[str, ...], required: tuple[str, ...], report: Report, prefix: str = ""
) -> bool:
    """Report unknown and missing keys; True when obj is an object with every required key."""
    if not isinstance(obj, dict):
        report(prefix.rstrip(".") or "row", f"expected a JSON object, got {_kind(obj)}")
        return False
    suggested = set()
    for key in obj:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"expected one of: {', '.join(allowed)}"
            report(f"{prefix}{key}", f"unknown key {key!r} ({hint})")
            suggested.update(close)
    for key in required:
        if key not in obj and key not in suggested:
            report(f"{prefix}{key}", f"missing key {key!r}")
    return all(key in obj for key in required)


def _check_messages(
    messages: Any, field: str, report: Report, expected: str = "a list of messages"
) -> list[str] | None:
    """Check a list of chat messages; return their roles, or None when any message is malformed."""
    if not isinstance(messages, list):
        report(field, f"expected {expected}, got {_kind(messages)}")
        return None
    if not messages:
        report(field, "expected at least one message, got an empty list")
        return None
    roles, ok = [], True
    for i, message in enumerate(messages):
        where = f"{field}[{i}]"
        if not _check_object(message, MESSAGE_KEYS, MESSAGE_KEYS, report, prefix=f"{where}."):
            ok = False
            if not isinstance(message, dict):
                continue
        role, content = message.get("role"), message.get("content")
        if "role" in message and role not in ROLES:
            report(f"{where}.role", f"unknown role {role!r} (expected one of: {', '.join(ROLES)})")
            ok = False
        if "content" in message:
            if not isinstance(content, str):
                report(f"{where}.content", f"content must be a string, got {_kind(content)}")
                ok = False
            elif not content.strip():
                report(f"{where}.content", "empty content")
                ok = False
        roles.append(role)
    return roles if ok else None


def _check_order(roles: list[str], field: str, report: Report) -> bool:
    """Check the role order: an optional system message first, then user and assistant alternating."""
    ok, turn, previous = True, 0, None
    for i, role in enumerate(roles):
        if role == "system":
            if i != 0:
                report(f"{field}[{i}].role", "a 'system' message is only allowed as the first message")
                ok = False
            continue
        expected = "user" if turn % 2 == 0 else "assistant"
        if role != expected:
            after = f"after {previous!r}" if previous else "as the first turn"
            report(
                f"{field}[{i}].role",
                f"expected {expected!r} {after}, got {role!r} "
                "(user and assistant turns must alternate, starting with user)",
            )
            ok = False
        turn, previous = turn + 1, role
    return ok


def _check_optional_strings(obj: dict, keys: tuple[str, ...], report: Report) -> bool:
    """Check that optional fields are strings (or null) when present."""
    ok = True
    for key in keys:
        if obj.get(key) is not None and not isinstance(obj[key], str):
            report(key, f"must be a string or null, got {_kind(obj[key])}")
            ok = False
    return ok


def _clean_messages(messages: list[dict]) -> list[dict]:
    """Copy messages with exactly the keys role and content."""
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def _reporter(file: str, line: int, found: list[Problem]) -> Report:
    """A report(field, message) function that records problems of one row."""
    return lambda field, message: found.append(Problem(file, line, field, message))


def _parse(raw: Any, report: Report) -> Any:
    """Parse one JSON line (objects pass through); None after reporting a problem."""
    if not isinstance(raw, str):
        return raw
    if not raw.strip():
        report("json", "empty line")
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as err:
        report("json", f"invalid JSON: {err.msg} (column {err.colno})")
        return None


def _raise_if_any(problems: list[Problem], clean: list[dict], file: str) -> None:
    """Raise one DataError for all problems, or for a source without any rows."""
    if not problems and not clean:
        problems = [Problem(file, 1, "json", "no rows found")]
    if problems:
        raise DataError(problems)


def _check_length_args(tokenizer: Any, max_length: int | None) -> None:
    """Length checks need both a tokenizer and max_length."""
    if (tokenizer is None) != (max_length is None):
        raise ValueError("pass both tokenizer and max_length to check example lengths, or neither")


def _kind(value: Any) -> str:
    """The JSON name of a value's type, for error messages."""
    names = {str: "string", bool: "boolean", int: "number", float: "number", list: "list", dict: "object"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


# ---------------------------------------------------------------------------------------------
# Converters for the hub datasets the course compares against


def smoltalk_to_sft(row: dict) -> dict:
    """Keep only the messages of a smoltalk-style row (drops full_topic and any other column)."""
    messages = row.get("messages")
    if isinstance(messages, list):
        messages = [{k: m[k] for k in MESSAGE_KEYS if k in m} if isinstance(m, dict) else m for m in messages]
    return {"messages": messages}


def hh_rlhf_to_preference(row: dict, file: str = "<memory>", line: int = 1) -> dict:
    """Turn raw hh-rlhf chosen/rejected transcripts into prompt messages plus one-message answers.

    Each transcript is split at its LAST "\\n\\nAssistant:" turn, so words shared by the start of the
    two answers stay in the answers (unlike a longest-common-prefix split). Both transcripts must share
    the same conversation before that turn; otherwise a DataError is raised.
    """
    problems: list[Problem] = []
    parts = {}
    for key in ("chosen", "rejected"):
        text = row.get(key)
        if not isinstance(text, str):
            problems.append(Problem(file, line, key, f"expected a transcript string, got {_kind(text)}"))
            continue
        try:
            parts[key] = _split_transcript(text)
        except ValueError as err:
            problems.append(Problem(file, line, key, str(err)))
    if len(parts) == 2 and parts["chosen"][0] != parts["rejected"][0]:
        problems.append(
            Problem(
                file,
                line,
                "rejected",
                "the conversation before the last Assistant turn differs "
                "from 'chosen': both must share the same prompt",
            )
        )
    if problems:
        raise DataError(problems)
    return {
        "prompt": parts["chosen"][0],
        "chosen": [{"role": "assistant", "content": parts["chosen"][1]}],
        "rejected": [{"role": "assistant", "content": parts["rejected"][1]}],
        "dimension": None,
    }


def _split_transcript(text: str) -> tuple[list[dict], str]:
    """Split one hh-rlhf transcript into prompt messages and the final assistant answer."""
    marker = "\n\nAssistant:"
    cut = text.rfind(marker)
    if cut < 0:
        raise ValueError("no '\\n\\nAssistant:' turn in the transcript")
    head, answer = text[:cut], text[cut + len(marker) :]
    if "\n\nHuman:" in answer:
        raise ValueError("the transcript ends with a Human turn, expected a final Assistant answer")
    pieces = HH_TURN.split(head)
    if pieces[0].strip():
        raise ValueError("text before the first '\\n\\nHuman:' turn")
    speakers, texts = pieces[1::2], pieces[2::2]
    prompt = [
        {"role": "user" if s == "Human" else "assistant", "content": t.strip()}
        for s, t in zip(speakers, texts, strict=True)
    ]
    return prompt, answer.strip()


def _is_hh_rlhf(obj: Any) -> bool:
    """True for a raw hh-rlhf row: chosen and rejected transcripts as strings, no prompt."""
    return (
        isinstance(obj, dict)
        and "prompt" not in obj
        and isinstance(obj.get("chosen"), str)
        and isinstance(obj.get("rejected"), str)
    )


# ---------------------------------------------------------------------------------------------
# The seed guide's (TRL's standard) shapes, converted to the course's conversational shape


def to_conversational(row: dict, file: str = "<memory>", line: int = 1) -> dict:
    """One row in the course's conversational shape; string fields become messages (DataError when they can't)."""
    if isinstance(row, dict) and ("chosen" in row or "rejected" in row):
        return _preference_to_conversational(row, file, line)
    return _sft_to_conversational(row, file, line)


def _preference_to_conversational(obj: Any, file: str, line: int) -> Any:
    """hh-rlhf transcripts, or prompt/chosen/rejected strings, as messages; lists and other values pass unchanged."""
    if _is_hh_rlhf(obj):
        return hh_rlhf_to_preference(obj, file=file, line=line)
    if not isinstance(obj, dict):
        return obj
    found: list[Problem] = []
    report = _reporter(file, line, found)
    row = dict(obj)
    for key in ("prompt", "chosen", "rejected"):
        if isinstance(obj.get(key), str):
            row[key] = _prompt_turns(obj[key], key, report) if key == "prompt" else _answer_turns(obj[key], key, report)
    if found:
        raise DataError(found)
    return row


def _sft_to_conversational(obj: Any, file: str, line: int) -> Any:
    """A smoltalk row, prompt/completion or Human/Assistant text as {"messages": ...}; other rows pass unchanged."""
    if not isinstance(obj, dict):
        return obj
    if "full_topic" in obj:
        return smoltalk_to_sft(obj)
    if "messages" in obj or not ("text" in obj or "completion" in obj):
        return obj
    found: list[Problem] = []
    report = _reporter(file, line, found)
    if "text" in obj:
        used: tuple[str, ...] = ("text",)
        messages = _text_turns(obj["text"], report)
    else:
        used = ("prompt", "completion")
        if "prompt" not in obj:
            report("prompt", "missing key 'prompt' (a 'completion' needs the prompt it answers)")
        parts = [
            _prompt_turns(obj[key], key, report) if key == "prompt" else _answer_turns(obj[key], key, report)
            for key in used
            if key in obj
        ]
        messages = None if found else [m for part in parts for m in part]
    if found:
        raise DataError(found)
    return {"messages": messages, **{k: v for k, v in obj.items() if k not in used}}


def _prompt_turns(value: Any, field: str, report: Report) -> list | None:
    """A prompt string as messages: its Human/Assistant turns when written that way, else one user message."""
    if isinstance(value, list):
        return value
    if not isinstance(value, str):
        report(field, f"expected {STRING_OR_MESSAGES}, got {_kind(value)}")
        return None
    if not value.strip():
        report(field, "empty text")
        return None
    turns = _guide_turns(value)
    if turns is None:
        return [{"role": "user", "content": value.strip()}]
    if len(turns) > 1 and turns[-1] == ("Assistant", ""):
        turns.pop()  # the generation prompt "...\n\nAssistant:" at the end
    return _checked_turns(turns, field, "Human", report)


def _answer_turns(value: Any, field: str, report: Report) -> list | None:
    """An answer string as one assistant message (a leading "Assistant:" is dropped)."""
    if isinstance(value, list):
        return value
    if not isinstance(value, str):
        report(field, f"expected {STRING_OR_MESSAGES}, got {_kind(value)}")
        return None
    text = re.sub(r"^\s*Assistant: ?", "", value).strip()
    if not text:
        report(field, "empty text")
        return None
    if "\n\nHuman:" in text:
        report(field, "contains a '\\n\\nHuman:' turn: an answer must be a single assistant reply")
        return None
    return [{"role": "assistant", "content": text}]


def _text_turns(value: Any, report: Report) -> list | None:
    """SFT text in the guide's "Human: ...\\n\\nAssistant: ..." layout as messages; plain text is reported."""
    if not isinstance(value, str):
        report("text", f"expected a string, got {_kind(value)}")
        return None
    turns = _guide_turns(value) if value.strip() else None
    if turns is None:
        what = "empty text" if not value.strip() else "plain text without 'Human:' and 'Assistant:' turns"
        report("text", f"{what} can't be turned into a conversation safely; {MESSAGES_HINT}")
        return None
    return _checked_turns(turns, "text", "Assistant", report)


def _guide_turns(text: str) -> list[tuple[str, str]] | None:
    """(speaker, text) turns of "System: ...\\n\\nHuman: ...\\n\\nAssistant: ..." text; None when it has none."""
    body = text.strip()
    if not body.startswith(("System:", "Human:")):
        return None
    pieces = GUIDE_TURN.split("\n\n" + body)
    return [(speaker, content.strip()) for speaker, content in zip(pieces[1::2], pieces[2::2])]


def _checked_turns(turns: list[tuple[str, str]], field: str, last: str, report: Report) -> list[dict] | None:
    """Messages from turns that are not empty, alternate Human/Assistant (System first only) and end with `last`."""
    layout = "an optional 'System:' turn, then 'Human:' and 'Assistant:' alternating, separated by a blank line"
    expected = "Human"
    for i, (speaker, content) in enumerate(turns, start=1):
        if not content:
            report(field, f"turn {i} ('{speaker}:') is empty")
            return None
        if speaker == "System" and i == 1:
            continue
        if speaker != expected:
            report(field, f"turn {i} is '{speaker}:', expected '{expected}:' ({layout})")
            return None
        expected = "Assistant" if speaker == "Human" else "Human"
    if turns[-1][0] != last:
        report(field, f"the last turn must be '{last}:' ({layout})")
        return None
    return [{"role": SPEAKERS[speaker], "content": content} for speaker, content in turns]


# ---------------------------------------------------------------------------------------------
# Reading and writing files


def read_jsonl(path: str | Path) -> list[tuple[int, str]]:
    """Read a UTF-8 JSONL file as (line number, text) pairs; blank lines are kept, bytes not UTF-8 raise DataError."""
    path = Path(path)
    data, label = path.read_bytes(), _label(path)
    if data.startswith(UTF16_BOMS):
        message = "not UTF-8: the file starts with a UTF-16 byte order mark, so it looks like UTF-16"  # or UTF-32
        raise DataError([Problem(label, 1, "encoding", f"{message}; {SAVE_UTF8}")])
    chunks = data.removeprefix(b"\xef\xbb\xbf").split(b"\n")  # a UTF-8 byte order mark is fine
    if chunks[-1] == b"":
        chunks.pop()
    rows: list[tuple[int, str]] = []
    problems: list[Problem] = []
    for number, chunk in enumerate(chunks, start=1):
        message = _encoding_problem(chunk)
        if message is None:
            rows.append((number, chunk.decode("utf-8").rstrip("\r")))
        elif len(problems) == MAX_ENCODING_PROBLEMS:
            bad = sum(_encoding_problem(c) is not None for c in chunks[number - 1 :])
            message = f"{bad} lines from this one on are not UTF-8 (the first {MAX_ENCODING_PROBLEMS} are listed above)"
            problems.append(Problem(label, number, "encoding", f"{message}; {SAVE_UTF8}"))
            break
        else:
            problems.append(Problem(label, number, "encoding", message))
            if "UTF-16" in message:
                break  # every line of a UTF-16 file is bad: the first one says it all
    if problems:
        raise DataError(problems)
    return rows


def _encoding_problem(chunk: bytes) -> str | None:
    """Why one line's bytes are not UTF-8 text, from its first bad byte (None when they are UTF-8)."""
    nul = chunk.find(b"\x00")
    try:
        chunk.decode("utf-8")
        bad = nul if nul >= 0 else None
    except UnicodeDecodeError as err:
        bad = nul if 0 <= nul < err.start else err.start
    if bad is None:
        return None
    if bad == nul:
        return f"not UTF-8: NUL byte at column {bad + 1}, so the file looks like UTF-16 (or is not text); {SAVE_UTF8}"
    before = chunk[:bad].decode("utf-8", errors="replace")[-20:]
    where = f" (after {before!r})" if before else ""
    return f"not UTF-8: byte 0x{chunk[bad]:02x} at column {bad + 1}{where}; {SAVE_UTF8}"


def write_jsonl(rows: Iterable[dict], path: str | Path) -> Path:
    """Write rows as JSON lines atomically (a temporary file beside `path`, then a rename)."""
    return atomic_write_text(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def _read_source(
    source: str | Path, kind: str, split: str, subset: str | None
) -> tuple[str, list[tuple[int, Any]]]:
    """Resolve a source to (label for messages, rows as (line number, text or object))."""
    if _is_hub_id(source):
        return _read_hub(str(source), kind, split, subset)
    path = data_dir() / kind / f"{split}.jsonl" if source == "local" else Path(source)
    if path.is_dir():
        path = path / f"{split}.jsonl"
    if not path.is_file():
        available = sorted(p.stem for p in path.parent.glob("*.jsonl")) if path.parent.is_dir() else []
        hint = f" (available: {', '.join(available)})" if available else ""
        raise FileNotFoundError(f"no data for split {split!r}: {path} does not exist{hint}")
    return _label(path), read_jsonl(path)


def _is_hub_id(source: str | Path) -> bool:
    """True for 'owner/name' strings that are not local paths."""
    if not isinstance(source, str) or source == "local" or Path(source).exists():
        return False
    return bool(HUB_ID.match(source)) and not Path(source.split("/")[0]).exists()


def _read_hub(source: str, kind: str, split: str, subset: str | None) -> tuple[str, list[tuple[int, Any]]]:
    """Download a hub dataset split and shape its rows for validation (row number = index + 1)."""
    hint = "use source='local' for the course data, or a path to a .jsonl file"
    if hub_offline():
        raise ConnectionError(
            f"cannot load {source!r} from the Hugging Face Hub: offline mode is on "
            f"(HF_HUB_OFFLINE, TRANSFORMERS_OFFLINE or HF_DATASETS_OFFLINE is set); {hint}"
        )
    try:
        dataset = load_dataset(source, subset, split=split)
    except ConnectionError as err:
        raise ConnectionError(f"cannot reach the Hugging Face Hub to load {source!r}: {err}; {hint}") from err
    label = f"{source} ({split})"
    columns = set(dataset.column_names)
    if kind == "sft" and "messages" in columns:
        return label, [(i, smoltalk_to_sft(row)) for i, row in enumerate(dataset, start=1)]
    if kind == "sft" and ("text" in columns or {"prompt", "completion"} <= columns):  # the guide's shapes
        keep = ["text"] if "text" in columns else ["prompt", "completion"]
        return label, [(i, {key: row[key] for key in keep}) for i, row in enumerate(dataset, start=1)]
    if kind == "dpo" and {"chosen", "rejected"} <= columns:
        keep = [key for key in PREFERENCE_KEYS if key in columns]
        return label, [(i, {key: row[key] for key in keep}) for i, row in enumerate(dataset, start=1)]
    sft_columns = "a 'messages' or 'text' column, or 'prompt' and 'completion' columns"
    needed = sft_columns if kind == "sft" else "'chosen' and 'rejected' columns"
    raise ValueError(f"{label} has columns {sorted(columns)}; expected {needed}")


def _label(path: Path) -> str:
    """A short file name for messages: relative to the repo when inside it."""
    try:
        return path.resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return str(path)
