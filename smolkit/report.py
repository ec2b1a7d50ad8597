"""Collect the metrics the notebooks recorded, and how long each executed notebook took, into one Markdown report."""

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


# The course's time budget at the default profile, set for the slowest reference machine (2 cores, AVX2 only).
NOTEBOOK_BUDGET_S = 720
COURSE_BUDGET_S = 2700


def run_times(notebooks_dir: Path) -> list[dict[str, Any]]:
    """Each executed notebook's profile, wall seconds and end time, as papermill recorded them in its metadata."""
    rows = []
    for path in sorted(notebooks_dir.glob("*.ipynb")):
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))["metadata"]["papermill"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not executed by papermill, or unreadable: no time to report
        if not isinstance(meta.get("duration"), (int, float)):
            continue
        ended = str(meta.get("end_time") or "")[:16].replace("T", " ")  # to the minute
        rows.append({"notebook": path.stem, "profile": (meta.get("parameters") or {}).get("PROFILE", "default"),
                     "seconds": float(meta["duration"]), "ended": ended, "failed": bool(meta.get("exception"))})
    return rows


def time_section(rows: list[dict[str, Any]]) -> list[str]:
    """Markdown lines: the time table, each default-profile notebook checked against the course's budget."""
    if not rows:
        return []
    lines = ["## Time per notebook", "",
             f"Wall time papermill recorded. At the default profile the course holds each notebook to "
             f"{NOTEBOOK_BUDGET_S} s and the whole course to {COURSE_BUDGET_S} s on its slowest reference machine "
             "(2 cores, AVX2 only); a faster machine within the budget says little about that one.", "",
             "| notebook | profile | seconds | ended | budget |", "| --- | --- | --- | --- | --- |"]
    for r in rows:
        if r["failed"]:
            verdict = "failed: its time is not the notebook's"
        elif r["profile"] != "default":
            verdict = "set for the default profile"
        else:
            verdict = "within" if r["seconds"] <= NOTEBOOK_BUDGET_S else f"**over {NOTEBOOK_BUDGET_S} s**"
        lines.append(f"| {r['notebook']} | {r['profile']} | {r['seconds']:.0f} | {r['ended']} | {verdict} |")
    default = [r for r in rows if r["profile"] == "default" and not r["failed"]]
    if default:
        total = sum(r["seconds"] for r in default)
        verdict = "within" if total <= COURSE_BUDGET_S else f"over the course's {COURSE_BUDGET_S} s"
        lines.append(f"\n{len(default)} notebook(s) at the default profile: {total:.0f} s in all, {verdict}.")
    return lines + [""]


def build_report(metrics_dir: Path | None = None, notebooks_dir: Path | None = None) -> str:
    """Markdown with the time per executed notebook, then one table of metrics per notebook, in notebook order."""
    metrics_dir = metrics_dir or outputs_dir() / "metrics"
    notebooks_dir = notebooks_dir or metrics_dir.parent / "notebooks"
    files = sorted(metrics_dir.glob("*.json"))
    lines = ["# Course report", "", f"Measured numbers from {len(files)} notebook run(s), read from "
             f"`{metrics_dir}`.", ""]
    lines += time_section(run_times(notebooks_dir))
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
    written = write_report()
    print("\n".join(time_section(run_times(written.parent / "notebooks"))))  # make run ends with where the time went
    print(f"wrote {written}")
