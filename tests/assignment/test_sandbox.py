"""Tests for nano_forkrl/assignment/sandbox.py: the child's process tree dies whole, the channel closes on
time, the child runs as nobody when the grader is root. Plain Python children (no torch): fast."""
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

from nano_forkrl.assignment import sandbox

SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin:/bin") or sys.executable


def alive(pid):
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead


def run(code, tmp_path, timeout=20.0, drop=False, python=sys.executable):
    return sandbox.spawn([python, "-c", code, "{fd}"], tmp_path, {"PATH": "/usr/bin:/bin"}, timeout, drop)


def test_a_double_forked_setsid_grandchild_is_killed_and_its_late_writes_are_lost(tmp_path):
    """The issue's attack: a grandchild that outlives the child (it left the process group) and writes later."""
    assert sandbox.become_subreaper()
    pid_file = tmp_path / "grandchild.pid"
    code = f"""
import os, sys, time
fd = int(sys.argv[1])
os.write(fd, b'{{"case": "x", "outputs": 1}}\\n')
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        open({str(pid_file)!r}, "w").write(str(os.getpid()))
        for _ in range(200):
            time.sleep(0.1)
            os.write(fd, b'{{"case": "x", "outputs": 10}}\\n')
        os._exit(0)
    os._exit(0)
time.sleep(0.5)
"""
    start = time.monotonic()
    data, why, _ = run(code, tmp_path)
    assert time.monotonic() - start < 10 and why == ""
    assert b'"outputs": 1}' in data
    grandchild = int(pid_file.read_text())
    time.sleep(0.3)
    assert not alive(grandchild), "the grandchild survived"


def test_an_endless_loop_is_stopped_with_its_process_group(tmp_path):
    code = "import os, subprocess, sys; subprocess.Popen([sys.executable, '-c', 'while True: pass'])\nwhile True: pass"
    before = _live_children()  # in a whole test session, earlier tests may have left children of their own
    start = time.monotonic()
    data, why, _ = run(code, tmp_path, timeout=2.0)
    assert data == b"" and why.startswith("stopped after 2 s")
    assert time.monotonic() - start < 8
    assert not _live_children() - before


def _live_children():
    return {p for p, pp in sandbox._children().items() if pp == os.getpid() and alive(p)}


def test_a_crash_is_reported_with_its_output(tmp_path):
    data, why, output = run("import sys; print('boom'); sys.exit(3)", tmp_path)
    assert why == "the process exited with code 3" and "boom" in output


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to nobody needs root")
def test_as_root_the_child_runs_as_nobody_and_cannot_write_the_copy(tmp_path):
    if not sandbox.can_drop(SYSTEM_PYTHON):
        pytest.skip(f"user nobody cannot run {SYSTEM_PYTHON}")
    (tmp_path / "nano_forkrl").mkdir()
    copy = sandbox.fresh_copy(tmp_path, {"nano_forkrl/a.py": b"x = 1\n"})
    try:
        code = ("import os, sys\nfd = int(sys.argv[1])\ntry:\n    open('x.py', 'w')\n    w = 'wrote'\n"
                "except OSError:\n    w = 'refused'\nos.write(fd, f'{os.getuid()} {w}'.encode())\n")
        data, why, _ = run(code, copy / "nano_forkrl", drop=True, python=SYSTEM_PYTHON)
    finally:
        shutil.rmtree(copy)
    assert (data, why) == (b"65534 refused", "")


def test_fingerprint_sees_a_changed_file_and_fresh_copy_overlays_the_students(tmp_path):
    (tmp_path / "nano_forkrl").mkdir()
    (tmp_path / "nano_forkrl" / "a.py").write_text("x = 1\n")
    before = sandbox.fingerprint(tmp_path)
    copy = sandbox.fresh_copy(tmp_path, {"nano_forkrl/a.py": b"x = 2\n"})
    try:
        assert (copy / "nano_forkrl" / "a.py").read_text() == "x = 2\n"
    finally:
        shutil.rmtree(copy)
    assert sandbox.fingerprint(tmp_path) == before
    (tmp_path / "nano_forkrl" / "a.py").write_text("x = 3\n")
    assert sandbox.fingerprint(tmp_path) != before
