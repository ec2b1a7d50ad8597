"""smolkit.data (loading, checking and converting rows) and the course data in data/ that it loads."""

from __future__ import annotations

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
from hypothesis import given, settings
from hypothesis import strategies as st

import smolkit.data as sd
from smolkit.data import DataError, hh_rlhf_to_preference, load_preferences, load_sft, to_conversational
from smolkit.models import embedded_gguf
from smolkit.replies import FILLER, extract_answer, follows_format, normalise

DATA = Path(__file__).resolve().parent.parent / "data"
SPLITS = ("train", "test")
_spec = importlib.util.spec_from_file_location("make_data", DATA.parent / "tools" / "make_data.py")
make_data = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_data)

def rows(name: str) -> list[dict]:
    """The committed rows of data/<name>."""
    return [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines()]

def msgs(*pairs: tuple[str, str]) -> list[dict]:
    """Messages from (role, content) pairs."""
    return [{"role": role, "content": content} for role, content in pairs]

def write(path: Path, lines: list) -> Path:
    """A .jsonl file of these lines: objects as JSON, strings as they are."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines), encoding="utf-8")
    return path

GOOD_SFT = {"messages": msgs(("user", "Hi"), ("assistant", "Hello."))}
GOOD_DPO = {"prompt": msgs(("user", "Capital of Peru?")), "chosen": msgs(("assistant", "The answer is Lima.")),
            "rejected": msgs(("assistant", "The answer is Cusco.")), "dimension": "correct"}

@pytest.fixture(scope="module")
def tokenizer():
    """The embedded SmolLM2-135M-Instruct tokenizer, read from its GGUF file (no model conversion needed)."""
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(embedded_gguf().parent, gguf_file=embedded_gguf().name)

# --- loading ---------------------------------------------------------------------------------------------

def test_the_course_data_loads_unchanged_with_its_columns():
    for split, n_sft, n_dpo in (("train", 640, 420), ("test", 150, 110)):
        sft, dpo = load_sft(split=split), load_preferences(split=split)
        assert isinstance(sft, Dataset) and (len(sft), len(dpo)) == (n_sft, n_dpo)
        assert sft.to_list() == [{"messages": r["messages"], "category": r["category"], "answer": r.get("answer")}
                                 for r in rows(f"sft/{split}.jsonl")]  # answer None where a row has none
        assert dpo.column_names == ["prompt", "chosen", "rejected", "dimension"]
        assert dpo.to_list() == rows(f"dpo/{split}.jsonl")

def test_a_file_a_folder_and_every_sample_load(tmp_path):
    assert load_sft(DATA / "sft" / "test.jsonl").to_list() == load_sft(split="test").to_list()
    assert load_preferences(str(DATA / "dpo"), split="test").to_list() == load_preferences(split="test").to_list()
    for name, load in (("smoltalk_sample", load_sft), ("guide_format_sft", load_sft),
                       ("hh_rlhf_sample", load_preferences), ("guide_format_preferences", load_preferences)):
        assert len(load(DATA / "samples" / f"{name}.jsonl")) == len(rows(f"samples/{name}.jsonl"))
    with pytest.raises(FileNotFoundError, match=r"validation\.jsonl"):
        load_sft(split="validation")
    with pytest.raises(DataError, match="empty.jsonl line 1, field 'json': no rows found"):
        load_preferences(write(tmp_path / "empty.jsonl", []))

def test_a_hub_id_offline_fails_fast_and_suggests_local(monkeypatch):
    monkeypatch.setattr(sd, "load_dataset", lambda *args, **kwargs: pytest.fail("offline, yet the hub was tried"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for load in (load_sft, load_preferences):
        with pytest.raises(ConnectionError, match=r"offline.*source='local'"):
            load("HuggingFaceTB/smoltalk")

@pytest.mark.parametrize("hub_id, sample, load", [("HuggingFaceTB/smoltalk", "smoltalk_sample", load_sft),
                                                  ("Anthropic/hh-rlhf", "hh_rlhf_sample", load_preferences)])
def test_hub_rows_are_checked_and_converted_like_file_rows(monkeypatch, hub_id, sample, load):
    calls = []
    monkeypatch.setattr(sd, "load_dataset", lambda source, split: calls.append((source, split)) or
                        Dataset.from_list(rows(f"samples/{sample}.jsonl")))
    monkeypatch.setattr(sd, "hub_offline", lambda: False)  # whatever the environment says
    assert load(hub_id, split="test").to_list() == load(DATA / "samples" / f"{sample}.jsonl").to_list()
    assert calls == [(hub_id, "test")]

# --- every problem names its file, line and field --------------------------------------------------------

SFT_PROBLEMS = [
    ('{"messages": [', "json", "invalid JSON: Expecting value (column 15)"),
    ("", "json", "empty line"),
    ([1, 2], "row", "expected a JSON object, got [1, 2]"),
    ({"mesages": GOOD_SFT["messages"]}, "mesages", "unknown key 'mesages' (did you mean 'messages'?)"),
    ({**GOOD_SFT, "source": "web"}, "source", "unknown key 'source' (expected one of: messages, category, answer)"),
    ({"category": "x"}, "messages", "missing key 'messages'"),
    ({"messages": msgs(("user", "Hi"), ("bot", "Hello"))}, "messages[1].role", "unknown role 'bot'"),
    ({"messages": msgs(("user", "Hi"), ("system", "Be brief"), ("assistant", "Hello"))}, "messages[1].role",
     "a 'system' message may only come first"),
    ({"messages": msgs(("user", "Hi"), ("user", "Hi?"), ("assistant", "Hello"))}, "messages[1].role",
     "expected 'assistant', got 'user'"),
    ({"messages": msgs(("assistant", "Hello"), ("user", "Hi"))}, "messages[0].role", "expected 'user', got 'assistant"),
    ({"messages": msgs(("system", "Be brief"), ("user", "Hi"))}, "messages", "must end with a message of role 'assi"),
    ({"messages": msgs(("user", "Hi"), ("assistant", "   "))}, "messages[1].content", "empty content"),
    ({"messages": [{"role": "user", "content": 42}]}, "messages[0].content", "content must be a string, got 42"),
    ({"messages": [{"role": "user"}]}, "messages[0].content", "missing key 'content'"),
    ({"messages": [{"role": "user", "text": "Hi"}]}, "messages[0].text", "unknown key 'text'"),
    ({"messages": []}, "messages", "expected a list of messages, got []"),
    ({**GOOD_SFT, "answer": 20}, "answer", "must be a string or null, got 20"),
    ({"text": "The capital of France is Paris."}, "text", "text without 'Human:' and 'Assistant:' turns"),
    ({"text": "Human: Hi\nAssistant: Hello."}, "text", "the last turn must be 'Assistant:'"),
    ({"text": "Human: Hi\n\nHuman: Hello?\n\nAssistant: Yes."}, "text", "turn 2 is 'Human:', expected 'Assistant:'"),
    ({"text": "Human: Hi\n\nAssistant: "}, "text", "turn 2 ('Assistant:') is empty"),
    ({"text": ["Hi"]}, "text", "expected a string, got ['Hi']"),
    ({"completion": "Hello."}, "prompt", "missing key 'prompt'"),
    ({"prompt": "Hi", "completion": None}, "completion", "expected a string or a list of messages, got None"),
]
DPO_PROBLEMS = [
    ({**GOOD_DPO, "prompt": msgs(("user", "Hi"), ("assistant", "Hello"))}, "prompt", "must end with a message of role"),
    ({**GOOD_DPO, "prompt": msgs(("system", "Be brief"))}, "prompt", "must end with a message of role 'user'"),
    ({**GOOD_DPO, "prompt": " "}, "prompt[0].content", "empty content"),
    ({**GOOD_DPO, "chosen": msgs(("assistant", "A"), ("assistant", "B"))}, "chosen", "exactly one 'assistant'"),
    ({**GOOD_DPO, "rejected": msgs(("user", "No."))}, "rejected", "exactly one 'assistant' message"),
    ({**GOOD_DPO, "chosen": 7}, "chosen", "expected a string or a list of messages, got 7"),
    ({**GOOD_DPO, "rejected": "Lima.\n\nHuman: And Chile?"}, "rejected", "an answer must be a single assistant reply"),
    ({**GOOD_DPO, "prompt": "Human: Hi\n\nAssistant: Hello."}, "prompt", "the last turn must be 'Human:'"),
    ({**GOOD_DPO, "rejected": GOOD_DPO["chosen"]}, "rejected", "identical to 'chosen'"),
    ({k: v for k, v in GOOD_DPO.items() if k != "rejected"}, "rejected", "missing key 'rejected'"),
    ({**{k: v for k, v in GOOD_DPO.items() if k != "chosen"}, "chosne": []}, "chosne", "did you mean 'chosen'?"),
    ({**GOOD_DPO, "dimension": 3}, "dimension", "must be a string or null, got 3"),
    ({**GOOD_DPO, "rejected": msgs(("robot", "No"))}, "rejected[0].role", "unknown role 'robot'"),
    ("not json", "json", "invalid JSON"),
    ({"chosen": "\n\nHuman: Hi\n\nAssistant: Hello.", "rejected": "\n\nHuman: Hey\n\nAssistant: Go."}, "rejected",
     "the turns before the last Assistant turn differ from 'chosen'"),
    ({"chosen": "\n\nHuman: Hi", "rejected": "\n\nHuman: Hi\n\nAssistant: Go."}, "chosen", "last turn must be 'Assi"),
]

@pytest.mark.parametrize("load, bad, field, message", [(load_sft, *case) for case in SFT_PROBLEMS] +
                         [(load_preferences, *case) for case in DPO_PROBLEMS])
def test_a_problem_names_file_line_and_field(tmp_path, load, bad, field, message):
    good = GOOD_SFT if load is load_sft else GOOD_DPO
    with pytest.raises(DataError) as info:
        load(write(tmp_path / "bad.jsonl", [good, good, bad, good]))
    assert {p.line for p in info.value.problems} == {3} and info.value.problems[0].field == field
    assert f"bad.jsonl line 3, field '{field}': " in str(info.value) and message in str(info.value)

def test_every_problem_of_a_file_is_reported_at_once_by_its_path_in_the_repository(tmp_path, monkeypatch):
    monkeypatch.setattr(sd, "data_dir", lambda: tmp_path / "data")  # load_sft() reads tmp_path/data/sft/train.jsonl
    two_problems = {"messages": msgs(("user", "Hi"), ("bot", "Hello")), "source": "web"}
    write(tmp_path / "data" / "sft" / "train.jsonl",
          [GOOD_SFT, "{oops", GOOD_SFT, {"mesages": []}, two_problems, {"text": "Paris."}, GOOD_SFT])
    with pytest.raises(DataError) as info:
        load_sft()
    assert {p.file for p in info.value.problems} == {"data/sft/train.jsonl"}
    assert [(p.line, p.field) for p in info.value.problems] == [(2, "json"), (4, "mesages"), (5, "source"),
                                                                (5, "messages[1].role"), (6, "text")]
    text = str(info.value).splitlines()
    assert text[0] == "5 problems found:" and len(text) == 6  # one line per problem
    assert text[4] == ("data/sft/train.jsonl line 5, field 'messages[1].role': unknown role 'bot' (expected one of: "
                       "system, user, assistant)")

def test_a_byte_that_is_not_utf8_is_a_problem_naming_line_column_and_byte(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(json.dumps(GOOD_SFT).encode() + b'\n{"text": "caf\xe9"}\n{oops\n')  # Latin-1 "é"
    with pytest.raises(DataError) as info:
        load_sft(path)
    assert [(p.line, p.field) for p in info.value.problems] == [(2, "encoding"), (3, "json")]  # the rest still read
    assert "line 2, field 'encoding': byte 0xe9 at column 14 is not UTF-8; save the file as UTF-8" in str(info.value)

@pytest.mark.parametrize("bom, encoding", [(b"", "utf-16"), (b"\xfe\xff", "utf-16-be")])  # as Notepad saves it
def test_a_utf16_file_is_one_clear_problem(tmp_path, bom, encoding):
    path = tmp_path / "notepad.jsonl"
    path.write_bytes(bom + "\n".join([json.dumps(GOOD_SFT)] * 3).encode(encoding))
    for load in (load_sft, load_preferences):
        with pytest.raises(DataError, match=r"field 'encoding': the file is UTF-16.*save the file as UTF-8") as info:
            load(path)
        assert [(p.line, p.field) for p in info.value.problems] == [(1, "encoding")]

def test_a_utf8_byte_order_mark_and_crlf_line_ends_are_fine(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + (json.dumps(GOOD_SFT) + "\r\n").encode() * 2)
    assert load_sft(path)["messages"] == [GOOD_SFT["messages"]] * 2

# --- lengths ---------------------------------------------------------------------------------------------

def test_an_example_longer_than_max_length_is_a_problem(tmp_path, tokenizer):
    def tokens(messages):
        return len(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])

    long = {"messages": msgs(("system", "Be brief."), ("user", "A story?"), ("assistant", "Once upon a time. " * 9))}
    n = tokens(long["messages"])  # the whole conversation through the chat template, system prompt included
    assert tokens(GOOD_SFT["messages"]) < n - 1
    path = write(tmp_path / "long.jsonl", [GOOD_SFT, long])
    assert len(load_sft(path, tokenizer=tokenizer, max_length=n)) == 2
    with pytest.raises(DataError, match=rf"line 2, field 'messages': example is {n} tokens, longer than max_length"):
        load_sft(path, tokenizer=tokenizer, max_length=n - 1)
    pair = {**GOOD_DPO, "rejected": msgs(("assistant", "Well, let me think about that for a while. Maybe Cusco."))}
    n = tokens(pair["prompt"] + pair["rejected"])
    assert tokens(pair["prompt"] + pair["chosen"]) < n - 1
    path = write(tmp_path / "long_pair.jsonl", [GOOD_DPO, pair])
    with pytest.raises(DataError, match=rf"line 2, field 'rejected': prompt \+ rejected is {n} tokens") as info:
        load_preferences(path, tokenizer=tokenizer, max_length=n - 1)
    assert [(p.line, p.field) for p in info.value.problems] == [(2, "rejected")]  # prompt + chosen fits
    for args in ({"max_length": 50}, {"tokenizer": tokenizer}):
        with pytest.raises(ValueError, match="both tokenizer and max_length"):
            load_sft(path, **args)

def test_the_course_data_fits_in_200_tokens(tokenizer):
    for split in SPLITS:  # the model's own chat template, whose default system prompt makes it the longer one
        load_sft(split=split, tokenizer=tokenizer, max_length=200)
        load_preferences(split=split, tokenizer=tokenizer, max_length=200)

# --- conversions -----------------------------------------------------------------------------------------

CONVERSIONS = [
    ({"prompt": "2 + 2?", "chosen": "4.", "rejected": "5."},  # TRL's standard preference strings
     {"prompt": msgs(("user", "2 + 2?")), "chosen": msgs(("assistant", "4.")), "rejected": msgs(("assistant", "5."))}),
    ({"prompt": "Human: Hi\n\nAssistant: Hello.\n\nHuman: Bye\n\nAssistant:", "chosen": "Assistant: Bye.",
      "rejected": " Go.", "dimension": "helpful"},  # a prompt in the guide's layout, ending with its generation prompt
     {"prompt": msgs(("user", "Hi"), ("assistant", "Hello."), ("user", "Bye")), "chosen": msgs(("assistant", "Bye.")),
      "rejected": msgs(("assistant", "Go.")), "dimension": "helpful"}),
    ({**GOOD_DPO, "prompt": "Capital of Peru?"}, GOOD_DPO),  # strings mixed with messages
    ({"prompt": "Hi", "completion": "Hello.", "category": "everyday"}, {**GOOD_SFT, "category": "everyday"}),
    ({"prompt": msgs(("user", "Hi")), "completion": msgs(("assistant", "Hello."))}, GOOD_SFT),  # TRL's conversational
    ({"text": "System: Be brief.\n\nHuman: Hi\n\nAssistant: Hello.\n\nHuman: Bye\n\nAssistant: Ok."}, {"messages": msgs(
        ("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello."), ("user", "Bye"), ("assistant", "Ok."))}),
    ({"messages": GOOD_SFT["messages"], "full_topic": "Greetings"}, GOOD_SFT),  # smoltalk
    ({"chosen": "\n\nHuman: Hi\n\nAssistant: Hello.", "rejected": "\n\nHuman: Hi\n\nAssistant: Go."},  # hh-rlhf
     {"prompt": msgs(("user", "Hi")), "chosen": msgs(("assistant", "Hello.")), "rejected": msgs(("assistant", "Go.")),
      "dimension": None}),
    (GOOD_SFT, GOOD_SFT), (GOOD_DPO, GOOD_DPO),  # already conversational
]

@pytest.mark.parametrize("row, expected", CONVERSIONS)
def test_to_conversational(tmp_path, row, expected):
    before = json.dumps(row)
    assert to_conversational(row) == expected
    assert json.dumps(row) == before  # the input row is left as it was
    load, empty = (load_preferences, {"dimension": None}) if "chosen" in expected else \
        (load_sft, {"category": None, "answer": None})
    assert load(write(tmp_path / "row.jsonl", [row])).to_list() == [{**empty, **expected}]  # the loaders convert too

def test_a_row_that_cannot_be_converted_is_a_problem_at_its_file_and_line():
    with pytest.raises(DataError) as info:
        to_conversational({"text": "Paris is the capital of France."}, file="guide.jsonl", line=5)
    [(file, line, field, message)] = info.value.problems
    assert (file, line, field) == ("guide.jsonl", 5, "text")
    assert '{"messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]}' in message
    with pytest.raises(DataError, match="hh.jsonl line 4, field 'chosen': the last turn must be 'Assistant:'"):
        hh_rlhf_to_preference({"chosen": "\n\nHuman: Hi", "rejected": "\n\nHuman: Hi\n\nAssistant: Go."}, "hh.jsonl", 4)

def test_hh_rlhf_pairs_split_at_the_last_assistant_turn_keeping_shared_first_words_in_the_answers():
    sample = rows("samples/hh_rlhf_sample.jsonl")
    for row in sample:
        pair = hh_rlhf_to_preference(row)
        for side in ("chosen", "rejected"):
            head, answer = row[side].rsplit("\n\nAssistant: ", 1)
            assert pair[side] == msgs(("assistant", answer))
            assert len(pair["prompt"]) == head.count("\n\nHuman: ") + head.count("\n\nAssistant: ")
    assert any(len(hh_rlhf_to_preference(row)["prompt"]) == 3 for row in sample)  # multi-turn prompts too
    row = next(r for r in sample if "I think" in os.path.commonprefix([r["chosen"], r["rejected"]]))
    pair = hh_rlhf_to_preference(row)  # a common-prefix split would move "I think " into the prompt
    assert pair["prompt"] == msgs(("user", "How do I keep cut flowers fresh for longer?"))
    assert pair["chosen"][0]["content"].startswith("I think ") and pair["rejected"][0]["content"].startswith("I think ")

TEXT = st.lists(st.sampled_from(["Human:", "Assistant:", "System:", "\n\n", "\n", " ", "Hi"]), max_size=6).map("".join)
MESSAGE = st.fixed_dictionaries({"role": st.sampled_from(["system", "user", "assistant", "bot"]), "content": TEXT})
MESSAGES = st.lists(st.one_of(MESSAGE, TEXT, st.none()), max_size=4)
VALUE = st.one_of(st.none(), st.integers(), TEXT, MESSAGES)
KEYS = st.sampled_from(["messages", "prompt", "completion", "text", "chosen", "rejected", "answer", "mesages"])
ROW = st.one_of(st.fixed_dictionaries({"messages": MESSAGES}, optional={"category": VALUE, "full_topic": VALUE}),
                st.fixed_dictionaries({key: VALUE for key in ("prompt", "chosen", "rejected", "dimension")}),
                st.dictionaries(KEYS, VALUE, min_size=1, max_size=3), VALUE, st.sampled_from([GOOD_SFT, GOOD_DPO]))

@settings(max_examples=200, deadline=None)
@given(st.lists(ROW, min_size=1, max_size=4), st.sampled_from([load_sft, load_preferences]))
def test_malformed_rows_only_raise_data_error_and_none_is_dropped(tmp_path_factory, generated, load):
    fuzz_file = tmp_path_factory.getbasetemp() / "fuzz.jsonl"  # one file, rewritten by every example
    fuzz_file.write_text("".join(json.dumps(row) + "\n" for row in generated), encoding="utf-8")
    try:
        assert len(load(fuzz_file)) == len(generated)
    except DataError as err:
        assert err.problems and {p.line for p in err.problems} <= set(range(1, len(generated) + 1))

# --- the course data: splits kept apart, and what each pair teaches --------------------------------------

def norm(text: str) -> str:
    """Lower-case, without punctuation or extra whitespace."""
    return " ".join("".join(c for c in text.lower() if c.isalnum() or c.isspace()).split())

def requests(split: str) -> tuple[list[str], list[str]]:
    """(the first user turn of each SFT row and the last of each preference prompt, every user turn) of a split."""
    sft, dpo = rows(f"sft/{split}.jsonl"), rows(f"dpo/{split}.jsonl")
    users = [[m["content"] for m in r["messages"] if m["role"] == "user"] for r in sft]
    asked = [u[0] for u in users] + [r["prompt"][-1]["content"] for r in dpo]
    return asked, asked + [turn for u in users for turn in u[1:]]

def test_train_and_test_share_no_request_and_no_pair_repeats_a_prompt():
    shared = {norm(t) for t in requests("test")[0]} & {norm(t) for t in requests("train")[1]}
    assert not shared, sorted(shared)[:5]
    for split in SPLITS:
        prompts = [norm(r["prompt"][-1]["content"]) for r in rows(f"dpo/{split}.jsonl")]
        assert len(set(prompts)) == len(prompts)

def matches(templates: list[str], question: str) -> re.Match | None:
    """The match of a question against generator templates: {v} a number, {frm} and {to} unit words."""
    fields = {"v": r"(?P<v>-?\d+(?:\.\d+)?)", "frm": "(?P<frm>[a-z]+)", "to": "(?P<to>[a-z]+)"}
    for template in templates:
        if m := re.fullmatch(re.sub(r"\\\{(\w+)\\\}", lambda f: fields[f[1]], re.escape(template)), question):
            return m
    return None

def conversion(question: str) -> frozenset | None:
    """The quantity a unit question converts, as {(unit, value), (unit, value)}: the same either way round."""
    factors = {(big, small): factor for big, small, factor, _ in make_data.CONVERSIONS}
    factors |= {(small, big): 1 / factor for (big, small), factor in factors.items()}
    quantity = None
    if m := matches(make_data.TEMPERATURE_QUESTIONS["C"], question):
        quantity = {("C", Decimal(m["v"])), ("F", Decimal(m["v"]) * 9 / 5 + 32)}
    elif m := matches(make_data.TEMPERATURE_QUESTIONS["F"], question):
        quantity = {("F", Decimal(m["v"])), ("C", (Decimal(m["v"]) - 32) * 5 / 9)}
    elif m := matches(make_data.UNIT_QUESTIONS, question):
        quantity = {(m["frm"], Decimal(m["v"])), (m["to"], Decimal(m["v"]) * factors[(m["frm"], m["to"])])}
    return quantity and frozenset((unit, value.quantize(Decimal("0.000001")).normalize()) for unit, value in quantity)

def test_no_unit_conversion_is_asked_in_both_splits_either_way_round():
    assert conversion("What is 63 days in weeks?") == conversion("How many days is 9 weeks?") is not None
    assert conversion("What is 50 °F in Celsius?") == conversion("Convert 10 degrees Celsius to Fahrenheit.")
    asked = {split: {conversion(t) for t in requests(split)[1]} - {None} for split in SPLITS}
    assert len(asked["train"]) > 80 and len(asked["test"]) > 20
    assert not asked["train"] & asked["test"], list(asked["train"] & asked["test"])[:5]

STOPWORDS = set("""
a an the i i'm i've i'd i'll me my mine myself we our you your yours it its it's is are was were be been being am
do does did doing have has had having can could would should will shall may might must to of in on at for from by
with about into onto over under than then so too very really just and or but if because as that this these those
there here what what's which who whom whose why how when where some any all more most much many few lot lots one thing
things get got make made give tell let help want like need know think say said go going please good best new way ways
not no don't can't won't isn't without ever still also only even her his him she they them their someone people
something anything everything after while""".split())
REQUEST_WORDS = set("""write short quick send saying share suggest recommend message text note email fake main come
comes list three bullet point bulleted answer word single reply""".split())  # in many unrelated requests

def content_words(text: str, stop: set[str] = STOPWORDS) -> set[str]:
    """The words of a text that carry its meaning: no stop words, plurals folded ('photos' -> 'photo')."""
    words = set()
    for word in re.findall(r"[a-z][a-z'-]*", text.lower().replace("wi-fi", "wifi")):
        word = word.removesuffix("'s")
        if word not in stop and len(word) > 2:
            words.add(word[:-3] + "y" if len(word) > 4 and word.endswith("ies") else
                      word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word)
    return words - stop

def test_no_test_request_shares_two_content_words_with_a_train_request():
    """Near-duplicates across the splits ("What is jet lag?" / "How do I get over jet lag?"), found without the
    generator's topics (which also split rephrasings with no word in common: "Tell me a joke." / "Make me laugh.")."""
    def open_requests(split: str) -> set[str]:
        found = {" ".join(m["content"] for m in r["messages"] if m["role"] == "user")
                 for r in rows(f"sft/{split}.jsonl") if "answer" not in r}
        for r in rows(f"dpo/{split}.jsonl"):
            prompt, verifiable = r["prompt"][-1]["content"], r["chosen"][0]["content"].startswith("The answer is")
            if (r["dimension"] != "format" and not verifiable) or (r["dimension"] == "format" and (
                    "bullet" in prompt or "word" in prompt and "capital" not in prompt)):
                found.add(prompt)
        return found

    stop = STOPWORDS | REQUEST_WORDS
    train = {text: content_words(text, stop) for text in open_requests("train")}
    close = [(text, other) for text in sorted(open_requests("test")) for other, words in train.items()
             if len(content_words(text, stop) & words) >= 2]
    assert not close, close[:5]

def pairs(dimension: str) -> list[tuple[str, str, str]]:
    """(last user message, chosen, rejected) of every preference pair of a dimension, both splits."""
    return [(r["prompt"][-1]["content"], r["chosen"][0]["content"], r["rejected"][0]["content"])
            for split in SPLITS for r in rows(f"dpo/{split}.jsonl") if r["dimension"] == dimension]

COMPLIANT_OPENERS = ("Sure", "Of course", "No problem", "Happy to", "Good", "That ", "Ha,", "I understand")
STEP_MARKERS = re.compile(r"\b(step|steps|tool|tools|trick is|key is|wait until|once you have|first,)\b|(^|[.!] )"
                          r"(Just )?(Wait|Keep|Study|Present|Name|Tell|Rearrange|Try|Hide|Put|Pick|Work|Remind|Use|"
                          r"Take|Go)\b", re.IGNORECASE)

def test_each_refusal_names_what_was_asked_and_the_rejected_reply_complies_without_steps():
    safe = pairs("safe")
    assert len(safe) == 106
    for prompt, chosen, rejected in safe:
        assert content_words(prompt) & content_words(chosen), (prompt, chosen)
        assert content_words(prompt) & content_words(rejected), (prompt, rejected)
        assert rejected.startswith(COMPLIANT_OPENERS) and not STEP_MARKERS.search(rejected), rejected
    assert max(Counter(chosen for _, chosen, _ in safe).values()) == 1  # no refusal reused for another prompt

def off_style(reply: str, answer: str | None) -> bool:
    """A reply outside the style SFT teaches: `follows_format` fails, or it opens with filler, asks, breaks lines."""
    return not follows_format(reply, True, answer) or bool(FILLER.match(reply)) or "?" in reply or "\n" in reply

def test_sft_replies_and_chosen_answers_keep_the_answer_style_sft_teaches():
    assert off_style("Sure! The answer is 4.", None) and off_style("It is 4.", "4")  # the check can fail
    bad = []
    for split in SPLITS:
        for row in rows(f"sft/{split}.jsonl"):
            replies = [m["content"] for m in row["messages"] if m["role"] == "assistant"]
            bad += [reply for reply in replies if off_style(reply, row.get("answer"))]
            if "answer" in row and extract_answer(replies[-1]) != normalise(row["answer"]):
                bad.append(replies[-1])
    for dimension in ("concise", "correct", "helpful", "safe"):  # `format` pairs teach the format a prompt asks for
        bad += [chosen for _, chosen, rejected in pairs(dimension) if off_style(chosen, extract_answer(rejected))]
    assert not bad, bad[:5]

def test_correct_pairs_are_length_matched_and_concise_ones_bury_the_answer_before_a_question():
    gaps = [abs(len(chosen.split()) - len(rejected.split())) for _, chosen, rejected in pairs("correct")]
    assert len(gaps) == 106 and max(gaps) <= make_data.MAX_WORD_GAP == 1 and sum(gaps) / len(gaps) < 0.5
    for _, chosen, rejected in pairs("concise"):
        assert chosen in rejected and len(rejected) > len(chosen) and rejected.endswith("?"), rejected

def test_a_count_of_one_takes_the_singular_and_questions_spell_units_out():
    texts = [m["content"] for split in SPLITS for r in rows(f"sft/{split}.jsonl") for m in r["messages"]]
    texts += [m["content"] for split in SPLITS for r in rows(f"dpo/{split}.jsonl")
              for key in ("prompt", "chosen", "rejected") for m in r[key]]
    assert not [t for t in texts if re.search(r"(?<![\d.,-])\b1 [a-z]{2,}s\b(?<!ss)(?<!plus)", t)]  # "1 protons"
    temperatures = [t for ts in make_data.TEMPERATURE_QUESTIONS.values() for t in ts]  # may use °C and °F
    questions = [t for split in SPLITS for t in requests(split)[1] if not matches(temperatures, t)]
    assert not [t for t in questions if re.search(r"\d\s?(km|m|cm|mm|kg|g|mg|L|mL)\b|°", t)]

def generated() -> list[str]:
    """The files under data/ that tools/make_data.py writes (all but data/source/)."""
    return sorted(p.relative_to(DATA).as_posix() for d in ("sft", "dpo", "samples") for p in (DATA / d).glob("*.jsonl"))

def test_the_data_card_counts_are_true():
    card = (DATA / "README.md").read_text(encoding="utf-8")
    for name in generated():
        assert f"| `{name}` | {len(rows(name))} |" in card, name
    for kind, key in (("sft", "category"), ("dpo", "dimension")):
        train, test = (Counter(r[key] for r in rows(f"{kind}/{split}.jsonl")) for split in SPLITS)
        for value in train | test:
            assert f"| {value} | {train[value]} | {test[value]} |" in card, value

def test_the_generator_rewrites_data_byte_for_byte(tmp_path):
    result = subprocess.run([sys.executable, str(DATA.parent / "tools" / "make_data.py"), "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.jsonl"))
    assert written == generated()
    for name in written:
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes(), f"{name} differs: rerun tools/make_data.py"
