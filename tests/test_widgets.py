"""smolkit.widgets and smolkit.plots: the numbers the beta slider shows, the compare panel, and both static versions."""

import math
import re

import matplotlib
import pandas as pd
import pytest

from smolkit import plots, widgets

matplotlib.use("Agg")


@pytest.mark.parametrize("beta", [0.1, 0.5, 1.0])
def test_the_slider_shows_dpos_loss_and_push(beta):
    shown = re.findall(r"m=([-+\d.]+): loss ([\d.]+), push ([\d.]+)", widgets.beta_summary(beta))
    assert len(shown) == 4
    for margin, loss, push in shown:
        sigma = 1 / (1 + math.exp(-beta * float(margin)))
        assert float(loss) == pytest.approx(-math.log(sigma), abs=5e-4)
        assert float(push) == pytest.approx(1 - sigma, abs=5e-3)


def test_a_larger_beta_leaves_less_push_at_the_same_margin():
    pushes = {beta: float(re.search(r"m=\+5: loss [\d.]+, push ([\d.]+)", widgets.beta_summary(beta))[1])
              for beta in (0.1, 1.0)}
    assert pushes[1.0] < pushes[0.1] < 0.5 and "m=+0: loss 0.693, push 0.50" in widgets.beta_summary(0.1)


def test_compare_html_escapes_model_text():
    html = widgets.compare_html("<b>hi</b>", {"before": "<script>x</script>", "after": ""})
    assert "<script>" not in html and "&lt;script&gt;" in html and "(empty reply)" in html


def test_show_compare_carries_a_live_panel_and_the_static_replies(tiny, monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda bundle, raw=False: shown.append(bundle))
    model, tok = tiny
    widgets.show_compare({"A": (model, tok), "B": (model, tok)}, prompt="Hi", max_new_tokens=3)
    [bundle] = shown
    assert widgets.WIDGET_MIME in bundle and "--- A" in bundle["text/plain"] and "<table" in bundle["text/html"]


def test_show_beta_explorer_carries_a_live_slider_and_the_static_curve(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda bundle, raw=False: shown.append(bundle))
    widgets.show_beta_explorer(0.5)
    [bundle] = shown
    assert widgets.WIDGET_MIME in bundle and bundle["image/png"] and "beta=0.5" in bundle["text/plain"]


def test_before_after_labels_every_bar():
    fig = plots.before_after(pd.DataFrame({"before": [0.1, 0.2], "after": [0.9, 0.3]}, index=["a", "b"]), "t")
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert labels == ["0.10", "0.20", "0.90", "0.30"]


def test_training_curves_skip_metrics_the_log_lacks():
    log = [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.5, "eval_loss": 1.7}]
    fig = plots.training_curves(log, [("loss", "eval_loss"), "rewards/margins"])
    assert len(fig.axes) == 1 and len(fig.axes[0].lines) == 2
