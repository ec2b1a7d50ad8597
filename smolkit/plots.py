"""Figures and small HTML views the notebooks draw."""

from __future__ import annotations

import html
from typing import Any

import matplotlib.pyplot as plt


def token_view_html(pairs: list[tuple[str, bool]], tokenizer: Any) -> str:
    """Tokens as HTML: those that carry loss in green, the context in grey."""
    spans = []
    for piece, trained in pairs:
        shown = html.escape(tokenizer.convert_tokens_to_string([piece])).replace("\n", "↵<br>") or "&nbsp;"
        style = "background:#c8f0c8;color:#000" if trained else "background:#eee;color:#888"
        spans.append(f'<span style="{style};border:1px solid #ccc;margin:1px;padding:0 2px;'
                     f'font-family:monospace;white-space:pre">{shown}</span>')
    legend = ('<p><span style="background:#c8f0c8;padding:0 4px">green</span>: trained on (loss) &nbsp; '
              '<span style="background:#eee;color:#888;padding:0 4px">grey</span>: context only</p>')
    return legend + '<div style="line-height:2">' + "".join(spans) + "</div>"

def training_curves(log_history: list[dict], panels: list[str | tuple[str, ...]], title: str = "") -> Any:
    """One panel per logged metric (a tuple of metrics shares a panel) from a Trainer's `state.log_history`."""
    groups = [(p,) if isinstance(p, str) else tuple(p) for p in panels]
    groups = [g for g in groups if any(k in row for row in log_history for k in g)]
    fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 3.1), squeeze=False)
    for ax, group in zip(axes.flat, groups):
        for key in group:
            points = [(row["step"], row[key]) for row in log_history if key in row]
            ax.plot(*zip(*points), marker="o", ms=3, label=key)
        ax.set(title=" vs ".join(group), xlabel="step")
        ax.grid(alpha=0.3)
        if len(group) > 1:
            ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig

def before_after(table: Any, title: str, ylim: tuple[float, float] | None = (0, 1)) -> Any:
    """Grouped bars: one group per row of `table` (a DataFrame), one bar per column (before, after, ...)."""
    ax = table.plot.bar(rot=0, figsize=(1.6 + 1.9 * len(table), 3.2), title=title)
    for container in ax.containers:
        ax.bar_label(container, fmt="%.2f", fontsize=8)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    ax.figure.tight_layout()
    return ax.figure

def dial_chart(runs: Any, start: dict[str, float], measures: list[str], dials: list[str]) -> Any:
    """One row of panels per dial: each measure against the dial's values, one line per other setting."""
    fig, axes = plt.subplots(len(dials), len(measures), figsize=(3.3 * len(measures), 2.7 * len(dials)), squeeze=False)
    for row, dial in zip(axes, dials):
        varied = runs[runs["dial"] == dial]
        for ax, measure in zip(row, measures):
            for label, group in varied.groupby("series", sort=False):
                ax.plot(group["value"].astype(str), group[measure], marker="o", label=label)
            ax.axhline(start[measure], color="#999", ls=":", label="start")
            ax.set(title=measure, xlabel=dial)
            ax.grid(alpha=0.3)
        row[0].legend(fontsize=7)
    fig.tight_layout()
    return fig
