"""The guide's and the recommended training settings (smolkit.settings), and token lengths (smolkit.lengths)."""

import pytest
from trl import DPOConfig, SFTConfig

from smolkit.lengths import example_length, group_by_length, loss_token_count
from smolkit.models import tiny_model
from smolkit.settings import guide_config, recommended_settings
from smolkit.templates import use_template


def test_guide_config_keeps_training_arguments_defaults_and_the_guides_values():
    sft = guide_config("sft", "unused")
    assert isinstance(sft, SFTConfig)
    assert (sft.per_device_train_batch_size, sft.learning_rate, sft.bf16) == (4, 5e-5, False)
    assert sft.gradient_checkpointing is False  # TrainingArguments' default, not SFTConfig's True
    assert sft.padding_free is False and sft.logging_steps == 500
    dpo = guide_config("dpo", "unused")
    assert isinstance(dpo, DPOConfig)
    assert (dpo.per_device_train_batch_size, dpo.learning_rate, dpo.gradient_checkpointing) == (2, 1e-6, False)


@pytest.mark.parametrize("stage", ["sft", "dpo"])
def test_recommended_settings_are_valid_trl_arguments(stage):
    fast = recommended_settings(stage, "cpu")
    config = guide_config(stage, "unused", **fast)  # raises if any key is not a config field
    assert config.gradient_checkpointing is False and config.dataloader_num_workers == 0
    if stage == "sft":
        assert config.padding_free is True and config.max_length is None
    with pytest.raises(ValueError, match="unknown stage"):
        recommended_settings("ppo", "cpu")


def test_loss_token_count_counts_only_answers():
    from datasets import Dataset

    _, tok = tiny_model()
    use_template(tok, "guide")
    sft = Dataset.from_dict({"messages": [[{"role": "user", "content": "Hi there"},
                                           {"role": "assistant", "content": "Hello."}]]})
    answer = loss_token_count(sft, tok)
    assert 1 <= answer < 8  # "Hello." and the end of turn, not the prompt
    dpo = Dataset.from_dict({"prompt": [[{"role": "user", "content": "Hi there"}]],
                             "chosen": [[{"role": "assistant", "content": "Hello."}]],
                             "rejected": [[{"role": "assistant", "content": "Go away, I am busy right now."}]]})
    assert loss_token_count(dpo, tok) > 2 * answer - 1


def test_group_by_length_keeps_every_row_and_makes_batches_of_similar_length():
    from smolkit.data import load_preferences

    _, tok = tiny_model()
    use_template(tok, "guide")
    pairs = load_preferences(split="train").select(range(64))
    grouped = group_by_length(pairs, tok, batch_size=8, seed=1)
    assert sorted(map(str, grouped["prompt"])) == sorted(map(str, pairs["prompt"]))  # a permutation: nothing lost
    assert grouped["prompt"] == group_by_length(pairs, tok, batch_size=8, seed=1)["prompt"]  # seeded

    def padding(ds):  # tokens a padded batch of 8 spends on padding
        lengths = [example_length(r, tok) for r in ds]
        return sum(8 * max(lengths[i:i + 8]) - sum(lengths[i:i + 8]) for i in range(0, len(lengths), 8))

    assert padding(grouped) < 0.5 * padding(pairs.shuffle(seed=1))
    starts = [example_length(grouped[i], tok) for i in range(0, 64, 8)]
    assert starts != sorted(starts)  # batches come in random order, not shortest first
