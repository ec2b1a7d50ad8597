"""Two interactive views (core ipywidgets): a beta slider over DPO's loss, and a chat panel comparing models.

Each also carries a static version in the same output, so a run without a widget frontend (papermill, nbval,
GitHub) keeps the figure or the replies; JupyterLab, VS Code and Colab show the live widget.
"""

from __future__ import annotations

import base64
import html
import io
import math
from typing import Any

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"

def dpo_loss(margin: float, beta: float) -> float:
    """DPO's per-pair loss, -log sigmoid(beta * margin), computed stably."""
    z = beta * margin
    return math.log1p(math.exp(-z)) if z > -30 else -z

def push(margin: float, beta: float) -> float:
    """How hard DPO still pushes a pair: sigmoid(-beta * margin), 1 for a wrong pair, near 0 once learned."""
    z = beta * margin
    return 1.0 / (1.0 + math.exp(z)) if z < 30 else 0.0

def beta_summary(beta: float, margins: tuple[float, ...] = (-5.0, 0.0, 5.0, 20.0)) -> str:
    """The loss and the remaining push at a few margins, in one line."""
    parts = [f"m={m:+g}: loss {dpo_loss(m, beta):.3f}, push {push(m, beta):.2f}" for m in margins]
    return f"beta={beta:g} | " + " | ".join(parts)

def beta_png(beta: float) -> bytes:
    """The DPO loss against the margin at one beta, as PNG bytes."""
    import numpy as np
    from matplotlib.figure import Figure

    margin = np.linspace(-20, 20, 401)
    fig = Figure(figsize=(6, 3.0))
    ax = fig.subplots()
    ax.plot(margin, np.logaddexp(0.0, -beta * margin))
    ax.set(xlabel="margin m (nats)", ylabel="DPO loss", title=f"beta = {beta:.3g}")
    ax.grid(alpha=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return buf.getvalue()

def _bundle(text: str, png: bytes | None = None, html_text: str | None = None) -> dict[str, Any]:
    """A static MIME bundle: plain text, and a PNG or HTML where given."""
    data: dict[str, Any] = {"text/plain": text}
    if png is not None:
        data["image/png"] = base64.b64encode(png).decode("ascii")
    if html_text is not None:
        data["text/html"] = html_text
    return data

def show(widget: Any, fallback: dict[str, Any]) -> None:
    """Display a widget and its static version in one output; the frontend shows the richest it can."""
    from IPython.display import display

    display({**widget._repr_mimebundle_(), **fallback}, raw=True)

def show_beta_explorer(beta: float = 0.1) -> None:
    """A beta slider that redraws DPO's loss curve and the push left at a few margins."""
    import ipywidgets as widgets

    slider = widgets.FloatLogSlider(value=beta, base=10, min=-2, max=1, step=0.05, description="beta",
                                    continuous_update=False, readout_format=".3f")
    out = widgets.Output()

    def draw(change: Any = None) -> None:
        data = _bundle("<figure>", beta_png(slider.value))
        out.outputs = ({"output_type": "display_data", "data": data, "metadata": {}},
                       {"output_type": "stream", "name": "stdout", "text": beta_summary(slider.value) + "\n"})

    slider.observe(draw, names="value")
    draw()
    show(widgets.VBox([slider, out]), _bundle(beta_summary(beta), beta_png(beta)))

def reply(model: Any, tokenizer: Any, prompt: str, max_new_tokens: int = 64, temperature: float = 0.0,
          seed: int = 0) -> str:
    """One reply to a one-turn prompt: greedy at temperature 0, else sampled with a seed (so repeatable)."""
    import torch

    ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                        tokenize=True, return_dict=True, return_tensors="pt").to(model.device)
    sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
    was_training = model.training
    model.eval()
    try:
        torch.manual_seed(seed)
        with torch.no_grad():
            out = model.generate(**ids, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                                 eos_token_id=tokenizer.eos_token_id, **sampling)
    finally:
        model.train(was_training)
    return tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).strip()

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

    def replies_to(text: str, **settings: Any) -> dict[str, str]:
        return {name: reply(m, tok, text, max_new_tokens, **settings) for name, (m, tok) in models.items()}

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
    show(panel, _bundle(text, html_text=compare_html(prompt, first)))
