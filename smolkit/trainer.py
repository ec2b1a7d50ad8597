"""The one place outside the notebooks that builds a TRL trainer (used by `measure`, notebook 04 and `make bench`)."""

from __future__ import annotations

import copy
from typing import Any


def build_trainer(model: Any, tokenizer: Any, config: Any, train_dataset: Any, eval_dataset: Any = None,
                  peft_config: Any = None) -> Any:
    """SFTTrainer for an SFTConfig, DPOTrainer for a DPOConfig; a DPO reference is a frozen copy of `model`.

    No copy where TRL needs none: with `precompute_ref_log_probs` (it scores the model before training) or with
    a LoRA `peft_config` (the reference is the model with the adapter switched off).
    """
    from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

    common = {"model": model, "args": config, "train_dataset": train_dataset, "eval_dataset": eval_dataset,
              "processing_class": tokenizer, "peft_config": peft_config}
    if isinstance(config, DPOConfig):
        frozen = peft_config is None and not config.precompute_ref_log_probs
        ref = copy.deepcopy(model).eval().requires_grad_(False) if frozen else None
        return DPOTrainer(ref_model=ref, **common)
    if isinstance(config, SFTConfig):
        return SFTTrainer(**common)
    raise TypeError(f"expected an SFTConfig or a DPOConfig, got {type(config).__name__}")
