"""The memory plan of every qwen3 preset, as the table README shows:

    python -m nano_forkrl.tools.memory                  # 80 GiB GPUs, the README's table
    python -m nano_forkrl.tools.memory --gpu-memory 141 # the same presets on larger GPUs

One row per preset: its parameters, the peak per GPU on 1 and on 8 GPUs (and the phase that sets
it), the fewest GPUs its defaults fit (of 1, 2, 4, 8), and the cheapest changes that make it fit one
GPU. No weight is loaded: the plan reads the shipped configs. The plan itself is
run/setup/memplan.py's; a single run's plan is `python -m nano_forkrl.train ... --plan`
(run/setup/memcheck.py, which every run checks before loading anything).
"""
import argparse

from nano_forkrl.run.setup.config import PRESETS, parse_args
from nano_forkrl.run.setup.memcheck import advice, flags, report
from nano_forkrl.run.setup.memplan import GiB

HEADER = ["| preset | parameters | peak per GPU, 1 GPU | peak per GPU, 8 GPUs | GPUs needed "
          "| on one GPU |", "|---|---|---|---|---|---|"]


def _row(name, memory):
    """The table's row for one preset on GPUs of `memory` GiB."""
    plans = {}
    for gpus in (1, 2, 4, 8):
        args = ["--preset", name, "--plan", "--gpus", str(gpus), "--gpu-memory", str(memory)]
        plans[gpus] = report(parse_args(args))[0]
    need = min((g for g, p in plans.items() if p.fits), default="> 8")
    one = plans[1]
    fix = next((flags(f) for f in advice(one, most=0)), "nothing tried fits")
    peak = {g: f"{p.peak / GiB:.1f} GiB ({max(p.phase, key=p.phase.get)})"
            for g, p in plans.items()}
    return (f"| {name} | {one.shape.params / 1e9:.2f}B | {peak[1]} | {peak[8]} | {need} | "
            f"{'defaults fit' if one.fits else fix} |")


def preset_table(memory=80.0):
    """The README's table: one row per qwen3 preset on GPUs of `memory` GiB (a markdown table)."""
    names = sorted(p for p in PRESETS if p.startswith("qwen3-"))
    return "\n".join(HEADER + [_row(name, memory) for name in names])


def main(argv=None):
    ap = argparse.ArgumentParser(description="The memory plan of every qwen3 preset on 1 to 8 GPUs "
                                             "(the README's table; no weight is loaded).")
    ap.add_argument("--gpu-memory", type=float, default=80.0,
                    help="GiB per GPU (default: 80, the README's table)")
    args = ap.parse_args(argv)
    text = preset_table(args.gpu_memory)
    print(text)
    return text


if __name__ == "__main__":
    main()
