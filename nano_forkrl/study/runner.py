"""Run an experiment's training runs as child processes: a resumable queue, a few at a time, one
thread each.

study/ sits above the loop and never imports train.py: a run is `python -m nano_forkrl.train ...`
in its own process, and its outcome is read from its run folder (metrics.jsonl, checkpoint/). An
experiment is a queue of tasks, each a command line that writes ONE result file:
- a task whose result file exists is skipped, so a stopped queue resumes where it stopped;
- a result file is written under a temporary name and renamed (`write_json`), so a killed task
  leaves none;
- at most `jobs` tasks run at once, each with OMP_NUM_THREADS=1 (two runs on two cores do not
  fight for threads), its output in `<result>.log` next to the result.
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from nano_forkrl.run.persist.metrics import read_log

CHILD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TQDM_DISABLE": "1",
             "PYTHONUNBUFFERED": "1"}


def write_text(path, text):
    """Write `text` to `path` atomically: complete or not at all, even if the process is killed
    (a temporary name in the same folder, then a rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json(path, obj):
    """Write `obj` as JSON to `path` atomically (write_text)."""
    write_text(path, json.dumps(obj))


def code_commit(where=None):
    """The git commit of the code that runs (the package's checkout), "+dirty" when the package has
    uncommitted changes; "unknown" outside a git checkout. Every result file records it."""
    where = where or Path(__file__).resolve().parents[2]

    def git(*args):
        return subprocess.run(["git", "-C", str(where), *args], capture_output=True, text=True,
                              timeout=60)

    head = git("rev-parse", "HEAD")
    if head.returncode != 0:
        return "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "nano_forkrl").stdout.strip()
    return head.stdout.strip() + ("+dirty" if dirty else "")


def train(flags, run_dir):
    """Run `python -m nano_forkrl.train FLAGS --out-dir RUN_DIR --overwrite` to the end; return its
    metrics records. Its output goes to this process's stdout; a failed run raises
    CalledProcessError."""
    cmd = [sys.executable, "-m", "nano_forkrl.train", *map(str, flags),
           "--out-dir", str(run_dir), "--overwrite"]
    subprocess.run(cmd, check=True, env={**os.environ, **CHILD_ENV})
    return read_log(Path(run_dir) / "metrics.jsonl")


def run_queue(tasks, jobs=2, poll_s=2.0, stop_at=None):
    """Run tasks [(result_path, argv), ...] as child processes, at most `jobs` at a time, in order.
    Skips a task whose result exists; launches none after the UNIX time `stop_at` (those wait for a
    later call). Returns [(result_path, exit code or "skipped" / "not started", seconds)], in task
    order."""
    status = {}
    queue = []
    for path, argv in tasks:
        if Path(path).exists():
            status[str(path)] = ("skipped", 0.0)
        else:
            queue.append((Path(path), [str(a) for a in argv]))
    running = {}  # path -> (process, log file, start time)
    while queue or running:
        while queue and len(running) < jobs and (stop_at is None or time.time() < stop_at):
            path, argv = queue.pop(0)
            path.parent.mkdir(parents=True, exist_ok=True)
            log = open(path.with_name(path.name + ".log"), "w")
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                    env={**os.environ, **CHILD_ENV})
            running[path] = (proc, log, time.time())
            print(f"started  {path.name}", flush=True)
        if queue and stop_at is not None and time.time() >= stop_at and not running:
            break
        for path, (proc, log, t0) in list(running.items()):
            if proc.poll() is not None:
                log.close()
                status[str(path)] = (proc.returncode, time.time() - t0)
                del running[path]
                print(f"finished {path.name}: exit {proc.returncode} after "
                      f"{time.time() - t0:.0f} s", flush=True)
        time.sleep(poll_s if running else 0)
    for path, _ in queue:
        status[str(path)] = ("not started", 0.0)
    return [(str(p), *status[str(p)]) for p, _ in tasks]
