"""Which post-training method fits a situation: SFT, DPO, both, or neither yet (the course's decision helper)."""

from __future__ import annotations

from dataclasses import dataclass, field

GOALS = ("new task or format", "tone, style or safety", "both")
METHODS = ("SFT", "DPO", "SFT then DPO", "neither: collect data first")

DEMOS = "demonstrations: prompts each paired with one good reply, written in the target task, format or domain"
PAIRS = "preference pairs: prompts each with a better (chosen) and a worse (rejected) reply, the difference clear"


@dataclass(frozen=True)
class Recommendation:
    """A recommended method, the reasoning behind it, and the data still to collect or prepare."""

    method: str
    reasons: list[str] = field(default_factory=list)
    data_needed: list[str] = field(default_factory=list)


def recommend(*, has_demonstrations: bool, has_preferences: bool, follows_instructions: bool,
              goal: str) -> Recommendation:
    """Pick SFT, DPO, SFT then DPO, or 'collect data first' from the data at hand, the model and the goal."""
    if goal not in GOALS:
        raise ValueError(f"unknown goal {goal!r}; valid goals are: " + ", ".join(repr(g) for g in GOALS))
    wants_task = goal in ("new task or format", "both") or not follows_instructions
    wants_taste = goal in ("tone, style or safety", "both")
    reasons: list[str] = []
    if not follows_instructions:
        reasons.append("The model does not follow instructions yet, so it first has to learn the basic "
                       "prompt-and-reply behaviour by imitating demonstrations.")
    if goal in ("new task or format", "both"):
        reasons.append("A new task, format or domain is learned from examples of the wanted output, "
                       "which is exactly what supervised fine-tuning trains on.")
    if wants_taste:
        reasons.append("Tone, style and safety are about which of several possible replies is better, "
                       "and DPO learns that directly from chosen and rejected pairs.")

    if wants_task and wants_taste:
        if has_demonstrations and has_preferences:
            reasons.append("With both kinds of data, run SFT first so the model produces sensible replies, "
                           "then DPO starting from the SFT model to steer which replies it prefers.")
            return Recommendation("SFT then DPO", reasons, [])
        if has_demonstrations:
            reasons.append("The demonstrations allow the SFT step now; the preference step has to wait "
                           "until preference pairs exist.")
            return Recommendation("SFT", reasons, [PAIRS + " (for the later DPO step)"])
        if has_preferences and follows_instructions:
            reasons.append("The preference pairs allow DPO on tone and safety now, but pairs only rank replies "
                           "the model can already write, so the new task still needs demonstrations.")
            return Recommendation("DPO", reasons, [DEMOS + " (for the new task)"])
        if has_preferences:
            reasons.append("Running DPO directly on a model that does not follow instructions is risky: "
                           "both replies in a pair are unlikely under the model, the training signal is noisy, "
                           "and it can drift into degenerate text.")
            return Recommendation("neither: collect data first", reasons, [DEMOS])
        reasons.append("Neither method can run without data, so start by collecting it.")
        return Recommendation("neither: collect data first", reasons, [DEMOS, PAIRS])

    if wants_task:
        if has_demonstrations:
            reasons.append("The demonstrations at hand are what SFT needs; no preference data is required.")
            return Recommendation("SFT", reasons, [])
        if has_preferences:
            reasons.append("Preference pairs alone cannot teach something the model never does; "
                           "they only rank replies it already produces.")
        reasons.append("SFT needs demonstrations, so collect those first.")
        return Recommendation("neither: collect data first", reasons, [DEMOS])

    # The model already follows instructions and the goal is tone, style or safety.
    reasons.append("The model already follows instructions, so SFT is not needed to make it usable.")
    if has_preferences:
        reasons.append("DPO on the existing preference pairs refines the replies without a reward model; "
                       "keep the learning rate low so the model stays close to where it started.")
        return Recommendation("DPO", reasons, [])
    if has_demonstrations:
        reasons.append("Without preference pairs, demonstrations written in the wanted tone can still teach it "
                       "by imitation; pairs would let DPO refine it further.")
        return Recommendation("SFT", reasons, [PAIRS + " (to refine with DPO later)"])
    reasons.append("DPO needs preference pairs, so collect those first.")
    return Recommendation("neither: collect data first", reasons, [PAIRS])


def explain(rec: Recommendation) -> str:
    """The recommendation as plain text: the method, why, and what data to collect or prepare."""
    lines = [f"Recommended: {rec.method}", "", "Why:"]
    lines += [f"  - {r}" for r in rec.reasons]
    lines += ["", "Data still needed:"]
    lines += [f"  - {d}" for d in rec.data_needed] or ["  - nothing more: the data at hand is enough to start"]
    return "\n".join(lines)
