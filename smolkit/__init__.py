"""smolkit: the lessons' plumbing (training is stock TRL, in the notebooks); `smolkit.perf` serves 04 and bench."""

import datasets

from smolkit.chat import loss_tokens, preflight, render, use_template
from smolkit.data import load_preferences, load_sft
from smolkit.evaluation import completion_logps, generate, preference_accuracy
from smolkit.models import load_model, save_model
from smolkit.pairs import onpolicy_pairs, style_anchors, worse_than_chosen
from smolkit.plots import before_after, dial_chart, token_view_html, training_curves
from smolkit.profiles import get_profile, training_settings
from smolkit.replies import refusal, reply_measures, sft_metrics
from smolkit.runtime import (
    data_dir,
    device_name,
    mixed_precision,
    outputs_dir,
    read_json,
    read_metrics,
    run_facts,
    save_metrics,
    write_json,
)
from smolkit.widgets import show_beta_explorer, show_compare

datasets.disable_progress_bars()  # datasets.map's bars (TRL tokenizing) would fill every executed notebook

__all__ = [name for name in dir() if not name.startswith("_") and name not in {
    "datasets", "chat", "data", "evaluation", "models", "pairs", "plots", "profiles", "replies", "runtime", "widgets"}]
