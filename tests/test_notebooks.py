"""What the notebooks wrote when nbval executed them (see conftest.py), the papermill path, and notebook hygiene.

nbval executes every notebook once, at the smoke profile; the tests marked `notebook_outputs` run after it and
read the metrics, models and executed copies it left under `outputs/test/`.
"""

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import papermill
import pytest

from smolkit.paths import outputs_dir

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SKIP = {".git", ".venv", "outputs", "__pycache__", ".hypothesis", ".pytest_cache", ".ruff_cache", ".ipynb_checkpoints"}


def repo_files():
    """Every file in the repository outside the folders that are meant to change."""
    return {p for p in REPO.rglob("*") if p.is_file() and not SKIP & set(p.relative_to(REPO).parts)}


FILES_BEFORE = repo_files()  # taken when pytest collects this module, before any notebook runs


def _metrics(name):
    path = outputs_dir() / "metrics" / f"{name}.json"
    if not path.is_file():
        pytest.fail(f"{path} is missing: notebooks/{name}.ipynb did not run to its end in this session (nbval runs "
                    "it when pytest collects notebooks/, as `make test` does)")
    return json.loads(path.read_text())


def test_papermill_injects_parameters_and_writes_the_executed_copy(tmp_path):
    """`make run`'s path, cheaply: 01's cells up to the profile, with parameters injected by papermill."""
    source = json.loads((REPO / "notebooks" / "01_sft.ipynb").read_text())
    first = next(i for i, c in enumerate(source["cells"]) if "get_profile(" in "".join(c["source"]))
    source["cells"] = source["cells"][: first + 1]
    nb, out = tmp_path / "01_head.ipynb", tmp_path / "out" / "01_head.ipynb"
    nb.write_text(json.dumps(source))
    out.parent.mkdir()
    papermill.execute_notebook(str(nb), str(out), parameters={"PROFILE": "smoke", "STEPS": 3, "SEED": 7},
                               cwd=str(REPO / "notebooks"), kernel_name="python3", progress_bar=False)
    executed = json.loads(out.read_text())
    injected = [c for c in executed["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert len(injected) == 1 and "STEPS = 3" in "".join(injected[0]["source"])
    printed = "".join("".join(o.get("text", "")) for o in executed["cells"][-1]["outputs"])
    assert "name='smoke'" in printed and "sft_steps=3" in printed  # the injected value reached the profile


@pytest.mark.notebook_outputs
def test_overview_measures_the_real_model():
    m = _metrics("00_overview")
    assert m["capital_of_france_correct"] is True
    assert 134e6 < m["parameters"] < 135e6
    assert m["generation"]["tokens_per_second"] > 0 and m["load_seconds"] > 0
    assert 0 < m["template_loss_token_fraction"] < 1


@pytest.mark.notebook_outputs
def test_sft_notebook_records_before_and_after():
    m = _metrics("01_sft")
    for side in ("before", "after"):
        assert {"format_compliance", "exact_match", "mean_words", "clean_stop_rate"} <= set(m[side])
        assert 0 <= m[side]["format_compliance"] <= 1
    assert m["train_seconds"] > 0 and m["steps"] == 2
    assert "generation" in m["template_as_written_error"]  # TRL refused the guide's template as written
    # evaluated on held-out conversations before the first step and after each (smoke: eval_steps=1)
    assert [r["step"] for r in m["eval_log"]] == [0, 1, 2] and all(r["eval_loss"] > 0 for r in m["eval_log"])


@pytest.mark.notebook_outputs
def test_dpo_notebook_records_the_same_measures_before_and_after():
    m = _metrics("02_dpo")
    assert m["start_model"] == "sft"  # 01 ran first and saved its model
    dimensions = {"overall", "concise", "correct", "helpful", "safe", "format"}
    for side in ("before", "after"):
        for key in ("logp_accuracy", "logp_per_token_accuracy"):
            assert 0 <= m[side][key] <= 1 and m[side][key] == m[side]["by_dimension"][key]["overall"]
            assert set(m[side]["by_dimension"][key]) <= dimensions
    assert "reward_accuracy" not in m["before"]  # it needs a reference other than the model itself
    assert 0 <= m["after"]["reward_accuracy"] <= 1 and isinstance(m["after"]["mean_margin"], float)
    assert "overall" in m["shorter_answer_baseline"] and set(m["shorter_answer_baseline"]) <= dimensions
    assert m["train_seconds"] > 0 and m["beta"] == 0.1 and m["learning_rate"] == 1e-6


@pytest.mark.notebook_outputs
def test_dpo_by_hand_starts_at_ln2_and_matches_trl():
    m = _metrics("02_dpo")["from_scratch"]
    assert abs(m["initial_loss"] - math.log(2)) < 1e-6  # policy == reference: every margin is zero
    assert m["max_abs_diff_vs_trl"] <= 1e-4
    assert set(m["by_hand"]) == set(m["trl"]) >= {"loss", "rewards/chosen", "rewards/rejected", "rewards/margins"}


@pytest.mark.notebook_outputs
def test_dpo_evaluated_held_out_pairs_while_training():
    log = _metrics("02_dpo")["eval_log"]
    assert [r["step"] for r in log] == [0, 1, 2]
    assert log[0]["eval_rewards/margins"] == 0  # at step 0 the policy is its reference


VARIANT_FIELDS = {"format_compliance", "exact_match", "preference_accuracy", "logp_per_token_accuracy",
                  "reward_accuracy_vs_start", "mean_margin_vs_start", "mean_words", "clean_stop_rate",
                  "preference_by_dimension", "chat_template", "train_seconds", "stages"}


@pytest.mark.notebook_outputs
def test_pipeline_notebook_compares_six_variants_on_the_same_data():
    m = _metrics("03_pipeline")
    assert set(m["variants"]) == {"sft_then_dpo", "sft_only", "dpo_only", "dpo_native_template", "start",
                                  "sft_on_chosen"}
    for name, v in m["variants"].items():
        assert set(v) == VARIANT_FIELDS, (name, set(v) ^ VARIANT_FIELDS)  # the same fields for every variant
        assert 0 <= v["logp_per_token_accuracy"] <= 1
        assert (v["mean_margin_vs_start"] is None) == (name == "start")
    assert m["eval_rows"] > 0 and m["eval_pairs"] > 0
    for name, v in m["variants"].items():
        for key in ("format_compliance", "preference_accuracy"):
            assert 0 <= v[key] <= 1, (name, key)
        assert v["exact_match"] is None or 0 <= v["exact_match"] <= 1
        assert v["mean_words"] > 0
    stages_of = {"sft_then_dpo": {"sft", "dpo_after_sft"}, "sft_only": {"sft"}, "dpo_only": {"dpo_direct"},
                 "dpo_native_template": {"dpo_direct_native"}, "start": set(),
                 "sft_on_chosen": {"sft", "sft_on_chosen"}}
    for name, stages in stages_of.items():
        assert set(m["variants"][name]["stages"]) == stages
        for stage in m["variants"][name]["stages"].values():
            assert stage["seconds"] > 0 and stage["peak_mib"] > 0
    assert m["variants"]["start"]["reward_accuracy_vs_start"] is None  # the start is its own reference
    for stage in m["stages"].values():
        assert stage["steps"] == 2 and stage["added_mib"] is not None and stage["weight_shift"] > 0
    assert m["stages"]["sft"]["learning_rate"] == 5e-5 and m["stages"]["dpo_direct"]["learning_rate"] == 1e-6
    # the saved pipeline model is variant (a), and every stage's checkpoint was removed after saving
    assert (outputs_dir() / "models" / "pipeline" / "model.safetensors").is_file()
    for stage in m["stages"]:
        assert not list((outputs_dir() / "checkpoints" / f"pipeline-{stage}").glob("checkpoint-*"))


@pytest.mark.notebook_outputs
def test_pipeline_sft_on_chosen_sees_dpos_pairs_at_sfts_learning_rate():
    """(e): SFT from the SFT model on prompt + chosen of DPO's pairs, DPO's steps and batch, SFT's learning rate."""
    m = _metrics("03_pipeline")
    stage, run, dpo = m["stages"]["sft_on_chosen"], m["sft_on_chosen"], m["dpo"]
    assert stage["measured_in"] == "03_pipeline"
    assert (stage["steps"], stage["batch_size"]) == (dpo["steps"], dpo["batch_size"])
    assert run["steps_done"] == dpo["steps"] and run["examples_seen"] == dpo["steps"] * dpo["batch_size"]
    assert len(run["losses"]) == dpo["steps"] and all(loss > 0 for loss in run["losses"])  # smoke: logs every step
    assert stage["learning_rate"] == m["sft"]["learning_rate"]  # SFT's rate, 50x DPO's
    assert math.isclose(stage["learning_rate"], 50 * dpo["learning_rate"])
    assert m["stages"]["dpo_after_sft"]["examples_seen"] == stage["examples_seen"]  # as many answers as DPO's pairs
    # (a) and (e) against their common start, the SFT model, per dimension
    for name in ("sft_then_dpo", "sft_on_chosen"):
        half = m["rejected_half"][name]
        assert half["preference_accuracy"] == m["variants"][name]["preference_by_dimension"]
        assert set(half) == {"preference_accuracy", "chosen_logp_change", "rejected_logp_change", "gap_grew"}
        for measure in half.values():
            assert set(measure) == set(half["preference_accuracy"]) and None not in measure.values()
        assert all(0 <= x <= 1 for x in half["gap_grew"].values())
    assert m["rejected_half_verdict"].startswith(("the rejected answers added most on", "on no dimension"))
    assert "(e)" in m["claims"]["data"]  # the guide's table reads (e) in its data row


@pytest.mark.notebook_outputs
def test_pipeline_dpo_native_template_trains_and_scores_with_the_models_own_template():
    """(c′): (c)'s DPO, but with the start's own (ChatML) template, scored against the start under that template."""
    m = _metrics("03_pipeline")
    templates = {name: v["chat_template"] for name, v in m["variants"].items()}
    assert templates == {**dict.fromkeys(templates, "guide"), "dpo_native_template": "native"}
    guide, native = m["rendered_prompt"]["guide"], m["rendered_prompt"]["native"]
    assert guide.startswith("Human: ") and guide.endswith("Assistant:")
    assert "<|im_start|>user\n" in native and native.endswith("<|im_start|>assistant\n") and "Human:" not in native
    native_stage, guide_stage = m["stages"]["dpo_direct_native"], m["stages"]["dpo_direct"]
    same = ("steps", "batch_size", "learning_rate", "beta")
    assert {k: native_stage[k] for k in same} == {k: guide_stage[k] for k in same}  # (c)'s DPOConfig
    assert native_stage["measured_in"] == "03_pipeline" and native_stage["weight_shift"] > 0
    variant, reference = m["variants"]["dpo_native_template"], m["start_native_template"]
    assert reference["reward_accuracy_vs_start"] is None and 0 <= reference["format_compliance"] <= 1
    assert variant["reward_accuracy_vs_start"] == m["dpo_heldout_reward_accuracy"]["dpo_direct_native"]
    # Two smoke steps at 1e-6 barely move the weights, so the margin against the start under the same template
    # is tiny; against the start scored under the guide's template it would be about 0.5 (a few nats x beta).
    assert abs(variant["mean_margin_vs_start"]) < 0.05


@pytest.mark.notebook_outputs
def test_pipeline_reuses_the_models_of_01_and_02_because_its_configs_are_theirs():
    """03 writes its SFT and DPO configs again; only identical recipes let it load 01's and 02's models."""
    m = _metrics("03_pipeline")
    measured_in = {name: stage["measured_in"] for name, stage in m["stages"].items()}
    assert measured_in == {"sft": "01_sft", "dpo_after_sft": "02_dpo", "sft_on_chosen": "03_pipeline",
                           "dpo_direct": "03_pipeline", "dpo_direct_native": "03_pipeline"}
    assert m["recipe_fingerprints"]["sft"] == _metrics("01_sft")["recipe_fingerprint"]
    assert m["recipe_fingerprints"]["dpo_after_sft"] == _metrics("02_dpo")["recipe_fingerprint"]
    assert m["reuse"] == {"sft": "reuse", "dpo_after_sft": "reuse"}


@pytest.mark.notebook_outputs
@pytest.mark.parametrize("stage", ["sft", "dpo", "pipeline", "dpo_tuned"])
def test_saved_models_load_offline_with_plain_transformers(stage):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = outputs_dir() / "models" / stage
    assert (folder / "model.safetensors").is_file() and not list(folder.glob("*.bin"))
    model = AutoModelForCausalLM.from_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    assert "Assistant:" in tok.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False,
                                                   add_generation_prompt=True)
    ids = tok("Human: Hi\n\nAssistant:", return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=3, do_sample=False)
    assert out.shape[1] > ids["input_ids"].shape[1]


DIAL_FIELDS = {"learning_rate", "beta", "loss_type", "logp_per_token_accuracy", "reward_accuracy", "mean_margin",
               "replies_changed", "refusal_rate_on_unsafe", "filler_opening_rate", "format_request_kept",
               "sft_format_compliance", "sft_exact_match", "seconds"}


@pytest.mark.notebook_outputs
def test_dials_notebook_records_every_run_against_the_same_start():
    m = _metrics("05_dpo_dials")
    assert [(r["learning_rate"], r["beta"], r["loss_type"]) for r in m["runs"]] == \
        [(1e-6, 0.1, "sigmoid"), (1e-4, 0.1, "sigmoid+sft")]  # the smoke grid: two tiny configurations
    for run in m["runs"]:
        assert DIAL_FIELDS <= set(run), DIAL_FIELDS - set(run)
        assert run["seconds"] >= run["train_seconds"] > 0
        assert 0 <= run["replies_changed"] <= 1 and 0 <= run["sft_format_compliance"] <= 1
    assert {"replies_changed", "refusal_rate_on_unsafe", "filler_opening_rate", "format_request_kept",
            "sft_format_compliance", "sft_exact_match"} <= set(m["start"])
    assert m["start"]["replies_changed"] == 0
    guide = m["runs"][0]  # 1e-6 for one step of 2 pairs: the weights barely move
    assert abs(guide["mean_margin"]) < abs(m["runs"][1]["mean_margin"])
    assert m["steps"] == 1 and m["batch_size"] == 2 and m["train_pairs"] == 2


@pytest.mark.notebook_outputs
def test_dials_notebook_picks_by_its_rule_and_saves_that_model():
    """The pick is the best run under the notebook's own rule, recomputed here from the recorded numbers."""
    m = _metrics("05_dpo_dials")
    start, slack = m["start"], 1 / m["sft_rows"]

    def change(run, k):  # None (NaN in the notebook): nothing to count in the sample, no change
        return 0.0 if run[k] is None or start[k] is None else run[k] - start[k]

    def key(run):
        keeps = all(change(run, k) >= -slack - 1e-9 for k in ("sft_format_compliance", "sft_exact_match"))
        gain = (change(run, "refusal_rate_on_unsafe") + change(run, "format_request_kept")
                - change(run, "filler_opening_rate"))
        return keeps, round(gain, 9), round(run["logp_per_token_accuracy"], 9), -run["replies_changed"]

    best = max(m["runs"], key=key)  # max keeps the first of equals, as the notebook does
    assert m["picked"] == best["run"]
    recipe = json.loads((outputs_dir() / "models" / "dpo_tuned" / "recipe.json").read_text())
    config = recipe["inputs"]["config"]
    assert config["learning_rate"] == best["learning_rate"] and config["beta"] == best["beta"]


@pytest.mark.notebook_outputs
def test_notebooks_write_nothing_outside_outputs():
    new = sorted(str(p.relative_to(REPO)) for p in repo_files() - FILES_BEFORE)
    assert new == [], f"files written outside outputs/: {new}"


def test_there_are_course_notebooks():
    assert NOTEBOOKS and NOTEBOOKS[0].name == "00_overview.ipynb"


def test_committed_notebooks_are_clean():
    result = subprocess.run([sys.executable, str(REPO / "tools" / "check_notebooks.py")], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout


def test_check_catches_outputs_and_missing_parameters(tmp_path):
    nb = json.loads(NOTEBOOKS[0].read_text())
    code_cell = next(c for c in nb["cells"] if c["cell_type"] == "code")
    code_cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["hi\n"]}]
    for cell in nb["cells"]:
        cell["metadata"].pop("tags", None)
    dirty = tmp_path / "dirty.ipynb"
    dirty.write_text(json.dumps(nb))
    result = subprocess.run([sys.executable, str(REPO / "tools" / "check_notebooks.py"), str(dirty)],
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert "outputs" in result.stdout and "parameters" in result.stdout


def test_colab_cells_and_readme_badges_match_the_slug():
    result = subprocess.run([sys.executable, str(REPO / "tools" / "sync_colab.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_parameters_cell_reads_defaults_from_the_environment(path, monkeypatch):
    cell = next(c for c in json.loads(path.read_text())["cells"]
                if "parameters" in c["metadata"].get("tags", []))
    monkeypatch.setenv("SMOLKIT_PROFILE", "full")
    monkeypatch.setenv("SMOLKIT_SEED", "7")
    scope = {}
    exec("".join(cell["source"]), scope)
    assert scope["PROFILE"] == "full" and scope["SEED"] == 7
    monkeypatch.delenv("SMOLKIT_PROFILE")
    scope = {}
    exec("".join(cell["source"]), scope)
    assert scope["PROFILE"] == "default"


def test_colab_cell_does_nothing_outside_colab(tmp_path):
    cell = next(c for c in json.loads(NOTEBOOKS[0].read_text())["cells"] if c["cell_type"] == "code")
    before = os.getcwd()
    scope = {}
    exec("".join(cell["source"]), scope)
    assert os.getcwd() == before and "google.colab" not in sys.modules


def executed_code_cells(path: Path) -> list[dict]:
    """The code cells of the executed copy this session wrote of notebook `path`."""
    copy = outputs_dir() / "notebooks" / path.name
    assert copy.is_file(), f"no executed copy of {path.name}: nbval did not run it in this session"
    return [c for c in json.loads(copy.read_text())["cells"] if c["cell_type"] == "code"]


@pytest.mark.notebook_outputs
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_each_notebook_left_one_executed_copy_with_every_cell_run(path):
    cells = executed_code_cells(path)
    copy = outputs_dir() / "notebooks" / path.name
    assert all(c["execution_count"] for c in cells), "a cell was not executed"
    errors = [o for c in cells for o in c["outputs"] if o["output_type"] == "error"]
    assert not errors, errors[0]["ename"] + ": " + errors[0]["evalue"]
    assert json.loads(copy.read_text())["metadata"]["kernelspec"]["name"]  # a notebook file Jupyter opens


# A call that draws a figure: pandas/matplotlib plotting, or the course's own plotting helpers.
DRAWS = re.compile(r"\.plot[.(]|\bplt\.|\b(training_curves|variant_chart|dpo_loss_curves|pipeline_diagram|"
                   r"show_beta_explorer)\(")


@pytest.mark.notebook_outputs
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_figure_a_cell_draws_is_in_the_executed_notebook(path):
    missing = [i for i, c in enumerate(executed_code_cells(path)) if DRAWS.search("".join(c["source"]))
               and not any("image/png" in o.get("data", {}) for o in c["outputs"])]
    assert not missing, f"{path.name}: code cells {missing} draw a figure that the executed notebook lacks"


WARNING = re.compile(r"\b[A-Z]\w*Warning\b")  # FutureWarning, UserWarning, Pandas4Warning, ...


@pytest.mark.notebook_outputs
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_no_warning_is_printed_in_the_executed_notebook(path):
    found = [(i, WARNING.search(text).group()) for i, c in enumerate(executed_code_cells(path)) for o in c["outputs"]
             for text in [o.get("text", "") if isinstance(o.get("text", ""), str) else "".join(o["text"])]
             if WARNING.search(text)]
    assert not found, f"{path.name}: code cells print warnings {found}: fix the cause, or silence a third-party one " \
                      "narrowly with a comment naming it"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_trained_models_are_scored_with_their_plain_fp32_forward(path):
    """After a bf16 run the trainer's model computes in autocast; held-out scores must use the unwrapped forward."""
    code = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
    assert not re.search(r"\bmodel\b[^=\n]*=\s*trainer\.model\b", code), \
        f"{path.name}: use trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)"
