"""The course data trains with TRL unchanged: SFT with assistant-only loss, DPO with a frozen reference."""

import copy
import math

from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

from smolkit.data import load_preferences, load_sft
from smolkit.models import tiny_model
from smolkit.profiles import get_profile
from smolkit.templates import use_template

COMMON = {"use_cpu": True, "bf16": False, "report_to": "none", "save_strategy": "no", "max_steps": 2,
          "logging_steps": 1, "activation_checkpointing": False, "disable_tqdm": True, "seed": 0}


def test_load_sft_output_trains_with_assistant_only_loss(tmp_path):
    model, tok = tiny_model()
    use_template(tok)
    train = load_sft(split="train").select(range(8))
    config = SFTConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, assistant_only_loss=True,
                       max_length=256, **COMMON)
    trainer = SFTTrainer(model=model, args=config, train_dataset=train, processing_class=tok)
    example = trainer.train_dataset[0]
    trained = [label for label in example["labels"] if label != -100]
    assert 0 < len(trained) < len(example["input_ids"])  # only the assistant's tokens carry loss
    assert trained[-1] == tok.eos_token_id  # ... including the end-of-turn token
    trainer.train()
    losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses)


def test_load_preferences_output_trains_with_dpo(tmp_path):
    model, tok = tiny_model()
    use_template(tok)
    ref = copy.deepcopy(model).eval()
    ref.requires_grad_(False)
    before = [p.detach().clone() for p in model.parameters()]
    train = load_preferences(split="train").select(range(8))
    config = DPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=2, max_length=256,
                       learning_rate=1e-4, **COMMON)
    trainer = DPOTrainer(model=model, ref_model=ref, args=config, train_dataset=train, processing_class=tok)
    trainer.train()
    logged = [row for row in trainer.state.log_history if "rewards/margins" in row]
    assert len(logged) == 2 and all(math.isfinite(row["loss"]) for row in logged)
    assert any(not p.equal(b) for p, b in zip(model.parameters(), before))  # the policy moved
    assert all(not p.requires_grad for p in ref.parameters())


def test_padding_free_batches_train_exactly_like_padded_ones(tmp_path):
    """The recommended padding-free SFT batches change the speed, not the training: same losses, same weights."""
    train = load_sft(split="train").select(range(8))
    results = []
    for padding_free in (False, True):
        model, tok = tiny_model(seed=1)
        use_template(tok)
        config = SFTConfig(output_dir=str(tmp_path / str(padding_free)), per_device_train_batch_size=4,
                           assistant_only_loss=True, padding_free=padding_free,
                           max_length=None if padding_free else 1024, learning_rate=1e-3,
                           train_sampling_strategy="sequential", **COMMON)
        trainer = SFTTrainer(model=model, args=config, train_dataset=train, processing_class=tok)
        trainer.train()
        losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
        results.append((losses, [p.detach().clone() for p in model.parameters()]))
    (padded_loss, padded_w), (free_loss, free_w) = results
    assert len(padded_loss) == 2 and all(math.isclose(a, b, rel_tol=1e-4) for a, b in zip(padded_loss, free_loss))
    assert max((a - b).abs().max().item() for a, b in zip(padded_w, free_w)) < 1e-4


def test_the_smoke_profile_writes_no_checkpoint_and_the_default_one_does(tmp_path):
    """The Trainer saves when training ends whatever save_steps says; only save_strategy="no" stops it."""
    train = load_sft(split="train").select(range(4))
    written = {}
    for name in ("smoke", "default"):
        P = get_profile(name)
        model, tok = tiny_model()
        use_template(tok)
        out = tmp_path / name
        config = SFTConfig(output_dir=str(out), max_steps=2, per_device_train_batch_size=2, assistant_only_loss=True,
                           save_strategy=P.save_strategy, save_steps=P.save_steps, save_total_limit=1,
                           **{k: v for k, v in COMMON.items() if k not in ("save_strategy", "max_steps")})
        SFTTrainer(model=model, args=config, train_dataset=train, processing_class=tok).train()
        written[name] = sorted(p.name for p in out.glob("checkpoint-*"))
    assert written == {"smoke": [], "default": ["checkpoint-2"]}  # default: save_steps 20, yet a checkpoint at step 2
