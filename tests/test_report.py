"""smolkit.report and smolkit.paths.save_metrics."""

import json

from smolkit.paths import save_metrics
from smolkit.report import build_report, flatten, write_report


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
