"""smolkit: the plumbing behind the SFT vs DPO course notebooks."""

from smolkit.hardware import describe, pick_device, pick_dtype
from smolkit.models import EMBEDDED, ModelLoadError, count_parameters, load_model, tiny_model
from smolkit.paths import data_dir, outputs_dir, save_metrics
from smolkit.profiles import PROFILES, Profile, get_profile
from smolkit.templates import render, use_template

__all__ = [
    "EMBEDDED", "PROFILES", "ModelLoadError", "Profile", "count_parameters", "data_dir", "describe",
    "get_profile", "load_model", "outputs_dir", "pick_device", "pick_dtype", "render", "save_metrics",
    "tiny_model", "use_template",
]
