"""Figures and small HTML views for the notebooks."""

from __future__ import annotations

import html
import json
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
