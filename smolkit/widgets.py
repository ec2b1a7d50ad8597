"""Interactive views (core ipywidgets only). The logic lives in plain functions that tests call.

Each view comes with a static version: `show(widget, fallback)` displays both in one output, and the
frontend picks. JupyterLab, Notebook, VS Code and Colab render the live widget; a run without a
widget frontend (papermill, nbval, nbconvert, GitHub) keeps the static text, figure or table.
"""

from __future__ import annotations

import base64
import html
import io
import math
import time
from typing import Any

from smolkit.decision import GOALS, explain, recommend

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
DEFAULT_PROMPT = "Give me one tip for writing clear emails."


# ---------------------------------------------------------------- shared plumbing


def figure_png(fig: Any) -> bytes:
    """A matplotlib figure rendered to PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    return buf.getvalue()


def static(text: str, png: bytes | None = None, html_text: str | None = None) -> dict[str, Any]:
    """A static MIME bundle: plain text always, plus an optional PNG image and HTML."""
    bundle: dict[str, Any] = {"text/plain": text}
    if png is not None:
        bundle["image/png"] = base64.b64encode(png).decode("ascii")
    if html_text is not None:
        bundle["text/html"] = html_text
    return bundle


def output_items(text: str | None = None, png: bytes | None = None, html_text: str | None = None) -> tuple:
    """Outputs for an ipywidgets `Output` (set on `out.outputs`): an image/HTML, then printed text."""
    items: list[dict[str, Any]] = []
    if png is not None or html_text is not None:
        data = static("", png, html_text)
        data["text/plain"] = "<figure>" if png is not None else "<html>"
        items.append({"output_type": "display_data", "data": data, "metadata": {}})
    if text is not None:
        items.append({"output_type": "stream", "name": "stdout", "text": text + "\n"})
    return tuple(items)


def with_fallback(widget: Any, fallback: dict[str, Any]) -> dict[str, Any]:
    """One MIME bundle holding the live widget view and its static version (the frontend picks the richest)."""
    return {**widget._repr_mimebundle_(), **fallback}


def show(widget: Any, fallback: dict[str, Any]) -> None:
    """Display a widget; where no widget frontend is attached, the static fallback is what shows."""
    from IPython.display import display

    display(with_fallback(widget, fallback), raw=True)


# ---------------------------------------------------------------- DPO beta explorer


def dpo_loss(margin: float, beta: float) -> float:
    """DPO's per-pair loss, -log sigmoid(beta * margin), computed stably."""
    z = beta * margin
    return math.log1p(math.exp(-z)) if z > -30 else -z


def dpo_gradient_weight(margin: float, beta: float) -> float:
    """How hard DPO still pushes a pair: sigmoid(-beta * margin), 1 for a wrong pair, 0 once learned."""
    z = beta * margin
    return 1.0 / (1.0 + math.exp(z)) if z < 30 else 0.0


def beta_summary(beta: float, margins: tuple[float, ...] = (-5.0, 0.0, 5.0, 20.0)) -> str:
    """A one-line reading of the loss and the remaining push at a few margins."""
    parts = [f"m={m:+g}: loss {dpo_loss(m, beta):.3f}, push {dpo_gradient_weight(m, beta):.2f}" for m in margins]
    return f"beta={beta:g} | " + " | ".join(parts)


def beta_figure(beta: float) -> Any:
    """The DPO loss against the reward margin at one beta (a pyplot-free matplotlib Figure)."""
    import numpy as np
    from matplotlib.figure import Figure

    margin = np.linspace(-20, 20, 401)
    fig = Figure(figsize=(6, 3.2))
    ax = fig.subplots()
    ax.plot(margin, np.logaddexp(0.0, -beta * margin))
    ax.set_xlabel("margin (nats)")
    ax.set_ylabel("DPO loss")
    ax.set_title(f"beta = {beta:.3g}")
    ax.set_ylim(0, max(3.0, float(np.logaddexp(0.0, beta * 20))))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def beta_static(beta: float) -> dict[str, Any]:
    """The beta explorer's static version: the curve at one beta and the summary line."""
    return static(beta_summary(beta), figure_png(beta_figure(beta)))


def beta_explorer(initial: float = 0.1) -> Any:
    """A beta slider that redraws the DPO loss curve and prints the loss at a few margins."""
    import ipywidgets as widgets

    slider = widgets.FloatLogSlider(value=initial, base=10, min=-2, max=1, step=0.05, description="beta",
                                    continuous_update=False, readout_format=".3f")
    out = widgets.Output()

    def draw(change: Any = None) -> None:
        beta = slider.value
        out.outputs = output_items(beta_summary(beta), figure_png(beta_figure(beta)))

    slider.observe(draw, names="value")
    draw()
    return widgets.VBox([slider, out])


def show_beta_explorer(beta: float = 0.1) -> None:
    """Display the beta explorer, with the curve at `beta` as its static version."""
    show(beta_explorer(beta), beta_static(beta))


# ---------------------------------------------------------------- chat and compare panel


def reply(model: Any, tokenizer: Any, prompt: str, max_new_tokens: int = 64, temperature: float = 0.0,
          top_p: float = 1.0, seed: int = 0) -> str:
    """One reply to a single-turn prompt: greedy at temperature 0, else sampled (seeded, so repeatable)."""
    import torch

    ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                        tokenize=True, return_dict=True, return_tensors="pt").to(model.device)
    sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p} if temperature > 0 else {
        "do_sample": False}
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


def compare_replies(models: dict[str, tuple[Any, Any]], prompt: str, **settings: Any) -> dict[str, str]:
    """The reply of each named (model, tokenizer) to the same prompt under the same settings."""
    if not prompt.strip():
        raise ValueError("the prompt is empty: type a question or instruction first")
    return {name: reply(model, tok, prompt, **settings) for name, (model, tok) in models.items()}


def compare_text(prompt: str, replies: dict[str, str]) -> str:
    """The replies as plain text, one block per model."""
    blocks = [f"prompt: {prompt}"] + [f"--- {name}\n{text or '(empty reply)'}" for name, text in replies.items()]
    return "\n".join(blocks)


def compare_html(prompt: str, replies: dict[str, str]) -> str:
    """The replies side by side as an HTML table, one column per model (all text escaped)."""
    head = "".join(f"<th style='text-align:left;padding:4px 8px'>{html.escape(n)}</th>" for n in replies)
    cells = "".join(f"<td style='vertical-align:top;text-align:left;white-space:pre-wrap;padding:4px 8px;"
                    f"border-top:1px solid #ccc'>{html.escape(t) or '<i>(empty reply)</i>'}</td>"
                    for t in replies.values())
    return (f"<div class='smolkit-compare'><p><b>prompt:</b> <span class='smolkit-prompt'>{html.escape(prompt)}"
            f"</span></p><table style='width:100%;table-layout:fixed'><tr>{head}</tr><tr>{cells}</tr></table></div>")


def compare_panel(models: dict[str, tuple[Any, Any]], prompt: str = DEFAULT_PROMPT, max_new_tokens: int = 64,
                  replies: dict[str, str] | None = None) -> Any:
    """A prompt box, generation settings and a Generate button; the models' replies appear side by side."""
    import ipywidgets as widgets

    wide = widgets.Layout(width="95%")
    box = widgets.Textarea(value=prompt, description="prompt", layout=wide, rows=2)
    tokens = widgets.IntSlider(value=max_new_tokens, min=8, max=256, step=8, description="max tokens")
    temperature = widgets.FloatSlider(value=0.0, min=0.0, max=1.5, step=0.1, description="temperature",
                                      tooltip="0 means greedy decoding")
    top_p = widgets.FloatSlider(value=0.9, min=0.1, max=1.0, step=0.05, description="top-p")
    seed = widgets.IntText(value=0, description="seed", layout=widgets.Layout(width="160px"))
    button = widgets.Button(description="Generate", button_style="primary", icon="play")
    status = widgets.Label("greedy decoding when temperature is 0; top-p and seed apply when sampling")
    result = widgets.HTML()

    def run(_: Any = None) -> None:
        start = time.perf_counter()
        status.value = "generating..."
        try:
            found = compare_replies(models, box.value, max_new_tokens=tokens.value, temperature=temperature.value,
                                    top_p=top_p.value, seed=seed.value)
        except ValueError as err:
            status.value = str(err)
            return
        result.value = compare_html(box.value, found)
        status.value = f"{len(found)} replies in {time.perf_counter() - start:.1f} s"

    button.on_click(run)
    if replies is None:
        run()
    else:
        result.value = compare_html(prompt, replies)
    settings = widgets.HBox([tokens, temperature, top_p, seed])
    return widgets.VBox([box, settings, widgets.HBox([button, status]), result])


def show_compare(models: dict[str, tuple[Any, Any]], prompt: str = DEFAULT_PROMPT, max_new_tokens: int = 64) -> None:
    """Display the compare panel; its static version is the greedy replies to `prompt`."""
    replies = compare_replies(models, prompt, max_new_tokens=max_new_tokens)
    panel = compare_panel(models, prompt, max_new_tokens, replies=replies)
    show(panel, static(compare_text(prompt, replies), html_text=compare_html(prompt, replies)))


def saved_models(names: tuple[str, ...] = ("embedded", "sft", "dpo")) -> dict[str, tuple[Any, Any]]:
    """The course's saved models, for generation only (half precision on a GPU): the start and outputs/models/<name>."""
    from smolkit.hardware import pick_device, pick_dtype
    from smolkit.models import load_model
    from smolkit.paths import outputs_dir

    device = pick_device()
    found: dict[str, tuple[Any, Any]] = {}
    for name in names:
        folder = outputs_dir() / "models" / name
        if name == "embedded":
            found["start (embedded instruct)"] = load_model("embedded", device=device, dtype=pick_dtype(device))
        elif folder.is_dir():
            found[name.upper()] = load_model(str(folder), device=device, dtype=pick_dtype(device))
    return found


# ---------------------------------------------------------------- when to use each: the decision helper

DEMO_LABEL = "I have demonstrations (prompt + good reply)"
PAIR_LABEL = "I have preference pairs (chosen vs rejected)"
FOLLOWS_LABEL = "The model already follows instructions"


def decision_html(rec: Any) -> str:
    """A recommendation as HTML: the method in bold, then the reasoning and the data still needed."""
    body = html.escape(explain(rec).split("\n", 1)[1].strip("\n"))
    return (f"<div class='smolkit-decision'><p style='font-size:1.2em'>Recommended: "
            f"<b class='smolkit-method'>{html.escape(rec.method)}</b></p><pre style='white-space:pre-wrap'>{body}"
            "</pre></div>")


def decision_table() -> str:
    """Every combination of the helper's answers and the method it recommends, as a plain-text table."""
    rows = [f"{'follows':<8} {'demos':<6} {'pairs':<6} | " + " | ".join(f"{g:<27}" for g in GOALS)]
    for follows in (True, False):
        for demos in (True, False):
            for pairs in (True, False):
                picks = [recommend(has_demonstrations=demos, has_preferences=pairs, follows_instructions=follows,
                                   goal=g).method for g in GOALS]
                yes = {True: "yes", False: "no"}
                rows.append(f"{yes[follows]:<8} {yes[demos]:<6} {yes[pairs]:<6} | "
                            + " | ".join(f"{p:<27}" for p in picks))
    return "\n".join(row.rstrip() for row in rows)


def decision_static(has_demonstrations: bool = False, has_preferences: bool = True,
                    follows_instructions: bool = True, goal: str = "tone, style or safety") -> dict[str, Any]:
    """The decision helper's static version: one worked recommendation and the full table of cases."""
    rec = recommend(has_demonstrations=has_demonstrations, has_preferences=has_preferences,
                    follows_instructions=follows_instructions, goal=goal)
    table = decision_table()
    return static(explain(rec) + "\n\nEvery case:\n" + table,
                  html_text=decision_html(rec) + f"<p>Every case:</p><pre>{html.escape(table)}</pre>")


def decision_helper(has_demonstrations: bool = False, has_preferences: bool = True,
                    follows_instructions: bool = True, goal: str = "tone, style or safety") -> Any:
    """Three checkboxes and a goal menu; the recommendation and its reasons update on every change."""
    import ipywidgets as widgets

    wide = widgets.Layout(width="auto")
    demos = widgets.Checkbox(value=has_demonstrations, description=DEMO_LABEL, indent=False, layout=wide)
    pairs = widgets.Checkbox(value=has_preferences, description=PAIR_LABEL, indent=False, layout=wide)
    follows = widgets.Checkbox(value=follows_instructions, description=FOLLOWS_LABEL, indent=False, layout=wide)
    goal_menu = widgets.Dropdown(options=GOALS, value=goal, description="goal")
    result = widgets.HTML()

    def update(change: Any = None) -> None:
        rec = recommend(has_demonstrations=demos.value, has_preferences=pairs.value,
                        follows_instructions=follows.value, goal=goal_menu.value)
        result.value = decision_html(rec)

    for control in (demos, pairs, follows, goal_menu):
        control.observe(update, names="value")
    update()
    return widgets.VBox([follows, demos, pairs, goal_menu, result])


def show_decision_helper(**answers: Any) -> None:
    """Display the decision helper; its static version is one worked case plus the table of all cases."""
    show(decision_helper(**answers), decision_static(**answers))
