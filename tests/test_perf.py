"""smolkit.perf: speed-ups compute what they replace, runs measure what they claim, held-out losses are fp32."""

import copy
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from transformers import LlamaForCausalLM
from trl import DPOConfig, SFTConfig, SFTTrainer

import smolkit.perf.runs as runs
import smolkit.perf.speed as speed
import smolkit.perf.training as training
from smolkit import perf
from smolkit.data import load_sft
from smolkit.runtime import outputs_dir, read_json


@pytest.fixture
def tiny_model(tiny):
    model = tiny[0].eval()
    model.config.use_cache = False  # with a cache, transformers builds no block mask from restarting position ids
    return model


@pytest.fixture(autouse=True)
def _restore_trl():
    yield
    speed.compact_lm_head(on=False)


def test_document_sizes_reads_restarting_position_ids():
    assert speed.document_sizes(torch.tensor([[0, 1, 2, 0, 1, 0]]), 6) == [3, 2, 1]
    assert speed.document_sizes(torch.tensor([[0, 1, 2, 3]]), 4) is None  # one document: plain SDPA
    assert speed.document_sizes(torch.tensor([[1, 1, 0, 1]]), 4) is None  # left padding, not packing
    assert speed.document_sizes(torch.tensor([[0, 1, 0, 1], [0, 1, 0, 1]]), 4) is None  # a padded batch


def _record_splits(patch):
    """What `document_sizes` answers each time `packed_attention` asks (None: that call went to plain SDPA)."""
    calls, sizes = [], speed.document_sizes
    patch.setattr(speed, "document_sizes", lambda ids, n: calls.append(sizes(ids, n)) or calls[-1])
    return calls


def test_packed_attention_equals_each_document_alone_forward_and_backward(tiny_model, tokenizer, monkeypatch):
    tiny_model.set_attn_implementation("sdpa")
    plain = copy.deepcopy(tiny_model)
    docs = [tokenizer(t, return_tensors="pt").input_ids[0] for t in ["Hello there, how are you?", "Paris.", "Yes."]]
    ids, positions = torch.cat(docs)[None], torch.cat([torch.arange(len(d)) for d in docs])[None]
    assert speed.use_packed_attention(tiny_model)
    splits = _record_splits(monkeypatch)
    alone = torch.cat([plain(d[None]).logits[0] for d in docs])
    packed = tiny_model(ids, position_ids=positions).logits[0]
    assert splits == [[len(d) for d in docs]] * 2  # both layers ran the three documents on their own
    assert torch.allclose(packed, alone, atol=1e-4)
    masked = plain(ids, position_ids=positions).logits[0]  # SDPA with the block mask transformers builds
    packed.logsumexp(-1).sum().backward()
    masked.logsumexp(-1).sum().backward()
    for (name, a), b in zip(tiny_model.named_parameters(), plain.parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-4), name


def test_packed_attention_leaves_padded_batches_other_attention_and_gpus_alone(tiny_model, tokenizer, monkeypatch):
    tiny_model.set_attn_implementation("eager")
    assert not speed.use_packed_attention(tiny_model) and tiny_model.config._attn_implementation == "eager"
    tiny_model.set_attn_implementation("sdpa")
    assert perf.speed_up(tiny_model, "cuda") == [] and tiny_model.config._attn_implementation == "sdpa"
    plain = copy.deepcopy(tiny_model)
    assert speed.use_packed_attention(tiny_model)
    splits = _record_splits(monkeypatch)
    batch = tokenizer(["Hello there, how are you?", "Yes."], return_tensors="pt", padding=True)
    assert torch.allclose(tiny_model(**batch).logits, plain(**batch).logits, atol=1e-5)
    assert splits and all(s is None for s in splits)  # it ran, and handed every call to SDPA


def _sft_run(model, tokenizer, tmp_path, fast):
    """Two SFT steps of the tiny model; its losses, its weights, and what TRL's LM head was asked to project."""
    import trl.trainer.utils as trl_utils

    model.set_attn_implementation("sdpa")
    if fast:
        assert len(perf.speed_up(model, "cpu")) >= 2
    config = SFTConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, assistant_only_loss=True,
                       padding_free=True, max_length=None, use_cpu=True, bf16=False, activation_checkpointing=False,
                       report_to="none", save_strategy="no", max_steps=2, logging_steps=1, learning_rate=1e-3)
    trainer = SFTTrainer(model=model, args=config, train_dataset=load_sft(split="train").select(range(8)),
                         processing_class=tokenizer)
    rows, head = [], trl_utils._ChunkedLogProbFunction

    class Counted:
        @staticmethod
        def apply(hidden, *rest):
            rows.append(hidden.shape[0])
            return head.apply(hidden, *rest)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trl_utils, "_ChunkedLogProbFunction", Counted)
        trainer.train()
    losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
    return losses, [p.detach().clone() for p in model.parameters()], rows


def test_speed_ups_train_like_trl_alone_on_fewer_positions(tiny_model, tokenizer, tmp_path):
    losses, params, rows = _sft_run(copy.deepcopy(tiny_model), tokenizer, tmp_path / "plain", fast=False)
    fast_losses, fast_params, fast_rows = _sft_run(tiny_model, tokenizer, tmp_path / "fast", fast=True)
    answers = sum(sum(tokenizer.apply_chat_template(r["messages"], return_dict=True,
                                                    return_assistant_tokens_mask=True)["assistant_masks"])
                  for r in load_sft(split="train").select(range(8)))
    assert sum(fast_rows) == answers < sum(rows)  # compact: only the answer tokens were projected
    assert fast_losses == pytest.approx(losses, rel=1e-4)
    assert all(torch.allclose(a, b, atol=1e-4) for a, b in zip(params, fast_params))


def test_compact_lm_head_switches_trl_on_cpu_and_back():
    utils, cpu = speed.trl_utils(), torch.device("cpu")  # every name it replaces exists in the installed TRL
    tile = utils._CHUNKED_LOGPROB_CHUNK_SIZE
    assert speed.compact_lm_head() and utils._use_triton(cpu) is True
    assert utils._CHUNKED_LOGPROB_CHUNK_SIZE == speed.CPU_VOCAB_TILE
    speed.compact_lm_head(on=False)
    assert utils._use_triton(cpu) is False and utils._CHUNKED_LOGPROB_CHUNK_SIZE == tile


@pytest.mark.parametrize("name", speed.TRL_NAMES)
def test_compact_lm_head_fails_loudly_naming_what_trl_lacks(monkeypatch, name):
    import trl
    import trl.trainer.utils as trl_utils

    monkeypatch.delattr(trl_utils, name)
    with pytest.raises(RuntimeError, match=f"{name}.*TRL {trl.__version__}"):
        perf.speed_up(SimpleNamespace(config=SimpleNamespace(_attn_implementation="eager")), "cpu")


def _resident_block(mib):
    """`mib` MiB of fresh anonymous pages, each written once: resident until closed, whatever malloc keeps."""
    import mmap

    block = mmap.mmap(-1, mib * 2**20)
    for offset in range(0, len(block), mmap.PAGESIZE):
        block[offset] = 1
    return block


def _allocate(spec):
    """In a fresh process: a block that maps and unmaps `spec['mib']` MiB, then a quiet block."""
    with perf.track() as busy:
        _resident_block(spec["mib"]).close()
    with perf.track() as quiet:
        pass
    return {"busy": busy, "quiet": quiet}


def test_track_sees_the_peak_of_a_freed_block_in_a_fresh_process():
    if runs.lifetime_peak_mib() is None:
        pytest.skip("no kernel count of peak memory (getrusage) here: only sampled peaks, which can miss a block")
    out = perf.in_fresh_process(_allocate, {"mib": 300}, timeout=300)
    busy, quiet = out["busy"], out["quiet"]
    assert busy["peak_source"] == "kernel" and busy["peak_mib"] - busy["start_mib"] > 250
    assert quiet["peak_mib"] < busy["peak_mib"] - 250  # the next block does not inherit the freed peak


def test_track_samples_a_block_whose_peak_an_earlier_one_hides(monkeypatch):
    monkeypatch.setattr(runs, "lifetime_peak_mib", lambda: 1e9)  # an earlier, higher peak the kernel keeps
    with perf.track(interval=0.001) as held:
        block = _resident_block(100)
        time.sleep(0.2)  # the sampler (every 1 ms) sees the block while it is resident
        block.close()
    assert held["peak_source"] == "sampled" and held["peak_mib"] - held["start_mib"] > 80


def _die(spec):
    import os
    import signal

    os.kill(os.getpid(), signal.SIGKILL)


def _fail(spec):
    raise ValueError("bad setting deep inside")


def test_a_child_that_dies_or_raises_is_reported_with_its_job():
    with pytest.raises(RuntimeError, match=r"stage='sft'.*signal 9 \(SIGKILL"):
        perf.in_fresh_process(_die, {"stage": "sft", "settings": {"bf16": True}}, timeout=300)
    out = perf.in_fresh_process(_fail, {"stage": "sft"}, timeout=300)
    assert out["error"] == "ValueError: bad setting deep inside" and "_fail" in out["traceback"]


def test_a_training_run_reports_this_runs_numbers(tiny_dir, tokenizer):
    r = perf.training_run("sft", {"per_device_train_batch_size": 2}, steps=2, model=tiny_dir)
    lengths = [perf.sequence_lengths(row, tokenizer)[0] for row in load_sft(split="train").select(range(4))]
    assert r["tokens"] == sum(lengths) and r["step_seconds"] == r["step_times"][1]  # the step after warm-up
    assert r["processed_tokens_per_micro_batch"] == (2 * max(lengths[:2]) + 2 * max(lengths[2:])) / 2  # padded
    assert r["trainable"] == r["parameters"] == LlamaForCausalLM.from_pretrained(tiny_dir).num_parameters()
    assert r["peak_mib"] > r["baseline_mib"] > 0 and r["bf16"] is False  # fp32 unless asked (TRL defaults to bf16)
    lora = perf.training_run("sft", {"per_device_train_batch_size": 2}, steps=1, model=tiny_dir,
                             lora={"r": 4, "lora_alpha": 8, "target_modules": "all-linear"})
    assert 0 < lora["trainable"] < 0.1 * lora["parameters"]
    with pytest.raises(RuntimeError, match="per_device_train_batch_siz"):
        perf.training_run("sft", {"per_device_train_batch_siz": 2}, steps=1, model=tiny_dir)


def test_heldout_loss_is_the_fp32_loss_past_any_wrapped_forward(tiny_model, tokenizer):
    rows = load_sft(split="test").select(range(3))
    examples = perf.heldout_examples(rows, tokenizer, "sft")
    tiny_model.get_input_embeddings().weight.data.mul_(30)  # logits as large as a trained model's: bf16 shows
    labels = [torch.tensor([[i if m else -100 for i, m in zip(e["ids"], e["mask"])]]) for e in examples]
    counts = [int((x[0, 1:] != -100).sum()) for x in labels]  # the model's own loss, per answer token
    exact = float(sum(tiny_model(torch.tensor([e["ids"]]), labels=x).loss * n
                      for e, x, n in zip(examples, labels, counts)) / sum(counts))
    assert perf.heldout_loss(tiny_model, examples, "sft") == pytest.approx(exact, rel=1e-5)
    # a trainer's bf16 autocast around forward (what accelerate installs) does not reach the held-out loss
    tiny_model.forward = torch.autocast("cpu", dtype=torch.bfloat16)(tiny_model.forward)
    assert perf.heldout_loss(tiny_model, examples, "sft") == pytest.approx(exact, rel=1e-5)
    with pytest.raises(ValueError, match="fp32"):
        perf.heldout_loss(tiny_model.to(torch.bfloat16), examples, "sft")


def test_dpo_heldout_loss_is_ln2_against_itself_and_falls_when_chosen_rises(tiny_model, tokenizer):
    from smolkit.data import load_preferences

    examples = perf.heldout_examples(load_preferences(split="test").select(range(2)), tokenizer, "dpo")
    reference = perf.answer_logps(tiny_model, examples)
    assert perf.heldout_loss(tiny_model, examples, "dpo", reference) == pytest.approx(np.log(2), abs=1e-6)
    favoured = reference.clone()
    favoured[1::2, 0] += 5.0  # a reference that liked the rejected answers more than the policy does
    assert perf.heldout_loss(tiny_model, examples, "dpo", favoured) < np.log(2)


def test_training_clock_leaves_evaluation_time_out(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(training, "time", SimpleNamespace(perf_counter=lambda: now[0]))

    def evaluate(model):
        now[0] += 10.0  # each evaluation takes 10 s
        return 1.0 / (1 + now[0])

    clock = perf.TrainingClock(evaluate, perf.eval_steps(4, 2))
    clock.on_train_begin(None, None, None, model=None)
    for step in range(1, 5):
        clock.on_step_begin(None, None, None)
        now[0] += 1.0  # each step takes 1 s
        clock.on_step_end(None, SimpleNamespace(global_step=step), None, model=None)
    assert [p["step"] for p in clock.curve] == [0, 2, 4] and clock.step_times == [1.0] * 4
    assert [p["train_seconds"] for p in clock.curve] == [0.0, 2.0, 4.0] and clock.eval_seconds == 30.0
    assert perf.eval_steps(10, 4) == [3, 6, 9, 10] and perf.eval_steps(1, 4) == [1]


def test_memory_estimate_adds_up_and_responds_to_each_setting():
    shape, p = perf.ARCHITECTURES["SmolLM2-135M"], 134_515_008
    full = perf.estimate_memory(p, p, 512, **shape)
    assert full["weights"] == pytest.approx(p * 4 / 2**20) and full["optimizer"] == pytest.approx(2 * full["gradients"])
    assert full["total"] == pytest.approx(sum(v for k, v in full.items() if k != "total"))
    assert perf.estimate_memory(p, p, 512, checkpointing=True, **shape)["activations"] < full["activations"] / 5
    assert perf.estimate_memory(p, p, 1024, **shape)["activations"] == pytest.approx(2 * full["activations"])
    lora = perf.estimate_memory(p, p // 100, 512, **shape)
    assert lora["gradients"] + lora["optimizer"] < 0.02 * (full["gradients"] + full["optimizer"])
    assert perf.estimate_memory(p, p, 512, reference_copy=True, **shape)["reference"] == full["weights"]


def test_settings_per_target_follow_the_memory_estimate_and_their_code_runs():
    small, big = perf.architecture_parameters("SmolLM2-135M"), perf.architecture_parameters("SmolLM2-1.7B")
    assert 134e6 < small < 135e6 and 1.70e9 < big < 1.72e9  # the published sizes
    t4 = perf.setup_for("T4 16 GB", big, perf.ARCHITECTURES["SmolLM2-1.7B"], 16)
    assert t4["lora"] and t4["reference"] == "adapter" and t4["sft"]["fp16"] and not t4["sft"]["bf16"]
    a100 = perf.setup_for("A100/H100 80 GB", big, perf.ARCHITECTURES["SmolLM2-1.7B"], 80)
    assert not a100["lora"] and a100["sft"]["bf16"] and a100["estimate_full_mib"] < a100["budget_mib"]
    cpu = perf.setup_for("this CPU", small, perf.ARCHITECTURES["SmolLM2-135M"], 24)
    assert cpu["precision"] == "fp32" and not cpu["lora"] and cpu["sft"]["use_cpu"]
    for stage, config_class in (("sft", SFTConfig), ("dpo", DPOConfig)):
        built = eval(perf.config_code(stage, cpu[stage]), {config_class.__name__: config_class})
        assert {key: getattr(built, key) for key in cpu[stage]} == cpu[stage]


def test_bf16_is_probed_only_where_it_is_not_emulated(monkeypatch):
    import smolkit.perf.hardware as hardware

    speeds = {torch.float32: 100.0, torch.bfloat16: 250.0}
    for instructions, ratio in ((["avx512_bf16"], 2.5), ([], None)):
        monkeypatch.setattr(hardware, "bf16_instructions", lambda flags=None, found=instructions: found)
        monkeypatch.setattr(hardware, "matmul_gflops", lambda dtype, *a, fast=bool(instructions), **k: speeds[dtype]
                            if fast or dtype == torch.float32 else pytest.fail("bf16 probed where it is emulated"))
        assert perf.precision_probe("cpu")["bf16_ratio"] == ratio
    assert perf.bf16_instructions({"amx_bf16", "avx2", "avx512f"}) == ["amx_bf16"]


@pytest.mark.notebook_outputs
def test_notebook_04_measured_every_setting_and_the_equal_loss_speed_up():
    hw = read_json(outputs_dir() / "metrics" / "04_hardware.json")
    assert hw is not None, "notebooks/04_hardware.ipynb did not run to its end in this session"
    names = {r["setting"] for r in hw["runs"]}
    assert {"padding-free + CPU speed-ups", "reference: precompute_ref_log_probs"} <= names
    assert ("bf16 autocast" in names) == (hw["precision_probe"]["bf16"] is not None)
    assert all(r["step_seconds"] > 0 and r["peak_mib"] > r["baseline_mib"] > 0 for r in hw["runs"])
    assert all(r["trainable"] < 0.1 * r["parameters"] for r in hw["runs"] if r["setting"].startswith("LoRA"))
    assert abs(hw["full_ft_estimate_error"]) < 0.30 and len(hw["setups"]) == 8
    assert hw["equal_loss"] and all({"median", "reached", "target"} <= set(v) for v in hw["equal_loss"].values())
