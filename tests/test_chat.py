"""smolkit.chat: the course's template fixes the guide's four flaws, and preflight catches each one before training."""

import copy

import pytest

from smolkit.chat import loss_tokens, preflight, render, split_answer, use_template

CONVERSATION = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"},
                {"role": "assistant", "content": "The answer is 4."}]
PAIR = {"prompt": CONVERSATION[:2], "chosen": [CONVERSATION[2]], "rejected": [{"role": "assistant", "content": "5"}]}


def test_the_guide_template_keeps_system_turns_and_closes_each_reply(tokenizer):
    text = render(tokenizer, CONVERSATION)
    assert text == "System: Be brief.\n\nHuman: What is 2+2?\n\nAssistant: The answer is 4.<|im_end|>"
    assert render(tokenizer, CONVERSATION[:2], add_generation_prompt=True).endswith("Assistant:")  # no trailing space


def test_only_the_reply_and_its_end_of_turn_carry_loss(tokenizer):
    trained = "".join(tokenizer.convert_tokens_to_string([t]) for t, on in loss_tokens(tokenizer, CONVERSATION) if on)
    assert trained == " The answer is 4.<|im_end|>"


def test_the_prompt_is_a_prefix_of_prompt_and_answer(tokenizer):
    prompt, full, cut = split_answer(tokenizer, PAIR["prompt"], PAIR["chosen"])
    assert cut == len(prompt) and full[:cut] == prompt


def test_preflight_passes_the_course_template_for_both_stages(tokenizer):
    assert preflight(tokenizer, [{"messages": CONVERSATION}], "sft")["ok"].all()
    assert preflight(tokenizer, [PAIR], "dpo")["ok"].all()


def test_preflight_passes_the_models_own_chatml_template_for_dpo():
    from transformers import AutoTokenizer

    from smolkit.models import embedded_checkpoint

    native = AutoTokenizer.from_pretrained(embedded_checkpoint())  # ChatML ends a turn with "<|im_end|>\n"
    assert preflight(native, [PAIR], "dpo")["ok"].all()


@pytest.mark.parametrize("stage, rows, flaw", [
    ("sft", [{"messages": CONVERSATION}], "generation markers"),  # as written: no markers, so no loss mask
    ("dpo", [PAIR], "prompt is a prefix"),  # as written: "Assistant: " ends in a space the answer swallows
])
def test_preflight_stops_the_guide_template_as_written(tokenizer, stage, rows, flaw):
    as_written = use_template(copy.deepcopy(tokenizer), "guide-as-written")
    with pytest.raises(ValueError, match=flaw):
        preflight(as_written, rows, stage)


def test_preflight_stops_a_template_that_never_closes_a_reply(tokenizer):
    unclosed = copy.deepcopy(tokenizer)
    unclosed.chat_template = tokenizer.chat_template.replace(" + eos_token", "")
    with pytest.raises(ValueError, match="end-of-turn"):
        preflight(unclosed, [{"messages": CONVERSATION}], "sft")
    with pytest.raises(ValueError, match="end-of-turn"):
        preflight(unclosed, [PAIR], "dpo")


def test_unknown_template_names_the_valid_ones(tokenizer):
    with pytest.raises(ValueError, match="guide-as-written"):
        use_template(copy.deepcopy(tokenizer), "chatml")
