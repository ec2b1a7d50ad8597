"""The training recipes: guide vs recommended settings, YAML recipes, and 2-process runs through torchrun."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from trl import DPOConfig, SFTConfig

from smolkit.models import tiny_model
from smolkit.train import (
    CONFIG_KEYS,
    export_config,
    guide_config,
    load_config,
    loss_token_count,
    main,
    recommended_settings,
)

REPO = Path(__file__).resolve().parent.parent


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
    _, tok = tiny_model()
    from smolkit.templates import use_template

    use_template(tok, "guide")
    from datasets import Dataset

    sft = Dataset.from_dict({"messages": [[{"role": "user", "content": "Hi there"},
                                           {"role": "assistant", "content": "Hello."}]]})
    answer = loss_token_count("sft", sft, tok)
    assert 1 <= answer < 8  # "Hello." and the end of turn, not the prompt
    dpo = Dataset.from_dict({"prompt": [[{"role": "user", "content": "Hi there"}]],
                             "chosen": [[{"role": "assistant", "content": "Hello."}]],
                             "rejected": [[{"role": "assistant", "content": "Go away, I am busy right now."}]]})
    both = loss_token_count("dpo", dpo, tok)
    assert both > 2 * answer - 1


def test_export_then_load_round_trips_a_notebook_config(tmp_path):
    config = SFTConfig(output_dir=str(tmp_path / "ck"), use_cpu=True, bf16=False, max_steps=7, learning_rate=1e-4,
                       padding_free=True, max_length=None, assistant_only_loss=True, report_to="none")
    path = export_config(tmp_path / "sft.yaml", "sft", config, model="embedded")
    recipe = load_config(path, "sft")
    assert recipe["model"] == "embedded" and recipe["stage"] == "sft"
    args = recipe["args"]
    assert args["max_steps"] == 7 and args["learning_rate"] == 1e-4 and args["padding_free"] is True
    assert "max_length" in args and args["max_length"] is None  # differs from SFTConfig's 1024, so it is kept
    assert "output_dir" not in args
    rebuilt = SFTConfig(output_dir="x", **args)
    assert rebuilt.max_steps == 7 and rebuilt.padding_free


@pytest.mark.parametrize("text, expected", [
    ("stage: sft\nmodel: embedded\noutput_dir: o\nlearning_rate: 1\n", "unknown key 'learning_rate'"),
    ("stage: ppo\nmodel: embedded\noutput_dir: o\n", "stage 'ppo' must be one of sft, dpo"),
    ("stage: sft\noutput_dir: o\n", "model is required"),
    ("stage: sft\nmodel: embedded\noutput_dir: o\nargs:\n  lr: 1\n", "args.lr is not a SFTConfig field"),
    ("stage: dpo\nmodel: embedded\noutput_dir: o\nreference: none\n", "reference 'none' must be one of"),
    ("stage: sft\nmodel: embedded\noutput_dir: o\nmax_examples: -3\n", "max_examples=-3"),
    ("- a list\n", "expected a mapping"),
    ("stage: [unclosed\n", "not valid YAML"),
])
def test_bad_recipes_name_the_file_and_the_key(tmp_path, text, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ValueError) as err:
        load_config(path)
    assert str(path) in str(err.value) and expected in str(err.value)


def test_cli_reports_a_bad_recipe_without_a_traceback(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("stage: sft\nmodel: embedded\noutput_dir: o\nargs:\n  lr: 1\n")
    assert main(["train", "sft", "--config", str(path)]) == 2
    assert "args.lr is not a SFTConfig field" in capsys.readouterr().err
    assert main(["train", "dpo", "--config", str(path)]) == 2
    assert "asked for 'dpo'" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["sft", "dpo"])
def test_shipped_recipes_load(name):
    recipe = load_config(REPO / "configs" / f"{name}.yaml", name)
    assert set(recipe) <= set(CONFIG_KEYS)
    (SFTConfig if name == "sft" else DPOConfig)(output_dir="x", use_cpu=True, **{**recipe["args"], "bf16": False})


@pytest.mark.parametrize("name, kind", [("ddp", "MULTI_GPU"), ("fsdp", "FSDP"), ("deepspeed_zero2", "DEEPSPEED"),
                                        ("deepspeed_zero3", "DEEPSPEED")])
def test_accelerate_configs_parse(name, kind):
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(REPO / "configs" / "accelerate" / f"{name}.yaml"))
    assert config.distributed_type.value == kind and config.mixed_precision == "bf16"
    if kind == "DEEPSPEED":
        assert config.deepspeed_config["zero_stage"] == int(name[-1])


def _launch_two_ranks(tmp_path: Path, recipe: dict, stage: str) -> tuple[Path, list[dict]]:
    """Run `torchrun --nproc_per_node 2 -m smolkit train STAGE` on a recipe; return the model folder and rank logs."""
    path = tmp_path / f"{stage}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    torchrun = Path(sys.executable).with_name("torchrun")
    proc = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "smolkit", "train",
                           stage, "--config", str(path)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = Path(recipe["output_dir"])
    ranks = [json.loads((out.with_name(out.name + "-ranks") / f"rank{r}.json").read_text()) for r in (0, 1)]
    return out, ranks


def _check_saved(out: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert (out / "model.safetensors").is_file() and not list(out.glob("*.bin"))
    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    ids = tok("Human: Hi\n\nAssistant:", return_tensors="pt")
    assert model.generate(**ids, max_new_tokens=2, do_sample=False).shape[1] > ids["input_ids"].shape[1]


@pytest.mark.parametrize("stage", ["sft", "dpo"])
def test_two_processes_train_on_different_data_and_save_one_model(tmp_path, stage):
    """Two gloo ranks split the data and save one model; a tiny model, since the split is the point, not the weights."""
    start = tmp_path / "tiny"
    model, tokenizer = tiny_model()
    model.save_pretrained(start)
    tokenizer.save_pretrained(start)
    out = tmp_path / f"{stage}-2proc"
    args = {"max_steps": 2, "per_device_train_batch_size": 2, "logging_steps": 1, "save_strategy": "no",
            "bf16": False, "use_cpu": True, "activation_checkpointing": False}
    args.update({"assistant_only_loss": True, "padding_free": True, "max_length": None} if stage == "sft"
                else {"learning_rate": 1e-6, "max_length": 512})
    recipe = {"stage": stage, "model": str(start), "template": "guide", "data": "local", "split": "train",
              "max_examples": 16, "output_dir": str(out), "seed": 3, "args": args}
    out, ranks = _launch_two_ranks(tmp_path, recipe, stage)
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert [r["steps"] for r in ranks] == [2, 2]
    seen0, seen1 = set(ranks[0]["examples"]), set(ranks[1]["examples"])
    assert len(seen0) == len(seen1) == 4  # 2 steps x 2 examples on each rank
    assert not seen0 & seen1, "both ranks trained on the same examples"
    try:
        _check_saved(out)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def test_group_by_length_keeps_every_row_and_makes_batches_of_similar_length():
    from smolkit.data import load_preferences
    from smolkit.templates import use_template
    from smolkit.train import example_length, group_by_length

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


def test_exporting_a_recipe_leaves_a_built_trainer_working(tmp_path):
    """export_config must not build a second config: that resets accelerate's state under a live trainer."""
    from trl import SFTTrainer

    from smolkit.data import load_sft
    from smolkit.templates import use_template

    model, tok = tiny_model()
    use_template(tok, "guide")
    config = SFTConfig(output_dir=str(tmp_path / "ck"), use_cpu=True, bf16=False, max_steps=1, report_to="none",
                       save_strategy="no", assistant_only_loss=True, activation_checkpointing=False)
    trainer = SFTTrainer(model=model, args=config, train_dataset=load_sft(split="train").select(range(4)),
                         processing_class=tok)
    export_config(tmp_path / "sft.yaml", "sft", config, model="embedded")
    assert trainer.train().global_step == 1
