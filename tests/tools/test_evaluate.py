"""Tests for nano_forkrl/tools/evaluate.py: the pass@k estimator and avg@k on a scripted sampler."""
from math import comb

import pytest
import torch

from nano_forkrl.tools.evaluate import evaluate, pass_at_k
from nano_forkrl.sampling import Rollout


@pytest.mark.parametrize("n, c, k", [(4, 0, 1), (4, 1, 1), (4, 2, 2), (10, 3, 5), (16, 16, 8), (8, 7, 4)])
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
        return [Rollout(i, [1], [2] * (j + 1), self.script[i][j], "eos") for i in range(len(prompts)) for j in range(n)]


def test_avg_and_pass_at_k_and_rng_restored():
    problems = [{"problem": "1+1", "answer": "2"}, {"problem": "2+2", "answer": "4"}]
    s = Scripted([[r"\boxed{2}", r"\boxed{3}"], [r"\boxed{5}", "no answer"]])
    out = evaluate(s, problems, k=2, template="plain", seed=7)
    assert out["avg@2"] == pytest.approx(0.25)   # (1/2 + 0/2) / 2
    assert out["pass@2"] == pytest.approx(0.5)   # problem 1 solved once, problem 2 never
    assert out["per_problem"] == [1, 0] and out["mean_length"] == pytest.approx(1.5)
    assert s.seeds == [7] and s.state == "train-state"  # fixed eval seed, training RNG stream untouched


def test_cli_defaults_follow_what_the_model_is(tmp_path):
    from nano_forkrl.tools.evaluate import cli_defaults
    assert cli_defaults("tiny", None, None, None, long=4096) == ("tiny", "plain", 48)
    assert cli_defaults("Qwen/Qwen3-0.6B-Base", None, None, None, long=4096) == ("math500", "boxed", 4096)
    assert cli_defaults("x", "aime24", "r1-zero", 100, long=4096) == ("aime24", "r1-zero", 100)  # given: kept
    # a checkpoint of ours trained on the tiny task: the tiny set, not math500 with 4,096 tokens (which hung)
    torch.save({"config": {"train_data": "tiny", "eval_data": "tiny", "template": "plain", "max_new_tokens": 40}},
               tmp_path / "trainer_state.pt")
    assert cli_defaults(str(tmp_path), None, None, None, long=4096) == ("tiny", "plain", 40)


# ---------------------------------------------------------------- the command line: bounds and one-line errors
def _cli_error(argv, capsys, monkeypatch):
    from nano_forkrl.tools.evaluate import main
    monkeypatch.delenv("NANO_FORKRL_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err
    return err


@pytest.mark.parametrize("argv, message", [(["--k", "0"], "--k must be >= 1"),
                                           (["--temperature", "nan"], "--temperature must be in"),
                                           (["--top-p", "2"], "--top-p must be in"),
                                           (["--max-prompt-tokens", "-1"], "--max-prompt-tokens must be >= 0")])
def test_out_of_range_arguments_are_refused(argv, message, capsys, monkeypatch):
    assert message in _cli_error(argv, capsys, monkeypatch)


def test_a_problem_longer_than_the_model_context_is_refused_before_sampling(tmp_path, capsys, monkeypatch):
    import json
    bench = tmp_path / "huge.jsonl"
    rows = [{"id": "ok", "problem": "1+1=", "answer": "2"}, {"id": "huge", "problem": "1+" * 500_000, "answer": "1"}]
    bench.write_text("".join(json.dumps(r) + "\n" for r in rows))
    err = _cli_error(["--bench", str(bench), "--k", "1"], capsys, monkeypatch)
    assert err.startswith("error: --bench ") and "problem 'huge' is a 1000001-token prompt" in err
    err = _cli_error(["--bench", str(bench), "--k", "1", "--n", "1", "--max-prompt-tokens", "2"], capsys, monkeypatch)
    assert "problem 'ok'" in err and "over the limit of 2 tokens" in err


def test_file_errors_are_one_line_naming_the_file(tmp_path, capsys, monkeypatch):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"problem": "\xff", "answer": "1"}\n')
    assert f"error: {bad} line 1: not UTF-8" in _cli_error(["--bench", str(bad)], capsys, monkeypatch)
    (tmp_path / "trainer_state.pt").write_bytes(b"torn")
    err = _cli_error(["--model", str(tmp_path)], capsys, monkeypatch)
    assert "trainer_state.pt: unreadable trainer state" in err
    assert "no such folder" in _cli_error(["--model", "/nonexistent"], capsys, monkeypatch)


def test_a_hostile_trainer_state_is_refused_and_runs_nothing(tmp_path):
    """The reported failure: `evaluate --model DIR` ran the os.system payload of DIR/trainer_state.pt."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from conftest import write_hostile_state
    marker = tmp_path / "ran"
    write_hostile_state(tmp_path / "model" / "trainer_state.pt", marker)
    env = {k: v for k, v in os.environ.items() if k != "NANO_FORKRL_DEBUG"}
    child = subprocess.run([sys.executable, "-m", "nano_forkrl.tools.evaluate", "--model", str(tmp_path / "model")],
                           cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True,
                           timeout=600)
    assert not marker.exists(), "the checkpoint's payload ran"
    lines = child.stderr.strip().splitlines()
    assert child.returncode == 2 and len(lines) == 1, child.stderr[-2000:]
    assert lines[0].startswith("error: ") and "trainer_state.pt: refused to load" in lines[0]
