"""What notebook 03 compares variants with: weight shift (evaluation), resident memory (measure), the chart (plots)."""

import copy
import math

import matplotlib
import pandas as pd
import torch

from smolkit.evaluation import weight_shift
from smolkit.measure import resident_mib
from smolkit.models import tiny_model
from smolkit.plots import DIAL_OUTCOMES, dial_chart, variant_chart

matplotlib.use("Agg")


def test_weight_shift_is_zero_for_a_copy_and_relative_to_the_reference():
    model, _ = tiny_model(layers=1, hidden=32)
    other = copy.deepcopy(model)
    assert weight_shift(model, other) == 0.0
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.1)  # every weight 10 % larger: the relative distance is exactly 0.1
    assert math.isclose(weight_shift(model, other), 0.1, rel_tol=1e-4)


def test_resident_memory_sees_a_large_allocation_and_its_release():
    before = resident_mib()
    block = torch.ones(64 * 2**20 // 4)  # 64 MiB
    during = resident_mib()
    del block
    after = resident_mib()
    assert before > 0 and during - before > 48
    assert after < during - 32  # freed memory is handed back, so a stage's baseline is what is in use


def test_variant_chart_draws_four_panels():
    table = pd.DataFrame({"format_compliance": [0.9, 0.1], "exact_match": [0.2, 0.0],
                          "preference_accuracy": [0.6, 0.5], "mean_words": [12.0, 30.0]},
                         index=["(a) SFT → DPO", "(d) start"])
    stages = pd.DataFrame({"seconds": [180.0, 190.0], "added_mib": [1900.0, 2500.0]},
                          index=["SFT", "DPO after SFT"])
    fig = variant_chart(table, stages, title="t")
    assert len(fig.axes) == 4
    assert [t.get_text() for t in fig.axes[2].get_xticklabels()] == ["SFT", "DPO\nafter SFT"]


def test_variant_chart_puts_six_variants_and_five_stages_in_a_grid_with_wrapped_labels():
    labels = ["(a) SFT → DPO", "(b) SFT only", "(c) DPO only", "(c′) DPO only, own template", "(d) start",
              "(e) SFT on chosen"]
    table = pd.DataFrame({"format_compliance": [0.9, 0.8, 0.2, 0.3, 0.1, 0.85], "exact_match": [0.5] * 6,
                          "preference_accuracy": [0.6] * 6, "mean_words": [12.0, 13, 30, 25, 31, 12]}, index=labels)
    stages = pd.DataFrame({"seconds": [100.0, 200, 30, 190, 195], "added_mib": [1800.0, 3000, 1700, 2900, 2950]},
                          index=["SFT", "DPO after SFT", "SFT on chosen", "DPO on start", "DPO on start, own template"])
    fig = variant_chart(table, stages, title="t")
    assert len(fig.axes) == 4
    assert fig.axes[2].get_position().y1 < fig.axes[0].get_position().y0  # two rows: stages below the rates
    ticks = [t.get_text() for t in fig.axes[1].get_xticklabels()]
    assert [t.replace("\n", " ") for t in ticks] == labels
    assert all(len(line) <= 14 for t in ticks for line in t.split("\n"))
    assert len(fig.axes[0].get_legend().get_texts()) == 6


def test_dial_chart_puts_each_run_in_the_panel_of_the_one_dial_it_changes():
    grid = [(1e-6, 0.1, "sigmoid"), (2e-5, 0.1, "sigmoid"), (1e-4, 0.1, "sigmoid"), (2e-5, 0.02, "sigmoid"),
            (2e-5, 0.5, "sigmoid"), (2e-5, 0.1, "ipo"), (1e-4, 0.1, "sigmoid+sft")]
    runs = pd.DataFrame([{"learning_rate": lr, "beta": b, "loss_type": loss, **{k: 0.5 for k in DIAL_OUTCOMES}}
                         for lr, b, loss in grid])
    fig = dial_chart(runs, {k: 0.25 for k in DIAL_OUTCOMES}, learning_rate=2e-5, beta=0.1)
    points = [len(ax.lines[0].get_xdata()) for ax in fig.axes[:3]]
    assert points == [3, 3, 2]  # 1e-4 sigmoid+sft changes two dials: it is in no panel
    assert [t.get_text() for t in fig.axes[1].get_xticklabels()] == ["0.02", "0.1", "0.5"]
    assert [t.get_text() for t in fig.axes[2].get_xticklabels()] == ["sigmoid", "ipo"]
    matplotlib.pyplot.close(fig)
