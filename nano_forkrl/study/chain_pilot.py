"""Plan B's pilot: can the long-chain testbed (tasks/chain.py) carry the paired experiment?

The go / no-go rule was written before the pilot ran (tutorials/results/powered/PLAN.md); GO needs
all four:
  1. the warm start's mean response length on validation is in [80, 150] tokens;
  2. at least 60% of its response tokens have entropy below 0.01 nats (mostly filler);
  3. its validation avg@4 is in [0.10, 0.80] (a reward signal, and room to improve);
  4. one 100-step RL run (top 20%, lr 1e-4) costs at most 25 minutes of CPU (one core); judged on
     a shorter run's CPU seconds per step times 100 (amendment 1; its fixed costs, start-up and
     evaluations, count as steps: an overestimate).
The RL run's own rise (paired, on the same validation problems) is reported, not judged.

CLI: python -m nano_forkrl.study.chain_pilot --out tutorials/results/powered/chain_pilot.json
"""
import argparse
import json
import os
import resource
import time
from pathlib import Path

from nano_forkrl.study import runner

RULE = dict(length=(80.0, 150.0), low_entropy_share=0.60, avg4=(0.10, 0.80), cpu_minutes=25.0)
MAX_NEW_TOKENS = 160  # the longest demonstration is about 135 tokens with its eos


def _cpu_s(who):
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def judge(m, rule=RULE):
    """{criterion: passed} for the pilot's measurements `m`, and "GO" / "NO-GO" (all must pass)."""
    checks = {
        "length": rule["length"][0] <= m["mean_length"] <= rule["length"][1],
        "low_entropy_share": m["share_below_0.01"] >= rule["low_entropy_share"],
        "avg4": rule["avg4"][0] <= m["start_avg4"] <= rule["avg4"][1],
        "cpu_minutes": m["rl_cpu_s"] / m["rl_steps"] * 100 / 60 <= rule["cpu_minutes"],
    }
    return checks, "GO" if all(checks.values()) else "NO-GO"


def warm_measurements(model, tokenizer, problems, n_sample=100, k=4, seed=1234):
    """The warm start on validation: mean length and entropy statistics of 2 sampled responses to
    each of the first n_sample problems (teacher-forced, temperature 1), and avg@k per problem."""
    from nano_forkrl.engines.torch_sampler import TorchSampler
    from nano_forkrl.entropy import entropy_statistics
    from nano_forkrl.run.steps.evaluation import evaluate
    from nano_forkrl.study.analysis import response_entropy
    from nano_forkrl.tasks.data import format_prompt

    sampler = TorchSampler(model.eval(), tokenizer, max_new_tokens=MAX_NEW_TOKENS, seed=seed)
    prompts = [format_prompt(p["problem"], "plain", tokenizer) for p in problems[:n_sample]]
    rollouts = sampler.generate(prompts, n=2)
    entropy, mask, _ = response_entropy(model, rollouts, tokenizer.pad_token_id)
    stats = entropy_statistics(entropy, mask)
    counts = evaluate(sampler, problems, k=k, template="plain", tokenizer=tokenizer, seed=seed)
    lengths = [len(r.response_ids) for r in rollouts]
    keys = ("n_tokens", "mean", "p50", "p80", "share_below_0.01")
    return dict(mean_length=sum(lengths) / len(lengths),
                truncated=sum(n >= MAX_NEW_TOKENS for n in lengths) / len(lengths),
                **{key: stats[key] for key in keys},
                start_avg4=sum(c / k for c in counts["per_problem"]) / len(problems),
                start=counts["per_problem"])


def pilot(out, runs_dir, seed=0, steps=100, lr=1e-4, n_val=200, k=4):
    """Build the chain warm start, measure it, run one RL run; write the verdict to `out`."""
    from nano_forkrl.run.setup.policy import load_policy
    from nano_forkrl.study.protocol import evaluate_model
    from nano_forkrl.tasks.chain import chain_problems
    from nano_forkrl.tasks.tiny import load_tiny

    runs_dir, t0, cpu0 = Path(runs_dir), time.time(), _cpu_s(resource.RUSAGE_SELF)
    model, tokenizer = load_tiny(seed=seed, task="chain")
    warm_s, warm_cpu_s = time.time() - t0, _cpu_s(resource.RUSAGE_SELF) - cpu0
    val = chain_problems("validation", n_val)
    m = dict(seed=seed, warm_s=warm_s, warm_cpu_s=warm_cpu_s,
             **warm_measurements(model, tokenizer, val, k=k))
    # the RL run trains the saved warm start on train-split problems given as files
    model.save_pretrained(runs_dir / "warm")
    tokenizer.save_pretrained(runs_dir / "warm")
    for split, problems in (("train", chain_problems("train", 20000)), ("validation", val)):
        text = "".join(json.dumps(p) + "\n" for p in problems)
        runner.write_text(runs_dir / f"chain_{split}.jsonl", text)
    flags = ["--model", runs_dir / "warm", "--train-data", runs_dir / "chain_train.jsonl",
             "--eval-data", runs_dir / "chain_validation.jsonl", "--eval-n", 100,
             "--eval-every", 25, "--max-new-tokens", MAX_NEW_TOKENS, "--rho", 0.2, "--lr", lr,
             "--steps", steps, "--seed", seed, "--save-every", 0]
    t1, cpu1 = time.time(), _cpu_s(resource.RUSAGE_CHILDREN)
    records = runner.train(flags, runs_dir / "rl")
    m.update(rl_steps=steps, rl_s=time.time() - t1,
             rl_cpu_s=_cpu_s(resource.RUSAGE_CHILDREN) - cpu1,
             curve=[(r["step"], r["eval"][f"avg@{k}"]) for r in records if "eval" in r],
             train_accuracy=[r.get("accuracy") for r in records if "eval" not in r])
    end, _ = load_policy(str(runs_dir / "rl" / "checkpoint"), "cpu")
    m["end"] = evaluate_model(end, tokenizer, val, k, max_new_tokens=MAX_NEW_TOKENS)
    m["rise_points"] = 100 * sum(b - a for a, b in zip(m["start"], m["end"])) / (k * len(val))
    checks, verdict = judge(m)
    result = dict(rule=RULE, checks=checks, verdict=verdict, commit=runner.code_commit(),
                  flags=[str(f) for f in flags], measurements=m, total_s=time.time() - t0)
    runner.write_json(out, result)
    return result


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="tutorials/results/powered/chain_pilot.json")
    ap.add_argument("--runs-dir", default="runs/chain_pilot", help="the warm start and the RL run")
    ap.add_argument("--steps", type=int, default=20, help="RL steps of the pilot's run")
    args = ap.parse_args(argv)
    os.environ.setdefault("TQDM_DISABLE", "1")
    r = pilot(args.out, args.runs_dir, steps=args.steps)
    print(json.dumps({key: r[key] for key in ("checks", "verdict")}))


if __name__ == "__main__":
    main()
