"""Fingerprints of training runs, so a finished run can be reused.

A run's *recipe* is everything that decides the weights it ends with: the TRL config's values that affect
training, the training rows in their order, the starting model, the chat template, the seed and the library
versions. Its fingerprint is the SHA-256 of that recipe. `smolkit.models.save_model(..., recipe=...)` writes it
to `recipe.json` beside the weights; `reuse_or_why` compares a saved folder with the recipe a notebook is about
to train, and says "reuse" or why not.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
from pathlib import Path
from typing import Any

from smolkit.models import EMBEDDED, EMBEDDED_CACHE_NAME, EMBEDDED_PIN, RECIPE_FILE, embedded_checkpoint

REUSE = "reuse"

# Config fields that change where and how a run reports or evaluates, never the weights it ends with (evaluation
# runs without gradients and draws nothing from the training data order's random generator).
IGNORED_FIELDS = frozenset({"output_dir", "overwrite_output_dir", "report_to", "run_name", "project", "disable_tqdm",
                            "resume_from_checkpoint", "push_to_hub", "skip_memory_metrics",
                            "per_device_eval_batch_size", "prediction_loss_only", "do_eval", "do_predict",
                            "batch_eval_metrics", "bf16_full_eval", "fp16_full_eval"})
IGNORED_PREFIXES = ("logging_", "log_", "save_", "hub_", "trackio_", "eval_")
VERSIONED = ("torch", "transformers", "trl")


def _canonical(value: Any) -> str:
    """JSON with sorted keys: the same value always gives the same text."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _sha256(text: str) -> str:
    """Hex SHA-256 of a string."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def config_values(config: Any) -> dict[str, Any]:
    """The TRL config's values that affect training (output, logging, saving and reporting fields left out)."""
    values = json.loads(_canonical(config.to_dict()))
    return {k: v for k, v in sorted(values.items())
            if k not in IGNORED_FIELDS and not k.startswith(IGNORED_PREFIXES)}


def rows_fingerprint(rows: Any) -> str:
    """SHA-256 of training rows (a datasets.Dataset or a list of dicts) as JSON, in their order."""
    listed = rows.to_list() if hasattr(rows, "to_list") else list(rows)
    return _sha256(_canonical(listed))


def _file_digest(paths: list[Path]) -> str:
    """SHA-256 over the bytes of several files, in the given order."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def model_fingerprint(name: str | os.PathLike) -> str | None:
    """A starting model's identity: the recorded fingerprint beside a saved folder, else its bytes; None for hub ids."""
    if str(name) == EMBEDDED:
        provenance = json.loads((embedded_checkpoint() / "smolkit.json").read_text(encoding="utf-8"))
        return _sha256(_canonical({"package": EMBEDDED_PIN, "gguf_sha256": provenance["sha256"],
                                   "conversion": EMBEDDED_CACHE_NAME}))
    folder = Path(name).expanduser()
    if not folder.is_dir():
        return None  # a hub id: its weights can change under the same name, so it is never reused
    recorded = read_recipe(folder)
    if recorded and recorded.get("fingerprint"):
        return recorded["fingerprint"]
    weights = sorted(folder.glob("*.safetensors"))
    if not (folder / "config.json").is_file() or not weights:
        return None
    return _file_digest([folder / "config.json", *weights])


def training_recipe(stage: str, config: Any, rows: Any, start: str | None, chat_template: str | None, seed: int,
                    start_name: str = "", **extra: Any) -> dict[str, Any]:
    """The recipe of a training run and its fingerprint (None when the start model has none)."""
    listed = rows.to_list() if hasattr(rows, "to_list") else list(rows)
    inputs = {
        "stage": stage,
        "start_model": start,
        "data": {"rows": len(listed), "sha256": rows_fingerprint(listed)},
        "chat_template_sha256": None if chat_template is None else _sha256(chat_template),
        "seed": seed,
        "versions": {name: importlib.metadata.version(name) for name in VERSIONED},
        "config": config_values(config),
        **extra,
    }
    fingerprint = None if start is None else _sha256(_canonical(inputs))
    return {"fingerprint": fingerprint, "start_name": start_name, "inputs": inputs}


def read_recipe(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The recipe saved beside a model's weights, or None when there is none (or it cannot be read)."""
    path = Path(folder) / RECIPE_FILE
    try:
        recipe = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return recipe if isinstance(recipe, dict) else None


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one level of dotted keys."""
    if not isinstance(value, dict):
        return {prefix: value}
    out: dict[str, Any] = {}
    for key, item in value.items():
        out.update(_flat(item, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _shown(value: Any) -> str:
    """A recipe value for a message: digests shortened to 12 characters."""
    text = str(value)
    return f"{text[:12]}..." if len(text) > 24 else text


def recipe_differences(saved: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """'key saved vs expected' for every input where two recipes differ, config fields by their own name."""
    old, new = _flat(saved.get("inputs", {})), _flat(expected.get("inputs", {}))
    absent = "<absent>"
    return [f"{key.removeprefix('config.')} {_shown(old.get(key, absent))} vs {_shown(new.get(key, absent))}"
            for key in sorted(set(old) | set(new)) if old.get(key, absent) != new.get(key, absent)]


def reuse_or_why(folder: str | os.PathLike, recipe: dict[str, Any]) -> str:
    """'reuse' when `folder` holds a model trained by exactly `recipe`; otherwise why it must be trained."""
    folder = Path(folder)
    if recipe.get("fingerprint") is None:
        return "the start model has no fingerprint (a hub id can change under its name)"
    if not (folder / "config.json").is_file() or not list(folder.glob("*.safetensors")):
        return f"missing: no saved model at {folder}"
    saved = read_recipe(folder)
    if saved is None:
        return f"no {RECIPE_FILE} beside the weights in {folder}: it was saved without a recipe"
    if saved.get("fingerprint") == recipe["fingerprint"]:
        return REUSE
    differences = recipe_differences(saved, recipe)
    shown = "; ".join(differences[:4]) + (f"; and {len(differences) - 4} more" if len(differences) > 4 else "")
    return f"recipe differs (saved vs this run): {shown or 'the fingerprint'}"
