"""Tests for nano_forkrl/tools/evaluate.py: the command line's refusals and one-line errors."""
import pytest


def _cli_error(argv, capsys, monkeypatch):
    from nano_forkrl.tools.evaluate import main
    monkeypatch.delenv("NANO_FORKRL_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err
    return err


@pytest.mark.parametrize("argv, message", [
    (["--k", "0"], "--k must be >= 1"),
    (["--temperature", "nan"], "--temperature must be in"),
    (["--top-p", "2"], "--top-p must be in"),
    (["--max-prompt-tokens", "-1"], "--max-prompt-tokens must be >= 0"),
])
def test_out_of_range_arguments_are_refused(argv, message, capsys, monkeypatch):
    assert message in _cli_error(argv, capsys, monkeypatch)


def test_a_problem_longer_than_the_model_context_is_refused_before_sampling(tmp_path, capsys,
                                                                            monkeypatch):
    import json
    bench = tmp_path / "huge.jsonl"
    rows = [{"id": "ok", "problem": "1+1=", "answer": "2"},
            {"id": "huge", "problem": "1+" * 500_000, "answer": "1"}]
    bench.write_text("".join(json.dumps(r) + "\n" for r in rows))
    err = _cli_error(["--bench", str(bench), "--k", "1"], capsys, monkeypatch)
    assert err.startswith("error: --bench ") and "problem 'huge' is a 1000001-token prompt" in err
    err = _cli_error(["--bench", str(bench), "--k", "1", "--n", "1", "--max-prompt-tokens", "2"],
                     capsys, monkeypatch)
    assert "problem 'ok'" in err and "over the limit of 2 tokens" in err


def test_file_errors_are_one_line_naming_the_file(tmp_path, capsys, monkeypatch):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"problem": "\xff", "answer": "1"}\n')
    err = _cli_error(["--bench", str(bad)], capsys, monkeypatch)
    assert f"error: {bad} line 1: not UTF-8" in err
    (tmp_path / "trainer_state.pt").write_bytes(b"torn")
    err = _cli_error(["--model", str(tmp_path)], capsys, monkeypatch)
    assert "trainer_state.pt: unreadable trainer state" in err
    assert "no such folder" in _cli_error(["--model", "/nonexistent"], capsys, monkeypatch)


def test_a_hostile_trainer_state_is_refused_and_runs_nothing(tmp_path, capsys, monkeypatch):
    """The reported failure: `evaluate --model DIR` ran the os.system payload of
    DIR/trainer_state.pt. In this process (the payload would create `marker` here as well): one
    error line, exit code 2."""
    from conftest import write_hostile_state
    marker = tmp_path / "ran"
    write_hostile_state(tmp_path / "model" / "trainer_state.pt", marker)
    err = _cli_error(["--model", str(tmp_path / "model")], capsys, monkeypatch)
    assert not marker.exists(), "the checkpoint's payload ran"
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err[-2000:]
    assert "trainer_state.pt: refused to load" in lines[0]
