"""smolkit.runtime: precision per device, strict JSON, atomic writes."""

import json
import math

import pytest
import torch

from smolkit import runtime
from smolkit.runtime import mixed_precision, save_metrics, write_json, write_text


@pytest.mark.parametrize("device, bf16_supported, expected", [
    ("cpu", True, {"bf16": False, "fp16": False}),  # a CPU trains fp32 every day, whatever it could do
    ("mps", True, {"bf16": False, "fp16": False}),
    ("cuda", True, {"bf16": True, "fp16": False}),  # an A100 or H100
    ("cuda", False, {"bf16": False, "fp16": True}),  # a T4: fp16, which the Trainer pairs with loss scaling
])
def test_mixed_precision_per_device(monkeypatch, device, bf16_supported, expected):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16_supported)
    assert mixed_precision(device) == expected


def test_metrics_are_strict_json_with_null_for_nan(monkeypatch, tmp_path):
    monkeypatch.setenv("SMOLKIT_OUTPUTS", str(tmp_path))
    path = save_metrics("x", {"a": math.nan, "b": [math.inf, 1], "c": torch.tensor([0.5])})
    assert json.loads(path.read_text()) == {"a": None, "b": [None, 1], "c": [0.5]}


def test_an_interrupted_write_keeps_the_old_file(monkeypatch, tmp_path):
    path = write_text(tmp_path / "f.txt", "old")
    monkeypatch.setattr(runtime.os, "replace", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        write_text(path, "new")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_a_jsonl_path_gets_one_object_per_line(tmp_path):
    path = write_json(tmp_path / "rows.jsonl", [{"a": 1}, {"a": math.nan}])
    assert [json.loads(line) for line in path.read_text().splitlines()] == [{"a": 1}, {"a": None}]


def test_a_cpu_training_run_repeats_exactly(tiny, tmp_path):
    """Lessons train fp32 on a CPU, whatever the machine could do: the same run twice logs the same losses."""
    import copy

    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    model, tok = tiny
    pair = {"prompt": [{"role": "user", "content": "Hi"}], "chosen": [{"role": "assistant", "content": "Hello."}],
            "rejected": [{"role": "assistant", "content": "Go away, now."}]}
    logs = []
    for run in range(2):
        config = DPOConfig(output_dir=str(tmp_path / str(run)), max_steps=3, per_device_train_batch_size=2,
                           learning_rate=1e-3, loss_type=["sigmoid", "sft"], logging_steps=1, save_strategy="no",
                           report_to="none", use_cpu=True, activation_checkpointing=False, seed=0,
                           **mixed_precision("cpu"))
        trainer = DPOTrainer(model=copy.deepcopy(model), ref_model=copy.deepcopy(model).eval(), args=config,
                             train_dataset=Dataset.from_list([pair] * 6), processing_class=tok)
        trainer.train()
        logs.append([r["loss"] for r in trainer.state.log_history if "loss" in r])
    assert len(logs[0]) == 3 and logs[0] == logs[1] and logs[0][0] != logs[0][-1]
