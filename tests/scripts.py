"""Test helpers: import a script from tools/ as a module, and read the committed data files."""

import importlib.util
import json
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def load_script(name: str) -> ModuleType:
    """Import tools/<name>.py as a module (the tools are scripts, not part of the package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def data_rows(path: str) -> list[dict]:
    """The committed rows of one data file under data/, as plain dicts."""
    return [json.loads(line) for line in (ROOT / "data" / path).read_text(encoding="utf-8").splitlines()]
