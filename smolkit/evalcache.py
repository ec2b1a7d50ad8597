"""Held-out evaluations kept under outputs/cache/evals, keyed by the model's weights, the inputs and the settings.

Notebooks 01, 02 and 03 score some of the same models on the same held-out rows: 03's starting model is 01's
"before", and a model 03 reuses from 01 or 02 (`smolkit.recipes`) is their "after". A result is looked up by a
key that holds everything it depends on: a digest of the weights themselves (not a name), the generation
config, the tokenizer and chat template, the inputs, the settings, the source of `smolkit.evaluation` and the
library versions. So a hit is the very result the same computation would give here, and anything else computes.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from pathlib import Path
from typing import Any

import torch

from smolkit import evaluation
from smolkit.evaluation import Reply, completion_logps, generate
from smolkit.paths import atomic_write_text, outputs_dir

# The evaluation code this process runs, read once at import: an edit made while a notebook runs does not
# file the old code's results under the new code's key.
CODE_DIGEST = hashlib.sha256(Path(evaluation.__file__).read_bytes()).hexdigest()


def weights_digest(model: Any) -> str:
    """SHA-256 of a model's parameters (names, dtypes, shapes and bytes): the same digest means the same weights."""
    digest = hashlib.sha256()
    for name, param in model.named_parameters():
        data = param.detach().cpu().contiguous()
        digest.update(f"{name}|{data.dtype}|{tuple(data.shape)}".encode())
        digest.update(memoryview(data.view(torch.uint8).numpy()))
    return digest.hexdigest()


def _tokenizer_digest(tokenizer: Any) -> str:
    """SHA-256 of a fast tokenizer's vocabulary and rules (its padding and truncation state, set per call, left out)."""
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    spec.pop("padding", None)
    spec.pop("truncation", None)
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def _model_key(model: Any, tokenizer: Any) -> dict[str, Any]:
    """What a held-out result depends on besides its inputs: weights, generation config, tokenizer, code, versions."""
    generation = {k: v for k, v in model.generation_config.to_diff_dict().items()
                  if not k.startswith("_") and k != "transformers_version"}
    return {
        "weights": weights_digest(model),
        "generation_config": generation,
        "tokenizer": _tokenizer_digest(tokenizer),
        "chat_template": tokenizer.chat_template,
        "special_tokens": [tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.bos_token_id],
        "code": CODE_DIGEST,
        "versions": {name: importlib.metadata.version(name) for name in ("torch", "transformers")},
    }


def _cache_path(kind: str, key: dict[str, Any]) -> Path:
    """Where a result with this key is kept."""
    text = json.dumps({"kind": kind, **key}, sort_keys=True, ensure_ascii=False, default=str)
    return outputs_dir() / "cache" / "evals" / f"{kind}-{hashlib.sha256(text.encode()).hexdigest()[:32]}.json"


def _read(path: Path) -> Any:
    """A cached result, or None when absent or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))["result"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def cached_generate(model: Any, tokenizer: Any, conversations: list[list[dict[str, str]]], max_new_tokens: int = 64,
                    batch_size: int = 32) -> tuple[list[Reply], bool]:
    """`evaluation.generate`'s replies, from the cache if this model already answered these prompts; (replies, hit)."""
    key = {**_model_key(model, tokenizer), "inputs": conversations,
           "settings": {"max_new_tokens": max_new_tokens, "batch_size": batch_size}}
    path = _cache_path("generate", key)
    found = _read(path)
    if found is not None:
        return [Reply(**r) for r in found], True
    replies = generate(model, tokenizer, conversations, max_new_tokens=max_new_tokens, batch_size=batch_size)
    result = [{"text": r.text, "stopped": r.stopped, "new_tokens": r.new_tokens} for r in replies]
    atomic_write_text(path, json.dumps({"result": result}, ensure_ascii=False) + "\n")
    return replies, False


def cached_logps(model: Any, tokenizer: Any, prompts: list[list[dict]], completions: list[list[dict]],
                 batch_size: int = 16) -> tuple[torch.Tensor, bool]:
    """`evaluation.completion_logps`, from the cache when this model already scored these pairs; (logps, hit)."""
    key = {**_model_key(model, tokenizer), "inputs": [prompts, completions], "settings": {"batch_size": batch_size}}
    path = _cache_path("logps", key)
    found = _read(path)
    if found is not None:
        return torch.tensor(found), True
    logps = completion_logps(model, tokenizer, prompts, completions, batch_size=batch_size)
    atomic_write_text(path, json.dumps({"result": logps.tolist()}) + "\n")
    return logps, False
