"""Tests for nano_forkrl/train.py: a few-step CPU run end to end, exact resume, data order, dynamic sampling.

These use the warm-started tiny model (built once into the tiny cache, about a minute on 2 cores)."""
import json

import pytest
import torch

from nano_forkrl.config import parse_args
from nano_forkrl.sampling import Rollout
from nano_forkrl.train import collect_rollouts, next_prompts, train

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


def test_prompt_stream_is_resumable_and_covers_each_epoch():
    problems = [{"id": str(i)} for i in range(7)]
    first, c = next_prompts(problems, 0, 5, seed=3)
    second, c = next_prompts(problems, c, 9, seed=3)
    whole, _ = next_prompts(problems, 0, 14, seed=3)
    assert first + second == whole and c == 14
    assert sorted(p["id"] for p in whole[:7]) == sorted(p["id"] for p in problems)  # one epoch = a permutation
    assert whole[:7] != whole[7:]  # a new permutation each epoch


class Scripted:
    """Prompt i answers correctly in sample j iff script(i, j); counts calls."""

    def __init__(self, script):
        self.script, self.calls = script, 0

    def generate(self, prompts, n=1, max_new_tokens=None):
        self.calls += 1
        return [Rollout(i, [1], [2], r"\boxed{%s}" % ("1" if self.script(self.calls, i, j) else "0"), "eos")
                for i in range(len(prompts)) for j in range(n)]


def test_dynamic_sampling_drops_equal_groups_and_samples_more():
    cfg = parse_args(["--prompts-per-step", "4", "--mini-batch-prompts", "2", "--group-size", "2"])
    problems = [{"id": str(i), "problem": "p", "answer": "1"} for i in range(50)]
    # first batch: only prompts 0 and 1 have mixed rewards; second batch: all mixed
    sampler = Scripted(lambda call, i, j: j == 0 and (call > 1 or i < 2))
    kept, cursor, stats = collect_rollouts(cfg, sampler, None, problems, 0)
    assert sampler.calls == 2 and cursor == 8 and len(kept) == 4 and stats["groups_kept"] == 4
    assert all(s.tolist() == [1.0, 0.0] for _, s in kept)
    assert stats["accuracy"] == pytest.approx(2 / 8)  # logged from the first, unfiltered batch


def test_without_dynamic_sampling_every_group_is_kept():
    cfg = parse_args(["--prompts-per-step", "4", "--mini-batch-prompts", "2", "--group-size", "2",
                      "--no-dynamic-sampling"])
    problems = [{"id": str(i), "problem": "p", "answer": "1"} for i in range(50)]
    sampler = Scripted(lambda call, i, j: False)
    kept, cursor, _ = collect_rollouts(cfg, sampler, None, problems, 0)
    assert sampler.calls == 1 and len(kept) == 4 and cursor == 4
