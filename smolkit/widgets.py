"""A beta slider over DPO's loss and a panel comparing models' replies, each with a static copy for papermill/GitHub."""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import numpy as np

from smolkit.evaluation import generate

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"

def beta_summary(beta: float, margins: tuple[float, ...] = (-5.0, 0.0, 5.0, 20.0)) -> str:
    """DPO's loss, -log sigmoid(beta m), and the push left, sigmoid(-beta m), at a few margins m, in one line."""
    parts = [f"m={m:+g}: loss {np.logaddexp(0, -beta * m):.3f}, push {np.exp(-np.logaddexp(0, beta * m)):.2f}"
             for m in margins]
    return f"beta={beta:g} | " + " | ".join(parts)

def beta_png(beta: float) -> str:
    """The DPO loss against the margin at one beta, as base64 PNG."""
    from matplotlib.figure import Figure

    margin = np.linspace(-20, 20, 401)
    fig = Figure(figsize=(6, 3.0))
    ax = fig.subplots()
    ax.plot(margin, np.logaddexp(0.0, -beta * margin))
    ax.set(xlabel="margin m (nats)", ylabel="DPO loss", title=f"beta = {beta:.3g}")
    ax.grid(alpha=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")

def show(widget: Any, text: str, png: str | None = None, html_text: str | None = None) -> None:
    """Display a widget with a static copy (text, a PNG or HTML) in one output; the frontend shows the richest."""
    from IPython.display import display

    static = {"text/plain": text, "image/png": png, "text/html": html_text}
    static = {mime: value for mime, value in static.items() if value}
    display({**widget._repr_mimebundle_(), **static}, raw=True)

def show_beta_explorer(beta: float = 0.1) -> None:
    """A beta slider that redraws DPO's loss curve and the push left at a few margins."""
    import ipywidgets as widgets

    slider = widgets.FloatLogSlider(value=beta, base=10, min=-2, max=1, step=0.05, description="beta",
                                    continuous_update=False, readout_format=".3f")
    out = widgets.Output()

    def draw(change: Any = None) -> None:
        data = {"text/plain": "<figure>", "image/png": beta_png(slider.value)}
        out.outputs = ({"output_type": "display_data", "data": data, "metadata": {}},
                       {"output_type": "stream", "name": "stdout", "text": beta_summary(slider.value) + "\n"})

    slider.observe(draw, names="value")
    draw()
    show(widgets.VBox([slider, out]), beta_summary(beta), beta_png(beta))

def compare_html(prompt: str, replies: dict[str, str]) -> str:
    """The replies side by side, one column per model (all text escaped)."""
    head = "".join(f"<th style='text-align:left'>{html.escape(name)}</th>" for name in replies)
    cells = "".join(f"<td style='vertical-align:top;text-align:left;white-space:pre-wrap'>"
                    f"{html.escape(text) or '<i>(empty reply)</i>'}</td>" for text in replies.values())
    return (f"<div class='smolkit-compare'><p><b>prompt:</b> <span class='smolkit-prompt'>{html.escape(prompt)}"
            f"</span></p><table style='width:100%;table-layout:fixed'><tr>{head}</tr><tr>{cells}</tr></table></div>")

def show_compare(models: dict[str, tuple[Any, Any]], prompt: str, max_new_tokens: int = 64) -> None:
    """A prompt box and a Generate button; each model's reply appears side by side (static: the greedy replies)."""
    import ipywidgets as widgets
    import torch

    def replies_to(text: str, temperature: float = 0.0, seed: int = 0) -> dict[str, str]:
        torch.manual_seed(seed)  # a sampled reply repeats with its seed
        return {name: generate(m, tok, [[{"role": "user", "content": text}]], max_new_tokens,
                               temperature=temperature)[0].text for name, (m, tok) in models.items()}

    first = replies_to(prompt)
    box = widgets.Textarea(value=prompt, description="prompt", layout=widgets.Layout(width="95%"), rows=2)
    temperature = widgets.FloatSlider(value=0.0, min=0.0, max=1.5, step=0.1, description="temperature")
    seed = widgets.IntText(value=0, description="seed", layout=widgets.Layout(width="160px"))
    button = widgets.Button(description="Generate", button_style="primary")
    status = widgets.Label("temperature 0: greedy decoding")
    result = widgets.HTML(compare_html(prompt, first))

    def run(_: Any = None) -> None:
        if not box.value.strip():
            status.value = "the prompt is empty: type a question or an instruction first"
            return
        status.value = "generating..."
        result.value = compare_html(box.value, replies_to(box.value, temperature=temperature.value, seed=seed.value))
        status.value = f"{len(models)} replies"

    button.on_click(run)
    panel = widgets.VBox([box, widgets.HBox([temperature, seed]), widgets.HBox([button, status]), result])
    text = "\n".join([f"prompt: {prompt}"] + [f"--- {name}\n{reply_text}" for name, reply_text in first.items()])
    show(panel, text, html_text=compare_html(prompt, first))
