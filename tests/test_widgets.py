"""The decision logic and the widgets: logic functions directly, widget callbacks fired programmatically."""

import base64
import itertools

import pytest

from smolkit import decision, widgets
from smolkit.decision import GOALS, METHODS, Recommendation, explain, recommend
from smolkit.models import tiny_model

# ---------------------------------------------------------------- decision logic


def rec(demos=False, pairs=False, follows=True, goal="both"):
    return recommend(has_demonstrations=demos, has_preferences=pairs, follows_instructions=follows, goal=goal)


@pytest.mark.parametrize("demos,pairs,follows,goal,method", [
    (True, False, True, "new task or format", "SFT"),
    (True, True, True, "new task or format", "SFT"),
    (False, True, True, "tone, style or safety", "DPO"),
    (True, True, False, "both", "SFT then DPO"),
    (True, True, False, "tone, style or safety", "SFT then DPO"),  # a base model needs SFT before DPO
    (True, True, True, "both", "SFT then DPO"),
    (False, False, True, "new task or format", "neither: collect data first"),
    (False, True, True, "new task or format", "neither: collect data first"),  # pairs cannot teach a new task
    (False, False, False, "both", "neither: collect data first"),
])
def test_recommendations_follow_when_to_use_each(demos, pairs, follows, goal, method):
    assert rec(demos, pairs, follows, goal).method == method


def test_direct_dpo_on_a_model_that_does_not_follow_instructions_is_called_risky():
    r = rec(demos=False, pairs=True, follows=False, goal="tone, style or safety")
    assert r.method == "neither: collect data first"
    assert any("risky" in reason for reason in r.reasons)
    assert any(need.startswith("demonstrations") for need in r.data_needed)


def test_every_combination_gives_a_known_method_reasons_and_consistent_data_needs():
    for demos, pairs, follows, goal in itertools.product([True, False], [True, False], [True, False], GOALS):
        r = rec(demos, pairs, follows, goal)
        assert isinstance(r, Recommendation) and r.method in METHODS and r.reasons
        assert all(s.strip().endswith(".") for s in r.reasons)
        if r.method == "neither: collect data first":
            assert r.data_needed  # always says what to collect
        if r.method == "SFT then DPO":
            assert demos and pairs and not r.data_needed
        if "DPO" in r.method:
            assert pairs  # DPO is never recommended without preference pairs
        if r.method.startswith("SFT"):
            assert demos


def test_unknown_goal_lists_the_valid_ones():
    with pytest.raises(ValueError) as err:
        rec(goal="speed")
    assert all(g in str(err.value) for g in GOALS)


def test_recommend_takes_keywords_only():
    with pytest.raises(TypeError):
        recommend(True, True, True, "both")  # type: ignore[misc]


def test_explain_prints_method_reasons_and_data():
    r = rec(demos=True, pairs=False, follows=False, goal="both")
    text = explain(r)
    assert text.startswith("Recommended: SFT\n")
    assert all(reason in text for reason in r.reasons) and all(need in text for need in r.data_needed)
    assert "nothing more" in explain(rec(True, True, True, "both"))


def test_recommendation_is_frozen():
    with pytest.raises(AttributeError):
        rec().method = "DPO"  # type: ignore[misc]


def test_decision_reasons_are_not_copied_from_the_seed_guide():
    guide_lines = ["Starting with a base model (not instruction-tuned)", "Model already follows instructions",
                   "Refining response quality and style", "Avoiding harmful or unwanted outputs"]
    text = " ".join(explain(rec(d, p, f, g)) for d, p, f, g in
                    itertools.product([True, False], [True, False], [True, False], GOALS))
    assert not any(line in text for line in guide_lines)
    assert decision.GOALS == ("new task or format", "tone, style or safety", "both")


# ---------------------------------------------------------------- beta explorer


def test_dpo_loss_and_push():
    assert widgets.dpo_loss(0.0, 0.1) == pytest.approx(0.6931, abs=1e-4)
    assert widgets.dpo_gradient_weight(0.0, 0.1) == pytest.approx(0.5)
    assert widgets.dpo_loss(1e6, 0.1) == pytest.approx(0.0, abs=1e-9) and widgets.dpo_loss(-1e6, 1.0) == 1e6
    assert widgets.dpo_gradient_weight(20, 1.0) < widgets.dpo_gradient_weight(20, 0.1)


def _text(out):
    return "".join(o.get("text", "") for o in out.outputs)


def _png(out):
    return next(o["data"]["image/png"] for o in out.outputs if "image/png" in o.get("data", {}))


def test_beta_slider_redraws_curve_and_summary():
    view = widgets.beta_explorer(0.1)
    slider, out = view.children
    before_text, before_png = _text(out), _png(out)
    assert before_text.startswith("beta=0.1 |")
    assert base64.b64decode(before_png).startswith(b"\x89PNG")
    slider.value = 1.0  # what moving the slider does, kernel side
    assert _text(out).startswith("beta=1 |") and _text(out) != before_text
    assert _png(out) != before_png


def test_static_fallback_and_bundle():
    fallback = widgets.beta_static(0.1)
    assert fallback["text/plain"] == widgets.beta_summary(0.1)
    assert base64.b64decode(fallback["image/png"]).startswith(b"\x89PNG")
    bundle = widgets.with_fallback(widgets.beta_explorer(0.1), fallback)
    assert widgets.WIDGET_MIME in bundle  # a widget frontend renders the live view
    assert bundle["text/plain"] == fallback["text/plain"] and bundle["image/png"] == fallback["image/png"]


def test_show_displays_one_bundle_with_widget_and_static_parts(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, raw=False: shown.append((obj, raw)))
    widgets.show_decision_helper()
    (bundle, raw), = shown
    assert raw and widgets.WIDGET_MIME in bundle and "Recommended: DPO" in bundle["text/plain"]
    assert "Every case" in bundle["text/html"]


# ---------------------------------------------------------------- decision helper widget


def test_decision_helper_updates_on_every_control():
    helper = widgets.decision_helper()
    follows, demos, pairs, goal, result = helper.children
    seen = [result.value]
    assert "<b class='smolkit-method'>DPO</b>" in result.value
    follows.value = False
    assert "neither: collect data first" in result.value and "risky" in result.value
    seen.append(result.value)
    demos.value = True
    assert "SFT then DPO" in result.value
    seen.append(result.value)
    pairs.value = False
    seen.append(result.value)
    goal.value = "new task or format"
    seen.append(result.value)
    assert len(set(seen)) == len(seen)  # every change redrew the recommendation


def test_decision_table_covers_every_case():
    table = widgets.decision_table().splitlines()
    assert len(table) == 1 + 8 and all(g in table[0] for g in GOALS)


# ---------------------------------------------------------------- compare panel


@pytest.fixture(scope="module")
def two_models():
    a, b = tiny_model(seed=0), tiny_model(seed=1)
    return {"start": a, "after <DPO>": b}


def test_compare_replies_greedy_is_repeatable_and_sampling_is_seeded(two_models):
    first = widgets.compare_replies(two_models, "Hi", max_new_tokens=6)
    assert set(first) == {"start", "after <DPO>"}
    assert first == widgets.compare_replies(two_models, "Hi", max_new_tokens=6)
    sampled = [widgets.compare_replies(two_models, "Hi", max_new_tokens=6, temperature=1.0, seed=3)
               for _ in range(2)]
    assert sampled[0] == sampled[1]
    with pytest.raises(ValueError, match="empty"):
        widgets.compare_replies(two_models, "  ")


def test_compare_html_is_side_by_side_and_escaped():
    page = widgets.compare_html("a <b> prompt", {"one": "x < y", "two": ""})
    assert page.count("<th") == 2 and "a &lt;b&gt; prompt" in page and "x &lt; y" in page
    assert "(empty reply)" in page


def test_compare_panel_button_regenerates_for_a_new_prompt(two_models):
    panel = widgets.compare_panel(two_models, "First prompt", max_new_tokens=6)
    box, _settings, controls, result = panel.children
    button, status = controls.children
    assert "First prompt" in result.value and "replies in" in status.value
    box.value = "A second, different prompt"
    before = result.value
    button.click()
    assert "A second, different prompt" in result.value and result.value != before
    box.value = ""
    button.click()
    assert "empty" in status.value  # the error is shown, not raised into the frontend


def test_compare_panel_takes_ready_replies_without_generating():
    panel = widgets.compare_panel({}, "p", replies={"m": "ready"})
    assert "ready" in panel.children[3].value


def test_saved_models_loads_only_what_exists(monkeypatch, tmp_path):
    from smolkit.models import save_model

    monkeypatch.setenv("SMOLKIT_OUTPUTS", str(tmp_path))
    save_model(*tiny_model(), tmp_path / "models" / "sft")
    found = widgets.saved_models(("sft", "dpo"))
    assert list(found) == ["SFT"]  # no DPO model saved: no column for it
    assert widgets.compare_replies(found, "Hi", max_new_tokens=3).keys() == {"SFT"}
