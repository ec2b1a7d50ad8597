"""smolkit.profiles and smolkit.templates."""

import copy

import pytest

from smolkit.models import tiny_model
from smolkit.profiles import PROFILES, get_profile
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


BAD_OVERRIDES = [
    ("sft_steps", -3, ">= 1"), ("sft_steps", 0, ">= 1"), ("dpo_steps", 2.5, ">= 1, got float"),
    ("sft_steps", True, ">= 1, got bool"), ("dpo_steps", "30", ">= 1, got str"),
    ("sft_batch_size", 0, ">= 1"), ("dpo_batch_size", -2, ">= 1"),
    ("sft_learning_rate", 0, "0 < sft_learning_rate <= 0.01"), ("dpo_learning_rate", -1e-6, "0 < dpo_learning_rate"),
    ("sft_learning_rate", 0.5, "<= 0.01"), ("dpo_learning_rate", float("nan"), "<= 0.01"),
    ("dpo_learning_rate", float("inf"), "<= 0.01"), ("sft_learning_rate", "5e-5", "<= 0.01, got str"),
    ("sft_learning_rate", True, "got bool"),
    ("eval_size", 0, ">= 1"), ("show_size", -1, ">= 0"), ("max_new_tokens", 0, ">= 1"),
    ("logging_steps", 0, ">= 1"), ("save_steps", -10, ">= 1"), ("train_rows", 0, ">= 1"),
    ("train_rows", 2.0, ">= 1, got float"), ("save_strategy", "epoch", "one of 'no', 'steps'"),
    ("save_strategy", False, "one of 'no', 'steps'"),
]


@pytest.mark.parametrize("field, value, valid", BAD_OVERRIDES)
def test_bad_override_names_field_value_and_range(field, value, valid):
    with pytest.raises(ValueError) as info:
        get_profile("smoke", **{field: value})
    message = str(info.value)
    assert message.startswith(f"{field}={value!r} is not valid: expected ") and valid in message


def test_good_overrides_and_none_keep_working():
    smoke = PROFILES["smoke"]
    assert get_profile("smoke", show_size=0).show_size == 0
    assert get_profile("smoke", sft_learning_rate=1e-2, dpo_learning_rate=3e-7).dpo_learning_rate == 3e-7
    assert get_profile("smoke", eval_size=None, dpo_steps=None) == smoke
    assert get_profile("smoke", train_rows=16).train_rows == 16 and get_profile("default").train_rows is None
    assert get_profile("smoke", save_strategy="steps").save_strategy == "steps"
    assert smoke.train_rows >= max(smoke.sft_steps * smoke.sft_batch_size, smoke.dpo_steps * smoke.dpo_batch_size)
    steps, rate = 0, 0  # the notebooks' parameters: 0 means "the profile's value", passed as `STEPS or None`
    assert get_profile("smoke", sft_steps=steps or None, sft_learning_rate=rate or None) == smoke
    for name, profile in PROFILES.items():  # every built-in profile passes the same checks
        fields = {k: v for k, v in vars(profile).items() if k != "name"}
        assert get_profile(name, **fields) == profile


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
