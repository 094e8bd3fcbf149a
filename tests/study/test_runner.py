import json
import sys
import time

import pytest

from nano_forkrl.study import runner


def child(code):
    return [sys.executable, "-c", code]


def test_write_json_is_complete_or_absent(tmp_path, monkeypatch):
    path = tmp_path / "a" / "r.json"
    runner.write_json(path, {"x": 1})
    assert json.loads(path.read_text()) == {"x": 1}
    assert sorted(p.name for p in path.parent.iterdir()) == ["r.json"]

    def killed(src, dst):  # the process dies between writing and renaming
        raise KeyboardInterrupt

    monkeypatch.setattr(runner.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        runner.write_json(tmp_path / "b.json", {"x": 2})
    assert not (tmp_path / "b.json").exists()  # only a hidden temporary, never the result name


def test_queue_runs_skips_and_resumes(tmp_path):
    done = tmp_path / "done.json"
    done.write_text("{}")
    ok, bad = tmp_path / "ok.json", tmp_path / "bad.json"
    write_env = ("import json, os, sys; json.dump({'omp': os.environ['OMP_NUM_THREADS']}, "
                 f"open({str(ok)!r}, 'w'))")
    tasks = [(done, child("raise SystemExit(3)")), (ok, child(write_env)),
             (bad, child("raise SystemExit(2)"))]
    status = runner.run_queue(tasks, jobs=2, poll_s=0.05)
    assert [s[1] for s in status] == ["skipped", 0, 2]
    assert json.loads(ok.read_text()) == {"omp": "1"}  # each child runs with one thread
    assert (tmp_path / "ok.json.log").exists() and not bad.exists()
    # a second call retries only the failed one
    again = runner.run_queue(tasks, jobs=2, poll_s=0.05)
    assert [s[1] for s in again] == ["skipped", "skipped", 2]


def test_queue_runs_at_most_jobs_at_once_and_stops_launching(tmp_path):
    stamp = "import sys, time; open(sys.argv[1], 'w').write(str(time.time())); time.sleep(0.6)"
    paths = [tmp_path / f"{i}.json" for i in range(3)]
    tasks = [(path, child(stamp) + [str(path)]) for path in paths]
    runner.run_queue(tasks, jobs=2, poll_s=0.05)
    starts = [float((tmp_path / f"{i}.json").read_text()) for i in range(3)]
    assert abs(starts[0] - starts[1]) < 0.5 and starts[2] - min(starts[:2]) >= 0.5
    late = [(tmp_path / "late.json", child("pass"))]
    assert runner.run_queue(late, jobs=2, stop_at=time.time() - 1)[0][1] == "not started"


def test_code_commit_names_the_checkout(tmp_path):
    commit = runner.code_commit()
    assert commit == "unknown" or len(commit.split("+")[0]) == 40
    assert runner.code_commit(tmp_path) == "unknown"
