"""Check that the lessons are committed clean and follow the course's lesson template.

Usage: python tools/check_notebooks.py [NOTEBOOK ...]   (default: notebooks/*.ipynb). Exit 1 on a problem.

A lesson has: a title with three learning objectives and a time; the Colab cell, then one `parameters` cell of
literals; code cells of at most 25 lines; at most two lines importing smolkit; a training cell that builds the TRL
trainer from nothing of smolkit's but data and model loading; the closing sections (What you saw, a Self-check with
folded answers, Exercises with expected outcomes and folded solutions, Looking closer, a troubleshooting link); no
outputs; and no decimal number typed into its prose except the guide's own values (GUIDE_VALUES).
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 25
CLOSING = ["## What you saw", "## Self-check", "## Exercises", "## Looking closer"]
# Numbers the prose may quote because they are the guide's own settings, not results: its learning rates (SFT 5e-5,
# DPO 1e-6, "unstable" 5e-7, "try higher" 1e-4), TRL's default beta, and the model size in "SmolLM2-1.7B".
GUIDE_VALUES = {"5e-5", "1e-6", "5e-7", "1e-4", "0.1", "1.7"}
DECIMAL = re.compile(r"(?<![\w.])\d+(?:\.\d+)?e-?\d+\b|(?<![\w.])\d+\.\d+(?![\w.])")
LOADERS = {"load_model", "load_sft", "load_preferences", "load_dataset", "use_template"}  # allowed in a training cell


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _calls(code: str) -> set[str]:
    """The names of the functions a cell calls (plain names only: `f(...)`, not `obj.f(...)`)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()
    return {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}


def problems(path: Path) -> list[str]:
    """What is wrong with one notebook file, as readable lines."""
    try:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError) as err:
        return [f"{path}: not a readable notebook ({err})"]
    found, name = [], path.name
    code = [c for c in cells if c["cell_type"] == "code"]
    prose = "\n".join(_source(c) for c in cells if c["cell_type"] == "markdown")
    if any(c.get("outputs") or c.get("execution_count") for c in code):
        found.append(f"{name}: stored with outputs; clear them (Edit > Clear Outputs of All Cells)")
    tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(tagged) != 1 or len(code) < 2 or code[1] is not tagged[0]:
        found.append(f"{name}: needs one cell tagged 'parameters', the code cell right after the Colab cell")
    elif not all(isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)
                 for n in ast.parse(_source(tagged[0])).body):
        found.append(f"{name}: the parameters cell must hold literal assignments only (papermill overrides them)")
    long = [i for i, c in enumerate(code[1:], 1) if len(_source(c).splitlines()) > MAX_LINES]
    if long:
        found.append(f"{name}: code cells {long} are over {MAX_LINES} lines")
    imports = [line for c in code for line in _source(c).splitlines() if re.match(r"\s*(from|import) smolkit\b", line)]
    if len(imports) > 2:
        found.append(f"{name}: {len(imports)} lines import smolkit; at most 2")
    for c in code:
        if re.search(r"\b(SFTTrainer|DPOTrainer)\(", _source(c)) and re.search(r"\.train\(", _source(c)):
            ours = _calls(_source(c)) & set(SMOLKIT_NAMES) - LOADERS
            if ours:
                found.append(f"{name}: the training cell calls smolkit's {sorted(ours)}; only data and model loading")
    first = _source(cells[0])
    if not first.startswith("# ") or "**Learning objectives**" not in first or "**Time:**" not in first:
        found.append(f"{name}: the first cell needs a title, **Learning objectives** and a **Time:** line")
    elif len(re.findall(r"^\d\. ", first.split("**Learning objectives**")[1].split("**Time:**")[0], re.M)) != 3:
        found.append(f"{name}: exactly three learning objectives")
    at = [prose.find(h) for h in CLOSING]
    if -1 in at or at != sorted(at):
        found.append(f"{name}: needs the closing sections in order: {', '.join(CLOSING)}")
    else:
        check = prose[at[1]:at[2]]
        exercises = " ".join(prose[at[2]:at[3]].split())
        if check.count("<details>") < 3:
            found.append(f"{name}: the self-check needs at least 3 answers folded in <details>")
        if exercises.count("Expected outcome") < 3 or exercises.count("<details>") < 3:
            found.append(f"{name}: each of at least 3 exercises needs an expected outcome and a folded solution")
    if "docs/troubleshooting.md" not in prose:
        found.append(f"{name}: link docs/troubleshooting.md")
    typed = sorted({m.group() for m in DECIMAL.finditer(re.sub(r"\$[^$]*\$", "", prose))} - GUIDE_VALUES)
    if typed:
        found.append(f"{name}: numbers typed into the prose {typed}: print them from the run, or quote the guide")
    return found


SMOLKIT_NAMES: list[str] = []


def main(argv: list[str]) -> int:
    """Check the given notebooks (or all course notebooks) and print every problem."""
    sys.path.insert(0, str(ROOT))
    import smolkit

    SMOLKIT_NAMES[:] = smolkit.__all__
    paths = [Path(a) for a in argv] or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    found = [line for path in paths for line in problems(path)]
    print("\n".join(found + [f"checked {len(paths)} notebook(s): {'FAILED' if found else 'clean'}"]))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
