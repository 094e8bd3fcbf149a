"""Tests for nano_forkrl/tasks/sources.py: an unreadable source is a DataError naming the file (and line); a JSON
number that no float holds as written stays its text."""
import pytest

from nano_forkrl.tasks.data import load_problems
from nano_forkrl.utils.errors import DataError
from nano_forkrl.tasks.sources import InexactNumber, rows


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


def test_a_json_number_no_float_holds_stays_its_text(tmp_path):
    path = tmp_path / "n.jsonl"
    path.write_text('{"a": 0.5, "b": 1e30, "c": 1e400, "d": 2.0000000000000001, "e": 7}\n')
    [(row, where, _)] = list(rows(str(path), None))
    assert row == {"a": 0.5, "b": 1e30, "c": "1e400", "d": "2.0000000000000001", "e": 7}
    assert isinstance(row["c"], InexactNumber) and isinstance(row["d"], InexactNumber)
    assert type(row["a"]) is float and type(row["b"]) is float and where == f"{path} line 1"
    path.write_text('{"problem": "p", "answer": "1", "score": 1e400}\n')  # only an answer made of it is refused
    assert load_problems(path)[0]["answer"] == "1"


@pytest.mark.parametrize("line, message", [
    ('{"problem": "p", "answer": ' + "1" * 5000 + "}", "bad JSON (ValueError: Exceeds the limit"),
    ("[" * 100_000 + "]" * 100_000, "bad JSON (RecursionError"),
])
def test_json_python_cannot_hold_names_the_file_and_line(tmp_path, line, message):
    path = tmp_path / "huge.jsonl"
    path.write_text('{"problem": "p", "answer": "1"}\n' + line + "\n")
    with pytest.raises(DataError) as err:
        load_problems(path)
    assert str(err.value).startswith(f"{path} line 2: {message}")
