"""smolkit.checks: bad hyperparameters, too-short max_length and broken templates are caught before training."""

import copy

import pytest
import torch
from datasets import Dataset
from trl import DPOConfig, SFTConfig

from smolkit.checks import PreflightError, check_training, config_problems, preflight
from smolkit.models import tiny_model
from smolkit.templates import GUIDE_TEMPLATE, use_template


def sft(**kw):
    return SFTConfig(output_dir="unused", use_cpu=True, bf16=False, report_to="none", max_steps=5, **kw)


def dpo(**kw):
    return DPOConfig(output_dir="unused", use_cpu=True, bf16=False, report_to="none", max_steps=5, **kw)


def test_valid_configs_pass():
    assert config_problems(sft()) == [] and config_problems(dpo()) == []
    check_training(dpo(beta=0.5))


@pytest.mark.parametrize("config, names", [
    (lambda: sft(learning_rate=0.0), ["learning_rate=0.0"]),
    (lambda: sft(learning_rate=-1e-5), ["learning_rate=-1e-05"]),
    (lambda: dpo(beta=0.0), ["beta=0.0"]),
    (lambda: dpo(beta=-0.1, learning_rate=-1.0), ["beta=-0.1", "learning_rate=-1.0"]),
    (lambda: SFTConfig(output_dir="u", use_cpu=True, bf16=False, max_steps=0), ["max_steps=0"]),
    (lambda: sft(per_device_train_batch_size=0), ["per_device_train_batch_size=0"]),
    (lambda: sft(max_length=0), ["max_length=0"]),
])
def test_each_bad_value_is_named_with_what_is_valid(config, names):
    with pytest.raises(ValueError) as err:
        check_training(config())
    message = str(err.value)
    for name in names:
        assert name in message
    assert "must be" in message


def test_max_length_shorter_than_the_examples():
    tok = use_template(copy.deepcopy(tiny_model()[1]))
    rows = [{"messages": [{"role": "user", "content": "word " * 40}, {"role": "assistant", "content": "ok"}]},
            {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}]
    with pytest.raises(ValueError, match=r"max_length=20 is shorter than 1 example\(s\) \(rows 0; longest"):
        check_training(sft(max_length=20), Dataset.from_list(rows), tok)
    check_training(sft(max_length=200), Dataset.from_list(rows), tok)
    pairs = [{"prompt": [{"role": "user", "content": "question " * 30}],
              "chosen": [{"role": "assistant", "content": "yes"}],
              "rejected": [{"role": "assistant", "content": "no"}]}]
    with pytest.raises(ValueError, match="raise max_length to at least"):
        check_training(dpo(max_length=16), Dataset.from_list(pairs), tok)


# --- preflight: the tokenizer, its chat template and the first rows, right before training -----------------

CHAT = [{"role": "user", "content": "What is 2 + 2?"}, {"role": "assistant", "content": "The answer is 4."},
        {"role": "user", "content": "And 3 + 3?"}, {"role": "assistant", "content": "The answer is 6."}]
SFT_ROWS = Dataset.from_list([{"messages": CHAT}, {"messages": CHAT[:2]}])
PAIRS = Dataset.from_list([
    {"prompt": [{"role": "user", "content": "Capital of France?"}],
     "chosen": [{"role": "assistant", "content": "Paris."}],
     "rejected": [{"role": "assistant", "content": "Sure! The capital of France is Paris, a lovely city."}]},
    {"prompt": CHAT[:3], "chosen": [{"role": "assistant", "content": "6"}],
     "rejected": [{"role": "assistant", "content": "Great question! It is 6."}]},
])
GUIDE_REPLY = "{%- generation %}{{- message['content'] + eos_token }}{%- endgeneration %}"
TWO_EOS = GUIDE_TEMPLATE.replace("message['content'] + eos_token", "message['content'] + eos_token + eos_token")
EOS_OUTSIDE = GUIDE_TEMPLATE.replace(
    GUIDE_REPLY, "{%- generation %}{{- message['content'] }}{%- endgeneration %}{{- eos_token }}")


@pytest.fixture(scope="module")
def tiny():
    return tiny_model()


def tokenizer_with(tiny, template="guide"):
    """A copy of the real SmolLM2 tokenizer with a course template name, a template string, or None (its own)."""
    tok = copy.deepcopy(tiny[1])
    if template in ("guide", "guide-as-written"):
        return use_template(tok, template)
    if template is not None:
        tok.chat_template = template
    return tok


def result(table, check):
    row = table.set_index("check").loc[check]
    return bool(row["ok"]), row["detail"]


def test_templates_are_what_the_broken_cases_assume():
    assert GUIDE_REPLY in GUIDE_TEMPLATE and TWO_EOS != GUIDE_TEMPLATE and EOS_OUTSIDE != GUIDE_TEMPLATE


def test_course_setup_passes_every_check(tiny):
    tok = tokenizer_with(tiny)
    sft_table = preflight(tok, SFT_ROWS, "sft")
    assert list(sft_table.columns) == ["check", "ok", "detail"] and sft_table["ok"].all()
    assert list(sft_table["check"]) == ["pad token", "end of turn", "loss covers end of turn"]
    dpo_table = preflight(tok, PAIRS, "dpo", model=tiny[0], ref_model=copy.deepcopy(tiny[0]))
    assert dpo_table["ok"].all()
    assert list(dpo_table["check"]) == ["pad token", "end of turn", "prompt is a prefix", "loss covers end of turn",
                                        "first DPO loss is ln 2"]
    assert "first DPO loss is ln 2" not in set(preflight(tok, PAIRS, "dpo")["check"])  # needs both models


def test_pad_token_missing_fails(tiny):
    tok = tokenizer_with(tiny)
    tok.pad_token = None
    ok, detail = result(preflight(tok, SFT_ROWS, "sft", strict=False), "pad token")
    assert not ok and "has no pad token" in detail and "tokenizer.pad_token = tokenizer.eos_token" in detail


def test_pad_token_equal_to_end_of_turn_passes_only_while_that_token_is_trained(tiny):
    tok = tokenizer_with(tiny)
    assert tok.pad_token == tok.eos_token == "<|im_end|>"  # SmolLM2's tokenizer pads with its end-of-turn token
    ok, detail = result(preflight(tok, SFT_ROWS, "sft"), "pad token")
    assert ok and "harmless here because TRL leaves padding out of the loss by the attention mask" in detail
    ok, detail = result(preflight(tokenizer_with(tiny, EOS_OUTSIDE), SFT_ROWS, "sft", strict=False), "pad token")
    assert not ok and "outside the loss" in detail and "never taught to stop" in detail
    tok.pad_token = "<|endoftext|>"
    ok, detail = result(preflight(tok, SFT_ROWS, "sft"), "pad token")
    assert ok and "differs from the end-of-turn token" in detail


@pytest.mark.parametrize("kind, rows", [("sft", SFT_ROWS), ("dpo", PAIRS)])
def test_end_of_turn_passes_with_the_guide_and_with_smollm2s_own_template(tiny, kind, rows):
    for template in ("guide", None):  # None: SmolLM2's ChatML template, whose turns end in <|im_end|>
        ok, detail = result(preflight(tokenizer_with(tiny, template), rows, kind, strict=False), "end of turn")
        assert ok and "ends with exactly one '<|im_end|>'" in detail


@pytest.mark.parametrize("kind, rows", [("sft", SFT_ROWS), ("dpo", PAIRS)])
def test_end_of_turn_missing_in_the_guides_template_as_written(tiny, kind, rows):
    table = preflight(tokenizer_with(tiny, "guide-as-written"), rows, kind, strict=False)
    ok, detail = result(table, "end of turn")
    assert not ok and "is not closed by '<|im_end|>', so the model never learns to stop" in detail
    assert "use_template(tokenizer, 'guide')" in detail


def test_end_of_turn_added_twice_fails(tiny):
    ok, detail = result(preflight(tokenizer_with(tiny, TWO_EOS), SFT_ROWS, "sft", strict=False), "end of turn")
    assert not ok and "ends with 2 '<|im_end|>' tokens instead of one" in detail
    closed = Dataset.from_list([{"messages": [CHAT[0], {"role": "assistant", "content": "4<|im_end|>"}]}])
    ok, detail = result(preflight(tokenizer_with(tiny), closed, "sft", strict=False), "end of turn")
    assert not ok and "add it in one place only" in detail  # the data already ends the reply, the template again


def test_sft_loss_mask_needs_generation_markers(tiny):
    ok, detail = result(preflight(tokenizer_with(tiny, "guide-as-written"), SFT_ROWS, "sft", strict=False),
                        "loss covers end of turn")
    assert not ok and "no {% generation %} ... {% endgeneration %} markers" in detail
    assert "assistant_only_loss=True needs these markers" in detail


def test_sft_loss_mask_must_cover_the_end_of_turn_token(tiny):
    ok, detail = result(preflight(tokenizer_with(tiny, EOS_OUTSIDE), SFT_ROWS, "sft", strict=False),
                        "loss covers end of turn")
    assert not ok and "outside the loss mask, so the model is never trained to stop" in detail
    ok, detail = result(preflight(tokenizer_with(tiny), SFT_ROWS, "sft"), "loss covers end of turn")
    assert ok and "covers every assistant reply and its closing '<|im_end|>'" in detail


def test_dpo_answers_must_end_with_the_end_of_turn_token(tiny):
    ok, detail = result(preflight(tokenizer_with(tiny, "guide-as-written"), PAIRS, "dpo", strict=False),
                        "loss covers end of turn")
    assert not ok and "row 0 (chosen): the answer DPO scores ends in" in detail and "never scores" in detail
    ok, _ = result(preflight(tokenizer_with(tiny), PAIRS, "dpo"), "loss covers end of turn")
    assert ok


def test_dpo_prompt_must_be_a_prefix_of_prompt_and_answer(tiny):
    ok, detail = result(preflight(tokenizer_with(tiny, "guide-as-written"), PAIRS, "dpo", strict=False),
                        "prompt is a prefix")
    assert not ok and "the prompt alone ends in ' '" in detail  # "Assistant: " + "Paris." tokenizes as ":", " Paris"
    assert "'Assistant:' with no trailing space" in detail
    ok, detail = result(preflight(tokenizer_with(tiny), PAIRS, "dpo"), "prompt is a prefix")
    assert ok and "the tokenized prompt is the start of prompt + answer" in detail


def test_first_dpo_loss_is_ln2_only_against_a_copy_of_the_model(tiny):
    tok, model = tokenizer_with(tiny), tiny[0]
    ok, detail = result(preflight(tok, PAIRS, "dpo", model=model, ref_model=copy.deepcopy(model)),
                        "first DPO loss is ln 2")
    assert ok and "0.6931 = ln 2" in detail
    other = copy.deepcopy(model)
    weight = other.model.layers[0].mlp.down_proj.weight
    with torch.no_grad():  # noise on one weight: a reference that is not the model (its loss is 0.6856)
        weight.add_(torch.randn(weight.shape, generator=torch.Generator().manual_seed(0)))
    table = preflight(tok, PAIRS, "dpo", model=model, ref_model=other, strict=False)
    ok, detail = result(table, "first DPO loss is ln 2")
    assert not ok and "not ln 2 = 0.6931" in detail and "must be a frozen copy of the model DPO starts from" in detail


def test_strict_preflight_raises_one_error_listing_every_failed_check(tiny):
    with pytest.raises(PreflightError) as err:
        preflight(tokenizer_with(tiny, "guide-as-written"), PAIRS, "dpo")
    message = str(err.value)
    assert message.startswith("preflight found 4 problem(s); fix them before training:")
    for check in ("pad token", "end of turn", "prompt is a prefix", "loss covers end of turn"):
        assert f"  - {check}: " in message
    assert not err.value.table["ok"].all() and isinstance(err.value, ValueError)


def test_preflight_rejects_a_wrong_kind_and_rows_it_cannot_read(tiny):
    tok = tokenizer_with(tiny)
    with pytest.raises(ValueError, match="kind='ppo' must be 'sft' or 'dpo'"):
        preflight(tok, SFT_ROWS, "ppo")
    with pytest.raises(PreflightError, match="needs conversational rows with prompt, chosen, rejected"):
        preflight(tok, SFT_ROWS, "dpo")
    with pytest.raises(PreflightError, match="has no chat template"):
        preflight(tokenizer_with(tiny, ""), SFT_ROWS, "sft")
