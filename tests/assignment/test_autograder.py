"""End to end (slow: minutes on 2 cores): the autograder zip, unpacked as Gradescope does, grading
blank, solution and tampering submissions through `run_autograder`, with the installed environment
instead of setup.sh.

The two full runs (blank: 0, solution uploaded flat: 100) grade all nine parts; the others grade
the parts their point needs (under package paths in a folder: every part that grades a file of its
own, full points). Each tampering submission keeps the blank
bodies and adds an attack of issue 23; it must score 0 on every part it is graded on: the mask part,
and for the attack that rewrites the grader's files, a second part after it (advantage).
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pytest
from conftest import session_shared

from nano_forkrl.assignment.cli import autograder
from nano_forkrl.assignment.autograder import collect
from nano_forkrl.assignment.markers import scan
from nano_forkrl.assignment.parts import PARTS

ROOT = Path(__file__).resolve().parents[2]
STUDENT = ["nano_forkrl/sampling.py", "nano_forkrl/verifier/extract.py", "nano_forkrl/verify.py",
           "nano_forkrl/advantage.py", "nano_forkrl/entropy.py", "nano_forkrl/masking.py",
           "nano_forkrl/loss.py",
           "nano_forkrl/update.py"]
FEW = ["--parts", "mask", "advantage", "--jobs", "1"]  # mask first, then advantage
ONE = ["--parts", "mask"]


@pytest.fixture(scope="module")
def zipped(tmp_path_factory):
    """The autograder zip and write_zip's answer, built once per test session: under pytest-xdist
    the workers share one build (a lock in the session's temp folder) instead of one each."""
    with session_shared(tmp_path_factory, "autograder") as where:
        where.mkdir(exist_ok=True)
        out = where / "autograder.zip"
        if not (where / "autograder.json").is_file():
            (where / "autograder.json").write_text(json.dumps(autograder(out)))
        done = json.loads((where / "autograder.json").read_text())
    return out, done


@pytest.fixture(scope="module")
def solution(zipped):
    """The student files of the solution, as the autograder recorded them."""
    return {rel: (ROOT / rel).read_text() for rel in STUDENT}


def autograde(zip_path, where, submission, *args, python=sys.executable):
    """Unpack the zip into where/source, put `submission` {path: text} in where/submission, run
    run_autograder."""
    (where / "source").mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(where / "source")
    for name in ("setup.sh", "run_autograder"):
        (where / "source" / name).chmod(0o755)
    for rel, text in submission.items():
        (where / "submission" / rel).parent.mkdir(parents=True, exist_ok=True)
        (where / "submission" / rel).write_text(text)
    (where / "submission").mkdir(exist_ok=True)
    env = {**os.environ, "AUTOGRADER_ROOT": str(where), "AUTOGRADER_PYTHON": python}
    start = time.monotonic()
    done = subprocess.run(["bash", str(where / "source" / "run_autograder"), *args], env=env,
                          capture_output=True, text=True, timeout=900)
    seconds = time.monotonic() - start
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((where / "results" / "results.json").read_text()), seconds


def blank_files(zip_path):
    with zipfile.ZipFile(zip_path) as z:
        return {rel: z.read(rel).decode() for rel in STUDENT}


def parts_of(results):
    found = {}
    for test in results["tests"]:
        part = test["name"].split(":")[0]
        found.setdefault(part, []).append(test)
    return found


def test_the_zip_has_its_scripts_at_the_root_and_no_solution(zipped):
    path, done = zipped
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        text = "\n".join(z.read(n).decode(errors="replace") for n in names)
        modes = {n: z.getinfo(n).external_attr >> 16 for n in ("setup.sh", "run_autograder")}
    assert {"setup.sh", "run_autograder", "assignment.json", "assignment_expected.json",
            "requirements.txt", "nano_forkrl/assignment/hidden.py",
            "nano_forkrl/assignment/hidden_nn.py"} <= names
    assert all(mode & 0o111 for mode in modes.values())
    assert "pip uninstall -y torchvision torchaudio torchcodec" in text
    assert "set -euo pipefail" in text
    removed, given = set(), []  # solution lines; the repository's text outside the regions
    regions = scan(ROOT)
    for rel, spans in regions.items():
        lines = (ROOT / rel).read_text().splitlines()
        inside = {n for _, b, e, _ in spans for n in range(b - 1, e)}
        removed |= {lines[n].strip() for n in inside if len(lines[n].strip()) >= 25}
        given += [s for n, s in enumerate(lines) if n not in inside]
    given_text = "\n".join(given + [(ROOT / n).read_text() for n in names
                                    if n not in regions and (ROOT / n).is_file()])
    assert len(removed) > 100 and not [s for s in removed if s in text and s not in given_text]
    assert done["cases"] >= 30


def test_blank_scores_0_and_the_solution_uploaded_flat_scores_100(zipped, solution, tmp_path):
    path, _ = zipped
    blank, seconds = autograde(path, tmp_path / "blank", blank_files(path))
    assert blank["score"] == 0 and len(blank["tests"]) >= 30
    assert all(t["score"] == 0 for t in blank["tests"])
    assert set(parts_of(blank)) == {"sampling", "extract", "verify", "advantage", "entropy",
                                    "logprobs", "mask", "loss", "update"}
    assert any(t["name"].endswith("(hidden)") for t in blank["tests"])
    assert "NotImplementedError: mask: see tutorials/06_masking_forking_tokens.ipynb" \
        in blank["output"]
    flat = {Path(rel).name: text for rel, text in solution.items()}
    solved, seconds_solved = autograde(path, tmp_path / "flat", flat)
    assert solved["score"] == 100, solved["output"]
    assert "missing" not in solved["output"] and "deadline 480 s" in solved["output"]
    print(f"\ngrading time: blank {seconds:.0f} s, solution {seconds_solved:.0f} s")


def test_the_solution_under_package_paths_in_a_folder_gets_full_points(zipped, solution, tmp_path):
    """Each uploaded file is graded: every part but logprobs, whose file (entropy.py) the entropy
    part grades too; the flat upload above is graded on all nine parts."""
    parts = [p for p in PARTS if p != "logprobs"]
    uploaded = {f"myrepo/{rel}": t for rel, t in solution.items()}
    results, seconds = autograde(zipped[0], tmp_path / "tree", uploaded, "--parts", *parts)
    assert set(parts_of(results)) == set(parts)
    assert results["score"] == 100 - PARTS["logprobs"].points, results["output"]
    assert "missing" not in results["output"] and "several" not in results["output"]
    print(f"\ngrading time: solution under package paths {seconds:.0f} s")


def test_package_paths_in_a_folder_and_missing_files_are_reported(zipped, solution, tmp_path):
    path, _ = zipped
    uploaded = {f"myrepo/{rel}": text for rel, text in solution.items()
                if "masking" in rel or "extract" in rel}
    results, _ = autograde(path, tmp_path / "pkg", uploaded, "--parts", "mask", "extract")
    assert results["score"] == 20, results["output"]
    assert ("missing: nano_forkrl/loss.py (upload it as loss.py or nano_forkrl/loss.py); "
            "graded as blank") in results["output"]


def test_a_results_json_comes_back_when_the_grader_itself_fails(zipped, tmp_path):
    results, _ = autograde(zipped[0], tmp_path / "broken", {}, python="false")
    assert results == {"score": 0, "tests": [],
                       "output": "the grader failed (exit 1) before writing results"}


def test_collect_takes_a_zip_upload(tmp_path):
    with zipfile.ZipFile(tmp_path / "submission.zip", "w") as z:
        z.writestr("nano_forkrl/masking.py", "x = 1\n")
        z.writestr("../evil.py", "x = 2\n")
    files, notes = collect(tmp_path, ["nano_forkrl/masking.py"])
    assert files == {"nano_forkrl/masking.py": b"x = 1\n"} and notes == []


def with_prefix(files, prefix="", suffix=""):
    return {rel: prefix + text + suffix for rel, text in files.items()}


RUNTEST = """import _pytest.python
_pytest.python.Function.runtest = lambda self: None
import nano_forkrl.assignment.cases as _c
_c.judge = lambda *a, **k: (True, "")
"""
CONFTEST = """import os
_hook = "def pytest_runtest_makereport(item, call):\\n    call.excinfo = None\\n"
for _where in (".", os.readlink(f"/proc/{os.getppid()}/cwd")):
    for _name in ("conftest.py", "tests/conftest.py"):
        try:
            os.makedirs(os.path.join(_where, "tests"), exist_ok=True)
            open(os.path.join(_where, _name), "w").write(_hook)
        except OSError:
            pass
    try:
        _cases = os.path.join(_where, "nano_forkrl/assignment/cases.py")
        open(_cases, "a").write("\\nCASES.clear()\\n")
    except OSError:
        pass
"""
EXEC_REFERENCE = """
import os as _os
_src = _os.readlink(f"/proc/{_os.getppid()}/cwd")
exec(open(_os.path.join(_src, "nano_forkrl", _os.path.basename(__file__))).read())
"""


def double_fork(pid_file):
    return f"""import os, time
try:
    _env = open(f"/proc/{{os.getppid()}}/environ", "rb").read().split(b"\\0")
    _env = dict(l.split(b"=", 1) for l in _env if b"=" in l)
except OSError:  # as nobody, the grader's environment is not readable
    _env = {{}}
_root = _env.get(b"AUTOGRADER_ROOT", b"/autograder").decode()
_results = os.path.join(_root, "results", "results.json")
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        open({str(pid_file)!r}, "a").write(f"{{os.getpid()}}\\n")
        for _ in range(600):
            time.sleep(0.1)
            try:
                if os.path.exists(_results):
                    open(_results, "w").write('{{"score": 10, "tests": []}}')
            except OSError:
                pass
        os._exit(0)
    os._exit(0)
"""


@pytest.mark.parametrize("attack", ["runtest", "skip", "conftest", "double_fork", "exec_reference"])
def test_every_tampering_submission_scores_0(zipped, tmp_path, attack):
    path, _ = zipped
    blank = {Path(rel).name: text for rel, text in blank_files(path).items()}
    pids = Path(tempfile.mkdtemp())  # writable by the grandchild even when it runs as nobody
    pids.chmod(0o777)
    pid_file = pids / "grandchildren"
    submission = {
        "runtest": lambda: with_prefix(blank, RUNTEST),
        "skip": lambda: {n: re.sub(r'raise NotImplementedError\(.*\)',
                                   'import pytest; pytest.skip("no")', t)
                         for n, t in blank.items()},
        "conftest": lambda: with_prefix(blank, CONFTEST),
        "double_fork": lambda: with_prefix(blank, double_fork(pid_file)),
        "exec_reference": lambda: with_prefix(blank, suffix=EXEC_REFERENCE),
    }[attack]()
    # only the conftest attack acts on a later part (it rewrites the grader's files): it grades
    # two parts
    parts = FEW if attack == "conftest" else ONE
    results, _ = autograde(path, tmp_path / attack, submission, *parts)
    if attack == "double_fork":
        time.sleep(2)  # the grandchildren would rewrite results.json now
        results = json.loads((tmp_path / attack / "results" / "results.json").read_text())
        pids = [int(p) for p in pid_file.read_text().split()]
        assert pids, "no grandchild started"
        assert not [p for p in pids if Path(f"/proc/{p}").exists()], "a grandchild survived"
    assert results["score"] == 0 and results["tests"], results
    assert all(t["score"] == 0 for t in results["tests"])
    graded = {"mask", "advantage"} if attack == "conftest" else {"mask"}
    assert set(parts_of(results)) == graded
    # as nobody, the grader's files cannot be written at all
    if attack == "conftest" and "as user nobody" not in results["output"]:
        assert "the grader's own files changed during grading" in json.dumps(results)


def test_a_loop_is_cut_and_the_deadline_holds(zipped, tmp_path):
    path, _ = zipped
    files = {Path(rel).name: text for rel, text in blank_files(path).items()}
    files = {n: t.replace("import torch\n", "import torch\nwhile True:\n    pass\n", 1)
             for n, t in files.items()}
    results, seconds = autograde(path, tmp_path / "loop", files, "--parts", "mask", "advantage",
                                 "entropy", "--jobs", "1", "--timeout", "4", "--deadline", "6")
    assert seconds < 60 and results["score"] == 0
    text = json.dumps(results)
    assert "stopped after 4 s (an endless loop?)" in text
    assert "the overall deadline had passed" in text
