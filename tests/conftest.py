"""Shared test setup: offline, smoke profile, outputs under a test folder."""

import os

# Set before transformers/huggingface_hub are imported by any test module.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("SMOLKIT_PROFILE", "smoke")
os.environ.setdefault("MPLBACKEND", "Agg")
