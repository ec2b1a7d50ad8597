"""smolkit.report and smolkit.paths.save_metrics."""

import json

from smolkit.paths import save_metrics
from smolkit.report import COURSE_BUDGET_S, NOTEBOOK_BUDGET_S, build_report, flatten, write_report


def test_flatten_nested_metrics():
    assert flatten({"a": {"b": 1, "c": {"d": 2}}, "e": 3}) == {"a.b": 1, "a.c.d": 2, "e": 3}


def test_report_collects_every_notebook_in_order(tmp_path, monkeypatch):
    monkeypatch.setenv("SMOLKIT_OUTPUTS", str(tmp_path))
    save_metrics("01_sft", {"after": {"exact_match": 0.8125}, "train_seconds": 61.2})
    save_metrics("00_overview", {"load_seconds": 1.25, "model": "embedded"})
    (tmp_path / "metrics" / "02_dpo.json").write_text("{not json")
    report = write_report().read_text()
    assert report.index("## 00_overview") < report.index("## 01_sft") < report.index("## 02_dpo")
    assert "| after.exact_match | 0.8125 |" in report and "| load_seconds | 1.25 |" in report
    assert "Unreadable metrics file 02_dpo.json" in report
    assert json.loads((tmp_path / "metrics" / "01_sft.json").read_text())["train_seconds"] == 61.2


def test_empty_report_says_what_to_do(tmp_path):
    assert "make run" in build_report(tmp_path)


def test_metrics_are_strict_json_with_null_for_nan(tmp_path, monkeypatch):
    import numpy as np

    monkeypatch.setenv("SMOLKIT_OUTPUTS", str(tmp_path))
    path = save_metrics("03_pipeline", {"peak": float("nan"), "ratio": np.float32(0.5), "n": np.int64(3),
                                        "rows": [float("inf"), 1.0], "ok": True})
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    strict = json.loads(text, parse_constant=lambda name: (_ for _ in ()).throw(ValueError(name)))
    assert strict == {"peak": None, "ratio": 0.5, "n": 3, "rows": [None, 1.0], "ok": True}


def _executed(folder, name, seconds, profile="default", exception=False):
    """A notebook file as papermill leaves it: its run's duration and parameters in the metadata."""
    meta = {"papermill": {"duration": seconds, "parameters": {"PROFILE": profile}, "exception": exception,
                          "end_time": "2026-12-04T08:05:46.786982+00:00"}}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.ipynb").write_text(json.dumps({"cells": [], "metadata": meta}))


def test_report_times_each_executed_notebook_against_the_budget(tmp_path, monkeypatch):
    monkeypatch.setenv("SMOLKIT_OUTPUTS", str(tmp_path))
    notebooks = tmp_path / "notebooks"
    _executed(notebooks, "01_sft", NOTEBOOK_BUDGET_S - 20.4)
    _executed(notebooks, "03_pipeline", NOTEBOOK_BUDGET_S + 1.0)
    _executed(notebooks, "04_hardware", 2000.0, profile="full")
    _executed(notebooks, "05_dpo_dials", 5.0, exception=True)
    (notebooks / "06_unrun.ipynb").write_text(json.dumps({"cells": [], "metadata": {}}))  # never executed
    report = write_report().read_text()
    assert f"| 01_sft | default | {NOTEBOOK_BUDGET_S - 20} | 2026-12-04 08:05 | within |" in report
    over = f"| 03_pipeline | default | {NOTEBOOK_BUDGET_S + 1} | 2026-12-04 08:05 | **over {NOTEBOOK_BUDGET_S} s** |"
    assert over in report
    assert "| 04_hardware | full | 2000 |" in report and "set for the default profile" in report
    assert "| 05_dpo_dials | default | 5 |" in report and "failed" in report
    assert "06_unrun" not in report
    total = 2 * NOTEBOOK_BUDGET_S - 19.4  # the two default-profile notebooks that finished
    assert f"2 notebook(s) at the default profile: {total:.0f} s in all, within." in report
    _executed(notebooks, "02_dpo", COURSE_BUDGET_S)
    assert f"over the course's {COURSE_BUDGET_S} s" in build_report()


def test_report_without_executed_notebooks_has_no_time_section(tmp_path):
    assert "Time per notebook" not in build_report(tmp_path / "metrics", tmp_path / "notebooks")
