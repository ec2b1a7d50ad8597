"""Property-based tests: malformed rows only ever raise DataError, never a crash of another kind."""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
