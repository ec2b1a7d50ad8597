"""Test session setup: one environment whatever the shell exports, every notebook executed once by nbval, and the
fixtures several test files share.

* The environment is set here, not inherited: offline, the smoke profile, outputs under `outputs/test/`, and no
  `SMOLKIT_*` variable a user may have exported (except where tools live).
* Order: unit tests, then the notebooks (nbval, one kernel each), then the tests marked `notebook_outputs`, which read
  what the notebooks wrote. Each executed cell's outputs go to `outputs/test/notebooks/<name>.ipynb` as it finishes.
* Before the notebooks run, what an earlier session wrote is removed; at the end the trained models are deleted.
"""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent
OUTPUTS = REPO / "outputs" / "test"
KEPT = {"SMOLKIT_CACHE", "SMOLKIT_CHROMIUM", "SMOLKIT_BROWSER_TIMEOUT"}  # where tools live, not what tests run

for _name in [n for n in os.environ if n.startswith("SMOLKIT_") and n not in KEPT]:
    del os.environ[_name]
os.environ.pop("MPLBACKEND", None)  # kernels draw inline, so every figure lands in the executed copy
os.environ.update({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                   "TOKENIZERS_PARALLELISM": "false", "SMOLKIT_PROFILE": "smoke", "SMOLKIT_OUTPUTS": str(OUTPUTS)})


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
    items[:] = [i for i in items if not _is_notebook_cell(i) and i not in after] + cells + after
    if cells:  # the notebooks run in this session: nothing an earlier session wrote may pass for their output
        for stale in ("metrics", "notebooks", "models", "checkpoints", "data", "bench"):
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
    nbformat.write(nb, str(out.with_suffix(".tmp")))
    os.replace(out.with_suffix(".tmp"), out)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Delete what is large and only served the tests: trained models and training checkpoints."""
    for large in ("models", "checkpoints", "scratch"):
        shutil.rmtree(OUTPUTS / large, ignore_errors=True)


@pytest.fixture(scope="session")
def tokenizer():
    """The real SmolLM2 tokenizer with the course's template."""
    from transformers import AutoTokenizer

    from smolkit.chat import use_template
    from smolkit.models import embedded_checkpoint

    tok = AutoTokenizer.from_pretrained(embedded_checkpoint())
    return use_template(tok, "guide")


def _tiny_llama(tokenizer):
    """A randomly initialised two-layer Llama (hidden 64) over the real tokenizer's vocabulary."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    return LlamaForCausalLM(config)


@pytest.fixture
def tiny(tokenizer):
    """(model, tokenizer): the tiny Llama with the real tokenizer, fresh for each test."""
    return _tiny_llama(tokenizer), copy.deepcopy(tokenizer)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory, tokenizer):
    """The tiny model and tokenizer saved as a folder, for runs in a fresh process (`load_model(folder)`)."""
    path = tmp_path_factory.mktemp("tiny")
    _tiny_llama(tokenizer).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def load_tool():
    """A function that imports a script of tools/ by name, as a module (tools/ is not a package)."""
    import importlib.util

    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
