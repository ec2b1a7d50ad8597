"""A real browser: JupyterLab in headless Chromium runs 02's widget cells and works them (tools/browser_check.py).

The widget notebook compares the models that 01 and 02 saved in this test session, so it runs after them.

Never skipped: without Chromium it fails and says how to install it (`make test` installs it as root).
"""

import importlib.util
import json
import os
from pathlib import Path

import pytest

from smolkit.runtime import outputs_dir


def load_tool():
    path = Path(__file__).resolve().parent.parent / "tools" / "browser_check.py"
    spec = importlib.util.spec_from_file_location("browser_check", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_missing_chromium_fails_with_how_to_install(monkeypatch, tmp_path):
    tool = load_tool()
    monkeypatch.setenv("SMOLKIT_CHROMIUM", str(tmp_path / "no-such-chrome"))
    with pytest.raises(FileNotFoundError, match="apt-get install -y chromium"):
        tool.find_chromium()


def test_the_widget_notebook_is_02s_own_cells():
    tool = load_tool()
    nb = tool.widgets_notebook(tool.ROOT / "notebooks" / "02_dpo.ipynb")
    course = json.loads((tool.ROOT / "notebooks" / "02_dpo.ipynb").read_text())["cells"]
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert [c for c in code[:-1] if c not in course] == []  # copied unchanged from 02, in 02's order
    assert "show_beta_explorer(" in "".join(code[-2]["source"]) and "show_compare(" in "".join(code[-1]["source"])
    assert any("parameters" in c["metadata"].get("tags", []) for c in code)


@pytest.mark.notebook_outputs
def test_widgets_render_and_react_in_jupyterlab_in_chromium():
    tool = load_tool()
    report = tool.check_notebook(timeout=float(os.environ.get("SMOLKIT_BROWSER_TIMEOUT", "480")))
    print(json.dumps(report, indent=2))
    beta = report["beta_slider"]
    assert beta["readout"][0] != beta["readout"][1] and beta["summary"][0] != beta["summary"][1]
    assert beta["image_changed"]
    assert report["compare_panel"]["columns"] >= 2
    shots = outputs_dir() / "browser"
    assert report["notebook"] == "02_widgets.ipynb"
    for name in ("02_widgets.png", "beta_before.png", "beta_after.png", "compare.png"):
        assert (shots / name).stat().st_size > 5_000, name  # a real picture, not an empty page
