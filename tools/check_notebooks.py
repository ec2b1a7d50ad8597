"""Check that notebooks are committed clean: no outputs, one `parameters` cell near the top.

Usage: python tools/check_notebooks.py [NOTEBOOK ...]   (default: notebooks/*.ipynb). Exit 1 on a problem.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def problems(path: Path) -> list[str]:
    """What is wrong with one notebook file, as readable lines."""
    try:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError) as err:
        return [f"{path}: not a readable notebook ({err})"]
    found = []
    for i, cell in enumerate(cells):
        if cell.get("cell_type") == "code" and (cell.get("outputs") or cell.get("execution_count")):
            found.append(f"{path}: cell {i} is stored with outputs or an execution count; clear them "
                         "(JupyterLab: Edit > Clear Outputs of All Cells)")
    tagged = [i for i, c in enumerate(cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    code = [i for i, c in enumerate(cells) if c.get("cell_type") == "code"]
    if len(tagged) != 1:
        found.append(f"{path}: needs exactly one cell tagged 'parameters', found {len(tagged)}")
    elif code[:2] != [code[0], tagged[0]] or len(code) < 2:
        found.append(f"{path}: the 'parameters' cell must be the code cell right after the Colab cell")
    return found


def main(argv: list[str]) -> int:
    """Check the given notebooks (or all course notebooks) and print every problem."""
    paths = [Path(a) for a in argv] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    found = [line for path in paths for line in problems(path)]
    for line in found:
        print(line)
    print(f"checked {len(paths)} notebook(s): {'FAILED' if found else 'clean'}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
