"""Comparing training variants side by side: how far weights moved, memory in use, one summary chart."""

from __future__ import annotations

import ctypes
import ctypes.util
import math
from typing import Any

import torch

from smolkit.measure import peak_memory_mib, reset_peak_memory


def _release_free_heap() -> None:
    """Hand memory that Python and torch have freed back to the OS (glibc only), so RSS shows what is in use."""
    name = ctypes.util.find_library("c")
    try:
        ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError, TypeError):  # not glibc (macOS, musl, Windows): nothing to do
        pass


def resident_mib(device: str = "cpu") -> float | None:
    """Memory in use right now, in MiB: the process's resident set on CPU, allocated tensors on CUDA.

    Read before a stage starts, it is the baseline that the stage's peak (`smolkit.measure.track`) adds to.
    """
    if not device.startswith(("cuda", "mps")):
        _release_free_heap()
    reset_peak_memory(device)  # a fresh peak window starts at the current level, so its peak is that level
    value = peak_memory_mib(device)
    return None if value is None else round(value, 1)


@torch.no_grad()
def weight_shift(model: Any, other: Any) -> float:
    """How far training moved the weights: ||theta - theta_other|| / ||theta_other|| over all parameters."""
    theirs = dict(other.named_parameters())
    diff = norm = 0.0
    for name, param in model.named_parameters():
        ref = theirs[name].to(param.device, torch.float32)
        diff += float((param.float() - ref).pow(2).sum())
        norm += float(ref.pow(2).sum())
    return math.sqrt(diff / norm) if norm else float("nan")


def variant_chart(table: Any, stages: Any, title: str = "") -> Any:
    """Four panels: held-out rates and reply length per variant (rows of `table`), time and memory per stage.

    `table` has one row per variant and the columns format_compliance, exact_match, preference_accuracy,
    mean_words; `stages` has one row per training stage and the columns seconds and added_mib.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6), gridspec_kw={"width_ratios": [2.2, 1, 1, 1]})
    rates = table[["format_compliance", "exact_match", "preference_accuracy"]]
    rates.T.plot.bar(ax=axes[0], rot=0, width=0.8)
    axes[0].set_ylim(0, 1.05)
    axes[0].set_title("held-out rates (higher is better)")
    axes[0].legend(fontsize=8, loc="upper right")
    colors = [f"C{i}" for i in range(len(table))]
    axes[1].bar(range(len(table)), table["mean_words"], color=colors)
    axes[1].set_title("mean words per reply")
    axes[2].bar(range(len(stages)), stages["seconds"], color="#7a9cc6")
    axes[2].set_title("training time per stage (s)")
    axes[3].bar(range(len(stages)), stages["added_mib"], color="#c69a7a")
    axes[3].set_title("memory added by a stage (MiB)")
    for ax, labels in ((axes[1], table.index), (axes[2], stages.index), (axes[3], stages.index)):
        ax.set_xticks(range(len(labels)), [str(label).replace(" ", "\n", 1) for label in labels], fontsize=8)
    for ax in axes:
        ax.grid(axis="y", alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
