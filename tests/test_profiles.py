"""smolkit.profiles and configs/: one source for the recipes, read by the profiles, the lessons and TRL's own CLI."""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from trl.scripts import dpo, sft

from smolkit.profiles import PROFILES, get_profile, recipe

REPO = Path(__file__).resolve().parent.parent
TRAINERS = {"sft": ("01_sft", "SFTConfig"), "dpo": ("02_dpo", "DPOConfig")}
SIZED = {"max_steps", "num_train_epochs", "per_device_train_batch_size", "learning_rate"}  # the profile's to set


def literal_arguments(notebook: str, config_class: str) -> dict:
    """The arguments a lesson's training cell passes to SFTConfig or DPOConfig as literals."""
    cells = json.loads((REPO / "notebooks" / f"{notebook}.ipynb").read_text())["cells"]
    sources = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    code = next(s for s in sources if f"{config_class}(" in s and ".train(" in s)
    call = next(n for n in ast.walk(ast.parse(code))
                if isinstance(n, ast.Call) and getattr(n.func, "id", "") == config_class)
    return {k.arg: ast.literal_eval(k.value) for k in call.keywords if isinstance(k.value, (ast.Constant, ast.List))}


def test_the_default_profile_is_read_from_the_trl_config_files():
    default, sft_file, dpo_file = PROFILES["default"], recipe("sft"), recipe("dpo")
    assert (default.sft_steps, default.sft_batch_size, default.sft_learning_rate) == (
        sft_file["max_steps"], sft_file["per_device_train_batch_size"], sft_file["learning_rate"])
    assert (default.dpo_epochs, default.dpo_batch_size, default.dpo_learning_rate) == (
        dpo_file["num_train_epochs"], dpo_file["per_device_train_batch_size"], dpo_file["learning_rate"])


@pytest.mark.parametrize("stage", ["sft", "dpo"])
def test_the_lessons_literal_settings_are_the_config_files(stage):
    """What a learner copies from 01 or 02 is what `trl sft|dpo --config configs/...` runs."""
    literals = literal_arguments(*TRAINERS[stage])
    shipped = recipe(stage)
    assert literals, "the training cell has no literal config arguments"
    for key, value in literals.items():
        assert shipped.get(key, value) == value, f"{key}: notebook {value!r}, configs/{stage}.yaml {shipped[key]!r}"
    assert SIZED & set(shipped) and not SIZED & set(literals)  # sizes come from the profile, read from the file


@pytest.mark.parametrize("stage, script", [("sft", sft), ("dpo", dpo)])
def test_trls_parser_reads_the_config_files(stage, script):
    _, args, model_args, data_args = script.make_parser().parse_args_and_config(["--config", str(REPO / "configs" /
                                                                                                  f"{stage}.yaml")])
    assert model_args.dtype == "float32" and args.bf16 is False and args.learning_rate == recipe(stage)["learning_rate"]


def test_smolkit_profile_wins_and_bad_names_say_what_is_valid(monkeypatch):
    monkeypatch.setenv("SMOLKIT_PROFILE", "smoke")
    assert get_profile("full").name == "smoke"
    monkeypatch.setenv("SMOLKIT_PROFILE", "tiny")
    with pytest.raises(ValueError, match="smoke, default, full"):
        get_profile("default")
    monkeypatch.delenv("SMOLKIT_PROFILE")
    with pytest.raises(ValueError, match="valid fields"):
        get_profile("default", sft_stpes=3)


def test_trl_dpo_command_runs_the_shipped_recipe(tmp_path, tiny):
    """`trl dpo --config configs/dpo.yaml`, cut to one step on a tiny model and two pairs: TRL's own entry point."""
    model, tok = tiny
    model.save_pretrained(tmp_path / "start")
    tok.save_pretrained(tmp_path / "start")  # carries the guide template, as 01's saved SFT model does
    pair = {"prompt": [{"role": "user", "content": "Hi"}], "chosen": [{"role": "assistant", "content": "Hello."}],
            "rejected": [{"role": "assistant", "content": "Go away."}]}
    (tmp_path / "pairs.jsonl").write_text((json.dumps(pair) + "\n") * 2)
    config = recipe("dpo") | {"model_name_or_path": str(tmp_path / "start"), "output_dir": str(tmp_path / "out"),
                              "save_strategy": "no", "max_steps": 1, "per_device_train_batch_size": 2}
    config["datasets"][0]["data_files"] = str(tmp_path / "pairs.jsonl")
    (tmp_path / "dpo.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "true"}
    proc = subprocess.run([sys.executable, "-m", "trl.scripts.dpo", "--config", str(tmp_path / "dpo.yaml")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "out" / "model.safetensors").is_file()
