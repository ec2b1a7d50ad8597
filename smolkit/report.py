"""Collect the metrics the notebooks recorded into one Markdown report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from smolkit.paths import atomic_write_text, outputs_dir


def flatten(metrics: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested dicts into dotted keys: {'a': {'b': 1}} -> {'a.b': 1}."""
    flat: dict[str, Any] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _fmt(value: Any) -> str:
    """A table cell: floats to 4 significant digits, lists and others as compact JSON."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return json.dumps(value)[:120]
    return str(value).replace("|", "\\|").replace("\n", " ")


def build_report(metrics_dir: Path | None = None) -> str:
    """Markdown with one table per recorded notebook, in notebook order."""
    metrics_dir = metrics_dir or outputs_dir() / "metrics"
    files = sorted(metrics_dir.glob("*.json"))
    lines = ["# Course report", "", f"Measured numbers from {len(files)} notebook run(s), read from "
             f"`{metrics_dir}`.", ""]
    if not files:
        lines.append("No metrics were recorded: run the notebooks first (`make run`).")
    for path in files:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            lines += [f"## {path.stem}", "", f"Unreadable metrics file {path.name}: {err}", ""]
            continue
        lines += [f"## {path.stem}", "", "| metric | value |", "| --- | --- |"]
        lines += [f"| {key} | {_fmt(value)} |" for key, value in flatten(data).items()]
        lines.append("")
    return "\n".join(lines)


def write_report(path: Path | None = None) -> Path:
    """Write `outputs/REPORT.md` (or `path`) from the recorded metrics, atomically."""
    return atomic_write_text(path or outputs_dir() / "REPORT.md", build_report())


if __name__ == "__main__":
    print(f"wrote {write_report()}")
