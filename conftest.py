"""Test session setup: one environment whatever the shell exports, and every notebook executed once, by nbval.

* The environment is set here, not inherited: offline (all three switches), the smoke profile, outputs under
  `outputs/test/`, and none of the notebooks' `SMOLKIT_*` parameters a user may have exported.
* Order: unit tests, then the notebooks (nbval, one kernel per notebook), then the tests marked
  `notebook_outputs`, which read what the notebooks wrote.
* nbval keeps no executed notebook, so each executed cell's outputs are written to
  `outputs/test/notebooks/<name>.ipynb` as it finishes: one executed copy per notebook, as `make run` writes.
* Before the notebooks run, what an earlier session wrote (metrics, models, the evaluation cache) is removed, so
  every generation and score is computed in this session (03 still finds what 01 and 02 cached in it).
* At the end the trained models and checkpoints are deleted (0.5 GB per model); metrics and notebooks stay.
"""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent
OUTPUTS = REPO / "outputs" / "test"
# Variables the tests read themselves, or that only say where a tool is; every other SMOLKIT_* variable is a
# notebook parameter (SMOLKIT_SFT_LR, SMOLKIT_MODEL, SMOLKIT_RESUME, ...) and would change what the tests run.
KEPT = {"SMOLKIT_CACHE", "SMOLKIT_CHROMIUM", "SMOLKIT_BROWSER_TIMEOUT"}

# Set before transformers, huggingface_hub or datasets are imported (they read these once, at import).
for _name in [n for n in os.environ if n.startswith("SMOLKIT_") and n not in KEPT]:
    del os.environ[_name]
os.environ.pop("MPLBACKEND", None)  # notebook kernels draw inline, so every figure lands in the executed copy
os.environ.update({
    "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",  # a test lifts them itself
    "TOKENIZERS_PARALLELISM": "false",
    "SMOLKIT_PROFILE": "smoke", "SMOLKIT_OUTPUTS": str(OUTPUTS),
})


def _is_notebook_cell(item: pytest.Item) -> bool:
    """True for a cell that nbval collected from a notebook."""
    return type(item).__name__ == "IPyNbCell"


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker of tests that read the executed notebooks' outputs."""
    config.addinivalue_line("markers", "notebook_outputs: reads what the notebooks wrote; runs after them")


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Unit tests first, then the notebooks, then the tests of their outputs; clear stale outputs first."""
    cells = [i for i in items if _is_notebook_cell(i)]
    after = [i for i in items if not _is_notebook_cell(i) and i.get_closest_marker("notebook_outputs")]
    first = [i for i in items if not _is_notebook_cell(i) and i not in after]
    items[:] = first + cells + after
    if cells:  # the notebooks run in this session: nothing a previous session wrote may pass for their output
        for stale in ("metrics", "notebooks", "models", "checkpoints", "configs", "cache"):
            shutil.rmtree(OUTPUTS / stale, ignore_errors=True)


_executed: dict[str, object] = {}  # notebook path -> the notebook with the outputs of the cells run so far


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """After nbval runs a cell, put its outputs into that notebook's executed copy and save the copy."""
    yield
    if not _is_notebook_cell(item) or item.test_outputs is None:
        return
    import nbformat

    path = Path(str(item.parent.fspath))
    nb = _executed.setdefault(str(path), copy.deepcopy(item.parent.nb))
    code = [c for c in nb.cells if c.cell_type == "code"]
    code[item.cell_num].outputs = [nbformat.from_dict(o) for o in item.test_outputs]
    code[item.cell_num].execution_count = item.cell_num + 1
    out = OUTPUTS / "notebooks" / path.name
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".ipynb.tmp")
    nbformat.write(nb, str(tmp))
    os.replace(tmp, out)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Delete what is large and only served the tests: trained models and training checkpoints."""
    for large in ("models", "checkpoints", "scratch"):
        shutil.rmtree(OUTPUTS / large, ignore_errors=True)
