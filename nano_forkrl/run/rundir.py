"""The run folder (`--out-dir`): a finished or killed run in it is never replaced by accident.

`plan(cfg)` decides, without touching the disk, what a run may do with its folder:
- the folder does not exist or holds no run: start fresh (with or without --resume);
- it holds a run (metrics.jsonl, tb/ or a checkpoint folder) and --resume: continue from the newest complete
  checkpoint; when there is none (a damaged or half-written checkpoint, only a log), stop with a RunError, and
  nothing is changed: starting fresh would silently replace the log and the trained weights;
- it holds a run, no --resume: stop with a RunError, unless --overwrite asks to replace it;
- it is a file: RunError.
`prepare(cfg)` runs after every input is validated: it creates the folder and, with --overwrite, removes the
old run's files (only the names a run writes, never anything else in the folder).
"""
import shutil
from pathlib import Path

from nano_forkrl.run.checkpoint import NAMES, latest_checkpoint, remove_folder
from nano_forkrl.run.errors import RunError

RUN_FILES = ("metrics.jsonl", "tb", *NAMES)  # what a run writes into its folder


def existing_run(out_dir):
    """The run files present in out_dir (empty when it holds no run)."""
    return [n for n in RUN_FILES if (Path(out_dir) / n).exists()]


def plan(cfg):
    """The checkpoint folder to resume from, or None to start fresh; RunError when neither is safe."""
    out = Path(cfg.out_dir)
    if out.exists() and not out.is_dir():
        raise RunError(f"--out-dir {out} is a file; the run folder must be a folder (or not exist yet)")
    found = existing_run(out) if out.is_dir() else []
    if cfg.resume:
        ckpt = latest_checkpoint(out) if found else None
        if found and ckpt is None:
            raise RunError(f"--resume: {out} holds a run ({', '.join(found)}) but no complete checkpoint "
                           f"(none of {', '.join(NAMES)} has a readable trainer_state.pt). Nothing was "
                           "changed. To start this run over, pass --overwrite instead of --resume.")
        return ckpt
    if found and not cfg.overwrite:
        raise RunError(f"{out} already holds a run ({', '.join(found)}). Pass --resume to continue it, "
                       "--overwrite to replace it, or another --out-dir.")
    return None


def prepare(cfg):
    """Create the run folder; with --overwrite, remove the previous run's files first."""
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.overwrite:
        for name in RUN_FILES:
            path = out / name
            if name in NAMES:
                remove_folder(path)  # state first: a kill here never leaves a folder that looks complete
            elif path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
