"""The suite does not depend on the shell it runs in: offline switches, caches and notebook parameters."""

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Tests that lift the offline switches themselves, or read the environment: the ones an exported switch could break.
SENSITIVE = [
    "tests/test_data.py::test_hub_rows_are_converted_by_columns",
    "tests/test_data.py::test_hub_offline_is_a_clear_error",
    "tests/test_models.py::test_hub_typo_offline_fails_without_touching_the_network_and_names_embedded",
    "tests/test_notebooks.py::test_parameters_cell_reads_defaults_from_the_environment",
    "tests/test_environment.py::test_the_session_sets_its_own_environment",
]


def test_the_session_sets_its_own_environment():
    assert {os.environ[f] for f in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")} == {"1"}
    assert os.environ["SMOLKIT_PROFILE"] == "smoke"
    assert Path(os.environ["SMOLKIT_OUTPUTS"]) == REPO / "outputs" / "test"
    assert "SMOLKIT_SFT_LR" not in os.environ and "SMOLKIT_MODEL" not in os.environ  # notebook parameters


def test_an_exported_offline_switch_and_empty_caches_break_nothing(tmp_path):
    """A cluster user's shell: TRANSFORMERS_OFFLINE=1, empty HF_HOME and XDG_CACHE_HOME, stray parameters."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HF_", "TRANSFORMERS_", "SMOLKIT_", "XDG_CACHE", "PYTEST_"))}
    env.update(TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_HOME=str(tmp_path / "hf"),
               XDG_CACHE_HOME=str(tmp_path / "cache"), SMOLKIT_SFT_LR="1e-3", SMOLKIT_MODEL="no/such-model",
               SMOLKIT_PROFILE="full")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", *SENSITIVE], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    passed = re.search(r"(\d+) passed", proc.stdout)
    assert passed and int(passed.group(1)) >= len(SENSITIVE) and "skipped" not in proc.stdout


def _tree(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under `folder` with its size and modification time."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_read_only_copy_of_data_loads_the_same_rows_and_is_not_written(tmp_path, monkeypatch):
    """A checkout on a read-only mount: every loader reads, none writes beside the data (checked also as root)."""
    import shutil

    import smolkit.data as data

    copy = tmp_path / "data"
    shutil.copytree(REPO / "data", copy)
    for path in [copy, *copy.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    before = _tree(copy)
    expected = {(kind, split): loader(split=split).to_list() for kind, loader in (("sft", data.load_sft),
                ("dpo", data.load_preferences)) for split in ("train", "test")}
    monkeypatch.setattr(data, "data_dir", lambda: copy)
    try:
        for (kind, split), rows in expected.items():
            loader = data.load_sft if kind == "sft" else data.load_preferences
            assert loader(split=split).to_list() == rows, (kind, split)
        assert len(data.load_sft(copy / "samples" / "guide_format_sft.jsonl")) > 0
        assert len(data.load_preferences(copy / "samples" / "guide_format_preferences.jsonl")) > 0
        assert _tree(copy) == before, "a loader wrote into the data folder"
    finally:
        for path in [copy, *copy.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
