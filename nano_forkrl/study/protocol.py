"""The fair comparison of tutorials/09: one lr sweep per variant on VALIDATION, seeds at the chosen lr, TEST.

Protocol (tiny task, `nano_forkrl.tasks.arithmetic`: train / validation / test splits by hash, disjoint):
  1. sweep: every variant (top 20%, all tokens, bottom 80%, random 20%, and rho 0.1 / 0.5) runs at every lr of
     LRS with seed 0; its lr is the one with the best validation avg@k at the last step;
  2. seeds: each variant runs seeds 1, 2 at its chosen lr (each seed has its own warm start);
  3. report: test avg@k per run, with its SE over problems; per variant mean and SE over seeds.
Test problems are only evaluated, never used for a choice. Each run writes one JSON (its config, validation
and test per-problem counts at step 0 and at the end); a run whose JSON exists is not repeated.

CLI: python -m nano_forkrl.study.protocol --stage sweep --shard 0/2 --out tutorials/results/protocol
"""
import argparse
import json
import os
import time
from pathlib import Path

VARIANTS = {"top 20%": ["--rho", "0.2"], "all tokens": ["--rho", "1.0"],
            "bottom 80%": ["--rho", "0.2", "--mask-mode", "bottom"],
            "random 20%": ["--rho", "0.2", "--mask-mode", "random"],
            "top 10%": ["--rho", "0.1"], "top 50%": ["--rho", "0.5"]}
MAIN = ("top 20%", "all tokens", "bottom 80%", "random 20%")
LRS = (1e-4, 3e-4, 1e-3)
SEEDS = (1, 2)


def slug(variant, lr, seed):
    return f"{variant.replace(' ', '').replace('%', '')}_lr{lr:g}_s{seed}"


def evaluate_model(model, tokenizer, problems, k, seed=1234):
    """Per-problem correct counts of k temperature-1 samples (the training sampler's settings)."""
    from nano_forkrl.engines.torch_sampler import TorchSampler
    from nano_forkrl.run.steps.evaluation import evaluate

    sampler = TorchSampler(model.eval(), tokenizer, max_new_tokens=48, seed=seed)
    return evaluate(sampler, problems, k=k, template="plain", tokenizer=tokenizer, seed=seed)["per_problem"]


def sets(n_val, n_test, folder):
    """(validation, test) problems; the validation set is also written as JSONL for the loop's --eval-data."""
    from nano_forkrl.tasks.arithmetic import tiny_problems

    val, test = tiny_problems("validation", n_val), tiny_problems("test", n_test)
    path = Path(folder) / f"validation_{n_val}.jsonl"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(p) + "\n" for p in val))
    return val, test, path


def run_one(variant, lr, seed, *, steps, out, runs_dir, n_val=200, n_test=200, k=4, eval_every=0):
    """Train one (variant, lr, seed), evaluate its start and end on validation and test; write, return it."""
    from nano_forkrl.run.setup.config import parse_args
    from nano_forkrl.run.setup.policy import load_policy
    from nano_forkrl.train import train

    path = Path(out) / f"{slug(variant, lr, seed)}.json"
    if path.exists():
        return json.loads(path.read_text())
    val, test, val_file = sets(n_val, n_test, out)
    t = time.time()
    run_dir = Path(runs_dir) / slug(variant, lr, seed)
    records = train(parse_args(VARIANTS[variant] + [
        "--lr", str(lr), "--seed", str(seed), "--steps", str(steps), "--eval-data", str(val_file),
        "--eval-n", str(n_val), "--eval-k", str(k), "--eval-every", str(eval_every), "--save-every", "0",
        "--out-dir", str(run_dir), "--overwrite"]))
    train_s = time.time() - t
    result = dict(variant=variant, flags=VARIANTS[variant], lr=lr, seed=seed, steps=steps, k=k,
                  curve=[(r["step"], r["eval"][f"avg@{k}"]) for r in records if "eval" in r],
                  train_accuracy=[r.get("accuracy") for r in records if "eval" not in r], train_s=train_s)
    start, tok = load_policy("tiny", "cpu", seed=seed)
    end, _ = load_policy(str(run_dir / "checkpoint"), "cpu")
    for name, problems in (("validation", val), ("test", test)):
        result[name] = dict(start=evaluate_model(start, tok, problems, k),
                            end=evaluate_model(end, tok, problems, k))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result))
    return result


def load_results(out):
    return [json.loads(p.read_text()) for p in sorted(Path(out).glob("*_lr*_s*.json"))]


def chosen_lr(results, variant, lrs=LRS):
    """The lr in `lrs` (the sweep) with the best validation avg@k of `variant` at the end, seed 0; runs at any
    other lr (e.g. a later check) never change the choice."""
    from nano_forkrl.study.uncertainty import problem_se

    rows = [r for r in results if r["variant"] == variant and r["seed"] == 0 and r["lr"] in lrs]
    if not rows:
        return None
    return max(rows, key=lambda r: (problem_se(r["validation"]["end"], r["k"])[0], -r["lr"]))["lr"]


def jobs(stage, results, variants, lrs=LRS, seeds=SEEDS, lr_from=None):
    """(variant, lr, seed) to run: the sweep, or seeds at the lr chosen for the variant (or for `lr_from`)."""
    if stage == "sweep":
        return [(v, lr, 0) for v in variants for lr in lrs]
    lr = {v: chosen_lr(results, lr_from or v) for v in variants}
    return [(v, lr[v], s) for v in variants for s in seeds if lr[v]]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stage", choices=("sweep", "seeds"), required=True,
                    help="sweep: every variant at every lr, seed 0; seeds: the other seeds at the chosen lr")
    ap.add_argument("--variants", default=",".join(MAIN), help="comma-separated names of VARIANTS")
    ap.add_argument("--lrs", default=",".join(f"{x:g}" for x in LRS),
                    help="comma-separated learning rates of the sweep")
    ap.add_argument("--seeds", default=",".join(map(str, SEEDS)), help="comma-separated seeds of the seeds stage")
    ap.add_argument("--lr-from", default=None, help="seeds stage: use this variant's chosen lr")
    ap.add_argument("--shard", default="0/1", help="i/n: run every n-th job from the i-th")
    ap.add_argument("--steps", type=int, default=60, help="RL steps per run")
    ap.add_argument("--n-val", type=int, default=200, help="validation problems (the lr choice)")
    ap.add_argument("--n-test", type=int, default=200, help="test problems (reported only)")
    ap.add_argument("--k", type=int, default=4, help="samples per problem: avg@k")
    ap.add_argument("--out", default="tutorials/results/protocol", help="folder for one result JSON per run")
    ap.add_argument("--runs-dir", default="runs/protocol", help="folder for the runs' checkpoints and logs")
    args = ap.parse_args(argv)
    os.environ.setdefault("TQDM_DISABLE", "1")
    i, n = map(int, args.shard.split("/"))
    lrs, seeds = [float(x) for x in args.lrs.split(",")], [int(s) for s in args.seeds.split(",")]
    todo = jobs(args.stage, load_results(args.out), args.variants.split(","), lrs, seeds, args.lr_from)
    for variant, lr, seed in todo[i::n]:
        r = run_one(variant, lr, seed, steps=args.steps, out=args.out, runs_dir=args.runs_dir,
                    n_val=args.n_val, n_test=args.n_test, k=args.k)
        print(json.dumps({key: r[key] for key in ("variant", "lr", "seed", "curve", "train_s")}), flush=True)


if __name__ == "__main__":
    main()
