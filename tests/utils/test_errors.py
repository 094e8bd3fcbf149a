"""Tests for nano_forkrl/utils/errors.py: one line per error at the command line, a traceback only when asked."""
import pytest

from nano_forkrl.utils.errors import DataError, RunError, cli, describe


def _fails(err):
    def main(argv):
        raise err
    return main


@pytest.mark.parametrize("err, line", [
    (RunError("--model /x: no such folder"), "error: --model /x: no such folder\n"),
    (DataError("a.jsonl line 3: bad JSON"), "error: a.jsonl line 3: bad JSON\n"),
    (ValueError("invalid config: lr must be > 0"), "error: invalid config: lr must be > 0\n"),
])
def test_user_errors_are_one_line(err, line, capsys, monkeypatch):
    monkeypatch.delenv("NANO_FORKRL_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exit_:
        cli(_fails(err), [])
    assert exit_.value.code == 2 and capsys.readouterr().err == line


def test_an_unexpected_error_names_its_type_and_the_way_to_the_traceback(capsys, monkeypatch):
    monkeypatch.delenv("NANO_FORKRL_DEBUG", raising=False)
    with pytest.raises(SystemExit):
        cli(_fails(KeyError("x")), [])
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "KeyError" in err and "--debug" in err and "Traceback" not in err
    assert describe(ZeroDivisionError()).startswith("ZeroDivisionError: ZeroDivisionError()")


def test_debug_flag_or_environment_shows_the_traceback(monkeypatch):
    monkeypatch.delenv("NANO_FORKRL_DEBUG", raising=False)
    with pytest.raises(RunError):
        cli(_fails(RunError("x")), ["--debug"])
    monkeypatch.setenv("NANO_FORKRL_DEBUG", "1")
    with pytest.raises(KeyError):
        cli(_fails(KeyError("x")), [])
    monkeypatch.setenv("NANO_FORKRL_DEBUG", "0")
    with pytest.raises(SystemExit):
        cli(_fails(KeyError("x")), [])


def test_success_returns_the_result():
    assert cli(lambda argv: 7, []) == 7
