"""Generate the course datasets in data/ from the hand-written material in data/source/.

    python tools/make_data.py [--out DIR]

Writes DIR/sft/{train,test}.jsonl, DIR/dpo/{train,test}.jsonl and DIR/samples/*.jsonl (DIR defaults to
the repo's data/ folder). The output is byte for byte reproducible: every random choice comes from a
random.Random seeded with SEED plus a fixed label, and nothing depends on set or dict iteration order.

All text comes from data/source/: the hand-written pools (*.jsonl) and fact tables (facts.json), the question
templates (questions.json), the unit table (units.json), system prompts (system_prompts.json), the filler and
dismissive replies of rejected answers (rejected_replies.json), the per-category specs of the `format` pairs
(format_pairs.json) and the rows of data/samples/ (samples.json). This file holds the rules only: how numbers
are drawn and checked, how splits are made and how rows are put together.

How train and test are kept apart:
  * numbers: a number belongs to the test split when its last non-zero digit is 3 or 7 (3, 17, 30, 4.7),
    otherwise to train; every number written in an arithmetic or unit-conversion prompt follows that rule;
  * unit conversions: a conversion (a quantity in two units) belongs to test when either of its two numbers
    is a test number, so train never asks the reverse of a test question ("9 weeks in days" / "63 days in weeks");
  * topics: every hand-written item and every fact entity has a topic (data/source/*: the `topic` field, else the
    entity's name), and whole topics are assigned to one split, across SFT and DPO ("Tell me a joke." and
    "Make me laugh." share the topic "jokes", so they always land in the same split).
Standard library only, so it runs with any Python 3.10+.
"""

from __future__ import annotations

import argparse
import json
import random
import string
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

SEED = 1352
ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "data" / "source"
TEST_FRACTION = 0.2  # share of each hand-written pool and fact table that goes to test (whole topics)
SFT_ROWS = {"train": 640, "test": 150}  # hand-written rows plus verifiable rows up to this count
DPO_PER_DIMENSION = {"train": 84, "test": 22}
SPLITS = ("train", "test")
POOLS = ("everyday", "howto", "explain", "multiturn", "misconceptions", "one_word", "bullets", "safety")
FACT_TABLES = ("capitals", "elements", "planets", "misc")
MAX_WORD_GAP = 1  # `correct` pairs: chosen and rejected differ by at most this many words
SYSTEM_SHARE = 0.15  # share of SFT rows that get a system prompt
DPO_SYSTEM_SHARE = 0.1  # share of preference rows (not `safe`) that get one
REQUEST_OPENINGS = ("How", "What", "Why", "Can", "Suggest", "Recommend", "Give", "Write", "Tell")  # everyday rows
# that open like this are requests, usable for `helpful` / `concise` pairs


def read_json(name: str) -> dict:
    """Read one JSON source file from data/source/."""
    with open(SOURCE / name, encoding="utf-8") as f:
        return json.load(f)


def read_jsonl(name: str) -> list[dict]:
    """Read one hand-written source file from data/source/."""
    with open(SOURCE / name, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


QUESTIONS = read_json("questions.json")
UNITS = read_json("units.json")
SYSTEM_PROMPTS = read_json("system_prompts.json")
REJECTED = read_json("rejected_replies.json")
FORMAT_PAIRS = read_json("format_pairs.json")
# The templates and tables under the names the tests read.
ADD, SUB, MUL, DIV = (QUESTIONS["arithmetic"][op] for op in ("add", "sub", "mul", "div"))
WORD_PROBLEMS, FOLLOW_UPS = QUESTIONS["word_problems"], QUESTIONS["follow_ups"]
UNIT_QUESTIONS, TEMPERATURE_QUESTIONS = QUESTIONS["units"], QUESTIONS["temperature"]
FACT_QUESTIONS, ORDINALS = QUESTIONS["facts"], QUESTIONS["ordinals"]
SINGULAR = UNITS["singular"]
CONVERSIONS = [  # (big unit, small unit, factor, (big symbol, small symbol) or None for words)
    (c["big"], c["small"], Decimal(c["factor"]), tuple(c["symbols"]) if c["symbols"] else None)
    for c in UNITS["conversions"]
]

# ---------------------------------------------------------------------------------------------
# Small helpers


def rng_for(label: str) -> random.Random:
    """A random generator seeded with SEED and a label, so each part of the data is independent."""
    return random.Random(f"{SEED}:{label}")


def pick(rng: random.Random, options: str | list) -> Any:
    """One of the options at random; a single option (or a plain string) is used as is, without a draw."""
    if isinstance(options, str):
        return options
    return options[0] if len(options) == 1 else rng.choice(options)


def is_test_number(value: int | Decimal | str) -> bool:
    """True when a number belongs to the test split: its last non-zero digit is 3 or 7."""
    digits = str(value).replace("-", "").replace(".", "").rstrip("0")
    return digits[-1:] in ("3", "7")


def in_split(value: int | Decimal | str, split: str) -> bool:
    """True when a number may appear in prompts of this split."""
    return is_test_number(value) == (split == "test")


def fmt(value: Decimal | int) -> str:
    """Format a number without exponent, thousands separators or trailing zeros."""
    text = format(Decimal(value).normalize(), "f")
    return "0" if text == "-0" else text


def cap(text: str) -> str:
    """Upper-case the first character only."""
    return text[:1].upper() + text[1:]


def conversion_split(*numbers: int | Decimal | str) -> str:
    """The split of a unit conversion: test when any of its numbers (question or answer) is a test number."""
    return "test" if any(is_test_number(fmt(Decimal(n))) for n in numbers) else "train"


def topic_of(item: dict) -> str:
    """The topic of a source item: its `topic` field, else the entity it is about (country, element, planet)."""
    return item.get("topic") or item.get("country") or item.get("name") or item["entity"]


def split_by_topic(tables: dict[str, list[dict]]) -> dict[str, dict[str, list]]:
    """Assign whole topics to train or test, across all tables at once.

    Topics are visited in a seeded order; a topic goes to test while every table it has items in still has room
    for them under its share (TEST_FRACTION of the table), otherwise to train. So a topic never straddles the splits,
    and each table still gets about TEST_FRACTION of its items in test.
    """
    sizes: dict[str, dict[str, int]] = {}
    for name, items in tables.items():
        for item in items:
            counts = sizes.setdefault(topic_of(item), {})
            counts[name] = counts.get(name, 0) + 1
    order = sorted(sizes)
    rng_for("split:topics").shuffle(order)
    room = {name: round(len(items) * TEST_FRACTION) for name, items in tables.items()}
    test_topics = set()
    for topic in order:
        if all(n <= room[name] for name, n in sizes[topic].items()):
            test_topics.add(topic)
            for name, n in sizes[topic].items():
                room[name] -= n
    return {
        name: {
            "train": [x for x in items if topic_of(x) not in test_topics],
            "test": [x for x in items if topic_of(x) in test_topics],
        }
        for name, items in tables.items()
    }


def msg(role: str, content: str) -> dict:
    """One chat message."""
    return {"role": role, "content": content}


def answer_text(answer: str, note: str | None = None) -> str:
    """The assistant reply of a verifiable row: 'The answer is X.' plus an optional short note."""
    return f"The answer is {answer}." + (f" {note}" if note else "")


def norm(text: str) -> str:
    """Lower-case, drop punctuation and extra whitespace (the disjointness check in the tests)."""
    kept = "".join(c for c in text.lower() if c.isalnum() or c.isspace())
    return " ".join(kept.split())


# ---------------------------------------------------------------------------------------------
# Verifiable items: an item is (question, answer, note) plus enough context for follow-ups.


def pick_number(rng: random.Random, split: str, lo: int, hi: int) -> int:
    """A random integer in [lo, hi] that belongs to the split."""
    while True:
        n = rng.randint(lo, hi)
        if in_split(n, split):
            return n


def arithmetic_item(rng: random.Random, split: str) -> dict:
    """One arithmetic question with an exact integer answer and an optional check sentence."""
    op = rng.choice(["add", "add", "sub", "sub", "mul", "mul", "div"])
    note = None
    if op == "add":
        a = pick_number(rng, split, 12, rng.choice([99, 999]))
        b = pick_number(rng, split, 12, rng.choice([99, 999]))
        c = a + b
        note = f"Check: {c} - {b} = {a}."
    elif op == "sub":
        a = pick_number(rng, split, 30, rng.choice([99, 999]))
        b = pick_number(rng, split, 11, a - 1)
        c = a - b
        note = f"Check: {c} + {b} = {a}."
    elif op == "mul":
        if rng.random() < 0.7:
            a, b = pick_number(rng, split, 12, 99), pick_number(rng, split, 2, 9)
            if a % 10:
                note = f"That is {a - a % 10} × {b} + {a % 10} × {b} = {(a - a % 10) * b} + {(a % 10) * b}."
        else:
            a, b = pick_number(rng, split, 11, 25), pick_number(rng, split, 11, 25)
        c = a * b
    else:
        while True:
            b, c = pick_number(rng, split, 2, 20), rng.randint(2, 40)
            if in_split(b * c, split):
                break
        a = b * c
        note = f"Check: {b} × {c} = {a}."
    if rng.random() < 0.25:
        template = rng.choice(WORD_PROBLEMS[op])
        note = None
    else:
        template = rng.choice(QUESTIONS["arithmetic"][op])
    if rng.random() < 0.6:
        note = None
    return {"question": template.format(a=a, b=b), "answer": str(c), "note": note, "value": c, "key": f"{op}:{a}:{b}"}


def arithmetic_chain(rng: random.Random, split: str) -> tuple[list[dict], str, str]:
    """A 2-3 turn calculation where each follow-up works on the previous result."""
    first = arithmetic_item(rng, split)
    while first["question"].startswith(("I ", "A ")) or not first["question"][0].isupper():
        first = arithmetic_item(rng, split)
    messages = [msg("user", first["question"]), msg("assistant", answer_text(first["answer"]))]
    value = first["value"]
    for _ in range(rng.choice([1, 1, 2])):
        op = rng.choice(["mul", "add", "sub"])
        k = pick_number(rng, split, 2, 9) if op == "mul" else pick_number(rng, split, 3, 99)
        if op == "sub" and k >= value:
            op = "add"
        value = {"mul": value * k, "add": value + k, "sub": value - k}[op]
        messages += [msg("user", rng.choice(FOLLOW_UPS[op]).format(k=k)), msg("assistant", answer_text(str(value)))]
    return messages, str(value), first["key"]


def unit_answer(value: Decimal, word: str, symbol: str | None) -> str:
    """The answer convention: number plus metric symbol, or plus the unit word (singular for 1)."""
    if symbol:
        return f"{fmt(value)} {symbol}"
    return f"{fmt(value)} {SINGULAR[word] if value == 1 else word}"


def nice_values(rng: random.Random) -> Decimal:
    """A friendly starting value: a small integer or a number with one decimal place."""
    if rng.random() < 0.5:
        return Decimal(rng.randint(2, 40))
    return Decimal(rng.randint(2, 99)) / 10


def unit_item(rng: random.Random, split: str) -> dict:
    """One unit-conversion question whose prompt number belongs to the split, as does the conversion itself."""
    if rng.random() < 0.12:
        return temperature_item(rng, split)
    while True:
        conv = rng.choice(UNITS["conversions"])
        big, small, factor, symbols = conv["big"], conv["small"], Decimal(conv["factor"]), conv["symbols"]
        base = nice_values(rng)
        if conv.get("whole_numbers") and base != base.to_integral_value():
            continue
        direction = "multiply" if rng.random() < 0.6 else "divide"
        if direction == "multiply":  # big -> small
            shown, result, frm, to, to_symbol = base, base * factor, big, small, symbols and symbols[1]
        else:  # small -> big
            shown, result, frm, to, to_symbol = base * factor, base, small, big, symbols and symbols[0]
        if in_split(shown, split) and shown != 1 and conversion_split(shown, result) == split:
            break
    note = conv.get("notes", UNITS["notes"])[direction].format(factor=fmt(factor), small=small, big_one=SINGULAR[big])
    question = rng.choice(UNIT_QUESTIONS).format(v=fmt(shown), frm=frm, to=to)
    return {
        "question": question,
        "answer": unit_answer(result, to, to_symbol),
        "note": None if rng.random() < 0.5 else note,
        "value": result,
        "unit": to,
        "symbol": to_symbol,
        "conversion": (conv, shown, direction == "multiply"),
        "key": f"{frm}:{to}:{fmt(shown)}",
    }


def temperature_item(rng: random.Random, split: str) -> dict:
    """Celsius to Fahrenheit or back, with exact whole-number results."""
    while True:
        celsius = 5 * rng.randint(-8, 24)
        fahrenheit = celsius * 9 // 5 + 32
        if conversion_split(celsius, fahrenheit) != split:
            continue
        if rng.random() < 0.5 and in_split(celsius, split) and celsius:
            frm, shown, result, to = "C", celsius, fahrenheit, "F"
        elif in_split(fahrenheit, split) and fahrenheit:
            frm, shown, result, to = "F", fahrenheit, celsius, "C"
        else:
            continue
        return {
            "question": rng.choice(TEMPERATURE_QUESTIONS[frm]).format(v=shown),
            "answer": f"{result} °{to}",
            "value": None,
            "temperature": (frm, shown, result),
            "key": f"{frm}:{shown}",
            "note": rng.choice([None, UNITS["temperature_notes"][frm]]),
        }


def unit_chain(rng: random.Random, split: str) -> tuple[list[dict], str, str]:
    """A conversion followed by 'and in <smaller unit>?' (metric lengths and masses only)."""
    chain = rng.choice(UNITS["chains"])
    (big, mid, small), (f1, f2), (s1, s2) = chain["units"], chain["factors"], chain["symbols"]
    while True:
        base = nice_values(rng)
        if in_split(base, split) and conversion_split(base, base * f1, base * f1 * f2) == split:
            break
    first = rng.choice(UNIT_QUESTIONS).format(v=fmt(base), frm=big, to=mid)
    second = rng.choice(QUESTIONS["unit_follow_ups"]).format(small=small)
    answer = f"{fmt(base * f1 * f2)} {s2}"
    messages = [
        msg("user", first),
        msg("assistant", answer_text(f"{fmt(base * f1)} {s1}")),
        msg("user", second),
        msg("assistant", answer_text(answer)),
    ]
    return messages, answer, f"{big}:{mid}:{fmt(base)}"


def fact(kind: str, entity: str, question: str, answer: str, note: str | None = None, wrong: str | None = None) -> dict:
    """One fact question; `key` names the fact itself, whatever the wording."""
    detail = question if kind in ("planet", "misc") else entity
    return {
        "kind": kind,
        "entity": entity,
        "question": question,
        "answer": answer,
        "note": note,
        "wrong": wrong,
        "key": f"{kind}:{detail}",
    }


def neighbour(rng: random.Random, entries: list[dict], entry: dict, key: str) -> dict:
    """The entry whose `key` (atomic number, planet position) is closest to this one's, ties broken at random."""
    others = [x for x in entries if x is not entry]
    gap = min(abs(x[key] - entry[key]) for x in others)
    return rng.choice([x for x in others if abs(x[key] - entry[key]) == gap])


def fact_items(facts: dict, split: str, rng: random.Random) -> list[dict]:
    """All fact questions for the entities of one split (each entity gives one to three questions).

    `wrong` is a plausible mistake for the rejected answer of a `correct` pair: a nearby city, a neighbouring
    country's language, a neighbouring continent, a made-up symbol, the element or planet next to this one.
    """

    def ask(kind: str, **values: str) -> str:
        return rng.choice(FACT_QUESTIONS[kind]).format(**values)

    all_elements = facts["elements"]["train"] + facts["elements"]["test"]
    all_planets = facts["planets"]["train"] + facts["planets"]["test"]
    items = []
    for c in facts["capitals"][split]:
        country = c["country"]
        items.append(fact("capital", country, ask("capital", c=country), c["capital"], c["note"], c["wrong"]))
        if c["continent"]:
            question = ask("continent", c=country, C=cap(country))
            wrong = c["wrong_continent"] or facts["_wrong_continent"][c["continent"]]
            items.append(fact("continent", country, question, c["continent"], wrong=wrong))
        if c["language"]:
            question = ask("language", c=country)
            items.append(fact("language", country, question, c["language"], wrong=c["wrong_language"]))
    for e in facts["elements"][split]:
        name, symbol, number = e["name"], e["symbol"], e["number"]
        latin = f"It comes from the Latin name {e['latin']}." if e["latin"] else None
        items.append(fact("symbol", name, ask("symbol", n=name), symbol, latin, e["wrong"]))
        wrong = neighbour(rng, all_elements, e, "number")["name"]
        items.append(fact("element", name, ask("element", s=symbol), name, latin, wrong))
        if in_split(number, split):
            note = f"Every {name} atom has {number} proton{'' if number == 1 else 's'} in its nucleus."
            wrong = str(number + rng.choice([-1, 1]))
            items.append(fact("number", name, ask("number", n=name), str(number), note, wrong))
    for p in facts["planets"][split]:
        question = ask("planet", o=ORDINALS[p["position"] - 1])
        wrong = neighbour(rng, all_planets, p, "position")["name"]
        items.append(fact("planet", p["name"], question, p["name"], wrong=wrong))
        for question, note, wrong in p["questions"]:
            items.append(fact("planet", p["name"], question, p["name"], note, wrong))
    for m in facts["misc"][split]:
        items.append(fact("misc", m["entity"], m["question"], m["answer"], m["note"], m["wrong"]))
    return items


def fact_chain(facts: dict, split: str, rng: random.Random) -> tuple[list[dict], str, str]:
    """Two related fact questions: another country or element, or a follow-up on the same one."""

    def ask(kind: str, **values: str) -> str:
        return rng.choice(QUESTIONS["fact_chains"][kind]).format(**values)

    kind = rng.choice(["capitals", "capital+continent", "elements", "symbol+number"])
    if kind in ("capitals", "capital+continent"):
        first, second = rng.sample(facts["capitals"][split], 2)
        messages = [msg("user", ask("capital", c=first["country"])), msg("assistant", answer_text(first["capital"]))]
        key = f"capital:{first['country']}"
        if kind == "capital+continent" and first["continent"]:
            messages += [msg("user", ask("continent")), msg("assistant", answer_text(first["continent"]))]
            return messages, first["continent"], key
        messages += [
            msg("user", ask("next_capital", c=second["country"])),
            msg("assistant", answer_text(second["capital"])),
        ]
        return messages, second["capital"], key
    first, second = rng.sample(facts["elements"][split], 2)
    messages = [msg("user", ask("symbol", n=first["name"])), msg("assistant", answer_text(first["symbol"]))]
    key = f"symbol:{first['name']}"
    if kind == "symbol+number":
        messages += [msg("user", ask("number")), msg("assistant", answer_text(str(first["number"])))]
        return messages, str(first["number"]), key
    messages += [msg("user", ask("next_symbol", n=second["name"])), msg("assistant", answer_text(second["symbol"]))]
    return messages, second["symbol"], key


# ---------------------------------------------------------------------------------------------
# SFT


def sft_row(messages: list[dict], category: str, answer: str | None = None) -> dict:
    """One SFT row; 'answer' only on verifiable rows."""
    row = {"messages": messages, "category": category}
    if answer is not None:
        row["answer"] = answer
    return row


def build_sft(split: str, facts: dict, pools: dict) -> list[dict]:
    """All SFT rows of one split: hand-written conversations plus about as many verifiable rows."""
    rng = rng_for(f"sft:{split}")
    rows = []
    for category in ("everyday", "howto", "explain"):
        for item in pools[category][split]:
            rows.append(sft_row([msg("user", item["user"]), msg("assistant", item["assistant"])], category))
    for conv in pools["multiturn"][split]:
        rows.append(sft_row(conv["messages"], conv["category"]))

    seen = {norm(r["messages"][0]["content"]) for r in rows}

    def add(messages: list[dict], category: str, answer: str, key: str) -> None:
        # skip repeats of a first question, or of the same calculation or fact asked in other words
        if norm(messages[0]["content"]) not in seen and key not in seen:
            seen.update([norm(messages[0]["content"]), key])
            rows.append(sft_row(messages, category, answer))

    def add_item(item: dict, category: str) -> None:
        """Add a one-turn row asking a verifiable item."""
        messages = [msg("user", item["question"]), msg("assistant", answer_text(item["answer"], item["note"]))]
        add(messages, category, item["answer"], item["key"])

    n_total = SFT_ROWS[split]
    n_multi = round(0.15 * n_total) - len(pools["multiturn"][split])
    chains = [
        ("arithmetic", lambda: arithmetic_chain(rng, split), 0.5),
        ("units", lambda: unit_chain(rng, split), 0.2),
        ("facts", lambda: fact_chain(facts, split, rng), 0.3),
    ]
    for category, make, share in chains:
        target = len(rows) + round(n_multi * share)
        while len(rows) < target:
            messages, answer, key = make()
            add(messages, category, answer, key)

    items = fact_items(facts, split, rng)
    rng.shuffle(items)
    for item in items[: round((n_total - len(rows)) * 0.35)]:
        add_item(item, "facts")
    for category, make_item, share in [("arithmetic", arithmetic_item, 0.6), ("units", unit_item, 1.0)]:
        target = len(rows) + round((n_total - len(rows)) * share)
        while len(rows) < target:
            add_item(make_item(rng, split), category)

    for row in rows:
        if rng.random() < SYSTEM_SHARE:
            options = SYSTEM_PROMPTS["any"] + SYSTEM_PROMPTS[row["category"]]
            row["messages"] = [msg("system", rng.choice(options)), *row["messages"]]
    rng.shuffle(rows)
    return rows


# ---------------------------------------------------------------------------------------------
# DPO


def ramble(rng: random.Random, answer: str) -> str:
    """A rejected reply that buries the same answer in filler."""
    parts = REJECTED["ramble"]
    before = [rng.choice(parts[name]) for name in ("openers", "middles", "bridges")]
    after = [rng.choice(parts[name]) for name in ("asides", "closers")]
    return "".join([*before, answer + " ", *after])


def dpo_row(user: str, chosen: str, rejected: str, dimension: str, key: str | None = None) -> dict:
    """One preference row in TRL's explicit-prompt conversational format (`_key` is used for dedup only)."""
    return {
        "prompt": [msg("user", user)],
        "chosen": [msg("assistant", chosen)],
        "rejected": [msg("assistant", rejected)],
        "dimension": dimension,
        "_key": key or norm(user),
    }


def verifiable_item(rng: random.Random, split: str, facts: dict, fact_pool: list[dict]) -> tuple[str, dict]:
    """A random verifiable item and its category (facts, arithmetic or units)."""
    category = rng.choice(["facts", "facts", "arithmetic", "units"])
    if category == "facts":
        return category, rng.choice(fact_pool)
    if category == "arithmetic":
        return category, arithmetic_item(rng, split)
    return category, unit_item(rng, split)


def wrong_answer(rng: random.Random, category: str, item: dict) -> str | None:
    """A plausible wrong answer for a verifiable item, written like the right one (None when there is none)."""
    if category == "arithmetic":
        value = int(item["answer"])
        return str(value + rng.choice([d for d in (-10, -2, -1, 1, 2, 10) if value + d >= 0]))
    if category == "units":
        if item.get("temperature"):  # the rough rule "double and add 30" (or "subtract 30 and halve")
            frm, shown, right = item["temperature"]
            wrong = Decimal(shown * 2 + 30) if frm == "C" else Decimal(shown - 30) / 2
            if wrong == right:  # the rule happens to be exact here: forget the 32 instead
                wrong = Decimal(right - 32) if frm == "C" else Decimal(shown - 32)
            return f"{fmt(wrong)} {'°F' if frm == 'C' else '°C'}"
        conv, shown, multiply = item["conversion"]
        wrong = None
        if conv["slip"]:  # the right method with a commonly confused factor
            wrong = shown * Decimal(conv["slip"]) if multiply else shown / Decimal(conv["slip"])
        if wrong is None or wrong != wrong.quantize(Decimal("0.01")) or wrong == item["value"]:
            wrong = item["value"] * rng.choice([Decimal(10), Decimal("0.1")])  # a misplaced decimal point
        return unit_answer(wrong, item["unit"], item["symbol"])
    return item["wrong"]


# Template filters and requirement tests of data/source/format_pairs.json.
FILTERS: dict[str, Callable[[Any], str]] = {
    "lower": str.lower,
    "cap": cap,
    "no_the": lambda text: text.removeprefix("the "),
    "dashes": lambda items: "\n".join(f"- {x}" for x in items),
    "joined": " ".join,
}
TESTS: dict[str, Callable[[Any], bool]] = {
    "one_word": lambda text: " " not in text,
    "sentences": lambda items: items[0].endswith("."),
}


class TemplateFormatter(string.Formatter):
    """str.format with the filters above as format specs: '{country:no_the}', '{bullets[0]:lower}'."""

    def format_field(self, value: Any, format_spec: str) -> str:
        """Apply a named filter, else the usual format spec."""
        if format_spec in FILTERS:
            return FILTERS[format_spec](value)
        return super().format_field(value, format_spec)


FORMATTER = TemplateFormatter()


def meets(item: dict, requirement: str | None) -> bool:
    """True when an item meets a style's requirement: 'field' (set) or 'field:test'."""
    if requirement is None:
        return True
    field, _, test = requirement.partition(":")
    return TESTS[test](item[field]) if test else bool(item[field])


def format_pair(rng: random.Random, spec: dict, item: dict) -> tuple[str, str, str]:
    """Prompt, chosen and rejected text for one item, following its spec in format_pairs.json."""
    styles = spec.get("styles", {})
    name = pick(rng, spec["draw"]) if styles else None
    while name and not meets(item, styles[name].get("requires")):
        name = styles[name]["else"]
    style = spec | styles.get(name, {})
    values = style.get("defaults", {}) | {key: value for key, value in item.items() if value is not None}

    def fill(template: str | list | dict) -> str:
        """One template (picked from a list) filled with the item's fields; a dict becomes JSON."""
        if isinstance(template, dict):
            return json.dumps({key: fill(value) for key, value in template.items()}, ensure_ascii=False)
        return FORMATTER.format(pick(rng, template), **values)

    return fill(style["prompt"]), fill(style["chosen"]), fill(style["rejected"])


def format_rows(rng: random.Random, split: str, facts: dict, pools: dict) -> list[dict]:
    """Rows where the prompt asks for a specific format and the rejected reply ignores it."""
    tables = pools | facts
    rows = [
        dpo_row(*format_pair(rng, spec, item), "format")
        for name, spec in FORMAT_PAIRS["sources"].items()
        for item in tables[name][split]
    ]
    for _ in range(len(rows) // 4):
        item = arithmetic_item(rng, split)
        if not item["question"].startswith(("I ", "A ")) and item["question"].endswith("?"):
            rows.append(dpo_row(*format_pair(rng, FORMAT_PAIRS["arithmetic"], item), "format"))
    n_handwritten = sum(len(pools[name][split]) for name in FORMAT_PAIRS["sources"] if name in pools)
    generated = rows[n_handwritten:]
    rng.shuffle(generated)
    return rows[:n_handwritten] + generated  # all hand-written rows first, then a mix of the generated ones


def build_dpo(split: str, facts: dict, pools: dict) -> list[dict]:
    """All preference rows of one split, DPO_PER_DIMENSION rows for each of the five dimensions."""
    rng = rng_for(f"dpo:{split}")
    n = DPO_PER_DIMENSION[split]
    fact_pool = facts["_items"][split]
    seen: set[str] = set()
    by_dimension: dict[str, list[dict]] = {}

    def take(candidates: list[dict], dimension: str) -> None:
        rows = by_dimension.setdefault(dimension, [])
        for row in candidates:
            keys = {norm(row["prompt"][-1]["content"]), row.pop("_key")}
            if len(rows) < n and not keys & seen:
                seen.update(keys)
                rows.append(row)

    safe = [  # each phrasing of a request has its own refusal and its own compliant-sounding reply
        dpo_row(prompt, chosen, rejected, "safe")
        for s in pools["safety"][split]
        for prompt, chosen, rejected in zip(s["prompts"], s["chosen"], s["rejected"], strict=True)
    ]
    take(safe, "safe")
    take(format_rows(rng, split, facts, pools), "format")

    correct = [dpo_row(m["user"], m["chosen"], m["rejected"], "correct") for m in pools["misconceptions"][split]]
    while len(correct) < 3 * n:  # chosen and rejected are the same sentence with the right and a wrong answer
        category, item = verifiable_item(rng, split, facts, fact_pool)
        wrong = wrong_answer(rng, category, item)
        if wrong is None or abs(len(item["answer"].split()) - len(wrong.split())) > MAX_WORD_GAP:
            continue  # no plausible mistake of about the same length (e.g. Hanoi / Ho Chi Minh City)
        correct.append(
            dpo_row(item["question"], answer_text(item["answer"]), answer_text(wrong), "correct", item["key"])
        )
    take(correct, "correct")

    handwritten = [dict(x, category=c) for c in ("howto", "explain", "everyday") for x in pools[c][split]]
    rng.shuffle(handwritten)
    helpful, concise = [], []
    for item in handwritten:
        if item["category"] == "everyday" and not item["user"].startswith(REQUEST_OPENINGS):
            continue
        target = helpful if len(helpful) <= len(concise) and item["category"] != "everyday" else concise
        target.append(item)
    helpful_rows = [dpo_row(x["user"], x["assistant"], rng.choice(REJECTED["dismissive"]), "helpful") for x in helpful]
    concise_rows = [dpo_row(x["user"], x["assistant"], ramble(rng, x["assistant"]), "concise") for x in concise]
    for _ in range(n // 2):
        category, item = verifiable_item(rng, split, facts, fact_pool)
        chosen = answer_text(item["answer"], item["note"])
        if rng.random() < 0.5:
            dismissive = rng.choice(REJECTED["dismissive_verifiable"][category])
            helpful_rows.append(dpo_row(item["question"], chosen, dismissive, "helpful", item["key"]))
        else:
            concise_rows.append(dpo_row(item["question"], chosen, ramble(rng, chosen), "concise", item["key"]))
    rng.shuffle(helpful_rows)
    rng.shuffle(concise_rows)
    take(helpful_rows, "helpful")
    take(concise_rows, "concise")

    rows = [row for dimension in ("concise", "correct", "helpful", "safe", "format") for row in by_dimension[dimension]]
    for dimension, got in by_dimension.items():
        if len(got) != n:
            raise SystemExit(f"not enough {dimension!r} material for {split}: {len(got)} of {n}")
    for row in rows:
        if row["dimension"] != "safe" and rng.random() < DPO_SYSTEM_SHARE:
            row["prompt"] = [msg("system", rng.choice(SYSTEM_PROMPTS["any"])), *row["prompt"]]
    rng.shuffle(rows)
    return rows


# ---------------------------------------------------------------------------------------------


def hh(*turns: str) -> str:
    """An hh-rlhf style transcript: alternating Human/Assistant turns, each preceded by a blank line."""
    return "".join(f"\n\n{'Human' if i % 2 == 0 else 'Assistant'}: {t}" for i, t in enumerate(turns))


def samples() -> dict[str, list[dict]]:
    """The rows of data/samples/, by file name (data/source/samples.json; hh-rlhf pairs become transcripts)."""
    rows = {name: value for name, value in read_json("samples.json").items() if not name.startswith("_")}
    rows["hh_rlhf_sample"] = [
        {"chosen": hh(*x["turns"], x["chosen"]), "rejected": hh(*x["turns"], x["rejected"])}
        for x in rows["hh_rlhf_sample"]
    ]
    return rows


def load_sources() -> tuple[dict, dict]:
    """Read data/source/ and split every table and pool into train and test, by topic."""
    raw = read_json("facts.json")
    sources = {table: raw[table] for table in FACT_TABLES} | {name: read_jsonl(f"{name}.jsonl") for name in POOLS}
    splits = split_by_topic(sources)
    facts = {table: splits[table] for table in FACT_TABLES}
    facts["_wrong_continent"] = raw["_wrong_continent"]
    facts["_items"] = {split: fact_items(facts, split, rng_for(f"facts:{split}")) for split in SPLITS}
    pools = {name: splits[name] for name in POOLS}
    return facts, pools


def write_jsonl(rows: list[dict], path: Path) -> None:
    """Write one JSON object per line, UTF-8, '\\n' line endings."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def summary(name: str, rows: list[dict], key: str) -> str:
    """A one-line count per category or dimension."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row[key]] = counts.get(row[key], 0) + 1
    return f"{name}: {len(rows)} rows; " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


def main() -> None:
    """Generate every file and print a short summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "data", help="output folder (default: data/)")
    out = parser.parse_args().out
    facts, pools = load_sources()
    for split in SPLITS:
        sft = build_sft(split, facts, pools)
        dpo = build_dpo(split, facts, pools)
        write_jsonl(sft, out / "sft" / f"{split}.jsonl")
        write_jsonl(dpo, out / "dpo" / f"{split}.jsonl")
        print(summary(f"sft/{split}", sft, "category"))
        print(summary(f"dpo/{split}", dpo, "dimension"))
    for name, rows in samples().items():
        write_jsonl(rows, out / "samples" / f"{name}.jsonl")


if __name__ == "__main__":
    main()
