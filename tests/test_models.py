"""smolkit.models: the embedded model is the real SmolLM2, bad names say what to pass, saves are never half-written."""

import json
import socket

import pytest
import torch

import smolkit.models as models
from smolkit.evaluation import generate
from smolkit.models import ModelLoadError, embedded_checkpoint, load_model, resolve_model, save_model
from smolkit.runtime import read_json


@pytest.fixture(scope="module")
def embedded():
    return load_model("embedded")


def test_the_embedded_model_is_the_real_smollm2_and_answers(embedded):
    model, tokenizer = embedded
    assert type(model).__name__ == "LlamaForCausalLM" and 134e6 < model.num_parameters() < 135e6
    assert model.dtype == torch.float32 and "<|im_start|>" in tokenizer.chat_template
    reply = generate(model, tokenizer, [[{"role": "user", "content": "What is the capital of France?"}]], 20)[0]
    assert "Paris" in reply.text and reply.stopped


def test_the_cache_holds_safetensors_only_and_is_never_converted_twice(monkeypatch):
    folder = embedded_checkpoint()
    names = {p.name for p in folder.iterdir()}
    assert "model.safetensors" in names and not any(n.endswith((".bin", ".pt", ".pkl")) for n in names)
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())
    monkeypatch.setattr(models, "convert_gguf", lambda *a: pytest.fail("converted again although cached"))
    assert embedded_checkpoint() == folder


@pytest.mark.parametrize("name, says", [
    ("", "non-empty"), ("./no/such/folder", "neither"), ("not a hub id!", "neither"),
])
def test_bad_model_names_say_what_to_pass(name, says):
    with pytest.raises(ModelLoadError, match=says):
        resolve_model(name)


def test_a_folder_without_config_is_not_a_model(tmp_path):
    with pytest.raises(ModelLoadError, match="config.json"):
        resolve_model(str(tmp_path))


def test_a_hub_id_offline_fails_fast_without_the_network_and_names_embedded(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: pytest.fail("offline must not connect"))
    with pytest.raises(ModelLoadError, match="embedded"):
        load_model("HuggingFaceTB/no-such-model-xyz")


def test_save_model_writes_safetensors_with_files_beside_and_reloads(tiny, tmp_path):
    model, tok = tiny
    folder = save_model(model, tok, tmp_path / "m", scores={"rows": 3}, recipe={"learning_rate": 2e-5})
    assert (folder / "model.safetensors").is_file() and read_json(folder / "scores.json") == {"rows": 3}
    reloaded, _ = load_model(str(folder))
    assert torch.equal(reloaded.lm_head.weight, model.lm_head.weight)


def test_an_interrupted_save_leaves_the_previous_model(tiny, tmp_path, monkeypatch):
    model, tok = tiny
    folder = save_model(model, tok, tmp_path / "m", scores={"run": 1})

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(type(tok), "save_pretrained", crash)
    with pytest.raises(KeyboardInterrupt):
        save_model(model, tok, folder, scores={"run": 2})
    assert read_json(folder / "scores.json") == {"run": 1} and (folder / "model.safetensors").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no temporary folder left behind
