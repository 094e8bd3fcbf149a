"""The loop half of bench/cli.py: seconds per RL step of a preset and seconds per evaluation.

    python -m nano_forkrl.bench --samplers none --no-update --rl-steps 30 --eval-runs 3

`bench_rl_steps` runs the real loop, `python -m nano_forkrl.train`, as a child process (the
preset's model, data, sampler and guarded AdamW; a temporary run folder, no checkpoint, the
held-out evaluations shrunk to one sample) and reads the per-step `time` records it writes to
metrics.jsonl: a step's seconds are the sum of its phases (rollout = sampling + verify + dynamic
sampling's extra rounds, logprobs, update, sync), reported as the median after one untimed step,
with the median of each phase and the child's CPU seconds per step (a busy machine distorts them
less). Nothing here imports train.py: the bench sits beside the loop, not on top of it.
`bench_eval` times `run/steps/evaluation.evaluate` on the preset's held-out set (eval_n problems
x eval_k samples, 200 x 4 for tiny), the call the loop makes every eval_every steps.
`flags` are train flags on top of the preset (bench's --loop-flags), e.g. to shrink it in tests.
"""
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from nano_forkrl.run.setup.config import parse_args
from nano_forkrl.bench.rollout_bench import measure

# the loop's evaluations (at the start and the end) are not timed here: one sample each
QUIET_EVAL = ["--eval-n", "1", "--eval-k", "1", "--eval-every", "0"]


def _loop(preset, device, flags):
    """(cfg, model, tokenizer, sampler, problems) as train.train builds them, in one process."""
    from nano_forkrl.engines.factory import make_sampler
    from nano_forkrl.tasks.data import load_split
    from nano_forkrl.run.setup.policy import load_policy

    cfg = parse_args(["--preset", preset, "--device", str(device), *flags])
    torch.manual_seed(cfg.seed)
    model, tokenizer = load_policy(cfg.model, cfg.device, cfg.dtype, seed=cfg.seed)
    sampler = make_sampler(cfg.sampler, model, tokenizer, max_new_tokens=cfg.max_new_tokens,
                           top_p=cfg.top_p, seed=cfg.seed, temperature=cfg.temperature,
                           gpu_memory_utilization=cfg.vllm_gpu_memory)
    return cfg, model, tokenizer, sampler, load_split(cfg.train_data, "train", seed=cfg.seed)


def run_loop(preset, steps, device, flags=()):
    """Run `python -m nano_forkrl.train` for `steps` steps in a temporary folder. Returns (the
    per-step records of metrics.jsonl, the child's wall seconds, its CPU seconds).
    RuntimeError with the end of its output when it fails."""
    with tempfile.TemporaryDirectory(prefix="nano_forkrl_bench_") as out:
        argv = [sys.executable, "-m", "nano_forkrl.train", "--preset", preset,
                "--device", str(device), *QUIET_EVAL, *flags, "--steps", str(steps),
                "--save-every", "0", "--no-final-save", "--out-dir", out, "--overwrite"]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, env=dict(os.environ))
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode:
            raise RuntimeError(f"train exited {done.returncode}: {done.stderr[-1500:]}")
        lines = (Path(out) / "metrics.jsonl").read_text().splitlines()
    records = [r for r in map(json.loads, lines) if "time" in r]
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return records, wall, cpu


def bench_rl_steps(preset, steps, device, flags=()):
    """Median seconds per RL step over `steps` steps of the real loop (after one untimed step),
    phase medians, and the child's CPU seconds per step (its whole run: start-up included)."""
    def run(rec):
        records, rec["child_wall_s"], cpu = run_loop(preset, 1 + steps, device, flags)
        timed = records[1:]
        seconds = [sum(r["time"].values()) for r in timed]
        rec["seconds"], rec["all_s"] = statistics.median(seconds), [round(s, 4) for s in seconds]
        rec["cpu_s"] = cpu / len(records)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # KiB on Linux
        rec["child_peak_mem_gb"] = round(peak / 2**30, 3)  # the loop's process, not this one
        names = max((r["time"] for r in timed), key=len)
        rec["phase_s"] = {k: statistics.median(r["time"].get(k, 0.0) for r in timed) for k in names}

    rec = {"phase": "rl_step", "preset": preset, "runs": steps, "flags": list(flags)}
    return measure(rec, device, run)


def bench_eval(preset, runs, device, flags=()):
    """Median seconds of `runs` evaluations of the preset's held-out set (after one untimed)."""
    from nano_forkrl.tasks.data import HELD_OUT, load_split
    from nano_forkrl.run.steps.evaluation import evaluate

    def run(rec):
        cfg, _, tokenizer, sampler, _ = _loop(preset, device, flags)
        # the set the loop evaluates while training (tasks/data.HELD_OUT: validation)
        held_out = load_split(cfg.eval_data, HELD_OUT, limit=cfg.eval_n or None)
        seconds, cpu = [], []
        for _ in range(1 + runs):
            start, start_cpu = time.perf_counter(), time.process_time()
            result = evaluate(sampler, held_out, k=cfg.eval_k, template=cfg.template,
                              tokenizer=tokenizer, verifier=cfg.verifier)
            seconds.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        rec["seconds"], rec["all_s"] = statistics.median(seconds[1:]), seconds[1:]
        rec["cpu_s"] = statistics.median(cpu[1:])
        rec["samples"] = len(held_out) * cfg.eval_k
        rec["tok_per_s"] = rec["samples"] * result["mean_length"] / rec["seconds"]
        rec["avg@k"] = result[f"avg@{cfg.eval_k}"]  # the same before and after a speed change

    rec = {"phase": "evaluation", "preset": preset, "runs": runs, "flags": list(flags)}
    return measure(rec, device, run)
