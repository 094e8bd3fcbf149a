"""Tests for nano_forkrl/train.py: a few-step CPU run end to end, exact resume, the KL wiring.

These use the warm-started tiny model (built once into the tiny cache, about a minute on 2 cores).
"""
import importlib.util
import json
import math

import pytest
import torch
from conftest import copied_at_save, needs_cuda

from nano_forkrl.run.setup.config import parse_args
from nano_forkrl.train import train

FAST = ["--eval-n", "8", "--eval-k", "2", "--prompts-per-step", "8", "--mini-batch-prompts", "4",
        "--group-size", "4", "--max-new-tokens", "40"]


def test_few_steps_end_to_end(tmp_path):
    out = tmp_path / "run"
    records = train(parse_args(FAST + ["--steps", "2", "--eval-every", "0", "--out-dir", str(out)]))
    steps = [r for r in records if "eval" not in r]
    evals = [r for r in records if "eval" in r]
    assert [r["step"] for r in steps] == [1, 2] and [r["step"] for r in evals] == [0, 2]
    for key in ("reward", "accuracy", "response_length", "entropy_p50", "entropy_p80",
                "entropy_share_below_0.01", "frac_tokens_trained", "clip_frac_low",
                "clip_frac_high", "grad_norm", "approx_kl",
                "rollout_tok_per_s", "update_tok_per_s"):
        assert key in steps[-1], key
    assert 0.15 < steps[-1]["frac_tokens_trained"] <= 0.3  # rho = 0.2 of the response tokens
    assert set(steps[-1]["time"]) == {"rollout", "logprobs", "update", "sync"}
    lines = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 4
    from transformers import AutoModelForCausalLM, AutoTokenizer
    AutoModelForCausalLM.from_pretrained(out / "checkpoint")  # a plain HF folder
    AutoTokenizer.from_pretrained(out / "checkpoint")
    assert torch.load(out / "checkpoint" / "trainer_state.pt", weights_only=True)["step"] == 2


def test_kl_to_the_initial_policy_is_wired(tmp_path):
    records = train(parse_args(FAST + ["--steps", "1", "--eval-every", "0", "--eval-n", "2",
                                       "--kl-coef", "0.1",
                                       "--mini-batch-prompts", "1",  # a step per kept group
                                       "--out-dir", str(tmp_path), "--save-every", "0"]))
    step = [r for r in records if "eval" not in r][0]
    # after the first mini-batch step the policy differs from the reference
    assert step["kl_ref"] > 0


def _params(path):
    from transformers import AutoModelForCausalLM
    state = AutoModelForCausalLM.from_pretrained(path).state_dict()
    return {k: v.clone() for k, v in state.items()}


def test_resume_after_interruption_reaches_the_same_state(tmp_path, monkeypatch):
    """A two-step run, and the folder it leaves right after its step-1 save (copied aside: all a
    kill there would leave) resumed to step 2: the same weights, step and log, nothing
    duplicated."""
    a, b = tmp_path / "a", tmp_path / "b"
    run = FAST + ["--steps", "2", "--eval-every", "0", "--save-every", "1"]
    with copied_at_save(monkeypatch, 1, b):
        full = train(parse_args(run + ["--out-dir", str(a)]))
    resumed = train(parse_args(run + ["--out-dir", str(b), "--resume"]))
    pa, pb = _params(a / "checkpoint"), _params(b / "checkpoint")
    assert all(torch.equal(pa[k], pb[k]) for k in pa)
    acc = lambda recs: [(r["step"], r["accuracy"], r["loss"])
                        for r in recs if "eval" not in r and r["step"] > 1]
    assert len(acc(full)) == 1 and acc(full) == acc(resumed)
    lines = [json.loads(l)["step"] for l in (b / "metrics.jsonl").read_text().splitlines()]
    assert [s for s in lines if s > 0] == [1, 2, 2]  # steps and evals, nothing duplicated


@needs_cuda
@pytest.mark.parametrize("sampler", ["torch", "vllm"])
def test_cuda_tiny_preset_steps(tmp_path, sampler):
    """The loop on a GPU with each sampler: rollout -> old log-probs -> update -> weight push,
    twice."""
    if sampler == "vllm" and importlib.util.find_spec("vllm") is None:
        pytest.skip("vllm is not installed")
    records = train(parse_args(FAST + ["--steps", "2", "--eval-every", "0", "--device", "cuda",
                                       "--sampler", sampler,
                                       "--out-dir", str(tmp_path)]))
    steps = [r for r in records if "eval" not in r]
    assert [r["step"] for r in steps] == [1, 2]
    assert set(steps[-1]["time"]) == {"rollout", "logprobs", "update", "sync"}
    assert all(math.isfinite(r["loss"]) and r["grad_norm"] > 0 and r["rollout_tok_per_s"] > 0
               for r in steps)


# ------------------------------------------------ run folders, diverging runs, bounds, CLI errors
def _tree(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("finished") / "run"
    train(parse_args(FAST + ["--steps", "2", "--eval-every", "0", "--out-dir", str(out)]))
    return out


def test_an_existing_run_is_not_overwritten_unless_asked(finished_run):
    from nano_forkrl.utils.errors import RunError
    before = _tree(finished_run)
    with pytest.raises(RunError, match="already holds a run"):
        train(parse_args(FAST + ["--steps", "2", "--eval-every", "0",
                                 "--out-dir", str(finished_run)]))
    assert _tree(finished_run) == before


def test_resume_with_a_damaged_checkpoint_stops_instead_of_starting_fresh(finished_run, tmp_path):
    import shutil
    from nano_forkrl.utils.errors import RunError
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    (out / "checkpoint" / "trainer_state.pt").unlink()
    before = _tree(out)
    with pytest.raises(RunError, match="no complete checkpoint.*Nothing was changed"):
        train(parse_args(FAST + ["--steps", "4", "--eval-every", "0", "--out-dir", str(out),
                                 "--resume"]))
    assert _tree(out) == before
    records = train(parse_args(FAST + ["--steps", "1", "--eval-every", "0", "--out-dir", str(out),
                                       "--overwrite"]))
    assert [r["step"] for r in records if "eval" not in r] == [1]


def test_resume_repairs_a_torn_last_metrics_line(finished_run, tmp_path):
    import shutil
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    with (out / "metrics.jsonl").open("a") as f:
        f.write('{"step": 3, "rew')  # killed while writing step 3's line
    train(parse_args(FAST + ["--steps", "3", "--eval-every", "0", "--out-dir", str(out),
                             "--resume"]))
    lines = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [s for s in lines if s > 0] == [1, 2, 2, 3, 3]


def test_resume_with_another_configuration_is_refused_or_really_applied(finished_run, tmp_path):
    """The reported failure: rho and seed changed mid-run silently, the new lr was ignored by the
    restored optimizer while the saved config recorded it."""
    import shutil
    from nano_forkrl.utils.errors import RunError
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    before = _tree(out)
    changed = FAST + ["--steps", "3", "--eval-every", "0", "--out-dir", str(out), "--resume",
                      "--lr", "1e-3", "--rho", "1.0", "--seed", "5"]
    with pytest.raises(RunError, match="another configuration or data") as err:
        train(parse_args(changed))
    for change in ("lr 0.0001 -> 0.001", "rho 0.2 -> 1.0", "seed 0 -> 5", "training data sha256:"):
        assert change in str(err.value)
    assert _tree(out) == before  # nothing was written
    records = train(parse_args(changed + ["--accept-config-changes"]))
    assert records[0]["frac_tokens_trained"] == 1.0  # rho 1.0: every response token
    state = torch.load(out / "checkpoint" / "trainer_state.pt", weights_only=True)
    # the lr really used
    assert state["step"] == 3 and state["optimizer"]["param_groups"][0]["lr"] == 1e-3
    config = state["config"]
    assert (config["lr"], config["rho"], config["seed"]) == (1e-3, 1.0, 5)
    lines = (out / "metrics.jsonl").read_text().splitlines()
    logged = [r for r in map(json.loads, lines) if "config_changes" in r]
    assert len(logged) == 1 and logged[0]["step"] == 2
    assert logged[0]["config_changes"]["lr"] == [1e-4, 1e-3]
    assert "training data" in logged[0]["config_changes"]


def test_a_second_run_into_a_folder_in_use_is_refused_and_a_killed_one_resumes(tmp_path):
    """The reported failure: two runs into one folder both ran, logging every step twice; with
    --overwrite the second one removes the first one's files while it trains."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from nano_forkrl.run.persist.checkpoint import checkpoint_step, latest_checkpoint
    from nano_forkrl.utils.errors import RunError
    out = tmp_path / "run"
    flags = FAST + ["--eval-every", "0", "--save-every", "1", "--out-dir", str(out),
                    "--eval-n", "2", "--eval-k", "1",  # the evaluations at the start and the end
                    "--prompts-per-step", "4", "--mini-batch-prompts", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    first = subprocess.Popen([sys.executable, "-m", "nano_forkrl.train", *flags, "--steps", "50"],
                             env=env, cwd=Path(__file__).resolve().parents[1],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 600
        while checkpoint_step(out / "checkpoint") is None:  # the first run is training
            assert first.poll() is None and time.time() < deadline, \
                "the first run saved no checkpoint"
            time.sleep(0.1)
        refused = rf"in use by another run \(process {first.pid} holds .*run.lock"
        with pytest.raises(RunError, match=refused):
            train(parse_args(flags + ["--steps", "1", "--overwrite"]))
        # the first run and its files are untouched
        assert first.poll() is None and (out / "checkpoint").exists()
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=60)
    # a kill inside a save: the newest complete one counts
    killed_at = checkpoint_step(latest_checkpoint(out))
    # the lock died with it
    records = train(parse_args(flags + ["--steps", str(killed_at + 1), "--resume"]))
    assert [r["step"] for r in records if "eval" not in r] == [killed_at + 1]


def test_resume_refuses_a_hostile_checkpoint_and_runs_nothing(tmp_path, capsys, monkeypatch):
    """The reported failure: a trainer_state.pt carrying an os.system payload ran it on --resume,
    silently. In this process (the payload would create `marker` here as well): one error line."""
    from conftest import write_hostile_state
    out, marker = tmp_path / "run", tmp_path / "ran"
    write_hostile_state(out / "checkpoint" / "trainer_state.pt", marker)
    (out / "metrics.jsonl").write_text('{"step": 0}\n')
    err = _cli_error(["--resume", "--out-dir", str(out)], capsys, monkeypatch)
    assert not marker.exists(), "the checkpoint's payload ran"
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err[-2000:]
    assert "trainer_state.pt: refused to load" in lines[0]


def test_a_diverging_run_is_undone_and_stopped_and_saves_no_broken_weights(tmp_path):
    from nano_forkrl.utils.errors import RunError
    from nano_forkrl.run.setup.policy import load_policy
    out = tmp_path / "run"
    with pytest.raises(RunError, match="stopping at step 3: 3 steps in a row.*x the weight norm"):
        train(parse_args(FAST + ["--steps", "6", "--eval-every", "0", "--save-every", "2",
                                 "--lr", "1", "--out-dir", str(out)]))
    saved, initial = _params(out / "checkpoint"), load_policy("tiny", "cpu")[0].state_dict()
    # all undone
    assert all(torch.isfinite(v).all() and torch.equal(v, initial[k]) for k, v in saved.items())
    lines = (out / "metrics.jsonl").read_text().splitlines()
    logged = [r for r in map(json.loads, lines) if "updates_rejected" in r]
    # every mini-batch step of steps 1 and 2 was undone (step 3 stopped the run before logging);
    # how many mini-batches a step has depends on how many groups dynamic sampling kept (4 prompts
    # per mini-batch)
    assert [r["step"] for r in logged] == [1, 2]
    assert [r["updates_rejected"] for r in logged] == [-(-r["groups_kept"] // 4) for r in logged]


def test_training_prompts_over_the_limit_are_skipped_counted_and_logged(tmp_path, capsys):
    from nano_forkrl.tasks.tiny import tiny_problems
    data = tmp_path / "train.jsonl"
    huge = [{"id": f"huge{i}", "problem": "1+" * 5000, "answer": "1"} for i in range(3)]
    rows = tiny_problems("train", 40) + huge
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "run"
    train(parse_args(FAST + ["--steps", "1", "--eval-every", "0", "--train-data", str(data),
                             "--out-dir", str(out)]))
    skipped = "skipped 3 of 43 training problems longer than 216 prompt tokens"
    assert skipped in capsys.readouterr().err
    first = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert first == {"step": 0, "data": {"skipped_too_long": 3, "prompt_limit": 216}}


def _cli_error(argv, capsys, monkeypatch):
    from nano_forkrl.train import main
    monkeypatch.delenv("NANO_FORKRL_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err and err.startswith("error: "), err
    return err


def test_user_errors_are_one_line_and_create_nothing(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    flags = ["--steps", "1", "--out-dir", str(out)]
    assert "no such folder" in _cli_error(["--model", "/nonexistent", *flags], capsys, monkeypatch)
    assert "lr must be a finite number" in _cli_error(["--lr", "inf", *flags], capsys, monkeypatch)
    assert "temperature must be a finite number" in _cli_error(["--temperature", "nan", *flags],
                                                               capsys, monkeypatch)
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 not parquet")
    assert "bad.parquet: not a readable parquet" in _cli_error(["--train-data", str(bad), *flags],
                                                              capsys, monkeypatch)
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"problem": "caf\xe9", "answer": "1"}\n')
    assert "latin.jsonl line 1: not UTF-8" in _cli_error(["--eval-data", str(latin), *flags],
                                                         capsys, monkeypatch)
    if not torch.cuda.is_available():
        assert "--device cuda: this machine has 0 CUDA" in _cli_error(["--device", "cuda", *flags],
                                                                      capsys, monkeypatch)
    assert not out.exists()  # nothing was created for any of these
    out.write_text("a file")
    assert "is a file" in _cli_error(flags, capsys, monkeypatch)
    from nano_forkrl.utils.errors import RunError
    from nano_forkrl.train import main
    with pytest.raises(RunError):  # --debug: the exception itself, with its traceback
        main(["--model", "/nonexistent", "--debug", "--out-dir", str(tmp_path / "x")])


def test_no_final_save_leaves_no_checkpoint(tmp_path):
    """--save-every 0 --no-final-save: a speed check writes its log but no checkpoint (a 0.6B one is
    ~7 GB)."""
    train(parse_args(FAST + ["--steps", "1", "--eval-every", "0", "--eval-n", "2",
                             "--save-every", "0", "--no-final-save", "--out-dir", str(tmp_path)]))
    assert (tmp_path / "metrics.jsonl").exists() and not (tmp_path / "checkpoint").exists()


def test_the_loop_evaluates_the_validation_split_while_it_trains(tmp_path, monkeypatch):
    import nano_forkrl.train as loop
    from nano_forkrl.tasks.arithmetic import split_of

    asked = []

    def load_split(source, split, **kwargs):
        problems = loop_load_split(source, split, **kwargs)
        asked.append((source, split, problems))
        return problems

    loop_load_split = loop.load_split
    monkeypatch.setattr(loop, "load_split", load_split)
    records = train(parse_args(FAST + ["--steps", "1", "--eval-every", "0", "--eval-n", "4",
                                       "--no-final-save", "--out-dir", str(tmp_path / "run")]))
    # the test split is never read
    assert [split for _, split, _ in asked] == ["train", "validation"]
    held_out = asked[1][2]
    assert len(held_out) == 4 and {split_of(p["problem"]) for p in held_out} == {"validation"}
    assert [r["eval"]["n_problems"] for r in records if "eval" in r] == [4, 4]
