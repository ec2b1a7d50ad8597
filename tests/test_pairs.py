"""smolkit.pairs: the model's own reply becomes the rejected answer where it is worse than the chosen one."""

from types import SimpleNamespace

import pytest

from smolkit.pairs import onpolicy_pairs, style_anchors, worse_than_chosen


def row(dimension, prompt, chosen, rejected="a written bad answer"):
    return {"prompt": [{"role": "user", "content": prompt}], "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}], "dimension": dimension}


SAFE = row("safe", "How do I pick my neighbour's lock?", "I can't help with picking a lock that isn't yours.")
FORMAT = row("format", "Is Oslo in Norway? Answer yes or no.", "Yes.")
CORRECT = row("correct", "What is 90 + 962?", "The answer is 1052.")
MYTH = row("correct", "Is glass a slow liquid?", "No, glass is a solid.")
HELPFUL = row("helpful", "How do I boil an egg?", "Put it in boiling water for eight minutes.", "Look it up.")
CONCISE = row("concise", "Tips for sleep?", "Keep a regular bedtime.")


@pytest.mark.parametrize("pair, text, worse", [
    (SAFE, "Use a bump key and a tension wrench.", True),
    (SAFE, "I can't help with picking a lock. I can help you with picking a lock.", True),  # undone at once
    (SAFE, "I can't help with that. A locksmith can let you into your own home.", False),
    (FORMAT, "The answer is yes.", True),
    (FORMAT, "Yes", False),
    (CORRECT, "The answer is 1080.", True),
    (CORRECT, "The answer is 1052.", False),
    (MYTH, "The answer is no. Glass is solid.", False),  # the same verdict in SFT's style
    (MYTH, "Yes, it flows slowly.", True),
    (HELPFUL, "I can't help with eggs.", True),
    (HELPFUL, "Boil it for eight minutes.", False),
    (CONCISE, "Great question! Keep a regular bedtime.", True),
    (CONCISE, "Keep a regular bedtime.", False),
])
def test_worse_than_chosen_checks_each_dimension_for_what_it_teaches(pair, text, worse):
    assert (worse_than_chosen(pair, text) is not None) is worse


def test_a_reply_that_never_stops_is_worse_whatever_it_says():
    assert worse_than_chosen(FORMAT, "Yes", stopped=False) == "never stops"


def test_onpolicy_pairs_use_the_models_reply_and_drop_or_keep_the_rest():
    replies = [SimpleNamespace(text=t, stopped=True) for t in
               ("Use a bump key.", "Yes", "Boil it for eight minutes.", "The answer is 1080.")]
    pairs = onpolicy_pairs([SAFE, FORMAT, HELPFUL, CORRECT], replies, keep_written=("helpful",))
    assert [p["dimension"] for p in pairs] == ["safe", "helpful", "correct"]  # the fine format reply is dropped
    safe, helpful, correct = pairs
    assert safe["rejected"][0]["content"] == "Use a bump key." and safe["source"] == "model" and safe["why"]
    assert helpful["rejected"] == HELPFUL["rejected"] and helpful["source"] == "written"  # kept, written side
    assert correct["chosen"] == CORRECT["chosen"] and correct["rejected"][0]["content"] == "The answer is 1080."


def test_style_anchors_choose_the_house_style_over_the_bare_answer():
    rows = [{"messages": [{"role": "user", "content": "What is 6 x 7?"},
                          {"role": "assistant", "content": "The answer is 42. Six sevens."}], "answer": "42"},
            {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}],
             "answer": None},  # nothing checkable: no anchor
            {"messages": [{"role": "user", "content": "2 + 2?"}, {"role": "assistant", "content": "The answer is 4."},
                          {"role": "user", "content": "And times 3?"},
                          {"role": "assistant", "content": "The answer is 12."}], "answer": "12"}]  # multi-turn: no
    [anchor] = style_anchors(rows, n=5)
    assert anchor["prompt"] == rows[0]["messages"][:1] and anchor["chosen"] == rows[0]["messages"][1:]
    assert anchor["rejected"] == [{"role": "assistant", "content": "42."}] and anchor["source"] == "anchor"
