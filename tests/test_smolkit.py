"""smolkit's layout: a lesson core a newcomer can read, a performance wing beside it, and no import circles."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "smolkit"
CORE_LINES, ALL_LINES, MODULE_LINES = 1100, 1800, 250


def modules() -> dict[str, Path]:
    """Every smolkit module by dotted name ('smolkit.chat', 'smolkit.perf.speed', ...)."""
    return {".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): p
            for p in sorted(PACKAGE.rglob("*.py"))}


def smolkit_imports(path: Path) -> set[str]:
    """The smolkit modules a file imports, at its top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        found |= {n for n in names if n.startswith("smolkit")}
    return found & set(modules())


def test_the_core_and_the_whole_package_stay_within_their_line_budgets():
    lines = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in modules().items()}
    core = sum(n for name, n in lines.items() if not name.startswith("smolkit.perf"))
    assert core <= CORE_LINES and sum(lines.values()) <= ALL_LINES, (core, sum(lines.values()))
    assert not {name: n for name, n in lines.items() if n > MODULE_LINES}


def test_the_core_never_imports_the_performance_wing():
    core = {name: path for name, path in modules().items() if not name.startswith("smolkit.perf")}
    assert not {name: sorted(i) for name, path in core.items() if (i := {m for m in smolkit_imports(path)
                                                                          if m.startswith("smolkit.perf")})}


def test_no_module_imports_itself_through_others():
    graph = {name: smolkit_imports(path) - {name} for name, path in modules().items()}
    graph = {name: {m for m in deps if m != "smolkit" and not name.startswith(m + ".")} for name, deps in graph.items()}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(m == goal or (m not in seen and reaches(m, goal, seen | {m})) for m in graph.get(start, ()))

    assert not [name for name in graph if reaches(name, name, {name})]
