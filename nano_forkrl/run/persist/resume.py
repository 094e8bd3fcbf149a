"""`--resume` continues the run that was saved, or says what differs: the configuration
and the training data.

A checkpoint stores its run's configuration and a fingerprint of its training data (the SHA-256 of
the problems it trains on: a file's rows, a hub dataset's, or the problems the built-in tiny task
generated). On `--resume` `check_changes` compares both with the current ones. Any difference stops
the run with the list of them, before anything is written, unless `--accept-config-changes` is
passed: then the new values are really used and logged (printed, one
`{"step": s, "config_changes": {field: [old, new]}}` line in metrics.jsonl, and the next
checkpoint's config). `apply_changes` makes sure no restored state overrides them: the optimizer's
lr and weight decay are set in its restored param_groups, and a new --seed restarts the RNG streams
from that seed instead of restoring the saved ones.

May differ silently (`SILENT`): how long the run goes and how often it evaluates and saves (--steps
extends a run), whether it saves at the end, where its folder is, and the flags that only steer this
invocation (--resume, --overwrite, --debug, --accept-config-changes, and the memory plan's --plan,
--gpus, --gpu-memory). A field the checkpoint lacks (saved by an older version) is compared with its
default; a checkpoint without a data fingerprint (an older version) is not compared on data.
"""
import hashlib
import json
from dataclasses import fields

import torch

from nano_forkrl.run.persist.checkpoint import STATE, load_state, restore_state
from nano_forkrl.run.setup.config import Config, to_dict
from nano_forkrl.utils.errors import RunError

SILENT = ("steps", "eval_every", "save_every", "final_save", "out_dir", "resume", "overwrite",
          "debug", "accept_config_changes", "plan", "gpus", "gpu_memory")
DATA = "training data"  # the name of the data fingerprint among the differences


def fingerprint(problems):
    """The SHA-256 of the training problems as loaded (order included: the data cursor
    walks that order)."""
    text = json.dumps(problems, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def differences(saved_config, saved_data, cfg, data):
    """{field: [saved, current]} over the fields that may not differ silently, and the
    data fingerprint."""
    defaults = {f.name: f.default for f in fields(Config)}
    current = to_dict(cfg)
    changes = {k: [saved_config.get(k, defaults[k]), v] for k, v in current.items()
               if k not in SILENT and saved_config.get(k, defaults[k]) != v}
    if saved_data is not None and saved_data != data:
        changes[DATA] = [saved_data, data]
    return changes


def describe(changes):
    """One line: `lr 0.0001 -> 0.001, seed 0 -> 5, training data sha256:1f2e3d4c5b6a ->
    sha256:9a8b7c6d5e4f`."""
    show = lambda k, v: f"sha256:{v[:12]}" if k == DATA and isinstance(v, str) else repr(v)
    return ", ".join(f"{k} {show(k, old)} -> {show(k, new)}" for k, (old, new) in changes.items())


def check_changes(cfg, folder, data):
    """{field: [saved, current]}: the differences between the checkpoint in `folder` and this run,
    whose training data has the fingerprint `data`. RunError listing them unless
    --accept-config-changes."""
    saved = load_state(folder / STATE, mmap=True)
    changes = differences(saved.get("config") or {}, saved.get("data"), cfg, data)
    if changes and not cfg.accept_config_changes:
        raise RunError(f"--resume: the checkpoint {folder} was trained with another configuration "
                       f"or data: {describe(changes)}. Resume with its values, or pass "
                       "--accept-config-changes to continue with the new ones.")
    return changes


def restore_run(cfg, folder, problems, optimizer, sampler, ranks=None):
    """Where the run starts: (step, cursor, data, changes). `data` is the fingerprint of the
    training `problems` (saved with every checkpoint). Without a checkpoint `folder`, step 0. With
    one: `check_changes`, then the trainer state is restored (run/persist/checkpoint.py; under
    torchrun every rank's) and `apply_changes`."""
    data = fingerprint(problems)
    if folder is None:
        if cfg.resume:
            print(f"--resume: no run in {cfg.out_dir} yet, starting fresh")
        return 0, 0, data, {}
    changes = check_changes(cfg, folder, data)
    # what this run's seed gives, for a changed --seed
    fresh = torch.get_rng_state(), sampler.rng_state()
    step, cursor = (restore_state if ranks is None else ranks.restore)(folder, optimizer, sampler)
    apply_changes(cfg, changes, optimizer, sampler, fresh)
    print(f"resumed from {folder} at step {step}")
    return step, cursor, data, changes


def apply_changes(cfg, changes, optimizer, sampler, fresh_rng):
    """After the trainer state is restored: the current lr and weight decay in every param group
    (the saved ones came back with the optimizer state), and with a new seed the RNG states
    `fresh_rng` = (torch, sampler) that this run's seed gave before the restore. Prints the
    accepted changes."""
    for group in optimizer.param_groups:
        group["lr"], group["weight_decay"] = cfg.lr, cfg.weight_decay
    if "seed" in changes:
        torch.set_rng_state(fresh_rng[0])
        sampler.set_rng_state(fresh_rng[1])
    if changes:
        print(f"--resume --accept-config-changes: continuing with {describe(changes)}")
