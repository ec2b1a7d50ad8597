"""smolkit.evaluation: replies and answer log-probs come back for the right rows, computed as DPOTrainer splits them."""

import pytest
import torch

from smolkit.chat import split_answer
from smolkit.evaluation import answer_lengths, completion_logps, generate, implicit_rewards, preference_accuracy

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


def test_answer_lengths_count_the_answer_and_its_end_of_turn(tokenizer):
    lengths = answer_lengths(tokenizer, PROMPTS, ANSWERS)
    ids = [tokenizer(a[0]["content"], add_special_tokens=False)["input_ids"] for a in ANSWERS]
    assert lengths.tolist() == [len(i) + 1 for i in ids]  # + the end-of-turn token, which DPO also scores


def test_preference_accuracy_and_implicit_rewards_by_dimension():
    dims = ["safe", "safe", "format"]
    chosen, rejected = torch.tensor([-5.0, -9.0, -3.0]), torch.tensor([-6.0, -8.0, -1.0])
    acc = preference_accuracy(dims, chosen, rejected, torch.tensor([5, 9, 3]), torch.tensor([3, 4, 1]))
    assert acc["logp_accuracy"] == pytest.approx({"overall": 1 / 3, "format": 0.0, "safe": 0.5})
    assert acc["logp_per_token_accuracy"]["overall"] == pytest.approx(2 / 3)  # -1 a token beats -2 twice; -1 ties -1
    rewards = implicit_rewards(dims, chosen + 1, rejected, chosen, rejected, beta=0.1)
    assert rewards["reward_accuracy"]["overall"] == 1.0 and abs(rewards["mean_margin"]["overall"] - 0.1) < 1e-6
