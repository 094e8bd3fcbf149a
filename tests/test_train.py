"""Tests for nano_forkrl/train.py: a few-step CPU run end to end, exact resume, the KL wiring.

These use the warm-started tiny model (built once into the tiny cache, about a minute on 2 cores)."""
import importlib.util
import json
import math

import pytest
import torch
from conftest import needs_cuda

from nano_forkrl.run.config import parse_args
from nano_forkrl.train import train

FAST = ["--eval-n", "8", "--eval-k", "2", "--prompts-per-step", "8", "--mini-batch-prompts", "4",
        "--group-size", "4", "--max-new-tokens", "40"]


def test_few_steps_end_to_end(tmp_path):
    out = tmp_path / "run"
    records = train(parse_args(FAST + ["--steps", "2", "--eval-every", "0", "--out-dir", str(out)]))
    steps = [r for r in records if "eval" not in r]
    evals = [r for r in records if "eval" in r]
    assert [r["step"] for r in steps] == [1, 2] and [r["step"] for r in evals] == [0, 2]
    for key in ("reward", "accuracy", "response_length", "entropy_p50", "entropy_p80", "entropy_share_below_0.01",
                "frac_tokens_trained", "clip_frac_low", "clip_frac_high", "grad_norm", "approx_kl",
                "rollout_tok_per_s", "update_tok_per_s"):
        assert key in steps[-1], key
    assert 0.15 < steps[-1]["frac_tokens_trained"] <= 0.3  # rho = 0.2 of the response tokens
    assert set(steps[-1]["time"]) == {"rollout", "logprobs", "update", "sync"}
    lines = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 4
    from transformers import AutoModelForCausalLM, AutoTokenizer
    AutoModelForCausalLM.from_pretrained(out / "checkpoint")  # a plain HF folder
    AutoTokenizer.from_pretrained(out / "checkpoint")
    assert torch.load(out / "checkpoint" / "trainer_state.pt", weights_only=False)["step"] == 2


def test_kl_to_the_initial_policy_is_wired(tmp_path):
    records = train(parse_args(FAST + ["--steps", "1", "--eval-every", "0", "--eval-n", "2", "--kl-coef", "0.1",
                                       "--out-dir", str(tmp_path), "--save-every", "0"]))
    step = [r for r in records if "eval" not in r][0]
    assert step["kl_ref"] > 0  # after the first of two mini-batch steps the policy differs from the reference


def _params(path):
    from transformers import AutoModelForCausalLM
    return {k: v.clone() for k, v in AutoModelForCausalLM.from_pretrained(path).state_dict().items()}


def test_resume_after_interruption_reaches_the_same_state(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    full = train(parse_args(FAST + ["--steps", "4", "--eval-every", "0", "--save-every", "2", "--out-dir", str(a)]))
    train(parse_args(FAST + ["--steps", "2", "--eval-every", "0", "--out-dir", str(b)]))  # "killed" after step 2
    resumed = train(parse_args(FAST + ["--steps", "4", "--eval-every", "0", "--out-dir", str(b), "--resume"]))
    pa, pb = _params(a / "checkpoint"), _params(b / "checkpoint")
    assert all(torch.equal(pa[k], pb[k]) for k in pa)
    acc = lambda recs: [(r["step"], r["accuracy"], r["loss"]) for r in recs if "eval" not in r and r["step"] > 2]
    assert acc(full) == acc(resumed)
    lines = [json.loads(l)["step"] for l in (b / "metrics.jsonl").read_text().splitlines()]
    assert [s for s in lines if s > 0] == [1, 2, 2, 3, 4, 4]  # steps and evals, nothing duplicated


@needs_cuda
@pytest.mark.parametrize("sampler", ["torch", "vllm"])
def test_cuda_tiny_preset_steps(tmp_path, sampler):
    """The loop on a GPU with each sampler: rollout -> old log-probs -> update -> weight push, twice."""
    if sampler == "vllm" and importlib.util.find_spec("vllm") is None:
        pytest.skip("vllm is not installed")
    records = train(parse_args(FAST + ["--steps", "2", "--eval-every", "0", "--device", "cuda", "--sampler", sampler,
                                       "--out-dir", str(tmp_path)]))
    steps = [r for r in records if "eval" not in r]
    assert [r["step"] for r in steps] == [1, 2] and set(steps[-1]["time"]) == {"rollout", "logprobs", "update", "sync"}
    assert all(math.isfinite(r["loss"]) and r["grad_norm"] > 0 and r["rollout_tok_per_s"] > 0 for r in steps)


def test_seed_streams_do_not_collide():
    from nano_forkrl.train import _generator
    draw = lambda *keys: torch.rand(4, generator=_generator(*keys))
    assert torch.equal(draw("mask", 0, 32), draw("mask", 0, 32))  # reproducible
    assert not torch.equal(draw("mask", 0, 32), draw("mask", 32, 0))  # seed + cursor would have made these equal
    assert not torch.equal(draw("mask", 0, 0), draw("order", 0, 0))
