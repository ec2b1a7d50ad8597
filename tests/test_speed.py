"""smolkit.speed: each CPU speed-up computes the same thing as the path it replaces, only faster."""

import copy
import platform

import pytest
import torch
from trl import SFTConfig, SFTTrainer

from smolkit.data import load_sft
from smolkit.models import tiny_model
from smolkit.speed import (
    CPU_VOCAB_TILE,
    PACKED_ATTENTION,
    compact_lm_head,
    document_sizes,
    keep_freed_memory,
    packed_attention,
    speed_up,
    use_packed_attention,
)
from smolkit.templates import use_template


@pytest.fixture(autouse=True)
def _restore_trl():
    yield
    compact_lm_head(on=False)


def test_document_sizes_reads_restarting_position_ids():
    assert document_sizes(torch.tensor([[0, 1, 2, 0, 1, 0]]), 6) == [3, 2, 1]
    assert document_sizes(torch.tensor([[0, 1, 2, 3]]), 4) is None  # one document: plain SDPA
    assert document_sizes(torch.tensor([[1, 1, 0, 1]]), 4) is None  # left padding, not packing
    assert document_sizes(torch.tensor([[0, 1, 0, 1], [0, 1, 0, 1]]), 4) is None  # a padded batch
    assert document_sizes(None, 4) is None


def _packed_row(tok):
    texts = ["Hello there, how are you today?", "Paris is the capital of France.", "Yes."]
    docs = [tok(t, return_tensors="pt").input_ids[0] for t in texts]
    ids = torch.cat(docs)[None]
    positions = torch.cat([torch.arange(len(d)) for d in docs])[None]
    return docs, ids, positions


def _record_splits(monkeypatch: pytest.MonkeyPatch) -> list:
    """Record what `document_sizes` answers each time `packed_attention` asks it (None: the call went to SDPA)."""
    import smolkit.speed as speed

    calls, sizes = [], speed.document_sizes

    def recorded(position_ids, length):
        calls.append(sizes(position_ids, length))
        return calls[-1]

    monkeypatch.setattr(speed, "document_sizes", recorded)
    return calls


def test_packed_attention_equals_each_document_alone_forward_and_backward(monkeypatch):
    model, tok = tiny_model(layers=2)
    model.set_attn_implementation("sdpa")
    docs, ids, positions = _packed_row(tok)
    plain = copy.deepcopy(model)
    assert use_packed_attention(model) and model.config._attn_implementation == PACKED_ATTENTION
    splits = _record_splits(monkeypatch)

    alone = torch.cat([plain(d[None], use_cache=False).logits[0] for d in docs])
    assert splits == []  # the plain copy keeps SDPA
    packed = model(ids, position_ids=positions, use_cache=False).logits[0]
    assert splits == [[len(d) for d in docs]] * 2  # each layer ran the three documents on their own
    assert torch.allclose(packed, alone, atol=1e-4)

    # gradients equal those of SDPA with the block mask transformers builds for the same packed row
    masked = plain(ids, position_ids=positions, use_cache=False).logits[0]
    packed.logsumexp(-1).sum().backward()
    masked.logsumexp(-1).sum().backward()
    for (name, a), b in zip(model.named_parameters(), plain.parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-4), name


def test_packed_attention_leaves_padded_batches_and_generation_to_sdpa(monkeypatch):
    model, tok = tiny_model(layers=2)
    model.set_attn_implementation("sdpa")
    plain = copy.deepcopy(model)
    assert use_packed_attention(model)
    splits = _record_splits(monkeypatch)
    tok.padding_side = "left"
    batch = tok(["Hello there, how are you?", "Yes."], return_tensors="pt", padding=True)
    assert torch.allclose(model(**batch).logits, plain(**batch).logits, atol=1e-5)
    out = model.generate(**batch, max_new_tokens=5, do_sample=False)
    assert torch.equal(out, plain.generate(**batch, max_new_tokens=5, do_sample=False))
    assert splits and all(s is None for s in splits)  # packed_attention ran, and handed every call to SDPA


def test_use_packed_attention_only_replaces_sdpa():
    model, _ = tiny_model(layers=1)
    model.set_attn_implementation("eager")
    assert not use_packed_attention(model)
    assert model.config._attn_implementation == "eager"


def test_packed_attention_falls_back_without_position_ids():
    q = torch.randn(1, 4, 6, 8)
    k = v = torch.randn(1, 4, 6, 8)
    module = torch.nn.Module()
    out, _ = packed_attention(module, q, k, v, None)
    want = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2)
    assert torch.allclose(out, want, atol=1e-6)


def _sft_losses(tmp_path, fast: bool) -> tuple[list[float], list[torch.Tensor], dict[str, list]]:
    """Train a tiny model 2 steps (with the speed-ups if `fast`); losses, weights, and what the patched paths saw.

    seen["compact"]: each answer of TRL's `_use_triton` in the fused LM head (True: only labelled positions scored);
    seen["rows"], seen["tile"]: the positions projected onto the vocabulary and the tile width, per LM-head call;
    seen["split"]: the document sizes each `packed_attention` call ran on their own (None: it fell back to SDPA).
    """
    import trl.trainer.utils as trl_utils

    model, tok = tiny_model(layers=2)
    model.set_attn_implementation("sdpa")
    use_template(tok)
    if fast:
        assert len(speed_up(model, "cpu")) >= 2
    train = load_sft(split="train").select(range(8))
    config = SFTConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, assistant_only_loss=True,
                       padding_free=True, max_length=None, use_cpu=True, bf16=False, report_to="none",
                       save_strategy="no", max_steps=2, logging_steps=1, learning_rate=1e-3, seed=0,
                       activation_checkpointing=False, disable_tqdm=True)
    trainer = SFTTrainer(model=model, args=config, train_dataset=train, processing_class=tok)
    seen: dict[str, list] = {"compact": [], "rows": [], "tile": []}
    decide, head = trl_utils._use_triton, trl_utils._ChunkedLogProbFunction

    def counted_decide(device):
        seen["compact"].append(decide(device))
        return seen["compact"][-1]

    class CountedHead:
        @staticmethod
        def apply(hidden, weight, bias, labels, temperature, tile, *rest):
            seen["rows"].append(hidden.shape[0])
            seen["tile"].append(tile)
            return head.apply(hidden, weight, bias, labels, temperature, tile, *rest)

    with pytest.MonkeyPatch.context() as patch:  # undone before the autouse fixture switches TRL back
        patch.setattr(trl_utils, "_use_triton", counted_decide)
        patch.setattr(trl_utils, "_ChunkedLogProbFunction", CountedHead)
        seen["split"] = _record_splits(patch)
        trainer.train()
    losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
    return losses, [p.detach().clone() for p in model.parameters()], seen


def test_speed_ups_train_exactly_like_trl_alone(tmp_path):
    from smolkit.lengths import loss_token_count, total_tokens

    compact_lm_head(on=False)
    losses, params, plain = _sft_losses(tmp_path / "plain", fast=False)
    fast_losses, fast_params, fast = _sft_losses(tmp_path / "fast", fast=True)
    # the speed-ups fired: every LM-head call scored compactly in tiles of CPU_VOCAB_TILE, and the packed rows
    # went through packed_attention one document at a time (4 conversations a row, in both layers)
    assert len(fast["compact"]) == 2 and all(fast["compact"]) and fast["tile"] == [CPU_VOCAB_TILE] * 2
    assert len(fast["split"]) == 2 * 2 and all(s is not None and len(s) == 4 for s in fast["split"])
    # ... and not without them: TRL alone scores every position, in its own tiles, with plain SDPA
    assert plain["compact"] == [False, False] and CPU_VOCAB_TILE not in plain["tile"] and plain["split"] == []
    # compact: only the answer tokens are projected; TRL alone: every token but the last of each packed row
    tok = use_template(tiny_model(layers=1)[1])
    train = load_sft(split="train").select(range(8))
    assert sum(fast["rows"]) == loss_token_count(train, tok)
    assert sum(plain["rows"]) == total_tokens(train, tok) - 2
    assert fast_losses == pytest.approx(losses, rel=1e-4)
    # equal up to float summation order (smaller LM-head tiles); a wrong gradient moves weights by ~lr = 1e-3
    assert all(torch.allclose(a, b, atol=1e-4) for a, b in zip(params, fast_params))


def test_compact_lm_head_switches_trl_on_cpu_and_back():
    import trl.trainer.utils as trl_utils

    cpu = torch.device("cpu")
    assert compact_lm_head(on=False) is False and trl_utils._use_triton(cpu) is False
    tile = trl_utils._CHUNKED_LOGPROB_CHUNK_SIZE
    assert compact_lm_head() is True and trl_utils._use_triton(cpu) is True
    assert trl_utils._CHUNKED_LOGPROB_CHUNK_SIZE == CPU_VOCAB_TILE
    assert compact_lm_head() is True  # twice is the same as once
    compact_lm_head(on=False)
    assert trl_utils._use_triton(cpu) is False and trl_utils._CHUNKED_LOGPROB_CHUNK_SIZE == tile


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_keep_freed_memory_is_accepted_by_glibc():
    assert keep_freed_memory() is True


def test_speed_up_leaves_gpus_alone():
    import trl.trainer.utils as trl_utils

    model, _ = tiny_model(layers=1)
    model.set_attn_implementation("sdpa")
    compact_lm_head(on=False)
    assert speed_up(model, "cuda") == []
    assert model.config._attn_implementation == "sdpa"
    assert trl_utils._use_triton(torch.device("cpu")) is False  # TRL's LM head left as it was
