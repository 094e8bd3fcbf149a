"""Tests for nano_forkrl/engines/vllm_sampler.py against a real vLLM engine: vLLM's CPU build here (float32, so
greedy tokens must equal TorchSampler's exactly), the GPU build on a CUDA machine (bf16, equal up to near-ties).

The model is Qwen3-shaped where it matters to vLLM: head_dim 64 (vLLM's CPU attention refuses the tiny preset's
16) and Qwen3's 151,936-row embedding, with the real Qwen3 tokenizer (151,669 ids) when ../shared has it, else
the tiny tokenizer (then the unused ids are masked by the allowed-id list instead of the logit bias).
One engine serves the module (starting one costs ~10 s on 2 cores); each test pushes its own weights first.
"""
import importlib.util
import json
from pathlib import Path

import pytest
import torch
from conftest import greedy_rows_equal_up_to_ties, qwen3_shaped, tiny_prompts, vocab_tokenizer

from nano_forkrl.engines.torch_sampler import TorchSampler
from nano_forkrl.engines.vllm_sampler import MAX_IDS, check_version, unused_id_mask
from nano_forkrl.entropy import token_logprobs_and_entropy
from nano_forkrl.run.data import collate_rollouts

pytestmark = pytest.mark.skipif(importlib.util.find_spec("vllm") is None,
                                reason="vllm is not installed (README, 'Install': the CPU build for laptops and CI)")
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


@pytest.fixture(scope="module")
def engine():
    from nano_forkrl.engines.vllm_sampler import VLLMSampler

    tok = vocab_tokenizer()
    model = qwen3_shaped(tok).to(DEVICE)
    sampler = VLLMSampler(model, tok, max_new_tokens=24, temperature=0, gpu_memory_utilization=0.2)
    yield sampler, tok
    del sampler


def _equal_greedy(model, a, b):
    if DEVICE == "cpu":  # float32 on both sides: the same tokens, not just up to ties
        return sum(x.response_ids == y.response_ids for x, y in zip(a, b, strict=True))
    return greedy_rows_equal_up_to_ties(model, a, b)


def test_version_gate_and_the_unused_id_mask():
    check_version("0.26.0")
    check_version("0.32.0")
    for bad in ("0.25.2", "0.34.0", "1.0.0"):
        with pytest.raises(RuntimeError, match="not supported"):
            check_version(bad)
    assert unused_id_mask(151_669, 151_936) == {"logit_bias": {i: -100.0 for i in range(151_669, 151_936)}}
    assert unused_id_mask(300, 151_936) == {"allowed_token_ids": list(range(300))}
    assert unused_id_mask(64, 64) == {}
    with pytest.raises(ValueError, match="1024"):
        unused_id_mask(5_000, 151_936)


def test_engine_starts_without_weight_files_and_follows_every_push(engine):
    """Greedy equality with TorchSampler before and after an update that changes every greedy row: only true if
    the push reached every layer (the engine started from random 'dummy' weights of another seed)."""
    sampler, tok = engine
    model = qwen3_shaped(tok, seed=1).to(DEVICE)
    source = Path(sampler.source_dir)
    assert not list(source.glob("*.safetensors")) and not list(source.glob("*.bin"))  # config + tokenizer only
    assert json.loads((source / "config.json").read_text())["architectures"] == ["Qwen3ForCausalLM"]
    prompts = tiny_prompts(8)
    torch_s = TorchSampler(model, tok, max_new_tokens=24, temperature=0)
    sampler.load_weights(model)
    before = torch_s.generate(prompts)
    assert _equal_greedy(model, before, sampler.generate(prompts)) == len(prompts)
    with torch.no_grad():  # "an update": every tensor moves
        for p in model.parameters():
            p.add_(torch.randn_like(p) * p.std().clamp(min=0.02))
    torch_s.load_weights(model)
    sampler.load_weights(model)
    after = torch_s.generate(prompts)
    assert sum(a.response_ids != b.response_ids for a, b in zip(before, after)) == len(prompts)
    assert _equal_greedy(model, after, sampler.generate(prompts)) == len(prompts)


def test_sampled_ids_stay_inside_the_tokenizer(engine):
    """The unused rows are made the most likely tokens; with the mask none is ever sampled at temperature 1."""
    sampler, tok = engine
    model = qwen3_shaped(tok, seed=2, tie=False).to(DEVICE)
    limit = len(tok)
    with torch.no_grad():
        model.lm_head.weight[limit:] = 30 * model.lm_head.weight[:1]  # logit 30 z_0: far above the rest half the time
    rows = tiny_prompts(8)
    with torch.no_grad():  # the control: unmasked, the model's own favourite is often an unused id
        top = [model(input_ids=torch.tensor([tok.encode(p)], device=DEVICE)).logits[0].argmax(-1) for p in rows]
    assert torch.cat(top).ge(limit).float().mean() > 0.2
    sampler.load_weights(model)
    sampler.temperature = 1.0
    try:
        out = sampler.generate(rows, n=4)
    finally:
        sampler.temperature = 0
    ids = [t for r in out for t in r.response_ids]
    assert len(ids) > 100 and max(ids) < limit
    masks = sampler.sampling_mask
    assert all(len(v) <= MAX_IDS for v in masks.values())  # vLLM's V2 GPU runner refuses longer lists


def test_logprobs_equal_the_teacher_forced_ones(engine):
    """vLLM's raw log-probs of its own samples vs entropy.py's teacher-forced log-probs at temperature 1."""
    sampler, tok = engine
    model = qwen3_shaped(tok, seed=3).to(DEVICE)
    sampler.load_weights(model)
    sampler.temperature = 1.0
    try:
        out = sampler.generate(tiny_prompts(4), n=2)
    finally:
        sampler.temperature = 0
    batch = collate_rollouts([r.prompt_ids for r in out], [r.response_ids for r in out], tok.pad_token_id)
    with torch.no_grad():
        logp, _ = token_logprobs_and_entropy(model, batch["input_ids"].to(DEVICE), batch["attention_mask"].to(DEVICE),
                                             labels=batch["labels"].to(DEVICE))
    mask = batch["response_mask"].bool()
    ours = torch.tensor([lp for r in out for lp in r.logprobs])
    tol = 1e-3 if DEVICE == "cpu" else 0.1  # float32 kernels vs float32; bf16 engine vs float32 trainer
    assert ours.shape == logp.cpu()[mask].shape
    assert (ours - logp.cpu()[mask]).abs().max() < tol


# ---------------------------------------------------------------- the loop with --sampler vllm
LOOP = ["--sampler", "vllm", "--template", "plain", "--prompts-per-step", "4", "--group-size", "4",
        "--mini-batch-prompts", "2", "--max-new-tokens", "12", "--no-dynamic-sampling", "--eval-every", "0",
        "--eval-n", "4", "--eval-k", "1", "--save-every", "1", "--lr", "1e-3", "--weight-decay", "0.1"]


def _weights(path):
    from transformers import AutoModelForCausalLM
    return AutoModelForCausalLM.from_pretrained(path).state_dict()


def test_training_steps_with_vllm_rollouts_resume_exactly(tmp_path):
    """Two steps, then a "killed" run resumed to the same third step: the same weights, bit for bit, as one
    uninterrupted three-step run, and the same samples at step 3 (the vLLM seed stream is restored). A random
    model earns no reward, so the weights move by AdamW's decoupled weight decay; every step still samples with
    vLLM, scores, updates and pushes the new weights."""
    from nano_forkrl.run.config import parse_args
    from nano_forkrl.train import train

    folder = tmp_path / "qwen3-shaped"  # config.json + tokenizer, no weights: --model random:DIR
    tok = vocab_tokenizer()
    config = qwen3_shaped(tok).config
    config.initializer_range = 0.1  # logits of std ~1 instead of ~0.2: entropies differ from token to token
    config.save_pretrained(folder)
    tok.save_pretrained(folder)
    args = LOOP + ["--model", f"random:{folder}", "--device", DEVICE]
    full = train(parse_args(args + ["--steps", "3", "--out-dir", str(tmp_path / "a")]))
    train(parse_args(args + ["--steps", "2", "--out-dir", str(tmp_path / "b")]))
    resumed = train(parse_args(args + ["--steps", "3", "--out-dir", str(tmp_path / "b"), "--resume"]))
    steps = [r for r in full if "eval" not in r]
    assert [r["step"] for r in steps] == [1, 2, 3] and all(r["time"]["sync"] > 0 for r in steps)
    assert [r["step"] for r in resumed if "eval" not in r] == [3]
    same = ("response_length", "entropy_mean", "entropy_p80")  # functions of the sampled tokens
    assert [steps[-1][k] for k in same] == [[r for r in resumed if "eval" not in r][0][k] for k in same]
    assert steps[0]["entropy_mean"] != steps[1]["entropy_mean"]  # a new seed per call: new samples
    a, b = _weights(tmp_path / "a" / "checkpoint"), _weights(tmp_path / "b" / "checkpoint")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_engine_leaves_the_process_environment_and_threads_as_they_were(engine):
    """vLLM's start-up exports LD_PRELOAD, LOCAL_WORLD_SIZE, ... and sets torch to one thread; later subprocesses
    of the trainer (and the trainer itself) must not inherit that. The module's engine has started by now."""
    import os

    assert "LD_PRELOAD" not in os.environ and "LOCAL_WORLD_SIZE" not in os.environ
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, before - 1) if before > 1 else 2)
    assert torch.get_num_threads() != before  # set_num_threads works again (vLLM's worker makes it a no-op)
    torch.set_num_threads(before)
