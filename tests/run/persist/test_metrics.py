"""Tests for nano_forkrl/run/persist/metrics.py: the metrics log on resume, a torn last line, a
damaged line."""
import json

import pytest

from nano_forkrl.utils.errors import RunError
from nano_forkrl.run.persist.metrics import Logger, read_log


def _steps(path):
    return [json.loads(line)["step"] for line in (path / "metrics.jsonl").read_text().splitlines()]


def test_logger_drops_lines_written_after_the_checkpoint(tmp_path):
    log = Logger(tmp_path, 0)
    for step in (0, 1, 2, 3):
        log.log({"step": step, "accuracy": 0.1 * step})
    Logger(tmp_path, 2)  # resuming from a checkpoint taken at step 2: step 3 is replayed
    assert _steps(tmp_path) == [0, 1, 2]
    Logger(tmp_path, 0)  # a fresh run starts a fresh log
    assert (tmp_path / "metrics.jsonl").read_text() == ""


def test_a_torn_last_line_is_dropped_on_resume(tmp_path, capsys):
    log = Logger(tmp_path, 0)
    for step in (0, 1, 2):
        log.log({"step": step})
    with (tmp_path / "metrics.jsonl").open("a") as f:
        f.write('{"step": 3, "acc')  # killed while appending
    Logger(tmp_path, 2)
    assert _steps(tmp_path) == [0, 1, 2]
    assert "torn last line" in capsys.readouterr().err


def test_a_damaged_line_inside_the_log_names_the_file_and_line(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 0}\n{"step": 1,\n{"step": 2}\n')
    with pytest.raises(RunError, match=r"metrics.jsonl line 2"):
        read_log(tmp_path / "metrics.jsonl")
    (tmp_path / "metrics.jsonl").write_text('{"step": 0}\n{"no step": 1}\n')
    with pytest.raises(RunError, match=r"line 2: not a metrics record"):
        read_log(tmp_path / "metrics.jsonl")


def test_no_log_reads_as_empty(tmp_path):
    assert read_log(tmp_path / "metrics.jsonl") == []
