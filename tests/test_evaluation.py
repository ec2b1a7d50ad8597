"""smolkit.evaluation: replies and answer log-probs come back for the right rows, computed as DPOTrainer splits them."""

import pytest
import torch

from smolkit.chat import split_answer
from smolkit.evaluation import completion_logps, generate, preference_accuracy

PROMPTS = [[{"role": "user", "content": "Tell me, at some length, why the sky looks blue on a clear afternoon."}],
           [{"role": "user", "content": "Hi"}],
           [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a fruit."}]]
ANSWERS = [[{"role": "assistant", "content": "Scattering."}],
           [{"role": "assistant", "content": "Hello there, friend!"}],
           [{"role": "assistant", "content": "A pear."}]]


def test_generate_returns_each_reply_in_input_order(tiny):
    model, tok = tiny
    together = generate(model, tok, PROMPTS, max_new_tokens=5, batch_size=2)  # longest first: sorting must undo it
    alone = [generate(model, tok, [p], max_new_tokens=5)[0] for p in PROMPTS]
    assert [r.text for r in together] == [r.text for r in alone]
    assert all(r.new_tokens == 5 and not r.stopped for r in together)  # an untrained model never says EOS


def test_completion_logps_sum_the_answer_tokens_only(tiny):
    model, tok = tiny
    got = completion_logps(model, tok, PROMPTS, ANSWERS, batch_size=2)
    for i, (prompt, answer) in enumerate(zip(PROMPTS, ANSWERS)):
        _, full, cut = split_answer(tok, prompt, answer)
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([full])).logits[0, :-1], dim=-1)
        expected = sum(float(logp[t - 1, full[t]]) for t in range(cut, len(full)))
        assert abs(float(got[i]) - expected) < 1e-3, i


def test_preference_accuracy_counts_chosen_ahead_by_dimension():
    dims = ["safe", "safe", "format"]
    chosen, rejected = torch.tensor([-5.0, -9.0, -3.0]), torch.tensor([-6.0, -8.0, -1.0])
    assert preference_accuracy(dims, chosen, rejected) == pytest.approx({"overall": 1 / 3, "format": 0.0, "safe": 0.5})


def test_generate_samples_above_temperature_zero_and_repeats_with_the_seed(tiny):
    model, tok = tiny
    runs = []
    for seed in (1, 1, 2):
        torch.manual_seed(seed)
        runs.append(generate(model, tok, PROMPTS[:1], max_new_tokens=8, temperature=1.5)[0].text)
    greedy = generate(model, tok, PROMPTS[:1], max_new_tokens=8)[0].text
    assert runs[0] == runs[1] and len({runs[0], runs[2], greedy}) > 1
