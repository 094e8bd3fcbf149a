"""Tests for nano_forkrl/run/persist/checkpoint.py: checkpoint folders that any kill leaves
resumable. (The bit-exact resume of a whole run is tested in test_train.py; the metrics log in
test_metrics.py.)"""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import make_tiny_qwen3, session_shared

from nano_forkrl.run.persist.checkpoint import (latest_checkpoint, recover, restore_state,
                                                save_checkpoint)
from nano_forkrl.run.setup.config import Config


def _sgd(model):
    return torch.optim.SGD(model.parameters(), lr=0.1)


class FakeSampler:
    def __init__(self):
        self.state = "s0"

    def rng_state(self):
        return self.state

    def set_rng_state(self, s):
        self.state = s


def test_save_then_restore_round_trip(tmp_path):
    from nano_forkrl.tasks.tiny import build_tiny_tokenizer
    tok = build_tiny_tokenizer()
    model = make_tiny_qwen3(vocab_size=len(tok))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.tensor([[1, 2, 3]])).logits.sum().backward()
    opt.step()
    sampler = FakeSampler()
    sampler.state = "after-step"
    torch.manual_seed(42)
    save_checkpoint(tmp_path, model, tok, opt, sampler, step=7, cursor=224, cfg=Config())
    assert not (tmp_path / "checkpoint.tmp").exists() and not (tmp_path / "checkpoint.old").exists()
    expected_next = torch.rand(3)
    opt2 = torch.optim.AdamW(model.parameters(), lr=1e-3)
    s2 = FakeSampler()
    torch.manual_seed(0)
    assert restore_state(tmp_path / "checkpoint", opt2, s2) == (7, 224)
    assert s2.state == "after-step" and torch.equal(torch.rand(3), expected_next)
    assert opt2.state_dict()["state"][0]["step"] == opt.state_dict()["state"][0]["step"]
    # saving again replaces the folder atomically (old one renamed, then removed)
    save_checkpoint(tmp_path, model, tok, opt, sampler, step=8, cursor=256, cfg=Config())
    state = torch.load(tmp_path / "checkpoint" / "trainer_state.pt", weights_only=True)
    assert state["step"] == 8 and state["config"]["rho"] == 0.2


def test_a_stale_temp_folder_from_a_killed_save_is_replaced(tmp_path):
    from nano_forkrl.tasks.tiny import build_tiny_tokenizer
    tok = build_tiny_tokenizer()
    model = make_tiny_qwen3(vocab_size=len(tok))
    (tmp_path / "checkpoint.tmp").mkdir()
    (tmp_path / "checkpoint.tmp" / "garbage").write_text("half written")
    save_checkpoint(tmp_path, model, tok, _sgd(model), FakeSampler(), 1, 8, Config())
    assert not (tmp_path / "checkpoint" / "garbage").exists()


def _fake(folder, step):
    """A checkpoint folder that counts as complete for `latest_checkpoint` (weights are not
    looked at)."""
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"weights")
    torch.save({"step": step}, folder / "trainer_state.pt")


def _save(tmp_path, step, model=None):
    from nano_forkrl.tasks.tiny import build_tiny_tokenizer
    tok = build_tiny_tokenizer()
    model = model or make_tiny_qwen3(vocab_size=len(tok))
    save_checkpoint(tmp_path, model, tok, _sgd(model), FakeSampler(), step, 8, Config())


def test_the_newest_complete_folder_wins(tmp_path):
    assert latest_checkpoint(tmp_path) is None
    _fake(tmp_path / "checkpoint.old", 2)  # save renamed checkpoint -> .old, then died
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint.old"
    # ... and the new one, complete, was not renamed yet: it is newer
    _fake(tmp_path / "checkpoint.tmp", 4)
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint.tmp"
    _fake(tmp_path / "checkpoint", 4)  # equal steps: checkpoint/ first
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint"


def test_incomplete_or_unreadable_folders_are_never_picked(tmp_path):
    _fake(tmp_path / "checkpoint.old", 2)
    (tmp_path / "checkpoint.tmp").mkdir()  # killed while writing: no trainer state yet
    (tmp_path / "checkpoint.tmp" / "model.safetensors").write_bytes(b"half")
    (tmp_path / "checkpoint").mkdir()
    (tmp_path / "checkpoint" / "trainer_state.pt").write_bytes(b"torn")
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint.old"
    recover(tmp_path)  # the old one comes back as checkpoint/, the rest goes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]
    assert torch.load(tmp_path / "checkpoint" / "trainer_state.pt")["step"] == 2


def test_a_kill_during_the_old_folder_clean_up_does_not_break_the_next_save(tmp_path):
    """The reported failure: checkpoint/ and checkpoint.old/ both present made the next save die
    with 'Directory not empty'."""
    _save(tmp_path, 2)
    import shutil
    shutil.copytree(tmp_path / "checkpoint", tmp_path / "checkpoint.old")
    _save(tmp_path, 4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]
    assert torch.load(tmp_path / "checkpoint" / "trainer_state.pt", weights_only=True)["step"] == 4


def test_non_finite_weights_are_never_saved(tmp_path):
    from nano_forkrl.utils.errors import RunError
    from nano_forkrl.tasks.tiny import build_tiny_tokenizer
    _save(tmp_path, 2)
    model = make_tiny_qwen3(vocab_size=len(build_tiny_tokenizer()))
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    with pytest.raises(RunError, match="non-finite weights"):
        _save(tmp_path, 4, model)
    assert torch.load(tmp_path / "checkpoint" / "trainer_state.pt", weights_only=True)["step"] == 2


def test_a_hostile_trainer_state_is_refused_and_runs_nothing(tmp_path):
    from conftest import write_hostile_state

    from nano_forkrl.run.persist.checkpoint import checkpoint_step, load_state
    from nano_forkrl.utils.errors import RunError
    marker = tmp_path / "ran"
    write_hostile_state(tmp_path / "checkpoint" / "trainer_state.pt", marker)
    with pytest.raises(RunError, match="trainer_state.pt: refused to load: .*could run code"):
        load_state(tmp_path / "checkpoint" / "trainer_state.pt")
    with pytest.raises(RunError, match="refused to load"):
        restore_state(tmp_path / "checkpoint", None, FakeSampler())
    assert checkpoint_step(tmp_path / "checkpoint") is None and latest_checkpoint(tmp_path) is None
    assert not marker.exists()


class FullDisk:
    """A file whose writes fail with ENOSPC once `room` bytes are written (a disk that fills up)."""

    def __init__(self, path, mode, room=2000):
        self.file, self.room = open(path, mode), room

    def write(self, data):
        self.room -= len(data)
        if self.room < 0:
            import errno
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self.file.write(data)

    def __getattr__(self, name):
        return getattr(self.file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()


@pytest.mark.parametrize("where", ["tokenizer", "trainer state"])
def test_a_full_disk_names_the_folder_and_cause_and_keeps_the_previous_checkpoint(
        tmp_path, monkeypatch, where):
    import errno

    import nano_forkrl.run.persist.checkpoint as ck
    from nano_forkrl.utils.errors import RunError
    from nano_forkrl.tasks.tiny import build_tiny_tokenizer
    _save(tmp_path, 2)
    tok = build_tiny_tokenizer()
    if where == "tokenizer":  # a writer that gets part of its files out, then fails
        def save_pretrained(folder):
            (Path(folder) / "tokenizer.json").write_text("{half")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC),
                          str(Path(folder) / "tokenizer.json"))
        monkeypatch.setattr(tok, "save_pretrained", save_pretrained)
    else:  # torch.save itself reports the failed write as a RuntimeError ("unexpected pos")
        monkeypatch.setattr(ck, "open", FullDisk, raising=False)
    model = make_tiny_qwen3(vocab_size=len(tok))
    with pytest.raises(RunError) as err:
        save_checkpoint(tmp_path, model, tok, _sgd(model), FakeSampler(), 4, 8, Config())
    assert f"step 4 in {tmp_path / 'checkpoint.tmp'}: no space left on device" in str(err.value)
    assert "previous checkpoint" in str(err.value)
    # no half-written folder fills the disk
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]
    monkeypatch.undo()
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint"
    assert restore_state(tmp_path / "checkpoint", _sgd(model), FakeSampler())[0] == 2


class GeneratorSampler:
    """A sampler whose RNG is a torch.Generator, as TorchSampler's."""

    def __init__(self):
        self.generator = torch.Generator().manual_seed(3)

    def rng_state(self):
        return self.generator.get_state()

    def set_rng_state(self, state):
        self.generator.set_state(state)


def test_a_checkpoint_of_another_number_of_processes_is_refused_clearly(tmp_path):
    """A torchrun checkpoint holds every rank's RNG states in a list (run/place/distributed.py);
    one process resuming it failed with `TypeError: expected a torch.ByteTensor, but got list`."""
    from nano_forkrl.utils.errors import RunError
    from nano_forkrl.tasks.tiny import build_tiny_tokenizer
    tok = build_tiny_tokenizer()
    model = make_tiny_qwen3(vocab_size=len(tok))
    two = FakeSampler()
    two.state = [{"sampler": GeneratorSampler().rng_state(), "torch": torch.get_rng_state()}
                 for _ in range(2)]

    def adamw():
        return torch.optim.AdamW(model.parameters())

    save_checkpoint(tmp_path / "two", model, tok, adamw(), two, 1, 8, Config())
    with pytest.raises(RunError, match=r"written by 2 process\(es\): resume it with as many "
                                       r"\(torchrun --nproc_per_node 2"):
        restore_state(tmp_path / "two" / "checkpoint", adamw(), GeneratorSampler())
    save_checkpoint(tmp_path / "one", model, tok, adamw(), GeneratorSampler(), 1, 8, Config())
    # the opposite case, same message
    with pytest.raises(RunError, match=r"written by 1 process\(es\)"):
        restore_state(tmp_path / "one" / "checkpoint", adamw(), GeneratorSampler(), processes=2)
    assert restore_state(tmp_path / "one" / "checkpoint", adamw(), GeneratorSampler()) == (1, 8)


# ------------------------------------------------ a real run, killed at every stage of a save
FAST = ["--eval-n", "2", "--eval-k", "1", "--prompts-per-step", "8", "--mini-batch-prompts", "4",
        "--group-size", "4", "--max-new-tokens", "40", "--eval-every", "0", "--save-every", "1"]


@pytest.fixture(scope="module")
def fast(tmp_path_factory):
    """FAST, training on 200 problems of the tiny task's train split in a JSONL file: a run
    neither draws the task's 20,000 problems nor measures their prompts (seconds per run)."""
    import json

    from nano_forkrl.tasks.arithmetic import tiny_problems
    with session_shared(tmp_path_factory, "data") as where:
        path = where / "train.jsonl"
        if not path.is_file():
            where.mkdir()
            path.write_text("".join(json.dumps(p) + "\n" for p in tiny_problems("train", 200)))
    return FAST + ["--train-data", str(path)]
STAGES = ["start", "model", "tokenizer", "state-written", "complete", "renamed-old", "renamed-new",
          "removing", "done"]
# One process imports the loop once and forks a run per stage (argv: the run folders' parent, the
# stages, the run's flags). Each run trains 2 steps and kills itself (SIGKILL) at its stage of the
# step-2 save, the one with a previous checkpoint to replace. Forking is safe here because this
# process has not started torch's thread pool (a process that has would hang in OpenMP); the
# children start theirs as fresh processes do, so they compute what `python -m nano_forkrl.train`
# does.
KILLER = """
import os, signal, sys, traceback
import nano_forkrl.run.persist.checkpoint as ck
import nano_forkrl.train as tr
# the model classes transformers imports lazily: once here, not in every run
from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen3ForCausalLM

def run(target, argv):
    saves = []

    def die_at(name):
        saves.extend([name] if name == "start" else [])
        if len(saves) == 2 and name == target:
            os.kill(os.getpid(), signal.SIGKILL)

    ck.stage = die_at
    tr.main(argv)

parent, stages, flags = sys.argv[1], sys.argv[2].split(","), sys.argv[3:]
for target in stages:
    out = os.path.join(parent, target)
    os.makedirs(out)
    pid = os.fork()
    if pid == 0:
        try:
            log = os.open(out + ".stderr", os.O_WRONLY | os.O_CREAT)
            os.dup2(log, 1)  # the run's prints too: this process's stdout is its report
            os.dup2(log, 2)
            run(target, flags + ["--out-dir", os.path.join(out, "run")])
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(1)
    print(target, os.waitpid(pid, 0)[1], flush=True)
"""


def _child_env():
    # same threads: same floating point
    return {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}


@pytest.fixture(scope="module")
def killed(tmp_path_factory, fast):
    """{stage: (wait status, stderr, run folder)} of the runs killed at each stage (each stage's
    test resumes its folder: once per session)."""
    root = Path(__file__).resolve().parents[3]
    with session_shared(tmp_path_factory, "killed") as parent:
        if not (parent / "status.txt").is_file():
            parent.mkdir()
            argv = [sys.executable, "-c", KILLER, str(parent), ",".join(STAGES), *fast,
                    "--steps", "2"]
            done = subprocess.run(argv, cwd=root, env=_child_env(), capture_output=True,
                                  text=True, timeout=900)
            assert done.returncode == 0, done.stderr[-2000:]
            (parent / "status.txt").write_text(done.stdout)
    status = dict(line.split() for line in (parent / "status.txt").read_text().splitlines())
    return {s: (int(status[s]), (parent / f"{s}.stderr").read_text(), parent / s / "run")
            for s in STAGES}


@pytest.fixture(scope="module")
def reference(tmp_path_factory, fast):
    """Parameters after 3 uninterrupted steps."""
    from nano_forkrl.run.setup.config import parse_args
    from nano_forkrl.train import train
    with session_shared(tmp_path_factory, "reference") as out:
        if not (out / "checkpoint" / "trainer_state.pt").is_file():
            train(parse_args(fast + ["--steps", "3", "--out-dir", str(out)]))
    return _params(out / "checkpoint")


def _params(folder):
    from transformers import AutoModelForCausalLM
    return AutoModelForCausalLM.from_pretrained(folder).state_dict()


@pytest.mark.parametrize("stage", STAGES)
def test_a_run_killed_at_any_stage_of_a_save_resumes_to_the_end(stage, killed, reference, fast):
    import json

    from nano_forkrl.run.setup.config import parse_args
    from nano_forkrl.train import train
    status, err, out = killed[stage]
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, err[-2000:]
    train(parse_args(fast + ["--steps", "3", "--out-dir", str(out), "--resume"]))
    folders = sorted(p.name for p in out.iterdir() if p.name.startswith("checkpoint"))
    assert folders == ["checkpoint"]
    assert torch.load(out / "checkpoint" / "trainer_state.pt", weights_only=True)["step"] == 3
    got = _params(out / "checkpoint")
    # as if it had never been killed
    assert all(torch.equal(got[k], reference[k]) for k in reference)
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    logged = [s for s in steps if s > 0]
    assert logged == sorted(logged) and steps.count(3) == 2  # step + eval


def test_sigterm_saves_the_step_in_flight_and_the_run_resumes_to_the_end(tmp_path, reference,
                                                                          fast):
    """What a cluster's preemption sends: the run finishes its step, saves, exits 143 with a
    message; the resumed run ends as if it had never been stopped."""
    import json
    import time

    from nano_forkrl.run.setup.config import parse_args
    from nano_forkrl.train import train
    out = tmp_path / "run"
    root = Path(__file__).resolve().parents[3]
    argv = [sys.executable, "-m", "nano_forkrl.train", *fast, "--save-every", "0", "--steps", "3",
            "--out-dir", str(out)]
    child = subprocess.Popen(argv, cwd=root, env=_child_env(), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    log, deadline = out / "metrics.jsonl", time.time() + 600
    # until step 1 is logged
    while not (log.exists() and '"accuracy"' in log.read_text()) and child.poll() is None:
        assert time.time() < deadline, "the child logged no step"
        time.sleep(0.05)
    # during step 2 (steps take seconds): no checkpoint exists yet
    child.send_signal(signal.SIGTERM)
    err = child.communicate(timeout=600)[1]
    assert child.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert "SIGTERM: the run stops after this step" in err
    assert "stopped by SIGTERM after step" in err
    saved = torch.load(out / "checkpoint" / "trainer_state.pt", weights_only=True)["step"]
    assert saved in (1, 2) and f"after step {saved}:" in err
    train(parse_args(fast + ["--steps", "3", "--out-dir", str(out), "--resume"]))
    got = _params(out / "checkpoint")
    assert all(torch.equal(got[k], reference[k]) for k in reference)
    steps = [json.loads(line)["step"] for line in log.read_text().splitlines()]
    assert [s for s in steps if s > 0] == [1, 2, 3, 3]  # each step once, then the final evaluation
