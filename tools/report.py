"""`make run`'s last step: how long each executed notebook took against the course's budget, outputs/REPORT.md with
every notebook's headline numbers, and (with --snapshot) the executed notebooks copied to executed/ for GitHub.

Usage: python tools/report.py [--snapshot]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shutil
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from smolkit.runtime import device_name, outputs_dir, write_text  # noqa: E402

# Seconds a notebook may take at the default profile on the reference machine (2 cores with AVX-512); 05 runs a grid.
BUDGET_S = {"05_dpo_dials": 600}
DEFAULT_BUDGET_S = 480
HEADLINES = {"01_sft": ["format_compliance", "clean_stop_rate", "exact_match"],
             "02_dpo": ["refusal_rate_on_unsafe", "format_request_kept", "sft_format_compliance"]}


def run_times(folder: Path) -> pd.DataFrame:
    """Each executed notebook's profile, wall seconds, end time and budget verdict, from papermill's metadata."""
    rows = []
    for path in sorted(folder.glob("*.ipynb")):
        meta = json.loads(path.read_text(encoding="utf-8"))["metadata"].get("papermill", {})
        if not isinstance(meta.get("duration"), (int, float)):
            continue  # not executed by papermill: no time to report
        budget = BUDGET_S.get(path.stem, DEFAULT_BUDGET_S)
        profile = (meta.get("parameters") or {}).get("PROFILE", "default")
        verdict = ("failed" if meta.get("exception") else f"budget {budget} s: "
                   + ("within" if meta["duration"] <= budget else "OVER") if profile == "default" else "-")
        rows.append({"notebook": path.stem, "profile": profile, "seconds": round(meta["duration"]),
                     "ended": str(meta.get("end_time", ""))[:16].replace("T", " "), "verdict": verdict})
    return pd.DataFrame(rows, columns=["notebook", "profile", "seconds", "ended", "verdict"])


def headlines(metrics: Path) -> list[str]:
    """Markdown lines: each lesson's headline numbers before and after, read from its metrics file."""
    lines = []
    for name, keys in HEADLINES.items():
        path = metrics / f"{name}.json"
        if path.is_file():
            m = json.loads(path.read_text(encoding="utf-8"))
            cells = [f"{k} {m['before'].get(k, math.nan):.2f} -> {m['after'].get(k, math.nan):.2f}" for k in keys]
            lines.append(f"- **{name}**: " + "; ".join(cells))
    return lines


def machine() -> str:
    """The machine in one line: CPU (or GPU) model and the CPU's vector and matrix flags."""
    info = Path("/proc/cpuinfo")
    flags = info.read_text().split("flags", 1)[1].split("\n")[0] if info.exists() else ""
    wide = sorted({f for f in flags.split() if f.startswith(("avx512f", "avx512_bf16", "amx", "avx2"))})
    return f"{device_name('cpu')} ({', '.join(wide) or 'no AVX2'}), {platform.system()}"


def snapshot(executed: Path, target: Path) -> list[Path]:
    """Copy the default-profile executed notebooks to `target`, each opened by a cell naming date and machine."""
    times = run_times(executed).set_index("notebook")
    written = []
    for path in sorted(executed.glob("*.ipynb")):
        if path.stem not in times.index or times.loc[path.stem, "profile"] != "default":
            continue
        nb = json.loads(path.read_text(encoding="utf-8"))
        note = (f"*Executed by `make run` at the default profile, {times.loc[path.stem, 'ended']} UTC, on {machine()}; "
                f"{times.loc[path.stem, 'seconds']} s. The lesson itself is [notebooks/{path.name}]"
                f"(../notebooks/{path.name}).*")
        nb["cells"].insert(0, {"cell_type": "markdown", "id": "executed-note", "metadata": {}, "source": [note]})
        written.append(write_text(target / path.name, json.dumps(nb, indent=1, ensure_ascii=False) + "\n"))
    return written


RESULTS = ("<!-- results:start -->", "<!-- results:end -->")


def results_paragraph(metrics: Path, when: str) -> str:
    """The README's lines on what SFT and DPO did in the last default-profile run, from its metrics."""
    sft, dpo = (json.loads((metrics / f"{n}.json").read_text()) for n in ("01_sft", "02_dpo"))
    b, a = dpo["before"], dpo["after"]
    return (f"On the last `make run` ({when}, {machine()}): SFT took format compliance from "
            f"{sft['before']['format_compliance']:.2f} to {sft['after']['format_compliance']:.2f} on "
            f"{sft['eval_rows']} held-out conversations. DPO, on pairs built from the SFT model's own mistakes, took "
            f"refusals of unsafe requests from {b['refusal_rate_on_unsafe']:.2f} to {a['refusal_rate_on_unsafe']:.2f} "
            f"and format requests kept from {b['format_request_kept']:.2f} to {a['format_request_kept']:.2f}, while "
            f"harmless prompts refused went from {b['refusal_rate_on_benign']:.2f} to "
            f"{a['refusal_rate_on_benign']:.2f} "
            f"and SFT's format compliance from {b['sft_format_compliance']:.2f} to {a['sft_format_compliance']:.2f}.")


def update_readme(readme: Path, paragraph: str) -> None:
    """Put `paragraph` between the README's results markers."""
    text = readme.read_text(encoding="utf-8")
    start, end = text.index(RESULTS[0]) + len(RESULTS[0]), text.index(RESULTS[1])
    write_text(readme, text[:start] + "\n" + paragraph + "\n" + text[end:])


def main(argv: list[str] | None = None) -> int:
    """Print the time table, write outputs/REPORT.md, and snapshot the executed notebooks when asked."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshot", action="store_true", help="copy default-profile executed notebooks to executed/")
    args = parser.parse_args(argv)
    out = outputs_dir()
    times = run_times(out / "notebooks")
    table = "\n".join(["| " + " | ".join(map(str, row)) + " |" for row in [list(times.columns), ["---"] * 5,
                                                                          *times.values.tolist()]]) if len(times) else \
        "no executed notebooks: run `make run` first"
    total = f"\n\n{times['seconds'].sum()} s in all on {machine()}." if len(times) else ""
    lines = ["# Course report", "", table + total, "", "## Headline numbers", "", *headlines(out / "metrics")]
    report = "\n".join(lines)
    print(table + total)
    print(f"wrote {write_text(out / 'REPORT.md', report + chr(10))}")
    if args.snapshot:
        shutil.rmtree(ROOT / "executed", ignore_errors=True)
        print(f"snapshot: {len(snapshot(out / 'notebooks', ROOT / 'executed'))} notebooks in executed/")
        ended = times.set_index("notebook")["ended"].get("02_dpo", "")
        update_readme(ROOT / "README.md", results_paragraph(out / "metrics", ended[:10]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
