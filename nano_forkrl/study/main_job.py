"""The main job's reported result (README, tutorials/results/main_job.json), read from a finished
run.

While it trains, the run evaluates on the VALIDATION split of its held-out source (train.py); the
test split is read here, once, at the end: the run's warm start and its final checkpoint are each
evaluated on the same test problems (k samples at the run's temperature, per-problem counts), and
the rise is paired on those problems (study/uncertainty.py: SE over problems).

CLI: python -m nano_forkrl.study.main_job --run runs/tiny --out tutorials/results/main_job.json
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path

import transformers

from nano_forkrl.engines.torch_sampler import TorchSampler
from nano_forkrl.run.persist.checkpoint import load_state
from nano_forkrl.run.setup.policy import load_policy
from nano_forkrl.run.steps.evaluation import evaluate
from nano_forkrl.study.uncertainty import paired_difference, problem_se
from nano_forkrl.tasks.data import load_split


def test_counts(model, tokenizer, problems, config, k, seed=1234):
    """Per-problem correct counts of k samples, with the run's template, budget and temperature."""
    sampler = TorchSampler(model.eval(), tokenizer, max_new_tokens=config["max_new_tokens"],
                           temperature=config["temperature"], top_p=config["top_p"], seed=seed)
    return evaluate(sampler, problems, k=k, template=config["template"], tokenizer=tokenizer,
                    seed=seed)["per_problem"]


def held_out_curve(run):
    """[(step, avg@k)] of the run's own evaluations (metrics.jsonl): its validation problems."""
    records = [json.loads(line) for line in (Path(run) / "metrics.jsonl").read_text().splitlines()
               if line.strip()]
    return [(r["step"], r["eval"][f"avg@{r['eval']['k']}"]) for r in records if "eval" in r]


def commit():
    """The package's git commit (with "-dirty" for uncommitted changes), or None outside git."""
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                              text=True, cwd=Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def report(run, n=200, k=4):
    """{config, problems, test_start, test_end, start, end, rise, held_out, commit} of one run:
    start, end and rise are (mean, SE over problems)."""
    run = Path(run)
    config = load_state(run / "checkpoint" / "trainer_state.pt", mmap=True)["config"]
    problems = load_split(config["eval_data"], "test", limit=n)
    start, tokenizer = load_policy(config["model"], "cpu", seed=config["seed"])
    end, _ = load_policy(str(run / "checkpoint"), "cpu")
    counts = {name: test_counts(model, tokenizer, problems, config, k)
              for name, model in (("start", start), ("end", end))}
    return dict(run=str(run), config={key: config[key] for key in ("model", "seed", "steps", "lr",
                                                                      "rho", "mask_mode")},
                commit=commit(), k=k, problems=[p["id"] for p in problems],
                test_start=counts["start"], test_end=counts["end"],
                start=problem_se(counts["start"], k), end=problem_se(counts["end"], k),
                rise=paired_difference(counts["start"], counts["end"], k),
                held_out=held_out_curve(run))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="runs/tiny", help="a finished run folder (its checkpoint/)")
    ap.add_argument("--n", type=int, default=200, help="test problems")
    ap.add_argument("--k", type=int, default=4, help="samples per problem: avg@k")
    ap.add_argument("--out", default=None, help="write the result as JSON here")
    args = ap.parse_args(argv)
    transformers.utils.logging.disable_progress_bar()  # one result, not a bar per weight load
    result = report(args.run, args.n, args.k)
    result["command"] = " ".join(["python -m nano_forkrl.study.main_job"]
                                 + (sys.argv[1:] if argv is None else list(argv)))
    (start, se_start), (end, se_end) = result["start"], result["end"]
    rise, se_rise = result["rise"]
    print(f"test avg@{args.k} on {args.n} problems: {start:.3f} ± {se_start:.3f} -> {end:.3f} ± "
          f"{se_end:.3f}, paired rise {100 * rise:+.1f} ± {100 * se_rise:.1f} points")
    if args.out:
        Path(args.out).write_text(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
