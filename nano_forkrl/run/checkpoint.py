"""What survives a killed run: checkpoints (a plain HF folder + trainer state) and the metrics log.

A checkpoint is `out_dir/checkpoint/`: `save_pretrained` model and tokenizer (any transformers user can load
it) plus `trainer_state.pt` with the step, the data cursor (how many prompts were consumed), the optimizer
state and every RNG stream (torch CPU, CUDA, the sampler's). Restoring all of them makes `--resume` continue
a run exactly as if it had never stopped: same prompts, same samples, same updates (tested bit for bit on
CPU).

Guarantee: a kill (SIGKILL, power loss after the data reached the disk) at any point of `save_checkpoint`
leaves at least one complete checkpoint, and `latest_checkpoint` finds the newest complete one. How:
- a folder is complete exactly when it holds `trainer_state.pt`. That file is written last, under a temporary
  name, flushed to disk and renamed, after every weight and tokenizer file has been flushed;
- the new checkpoint is written into `checkpoint.tmp`, then `checkpoint` is renamed to `checkpoint.old`, the
  new one to `checkpoint`, and `checkpoint.old` is removed. A folder is removed trainer state first, so a
  half-removed folder is never taken for a complete one;
- any leftover of a killed save (`checkpoint.tmp`, `checkpoint.old`, both with `checkpoint`) is sorted out by
  `recover`, before each save: the newest complete folder becomes `checkpoint/`, the rest is removed.
The test kills a real run at every stage of a save and resumes it (tests/run/test_checkpoint.py).

`metrics.jsonl` gets one JSON line per step and per evaluation (see `run/metrics.py`).
"""
import os
import shutil
from pathlib import Path

import torch

from nano_forkrl.run.config import to_dict
from nano_forkrl.run.errors import RunError

NAMES = ("checkpoint", "checkpoint.tmp", "checkpoint.old")  # in order of preference at equal steps
STATE = "trainer_state.pt"


def stage(name):
    """A named point of the save protocol. Does nothing; the crash test replaces it to kill the process
    there."""


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
    """Remove a checkpoint folder so that no kill leaves it looking complete: the trainer state goes first."""
    if not folder.exists():
        return
    (folder / STATE).unlink(missing_ok=True)
    _fsync(folder)
    stage("removing")
    shutil.rmtree(folder)


def checkpoint_step(folder):
    """The step of a complete checkpoint folder; None when it is incomplete or its trainer state is
    unreadable."""
    if not (Path(folder) / STATE).is_file():
        return None
    try:  # mmap: only the small pickled header is read, not the optimizer tensors
        return int(torch.load(Path(folder) / STATE, mmap=True, weights_only=False)["step"])
    except Exception:
        return None


def latest_checkpoint(out_dir):
    """The newest complete checkpoint folder of `out_dir` (checkpoint/, or checkpoint.tmp/ or checkpoint.old/
    left by a killed save); at equal steps in the order of NAMES. None when there is no complete one."""
    found = [(checkpoint_step(Path(out_dir) / n), -i, Path(out_dir) / n) for i, n in enumerate(NAMES)]
    found = [f for f in found if f[0] is not None]
    return max(found)[2] if found else None


def recover(out_dir):
    """Leave only `checkpoint/`, holding the newest complete checkpoint (if any). Every intermediate state of
    this function, too, keeps the newest complete folder findable by `latest_checkpoint`."""
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


def save_checkpoint(out_dir, model, tokenizer, optimizer, sampler, step, cursor, cfg):
    """Write a complete checkpoint for `step` as `out_dir/checkpoint/` (protocol in the module docstring).
    Refuses (RunError) to write non-finite weights: a checkpoint must be worth resuming from."""
    bad = [n for n, p in model.named_parameters() if not torch.isfinite(p).all()]
    if bad:
        raise RunError(f"refusing to save step {step}: non-finite weights in {len(bad)} tensors "
                       f"({bad[0]}, ...)")
    out = Path(out_dir)
    recover(out)
    tmp = out / "checkpoint.tmp"
    stage("start")
    model.save_pretrained(tmp)
    stage("model")
    tokenizer.save_pretrained(tmp)
    stage("tokenizer")
    part = tmp / (STATE + ".part")
    torch.save({"step": step, "cursor": cursor, "optimizer": optimizer.state_dict(), "config": to_dict(cfg),
                "torch_rng": torch.get_rng_state(), "sampler_rng": sampler.rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}, part)
    _fsync_tree(tmp)
    stage("state-written")
    part.rename(tmp / STATE)  # from here on checkpoint.tmp is complete
    _fsync(tmp)
    stage("complete")
    recover(out)
    stage("done")


def restore_state(folder, optimizer, sampler):
    """Load optimizer and RNG states from `folder/trainer_state.pt`; returns (step, cursor)."""
    path = Path(folder) / STATE
    try:
        state = torch.load(path, weights_only=False)
        optimizer.load_state_dict(state["optimizer"])
    except Exception as err:
        raise RunError(f"{path}: cannot restore the trainer state ({type(err).__name__}: {err}); "
                       "the checkpoint is damaged or from a different model") from err
    torch.set_rng_state(state["torch_rng"])
    sampler.set_rng_state(state["sampler_rng"])
    if state["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return state["step"], state["cursor"]
