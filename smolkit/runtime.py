"""Where lessons run and write: device, precision, folders, and numbers saved as strict JSON."""

from __future__ import annotations

import json
import math
import numbers
import os
import platform
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

REPO_ROOT = Path(__file__).resolve().parent.parent

def pick_device() -> str:
    """The best available device: 'cuda', then 'mps', else 'cpu'."""
    if torch.cuda.is_available():
        return "cuda"
    return "mps" if torch.backends.mps.is_available() else "cpu"

def mixed_precision(device: str) -> dict[str, bool]:
    """Config precision flags: bf16 on GPUs with it, else fp16; fp32 on CPU and MPS every day (no timing probe)."""
    if device.startswith("cuda"):
        bf16 = torch.cuda.is_bf16_supported()
        return {"bf16": bf16, "fp16": not bf16}
    return {"bf16": False, "fp16": False}

def device_name(device: str) -> str:
    """A readable name of the device: the GPU's model, 'Apple MPS', or the CPU's model name."""
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    if device.startswith("mps"):
        return "Apple MPS"
    cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8") if Path("/proc/cpuinfo").is_file() else ""
    found = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    return f"CPU: {found.group(1).strip() if found else platform.processor() or platform.machine()}"

def data_dir() -> Path:
    """The course datasets folder (`data/` in the repository)."""
    return REPO_ROOT / "data"

def outputs_dir() -> Path:
    """Where notebooks write models, metrics and plots (`SMOLKIT_OUTPUTS` or `outputs/`)."""
    return Path(os.environ.get("SMOLKIT_OUTPUTS", REPO_ROOT / "outputs")).resolve()

@contextmanager
def atomic_dir(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling folder that replaces `target` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        tmp.chmod(0o755)
        old = target.with_name(f".{target.name}.old-{os.getpid()}") if target.exists() else None
        if old:
            os.replace(target, old)
        os.replace(tmp, target)
        if old:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write text to a temporary file beside `path`, then rename it into place (never half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; results are for everyone to read
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path

def json_safe(value: Any) -> Any:
    """`value` with every NaN or infinity as None (JSON has neither), tensors and numpy numbers as plain ones."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, torch.Tensor):
        return json_safe(value.tolist())
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value) if math.isfinite(value) else None
    return value

def write_json(path: str | os.PathLike, value: Any) -> Path:
    """Write strict JSON (null for NaN), atomically; a `.jsonl` path gets one JSON object per line."""
    if Path(path).suffix == ".jsonl":
        return write_text(path, "".join(json.dumps(json_safe(v), ensure_ascii=False) + "\n" for v in value))
    return write_text(path, json.dumps(json_safe(value), indent=2, sort_keys=True, allow_nan=False) + "\n")

def save_metrics(name: str, metrics: dict[str, Any]) -> Path:
    """Write a notebook's measured numbers to `outputs/metrics/<name>.json`."""
    return write_json(outputs_dir() / "metrics" / f"{name}.json", metrics)

def read_json(path: str | os.PathLike) -> Any:
    """A JSON file's value (a `.jsonl` file's rows as a list), or None when the file does not exist."""
    path = Path(path)
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return json.loads(text)

def read_metrics(name: str) -> dict[str, Any] | None:
    """What notebook `name` saved in `outputs/metrics/<name>.json`, or None when it has not run."""
    return read_json(outputs_dir() / "metrics" / f"{name}.json")

def run_facts(model: Any) -> dict[str, Any]:
    """Where and how a model trained, for the metrics: device, weight dtype, parameters, peak GPU memory (MiB)."""
    device = str(model.device)
    return {"device_name": device_name(device), "weights_dtype": str(next(model.parameters()).dtype),
            "parameters": model.num_parameters(),
            "peak_mib": torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None}
