"""Tests for nano_forkrl/run/steps/evaluation.py: the pass@k estimator, avg@k on a scripted sampler,
the CLI defaults."""
from math import comb

import pytest
import torch

from nano_forkrl.run.steps.evaluation import evaluate, pass_at_k
from nano_forkrl.sampling import Rollout


@pytest.mark.parametrize("n, c, k", [(4, 0, 1), (4, 1, 1), (4, 2, 2), (10, 3, 5), (16, 16, 8),
                                     (8, 7, 4)])
def test_pass_at_k_matches_brute_force(n, c, k):
    # probability that a random k-subset of n samples (c correct) contains a correct one
    brute = 1 - (comb(n - c, k) / comb(n, k) if n - c >= k else 0)
    assert pass_at_k(n, c, k) == pytest.approx(brute)


def test_pass_at_k_with_k_equal_n_is_any_correct():
    assert pass_at_k(4, 0, 4) == 0 and pass_at_k(4, 1, 4) == 1


class Scripted:
    """Answers problem i with the texts in script[i], one per sample; records the RNG handling."""

    def __init__(self, script):
        self.script, self.state, self.seeds = script, "train-state", []

    def rng_state(self):
        return self.state

    def set_rng_state(self, s):
        self.state = s

    def reseed(self, seed):
        self.seeds.append(seed)
        self.state = "eval-state"

    def generate(self, prompts, n=1, max_new_tokens=None):
        return [Rollout(i, [1], [2] * (j + 1), self.script[i][j], "eos")
                for i in range(len(prompts)) for j in range(n)]


def test_avg_and_pass_at_k_and_rng_restored():
    problems = [{"problem": "1+1", "answer": "2"}, {"problem": "2+2", "answer": "4"}]
    s = Scripted([[r"\boxed{2}", r"\boxed{3}"], [r"\boxed{5}", "no answer"]])
    out = evaluate(s, problems, k=2, template="plain", seed=7)
    assert out["avg@2"] == pytest.approx(0.25)   # (1/2 + 0/2) / 2
    assert out["pass@2"] == pytest.approx(0.5)   # problem 1 solved once, problem 2 never
    assert out["per_problem"] == [1, 0] and out["mean_length"] == pytest.approx(1.5)
    # a fixed eval seed, the training RNG stream untouched
    assert s.seeds == [7] and s.state == "train-state"


def test_cli_defaults_follow_what_the_model_is(tmp_path):
    from nano_forkrl.run.steps.evaluation import cli_defaults
    assert cli_defaults("tiny", None, None, None, long=4096) == ("tiny", "plain", 48)
    # the chain model (Plan B's testbed): its own held-out set and response budget
    assert cli_defaults("chain", None, None, None, long=4096) == ("chain", "plain", 160)
    # the set alone names the task: its template and budget too (this was 48 tokens for chain)
    assert cli_defaults("x", "chain", None, None, long=4096) == ("chain", "plain", 160)
    qwen = cli_defaults("Qwen/Qwen3-0.6B-Base", None, None, None, long=4096)
    assert qwen == ("math500", "boxed", 4096)
    # given: kept
    assert cli_defaults("x", "aime24", "r1-zero", 100, long=4096) == ("aime24", "r1-zero", 100)
    # a checkpoint of ours trained on the tiny task: the tiny set, not math500 with 4,096 tokens
    # (which hung)
    trained = {"train_data": "tiny", "eval_data": "tiny", "template": "plain", "max_new_tokens": 40}
    torch.save({"config": trained}, tmp_path / "trainer_state.pt")
    assert cli_defaults(str(tmp_path), None, None, None, long=4096) == ("tiny", "plain", 40)
