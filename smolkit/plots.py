"""Figures and small HTML views for the notebooks."""

from __future__ import annotations

import html
import json
import textwrap
from typing import Any

import matplotlib.pyplot as plt


def pipeline_diagram() -> Any:
    """The three stages of a chat model's life, with where SFT and DPO sit."""
    fig, ax = plt.subplots(figsize=(9, 2.6))
    stages = [("Pre-training", "next-token prediction\non trillions of tokens", "base model"),
              ("Post-training", "SFT: imitate good answers\nDPO: prefer better answers", "instruct / chat model"),
              ("Deployment", "serve, measure,\ncollect feedback", "assistant in use")]
    for i, (title, body, result) in enumerate(stages):
        x = i * 3.2
        color = "#fde2b3" if i == 1 else "#dfe9f5"
        ax.add_patch(plt.Rectangle((x, 0.2), 2.6, 1.6, facecolor=color, edgecolor="#333", lw=1.2))
        ax.text(x + 1.3, 1.5, title, ha="center", va="center", fontsize=12, weight="bold")
        ax.text(x + 1.3, 0.95, body, ha="center", va="center", fontsize=9)
        ax.text(x + 1.3, 0.0, result, ha="center", va="top", fontsize=9, style="italic", color="#555")
        if i < 2:
            ax.annotate("", xy=(x + 3.15, 1.0), xytext=(x + 2.65, 1.0),
                        arrowprops={"arrowstyle": "->", "lw": 1.5})
    ax.set_xlim(-0.2, 9.2)
    ax.set_ylim(-0.5, 2.0)
    ax.axis("off")
    ax.set_title("Where post-training sits (this course covers the orange box)", fontsize=11)
    fig.tight_layout()
    return fig


def token_view_html(pairs: list[tuple[str, bool]], tokenizer: Any | None = None) -> str:
    """HTML of tokens, those that carry loss highlighted in green and the rest greyed out."""
    spans = []
    for piece, trained in pairs:
        text = tokenizer.convert_tokens_to_string([piece]) if tokenizer is not None else piece
        shown = html.escape(text).replace("\n", "↵<br>") or "&nbsp;"
        style = "background:#c8f0c8;color:#000" if trained else "background:#eee;color:#888"
        spans.append(f'<span style="{style};border:1px solid #ccc;margin:1px;padding:0 2px;'
                     f'font-family:monospace;white-space:pre">{shown}</span>')
    legend = ('<p><span style="background:#c8f0c8;padding:0 4px">green</span>: trained on (loss) &nbsp; '
              '<span style="background:#eee;color:#888;padding:0 4px">grey</span>: context only</p>')
    return legend + '<div style="line-height:2">' + "".join(spans) + "</div>"


def side_by_side_html(columns: dict[str, Any]) -> str:
    """An HTML table with one column per title, each cell pretty-printed JSON."""
    head = "".join(f"<th style='text-align:left'>{html.escape(t)}</th>" for t in columns)
    cells = "".join(
        "<td style='vertical-align:top;text-align:left'><pre style='white-space:pre-wrap;font-size:11px'>"
        f"{html.escape(json.dumps(v, indent=2, ensure_ascii=False))}</pre></td>" for v in columns.values()
    )
    return f"<table><tr>{head}</tr><tr>{cells}</tr></table>"


def training_curves(log_history: list[dict], panels: list[str | tuple[str, ...]], title: str = "",
                    columns: int = 4) -> Any:
    """One panel per logged metric (a tuple of metrics shares a panel) from a Trainer's `state.log_history`."""
    groups = [(p,) if isinstance(p, str) else tuple(p) for p in panels]
    groups = [g for g in groups if any(k in row for row in log_history for k in g)]
    cols = min(columns, len(groups))
    rows = -(-len(groups) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.flat[len(groups):]:
        ax.set_visible(False)
    for ax, group in zip(axes.flat, groups):
        for key in group:
            points = [(row["step"], row[key]) for row in log_history if key in row and "step" in row]
            ax.plot([s for s, _ in points], [v for _, v in points], marker="o", ms=3, label=key)
        ax.set_title(" vs ".join(group))
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if len(group) > 1:
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def dpo_loss_curves(betas: tuple[float, ...] = (0.05, 0.1, 0.5, 1.0), span: float = 20.0) -> Any:
    """DPO's loss -log sigmoid(beta * m) against the log-ratio margin m, for several betas."""
    import numpy as np

    margin = np.linspace(-span, span, 401)
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for beta in betas:
        ax.plot(margin, np.logaddexp(0.0, -beta * margin), label=f"beta = {beta}")
    ax.axvline(0, color="#999", lw=0.8)
    ax.set_xlabel("margin m = [log pi/pi_ref](chosen) - [log pi/pi_ref](rejected)  (nats)")
    ax.set_ylabel("DPO loss")
    ax.set_title("Small beta: a gentle, long push. Large beta: a sharp, short one.")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _tick_label(label: Any, many: bool) -> str:
    """A bar's label: two lines at the first space, or wrapped at 14 characters when bars are many."""
    return textwrap.fill(str(label), 14) if many else str(label).replace(" ", "\n", 1)


def variant_chart(table: Any, stages: Any, title: str = "") -> Any:
    """Four panels: held-out rates and reply length per variant (rows of `table`), time and memory per stage.

    `table` has one row per variant and the columns format_compliance, exact_match, preference_accuracy,
    mean_words; `stages` has one row per training stage and the columns seconds and added_mib. Up to four
    variants and three stages the panels stand in one row; more bars get a 2 x 2 grid with wrapped labels.
    """
    import matplotlib.pyplot as plt

    many = len(table) > 4 or len(stages) > 3
    if many:
        fig, grid = plt.subplots(2, 2, figsize=(15, 8.5))
        axes = list(grid.ravel())
    else:
        fig, axes = plt.subplots(1, 4, figsize=(16, 3.6), gridspec_kw={"width_ratios": [2.2, 1, 1, 1]})
    rates = table[["format_compliance", "exact_match", "preference_accuracy"]]
    rates.T.plot.bar(ax=axes[0], rot=0, width=0.8)
    axes[0].set_ylim(0, 1.3 if many else 1.05)  # many: room above the bars for a legend of three columns
    axes[0].set_title("held-out rates (higher is better)")
    axes[0].legend(fontsize=8, **({"loc": "upper center", "ncol": 3} if many else {"loc": "upper right"}))
    colors = [f"C{i}" for i in range(len(table))]
    axes[1].bar(range(len(table)), table["mean_words"], color=colors)
    axes[1].set_title("mean words per reply")
    axes[2].bar(range(len(stages)), stages["seconds"], color="#7a9cc6")
    axes[2].set_title("training time per stage (s)")
    axes[3].bar(range(len(stages)), stages["added_mib"], color="#c69a7a")
    axes[3].set_title("memory added by a stage (MiB)")
    for ax, labels in ((axes[1], table.index), (axes[2], stages.index), (axes[3], stages.index)):
        ax.set_xticks(range(len(labels)), [_tick_label(label, many) for label in labels], fontsize=8)
    for ax in axes:
        ax.grid(axis="y", alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


DIAL_OUTCOMES = ("replies_changed", "refusal_rate_on_unsafe", "format_request_kept", "filler_opening_rate",
                 "sft_format_compliance", "logp_per_token_accuracy")


def dial_chart(runs: Any, start: dict[str, float], learning_rate: float, beta: float, title: str = "") -> Any:
    """Three panels, one per dial (learning rate, beta, loss type), each run's held-out outcomes against it.

    `runs` has one row per run with the columns learning_rate, beta, loss_type and DIAL_OUTCOMES. A panel shows
    the runs that differ from (learning_rate, beta, "sigmoid") in its own dial only; dotted lines are `start`.
    """
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2), sharey=True, gridspec_kw={"width_ratios": [1, 1, 1.3]})
    panels = [("learning_rate", (runs["beta"] == beta) & (runs["loss_type"] == "sigmoid"), "log"),
              ("beta", (runs["learning_rate"] == learning_rate) & (runs["loss_type"] == "sigmoid"), "log"),
              ("loss_type", (runs["learning_rate"] == learning_rate) & (runs["beta"] == beta), None)]
    for ax, (dial, chosen, scale) in zip(axes, panels):
        shown = runs[chosen].sort_values(dial) if scale else runs[chosen]
        x = shown[dial].tolist() if scale else list(range(len(shown)))
        for i, outcome in enumerate(DIAL_OUTCOMES):
            ax.plot(x, shown[outcome], marker="o", color=f"C{i}", label=outcome)
            if outcome in start:
                ax.axhline(start[outcome], color=f"C{i}", ls=":", lw=1)
        if scale and len(shown):
            ax.set_xscale(scale)
            ax.set_xticks(sorted(set(x)), [f"{v:g}" for v in sorted(set(x))])  # the grid's values, nothing between
            ax.minorticks_off()
        else:
            ax.set_xticks(x, shown[dial].tolist(), rotation=20, fontsize=8)
        fixed = {"learning_rate": f"beta {beta:g}, sigmoid", "beta": f"lr {learning_rate:g}, sigmoid",
                 "loss_type": f"lr {learning_rate:g}, beta {beta:g}"}[dial]
        ax.set_title(f"{dial} ({fixed})" if len(shown) else f"{dial}: no run in this grid", fontsize=10)
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("share of held-out items")
    axes[-1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.suptitle(title or "DPO's dials against held-out outcomes (dotted: the starting model)")
    fig.tight_layout()
    return fig
