"""smolkit's shape: no import loops, one import door for the notebooks, and lessons that run stock TRL."""

import ast
import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MODULES = sorted(p.stem for p in (REPO / "smolkit").glob("*.py") if p.stem != "__init__")
LESSONS = ("01_sft", "02_dpo", "03_pipeline", "05_dpo_dials")


def _smolkit_imports(tree: ast.AST) -> set[str]:
    """smolkit modules a module imports anywhere in its body (functions included)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("smolkit"):
            if node.module == "smolkit":
                found |= {a.name for a in node.names}
            else:
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("smolkit.")}
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle in a module graph, or None."""
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path + [node, nxt]
            if nxt not in state and (found := visit(nxt, path + [node])):
                return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [])):
            return found
    return None


def test_smolkit_has_no_import_loop():
    graph = {m: _smolkit_imports(ast.parse((REPO / "smolkit" / f"{m}.py").read_text())) - {m} for m in MODULES}
    assert _cycle(graph) is None, f"import loop: {' -> '.join(_cycle(graph))}"


def test_cycle_finder_finds_a_loop():
    assert _cycle({"train": {"measure"}, "measure": {"train"}}) is not None
    assert _cycle({"a": {"b"}, "b": set()}) is None


def _code_cells(name: str) -> list[tuple[list[str], str]]:
    nb = json.loads((REPO / "notebooks" / f"{name}.ipynb").read_text())
    return [(c["metadata"].get("tags", []), "".join(c["source"])) for c in nb["cells"] if c["cell_type"] == "code"]


NOTEBOOKS = sorted(p.stem for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebooks_import_smolkit_names_from_their_modules(name):
    """One door: `from smolkit.models import load_model`, never the package itself, which exports nothing."""
    for _, source in _code_cells(name):
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and node.module == "smolkit":
                assert {a.name for a in node.names} <= set(MODULES), f"{name}: from smolkit import {node.names}"
    init = ast.parse((REPO / "smolkit" / "__init__.py").read_text())
    assert all(isinstance(n, ast.Expr) for n in init.body), "smolkit/__init__.py exports names again"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_parameters_use_none_for_the_profiles_value(name, monkeypatch):
    """With no environment variable set, every learning rate and step count parameter is None, not 0."""
    for key in list(os.environ):
        if key.startswith("SMOLKIT_"):
            monkeypatch.delenv(key)
    source = next(src for tags, src in _code_cells(name) if "parameters" in tags)
    values: dict = {}
    exec(compile(source, f"{name}:parameters", "exec"), values)
    tunables = {k: v for k, v in values.items()
                if k.isupper() and ("STEPS" in k or k.endswith(("_LR", "LEARNING_RATE")))}
    assert all(v is None for v in tunables.values()), tunables
    assert '"0"))  # 0:' not in source


@pytest.mark.parametrize("name", LESSONS)
def test_lessons_train_with_stock_trl(name):
    """Speed-ups only behind CPU_SPEED_UPS (off by default); no course settings helper in a lesson's config."""
    cells = _code_cells(name)
    params = next(src for tags, src in cells if "parameters" in tags)
    assert 'CPU_SPEED_UPS = bool(int(os.environ.get("SMOLKIT_CPU_SPEED_UPS", "0")))' in params
    for _, source in cells:
        assert "recommended_settings" not in source and "smolkit.settings" not in source
        tree = ast.parse(source)
        guarded = {id(n) for node in ast.walk(tree)
                   if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "CPU_SPEED_UPS"
                   for n in ast.walk(node)}
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "speed_up"]
        assert all(id(c) in guarded for c in calls), f"{name}: speed_up called outside `if CPU_SPEED_UPS:`"
        for config in (n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") in
                       ("SFTConfig", "DPOConfig")):  # a config that checkpoints takes the profile's save_strategy
            given = {k.arg: ast.unparse(k.value) for k in config.keywords}
            if "save_steps" in given:
                assert given.get("save_strategy") == "P.save_strategy", f"{name}: {given}"
