"""Safe defaults: weights only as safetensors, no remote code, nothing written outside outputs/ and the cache."""

from pathlib import Path

import pytest
import torch

from smolkit.models import ModelLoadError, load_model, tiny_model

REPO = Path(__file__).resolve().parent.parent


def test_pickled_weights_are_refused(tmp_path):
    model, tok = tiny_model()
    model.config.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")  # a pickle: loading it can run code
    with pytest.raises(ModelLoadError, match=str(tmp_path)):
        load_model(str(tmp_path))


def test_no_remote_code_and_no_token_anywhere_in_the_course():
    sources = [*REPO.glob("smolkit/*.py"), *REPO.glob("notebooks/*.ipynb"), *REPO.glob("tools/*.py")]
    for path in sources:
        text = path.read_text()
        assert "trust_remote_code=True" not in text and '"trust_remote_code": True' not in text, path
        assert "HF_TOKEN" not in text and "use_auth_token" not in text, path
