"""Tests for nano_forkrl/run/rundir.py: an existing run is continued or replaced only when asked."""
import pytest
import torch

from nano_forkrl.run.config import Config
from nano_forkrl.run.errors import RunError
from nano_forkrl.run.rundir import plan, prepare


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
    prepare(Config(out_dir=str(out / "deeper")))
    assert (out / "deeper").is_dir()


def test_an_existing_run_is_never_replaced_without_overwrite(tmp_path):
    _run(tmp_path)
    with pytest.raises(RunError, match="already holds a run.*--resume.*--overwrite"):
        plan(Config(out_dir=str(tmp_path)))
    assert plan(Config(out_dir=str(tmp_path), resume=True)) == tmp_path / "checkpoint"
    cfg = Config(out_dir=str(tmp_path), overwrite=True)
    assert plan(cfg) is None
    (tmp_path / "notes.txt").write_text("kept")
    prepare(cfg)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # only the run's own files went


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
