"""Where a part's cases run: a fresh copy, a process tree killed whole, a channel read in time.

`run_part` copies the package (the grader's files, then the student's over them) into a new folder,
starts harness.py there in a new session (its own process group), as user nobody when the grader
runs as root and nobody can run the interpreter (else as the grader's user: the output says which),
reads its JSON lines from a pipe until the child exits or the time is up, then kills the process
group and every process the child left behind. This process is a child subreaper (Linux prctl), so a
grandchild that forked twice and called setsid is re-parented here and killed too (`sweep`: the
processes whose environment holds this grader's random mark, or every descendant in a process that
only grades); as root, every process of user nobody is killed as well. What a killed process would
write later reaches no reader: the pipe is closed, and results.json is written only after the last
sweep. `fingerprint` hashes the grader's files; grade.py compares it before each part.
"""
import contextlib
import ctypes
import hashlib
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

MAX_BYTES = 50_000_000  # what one part may send (the rest is dropped)
UNPRIVILEGED = "nobody"
MARK = f"HW_GRADING={os.urandom(8).hex()}"  # in every child's environment: a sweep's tag
_active, _lock = set(), threading.Lock()


def become_subreaper():
    """Orphaned descendants re-parent here instead of to init (Linux); False where unsupported."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0  # CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def fingerprint(root, package="nano_forkrl"):
    """{relative path: sha256} of the package's files (caches left out)."""
    root = Path(root)
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((root / package).rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}


def _children():
    """{pid: parent pid} of every process (from /proc)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
    return parents


def _marked(pid):
    try:
        return MARK.encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def sweep(everything=False):
    """Kill (and reap) the descendants of this process outside the parts still running: those
    started by `spawn` (marked), or with everything=True (a process that only grades: the
    autograder) all of them, which also catches one that exec'd itself a new environment."""
    for _ in range(50):  # a process that forks while we kill gets another round
        parents = _children()
        with _lock:
            keep = set(_active)
        mine, grew = set(), True
        while grew:
            new = {p for p, pp in parents.items()
                   if (pp == os.getpid() or pp in mine) and p not in keep}
            grew, mine = bool(new - mine), mine | new
        mine = mine if everything else {p for p in mine if _marked(p)}
        if not mine:
            return
        for pid in mine:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pid in mine:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)


def kill_user(user=UNPRIVILEGED):
    """As root: kill every process of `user` (a child that escaped the tree included)."""
    import pwd

    pid = os.fork()
    if pid == 0:  # pragma: no cover - the forked killer
        try:
            os.setgid(pwd.getpwnam(user).pw_gid)
            os.setuid(pwd.getpwnam(user).pw_uid)
            os.kill(-1, signal.SIGKILL)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def can_drop(python=sys.executable):
    """True when running as root and user nobody can start this interpreter."""
    if os.geteuid() != 0:
        return False
    try:
        return subprocess.run([python, "-c", "pass"], user=UNPRIVILEGED, group="nogroup", cwd="/",
                              capture_output=True, timeout=60).returncode == 0
    except (OSError, KeyError, ValueError, subprocess.TimeoutExpired):
        return False


def fresh_copy(root, student_files, package="nano_forkrl"):
    """A new folder: root/package with student_files {relative path: bytes} written over it."""
    where = Path(tempfile.mkdtemp(prefix="hw-part-"))
    shutil.copytree(Path(root) / package, where / package,
                    ignore=shutil.ignore_patterns("__pycache__"))
    for rel, data in student_files.items():
        (where / rel).write_bytes(data)
    for path in [where, *where.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)  # an unprivileged child reads, never writes
    return where


def spawn(cmd, cwd, env, timeout, drop=False, everything=False):
    """Run cmd (it writes to the fd "{fd}" names) -> (bytes it sent, why it stopped, its output)."""
    r, w = os.pipe()
    home = Path(tempfile.mkdtemp(prefix="hw-home-"))
    if drop:
        shutil.chown(home, UNPRIVILEGED, "nogroup")
    log = open(home.parent / f"{home.name}.log", "w+b")
    env = {**env, "HOME": str(home), "TMPDIR": str(home), MARK.split("=")[0]: MARK.split("=")[1]}
    extra = {"user": UNPRIVILEGED, "group": "nogroup", "extra_groups": []} if drop else {}
    start = time.monotonic()
    child = subprocess.Popen([a.replace("{fd}", str(w)) for a in cmd], cwd=cwd, env=env,
                             pass_fds=(w,), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                             start_new_session=True, **extra)
    with _lock:
        _active.add(child.pid)
    os.close(w)
    data, why = bytearray(), None
    try:
        while why is None:
            left = timeout - (time.monotonic() - start)
            if left <= 0:
                why = f"stopped after {timeout:.0f} s (an endless loop?)"
                break
            ready, _, _ = select.select([r], [], [], min(left, 0.2))
            chunk = os.read(r, 1 << 16) if ready else b""
            data += chunk[:max(0, MAX_BYTES - len(data))]
            if ready and not chunk:  # EOF: every writer closed the pipe; wait for the child's exit
                try:
                    code = child.wait(timeout=max(0.0, timeout - (time.monotonic() - start)))
                except subprocess.TimeoutExpired:
                    code = None
            else:  # the child may have exited while a grandchild holds the pipe: stop reading
                code = child.poll()
                if code is None:
                    continue
            why = "" if code == 0 else f"stopped after {timeout:.0f} s (an endless loop?)" \
                if code is None else f"the process exited with code {code}"
    finally:
        os.close(r)  # what a leftover process writes from now on is lost
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        with _lock:
            _active.discard(child.pid)
        sweep(everything)
        log.seek(0, os.SEEK_END)
        log.seek(max(0, log.tell() - 4000))
        output = log.read().decode(errors="replace")
        log.close()
        os.unlink(log.name)
        shutil.rmtree(home, ignore_errors=True)
    return bytes(data), why, output


def run_part(root, parts, student_files, timeout, drop=False, everything=False):
    """The harness for `parts` in a fresh copy -> (JSON lines, why it stopped ("": done), output)"""
    where = fresh_copy(root, student_files)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(where),
           "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error",
           "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-s", "-m", "nano_forkrl.assignment.harness", "{fd}", *parts]
    try:
        data, why, output = spawn(cmd, where, env, timeout, drop, everything)
    finally:
        shutil.rmtree(where, ignore_errors=True)
    return data.decode(errors="replace").splitlines(), why, output
