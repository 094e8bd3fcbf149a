"""What survives a killed run: checkpoints (a plain HF folder + trainer state) and the metrics log.

A checkpoint is `out_dir/checkpoint/`: `save_pretrained` model and tokenizer (any transformers user
can load it) plus `trainer_state.pt` with the step, the data cursor (how many prompts were
consumed), the optimizer state and every RNG stream (torch CPU, CUDA, the sampler's). Restoring all
of them makes `--resume` continue a run exactly as if it had never stopped: same prompts, same
samples, same updates (tested bit for bit on CPU).

Guarantee: a kill (SIGKILL, power loss after the data reached the disk) at any point of
`save_checkpoint` leaves at least one complete checkpoint, and `latest_checkpoint` finds the
newest complete one. How:
- a folder is complete exactly when it holds `trainer_state.pt`. That file is written last, under a
  temporary name, flushed to disk and renamed, after every weight and tokenizer file is flushed;
- the new checkpoint is written into `checkpoint.tmp`, then `checkpoint` is renamed to
  `checkpoint.old`, the new one to `checkpoint`, and `checkpoint.old` is removed. A folder is
  removed trainer state first, so a half-removed folder is never taken for a complete one;
- any leftover of a killed save (`checkpoint.tmp`, `checkpoint.old`, both with `checkpoint`) is
  sorted out by `recover`, before each save: the newest complete folder becomes `checkpoint/`,
  the rest is removed.
The test kills a real run at every stage of a save and resumes it
(tests/run/persist/test_checkpoint.py). A failed save (a full disk) removes `checkpoint.tmp` and
says where and why; the previous checkpoint stays. Reading the trainer state back (and never
running code from it): run/persist/state.py.

`metrics.jsonl` gets one JSON line per step and per evaluation (see `run/persist/metrics.py`).
"""
import os
import shutil
from pathlib import Path

import torch

# load_state, restore_state and processes_mismatch stay importable from here for their callers
from nano_forkrl.run.persist.state import (STATE, load_state, processes_mismatch,  # noqa: F401
                                            restore_state)
from nano_forkrl.run.setup.config import to_dict
from nano_forkrl.utils.errors import RunError

NAMES = ("checkpoint", "checkpoint.tmp", "checkpoint.old")  # in order of preference at equal steps


def stage(name):
    """A named point of the save protocol. Does nothing; the crash test replaces it to kill the
    process there."""


def _fsync(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(folder):
    for p in sorted(Path(folder).rglob("*")):
        if p.is_file():
            _fsync(p)
    _fsync(folder)


def remove_folder(folder):
    """Remove a checkpoint folder so that no kill leaves it looking complete: the trainer
    state goes first."""
    if not folder.exists():
        return
    (folder / STATE).unlink(missing_ok=True)
    _fsync(folder)
    stage("removing")
    shutil.rmtree(folder)


def checkpoint_step(folder):
    """The step of a complete checkpoint folder; None when it is incomplete or its trainer state is
    unreadable (or refused)."""
    if not (Path(folder) / STATE).is_file():
        return None
    try:  # mmap: only the small pickled header is read, not the optimizer tensors
        return int(load_state(Path(folder) / STATE, mmap=True)["step"])
    except Exception:
        return None


def latest_checkpoint(out_dir):
    """The newest complete checkpoint folder of `out_dir` (checkpoint/, or checkpoint.tmp/ or
    checkpoint.old/ left by a killed save); at equal steps in the order of NAMES. None when there
    is no complete one."""
    found = [(checkpoint_step(Path(out_dir) / n), -i, Path(out_dir) / n)
             for i, n in enumerate(NAMES)]
    found = [f for f in found if f[0] is not None]
    return max(found)[2] if found else None


def recover(out_dir):
    """Leave only `checkpoint/`, holding the newest complete checkpoint (if any). Every intermediate
    state of this function, too, keeps the newest complete folder findable by
    `latest_checkpoint`."""
    out = Path(out_dir)
    final, tmp, old = (out / n for n in NAMES)
    best = latest_checkpoint(out)
    if best == tmp:
        remove_folder(old)  # the older ones are no longer needed: tmp is complete and newer
        if final.exists():
            final.rename(old)
        stage("renamed-old")
        tmp.rename(final)
        _fsync(out)
        stage("renamed-new")
    elif best == old:  # checkpoint/ is missing or incomplete: the previous one comes back
        remove_folder(tmp)
        remove_folder(final)
        old.rename(final)
        _fsync(out)
    remove_folder(tmp)
    remove_folder(old)


def save_checkpoint(out_dir, model, tokenizer, optimizer, sampler, step, cursor, cfg, data=None):
    """Write a complete checkpoint for `step` as `out_dir/checkpoint/` (protocol in the module
    docstring). `data`: the training data's fingerprint (run/persist/resume.py). Refuses (RunError)
    to write non-finite weights: a checkpoint must be worth resuming from; a failed write is a
    RunError naming the folder and the cause."""
    bad = [n for n, p in model.named_parameters() if not torch.isfinite(p).all()]
    if bad:
        raise RunError(f"refusing to save step {step}: non-finite weights in {len(bad)} tensors "
                       f"({bad[0]}, ...)")
    out = Path(out_dir)
    recover(out)
    tmp = out / "checkpoint.tmp"
    state = {"step": step, "cursor": cursor, "optimizer": optimizer.state_dict(),
             "config": to_dict(cfg), "torch_rng": torch.get_rng_state(),
             "sampler_rng": sampler.rng_state(), "data": data,
             "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}
    try:
        _write(tmp, model, tokenizer, state)
    except Exception as err:  # a full disk: the half-written folder goes, checkpoint/ is untouched
        remove_folder(tmp)
        kept = (f"; the previous checkpoint {out / NAMES[0]} is kept" if latest_checkpoint(out)
                else "")
        raise RunError(f"cannot save the checkpoint of step {step} in {tmp}: "
                       f"{_cause(err)}{kept}") from err
    stage("complete")
    recover(out)
    stage("done")


def _write(tmp, model, tokenizer, state):
    """Fill `tmp` with weights, tokenizer and trainer state; it is complete once this returns."""
    stage("start")
    model.save_pretrained(tmp)
    stage("model")
    tokenizer.save_pretrained(tmp)
    stage("tokenizer")
    part = tmp / (STATE + ".part")
    with open(part, "wb") as f:  # through a Python file: a write error keeps its errno (see _cause)
        torch.save(state, f)
    _fsync_tree(tmp)
    stage("state-written")
    part.rename(tmp / STATE)  # from here on checkpoint.tmp is complete
    _fsync(tmp)


def _cause(err):
    """What made a save fail, in words: the OS error behind it (torch.save reports a failed write as
    a RuntimeError whose context is the OSError), else the error itself."""
    seen = err
    while seen is not None and not (isinstance(seen, OSError) and seen.errno):
        seen = seen.__cause__ or seen.__context__
    if seen is not None:
        return os.strerror(seen.errno).lower()
    if "No space left" in str(err):
        return "no space left on device"
    return f"{type(err).__name__}: {err}"
