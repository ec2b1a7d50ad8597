"""TRL's own command line on the course's recipes: config files TRL's parser reads, and runs through TRL's scripts.

The shipped configs/sft.yaml and configs/dpo.yaml, the files `smolkit.trl_configs.write_trl_config` writes from a
notebook's config, `trl sft` in one process, and TRL's sft and dpo scripts on 2 gloo ranks under torchrun (a tiny
model, 2 steps: the data split between ranks and the saved model are the point, not the weights).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from trl import DPOConfig, SFTConfig
from trl.scripts import dpo, sft

from smolkit.models import embedded_checkpoint, tiny_model
from smolkit.templates import GUIDE_TEMPLATE, use_template
from smolkit.trl_configs import GUIDE_TEMPLATE_FILE, main, write_trl_config

REPO = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
SCRIPTS = {"sft": sft, "dpo": dpo}
BIN = Path(sys.executable).parent


def _parse(stage: str, path: Path, *cli: str) -> tuple[Any, Any, Any, Any]:
    """A config file read by TRL's own parser, as `trl STAGE --config PATH` reads it."""
    return SCRIPTS[stage].make_parser().parse_args_and_config(["--config", str(path), *cli])


def _env() -> dict[str, str]:
    """The environment of a launched run: offline, one thread per rank, and no launcher settings from the shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCELERATE_")}
    return {**env, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}


@pytest.mark.parametrize("stage", ["sft", "dpo"])
def test_shipped_configs_parse_with_trls_parser_into_the_recipes(stage):
    script_args, args, model_args, data_args = _parse(stage, REPO / "configs" / f"{stage}.yaml")
    assert model_args.dtype == "float32"  # fp32 weights; bf16 is autocast only
    assert args.bf16 is False and args.activation_checkpointing is False and args.gradient_checkpointing is False
    assert (args.logging_steps, args.save_steps, args.save_total_limit, args.seed) == (5, 20, 1, 42)
    assert args.output_dir == f"outputs/models/{stage}-cli" and args.report_to == []
    [data] = data_args.datasets
    assert data.path == "json" and data.split == "train" and (REPO / data.data_files).is_file()
    if stage == "sft":
        assert isinstance(args, SFTConfig) and data.data_files == "data/sft/train.jsonl"
        assert (args.max_steps, args.per_device_train_batch_size, args.learning_rate) == (30, 16, 5e-5)
        assert args.assistant_only_loss and args.padding_free and args.max_length is None
        assert args.chat_template_path == "configs/guide_chat_template.jinja" and data.columns == ["messages"]
    else:
        assert isinstance(args, DPOConfig) and data.data_files == "data/dpo/train.jsonl"
        assert (args.max_steps, args.per_device_train_batch_size, args.learning_rate) == (40, 4, 1e-6)
        assert (args.beta, args.max_length) == (0.1, 512) and data.columns == ["prompt", "chosen", "rejected"]
        assert model_args.model_name_or_path == "outputs/models/sft"


def test_shipped_template_file_is_the_guide_template():
    assert GUIDE_TEMPLATE_FILE == REPO / "configs" / "guide_chat_template.jinja"
    assert GUIDE_TEMPLATE_FILE.read_text(encoding="utf-8") == GUIDE_TEMPLATE  # byte for byte: no trailing newline


@pytest.mark.parametrize("name, kind", [("multi_gpu", "MULTI_GPU"), ("fsdp2", "FSDP"), ("zero2", "DEEPSPEED"),
                                        ("zero3", "DEEPSPEED")])
def test_trls_accelerate_configs_named_in_the_readme_parse(name, kind):
    """`--accelerate_config NAME` resolves to TRL's shipped file, which accelerate reads as DDP, FSDP2 or ZeRO."""
    from accelerate.commands.config.config_args import load_config_from_file
    from trl.cli.accelerate_config import resolve_accelerate_config_argument

    flag, path = resolve_accelerate_config_argument(["--accelerate_config", name])
    config = load_config_from_file(path)
    assert flag == "--config_file" and config.distributed_type.value == kind and config.mixed_precision == "bf16"
    if kind == "DEEPSPEED":
        assert config.deepspeed_config["zero_stage"] == int(name[-1])
    if kind == "FSDP":
        assert config.fsdp_config["fsdp_version"] == 2
    assert f"`{name}`" in (REPO / "README.md").read_text(encoding="utf-8")  # the README names it


def _notebook_config(stage: str, tmp_path: Path) -> Any:
    """A config as notebooks 01/02 build theirs (evaluation on, CPU, fp32)."""
    common = dict(output_dir=str(tmp_path / "checkpoints" / stage), bf16=False, fp16=False, use_cpu=True,
                  activation_checkpointing=False, use_cache=True, logging_steps=5, eval_strategy="steps",
                  eval_steps=10, eval_on_start=True, per_device_eval_batch_size=8, save_steps=20,
                  save_total_limit=1, report_to="none", seed=7)
    if stage == "sft":
        return SFTConfig(max_steps=30, per_device_train_batch_size=16, learning_rate=5e-5, assistant_only_loss=True,
                         padding_free=True, max_length=None, **common)
    return DPOConfig(max_steps=40, per_device_train_batch_size=4, learning_rate=1e-6, beta=0.25, **common)


@pytest.mark.parametrize("stage", ["sft", "dpo"])
def test_write_trl_config_round_trips_a_notebook_config(tmp_path, stage):
    config = _notebook_config(stage, tmp_path)
    train = str(REPO / "data" / stage / "train.jsonl")
    path = write_trl_config(tmp_path / "configs" / f"{stage}.yaml", config, model="embedded", train_file=train)
    text = path.read_text(encoding="utf-8")
    assert f"trl {stage} --config {path}" in text.splitlines()[1]  # the header gives the command
    written = yaml.safe_load(text)
    _, args, model_args, data_args = _parse(stage, path)
    assert model_args.model_name_or_path == str(embedded_checkpoint()) and model_args.dtype == "float32"
    [data] = data_args.datasets
    assert (data.path, data.data_files, data.split) == ("json", train, "train")
    assert data.columns == (["messages"] if stage == "sft" else ["prompt", "chosen", "rejected"])
    assert args.output_dir == config.output_dir  # where TRL's script saves the model
    assert args.eval_strategy == "no" and "eval_steps" not in written and "eval_on_start" not in written
    assert (args.bf16, args.fp16, args.use_cpu) == (False, False, True) and "bf16" in written
    # every training value the file holds reads back as the notebook's; and the recipe's values are among them
    for key in set(written) & {f for f in config.to_dict() if f not in ("output_dir", "chat_template_path")}:
        assert getattr(args, key) == getattr(config, key), key
    for key in ("max_steps", "per_device_train_batch_size", "learning_rate", "seed", "save_steps", "use_cache"):
        assert getattr(args, key) == getattr(config, key), key  # written, or TRL's default already
    assert "max_length" in written or stage == "dpo"  # SFT's None differs from SFTConfig's 1024, so it is kept
    if stage == "sft":
        assert args.chat_template_path == str(GUIDE_TEMPLATE_FILE) and args.padding_free and args.max_length is None
    else:
        assert args.beta == 0.25 and "chat_template_path" not in written


def test_write_trl_config_passes_folders_through_and_evaluates_on_a_test_split(tmp_path):
    config = _notebook_config("dpo", tmp_path)
    folder = REPO / "data" / "dpo"
    path = write_trl_config(tmp_path / "dpo.yaml", config, model="outputs/models/sft",
                            train_file=str(folder / "train.jsonl"), eval_file=str(folder / "test.jsonl"),
                            output_dir="outputs/models/dpo-cli")
    script_args, args, model_args, data_args = _parse("dpo", path)
    assert model_args.model_name_or_path == "outputs/models/sft" and args.output_dir == "outputs/models/dpo-cli"
    assert data_args.datasets == [] and script_args.dataset_name == str(folder)
    assert (script_args.dataset_train_split, script_args.dataset_test_split) == ("train", "test")
    assert (args.eval_strategy, args.eval_steps, args.eval_on_start) == ("steps", 10, True)
    from datasets import load_dataset

    splits = load_dataset(script_args.dataset_name)  # what TRL's script loads: the two files as train and test
    assert {name: len(rows) for name, rows in splits.items()} == {"train": 420, "test": 110}


def test_write_trl_config_rejects_bad_input_in_plain_words(tmp_path):
    from transformers import TrainingArguments

    train = str(REPO / "data" / "sft" / "train.jsonl")
    plain = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    with pytest.raises(TypeError, match="SFTConfig or DPOConfig.*got TrainingArguments"):
        write_trl_config(tmp_path / "x.yaml", plain, model="embedded", train_file=train)
    dpo_config = _notebook_config("dpo", tmp_path)
    with pytest.raises(ValueError, match="DPOConfig has no chat_template_path"):
        write_trl_config(tmp_path / "x.yaml", dpo_config, model="m", train_file=train, chat_template_path="t.jinja")
    sft_config = _notebook_config("sft", tmp_path)
    with pytest.raises(FileNotFoundError, match="no such data file: .*nope.jsonl"):
        write_trl_config(tmp_path / "x.yaml", sft_config, model="m", train_file=str(tmp_path / "nope.jsonl"))
    with pytest.raises(ValueError, match="model must be"):
        write_trl_config(tmp_path / "x.yaml", sft_config, model="", train_file=train)
    with pytest.raises(ValueError, match="test split of a dataset folder"):  # not a train/test pair in one folder
        write_trl_config(tmp_path / "x.yaml", sft_config, model="m", train_file=train,
                         eval_file=str(REPO / "data" / "samples" / "guide_format_sft.jsonl"))
    quiet = SFTConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to="none")
    with pytest.raises(ValueError, match="never evaluates"):
        write_trl_config(tmp_path / "x.yaml", quiet, model="m", train_file=train,
                         eval_file=str(REPO / "data" / "sft" / "test.jsonl"))
    assert not (tmp_path / "x.yaml").exists()


def test_writing_a_trl_config_leaves_a_built_trainer_working(tmp_path):
    """write_trl_config must not build a second config: that resets accelerate's state under a live trainer."""
    from trl import SFTTrainer

    from smolkit.data import load_sft

    model, tok = tiny_model()
    use_template(tok, "guide")
    config = SFTConfig(output_dir=str(tmp_path / "ck"), use_cpu=True, bf16=False, max_steps=1, report_to="none",
                       save_strategy="no", assistant_only_loss=True, activation_checkpointing=False)
    trainer = SFTTrainer(model=model, args=config, train_dataset=load_sft(split="train").select(range(4)),
                         processing_class=tok)
    write_trl_config(tmp_path / "sft.yaml", config, model="embedded",
                     train_file=str(REPO / "data" / "sft" / "train.jsonl"))
    assert trainer.train().global_step == 1


def test_embedded_command_prints_only_the_model_folder(capsys):
    assert main(["embedded"]) == 0
    out = capsys.readouterr().out
    assert out == f"{embedded_checkpoint()}\n" and (Path(out.strip()) / "config.json").is_file()


# ---------------------------------------------------------------------------------------------
# Runs through TRL's entry points


def _tiny_start(folder: Path, template: bool) -> Path:
    """Save the tiny model with the SmolLM2 tokenizer; with the guide template in it when `template`."""
    model, tokenizer = tiny_model()
    if template:
        use_template(tokenizer, "guide")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _run_config(tmp_path: Path, stage: str, out: Path, start: Path | None = None) -> Path:
    """The shipped recipe of a stage, cut to 2 steps of 2 examples on the first 16 rows, CPU, paths absolute."""
    recipe = yaml.safe_load((REPO / "configs" / f"{stage}.yaml").read_text(encoding="utf-8"))
    [data] = recipe["datasets"]
    data.update(data_files=str(REPO / data["data_files"]), split="train[:16]")
    if "chat_template_path" in recipe:
        recipe["chat_template_path"] = str(REPO / recipe["chat_template_path"])
    if start is not None:
        recipe["model_name_or_path"] = str(start)
    recipe.update(output_dir=str(out), max_steps=2, per_device_train_batch_size=2, logging_steps=1,
                  save_strategy="no", use_cpu=True, seed=3)
    path = tmp_path / f"{stage}.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    return path


def _check_saved(out: Path) -> None:
    """TRL's script left one model in `out`: safetensors, reloadable with plain transformers, and it generates."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert (out / "model.safetensors").is_file() and not list(out.glob("pytorch_model*.bin"))
    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    assert tok.chat_template == GUIDE_TEMPLATE  # what DPO, or any later run, renders conversations with
    ids = tok("Human: Hi\n\nAssistant:", return_tensors="pt")
    assert model.generate(**ids, max_new_tokens=2, do_sample=False).shape[1] > ids["input_ids"].shape[1]


def test_trl_sft_command_trains_in_one_process_on_cpu(tmp_path):
    """`trl sft --config FILE --model_name_or_path FOLDER`, unmodified: TRL starts its script through accelerate."""
    start = _tiny_start(tmp_path / "tiny", template=False)  # the template comes from chat_template_path
    out = tmp_path / "sft-1proc"
    config = _run_config(tmp_path, "sft", out)
    accelerate = tmp_path / "one_cpu.yaml"  # a launch config of its own: no ~/.cache/huggingface/accelerate default
    accelerate.write_text("compute_environment: LOCAL_MACHINE\ndistributed_type: 'NO'\nnum_processes: 1\n"
                          "num_machines: 1\nmachine_rank: 0\nmixed_precision: 'no'\nuse_cpu: true\n")
    proc = subprocess.run([str(BIN / "trl"), "sft", "--config", str(config), "--model_name_or_path", str(start),
                           "--max_steps", "1", "--accelerate_config", str(accelerate)],
                          cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "'loss'" in proc.stdout  # TRL's script logged a training step
    try:
        _check_saved(out)
    finally:
        for folder in (out, start):
            shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("stage", ["sft", "dpo"])
def test_two_processes_train_on_different_data_and_save_one_model(tmp_path, stage):
    """TRL's script on 2 gloo ranks under torchrun: the ranks split the data, and one model is saved."""
    # SFT starts from a tokenizer without the guide template (chat_template_path sets it, as configs/sft.yaml
    # does); DPO from a model whose tokenizer carries it, as the SFT output's does.
    start = _tiny_start(tmp_path / "tiny", template=stage == "dpo")
    out = tmp_path / "run" / f"{stage}-2proc"
    config = _run_config(tmp_path, stage, out, start=start)
    # tests/trl_recorded.py runs TRL's script exactly as `-m trl.scripts.STAGE` does, recording each rank's examples
    proc = subprocess.run([str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2",
                           str(TESTS / "trl_recorded.py"), stage, "--config", str(config)],
                          cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    ranks = [json.loads((out.parent / f"rank{r}.json").read_text(encoding="utf-8")) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2] and [r["steps"] for r in ranks] == [2, 2]
    seen0, seen1 = set(ranks[0]["examples"]), set(ranks[1]["examples"])
    assert len(seen0) == len(seen1) == 4  # 2 steps x 2 examples on each rank, all different
    assert not seen0 & seen1, "both ranks trained on the same examples"
    try:
        _check_saved(out)
    finally:
        for folder in (out, start):
            shutil.rmtree(folder, ignore_errors=True)
