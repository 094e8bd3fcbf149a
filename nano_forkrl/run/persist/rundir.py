"""The run folder (`--out-dir`): a finished or killed run in it is never replaced by accident.

`plan(cfg)` decides, without touching the disk, what a run may do with its folder:
- the folder does not exist or holds no run: start fresh (with or without --resume);
- it holds a run (metrics.jsonl, tb/ or a checkpoint folder) and --resume: continue from the newest
  complete checkpoint; when there is none (a damaged or half-written checkpoint, only a log), stop
  with a RunError, and nothing is changed: starting fresh would silently replace the log and
  the trained weights;
- it holds a run, no --resume: stop with a RunError, unless --overwrite asks to replace it;
- it is a file: RunError.
`prepare(cfg)` runs after every input is validated: it creates the folder, takes its lock and, with
--overwrite, removes the old run's files (only the names a run writes, never anything
else in the folder).

One owner: the run holds `run.lock` (an exclusive `flock`) from `prepare` to its end. A second run
into the same folder is refused, naming the owner's process id. The operating system releases the
lock when the owner exits in any way, SIGKILL and crashes included, so a stale lock cannot exist and
a killed run's folder is resumed at once.
"""
import fcntl
import os
import shutil
from pathlib import Path

from nano_forkrl.run.persist.checkpoint import (NAMES, STATE, latest_checkpoint, load_state,
                                                remove_folder)
from nano_forkrl.utils.errors import RunError

RUN_FILES = ("metrics.jsonl", "tb", *NAMES)  # what a run writes into its folder
LOCK = "run.lock"  # held by the run writing into the folder (not a run file: it may stay behind)


def existing_run(out_dir):
    """The run files present in out_dir (empty when it holds no run)."""
    return [n for n in RUN_FILES if (Path(out_dir) / n).exists()]


def plan(cfg):
    """The checkpoint folder to resume from, or None to start fresh; RunError
    when neither is safe."""
    out = Path(cfg.out_dir)
    if out.exists() and not out.is_dir():
        raise RunError(f"--out-dir {out} is a file; the run folder must be a folder (or not exist "
                       "yet)")
    found = existing_run(out) if out.is_dir() else []
    if cfg.resume:
        ckpt = latest_checkpoint(out) if found else None
        if found and ckpt is None:
            raise RunError(f"--resume: {out} holds a run ({', '.join(found)}) but no complete "
                           f"checkpoint ({_unusable(out)}). Nothing was changed. To start this run "
                           "over, pass --overwrite instead of --resume.")
        return ckpt
    if found and not cfg.overwrite:
        raise RunError(f"{out} already holds a run ({', '.join(found)}). Pass --resume to continue "
                       "it, --overwrite to replace it, or another --out-dir.")
    return None


def _unusable(out):
    """Why no checkpoint folder of `out` can be resumed: the first trainer state
    refused or unreadable."""
    for name in NAMES:
        if (out / name / STATE).is_file():
            try:
                load_state(out / name / STATE, mmap=True)
            except RunError as err:
                return str(err)
    return f"none of {', '.join(NAMES)} has a readable {STATE}"


def lock(out):
    """Hold `out/run.lock` (RunError when another process holds it). Returns the open file: the lock
    lasts until it is closed or the process ends."""
    f = open(Path(out) / LOCK, "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        owner = f.read().strip() or "?"
        f.close()
        raise RunError(f"{out} is in use by another run (process {owner} holds "
                       f"{Path(out) / LOCK}); wait for it to end, stop it, or use another "
                       "--out-dir") from None
    f.truncate(0)
    f.write(f"{os.getpid()}\n")
    f.flush()
    return f


def prepare(cfg):
    """Create the run folder and take its lock; with --overwrite, remove the previous run's files
    next. Returns the lock (close it, or exit, to release the folder)."""
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    held = lock(out)
    if cfg.overwrite:
        for name in RUN_FILES:
            path = out / name
            if name in NAMES:
                # state first: a kill here never leaves a folder that looks complete
                remove_folder(path)
            elif path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    return held
