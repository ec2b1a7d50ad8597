"""smolkit.checks: bad hyperparameters and too-short max_length are caught before training starts."""

import copy

import pytest
from datasets import Dataset
from trl import DPOConfig, SFTConfig

from smolkit import tiny_model, use_template
from smolkit.checks import check_training, config_problems


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
