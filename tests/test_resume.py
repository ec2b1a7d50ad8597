"""An interrupted training run resumes from its last checkpoint and ends with the same weights."""

import os
import subprocess
import sys
import textwrap

import pytest
import torch
from transformers import TrainerCallback
from trl import SFTConfig, SFTTrainer

from smolkit.data import load_sft
from smolkit.models import tiny_model
from smolkit.paths import remove_checkpoints, start_or_resume
from smolkit.templates import use_template


def config(out):
    return SFTConfig(output_dir=str(out), max_steps=6, save_steps=2, save_total_limit=1, per_device_train_batch_size=2,
                     learning_rate=1e-3, use_cpu=True, bf16=False, report_to="none", activation_checkpointing=False,
                     assistant_only_loss=True, max_length=256, seed=0, disable_tqdm=True, logging_steps=1)


def train(out, resume=False, callbacks=()):
    model, tok = tiny_model(seed=0)
    use_template(tok)
    trainer = SFTTrainer(model=model, args=config(out), train_dataset=load_sft(split="train").select(range(16)),
                         processing_class=tok, callbacks=list(callbacks))
    trainer.train(resume_from_checkpoint=start_or_resume(out, resume))
    return trainer.model


class StopAt(TrainerCallback):
    """Interrupt the run right after the checkpoint of a given step is written, as Ctrl+C would."""

    def __init__(self, step):
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt


def max_weight_diff(a, b):
    return max((x - y).abs().max().item() for x, y in zip(a.parameters(), b.parameters()))


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    return train(tmp_path_factory.mktemp("straight"))


def test_keyboard_interrupt_then_resume_gives_the_same_weights(straight, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        train(tmp_path, callbacks=[StopAt(4)])
    assert [p.name for p in tmp_path.glob("checkpoint-*")] == ["checkpoint-4"]
    resumed = train(tmp_path, resume=True)
    assert max_weight_diff(resumed, straight) <= 1e-6


KILLED_RUN = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {tests!r})
    from transformers import TrainerCallback
    import test_resume

    class Kill(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.global_step == 4:
                os.kill(os.getpid(), signal.SIGKILL)

    test_resume.train({out!r}, callbacks=[Kill()])
""")


def test_sigkilled_script_resumes_to_the_same_weights(straight, tmp_path):
    script = KILLED_RUN.format(tests=os.path.dirname(__file__), out=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == -9, done.stderr[-2000:]
    resumed = train(tmp_path, resume=True)
    assert max_weight_diff(resumed, straight) <= 1e-6


def test_a_fresh_run_clears_old_checkpoints_and_resume_without_one_starts_over(tmp_path, capsys):
    (tmp_path / "checkpoint-8").mkdir()
    assert start_or_resume(tmp_path, resume=True).endswith("checkpoint-8")
    assert start_or_resume(tmp_path, resume=False) is None and not list(tmp_path.iterdir())
    assert start_or_resume(tmp_path, resume=True) is None
    assert "starting from step 0" in capsys.readouterr().out
    (tmp_path / "checkpoint-2").mkdir()
    remove_checkpoints(tmp_path)
    assert not list(tmp_path.iterdir())


def test_checkpoints_keep_optimizer_state_and_are_capped(tmp_path):
    train(tmp_path)
    checkpoints = list(tmp_path.glob("checkpoint-*"))
    assert [p.name for p in checkpoints] == ["checkpoint-6"]  # save_total_limit=1
    names = {p.name for p in checkpoints[0].iterdir()}
    assert {"model.safetensors", "optimizer.pt", "scheduler.pt", "trainer_state.json"} <= names
    assert [n for n in names if n.endswith(".bin")] == ["training_args.bin"]  # weights only as safetensors
    assert torch.load(checkpoints[0] / "rng_state.pth", weights_only=False) is not None
