"""Training recipes: the guide's settings, the course's faster ones, and a YAML-driven entry point for launchers.

`python -m smolkit train sft --config configs/sft.yaml` runs one recipe in this process; the same command under
`torchrun --nproc_per_node N` or `accelerate launch --config_file configs/accelerate/ddp.yaml` runs it on N
processes (DDP, FSDP or DeepSpeed through accelerate). Notebooks write such a file with `export_config`.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import hashlib
import json
import os
import random
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

from smolkit.hardware import mixed_precision
from smolkit.profiles import PROFILES

STAGES = ("sft", "dpo")
REFERENCES = ("copy", "precompute")

# The guide's TrainingArguments, as written (its output, logging and saving settings left out).
GUIDE_ARGS: dict[str, dict[str, Any]] = {
    "sft": {"per_device_train_batch_size": 4, "learning_rate": 5e-5, "bf16": False, "fp16": False,
            "dataloader_num_workers": 0},
    "dpo": {"per_device_train_batch_size": 2, "learning_rate": 1e-6, "bf16": False, "fp16": False,
            "dataloader_num_workers": 0},
}

# Keys a config file may hold, and what each means; anything else is an error that names the key.
CONFIG_KEYS = {
    "stage": "sft or dpo",
    "model": '"embedded", a model folder, or a hub id',
    "template": "a smolkit chat template name (guide), or null to keep the model's own",
    "data": '"local" (the course data), a .jsonl file, or a hub dataset id',
    "split": "train or test (for local data and hub ids)",
    "max_examples": "use only the first N training examples (null: all)",
    "output_dir": "where the trained model is saved (safetensors)",
    "reference": "dpo only: copy (a frozen copy of the start model) or precompute (reference log-probs first)",
    "seed": "random seed",
    "args": "keyword arguments for SFTConfig / DPOConfig, passed unchanged",
}


def _config_class(stage: str) -> Any:
    """SFTConfig or DPOConfig for a stage name."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; choose one of {', '.join(STAGES)}")
    from trl import DPOConfig, SFTConfig

    return SFTConfig if stage == "sft" else DPOConfig


def guide_config(stage: str, output_dir: str, **overrides: Any) -> Any:
    """The guide's settings as written: its values on TrainingArguments defaults, as the TRL config TRL needs."""
    import torch
    from transformers import TrainingArguments

    values = {**GUIDE_ARGS[stage], "report_to": "none", "save_strategy": "no", **overrides}
    if not torch.cuda.is_available():
        values.setdefault("use_cpu", True)
    # SFTTrainer turns TrainingArguments into SFTConfig exactly like this; DPOTrainer refuses TrainingArguments,
    # so the same translation is the guide's intent on current TRL (TrainingArguments defaults, not TRL's).
    plain = TrainingArguments(output_dir=output_dir, **{k: v for k, v in values.items() if k in _training_fields()})
    extra = {k: v for k, v in values.items() if k not in _training_fields()}
    return _config_class(stage)(**{**plain.to_dict(), **extra})


def _training_fields() -> set[str]:
    """Field names of transformers' TrainingArguments."""
    from transformers import TrainingArguments

    return {f.name for f in dataclasses.fields(TrainingArguments)}


def recommended_settings(stage: str, device: str) -> dict[str, Any]:
    """The course's measured fast settings for a stage on a device (see `make bench` and notebook 04).

    They are config fields only. On a CPU, pair them with `smolkit.speed.speed_up(model, device)`, which
    reaches what no field does (attention of padding-free rows, TRL's LM head, freed memory).
    """
    _config_class(stage)
    cuda = device.startswith("cuda")
    settings: dict[str, Any] = {
        **mixed_precision(device),  # bf16 on GPUs that have it, else fp16; on CPUs bf16 only where it measures faster
        "activation_checkpointing": False,  # recomputing activations costs ~30% time; 135M fits without it
        "dataloader_num_workers": 2 if cuda else 0,  # on a 2-core CPU, workers steal the cores training needs
        "dataloader_pin_memory": cuda,
    }
    if stage == "sft":
        # Padding-free batches: the examples of a batch are concatenated into one row, so no token is padding.
        # With speed_up's packed attention the row's documents do not attend to each other, so a bigger
        # batch costs no extra attention; 16 halves the per-step work (optimizer, clipping) of batches of 8.
        settings.update(padding_free=True, max_length=None,
                        per_device_train_batch_size=PROFILES["default"].sft_batch_size)
    else:
        # Batches of pairs of similar length (built by group_by_length, kept in order): little padding.
        # The reference is a frozen copy: precomputing its log-probs costs the same forward passes on a
        # single pass over the data, and only pays when training goes over the data more than once.
        settings.update(per_device_train_batch_size=PROFILES["default"].dpo_batch_size,
                        train_sampling_strategy="sequential", precompute_ref_log_probs=False)
    return settings


def example_length(row: dict[str, Any], tokenizer: Any) -> int:
    """Tokens of one example as the trainer sees it: the conversation (SFT) or prompt plus the longer answer (DPO)."""
    if "messages" in row:
        return len(token_ids(tokenizer, row["messages"]))
    return max(len(token_ids(tokenizer, row["prompt"] + row[k])) for k in ("chosen", "rejected"))


def group_by_length(dataset: Any, tokenizer: Any, batch_size: int, seed: int = 0) -> Any:
    """Reorder rows so each batch holds examples of similar length, the batches in random order.

    Train the result with `train_sampling_strategy="sequential"`, so batches stay as built. A padded batch
    is as long as its longest example; grouped batches carry little padding. (transformers' own
    `group_by_length` sampler needs an `input_ids` column, which DPO datasets do not have.)
    """
    lengths = [example_length(row, tokenizer) for row in dataset]
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    random.Random(seed).shuffle(batches)
    return dataset.select([i for batch in batches for i in batch])


def loss_token_count(stage: str, dataset: Any, tokenizer: Any) -> int:
    """Tokens that carry loss in a dataset: assistant tokens for SFT, chosen and rejected answers for DPO."""
    total = 0
    if stage == "sft":
        for messages in dataset["messages"]:
            enc = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True,
                                                return_assistant_tokens_mask=True)
            total += int(sum(enc["assistant_masks"]))
        return total
    _config_class(stage)
    for row in dataset:
        prompt = token_ids(tokenizer, row["prompt"], add_generation_prompt=True)
        for answer in (row["chosen"], row["rejected"]):
            total += len(token_ids(tokenizer, row["prompt"] + answer)) - len(prompt)
    return total


def token_ids(tokenizer: Any, messages: list[dict], add_generation_prompt: bool = False) -> list[int]:
    """Token ids of a conversation rendered with the tokenizer's chat template."""
    enc = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True,
                                        add_generation_prompt=add_generation_prompt)
    return list(enc["input_ids"])


# ---------------------------------------------------------------------------------------------
# Config files


def export_config(path: str | os.PathLike, stage: str, config: Any, *, model: str, data: str = "local",
                  split: str = "train", template: str | None = "guide", reference: str = "copy",
                  max_examples: int | None = None, output_dir: str | None = None, seed: int | None = None) -> Path:
    """Write a YAML recipe from a notebook's SFTConfig/DPOConfig: only the values that differ from TRL's defaults."""
    default = _field_defaults(_config_class(stage))  # not a new config: building one resets accelerate's state
    args = {k: v for k, v in config.to_dict().items()
            if k in default and v != default[k] and k not in _NOT_EXPORTED and _plain(v)}
    for key in ("bf16", "use_cpu"):  # always explicit: a reader sees the precision and device choice
        args[key] = getattr(config, key)
    recipe = {
        "stage": stage, "model": model, "template": template, "data": data, "split": split,
        "max_examples": max_examples,
        "output_dir": output_dir or f"outputs/models/{stage}-cli", "reference": reference,
        "seed": config.seed if seed is None else seed, "args": args,
    }
    if stage == "sft":
        recipe.pop("reference")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    from smolkit.paths import atomic_write_text

    header = (f"# {stage.upper()} recipe for `python -m smolkit train {stage} --config {path.name}`\n"
              "# (also under torchrun / accelerate launch). Keys: see smolkit/train.py CONFIG_KEYS.\n")
    atomic_write_text(path, header + yaml.safe_dump(recipe, sort_keys=False))
    return path


# Set per run or per machine, or rewritten when a config is built (so never "different from the default").
_NOT_EXPORTED = {"output_dir", "logging_dir", "hub_token", "eos_token", "pad_token", "accelerator_config", "debug",
                 "report_to", "disable_tqdm", "dataloader_pin_memory", "pad_to_multiple_of", "use_cpu", "bf16",
                 "gradient_checkpointing"}  # the old name of activation_checkpointing


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


def load_config(path: str | os.PathLike, stage: str | None = None) -> dict[str, Any]:
    """Read and check a YAML recipe; every problem names the file and the key."""
    path = Path(path)
    try:
        recipe = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: no such config file") from None
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(recipe, dict):
        raise ValueError(f"{path}: expected a mapping of keys ({', '.join(CONFIG_KEYS)}), got {type(recipe).__name__}")
    problems = [f"unknown key {k!r}" for k in recipe if k not in CONFIG_KEYS]
    recipe.setdefault("stage", stage)
    if stage is not None and recipe["stage"] != stage:
        problems.append(f"stage is {recipe['stage']!r} but the command asked for {stage!r}")
    if recipe["stage"] not in STAGES:
        problems.append(f"stage {recipe['stage']!r} must be one of {', '.join(STAGES)}")
    for key, kind in (("model", str), ("output_dir", str)):
        if not isinstance(recipe.get(key), kind) or not recipe.get(key):
            problems.append(f"{key} is required: {CONFIG_KEYS[key]}")
    if not isinstance(recipe.get("args", {}), dict):
        problems.append("args must be a mapping of SFTConfig/DPOConfig keyword arguments")
    if recipe.get("reference", "copy") not in REFERENCES:
        problems.append(f"reference {recipe.get('reference')!r} must be one of {', '.join(REFERENCES)}")
    maxn = recipe.get("max_examples")
    if maxn is not None and not (isinstance(maxn, int) and maxn > 0):
        problems.append(f"max_examples={maxn!r} must be a positive whole number or null")
    if recipe["stage"] in STAGES and isinstance(recipe.get("args", {}), dict):
        fields = {f.name for f in dataclasses.fields(_config_class(recipe["stage"]))}
        problems += [f"args.{k} is not a {_config_class(recipe['stage']).__name__} field"
                     for k in recipe.get("args", {}) if k not in fields]
    if problems:
        raise ValueError(f"{path}: invalid training config:\n  - " + "\n  - ".join(problems))
    return {"template": "guide", "data": "local", "split": "train", "max_examples": None, "reference": "copy",
            "seed": 42, "args": {}, **recipe}


# ---------------------------------------------------------------------------------------------
# The entry point


class _SeenRecorder:
    """Wraps a data collator and keeps a digest of every example it batches, to show what each rank trained on."""

    def __init__(self, collator: Any):
        self.collator = collator
        self.digests: list[str] = []

    def __call__(self, features: list[dict[str, Any]]) -> Any:
        for f in features:
            ids = {k: v for k, v in f.items() if k.endswith("input_ids") or k.endswith("_ids")}
            self.digests.append(hashlib.sha1(json.dumps(ids, sort_keys=True, default=list).encode()).hexdigest()[:16])
        return self.collator(features)


def train_from_config(path: str | os.PathLike, stage: str | None = None, **arg_overrides: Any) -> Path:
    """Run the recipe in a YAML file (on every process a launcher started) and save the model from rank 0."""
    import torch
    from trl import DPOTrainer, SFTTrainer

    from smolkit.data import load_preferences, load_sft
    from smolkit.models import load_model
    from smolkit.templates import use_template

    recipe = load_config(path, stage)
    stage = recipe["stage"]
    out = Path(recipe["output_dir"])
    args = {**recipe["args"], **arg_overrides}
    args.setdefault("output_dir", str(out.with_name(out.name + "-checkpoints")))
    args.setdefault("report_to", "none")
    args.setdefault("seed", recipe["seed"])
    if not torch.cuda.is_available():
        args.setdefault("use_cpu", True)
    if stage == "dpo" and recipe["reference"] == "precompute":
        args["precompute_ref_log_probs"] = True
    config = _config_class(stage)(**args)
    torch.manual_seed(config.seed)

    # fp32 master weights on the CPU; the Trainer moves them to this rank's device, bf16 runs as autocast
    model, tokenizer = load_model(recipe["model"], device="cpu", dtype=torch.float32)
    if recipe["template"]:
        use_template(tokenizer, recipe["template"])
    model.config.use_cache = False
    if config.use_cpu or not torch.cuda.is_available():  # CPU ranks: what no config field reaches
        from smolkit.speed import speed_up

        speed_up(model, "cpu")
    loader = load_sft if stage == "sft" else load_preferences
    train = loader(recipe["data"], split=recipe["split"])
    if recipe["max_examples"]:
        train = train.select(range(min(recipe["max_examples"], len(train))))
    keep = ["messages"] if stage == "sft" else ["prompt", "chosen", "rejected"]
    train = train.select_columns([c for c in keep if c in train.column_names])

    if stage == "sft":
        trainer = SFTTrainer(model=model, args=config, train_dataset=train, processing_class=tokenizer)
    else:
        ref = None
        if recipe["reference"] == "copy":
            ref = copy.deepcopy(model).eval().requires_grad_(False)
        trainer = DPOTrainer(model=model, ref_model=ref, args=config, train_dataset=train,
                             processing_class=tokenizer)
    recorder = _SeenRecorder(trainer.data_collator)
    trainer.data_collator = recorder
    result = trainer.train()

    rank, world = trainer.accelerator.process_index, trainer.accelerator.num_processes
    # The dataloader collates one batch ahead, so keep only the examples of the steps that ran
    trained = result.global_step * config.per_device_train_batch_size * config.gradient_accumulation_steps
    ranks_dir = out.with_name(out.name + "-ranks")
    ranks_dir.mkdir(parents=True, exist_ok=True)
    (ranks_dir / f"rank{rank}.json").write_text(json.dumps({
        "rank": rank, "world_size": world, "steps": result.global_step, "examples": recorder.digests[:trained],
        "training_loss": result.training_loss}), encoding="utf-8")

    partial = out.with_name(out.name + ".partial")
    if trainer.is_world_process_zero() and partial.exists():
        shutil.rmtree(partial)
    trainer.accelerator.wait_for_everyone()
    trainer.model.config.use_cache = True
    trainer.save_model(str(partial))  # every rank joins: FSDP and ZeRO-3 gather the full weights here
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(partial)
        (partial / "training_args.bin").unlink(missing_ok=True)  # a pickle; the recipe file says the same
        if out.exists():
            shutil.rmtree(out)
        partial.rename(out)  # the finished model appears in one step
        shutil.rmtree(config.output_dir, ignore_errors=True)  # checkpoints are only for resuming
    trainer.accelerator.wait_for_everyone()
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line: `python -m smolkit train {sft,dpo} --config FILE [--max-steps N]`."""
    parser = argparse.ArgumentParser(prog="python -m smolkit", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("train", help="train one stage from a YAML recipe")
    run.add_argument("stage", choices=STAGES)
    run.add_argument("--config", required=True, help="YAML recipe (see configs/)")
    run.add_argument("--max-steps", type=int, default=None, help="override args.max_steps")
    opts = parser.parse_args(argv)
    overrides = {} if opts.max_steps is None else {"max_steps": opts.max_steps}
    try:
        out = train_from_config(opts.config, opts.stage, **overrides)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if os.environ.get("RANK", "0") == "0":
        print(f"saved {opts.stage} model to {out}")
    return 0


# ---------------------------------------------------------------------------------------------
# Settings per hardware, for notebook 04

# Memory of each target in GiB (None: this machine's, measured), and its fast mixed precision.
TARGETS: dict[str, dict[str, Any]] = {
    "this CPU": {"memory_gib": None, "precision": "cpu"},
    "Apple MPS (16 GB)": {"memory_gib": 16, "precision": "fp32"},
    "T4 16 GB": {"memory_gib": 16, "precision": "fp16"},  # compute capability 7.5: no bf16
    "A100/H100 80 GB": {"memory_gib": 80, "precision": "bf16"},
}


def setup_for(target: str, params: int, shape: dict[str, int], memory_gib: float, cpu_bf16: bool = False,
              tokens_per_example: int = 64) -> dict[str, Any]:
    """SFT and DPO settings for a target and a model size, chosen from the memory estimate; with the reasons."""
    from smolkit.measure import estimate_memory

    gpu = target not in ("this CPU", "Apple MPS (16 GB)")
    precision = TARGETS[target]["precision"]
    if precision == "cpu":
        precision = "bf16" if cpu_bf16 else "fp32"
    budget = 0.8 * memory_gib * 1024  # leave a fifth for the runtime, the allocator and the data
    batch = 8 if not gpu else (32 if params < 1e9 else 8) if memory_gib >= 40 else (16 if params < 1e9 else 2)
    tokens_per_batch = batch * tokens_per_example
    full = estimate_memory(params, params, tokens_per_batch, weight_bytes=4, reference_copy=True, **shape)
    lora_trainable = int(params * 0.01)
    lora = estimate_memory(params, lora_trainable, tokens_per_batch, weight_bytes=4, **shape)  # fp32, as trained
    reasons = [f"full fine-tuning needs about {full['total'] / 1024:.1f} GiB for DPO with a reference copy "
               f"({full['total'] - full['reference']:.0f} MiB without it); the budget is {budget / 1024:.1f} GiB"]
    use_lora = full["total"] - full["reference"] > budget
    checkpointing = False
    if use_lora:
        reasons.append(f"so train LoRA adapters (~1% of the weights): about {lora['total'] / 1024:.1f} GiB")
        if lora["total"] > budget:
            checkpointing = True
            reasons.append("and recompute activations (activation_checkpointing) to fit")
    reference = "adapter" if use_lora else ("copy" if full["total"] <= budget else "precompute")
    reasons.append({"adapter": "DPO reference: the same model with the adapter switched off (no copy)",
                    "copy": "DPO reference: a frozen copy fits in memory",
                    "precompute": "DPO reference: precompute its log-probs, so no copy stays in memory"}[reference])
    accumulation = max(1, 8 // batch) if params > 1e9 else 1
    sft = {"per_device_train_batch_size": batch, "gradient_accumulation_steps": accumulation,
           "learning_rate": 2e-4 if use_lora else 5e-5, "assistant_only_loss": True,
           "padding_free": True, "max_length": None,
           "bf16": precision == "bf16", "fp16": precision == "fp16",
           "activation_checkpointing": checkpointing, "dataloader_num_workers": 2 if gpu else 0}
    dpo = {"per_device_train_batch_size": max(1, batch // 2), "gradient_accumulation_steps": accumulation,
           "learning_rate": 5e-6 if use_lora else 1e-6, "beta": 0.1, "max_length": 512,
           "precompute_ref_log_probs": reference == "precompute",
           "bf16": precision == "bf16", "fp16": precision == "fp16",
           "activation_checkpointing": checkpointing, "dataloader_num_workers": 2 if gpu else 0}
    if not gpu:
        sft["use_cpu"] = dpo["use_cpu"] = target == "this CPU"
    return {"target": target, "precision": precision, "lora": use_lora, "reference": reference, "sft": sft,
            "dpo": dpo, "estimate_full_mib": full["total"], "estimate_lora_mib": lora["total"],
            "budget_mib": budget, "reasons": reasons}


def config_code(stage: str, settings: dict[str, Any], lora: bool = False) -> str:
    """Runnable Python for a TRL config (and a LoRA config) with these settings."""
    name = "SFTConfig" if stage == "sft" else "DPOConfig"
    lines = [f"{name}(", f'    output_dir="outputs/checkpoints/{stage}",']
    lines += [f"    {key}={value!r}," for key, value in settings.items()]
    lines.append(")")
    code = "\n".join(lines)
    if lora:
        code += '\npeft_config = LoraConfig(task_type="CAUSAL_LM", r=16, lora_alpha=32, target_modules="all-linear")'
    return code
