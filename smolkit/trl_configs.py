"""Config files for TRL's own command line (`trl sft|dpo --config FILE`), and the embedded model's folder for it.

`write_trl_config` turns a notebook's SFTConfig/DPOConfig into such a file; `python -m smolkit.trl_configs embedded`
prints the folder of the course's embedded model (converted once, then cached) for TRL's `--model_name_or_path`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from smolkit.models import EMBEDDED, embedded_checkpoint
from smolkit.paths import REPO_ROOT, atomic_write_text

GUIDE_TEMPLATE_FILE = REPO_ROOT / "configs" / "guide_chat_template.jinja"  # smolkit.templates.GUIDE_TEMPLATE
COLUMNS = {"sft": ["messages"], "dpo": ["prompt", "chosen", "rejected"]}

# Set per run or per machine, or rewritten when a config is built (so never "different from the default").
_NOT_EXPORTED = {"output_dir", "logging_dir", "hub_token", "eos_token", "pad_token", "accelerator_config", "debug",
                 "report_to", "disable_tqdm", "dataloader_pin_memory", "pad_to_multiple_of", "use_cpu", "bf16",
                 "fp16", "gradient_checkpointing", "chat_template_path"}
# Without an eval file TRL's script has no test split, so a config that evaluates would fail there.
_EVAL_ONLY = {"load_best_model_at_end", "metric_for_best_model", "greater_is_better", "prediction_loss_only"}


def _stage(config: Any) -> str:
    """"sft" or "dpo" from the config's class; anything else is an error that names the class."""
    from trl import DPOConfig, SFTConfig

    if isinstance(config, SFTConfig):
        return "sft"
    if isinstance(config, DPOConfig):
        return "dpo"
    raise TypeError(f"config must be a trl SFTConfig or DPOConfig (the classes `trl sft` and `trl dpo` read), "
                    f"got {type(config).__name__}")


def _field_defaults(cls: Any) -> dict[str, Any]:
    """A config class's declared defaults, as `to_dict()` writes them (enums as their values)."""
    out = {}
    for f in dataclasses.fields(cls):
        value = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        out[f.name] = getattr(value, "value", value)
    return out


def _plain(value: Any) -> bool:
    """True for values YAML writes and reads back unchanged (numbers, strings, lists, dicts, None)."""
    return value is None or isinstance(value, (bool, int, float, str)) or (
        isinstance(value, (list, dict)) and json.dumps(value, default=lambda _: None) != "null")


def model_folder(model: str) -> str:
    """What `--model_name_or_path` takes: the embedded model's folder for "embedded", else `model` unchanged."""
    if not isinstance(model, str) or not model.strip():
        raise ValueError(f"model must be 'embedded', a model folder or a hub id, got {model!r}")
    return str(embedded_checkpoint()) if model == EMBEDDED else model


def _data_section(stage: str, train_file: str, eval_file: str | None) -> dict[str, Any]:
    """The data keys of a TRL config: a `datasets:` mixture of one file, or a folder with train and test splits."""
    for name in (train_file, eval_file):
        if name is not None and not Path(name).is_file():
            raise FileNotFoundError(f"no such data file: {name}")
    if eval_file is None:
        return {"datasets": [{"path": "json", "data_files": str(train_file), "split": "train",
                              "columns": COLUMNS[stage]}]}
    # TRL's script concatenates a `datasets:` mixture into one train split; a test split comes only from a
    # dataset it loads by name, such as a folder whose files datasets names train and test.
    from datasets.data_files import DataFilesDict, get_data_patterns

    folder = Path(train_file).parent
    splits = DataFilesDict.from_patterns(get_data_patterns(str(folder)), base_path=str(folder))
    found = {str(k): [str(Path(f).resolve()) for f in v] for k, v in splits.items()}
    if found.get("train") != [str(Path(train_file).resolve())] or found.get("test") != [str(Path(eval_file).resolve())]:
        raise ValueError(f"TRL's script reads an eval set only as the test split of a dataset folder: put "
                         f"{Path(train_file).name} and {Path(eval_file).name} alone in one folder as train.jsonl "
                         f"and test.jsonl (the folder {folder} splits as {found}), or pass no eval_file")
    return {"dataset_name": str(folder), "dataset_train_split": "train", "dataset_test_split": "test"}


def write_trl_config(path: str | os.PathLike, config: Any, *, model: str, train_file: str,
                     eval_file: str | None = None, chat_template_path: str | None = None,
                     output_dir: str | None = None) -> Path:
    """Write a notebook's SFTConfig/DPOConfig as a YAML file for `trl sft|dpo --config`, defaults left out."""
    # model: "embedded" (written as its folder), a model folder or a hub id. chat_template_path: SFT only (DPOConfig
    # has none: DPO starts from a model whose saved tokenizer carries the template, as the SFT output does); None
    # means the config's own, else the course's guide template. Eval settings are written only with an eval_file.
    # output_dir: where TRL's script saves the model (its checkpoints inside), by default the config's.
    stage = _stage(config)
    default = _field_defaults(type(config))  # not a new config: building one resets accelerate's state
    values = config.to_dict()
    evaluates = eval_file is not None
    if evaluates and values.get("eval_strategy", "no") == "no":
        raise ValueError("an eval_file was given but the config never evaluates (eval_strategy='no')")
    args = {k: v for k, v in values.items()
            if k in default and v != default[k] and k not in _NOT_EXPORTED and _plain(v)
            and (evaluates or ("eval" not in k and k not in _EVAL_ONLY))}
    for key in ("bf16", "fp16", "use_cpu"):  # always explicit: a reader sees the precision and device choice
        args[key] = getattr(config, key)
    if stage == "sft":
        args["chat_template_path"] = chat_template_path or config.chat_template_path or str(GUIDE_TEMPLATE_FILE)
    elif chat_template_path is not None:
        raise ValueError("DPOConfig has no chat_template_path: start DPO from a model folder whose tokenizer "
                         "carries the template (the SFT output does)")
    out = {"model_name_or_path": model_folder(model), "dtype": "float32",  # fp32 weights; bf16/fp16 is autocast
           **_data_section(stage, train_file, eval_file),
           "output_dir": str(output_dir or config.output_dir), **args}
    path = Path(path)
    header = (f"# {stage.upper()} run written by smolkit.trl_configs.write_trl_config, for TRL's own command line.\n"
              f"# One process:  trl {stage} --config {path}\n"
              f"# 2 processes:  torchrun --nproc_per_node 2 -m trl.scripts.{stage} --config {path}\n"
              f"# TRL's script saves the model to output_dir at the end (checkpoints inside it).\n")
    atomic_write_text(path, header + yaml.safe_dump(out, sort_keys=False, allow_unicode=True))
    return path


def main(argv: list[str] | None = None) -> int:
    """Command line: `python -m smolkit.trl_configs embedded` prints the embedded model's folder."""
    parser = argparse.ArgumentParser(prog="python -m smolkit.trl_configs", description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["embedded"], help="embedded: print the embedded model's folder")
    parser.parse_args(argv)
    with contextlib.redirect_stdout(sys.stderr):  # only the folder goes to stdout, for "$(...)"
        folder = model_folder(EMBEDDED)
    print(folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
