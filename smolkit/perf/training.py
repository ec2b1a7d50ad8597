"""Building a TRL trainer for a measurement, and watching it train: each step's time, and a held-out loss computed
in fp32 at chosen steps on a training clock that leaves those evaluations out."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from typing import Any

import torch
from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback


def sequence_lengths(row: dict[str, Any], tokenizer: Any) -> list[int]:
    """Tokens of each sequence the trainer builds from a row: the conversation (SFT), or prompt + each answer (DPO)."""
    def count(messages: list[dict]) -> int:
        """Tokens of a conversation through the chat template."""
        return len(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])
    if "messages" in row:
        return [count(row["messages"])]
    return [count(row["prompt"] + row[k]) for k in ("chosen", "rejected")]


def build_trainer(model: Any, tokenizer: Any, config: Any, train_dataset: Any, peft_config: Any = None,
                  callbacks: list | None = None) -> Any:
    """SFTTrainer or DPOTrainer for the config, printing nothing per step; DPO's reference is a frozen copy."""
    # ... except where TRL needs none: precompute_ref_log_probs, or LoRA (the model with its adapter off).
    from trl import DPOConfig, DPOTrainer, SFTTrainer

    common = {"model": model, "args": config, "train_dataset": train_dataset, "processing_class": tokenizer,
              "peft_config": peft_config, "callbacks": callbacks}
    if isinstance(config, DPOConfig):
        frozen = peft_config is None and not config.precompute_ref_log_probs
        trainer = DPOTrainer(ref_model=copy.deepcopy(model).eval().requires_grad_(False) if frozen else None, **common)
    else:
        trainer = SFTTrainer(**common)
    trainer.remove_callback(PrinterCallback)
    return trainer


def eval_steps(total_steps: int, evaluations: int) -> list[int]:
    """Steps after which to evaluate: every ceil(total / evaluations) steps, and always the last one."""
    every = max(1, math.ceil(total_steps / max(evaluations, 1)))
    return sorted(set(range(every, total_steps + 1, every)) | {total_steps})


def heldout_examples(rows: Any, tokenizer: Any, stage: str) -> list[dict[str, list[int]]]:
    """Token ids and loss masks of held-out rows: the assistant tokens (SFT); each answer, chosen first (DPO)."""
    def ids(messages: list[dict], **kwargs: Any) -> Any:
        """The chat template's tokenization of a conversation."""
        return tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, **kwargs)
    out = []
    for row in rows:
        if stage == "sft":
            enc = ids(row["messages"], return_assistant_tokens_mask=True)
            out.append({"ids": list(enc["input_ids"]), "mask": list(enc["assistant_masks"])})
            continue
        prompt = len(ids(row["prompt"], add_generation_prompt=True)["input_ids"])
        for answer in ("chosen", "rejected"):
            full = list(ids(row["prompt"] + row[answer])["input_ids"])
            out.append({"ids": full, "mask": [0] * prompt + [1] * (len(full) - prompt)})
    return out


@torch.no_grad()
def answer_logps(model: Any, examples: list[dict[str, list[int]]], batch_size: int = 8) -> torch.Tensor:
    """Summed log-prob of each example's masked tokens, and their count (n x 2): fp32 weights, fp32 forward."""
    # Autocast off, through the backbone and the LM head: past any forward a trainer wrapped (autocast, fused head).
    if next(model.parameters()).dtype != torch.float32:
        raise ValueError(f"held-out losses need fp32 weights, got {next(model.parameters()).dtype}")
    device, was_training = next(model.parameters()).device, model.training
    model.eval()
    rows = []
    with torch.autocast(device.type, enabled=False):
        for i in range(0, len(examples), batch_size):
            batch = examples[i:i + batch_size]
            width = max(len(e["ids"]) for e in batch)
            ids = torch.tensor([e["ids"] + [0] * (width - len(e["ids"])) for e in batch], device=device)
            mask = torch.tensor([e["mask"] + [0] * (width - len(e["mask"])) for e in batch], device=device)
            attention = torch.tensor([[1] * len(e["ids"]) + [0] * (width - len(e["ids"])) for e in batch],
                                     device=device)
            hidden = model.get_decoder()(input_ids=ids, attention_mask=attention).last_hidden_state
            logps = model.get_output_embeddings()(hidden[:, :-1]).float().log_softmax(-1)
            picked = logps.gather(-1, ids[:, 1:, None])[..., 0] * mask[:, 1:]
            rows.append(torch.stack([picked.sum(-1), mask[:, 1:].sum(-1).float()], -1))
    model.train(was_training)
    return torch.cat(rows).cpu()


def heldout_loss(model: Any, examples: list[dict], stage: str, reference: torch.Tensor | None = None,
                 beta: float = 0.1) -> float:
    """Held-out loss in fp32: SFT's per answer token, or DPO's sigmoid loss against `reference` (its answer_logps)."""
    logps = answer_logps(model, examples)
    if stage == "sft":
        return float(-logps[:, 0].sum() / logps[:, 1].sum())
    ratios = logps[:, 0] - reference[:, 0]
    return float(-torch.nn.functional.logsigmoid(beta * (ratios[0::2] - ratios[1::2])).mean())


class TrainingClock(TrainerCallback):
    """Each step's seconds; and `evaluate(model)` at the start and after `steps`, on a clock that leaves it out."""

    def __init__(self, evaluate: Callable[[Any], float] | None = None, steps: list[int] = ()) -> None:
        """`evaluate` maps the model to a held-out loss; `steps` are the global steps after which it runs."""
        self.evaluate, self.steps = evaluate, set(steps)
        self.step_times: list[float] = []
        self.curve: list[dict[str, float]] = []
        self.eval_seconds, self.started, self.step_start = 0.0, 0.0, 0.0

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        """Start the clock, and evaluate the start model."""
        self.started = time.perf_counter()
        self._evaluate(model, 0)

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Note when the step starts."""
        self.step_start = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        """Keep the step's time; evaluate after the chosen steps."""
        self.step_times.append(time.perf_counter() - self.step_start)
        if state.global_step in self.steps:
            self._evaluate(model, state.global_step)

    def _evaluate(self, model: Any, step: int) -> None:
        """Add one point to the curve, and its time to eval_seconds."""
        if self.evaluate is None:
            return
        began = time.perf_counter()
        loss = self.evaluate(model)
        self.curve.append({"step": step, "eval_loss": loss if math.isfinite(loss) else None,
                           "train_seconds": began - self.started - self.eval_seconds})
        self.eval_seconds += time.perf_counter() - began
