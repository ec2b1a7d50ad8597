"""smolkit.profiles and smolkit.templates."""

import copy

import pytest

from smolkit import PROFILES, get_profile, tiny_model
from smolkit.templates import GUIDE_TEMPLATE, loss_tokens, render, use_template


def test_profiles_grow_from_smoke_to_full():
    smoke, default, full = (get_profile(n) for n in ("smoke", "default", "full"))
    assert smoke.sft_steps < default.sft_steps < full.sft_steps
    assert smoke.dpo_steps < default.dpo_steps < full.dpo_steps
    assert full.sft_steps == 1000 and full.dpo_steps == 500  # the guide's settings
    assert full.sft_batch_size == 4 and full.dpo_batch_size == 2
    assert set(PROFILES) == {"smoke", "default", "full"}


def test_unknown_profile_lists_the_valid_ones():
    with pytest.raises(ValueError, match="smoke, default, full"):
        get_profile("fast")


def test_profile_overrides_and_bad_fields():
    assert get_profile("SMOKE", sft_steps=7).sft_steps == 7
    assert get_profile("smoke", sft_steps=None).sft_steps == PROFILES["smoke"].sft_steps
    with pytest.raises(ValueError, match="unknown profile field"):
        get_profile("smoke", steps=3)


@pytest.fixture(scope="module")
def tok():
    return use_template(copy.deepcopy(tiny_model()[1]))


CONV = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "The answer is 4."}]


def test_guide_template_renders_system_and_closes_turns(tok):
    text = render(tok, CONV)
    assert text == "System: Be brief.\n\nHuman: What is 2+2?\n\nAssistant: The answer is 4.<|im_end|>"
    assert tok.chat_template == GUIDE_TEMPLATE


def test_generation_prompt_is_a_prefix_of_the_full_conversation(tok):
    prompt = render(tok, CONV[:2], add_generation_prompt=True)
    assert render(tok, CONV).startswith(prompt)


def test_only_assistant_tokens_and_eos_carry_loss(tok):
    pairs = loss_tokens(tok, CONV)
    trained = tok.convert_tokens_to_string([p for p, m in pairs if m])
    assert trained.strip() == "The answer is 4.<|im_end|>"


def test_as_written_template_has_no_eos_and_drops_system(tok):
    guide = use_template(copy.deepcopy(tok), "guide-as-written")
    text = render(guide, CONV)
    assert "<|im_end|>" not in text and "Be brief" not in text


def test_unknown_template_name():
    with pytest.raises(ValueError, match="guide"):
        use_template(object(), "chatml-ish")
