"""What notebook 03 compares variants with: weight shift (evaluation), resident memory (measure), the chart (plots)."""

import copy
import math

import matplotlib
import pandas as pd
import torch

from smolkit.evaluation import weight_shift
from smolkit.measure import resident_mib
from smolkit.models import tiny_model
from smolkit.plots import variant_chart

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
