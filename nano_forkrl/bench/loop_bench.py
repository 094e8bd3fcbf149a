"""The loop half of bench/cli.py: seconds per RL step of a preset and seconds per evaluation.

    python -m nano_forkrl.bench --samplers none --no-update --rl-steps 30 --eval-runs 3

`bench_rl_steps` runs `train.train_step` as the loop does (the preset's model, data, sampler,
guarded AdamW; nothing written to disk) and reports the median seconds per step after one untimed
step (cpu_s: the median CPU seconds of this process per step, which a busy machine distorts
less), and the median of each phase (rollout = sampling + verify + dynamic sampling's extra rounds,
logprobs, update, sync). `bench_eval` times `tools/evaluate.evaluate` on the preset's held-out set
(eval_n problems x eval_k samples, 200 x 4 for tiny), the call the loop makes every eval_every
steps.
`flags` are train flags on top of the preset (bench's --loop-flags), e.g. to shrink it in tests.
"""
import statistics
import time

import torch

from nano_forkrl.run.setup.config import parse_args
from nano_forkrl.bench.rollout_bench import measure


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


def bench_rl_steps(preset, steps, device, flags=()):
    """Median seconds per RL step over `steps` steps (after one untimed step); phase medians."""
    from nano_forkrl.run.safety.guard import GuardedOptimizer
    from nano_forkrl.train import train_step

    def run(rec):
        cfg, model, tokenizer, sampler, problems = _loop(preset, device, flags)
        optimizer = GuardedOptimizer(torch.optim.AdamW(model.parameters(), lr=cfg.lr,
                                                       weight_decay=cfg.weight_decay))
        cursor, seconds, cpu, phases = 0, [], [], []
        for _ in range(1 + steps):
            start, start_cpu = time.perf_counter(), time.process_time()
            cursor, stats = train_step(cfg, model, optimizer, sampler, tokenizer, problems, cursor)
            seconds.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
            phases.append(stats["time"])
        rec["seconds"], rec["cpu_s"] = statistics.median(seconds[1:]), statistics.median(cpu[1:])
        rec["all_s"] = [round(s, 4) for s in seconds[1:]]
        names = phases[1]
        rec["phase_s"] = {k: statistics.median(p.get(k, 0.0) for p in phases[1:]) for k in names}

    rec = {"phase": "rl_step", "preset": preset, "runs": steps, "flags": list(flags)}
    return measure(rec, device, run)


def bench_eval(preset, runs, device, flags=()):
    """Median seconds of `runs` evaluations of the preset's held-out set (after one untimed)."""
    from nano_forkrl.tasks.data import load_split
    from nano_forkrl.run.steps.evaluation import evaluate

    def run(rec):
        cfg, _, tokenizer, sampler, _ = _loop(preset, device, flags)
        held_out = load_split(cfg.eval_data, "test", limit=cfg.eval_n or None)
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
