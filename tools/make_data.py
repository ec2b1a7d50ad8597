"""Generate the course datasets in data/ from the hand-written material in data/source/.

    python tools/make_data.py [--out DIR]

Writes DIR/sft/{train,test}.jsonl, DIR/dpo/{train,test}.jsonl and DIR/samples/*.jsonl (DIR defaults to
the repo's data/ folder). The output is byte for byte reproducible: every random choice comes from a
random.Random seeded with SEED plus a fixed label, and nothing depends on set or dict iteration order.

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
from decimal import Decimal
from pathlib import Path

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

# ---------------------------------------------------------------------------------------------
# Small helpers


def rng_for(label: str) -> random.Random:
    """A random generator seeded with SEED and a label, so each part of the data is independent."""
    return random.Random(f"{SEED}:{label}")


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


def read_jsonl(name: str) -> list[dict]:
    """Read one hand-written source file from data/source/."""
    with open(SOURCE / name, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


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

ADD = [
    "What is {a} + {b}?",
    "What's {a} plus {b}?",
    "Add {a} and {b}.",
    "Calculate {a} + {b}.",
    "What is the sum of {a} and {b}?",
    "How much is {a} plus {b}?",
]
SUB = [
    "What is {a} - {b}?",
    "What's {a} minus {b}?",
    "Subtract {b} from {a}.",
    "Calculate {a} - {b}.",
    "How much is {a} take away {b}?",
    "What is the difference between {a} and {b}?",
]
MUL = [
    "What is {a} × {b}?",
    "What's {a} times {b}?",
    "Multiply {a} by {b}.",
    "Calculate {a} × {b}.",
    "What is the product of {a} and {b}?",
    "How much is {a} times {b}?",
]
DIV = [
    "What is {a} ÷ {b}?",
    "What's {a} divided by {b}?",
    "Divide {a} by {b}.",
    "Calculate {a} ÷ {b}.",
    "How much is {a} divided by {b}?",
]
WORD_PROBLEMS = {
    "add": [
        "I have {a} stickers and a friend gives me {b} more. How many stickers do I have now?",
        "A bookshop sold {a} books on Monday and {b} on Tuesday. How many books did it sell in total?",
        "A train has {a} passengers and {b} more get on. How many passengers are on the train now?",
        "A school has {a} girls and {b} boys. How many pupils does it have?",
    ],
    "sub": [
        "I had {a} dollars and spent {b}. How many dollars do I have left?",
        "A library has {a} books and lends out {b}. How many books are still on the shelves?",
        "A farmer picked {a} apples and sold {b}. How many apples are left?",
        "A hall has {a} seats and {b} are taken. How many seats are free?",
    ],
    "mul": [
        "A box holds {b} eggs. How many eggs are in {a} boxes?",
        "Each ticket costs {b} dollars. How many dollars do {a} tickets cost?",
        "A class has {a} students and each needs {b} pencils. How many pencils are needed?",
        "A car park has {a} rows with {b} spaces each. How many spaces are there?",
    ],
    "div": [
        "{a} sweets are shared equally among {b} children. How many sweets does each child get?",
        "A {a}-page book is read at {b} pages a day. How many days does it take to finish?",
        "{a} chairs are set out in {b} equal rows. How many chairs are in each row?",
        "A rope {a} meters long is cut into {b} equal pieces. How many meters long is each piece?",
    ],
}
FOLLOW_UPS = {
    "mul": ["Now multiply that by {k}.", "And if you multiply that by {k}?", "What is that times {k}?"],
    "add": ["Now add {k} to that.", "And if you add {k} more?", "What do you get if you add {k}?"],
    "sub": ["Now subtract {k}.", "And if you take away {k}?", "What is that minus {k}?"],
}


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
        template = rng.choice({"add": ADD, "sub": SUB, "mul": MUL, "div": DIV}[op])
    if rng.random() < 0.6:
        note = None
    return {
        "question": template.format(a=a, b=b),
        "answer": str(c),
        "note": note,
        "value": c,
        "key": f"{op}:{a}:{b}",
    }


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
        messages += [
            msg("user", rng.choice(FOLLOW_UPS[op]).format(k=k)),
            msg("assistant", answer_text(str(value))),
        ]
    return messages, str(value), first["key"]


# Unit conversions: (big unit word, small unit word, factor, symbols used in answers or None for words)
CONVERSIONS = [
    ("kilometers", "meters", Decimal(1000), ("km", "m")),
    ("meters", "centimeters", Decimal(100), ("m", "cm")),
    ("centimeters", "millimeters", Decimal(10), ("cm", "mm")),
    ("meters", "millimeters", Decimal(1000), ("m", "mm")),
    ("kilograms", "grams", Decimal(1000), ("kg", "g")),
    ("grams", "milligrams", Decimal(1000), ("g", "mg")),
    ("liters", "milliliters", Decimal(1000), ("L", "mL")),
    ("hours", "minutes", Decimal(60), None),
    ("minutes", "seconds", Decimal(60), None),
    ("days", "hours", Decimal(24), None),
    ("weeks", "days", Decimal(7), None),
    ("feet", "inches", Decimal(12), None),
    ("yards", "feet", Decimal(3), None),
    ("pounds", "ounces", Decimal(16), None),
    ("inches", "centimeters", Decimal("2.54"), (None, "cm")),
]
SINGULAR = {
    "kilometers": "kilometer",
    "meters": "meter",
    "centimeters": "centimeter",
    "millimeters": "millimeter",
    "kilograms": "kilogram",
    "grams": "gram",
    "milligrams": "milligram",
    "liters": "liter",
    "milliliters": "milliliter",
    "hours": "hour",
    "minutes": "minute",
    "seconds": "second",
    "days": "day",
    "weeks": "week",
    "feet": "foot",
    "inches": "inch",
    "yards": "yard",
    "pounds": "pound",
    "ounces": "ounce",
}
UNIT_QUESTIONS = [
    "How many {to} are in {v} {frm}?",
    "Convert {v} {frm} to {to}.",
    "What is {v} {frm} in {to}?",
    "How many {to} is {v} {frm}?",
]
TEMPERATURE_QUESTIONS = {  # Celsius <-> Fahrenheit; these are the only unit questions that may use a symbol
    "C": [
        "What is {v} °C in Fahrenheit?",
        "Convert {v} degrees Celsius to Fahrenheit.",
        "How many degrees Fahrenheit is {v} °C?",
    ],
    "F": [
        "What is {v} °F in Celsius?",
        "Convert {v} degrees Fahrenheit to Celsius.",
        "How many degrees Celsius is {v} °F?",
    ],
}
# A common slip for the conversions whose factor is not a power of ten (used for wrong answers); the others
# get a misplaced decimal point instead.
WRONG_FACTORS = {
    ("hours", "minutes"): Decimal(100),
    ("minutes", "seconds"): Decimal(100),
    ("days", "hours"): Decimal(12),
    ("weeks", "days"): Decimal(5),
    ("feet", "inches"): Decimal(10),
    ("pounds", "ounces"): Decimal(12),
    ("inches", "centimeters"): Decimal("2.5"),
}


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
        big, small, factor, symbols = rng.choice(CONVERSIONS)
        base = nice_values(rng)
        if factor == Decimal("2.54") and base != base.to_integral_value():
            continue
        if rng.random() < 0.6:  # big -> small: multiply
            shown, result, frm, to, to_symbol = base, base * factor, big, small, symbols and symbols[1]
            note = f"There are {fmt(factor)} {small} in one {SINGULAR[big]}."
            if factor == Decimal("2.54"):
                note = "One inch is exactly 2.54 centimeters."
        else:  # small -> big: divide
            shown, result, frm, to, to_symbol = base * factor, base, small, big, symbols and symbols[0]
            note = f"Divide by {fmt(factor)}, because one {SINGULAR[big]} is {fmt(factor)} {small}."
            if factor == Decimal("2.54"):
                note = "Divide by 2.54, because one inch is exactly 2.54 centimeters."
        if in_split(shown, split) and shown != 1 and conversion_split(shown, result) == split:
            break
    question = rng.choice(UNIT_QUESTIONS).format(v=fmt(shown), frm=frm, to=to)
    if rng.random() < 0.5:
        note = None
    return {
        "question": question,
        "answer": unit_answer(result, to, to_symbol),
        "note": note,
        "value": result,
        "unit": to,
        "symbol": to_symbol,
        "conversion": (big, small, shown, frm == big),
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
            return {
                "question": rng.choice(TEMPERATURE_QUESTIONS["C"]).format(v=celsius),
                "answer": f"{fahrenheit} °F",
                "value": None,
                "temperature": ("C", celsius, fahrenheit),
                "key": f"C:{celsius}",
                "note": rng.choice([None, "Multiply by 9/5 and then add 32."]),
            }
        if in_split(fahrenheit, split) and fahrenheit:
            return {
                "question": rng.choice(TEMPERATURE_QUESTIONS["F"]).format(v=fahrenheit),
                "answer": f"{celsius} °C",
                "value": None,
                "temperature": ("F", fahrenheit, celsius),
                "key": f"F:{fahrenheit}",
                "note": rng.choice([None, "Subtract 32 and then multiply by 5/9."]),
            }


def unit_chain(rng: random.Random, split: str) -> tuple[list[dict], str, str]:
    """A conversion followed by 'and in <smaller unit>?' (metric lengths and masses only)."""
    chains = [
        ("kilometers", "meters", "centimeters", 1000, 100, "m", "cm"),
        ("kilograms", "grams", "milligrams", 1000, 1000, "g", "mg"),
        ("meters", "centimeters", "millimeters", 100, 10, "cm", "mm"),
    ]
    big, mid, small, f1, f2, s1, s2 = rng.choice(chains)
    while True:
        base = nice_values(rng)
        if in_split(base, split) and conversion_split(base, base * f1, base * f1 * f2) == split:
            break
    first = rng.choice(UNIT_QUESTIONS).format(v=fmt(base), frm=big, to=mid)
    second = rng.choice([f"And how many {small} is that?", f"And in {small}?", f"What about in {small}?"])
    answer = f"{fmt(base * f1 * f2)} {s2}"
    messages = [
        msg("user", first),
        msg("assistant", answer_text(f"{fmt(base * f1)} {s1}")),
        msg("user", second),
        msg("assistant", answer_text(answer)),
    ]
    return messages, answer, f"{big}:{mid}:{fmt(base)}"


ORDINALS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth"]
FACT_QUESTIONS = {
    "capital": [
        "What is the capital of {c}?",
        "What's the capital city of {c}?",
        "Which city is the capital of {c}?",
        "Name the capital of {c}.",
        "Tell me the capital of {c}.",
    ],
    "continent": ["On which continent is {c}?", "Which continent is {c} in?", "{C} is on which continent?"],
    "language": ["What language do most people in {c} speak?", "Which language is mainly spoken in {c}?"],
    "symbol": [
        "What is the chemical symbol for {n}?",
        "What's the symbol for {n} on the periodic table?",
        "Which chemical symbol stands for {n}?",
    ],
    "element": ["Which element has the symbol {s}?", "What element does the symbol {s} stand for?"],
    "number": ["What is the atomic number of {n}?", "How many protons does an atom of {n} have?"],
    "planet": ["Which planet is {o} from the Sun?", "What is the {o} planet from the Sun?"],
}


def fact(
    kind: str, entity: str, question: str, answer: str, note: str | None = None, wrong: str | None = None
) -> dict:
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
    kind = rng.choice(["capitals", "capital+continent", "elements", "symbol+number"])
    if kind in ("capitals", "capital+continent"):
        first, second = rng.sample(facts["capitals"][split], 2)
        question = rng.choice(["What is the capital of {c}?", "What's the capital of {c}?"])
        messages = [
            msg("user", question.format(c=first["country"])),
            msg("assistant", answer_text(first["capital"])),
        ]
        key = f"capital:{first['country']}"
        if kind == "capital+continent" and first["continent"]:
            question = rng.choice(["Which continent is it on?", "And which continent is that in?"])
            messages += [msg("user", question), msg("assistant", answer_text(first["continent"]))]
            return messages, first["continent"], key
        question = rng.choice(["And of {c}?", "What about {c}?", "And the capital of {c}?"])
        messages += [
            msg("user", question.format(c=second["country"])),
            msg("assistant", answer_text(second["capital"])),
        ]
        return messages, second["capital"], key
    first, second = rng.sample(facts["elements"][split], 2)
    question = rng.choice(["What is the chemical symbol for {n}?", "What's the symbol for {n}?"])
    messages = [msg("user", question.format(n=first["name"])), msg("assistant", answer_text(first["symbol"]))]
    key = f"symbol:{first['name']}"
    if kind == "symbol+number":
        question = rng.choice(["And what is its atomic number?", "What is its atomic number?"])
        messages += [msg("user", question), msg("assistant", answer_text(str(first["number"])))]
        return messages, str(first["number"]), key
    question = rng.choice(["And for {n}?", "What about {n}?"])
    messages += [
        msg("user", question.format(n=second["name"])),
        msg("assistant", answer_text(second["symbol"])),
    ]
    return messages, second["symbol"], key


# ---------------------------------------------------------------------------------------------
# SFT

SYSTEM_PROMPTS = {
    "any": [
        "You are a helpful assistant.",
        "You are a friendly assistant. Keep your answers short and direct.",
        "You are a concise assistant. Answer in one to three sentences.",
        "You are a helpful assistant who answers clearly and briefly.",
    ],
    "arithmetic": ["You are a patient maths tutor.", "You help people with quick calculations."],
    "units": ["You help people with measurements and unit conversions."],
    "facts": ["You are a quiz assistant. Give the answer first."],
    "howto": ["You give practical advice in a few short sentences."],
    "everyday": ["You are a warm, friendly chat companion."],
    "explain": ["You explain things simply, like a good teacher."],
}
SYSTEM_SHARE = 0.15


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
        add(
            [msg("user", item["question"]), msg("assistant", answer_text(item["answer"], item["note"]))],
            "facts",
            item["answer"],
            item["key"],
        )
    for category, make, share in [("arithmetic", arithmetic_item, 0.6), ("units", unit_item, 1.0)]:
        target = len(rows) + round((n_total - len(rows)) * share)
        while len(rows) < target:
            item = make(rng, split)
            add(
                [msg("user", item["question"]), msg("assistant", answer_text(item["answer"], item["note"]))],
                category,
                item["answer"],
                item["key"],
            )

    for row in rows:
        if rng.random() < SYSTEM_SHARE:
            options = SYSTEM_PROMPTS["any"] + SYSTEM_PROMPTS[row["category"]]
            row["messages"] = [msg("system", rng.choice(options)), *row["messages"]]
    rng.shuffle(rows)
    return rows


# ---------------------------------------------------------------------------------------------
# DPO

RAMBLE_OPENERS = [
    "Great question! ",
    "Thanks so much for asking, this is something a lot of people wonder about. ",
    "Oh, that's a really interesting thing to ask about! ",
    "Sure, I'd be happy to help you with that! ",
    "What a great thing to be curious about. ",
    "Absolutely, let me explain. ",
    "Okay, so let me think about this carefully before I answer. ",
    "Ah, good one! ",
]
RAMBLE_MIDDLES = [
    "There are a lot of different factors that can come into play here, and it really depends. ",
    "Before I answer, it's worth saying that everyone's circumstances are a little bit different. ",
    "This is one of those topics where it helps to take a step back and look at the bigger picture first. ",
    "I want to make sure I give you a complete and thorough answer, so bear with me. ",
    "People have different opinions about this kind of thing, and that's totally okay. ",
    "It's actually a more interesting topic than it might seem at first glance. ",
]
RAMBLE_BRIDGES = [
    "So, here's the thing. ",
    "Anyway, to get to the point. ",
    "Basically, here's what I can tell you. ",
    "Long story short. ",
    "With all that in mind. ",
]
RAMBLE_ASIDES = [
    "Of course, it's always a good idea to do your own research as well. ",
    "Many people find this surprisingly interesting once they look into it. ",
    "It's also worth keeping in mind that things can vary quite a bit. ",
    "There's actually a lot more that could be said about this. ",
    "I could go on about this for a while, to be honest. ",
]
RAMBLE_CLOSERS = [  # each ends the reply with a follow-up question
    "I hope this helps! Do you have any other questions?",
    "Hopefully that makes sense! Is there anything else you'd like to know?",
    "Would you like me to go into more detail?",
    "I'm always happy to help! Does that answer your question?",
    "What do you think?",
]
DISMISSIVE = [
    "You can probably find that with a quick search online.",
    "That's really something you'll have to figure out yourself.",
    "I'd rather not get into that right now.",
    "It depends on a lot of things, so I can't really say.",
    "There are plenty of guides out there, so just look one up.",
    "Just ask someone who knows more about it.",
    "Honestly, it's not that important.",
    "Try it and see what happens.",
    "Lots of people have written about that, so check a book or a website.",
    "I'm not really the right place to ask about that.",
    "Why not just look it up?",
    "Hard to say, everyone does it differently.",
    "That's not something I can help with.",
    "Maybe ask a friend instead.",
    "It's complicated, so I'll leave it there.",
    "No idea, sorry.",
]
DISMISSIVE_VERIFIABLE = {
    "arithmetic": [
        "Just use a calculator for that.",
        "You can work that out on your own.",
        "That's simple maths, so I'll let you do it.",
    ],
    "units": [
        "Any conversion website can tell you that.",
        "Just use a unit converter.",
        "You can look up the conversion yourself.",
    ],
    "facts": [
        "You can look that up in an encyclopedia.",
        "A quick search will tell you that.",
        "I'm sure you can find that somewhere.",
    ],
}
DPO_SYSTEM_SHARE = 0.1


def ramble(rng: random.Random, answer: str) -> str:
    """A rejected reply that buries the same answer in filler."""
    parts = [
        rng.choice(RAMBLE_OPENERS),
        rng.choice(RAMBLE_MIDDLES),
        rng.choice(RAMBLE_BRIDGES),
        answer + " ",
        rng.choice(RAMBLE_ASIDES),
        rng.choice(RAMBLE_CLOSERS),
    ]
    return "".join(parts)


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
        big, small, shown, multiply = item["conversion"]
        slip = WRONG_FACTORS.get((big, small))
        wrong = None
        if slip:  # the right method with a commonly confused factor
            wrong = shown * slip if multiply else shown / slip
        if wrong is None or wrong != wrong.quantize(Decimal("0.01")) or wrong == item["value"]:
            wrong = item["value"] * rng.choice([Decimal(10), Decimal("0.1")])  # a misplaced decimal point
        return unit_answer(wrong, item["unit"], item["symbol"])
    return item["wrong"]


def format_rows(rng: random.Random, split: str, facts: dict, pools: dict) -> list[dict]:
    """Rows where the prompt asks for a specific format and the rejected reply ignores it."""
    rows = []
    for b in pools["bullets"][split]:
        prompt = rng.choice(
            [
                "List three {t} as bullet points.",
                "Give me three {t}, as a bulleted list.",
                "What are three {t}? Use bullet points.",
                "Name three {t} in a bullet list.",
            ]
        )
        chosen = "\n".join(f"- {x}" for x in b["bullets"])
        if b["bullets"][0].endswith("."):
            rejected = " ".join(b["bullets"])
        else:
            first, second, third = b["bullets"]
            rejected = f"Good examples are {first.lower()}, {second.lower()} and {third.lower()}."
        rows.append(dpo_row(prompt.format(t=b["things"]), chosen, rejected, "format"))
    for w in pools["one_word"][split]:
        prompt = rng.choice(
            ["Answer in one word: {q}?", "One word only: {q}?", "{Q}? Reply with a single word."]
        )
        rows.append(
            dpo_row(prompt.format(q=w["question"], Q=cap(w["question"])), w["word"], w["long"], "format")
        )
    for c in facts["capitals"][split]:
        name = c["country"].removeprefix("the ")
        style = rng.choice(["yes", "no", "json", "word"])
        if style == "no" and not c["wrong"]:
            style = "yes"
        if style == "word" and " " in c["capital"]:
            style = "json"
        if style == "yes":
            rows.append(
                dpo_row(
                    f"Answer yes or no: is {c['capital']} the capital of {c['country']}?",
                    "Yes",
                    f"That's right, {c['capital']} is the capital of {c['country']}, and it is where "
                    "the national government is based.",
                    "format",
                )
            )
        elif style == "no":
            rows.append(
                dpo_row(
                    f"Answer with yes or no only. Is {c['wrong']} the capital of {c['country']}?",
                    "No",
                    f"Not quite, because the capital of {c['country']} is actually {c['capital']}, "
                    f"not {c['wrong']}.",
                    "format",
                )
            )
        elif style == "json":
            rows.append(
                dpo_row(
                    f'Give me the capital of {c["country"]} as JSON with the keys "country" and "capital".',
                    json.dumps({"country": name, "capital": c["capital"]}, ensure_ascii=False),
                    f"The capital of {c['country']} is {c['capital']}.",
                    "format",
                )
            )
        else:
            rows.append(
                dpo_row(
                    f"Answer in one word: what is the capital of {c['country']}?",
                    c["capital"],
                    f"The capital of {c['country']} is {c['capital']}, which is where the national "
                    "government is based.",
                    "format",
                )
            )
    for e in facts["elements"][split]:
        style = rng.choice(["json", "yes", "no"])
        if style == "json":
            rows.append(
                dpo_row(
                    f'Return a JSON object with the keys "element" and "symbol" for {e["name"]}.',
                    json.dumps({"element": e["name"], "symbol": e["symbol"]}),
                    f"Sure! The chemical symbol for {e['name']} is {e['symbol']}.",
                    "format",
                )
            )
        elif style == "no":
            rows.append(
                dpo_row(
                    f"Is {e['wrong']} the chemical symbol for {e['name']}? Just say yes or no.",
                    "No",
                    f"Not quite, the chemical symbol for {e['name']} is {e['symbol']}, not {e['wrong']}.",
                    "format",
                )
            )
        else:
            rows.append(
                dpo_row(
                    f"Is {e['symbol']} the chemical symbol for {e['name']}? Just say yes or no.",
                    "Yes",
                    f"Yes, {e['symbol']} is the chemical symbol for {e['name']}, which you can find on "
                    "any periodic table.",
                    "format",
                )
            )
    for _ in range(len(rows) // 4):
        item = arithmetic_item(rng, split)
        if item["question"].startswith(("I ", "A ")) or not item["question"].endswith("?"):
            continue
        prompt = rng.choice(
            [
                "{q} Reply with the number only.",
                "{q} Give just the number.",
                "{q} Answer with a number and nothing else.",
            ]
        ).format(q=item["question"])
        rejected = rng.choice(
            [
                answer_text(item["answer"], item["note"] or "I worked it out step by step."),
                f"Let me work this out for you. The result is {item['answer']}, and you can "
                "check it with a calculator.",
            ]
        )
        rows.append(dpo_row(prompt, item["answer"], rejected, "format"))
    n_handwritten = len(pools["bullets"][split]) + len(pools["one_word"][split])
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

    correct = [
        dpo_row(m["user"], m["chosen"], m["rejected"], "correct") for m in pools["misconceptions"][split]
    ]
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
        if item["category"] == "everyday" and not item["user"].startswith(
            ("How", "What", "Why", "Can", "Suggest", "Recommend", "Give", "Write", "Tell")
        ):
            continue
        target = helpful if len(helpful) <= len(concise) and item["category"] != "everyday" else concise
        target.append(item)
    helpful_rows = [dpo_row(x["user"], x["assistant"], rng.choice(DISMISSIVE), "helpful") for x in helpful]
    concise_rows = [
        dpo_row(x["user"], x["assistant"], ramble(rng, x["assistant"]), "concise") for x in concise
    ]
    for _ in range(n // 2):
        category, item = verifiable_item(rng, split, facts, fact_pool)
        chosen = answer_text(item["answer"], item["note"])
        if rng.random() < 0.5:
            helpful_rows.append(
                dpo_row(
                    item["question"],
                    chosen,
                    rng.choice(DISMISSIVE_VERIFIABLE[category]),
                    "helpful",
                    item["key"],
                )
            )
        else:
            concise_rows.append(
                dpo_row(item["question"], chosen, ramble(rng, chosen), "concise", item["key"])
            )
    rng.shuffle(helpful_rows)
    rng.shuffle(concise_rows)
    take(helpful_rows, "helpful")
    take(concise_rows, "concise")

    rows = [
        row
        for dimension in ("concise", "correct", "helpful", "safe", "format")
        for row in by_dimension[dimension]
    ]
    for dimension, got in by_dimension.items():
        if len(got) != n:
            raise SystemExit(f"not enough {dimension!r} material for {split}: {len(got)} of {n}")
    for row in rows:
        if row["dimension"] != "safe" and rng.random() < DPO_SYSTEM_SHARE:
            row["prompt"] = [msg("system", rng.choice(SYSTEM_PROMPTS["any"])), *row["prompt"]]
    rng.shuffle(rows)
    return rows


# ---------------------------------------------------------------------------------------------
# Samples shaped like the two hub datasets the course compares against, and like the seed guide's own rows
# (written for this course).

SMOLTALK_SAMPLE = [
    {
        "full_topic": "Food & Drink/Baking/Bread at home",
        "messages": [
            msg("user", "Hi"),
            msg("assistant", "Hello! How can I help you today?"),
            msg("user", "I want to bake bread for the first time. Is it hard?"),
            msg(
                "assistant",
                "Not at all! A simple loaf only needs flour, water, yeast and salt. The main thing is "
                "patience, because the dough needs time to rise. Would you like a beginner recipe?",
            ),
            msg("user", "Yes please, something easy."),
            msg(
                "assistant",
                "A no-knead loaf is perfect for beginners. Mix the ingredients, leave the dough "
                "overnight, then bake it in a hot pot with a lid. Do you have a pot that can go in "
                "the oven?",
            ),
        ],
    },
    {
        "full_topic": "Travel/Packing/Weekend trips",
        "messages": [
            msg("user", "Hey"),
            msg("assistant", "Hi there! What can I do for you?"),
            msg("user", "I'm going away for a weekend and always pack too much."),
            msg(
                "assistant",
                "That happens to a lot of people! Try planning one outfit per day and choosing "
                "clothes that all go together. Where are you heading?",
            ),
            msg("user", "To the mountains."),
            msg(
                "assistant",
                "Lovely! Bring layers, a waterproof jacket and comfortable shoes, since mountain "
                "weather changes quickly. Are you planning to hike?",
            ),
        ],
    },
    {
        "full_topic": "Home & Garden/Houseplants/Watering",
        "messages": [
            msg("user", "Hello"),
            msg("assistant", "Hello! How can I help you today?"),
            msg("user", "How often should I water my houseplants?"),
            msg(
                "assistant",
                "It depends on the plant, but most like to dry out a little between waterings. "
                "Push a finger into the soil, and if the top few centimetres are dry, it is time to "
                "water. What kinds of plants do you have?",
            ),
        ],
    },
    {
        "full_topic": "Health & Fitness/Walking/Daily steps",
        "messages": [
            msg("user", "Hi"),
            msg("assistant", "Hi! What's on your mind today?"),
            msg("user", "Is walking every day actually good exercise?"),
            msg(
                "assistant",
                "Yes, walking is great exercise! It strengthens your heart, helps your mood and is "
                "easy on your joints. How much do you walk at the moment?",
            ),
            msg("user", "Maybe twenty minutes."),
            msg(
                "assistant",
                "That's a good start! You could add five minutes every week or pick up the pace a "
                "little. Would you like some ideas for making walks more interesting?",
            ),
        ],
    },
    {
        "full_topic": "Technology/Smartphones/Battery life",
        "messages": [
            msg("user", "Hey there"),
            msg("assistant", "Hey! How can I help?"),
            msg("user", "My phone battery doesn't last the day anymore."),
            msg(
                "assistant",
                "That's frustrating! Lowering the screen brightness and turning off background "
                "refresh for apps you rarely use can help a lot. How old is your phone?",
            ),
        ],
    },
]


def hh(*turns: str) -> str:
    """An hh-rlhf style transcript: alternating Human/Assistant turns, each preceded by a blank line."""
    return "".join(f"\n\n{'Human' if i % 2 == 0 else 'Assistant'}: {t}" for i, t in enumerate(turns))


HH_RLHF_SAMPLE = [
    {
        "chosen": hh(
            "How do I keep cut flowers fresh for longer?",
            "I think the best approach is to trim the stems at an angle and change the water every two "
            "days. Keeping the vase out of direct sun also helps.",
        ),
        "rejected": hh(
            "How do I keep cut flowers fresh for longer?",
            "I think flowers just die after a few days, so there isn't much point trying.",
        ),
    },
    {
        "chosen": hh(
            "Can you help me plan a picnic?",
            "Of course. What kind of food do you like?",
            "Sandwiches and fruit, mostly.",
            "Then pack a few sandwiches, some washed grapes and apple slices with lemon juice, plus a "
            "blanket and plenty of water.",
        ),
        "rejected": hh(
            "Can you help me plan a picnic?",
            "Of course. What kind of food do you like?",
            "Sandwiches and fruit, mostly.",
            "Just buy whatever the shop has.",
        ),
    },
    {
        "chosen": hh(
            "What's a good name for a grey kitten?", "Smokey, Pebble or Misty would all suit a grey kitten."
        ),
        "rejected": hh("What's a good name for a grey kitten?", "Names don't matter to cats."),
    },
    {
        "chosen": hh(
            "My neighbour's tree hangs over my garden.",
            "That can be annoying. Is it causing any damage?",
            "Not really, but it blocks the light. What should I do?",
            "Talk to your neighbour first and ask whether they would trim it. Many people are happy to "
            "help once they know it bothers you.",
        ),
        "rejected": hh(
            "My neighbour's tree hangs over my garden.",
            "That can be annoying. Is it causing any damage?",
            "Not really, but it blocks the light. What should I do?",
            "Talk to a lawyer and threaten to sue them straight away.",
        ),
    },
    {
        "chosen": hh(
            "Why do my glasses fog up when I come inside in winter?",
            "Warm, moist indoor air hits the cold lenses and the water vapour condenses on them, like "
            "dew on grass.",
        ),
        "rejected": hh(
            "Why do my glasses fog up when I come inside in winter?",
            "Because your glasses are probably cheap.",
        ),
    },
    {
        "chosen": hh(
            "Can you recommend a board game for two players?",
            "I'd suggest Patchwork, a quick puzzle game designed for two people.",
        ),
        "rejected": hh(
            "Can you recommend a board game for two players?",
            "I'd suggest you search online, there are too many to choose from.",
        ),
    },
]

# The seed guide's shapes (TRL's standard format: plain strings, no roles); smolkit.data.to_conversational
# turns them into the course's messages.
GUIDE_PREFERENCE_SAMPLE = [
    {
        "prompt": "How many legs does a spider have?",
        "chosen": "A spider has eight legs.",
        "rejected": "A spider has six legs, like every insect.",
    },
    {
        "prompt": "What is the boiling point of water at sea level?",
        "chosen": "Water boils at 100 °C (212 °F) at sea level.",
        "rejected": "Water boils at 90 °C at sea level.",
    },
    {
        "prompt": "Give me one tip for sleeping better.",
        "chosen": "Go to bed and get up at the same time every day, weekends included.",
        "rejected": "Just sleep more.",
    },
]

GUIDE_SFT_SAMPLE = [
    {"text": "Human: What is the chemical symbol for gold?\n\nAssistant: The chemical symbol for gold is Au."},
    {"prompt": "How many minutes are in two hours?", "completion": "There are 120 minutes in two hours."},
    {
        "prompt": "Which planet is known for its rings?",
        "completion": "Saturn is known for its bright rings of ice and rock.",
    },
]


# ---------------------------------------------------------------------------------------------


def load_sources() -> tuple[dict, dict]:
    """Read data/source/ and split every table and pool into train and test, by topic."""
    with open(SOURCE / "facts.json", encoding="utf-8") as f:
        raw = json.load(f)
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
    write_jsonl(SMOLTALK_SAMPLE, out / "samples" / "smoltalk_sample.jsonl")
    write_jsonl(HH_RLHF_SAMPLE, out / "samples" / "hh_rlhf_sample.jsonl")
    write_jsonl(GUIDE_PREFERENCE_SAMPLE, out / "samples" / "guide_format_preferences.jsonl")
    write_jsonl(GUIDE_SFT_SAMPLE, out / "samples" / "guide_format_sft.jsonl")


if __name__ == "__main__":
    main()
