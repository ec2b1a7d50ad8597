"""Where the course reads and writes: repository, data, outputs and the model cache."""

from __future__ import annotations

import json
import math
import numbers
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")  # "owner/name" on the Hugging Face Hub


def hub_offline() -> bool:
    """True when the environment asks for no hub access (HF_HUB_OFFLINE, HF_DATASETS_OFFLINE, ...)."""
    flags = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")
    return any(os.environ.get(v, "").strip().lower() in {"1", "true", "yes", "on"} for v in flags)


def data_dir() -> Path:
    """The course datasets folder (`data/` in the repository)."""
    return REPO_ROOT / "data"


def outputs_dir() -> Path:
    """Where notebooks write models, metrics and plots (`SMOLKIT_OUTPUTS` or `outputs/`)."""
    return Path(os.environ.get("SMOLKIT_OUTPUTS", REPO_ROOT / "outputs")).resolve()


def cache_dir() -> Path:
    """Where converted models are cached (`SMOLKIT_CACHE`, else `$XDG_CACHE_HOME/smolkit`)."""
    if os.environ.get("SMOLKIT_CACHE"):
        return Path(os.environ["SMOLKIT_CACHE"]).expanduser().resolve()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser().resolve() / "smolkit"


@contextmanager
def atomic_dir(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling folder that replaces `target` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    umask = os.umask(0o022)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes 0700; give the folder the usual permissions
    try:
        yield tmp
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write text to a temporary file beside `path`, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def json_safe(value: Any) -> Any:
    """`value` with every NaN or infinity as None (JSON has neither) and numpy numbers as plain ones."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value) if math.isfinite(value) else None
    return value


def save_metrics(name: str, metrics: dict[str, Any]) -> Path:
    """Write measured numbers to `outputs/metrics/<name>.json` as strict JSON (null for NaN), atomically."""
    path = outputs_dir() / "metrics" / f"{name}.json"
    text = json.dumps(json_safe(metrics), indent=2, sort_keys=True, allow_nan=False, default=float)
    return atomic_write_text(path, text + "\n")


def checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """A run's `checkpoint-<step>` folders, oldest step first."""
    found = [p for p in Path(output_dir).glob("checkpoint-*") if p.name.rsplit("-", 1)[-1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.rsplit("-", 1)[-1]))


def remove_checkpoints(output_dir: str | os.PathLike) -> None:
    """Delete a run's checkpoints (they only serve to resume an interrupted run)."""
    for old in checkpoints(output_dir):
        shutil.rmtree(old)


def start_or_resume(output_dir: str | os.PathLike, resume: bool) -> str | None:
    """The last checkpoint to resume from when `resume`; otherwise None, after clearing an earlier run's checkpoints."""
    if not resume:
        remove_checkpoints(output_dir)
        return None
    found = checkpoints(output_dir)
    if not found:
        print(f"no checkpoint in {output_dir} to resume from: starting from step 0")
        return None
    print(f"resuming from {found[-1].name}")
    return str(found[-1])
