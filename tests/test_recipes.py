"""smolkit.recipes: a saved run is reused only when its recipe matches; a mismatch or a missing file retrains.

Also smolkit.evalcache: a held-out result is read back only for the same weights, inputs and settings.
"""

import json

import pytest
import torch
from trl import DPOConfig, SFTConfig, SFTTrainer

from smolkit.data import load_sft
from smolkit.evalcache import cached_generate, cached_logps, weights_digest
from smolkit.models import RECIPE_FILE, save_model, tiny_model
from smolkit.recipes import REUSE, config_values, model_fingerprint, reuse_or_why, training_recipe
from smolkit.templates import use_template

ROWS = load_sft(split="train").select(range(2)).select_columns(["messages"])


def sft_config(tmp_path, **kw):
    values = {"max_steps": 1, "per_device_train_batch_size": 2, "learning_rate": 5e-5, "use_cpu": True, "bf16": False,
              "report_to": "none", "assistant_only_loss": True, "max_length": 256, "seed": 0, "disable_tqdm": True,
              "activation_checkpointing": False, **kw}
    return SFTConfig(output_dir=str(tmp_path / "checkpoints"), **values)


@pytest.fixture(scope="module")
def tiny():
    model, tok = tiny_model(seed=0)
    use_template(tok)
    return model, tok


def recipe_of(tmp_path, tok, rows=ROWS, start="start-model", seed=0, **config):
    return training_recipe("sft", sft_config(tmp_path, **config), rows, start, tok.chat_template, seed)


def train_or_reuse(folder, recipe, tok, tmp_path):
    """What notebook 03 does with a stage: load the saved model when the recipe matches, else train and save it."""
    decision = reuse_or_why(folder, recipe)
    if decision == REUSE:
        return "reused", decision
    model, _ = tiny_model(seed=0)
    trainer = SFTTrainer(model=model, args=sft_config(tmp_path), train_dataset=ROWS, processing_class=tok)
    trainer.train()
    save_model(trainer.model, tok, folder, recipe=recipe)
    return "trained", decision


def test_same_recipe_same_fingerprint_and_reporting_fields_do_not_count(tmp_path, tiny):
    _, tok = tiny
    a = recipe_of(tmp_path, tok)
    b = training_recipe("sft", sft_config(tmp_path / "elsewhere", logging_steps=7, save_steps=3, report_to="none"),
                        ROWS.to_list(), "start-model", tok.chat_template, 0)
    assert a["fingerprint"] == b["fingerprint"] and len(a["fingerprint"]) == 64
    values = config_values(sft_config(tmp_path))
    assert "learning_rate" in values and "max_steps" in values
    assert not {"output_dir", "logging_steps", "save_steps", "report_to"} & set(values)


@pytest.mark.parametrize("change", [
    {"learning_rate": 1e-4}, {"max_steps": 2}, {"rows": ROWS.select([1, 0])}, {"start": "another-model"},
    {"seed": 1}, {"template": True},
])
def test_every_input_of_the_recipe_changes_the_fingerprint(tmp_path, tiny, change):
    _, tok = tiny
    if change.get("template"):
        other = training_recipe("sft", sft_config(tmp_path), ROWS, "start-model", tok.chat_template + " ", 0)
    else:
        other = recipe_of(tmp_path, tok, **change)
    assert other["fingerprint"] != recipe_of(tmp_path, tok)["fingerprint"]


def test_saved_recipe_is_reused_and_a_mismatch_says_which_value(tmp_path, tiny):
    model, tok = tiny
    folder = tmp_path / "models" / "sft"
    recipe = recipe_of(tmp_path, tok)
    save_model(model, tok, folder, recipe=recipe)
    saved = json.loads((folder / RECIPE_FILE).read_text())
    assert saved["fingerprint"] == recipe["fingerprint"] and saved["inputs"]["config"]["learning_rate"] == 5e-5
    assert reuse_or_why(folder, recipe) == REUSE
    assert model_fingerprint(folder) == recipe["fingerprint"]  # the next stage's start model is this recipe
    why = reuse_or_why(folder, recipe_of(tmp_path, tok, learning_rate=1e-4))
    assert why.startswith("recipe differs") and "learning_rate 5e-05 vs 0.0001" in why
    assert "data.sha256" in reuse_or_why(folder, recipe_of(tmp_path, tok, rows=ROWS.select([0])))


def test_missing_or_unrecorded_models_are_not_reused(tmp_path, tiny):
    model, tok = tiny
    recipe = recipe_of(tmp_path, tok)
    assert reuse_or_why(tmp_path / "nothing", recipe).startswith("missing")
    save_model(model, tok, tmp_path / "plain")  # saved without a recipe
    assert RECIPE_FILE in reuse_or_why(tmp_path / "plain", recipe)
    digest = model_fingerprint(tmp_path / "plain")  # no recipe: the bytes of config.json and the weights
    assert digest and digest == model_fingerprint(tmp_path / "plain")
    save_model(model, tok, tmp_path / "broken", recipe=recipe)
    (tmp_path / "broken" / "model.safetensors").unlink()
    assert reuse_or_why(tmp_path / "broken", recipe).startswith("missing")
    no_start = training_recipe("sft", sft_config(tmp_path), ROWS, None, tok.chat_template, 0)
    assert no_start["fingerprint"] is None and "no fingerprint" in reuse_or_why(tmp_path / "plain", no_start)
    assert model_fingerprint("HuggingFaceTB/SmolLM2-135M") is None  # a hub id: never reused


def test_a_mismatch_or_a_missing_file_retrains(tmp_path, tiny):
    _, tok = tiny
    folder = tmp_path / "models" / "sft"
    recipe = recipe_of(tmp_path, tok)
    assert train_or_reuse(folder, recipe, tok, tmp_path)[0] == "trained"  # nothing saved yet
    assert train_or_reuse(folder, recipe, tok, tmp_path) == ("reused", REUSE)
    changed = recipe_of(tmp_path, tok, learning_rate=1e-4)
    did, why = train_or_reuse(folder, changed, tok, tmp_path)
    assert did == "trained" and "learning_rate" in why
    (folder / RECIPE_FILE).unlink()
    assert train_or_reuse(folder, changed, tok, tmp_path)[0] == "trained"
    assert train_or_reuse(folder, changed, tok, tmp_path)[0] == "reused"


def test_dpo_recipe_has_its_own_fields(tmp_path, tiny):
    _, tok = tiny
    config = DPOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to="none", beta=0.1, seed=0)
    pairs = [{"prompt": [{"role": "user", "content": "Hi"}], "chosen": [{"role": "assistant", "content": "Hello."}],
              "rejected": [{"role": "assistant", "content": "Go away."}]}]
    recipe = training_recipe("dpo", config, pairs, "sft-fingerprint", tok.chat_template, 0, reference="copy")
    assert recipe["inputs"]["config"]["beta"] == 0.1 and recipe["inputs"]["reference"] == "copy"
    config.beta = 0.5
    assert training_recipe("dpo", config, pairs, "sft-fingerprint", tok.chat_template, 0,
                           reference="copy")["fingerprint"] != recipe["fingerprint"]


def test_evaluations_are_cached_by_weights_inputs_and_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("SMOLKIT_OUTPUTS", str(tmp_path))
    model, tok = tiny_model(seed=0)
    use_template(tok)
    prompts = [[{"role": "user", "content": "What is 2 + 2?"}], [{"role": "user", "content": "Name a colour."}]]
    first, hit = cached_generate(model, tok, prompts, max_new_tokens=4)
    assert not hit
    again, hit = cached_generate(model, tok, prompts, max_new_tokens=4)
    assert hit and again == first
    assert not cached_generate(model, tok, prompts, max_new_tokens=5)[1]  # other settings
    assert not cached_generate(model, tok, prompts[:1], max_new_tokens=4)[1]  # other inputs
    answers = [[{"role": "assistant", "content": "4."}], [{"role": "assistant", "content": "Blue."}]]
    logps, hit = cached_logps(model, tok, prompts, answers)
    assert not hit and torch.equal(cached_logps(model, tok, prompts, answers)[0], logps)
    before = weights_digest(model)
    with torch.no_grad():
        next(model.parameters())[0, 0] += 1.0  # other weights
    assert weights_digest(model) != before
    assert not cached_generate(model, tok, prompts, max_new_tokens=4)[1]
    assert not cached_logps(model, tok, prompts, answers)[1]
