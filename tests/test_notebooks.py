"""The lessons: the template each follows (tools/check_notebooks.py), and what they wrote when nbval ran them.

nbval executes every notebook once, at the smoke profile (conftest.py); the tests marked `notebook_outputs` run after
it and read the metrics, models and executed copies left under `outputs/test/`.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import papermill
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import check_notebooks  # noqa: E402

import smolkit  # noqa: E402
from smolkit.runtime import outputs_dir, read_metrics  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
LINK = re.compile(r"\]\(([^)#\s]+)")


@pytest.fixture(autouse=True)
def _smolkit_names():
    check_notebooks.SMOLKIT_NAMES[:] = smolkit.__all__


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_each_lesson_follows_the_template(path):
    assert check_notebooks.problems(path) == []


def _broken(tmp_path, edit):
    nb = json.loads((REPO / "notebooks" / "02_dpo.ipynb").read_text())
    edit(nb["cells"])
    path = tmp_path / "02_dpo.ipynb"
    path.write_text(json.dumps(nb))
    return "\n".join(check_notebooks.problems(path))


def _prose(cells, old, new):
    cell = next(c for c in cells if c["cell_type"] == "markdown" and old in "".join(c["source"]))
    cell["source"] = "".join(cell["source"]).replace(old, new)


def _code(cells, old, new):
    cell = next(c for c in cells if c["cell_type"] == "code" and old in "".join(c["source"]))
    cell["source"] = "".join(cell["source"]).replace(old, new)


@pytest.mark.parametrize("edit, says", [
    (lambda cells: _prose(cells, "## Self-check", "## Quiz"), "closing sections"),
    (lambda cells: _prose(cells, "## Self-check", "## Self-check\n\nIt rose from 0.53 to 0.71."),
     "typed into the prose"),
    (lambda cells: _code(cells, "trainer = DPOTrainer(", "preflight(tokenizer, pairs, 'dpo')\ntrainer = DPOTrainer("),
     "training cell calls smolkit"),
    (lambda cells: _code(cells, 'SEED = 42', 'SEED = int("42")'), "literal assignments"),
    (lambda cells: _code(cells, "import copy", "from smolkit.chat import render\nimport smolkit.plots\nimport copy"),
     "import smolkit"),
    (lambda cells: _code(cells, "import copy", "import copy\n" + "x = 1\n" * 30), "over 25 lines"),
    (lambda cells: cells[3].update(outputs=[{"output_type": "stream", "name": "stdout", "text": "hi"}]), "outputs"),
])
def test_the_template_check_catches_each_rule(tmp_path, edit, says):
    assert says in _broken(tmp_path, edit)


def test_links_in_readme_docs_and_lessons_resolve():
    texts = [(f, f.read_text()) for f in [REPO / "README.md", *(REPO / "docs").glob("*.md")]]
    for nb in NOTEBOOKS:  # a lesson's links are in its prose; its code has `]("...` of its own
        cells = json.loads(nb.read_text())["cells"]
        texts.append((nb, "".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")))
    broken = [(f.name, link) for f, text in texts for link in LINK.findall(text)
              if not link.startswith(("http", "mailto")) and not (f.parent / link).exists()]
    assert not broken


def test_readme_is_a_first_page():
    assert len((REPO / "README.md").read_text().splitlines()) <= 150


def test_colab_cells_and_readme_badges_match_the_slug():
    result = subprocess.run([sys.executable, str(REPO / "tools" / "sync_colab.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_papermill_injects_parameters(tmp_path):
    """`make run`'s path, cheaply: 00's cells up to the profile, with PROFILE injected by papermill."""
    source = json.loads((REPO / "notebooks" / "00_overview.ipynb").read_text())
    first = next(i for i, c in enumerate(source["cells"]) if "get_profile(" in "".join(c["source"]))
    source["cells"] = source["cells"][: first + 1] + [{"cell_type": "code", "metadata": {}, "outputs": [],
                                                      "execution_count": None, "source": "print(P.name, SEED)"}]
    nb, out = tmp_path / "head.ipynb", tmp_path / "out.ipynb"
    nb.write_text(json.dumps(source))
    papermill.execute_notebook(str(nb), str(out), parameters={"PROFILE": "full", "SEED": 7}, kernel_name="python3",
                               cwd=str(REPO / "notebooks"), progress_bar=False)
    printed = "".join(json.loads(out.read_text())["cells"][-1]["outputs"][0]["text"])
    assert printed.split() == ["smoke", "7"]  # SMOLKIT_PROFILE (the tests' smoke) wins; SEED was injected


def executed(path: Path) -> list[dict]:
    copy = outputs_dir() / "notebooks" / path.name
    assert copy.is_file(), f"no executed copy of {path.name}: nbval did not run it in this session"
    return [c for c in json.loads(copy.read_text())["cells"] if c["cell_type"] == "code"]


DRAWS = re.compile(r"\.plot[.(]|\bplt\.|\b(training_curves|before_after|dial_chart|show_beta_explorer)"
                   r"\(")
WARNING = re.compile(r"\b[A-Z]\w*Warning\b")


@pytest.mark.notebook_outputs
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_cell_ran_drew_its_figure_and_printed_no_warning(path):
    cells = executed(path)
    assert all(c["execution_count"] for c in cells), "a cell was not executed"
    missing = [i for i, c in enumerate(cells) if DRAWS.search("".join(c["source"]))
               and not any("image/png" in o.get("data", {}) for o in c["outputs"])]
    assert not missing, f"code cells {missing} draw a figure the executed notebook lacks"
    texts = ["".join(o.get("text", "")) for c in cells for o in c["outputs"]]
    assert not [t for t in texts if WARNING.search(t)], "a cell printed a warning"


@pytest.mark.notebook_outputs
def test_dpo_records_the_contracts_measures_before_and_after_in_fp32():
    m = read_metrics("02_dpo")
    keys = {"refusal_rate_on_unsafe", "format_request_kept", "filler_opening_rate", "repetition_rate",
            "refusal_rate_on_benign", "logp_accuracy", "sft_format_compliance"}
    assert keys <= set(m["before"]) and keys <= set(m["after"]) and "replies_changed" in m
    assert m["bf16"] is False and m["fp16"] is False  # a CPU trains fp32, every day
    assert abs(m["by_hand"]["margin x beta"] - m["trl_margin"]) < 1e-3  # section 1's loss is TRL's


@pytest.mark.notebook_outputs
def test_the_built_pairs_reject_the_models_own_replies():
    pairs = [json.loads(line) for line in (outputs_dir() / "data" / "dpo_pairs.jsonl").read_text().splitlines()]
    own = [p for p in pairs if p["source"] == "model"]
    assert own and all(p["why"] and p["rejected"] != p["chosen"] for p in own)


@pytest.mark.notebook_outputs
@pytest.mark.parametrize("stage", ["sft", "dpo", "dpo_tuned"])
def test_saved_models_load_offline_with_plain_transformers(stage):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = outputs_dir() / "models" / stage
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert AutoTokenizer.from_pretrained(folder).chat_template.startswith("{%- for message in messages %}")
    assert {p.name for p in folder.iterdir()} >= {"model.safetensors", "recipe.json"} and model.dtype.is_floating_point


@pytest.mark.notebook_outputs
def test_the_pipeline_reused_01_and_02():
    printed = "".join(t for c in executed(REPO / "notebooks" / "03_pipeline.ipynb") for o in c["outputs"]
                      for t in o.get("text", ""))
    assert printed.count("recipe matches: reused") == 2, printed
