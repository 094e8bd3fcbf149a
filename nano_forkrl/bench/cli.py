"""Benchmark: tokens/s, peak memory and MFU per phase of an RL step, for one model, device and batch
shape.

    python -m nano_forkrl.bench  # tiny preset, small shapes, this device (< 1 min on 2 CPU cores)
    python -m nano_forkrl.bench --samplers none --no-update --rl-steps 30 --eval-runs 3  # the loop
    python -m nano_forkrl.bench --model DIR --batches 64,256 --new-tokens 512 \
        --update-shape 8x4096 --naive-update

Weights are random (policy.random_policy: DIR needs only config.json + tokenizer files), float32
masters as in training. Every measurement runs in try/except: a failure (e.g. CUDA OOM) becomes its
"error", the run goes on. The JSON file is rewritten (atomically) before and after every
measurement: "running" names the one in progress and "complete" turns true at the end, so a run
killed by a timeout keeps what it had finished. Rollouts: bench/rollout_bench.py (hf, torch,
torch-plain, vllm, also vLLM's CPU build); the loop: bench/loop_bench.py; the update and its MFU:
bench/update_bench.py. peak_mem_gb: CUDA's max_memory_allocated per measurement, on CPU the
process's peak RSS so far.
"""
import argparse
import importlib.util
import json
import os

import torch
import transformers

from nano_forkrl.run.setup.policy import load_policy, pick_device
from nano_forkrl.bench.flops import non_embedding_params, peak_tflops
from nano_forkrl.bench.loop_bench import bench_eval, bench_rl_steps
from nano_forkrl.bench.rollout_bench import SAMPLERS, bench_rollout
from nano_forkrl.bench.update_bench import bench_update

SAMPLERS_HELP = (f"comma list of {','.join(SAMPLERS)}, or none (no rollouts). Default: "
                 "hf,torch,torch-plain, plus vllm on CUDA when vllm is importable. On CPU, vllm "
                 "(its CPU build, float32) runs when listed; it needs a head_dim its CPU attention "
                 "accepts, e.g. 64, so not --model tiny (16)")


def table(phases):
    head = (f"{'phase':13}{'what':18}{'tok/s':>11}{'seconds':>9}{'peak GB':>9}{'saved GB':>9}"
            f"{'MFU':>7}")
    lines = [head + "  error"]
    for p in phases:
        if "preset" in p:  # the loop: seconds per step or per evaluation, median of p["runs"]
            what = f"{p['preset']} x{p['runs']}"
        elif "sampler" in p:
            what = f"{p['sampler']} B={p['batch']}"
        else:
            what = f"{p['batch']}x{p['seq_len']}"
        util = f"{p['mfu']:.1%}" if p.get("mfu") is not None else ""
        saved = f"{p['saved_gb']:.3f}" if "saved_gb" in p else ""
        lines.append(f"{p['phase']:13}{what:18}{p.get('tok_per_s', 0):11.0f}"
                     f"{p.get('seconds', 0):9.3f}{p['peak_mem_gb']:9.2f}{saved:>9}{util:>7}"
                     f"  {p.get('error', '')}")
    return "\n".join(lines)


def flush(path, result):
    """Write the JSON so far: to a temporary file first, so a kill mid-write never leaves a torn
    file."""
    with open(f"{path}.tmp", "w") as f:
        json.dump(result, f, indent=1, default=str)
    os.replace(f"{path}.tmp", path)


def int_list(sep):
    return lambda s: [int(x) for x in s.split(sep)]


def parse_args(argv):
    ap = argparse.ArgumentParser(
        description="Speed and memory per phase of an RL step (see nano_forkrl/bench/cli.py).")
    ap.add_argument("--model", default="tiny",
                    help='"tiny" or a folder with config.json and tokenizer files')
    ap.add_argument("--device", default="auto",
                    help="auto (CUDA when available), cuda, cuda:N or cpu")
    ap.add_argument("--batches", default="2,8", type=int_list(","),
                    help="comma list of rollout batch sizes (rows per generate call)")
    ap.add_argument("--prompt-len", type=int, default=32,
                    help="prompt tokens per rollout row (random ids)")
    ap.add_argument("--new-tokens", type=int, default=32,
                    help="new tokens per rollout row (no EOS stop)")
    ap.add_argument("--samplers", default=None, help=SAMPLERS_HELP)
    ap.add_argument("--update-shape", default="2x128", type=int_list("x"),
                    help="BxT of the update measurement: B sequences of T tokens")
    ap.add_argument("--update", action=argparse.BooleanOptionalAction, default=True,
                    help="measure the update (forward + backward + AdamW); --no-update: rollouts "
                         "only")
    ap.add_argument("--chunk-size", type=int, default=2048,
                    help="tokens per output-head chunk (entropy.py)")
    ap.add_argument("--grad-ckpt", action=argparse.BooleanOptionalAction, default=None,
                    help="gradient checkpointing in the update (default: on CUDA only)")
    ap.add_argument("--naive-update", action="store_true",
                    help="also run the full-logits baseline update")
    ap.add_argument("--peak-tflops", type=float, default=None,
                    help="peak TFLOP/s for MFU (default: flops.PEAK_TFLOPS by GPU name; none on "
                         "CPU)")
    ap.add_argument("--rl-steps", type=int, default=0,
                    help="also time this many RL steps of --preset's loop (its model and data; "
                         "median seconds per step after one untimed step; bench/loop_bench.py)")
    ap.add_argument("--eval-runs", type=int, default=0,
                    help="also time this many evaluations of --preset's held-out set "
                         "(eval_n x eval_k samples)")
    ap.add_argument("--preset", default="tiny",
                    help="the preset whose loop --rl-steps and --eval-runs time")
    ap.add_argument("--loop-flags", default="", type=str.split,
                    help="train flags on top of --preset for the loop, e.g. '--eval-n 50'")
    ap.add_argument("--out", default="bench.json",
                    help="the JSON file, rewritten after every measurement")
    return ap.parse_args(argv)


def plan(args, samplers, model, tokenizer, device, add):
    """[(name, run)] in order: rollouts, update(s), vLLM last (its engine reserves a share of the
    GPU while it runs; it is closed after its rollouts). Each run hands every finished record to
    add()."""
    def rollout(kind):
        return lambda: bench_rollout(kind, model, tokenizer, args, device, on_record=add)

    steps = [(f"rollout {kind}", rollout(kind)) for kind in samplers if kind != "vllm"]
    if args.update:
        steps.append(("update", lambda: add(bench_update(model, args, device, naive=False))))
    if args.naive_update:
        steps.append(("naive_update", lambda: add(bench_update(model, args, device, naive=True))))
    if args.rl_steps:
        steps.append(("rl_step", lambda: add(
            bench_rl_steps(args.preset, args.rl_steps, device, args.loop_flags))))
    if args.eval_runs:
        steps.append(("evaluation", lambda: add(
            bench_eval(args.preset, args.eval_runs, device, args.loop_flags))))
    if "vllm" in samplers:
        steps.append(("rollout vllm", rollout("vllm")))
    return steps


def main(argv=None):
    args = parse_args(argv)
    device = pick_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    args.peak_tflops = args.peak_tflops or peak_tflops(name)
    with_vllm = device.type == "cuda" and importlib.util.find_spec("vllm") is not None
    listed = args.samplers or "hf,torch,torch-plain" + ",vllm" * with_vllm
    samplers = [] if listed == "none" else listed.split(",")
    # float32 master weights, as in training
    model, tokenizer = load_policy(f"random:{args.model}", device)
    phases = []
    about = {"name": args.model, "params": sum(p.numel() for p in model.parameters()),
             "non_embedding_params": non_embedding_params(model),
             "config": model.config.to_diff_dict()}
    result = {"device": name, "threads": torch.get_num_threads(), "torch": torch.__version__,
              "transformers": transformers.__version__, "args": vars(args), "model": about,
              "running": None, "complete": False, "phases": phases}

    def add(rec):
        phases.append(rec)
        flush(args.out, result)

    for what, run in plan(args, samplers, model, tokenizer, device, add):
        result["running"] = what  # on disk while it runs: a timeout shows which measurement it cut
        flush(args.out, result)
        run()
    result["running"], result["complete"] = None, True
    flush(args.out, result)
    print(table(phases) + f"\nwrote {args.out}")
    return result


if __name__ == "__main__":
    main()
