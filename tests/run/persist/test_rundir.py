"""Tests for nano_forkrl/run/persist/rundir.py: an existing run is continued or replaced only when asked; one run at a
time writes into a folder."""
import os
import signal
import subprocess
import sys

import pytest
import torch

from nano_forkrl.run.setup.config import Config
from nano_forkrl.utils.errors import RunError
from nano_forkrl.run.persist.rundir import plan, prepare


def _run(out, complete=True):
    (out / "checkpoint").mkdir(parents=True)
    (out / "metrics.jsonl").write_text('{"step": 0}\n')
    if complete:
        torch.save({"step": 2}, out / "checkpoint" / "trainer_state.pt")


def test_a_new_or_empty_folder_starts_fresh_and_nothing_is_created_by_plan(tmp_path):
    out = tmp_path / "new"
    assert plan(Config(out_dir=str(out))) is None and plan(Config(out_dir=str(out), resume=True)) is None
    assert not out.exists()
    out.mkdir()
    (out / "notes.txt").write_text("not a run")
    assert plan(Config(out_dir=str(out))) is None
    prepare(Config(out_dir=str(out / "deeper"))).close()
    assert (out / "deeper").is_dir()


def test_an_existing_run_is_never_replaced_without_overwrite(tmp_path):
    _run(tmp_path)
    with pytest.raises(RunError, match="already holds a run.*--resume.*--overwrite"):
        plan(Config(out_dir=str(tmp_path)))
    assert plan(Config(out_dir=str(tmp_path), resume=True)) == tmp_path / "checkpoint"
    cfg = Config(out_dir=str(tmp_path), overwrite=True)
    assert plan(cfg) is None
    (tmp_path / "notes.txt").write_text("kept")
    prepare(cfg).close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "run.lock"]  # only the run's own files went


def test_resume_without_a_complete_checkpoint_stops_and_changes_nothing(tmp_path):
    _run(tmp_path, complete=False)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(RunError, match="no complete checkpoint.*Nothing was changed.*--overwrite"):
        plan(Config(out_dir=str(tmp_path), resume=True))
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_an_out_dir_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(RunError, match="is a file"):
        plan(Config(out_dir=str(tmp_path / "f")))


def test_a_second_run_into_a_folder_in_use_is_refused(tmp_path):
    cfg = Config(out_dir=str(tmp_path / "run"), overwrite=True)
    held = prepare(cfg)
    (tmp_path / "run" / "metrics.jsonl").write_text('{"step": 0}\n')
    with pytest.raises(RunError, match=f"run is in use by another run \\(process {os.getpid()} holds"):
        prepare(cfg)  # --overwrite would have removed the running run's log
    assert (tmp_path / "run" / "metrics.jsonl").exists()
    held.close()  # the first run ended
    prepare(cfg).close()


HOLDER = """
import sys, time
from nano_forkrl.run.setup.config import Config
from nano_forkrl.run.persist.rundir import prepare
held = prepare(Config(out_dir=sys.argv[1]))
print("holding", flush=True)
time.sleep(600)
"""


def test_the_lock_of_a_killed_run_is_gone_at_once(tmp_path):
    """The operating system releases the lock of a process however it ends, SIGKILL included: no stale lock."""
    out = tmp_path / "run"
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "holding"
        with pytest.raises(RunError, match=f"in use by another run \\(process {child.pid} holds .*run.lock"):
            prepare(Config(out_dir=str(out)))
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
    prepare(Config(out_dir=str(out))).close()


def test_resume_refuses_a_hostile_trainer_state_without_running_it(tmp_path):
    from conftest import write_hostile_state
    marker = tmp_path / "ran"
    (tmp_path / "metrics.jsonl").write_text('{"step": 0}\n')
    write_hostile_state(tmp_path / "checkpoint" / "trainer_state.pt", marker)
    with pytest.raises(RunError, match="no complete checkpoint .*trainer_state.pt: refused to load.*Nothing was "
                                       "changed"):
        plan(Config(out_dir=str(tmp_path), resume=True))
    assert not marker.exists()
