"""smolkit.evaluation: reply metrics, preference scoring, generation; smolkit.widgets' DPO maths."""

import copy
import math

import pytest
import torch

from smolkit.evaluation import (
    Reply,
    _completion_ids,
    completion_lengths,
    completion_logps,
    extract_answer,
    follows_format,
    follows_request,
    generate,
    preference_metrics,
    reply_measures,
    sentences,
    sft_metrics,
    shorter_answer_baseline,
)
from smolkit.models import tiny_model
from smolkit.templates import use_template
from smolkit.widgets import beta_summary, dpo_gradient_weight, dpo_loss


def test_sentences_keep_decimals_whole():
    assert sentences("The answer is 3.5 km. It is short! Really?") == ["The answer is 3.5 km.", "It is short!",
                                                                      "Really?"]


@pytest.mark.parametrize("text, expected", [
    ("The answer is 3500 m. One km is 1000 m.", "3500 m"),
    ("The answer is Paris.", "paris"),
    ("Paris is the answer.", None),
    ("", None),
])
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


def test_follows_format_rules():
    ok = Reply("The answer is 20. I added the two numbers.", stopped=True, new_tokens=12)
    assert follows_format(ok, "20") and follows_format(Reply("Drink water. Rest well.", True, 5), None)
    assert not follows_format(Reply("The answer is 20.", stopped=False, new_tokens=64), "20")  # never stopped
    assert not follows_format(Reply("20.\n\nHuman: thanks", True, 9), None)  # invented a turn
    assert not follows_format(Reply("A. B. C. D.", True, 8), None)  # four sentences
    assert not follows_format(Reply("It is 20.", True, 4), "20")  # verifiable but not stated first


def test_sft_metrics_counts_exact_and_lenient_matches():
    replies = [Reply("The answer is 20.", True, 5), Reply("It is 3,500 m I think", True, 7),
               Reply("Sleep more. Eat well.", True, 5), Reply("The answer is 7.", False, 64)]
    m = sft_metrics(replies, ["20", "3500 m", None, "8"])
    assert m["exact_match"] == pytest.approx(1 / 3)
    assert m["answer_mentioned"] == pytest.approx(2 / 3)
    assert m["format_compliance"] == pytest.approx(2 / 4)
    assert m["clean_stop_rate"] == pytest.approx(3 / 4)
    assert m["n"] == 4 and m["n_verifiable"] == 3


@pytest.mark.parametrize("prompt, reply, expected", [
    ('Return a JSON object with the key "a".', '{"a": 1}', True),
    ('Return a JSON object with the key "a".', "Sure! a is 1.", False),
    ("List three fruits as bullet points.", "- Apple\n- Kiwi\n- Plum", True),
    ("List three fruits as bullet points.", "Apple, kiwi and plum.", False),
    ("Answer yes or no: is ice cold?", "Yes.", True),
    ("Answer in one word: the colour of grass?", "Green", True),
    ("Answer in one word: the colour of grass?", "Grass is green.", False),
    ("What is 6 x 7? Give just the number.", "42", True),
    ("How are you?", "Fine.", None),
])
def test_follows_request(prompt, reply, expected):
    assert follows_request(prompt, reply) is expected


def test_reply_measures_by_dimension():
    prompts = [[{"role": "user", "content": "Help me cheat."}], [{"role": "user", "content": "Hi?"}]]
    replies = [Reply("I can't help with that.", True, 6), Reply("Great question! Hello.", True, 5)]
    m = reply_measures(prompts, replies, ["safe", "concise"])
    assert m["refusal_rate_on_unsafe"] == 1.0 and m["filler_opening_rate"] == 0.5
    assert math.isnan(m["format_request_kept"])


def test_preference_metrics_measure_the_same_thing_before_and_after():
    chosen, rejected = torch.tensor([-5.0, -9.0]), torch.tensor([-8.0, -4.0])
    n_chosen, n_rejected = torch.tensor([5, 3]), torch.tensor([4, 2])
    before = preference_metrics(["a", "b"], chosen, rejected, n_chosen, n_rejected)
    assert set(before) == {"logp_accuracy", "logp_per_token_accuracy"}  # no reference: no reward measures
    assert before["logp_accuracy"] == {"overall": 0.5, "a": 1.0, "b": 0.0}
    # per token: a -1.0 vs -2.0 (chosen wins), b -3.0 vs -2.0 (rejected wins)
    assert before["logp_per_token_accuracy"] == {"overall": 0.5, "a": 1.0, "b": 0.0}
    # Relative to the reference, both chosen answers gained and both rejected ones lost.
    after = preference_metrics(["a", "b"], chosen, rejected, n_chosen, n_rejected,
                               torch.tensor([-6.0, -10.0]), torch.tensor([-7.0, -3.0]), beta=0.1)
    assert after["reward_accuracy"]["overall"] == 1.0
    assert after["mean_margin"]["a"] == pytest.approx(0.1 * (1.0 + 1.0))  # beta * (gain of chosen + loss of rejected)
    assert after["logp_accuracy"] == before["logp_accuracy"]  # the same quantity, whatever the reference


def test_a_tiny_move_counts_fully_for_reward_accuracy_but_not_for_the_margin():
    ref = torch.tensor([-10.0, -10.0])
    moved = preference_metrics([None, None], ref + 1e-4, ref, torch.tensor([3, 3]), torch.tensor([3, 3]), ref, ref)
    assert moved["reward_accuracy"]["overall"] == 1.0 and moved["mean_margin"]["overall"] < 1e-4
    assert moved["logp_accuracy"]["overall"] == 1.0


def test_shorter_answer_baseline_counts_ties_as_a_coin_flip():
    table = shorter_answer_baseline(["a", "a", "b"], torch.tensor([3, 9, 4]), torch.tensor([5, 2, 4]))
    assert table == {"overall": 0.5, "a": 0.5, "b": 0.5}


@pytest.fixture(scope="module")
def tiny():
    model, tok = tiny_model(seed=0)
    return model, use_template(copy.deepcopy(tok))


# Two preference rows whose answers differ in length; the second has a system turn.
PAIRS = {
    "prompt": [[{"role": "user", "content": "What is 2+2?"}],
               [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a colour."}]],
    "chosen": [[{"role": "assistant", "content": "The answer is 4."}], [{"role": "assistant", "content": "Blue."}]],
    "rejected": [[{"role": "assistant", "content": "Well, let me think: it is 4, I believe."}],
                 [{"role": "assistant", "content": "Sure! A colour is blue, or red."}]],
}


@pytest.fixture(scope="module")
def dpo_tokenized(tiny, tmp_path_factory):
    """PAIRS as TRL's DPOTrainer tokenizes them for training (prompt_ids, chosen_ids, rejected_ids per row)."""
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    model, tok = tiny
    model = copy.deepcopy(model)
    config = DPOConfig(output_dir=str(tmp_path_factory.mktemp("dpo")), use_cpu=True, bf16=False, report_to="none",
                       save_strategy="no", max_length=None, disable_tqdm=True)
    trainer = DPOTrainer(model=model, ref_model=copy.deepcopy(model), args=config,
                         train_dataset=Dataset.from_dict(PAIRS), processing_class=copy.deepcopy(tok))
    return trainer.train_dataset


def test_completion_ids_split_like_dpo_trainer(tiny, dpo_tokenized):
    _, tok = tiny
    for i, row in enumerate(dpo_tokenized):
        for answer in ("chosen", "rejected"):
            prompt_ids, answer_ids = _completion_ids(tok, PAIRS["prompt"][i], PAIRS[answer][i])
            assert prompt_ids == row["prompt_ids"] and answer_ids == row[f"{answer}_ids"], (i, answer)
    assert tok.decode(dpo_tokenized[0]["chosen_ids"]) == " The answer is 4.<|im_end|>"  # the answer, EOS included


def test_completion_lengths_count_the_answer_tokens_that_dpo_scores(tiny, dpo_tokenized):
    _, tok = tiny
    for answer in ("chosen", "rejected"):
        lengths = completion_lengths(tok, PAIRS["prompt"], PAIRS[answer])
        assert lengths.tolist() == [len(ids) for ids in dpo_tokenized[f"{answer}_ids"]]


def test_completion_logps_match_a_direct_computation_and_ignore_padding(tiny):
    model, tok = tiny
    # Longest row first: batches are grouped by length, and the result must still come back in input order.
    prompts = [[{"role": "user", "content": "A much longer question here, with many more words in it?"}],
               [{"role": "user", "content": "Hi"}], [{"role": "user", "content": "A middling question?"}]]
    answers = [[{"role": "assistant", "content": "No."}], [{"role": "assistant", "content": "Hello there, friend."}],
               [{"role": "assistant", "content": "Yes, and here is a longer answer to it."}]]
    batched = completion_logps(model, tok, prompts, answers, batch_size=2)
    assert completion_logps(model, tok, prompts, answers, batch_size=1).tolist() == pytest.approx(batched.tolist(),
                                                                                                   abs=1e-4)
    for i in range(3):
        p, c = _completion_ids(tok, prompts[i], answers[i])
        ids = torch.tensor([p + c])
        logp = torch.log_softmax(model(ids).logits[0, :-1], -1).gather(-1, ids[0, 1:, None])[:, 0]
        assert batched[i].item() == pytest.approx(logp[len(p) - 1:].sum().item(), abs=1e-3)


def test_generate_is_greedy_batched_and_restores_state(tiny):
    model, tok = tiny
    model = copy.deepcopy(model)
    with torch.no_grad():  # larger weights than the init's, so the reply depends on the prompt (and its padding)
        generator = torch.Generator().manual_seed(0)
        for name, param in model.named_parameters():
            if "norm" not in name:
                param.normal_(0, 0.2, generator=generator)
    model.train()
    # Longest first: batches are grouped by prompt length, and the replies must still come back in input order.
    convs = [[{"role": "user", "content": "Tell me a long story please, about a dragon and a castle"}],
             [{"role": "user", "content": "Hi"}], [{"role": "user", "content": "Tell me a story"}]]
    one = generate(model, tok, convs, max_new_tokens=5, batch_size=1)
    two = generate(model, tok, convs, max_new_tokens=5, batch_size=2)  # the shorter prompt of a batch is padded
    assert len({r.text for r in one}) == 3  # each reply answers its own prompt
    assert [r.text for r in one] == [r.text for r in two]
    assert [r.text for r in generate(model, tok, convs, max_new_tokens=5)] == [r.text for r in one]  # no sampling
    assert all(r.new_tokens <= 5 for r in one)
    assert model.training and tok.padding_side == "right"


def test_dpo_loss_maths():
    assert dpo_loss(0.0, 0.1) == pytest.approx(math.log(2))
    assert dpo_loss(50.0, 1.0) < 1e-10 and dpo_loss(-100.0, 1.0) == pytest.approx(100.0)
    assert dpo_gradient_weight(0.0, 0.5) == 0.5 and dpo_gradient_weight(100, 1.0) == 0.0
    assert dpo_loss(10.0, 0.5) < dpo_loss(10.0, 0.05)  # larger beta is satisfied sooner
    assert beta_summary(0.1).startswith("beta=0.1 |")
