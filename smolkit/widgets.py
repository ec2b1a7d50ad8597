"""Interactive views (core ipywidgets only). The logic lives in plain functions that tests call."""

from __future__ import annotations

import math
from typing import Any


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


def beta_explorer(initial: float = 0.1) -> Any:
    """A beta slider that redraws the DPO loss curve and prints the loss at a few margins."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    import numpy as np

    slider = widgets.FloatLogSlider(value=initial, base=10, min=-2, max=1, step=0.05, description="beta",
                                    continuous_update=False, readout_format=".3f")
    out = widgets.Output()

    def draw(change: Any = None) -> None:
        beta = slider.value
        margin = np.linspace(-20, 20, 401)
        with out:
            out.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=(6, 3.2))
            ax.plot(margin, np.logaddexp(0.0, -beta * margin))
            ax.set_xlabel("margin (nats)")
            ax.set_ylabel("DPO loss")
            ax.set_ylim(0, max(3.0, float(np.logaddexp(0.0, beta * 20))))
            ax.grid(alpha=0.3)
            plt.show()
            print(beta_summary(beta))

    slider.observe(draw, names="value")
    draw()
    return widgets.VBox([slider, out])
