"""Tests for nano_forkrl/run/sources.py: an unreadable source is a DataError naming the file (and line)."""
import pytest

from nano_forkrl.run.data import load_problems
from nano_forkrl.run.errors import DataError


def test_a_non_utf8_line_names_the_file_and_line(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"problem": "1+1", "answer": "2"}\n{"problem": "caf\xe9", "answer": "3"}\n')
    with pytest.raises(DataError, match=r"latin1\.jsonl line 2: not UTF-8 text \(byte 17 of the line\)"):
        load_problems(path)


def test_a_corrupt_parquet_file_names_the_file(tmp_path):
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"PAR1 this is not really parquet")
    with pytest.raises(DataError, match=r"bad\.parquet: not a readable parquet file"):
        load_problems(path)
