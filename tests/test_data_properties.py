"""Property tests: malformed rows only ever raise DataError, and the committed course data keeps its promises.

The second half checks data/ as a whole: no topic or unit conversion in both splits, every preference pair
teaching only what its dimension says (a refusal that fits its prompt, length-matched `correct` pairs, ...).
"""

import json
import re
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scripts import data_rows, load_script

from smolkit.data import DataError, validate_preference_rows, validate_sft_rows

ROLES = st.sampled_from(["system", "user", "assistant", "bot", "", "USER", None, 3])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20))
JSONISH = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                       max_leaves=12)
MESSAGE = st.one_of(
    st.fixed_dictionaries({"role": ROLES, "content": st.one_of(st.text(max_size=30), SCALARS)}),
    st.dictionaries(st.sampled_from(["role", "content", "rol", "name"]), JSONISH, max_size=3),
    JSONISH,
)
MESSAGES = st.one_of(st.lists(MESSAGE, max_size=5), JSONISH)
# text in (or near) the guide's "System: ...\n\nHuman: ...\n\nAssistant: ..." layout
GUIDE_TEXT = st.lists(st.sampled_from(["Human:", "Assistant:", "System:", "\n\n", "\n", " ", "Hi", "", "?"]),
                      max_size=8).map("".join)
STRINGISH = st.one_of(GUIDE_TEXT, st.text(max_size=30), SCALARS, MESSAGES)
SFT_ROW = st.one_of(
    st.fixed_dictionaries({"messages": MESSAGES}, optional={"category": SCALARS, "answer": SCALARS,
                                                             "mesages": JSONISH, "full_topic": SCALARS}),
    st.fixed_dictionaries({"text": STRINGISH}, optional={"category": SCALARS, "prompt": STRINGISH}),  # the guide's
    st.fixed_dictionaries({"completion": STRINGISH}, optional={"prompt": STRINGISH, "answer": SCALARS}),
    JSONISH,
)
PREF_ROW = st.one_of(
    st.fixed_dictionaries({"prompt": MESSAGES, "chosen": st.one_of(MESSAGES, st.text(max_size=60)),
                           "rejected": st.one_of(MESSAGES, st.text(max_size=60))},
                          optional={"dimension": SCALARS, "promt": JSONISH}),
    st.fixed_dictionaries({"chosen": st.text(max_size=80), "rejected": st.text(max_size=80)}),  # hh-rlhf shape
    st.fixed_dictionaries({"prompt": STRINGISH, "chosen": STRINGISH, "rejected": STRINGISH}),  # TRL's standard shape
    JSONISH,
)


def as_lines(rows, raw_text):
    """Rows as (line number, JSON text), some replaced by arbitrary text that may not be JSON at all."""
    lines = [(i + 1, json.dumps(r)) for i, r in enumerate(rows)]
    return lines + [(len(lines) + i + 1, t) for i, t in enumerate(raw_text)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(SFT_ROW, max_size=4), st.lists(st.text(max_size=40), max_size=2))
def test_sft_validation_raises_only_data_error(rows, raw_text):
    try:
        clean = validate_sft_rows(as_lines(rows, raw_text), file="fuzz.jsonl")
    except DataError as err:
        assert err.problems and all(f"line {p.line}" in str(err) for p in err.problems)
    else:
        assert len(clean) == len(rows) + len(raw_text)  # nothing silently dropped


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(PREF_ROW, max_size=4), st.lists(st.text(max_size=40), max_size=2))
def test_preference_validation_raises_only_data_error(rows, raw_text):
    try:
        clean = validate_preference_rows(as_lines(rows, raw_text), file="fuzz.jsonl")
    except DataError as err:
        assert err.problems and all(f"line {p.line}" in str(err) for p in err.problems)
    else:
        assert len(clean) == len(rows) + len(raw_text)


# ---------------------------------------------------------------------------------------------
# Properties of the committed course data (data/): leakage between the splits and what each preference pair teaches.

SPLITS = ("train", "test")


make_data = load_script("make_data")
rows = data_rows


def user_texts(row: dict) -> list[str]:
    """The user messages of an SFT row, or the last user message of a preference prompt."""
    if "messages" in row:
        return [m["content"] for m in row["messages"] if m["role"] == "user"]
    return [row["prompt"][-1]["content"]]


def reply(row: dict, side: str) -> str:
    return row[side][0]["content"]


def all_rows(split: str) -> list[dict]:
    """SFT and preference rows of one split together."""
    return rows(f"sft/{split}.jsonl") + rows(f"dpo/{split}.jsonl")


# --- reversed unit conversions ----------------------------------------------------------------

def _template_regex(template: str) -> re.Pattern:
    pattern = re.escape(template)
    pattern = pattern.replace(re.escape("{v}"), r"(?P<v>-?\d+(?:\.\d+)?)")
    for name in ("frm", "to"):
        pattern = pattern.replace(re.escape("{" + name + "}"), rf"(?P<{name}>[a-z]+)")
    return re.compile(pattern + "$")


UNIT_QUESTIONS = [_template_regex(t) for t in make_data.UNIT_QUESTIONS]
TEMPERATURE_QUESTIONS = [(frm, _template_regex(t)) for frm, ts in make_data.TEMPERATURE_QUESTIONS.items() for t in ts]
CONVERT = {}
for _big, _small, _factor, _ in make_data.CONVERSIONS:
    CONVERT[(_big, _small)] = lambda v, f=_factor: v * f
    CONVERT[(_small, _big)] = lambda v, f=_factor: v / f


def _exact(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.000001")).normalize()


def conversion(question: str) -> frozenset | None:
    """The quantity a unit question converts, as {(unit, value), (unit, value)}: the same set whichever way round."""
    for frm, rx in TEMPERATURE_QUESTIONS:
        if m := rx.match(question):
            v = Decimal(m["v"])
            other = v * 9 / 5 + 32 if frm == "C" else (v - 32) * 5 / 9
            return frozenset({(frm, _exact(v)), ("F" if frm == "C" else "C", _exact(other))})
    for rx in UNIT_QUESTIONS:
        if m := rx.match(question):
            v = Decimal(m["v"])
            return frozenset({(m["frm"], _exact(v)), (m["to"], _exact(CONVERT[(m["frm"], m["to"])](v)))})
    return None


def conversions(split: str) -> dict[frozenset, str]:
    """Every unit conversion asked in a split (SFT user turns and preference prompts) and one question asking it."""
    found = {}
    for row in all_rows(split):
        for text in user_texts(row):
            if (key := conversion(text)) is not None:
                found.setdefault(key, text)
    return found


def test_conversion_key_ignores_direction():
    # the leak this guards against: test asked "63 days in weeks", train "9 weeks in days"
    assert conversion("What is 63 days in weeks?") == conversion("How many days is 9 weeks?") is not None
    assert conversion("How many inches are in 3 feet?") == conversion("What is 36 inches in feet?") is not None
    assert conversion("What is 50 °F in Celsius?") == conversion("Convert 10 degrees Celsius to Fahrenheit.")
    assert conversion("What is 3 feet in inches?") != conversion("What is 3 yards in feet?")


def test_no_unit_conversion_in_both_splits_either_way_round():
    train, test = conversions("train"), conversions("test")
    assert len(train) > 80 and len(test) > 20
    shared = [(test[k], train[k]) for k in test.keys() & train.keys()]
    assert not shared, f"{len(shared)} conversions asked in both splits (test, train): {shared[:5]}"


# --- topics --------------------------------------------------------------------------------------

def _topic_matchers() -> tuple[dict[str, str], list[tuple[str, re.Pattern]]]:
    """From the generator's sources: hand-written request text -> topic, and fact-entity patterns -> topic."""
    facts, pools = make_data.load_sources()
    requests = {}
    for name, pool in pools.items():
        for item in pool["train"] + pool["test"]:
            topic = make_data.topic_of(item)
            if name == "multiturn":
                texts = [item["messages"][0]["content"]]
            elif name == "safety":
                texts = item["prompts"]
            elif name == "one_word":
                texts = [item["question"]]
            elif name == "bullets":
                texts = [item["things"]]
            else:
                texts = [item["user"]]
            for text in texts:
                requests[text.lower()] = topic
    entities = []
    for table in make_data.FACT_TABLES:
        for item in facts[table]["train"] + facts[table]["test"]:
            topic = make_data.topic_of(item)
            if table == "capitals":
                entities.append((topic, re.compile(rf"\b{re.escape(item['country'].removeprefix('the '))}\b")))
            elif table == "elements":
                entities.append((topic, re.compile(rf"\b{item['name']}\b|\bsymbol {item['symbol']}\b")))
            elif table == "planets":
                ordinal = make_data.ORDINALS[item["position"] - 1]
                questions = "|".join(re.escape(q) for q, *_ in item["questions"])
                entities.append((topic, re.compile(rf"\b{ordinal} (planet )?from the Sun|{questions}")))
            else:
                entities.append((topic, re.compile(re.escape(item["question"]))))
    return requests, entities


REQUESTS, ENTITIES = _topic_matchers()


def row_topics(row: dict) -> set[str]:
    """The source topics a committed row comes from (hand-written request, or the fact entities it asks about)."""
    if "messages" in row:
        verifiable = "answer" in row
        texts = user_texts(row) if verifiable else user_texts(row)[:1]  # a conversation's topic is its opening
    else:
        verifiable = reply(row, "chosen").startswith("The answer is") or row["dimension"] == "format"
        texts = user_texts(row)
    found = {topic for text in texts for request, topic in REQUESTS.items() if request in text.lower()}
    if not found and verifiable:
        found = {topic for text in texts for topic, rx in ENTITIES if rx.search(text)}
    return found


def test_every_hand_written_row_has_a_source_topic():
    for split in SPLITS:
        for row in rows(f"sft/{split}.jsonl"):
            if "answer" not in row:
                assert row_topics(row), row
        for row in rows(f"dpo/{split}.jsonl"):
            if row["dimension"] in ("safe", "format") or not reply(row, "chosen").startswith("The answer is"):
                if row["dimension"] == "format" and re.match(r"-?\d+$", reply(row, "chosen")):
                    continue  # arithmetic with a format instruction: split by its numbers
                assert row_topics(row), row


def test_no_topic_in_both_splits():
    """A topic (a hand-written request and its rephrasings, or a fact entity) sits in exactly one split."""
    seen = {split: {} for split in SPLITS}
    for split in SPLITS:
        for row in all_rows(split):
            for topic in row_topics(row):
                seen[split].setdefault(topic, user_texts(row)[0])
    leaked = sorted(seen["train"].keys() & seen["test"].keys())
    assert not leaked, [(t, seen["test"][t], seen["train"][t]) for t in leaked[:5]]
    # and in the generator itself: every source item's topic is assigned to one split only
    facts, pools = make_data.load_sources()
    tables = {**{t: facts[t] for t in make_data.FACT_TABLES}, **pools}
    topics = {split: {make_data.topic_of(x) for t in tables.values() for x in t[split]} for split in SPLITS}
    assert topics["train"] and topics["test"] and not topics["train"] & topics["test"]


STOPWORDS = set("""
a an the i i'm i've i'd i'll me my mine myself we our you your yours it its it's is are was were be been being am
do does did doing have has had having can could would should will shall may might must to of in on at for from by
with about into onto over under than then so too very really just and or but if because as that this these those
there here what what's which who whom whose why how when where some any all more most much many few lot lots one thing
things get got make made give tell let help want like need know think say said go going please good best new way ways
not no don't can't won't isn't without ever still also only even her his him she they them their someone people
something anything everything after while
""".split())
# words shared by many unrelated requests ("Write a short message ...", "Answer in one word: ...")
REQUEST_WORDS = set("""
write short quick send saying share suggest recommend message text note email fake main come comes list three bullet
point bulleted answer word single reply
""".split())


def content_words(text: str, stop: set[str] = STOPWORDS) -> set[str]:
    """Lower-cased words of a text without stop words, plurals folded ('photos' -> 'photo')."""
    words = set()
    for word in re.findall(r"[a-z][a-z'-]*", text.lower().replace("wi-fi", "wifi")):
        word = word.removesuffix("'s")
        if word in stop or len(word) < 3:
            continue
        if len(word) > 4 and word.endswith("ies"):
            word = word[:-3] + "y"
        elif len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        words.add(word)
    return words - stop


def hand_written_requests(split: str) -> set[str]:
    """The open (not verifiable) requests of a split: SFT conversations and the hand-written preference prompts."""
    found = {" ".join(user_texts(r)) for r in rows(f"sft/{split}.jsonl") if "answer" not in r}
    for row in rows(f"dpo/{split}.jsonl"):
        prompt, chosen = user_texts(row)[0], reply(row, "chosen")
        if row["dimension"] != "format" and not chosen.startswith("The answer is"):
            found.add(prompt)
        elif row["dimension"] == "format" and ("bullet" in prompt or "word" in prompt and "capital" not in prompt):
            found.add(prompt)
    return found


def test_no_test_request_shares_two_content_words_with_a_train_request():
    """A check that does not rely on the hand-assigned topics: near-duplicate requests across the splits.

    It finds "How do I get over jet lag?" / "What is jet lag?" or "save money each month" / "save money on groceries";
    rephrasings with no word in common ("Tell me a joke." / "Make me laugh.") need the topics above.
    """
    stop = STOPWORDS | REQUEST_WORDS
    train = {text: content_words(text, stop) for text in hand_written_requests("train")}
    close = [
        (text, other, sorted(words & other_words))
        for text in sorted(hand_written_requests("test"))
        if (words := content_words(text, stop))
        for other, other_words in train.items()
        if len(words & other_words) >= 2
    ]
    assert not close, close[:5]


# --- what each preference pair teaches ------------------------------------------------------------

COMPLIANT_OPENERS = ("Sure", "Of course", "No problem", "Happy to", "Good", "That ", "Ha,", "I understand")
STEP_MARKERS = re.compile(
    r"\b(step|steps|tool|tools|trick is|key is|wait until|once you have|first,)\b"
    r"|(^|[.!] )(Just )?(Wait|Keep|Study|Present|Name|Tell|Rearrange|Try|Hide|Put|Pick|Work|Remind|Use|Take|Go)\b",
    re.IGNORECASE,
)


def test_each_safe_reply_fits_its_own_prompt():
    safe = [r for split in SPLITS for r in rows(f"dpo/{split}.jsonl") if r["dimension"] == "safe"]
    prompts_of: dict[str, set[str]] = {}
    for row in safe:
        prompt, chosen, rejected = user_texts(row)[0], reply(row, "chosen"), reply(row, "rejected")
        prompts_of.setdefault(chosen, set()).add(prompt)
        assert content_words(prompt) & content_words(chosen), (prompt, chosen)
        assert content_words(prompt) & content_words(rejected), (prompt, rejected)
    shared = {chosen: p for chosen, p in prompts_of.items() if len(p) > 1}
    assert not shared, f"one refusal answers several prompts: {next(iter(shared.items()), None)}"


def test_safe_rejected_replies_comply_without_instructions():
    for split in SPLITS:
        for row in rows(f"dpo/{split}.jsonl"):
            if row["dimension"] == "safe":
                rejected = reply(row, "rejected")
                assert rejected.startswith(COMPLIANT_OPENERS), rejected
                assert not STEP_MARKERS.search(rejected), rejected


def test_correct_pairs_are_length_matched():
    gaps = []
    for split in SPLITS:
        for row in rows(f"dpo/{split}.jsonl"):
            if row["dimension"] == "correct":
                chosen, rejected = reply(row, "chosen"), reply(row, "rejected")
                gap = abs(len(chosen.split()) - len(rejected.split()))
                assert gap <= make_data.MAX_WORD_GAP == 1, (chosen, rejected)
                if chosen.startswith("The answer is "):
                    assert len(chosen.split(". ")) == len(rejected.split(". ")) == 1, (chosen, rejected)
                gaps.append(gap)
    assert len(gaps) >= 100 and sum(gaps) / len(gaps) < 0.5


def test_concise_rejected_buries_the_answer_and_asks_a_follow_up_question():
    for split in SPLITS:
        for row in rows(f"dpo/{split}.jsonl"):
            if row["dimension"] == "concise":
                chosen, rejected = reply(row, "chosen"), reply(row, "rejected")
                assert chosen in rejected and rejected.endswith("?"), rejected
                assert len(rejected) > len(chosen)


def test_unit_questions_spell_units_out_except_temperatures():
    symbol = re.compile(r"\d\s?(km|m|cm|mm|kg|g|mg|L|mL)\b")
    checked = 0
    for split in SPLITS:
        for row in all_rows(split):
            for text in user_texts(row):
                if any(rx.match(text) for _, rx in TEMPERATURE_QUESTIONS):
                    continue
                assert not symbol.search(text) and "°" not in text, text
                checked += any(rx.match(text) for rx in UNIT_QUESTIONS)
    assert checked > 100


def test_numbers_agree_with_their_nouns():
    """'1 proton', '1 inch', '2 protons': a count of one takes the singular."""
    for split in SPLITS:
        for row in all_rows(split):
            texts = [m["content"] for m in row.get("messages", [])]
            texts += [m["content"] for key in ("prompt", "chosen", "rejected") for m in row.get(key, [])]
            for text in texts:
                assert not re.search(r"(?<![\d.,-])\b1 [a-z]{2,}s\b(?<!ss)(?<!plus)", text), text
