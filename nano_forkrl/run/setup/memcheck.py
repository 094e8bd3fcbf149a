"""The memory plan at the command line: `--plan` prints it and exits; every run checks it first.

`resolve` fills in the devices the plan is for: --gpus (0 = this run's processes: torchrun's
WORLD_SIZE, else 1) of --gpu-memory GiB (0 = this machine's GPU; 80 when it has none and --plan
asks; the host's RAM on CPU). `check` (run by train before any weight is loaded or any engine is
started) prints one line when the plan fits and otherwise raises a RunError holding the table and
the cheapest changes that make it fit (`advice`: at most one change of each kind, fewest changes
first, then the cheapest: no step guard, smaller micro-batches or head chunks, more GPUs, bf16
weights, a shorter response). The arithmetic is run/setup/memplan.py's; the README's table of
presets is tools/memory.py's (`python -m nano_forkrl.tools.memory`).
"""
import itertools
import os
from dataclasses import replace

from nano_forkrl.utils.errors import RunError
from nano_forkrl.run.setup.memplan import (GiB, PROMPT_TOKENS, ConfigMissing, Shape, make_plan,
                                           model_config)


def resolve(cfg, world=None):
    """(cfg with gpus >= 1 and gpu_memory > 0 filled in, whether the devices are CUDA GPUs)."""
    import torch

    if cfg.gpus < 0 or cfg.gpu_memory < 0:
        raise RunError(f"--gpus and --gpu-memory must be >= 0 (0: this machine's), got {cfg.gpus}"
                       f", {cfg.gpu_memory}")
    has_gpu = torch.cuda.is_available()
    cuda = cfg.device.startswith("cuda") or (cfg.device == "auto" and (has_gpu or cfg.plan))
    gpus = world or cfg.gpus or int(os.environ.get("WORLD_SIZE", "1"))
    if cfg.gpu_memory:
        memory = cfg.gpu_memory
    elif cuda and has_gpu:
        index = torch.device(cfg.device).index if cfg.device.startswith("cuda:") else 0
        memory = torch.cuda.get_device_properties(index).total_memory / GiB
    elif cuda:
        memory = 80.0
    else:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GiB  # the host's RAM
    return replace(cfg, gpus=gpus, gpu_memory=memory), cuda


def table(plan):
    """The plan as a small text table (GiB per device)."""
    cfg, where = plan.cfg, "GPU" if plan.cuda else "CPU host (RAM shared by the processes)"
    state = "asleep during the update" if plan.sleeps else "awake throughout"
    lines = [f"memory plan: {cfg.model} ({plan.shape.params / 1e9:.2f}B parameters), "
             f"{cfg.gpus} x {cfg.gpu_memory:.0f} GiB {where}",
             f"  sampler {plan.engine} ({state}), dtype {cfg.dtype}, micro-batch "
             f"{cfg.micro_batch_size} x {cfg.max_prompt_tokens or PROMPT_TOKENS}+"
             f"{cfg.max_new_tokens} tokens, chunk {cfg.chunk_size}, "
             f"step guard {'on' if cfg.step_guard else 'off'}",
             "  GiB per device"]
    lines += [f"  {k:<28}{v / GiB:8.1f}" for k, v in plan.part.items() if v]
    lines += [f"  phase: {k:<21}{v / GiB:8.1f}" for k, v in plan.phase.items()]
    verdict = "fits" if plan.fits else "DOES NOT FIT"
    lines.append(f"  peak {plan.peak / GiB:.1f} GiB of {plan.limit / GiB:.1f} usable per device: "
                 f"{verdict}")
    return "\n".join(lines)


def _changes(cfg, cuda):
    """Groups of (cost, flag, Config changes): the advice takes at most one of each group."""
    b, n = cfg.micro_batch_size, cfg.max_new_tokens
    smaller = sorted({max(1, b // 2), max(1, b // 4), 1} - {b}, reverse=True)
    return [[(1, "--no-step-guard", dict(step_guard=False))] if cfg.step_guard else [],
            [(1 + i, f"--micro-batch-size {m}", dict(micro_batch_size=m))
             for i, m in enumerate(smaller)],
            [(1, f"--chunk-size {k}", dict(chunk_size=k)) for k in (1024,) if k < cfg.chunk_size],
            [(2 + i, f"{g} GPUs (torchrun --nproc_per_node {g})", dict(gpus=g))
             for i, g in enumerate((2, 4, 8)) if g > cfg.gpus and cuda],
            [(6, "--dtype bf16 (bf16 weights: lr 1e-6 steps may round away, README)",
              dict(dtype="bf16"))] if cfg.dtype not in ("bf16", "bfloat16") else [],
            [(8, f"--max-new-tokens {n // 2}", dict(max_new_tokens=n // 2))] if n >= 256 else []]


def advice(plan, most=3):
    """Up to `most` sets of changes under which the plan fits, fewest changes then cheapest first (a
    set holding an earlier one is left out), then the cheapest on as many GPUs as now if none of
    those is. A set is a list of (cost, flag, Config changes)."""
    fits = []
    for combo in itertools.product(*([None, *g] for g in _changes(plan.cfg, plan.cuda))):
        chosen = [c for c in combo if c is not None]
        if chosen and len(chosen) <= 4 and fits_with(plan, chosen):
            fits.append((len(chosen), sum(c[0] for c in chosen), chosen))
    picked = []
    for _, _, chosen in sorted(fits, key=lambda f: f[:2]):
        if not any(all(c in chosen for c in p) for p in picked):
            picked.append(chosen)
    same_gpus = [chosen for chosen in picked if not any("gpus" in c[2] for c in chosen)][:1]
    return picked[:most] + [c for c in same_gpus if c not in picked[:most]]


def fits_with(plan, chosen):
    """Whether the plan fits once the changes `chosen` (from `_changes`) are made."""
    cfg = replace(plan.cfg, **{k: v for c in chosen for k, v in c[2].items()})
    again = make_plan(cfg, cuda=plan.cuda, shape=plan.shape, engine=plan.engine, sleeps=plan.sleeps)
    return again.fits


def flags(chosen):
    """A set of changes as the flags a user types, comma-separated."""
    return ", ".join(c[1] for c in chosen)


def report(cfg, world=None, source=None):
    """(the plan, its table followed by the advice when it does not fit); the config is read from
    `source` (default: --model)."""
    cfg, cuda = resolve(cfg, world)
    plan = make_plan(cfg, cuda=cuda, shape=Shape.of(model_config(source or cfg.model)))
    text = table(plan)
    if not plan.fits:
        fixes = [f"  fits with: {flags(f)}" for f in advice(plan)]
        text += "\n" + ("\n".join(fixes) or "  nothing the advice tries fits: a bigger GPU, or a "
                        "smaller model")
    return plan, text


def check(cfg, world=None, source=None):
    """Before any weight is loaded: one line when the plan fits, else a RunError with the table and
    the advice. A model whose config cannot be read is left to the loader's own error."""
    try:
        plan, text = report(cfg, world, source)
    except ConfigMissing as err:
        print(f"memory plan skipped: {err}")
        return None
    if not plan.fits:
        raise RunError("the run does not fit in memory (nothing was loaded):\n" + text)
    busiest = max(plan.phase, key=plan.phase.get)
    print(f"memory plan: peak {plan.peak / GiB:.1f} of {plan.limit / GiB:.1f} GiB per device "
          f"({busiest}); --plan prints the table")
    return plan
