"""The fair comparison of tutorials/09: one lr sweep per variant on VALIDATION, then seeds at the
chosen lr, reported on TEST.

Tiny task (tasks/arithmetic.py: train / validation / test split by hash). 1. sweep: each variant at
each lr of the grid, seed 0; its lr: the best validation avg@k at the end (a tie: the smaller one);
2. seeds: each variant runs the other seeds at its chosen lr (each seed: its own warm start), seed
by seed, so a stopped queue leaves whole pairs; 3. report: test avg@k per run, paired by seed
(study/paired.py). Test problems never make a choice. Each run writes one JSON (flags, the code's
commit, per-problem counts at step 0 and at the end); a run whose JSON exists is skipped. Designs:
"protocol" (the first: 60 steps, 200 + 200 problems, seeds 1-2) and "powered" (issue 24's Plan A,
tutorials/results/powered/PLAN.md: 100 steps, 500 validation and 1,000 test problems, seeds 101-).

CLI: python -m nano_forkrl.study.protocol --design powered --stage sweep --jobs 2
(each run a child `... --one VARIANT LR SEED` that trains with `python -m nano_forkrl.train`)
"""
import argparse
import fcntl
import json
import os
import sys
import time
from pathlib import Path

from nano_forkrl.study import runner

VARIANTS = {"top 20%": ["--rho", "0.2"], "all tokens": ["--rho", "1.0"],
            "bottom 80%": ["--rho", "0.2", "--mask-mode", "bottom"],
            "random 20%": ["--rho", "0.2", "--mask-mode", "random"],
            "top 10%": ["--rho", "0.1"], "top 50%": ["--rho", "0.5"]}
MAIN = ("top 20%", "all tokens", "bottom 80%", "random 20%")
LRS = (1e-4, 3e-4, 1e-3)
SEEDS = (1, 2)
DESIGNS = {
    "protocol": dict(steps=60, lrs=LRS, seeds=SEEDS, variants=MAIN, n_val=200, n_test=200,
                     test_skip=0, eval_every=0, eval_n=None, sweep_splits=("validation", "test"),
                     out="tutorials/results/protocol", runs_dir="runs/protocol"),
    # the sweep never sees test; the 200 test problems skipped are the main job's curve's (PLAN.md)
    "powered": dict(steps=100, lrs=(3e-5, 1e-4, 3e-4, 1e-3), seeds=tuple(range(101, 117)),
                    variants=("top 20%", "all tokens"), n_val=500, n_test=1000, test_skip=200,
                    eval_every=25, eval_n=100, sweep_splits=("validation",),
                    out="tutorials/results/powered/runs", runs_dir="runs/powered"),
}
SETTINGS = ("steps", "n_val", "n_test", "test_skip", "eval_every", "k", "out", "runs_dir")


def slug(variant, lr, seed):
    return f"{variant.replace(' ', '').replace('%', '')}_lr{lr:g}_s{seed}"


def evaluate_model(model, tokenizer, problems, k, seed=1234):
    """Per-problem correct counts of k temperature-1 samples (the training sampler's settings)."""
    from nano_forkrl.engines.torch_sampler import TorchSampler
    from nano_forkrl.run.steps.evaluation import evaluate

    sampler = TorchSampler(model.eval(), tokenizer, max_new_tokens=48, seed=seed)
    result = evaluate(sampler, problems, k=k, template="plain", tokenizer=tokenizer, seed=seed)
    return result["per_problem"]


def sets(n_val, n_test, folder, test_skip=0):
    """(validation, test, validation JSONL path): the validation set is also written as JSONL for
    the loop's --eval-data; the test set is the split's problems test_skip .. test_skip + n_test."""
    from nano_forkrl.tasks.arithmetic import tiny_problems

    val = tiny_problems("validation", n_val)
    test = tiny_problems("test", test_skip + n_test)[test_skip:]
    path = Path(folder) / f"validation_{n_val}.jsonl"
    if not path.exists():
        runner.write_text(path, "".join(json.dumps(p) + "\n" for p in val))
    return val, test, path


def warm_start(seed, lock_dir):
    """The tiny warm start of `seed`, built once: a run that finds another building it waits for
    that build (a file lock) instead of building the same model a second time."""
    from nano_forkrl.run.setup.policy import load_policy

    Path(lock_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(lock_dir) / f".warm-{seed}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return load_policy("tiny", "cpu", seed=seed)


def run_one(variant, lr, seed, *, steps, out, runs_dir, n_val=200, n_test=200, k=4, eval_every=0,
            test_skip=0, splits=("validation", "test"), eval_n=None):
    """Train one (variant, lr, seed) as a child process, evaluate its warm start and its end on
    `splits`; write the result JSON (atomically) and return it."""
    from nano_forkrl.run.setup.policy import load_policy

    path = Path(out) / f"{slug(variant, lr, seed)}.json"
    if path.exists():
        return json.loads(path.read_text())
    val, test, val_file = sets(n_val, n_test, out, test_skip)
    t = time.time()
    start, tok = warm_start(seed, runs_dir)
    run_dir = Path(runs_dir) / slug(variant, lr, seed)
    flags = VARIANTS[variant] + [
        "--lr", lr, "--seed", seed, "--steps", steps, "--eval-data", val_file,
        "--eval-n", eval_n or n_val, "--eval-k", k, "--eval-every", eval_every, "--save-every", 0]
    t_train, records = time.time(), runner.train(flags, run_dir)
    train_s = time.time() - t_train
    result = dict(variant=variant, flags=VARIANTS[variant], lr=lr, seed=seed, steps=steps, k=k,
                  commit=runner.code_commit(), train_flags=[str(f) for f in flags],
                  test_skip=test_skip, train_s=train_s,
                  curve=[(r["step"], r["eval"][f"avg@{k}"]) for r in records if "eval" in r],
                  train_accuracy=[r.get("accuracy") for r in records if "eval" not in r])
    end, _ = load_policy(str(run_dir / "checkpoint"), "cpu")
    for name, problems in (("validation", val), ("test", test)):
        if name in splits:
            result[name] = dict(start=evaluate_model(start, tok, problems, k),
                                end=evaluate_model(end, tok, problems, k))
    result["total_s"] = time.time() - t
    runner.write_json(path, result)
    return result


def load_results(out):
    return [json.loads(p.read_text()) for p in sorted(Path(out).glob("*_lr*_s*.json"))]


def chosen_lr(results, variant, lrs=LRS):
    """The lr in `lrs` (the sweep) with the best validation avg@k of `variant` at the end, seed 0;
    runs at any other lr (e.g. a later check) never change the choice; a tie goes to the smaller."""
    from nano_forkrl.study.uncertainty import problem_se

    rows = [r for r in results if r["variant"] == variant and r["seed"] == 0 and r["lr"] in lrs]
    if not rows:
        return None
    best = max(rows, key=lambda r: (problem_se(r["validation"]["end"], r["k"])[0], -r["lr"]))
    return best["lr"]


def jobs(stage, results, variants, lrs=LRS, seeds=SEEDS, lr_from=None):
    """(variant, lr, seed) to run: the sweep (seed 0), or the seeds at the lr chosen for the
    variant (or for `lr_from`), seed by seed: every variant of one seed before the next seed."""
    if stage == "sweep":
        return [(v, lr, 0) for v in variants for lr in lrs]
    lr = {v: chosen_lr(results, lr_from or v, lrs) for v in variants}
    return [(v, lr[v], s) for s in seeds for v in variants if lr[v]]


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--design", choices=sorted(DESIGNS), default="protocol",
                    help="the defaults of every setting below")
    ap.add_argument("--stage", choices=("sweep", "seeds"),
                    help="sweep: every variant at every lr, seed 0; seeds: the others at its lr")
    ap.add_argument("--one", nargs=3, metavar=("VARIANT", "LR", "SEED"), help="run only this one")
    ap.add_argument("--variants", help="comma-separated names of VARIANTS")
    ap.add_argument("--lrs", help="comma-separated learning rates of the sweep")
    ap.add_argument("--seeds", help="comma-separated seeds of the seeds stage")
    ap.add_argument("--lr-from", default=None, help="seeds stage: use this variant's chosen lr")
    ap.add_argument("--shard", default="0/1", help="i/n: run every n-th job from the i-th")
    ap.add_argument("--jobs", type=int, default=0,
                    help="run the jobs as child processes, this many at a time (each with "
                         "OMP_NUM_THREADS=1); 0: one after another in this process")
    ap.add_argument("--stop-at", type=float, help="launch no child after this UNIX time")
    for name, kind, text in (("steps", int, "RL steps per run"), ("k", int, "avg@k's k"),
                             ("n-val", int, "validation problems"), ("n-test", int, "test ones"),
                             ("test-skip", int, "test problems skipped"),
                             ("eval-every", int, "steps between the loop's evaluations"),
                             ("out", str, "result JSON folder"), ("runs-dir", str, "runs' folder")):
        ap.add_argument(f"--{name}", type=kind, help=f"{text} (default: the design's)")
    return ap, ap.parse_args(argv)


def main(argv=None):
    ap, args = parse_args(argv)
    d = {**DESIGNS[args.design], "k": 4}
    d.update({key: v for key, v in vars(args).items() if key in d and v is not None})
    os.environ.setdefault("TQDM_DISABLE", "1")

    def one(variant, lr, seed):
        splits = d["sweep_splits"] if seed == 0 else ("validation", "test")
        r = run_one(variant, lr, seed, splits=splits, eval_n=d["eval_n"],
                    **{key: d[key] for key in SETTINGS})
        print(json.dumps({key: r[key] for key in ("variant", "lr", "seed", "curve", "train_s")}))

    if args.one:
        return one(args.one[0], float(args.one[1]), int(args.one[2]))
    if not args.stage:
        ap.error("--stage or --one is needed")
    lrs = [float(x) for x in args.lrs.split(",")] if args.lrs else d["lrs"]
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else d["seeds"]
    variants = args.variants.split(",") if args.variants else d["variants"]
    i, n = map(int, args.shard.split("/"))
    todo = jobs(args.stage, load_results(d["out"]), variants, lrs, seeds, args.lr_from)[i::n]
    if not args.jobs:
        return [one(*job) for job in todo]
    passed = [x for key in SETTINGS for x in (f"--{key.replace('_', '-')}", d[key])]
    tasks = [(Path(d["out"]) / f"{slug(v, lr, s)}.json",
              [sys.executable, "-m", "nano_forkrl.study.protocol", "--design", args.design,
               "--one", v, lr, s, *passed]) for v, lr, s in todo]
    for path, code, secs in runner.run_queue(tasks, args.jobs, stop_at=args.stop_at):
        print(f"{Path(path).name}: {code} ({secs:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
