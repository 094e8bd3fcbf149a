"""What RLVR changes in the entropy pattern: the paper's Sec. 4 analyses (Wang et al. 2025,
arXiv 2506.01939).

Both measured on the SAME teacher-forced responses (sampled once from the warm start), so that only
the model changes between the two entropies:
  1. `entropy_change_by_bucket`: tokens ranked by their entropy under the initial model, cut into
     percentile buckets; per bucket the mean entropy before and after RL. The paper finds that RL
     mostly changes the entropy of the tokens that were already high-entropy, while the low-entropy
     majority barely moves.
  2. `overlap_by_checkpoint`: the share of the initial model's top-rho positions that are still
     top-rho under the model at each checkpoint (the paper: above 86% at convergence, falling slowly
     during training).
`class_table` says which kind of token (tiny task: arithmetic.token_classes) the top-rho positions
are. An overlap means little without a baseline: `overlaps_with` also scores warm starts trained
from other seeds (no RL at all) on the same responses. `p80_over_draws` gives the 80th-percentile
entropy of several independent samples: a range, not one number.

CLI (tutorials/10's fixed responses: 100 test problems x 2, sampled from the seed-0 warm start):
  python -m nano_forkrl.study.rl_change --compare "warm start seed 1=tiny:1" \\
      --compare "after RL=runs/tiny/checkpoint" --out overlap.json
"""
import argparse
import json
import sys
from collections import Counter

import torch

from nano_forkrl.engines.torch_sampler import TorchSampler
from nano_forkrl.entropy import entropy_statistics
from nano_forkrl.masking import top_entropy_mask
from nano_forkrl.run.setup.policy import load_policy
from nano_forkrl.study.analysis import response_entropy, topk_overlap
from nano_forkrl.tasks.arithmetic import tiny_problems
from nano_forkrl.tasks.data import format_prompt

BUCKETS = (0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100)  # percentile edges of the initial entropy


def percentile_ranks(values):
    """Percentile (0-100) of each value among `values` (1-D), ties broken by position:
    rank / n * 100."""
    order = torch.argsort(values, stable=True)
    ranks = torch.empty_like(order)
    ranks[order] = torch.arange(len(values))
    return ranks.float() * 100.0 / max(len(values), 1)


def entropy_change_by_bucket(entropy_before, entropy_after, mask, edges=BUCKETS):
    """[{lo, hi, n, before, after, change}] for the initial-entropy percentile buckets [lo, hi)."""
    before, after = entropy_before[mask.bool()].float(), entropy_after[mask.bool()].float()
    pct = percentile_ranks(before)
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (pct >= lo) & (pct < hi)
        n = int(inside.sum())
        b = float(before[inside].mean()) if n else float("nan")
        a = float(after[inside].mean()) if n else float("nan")
        rows.append(dict(lo=lo, hi=hi, n=n, before=b, after=a, change=a - b))
    return rows


def overlap_by_checkpoint(entropy_base, entropies, mask, rho=0.2):
    """[(step, overlap)]: `entropies` maps a checkpoint's step to its entropy on the same
    responses."""
    return [(step, topk_overlap(entropy_base, h, mask, rho))
            for step, h in sorted(entropies.items())]


def overlaps_with(entropy_base, entropies, mask, rho=0.2):
    """{name: top-rho overlap with the base} for the named entropies of other models on the same
    responses (e.g. warm starts of other seeds: the overlap that involves no RL)."""
    return {name: topk_overlap(entropy_base, h, mask, rho) for name, h in entropies.items()}


def entropies_of(models, rollouts, pad_id):
    """{name: teacher-forced entropy [B, T]} of each model on the same rollouts, and the response
    mask."""
    out, mask = {}, None
    for name, model in models.items():
        out[name], mask, _ = response_entropy(model, rollouts, pad_id)
    return out, mask


def class_table(entropy, mask, labels, tokenizer, classify, rho=0.2):
    """{class: {n, share_all, share_top, in_top, mean_entropy}}: how many response tokens each class
    has, its share of all tokens and of the top-rho tokens, the share of the class that is top-rho,
    its mean entropy. `classify` maps one response's decoded tokens to their classes
    (arithmetic.token_classes)."""
    top = top_entropy_mask(entropy.float(), mask, rho)
    counts, tops, sums = Counter(), Counter(), Counter()
    for b in range(labels.shape[0]):
        pos = mask[b].bool().nonzero().flatten().tolist()
        pieces = [tokenizer.decode([int(labels[b, t])]) for t in pos]
        for t, cls in zip(pos, classify(pieces)):
            counts[cls] += 1
            tops[cls] += bool(top[b, t])
            sums[cls] += float(entropy[b, t])
    n_all, n_top = sum(counts.values()), max(sum(tops.values()), 1)
    return {c: dict(n=counts[c], share_all=counts[c] / n_all, share_top=tops[c] / n_top,
                    in_top=tops[c] / counts[c], mean_entropy=sums[c] / counts[c])
            for c in sorted(counts, key=lambda c: -tops[c])}


def plot_bucket_change(rows, ax):
    """Bars of the entropy before and after per initial-entropy percentile bucket (log axis)."""
    x = range(len(rows))
    ax.bar([i - 0.2 for i in x], [r["before"] for r in rows], 0.4, label="warm start")
    ax.bar([i + 0.2 for i in x], [r["after"] for r in rows], 0.4, label="after RL")
    ax.set_xticks(list(x), [f"{r['lo']}-{r['hi']}" for r in rows], rotation=45)
    ax.set(yscale="log", xlabel="initial-entropy percentile", ylabel="mean entropy (nats)")
    ax.legend(fontsize=8)


def plot_overlap(curves, ax):
    """One line per run: {label: [(step, overlap)]}."""
    for label, pts in curves.items():
        ax.plot([s for s, _ in pts], [o for _, o in pts], marker="o", label=label)
    ax.axhline(0.86, color="k", ls=":", label="paper: 86% (Qwen3-14B, converged)")
    ax.set(xlabel="RL step", ylabel="top-20% overlap with the warm start", ylim=(0, 1.02))
    ax.legend(fontsize=8)


def fixed_responses(model, tokenizer, n, k, *, seed=7, problem_seed=0):
    """k temperature-1 responses to each of n tiny test problems, sampled once: the responses that
    every model is then scored on (tutorials/10's settings by default)."""
    problems = tiny_problems("test", n, seed=problem_seed)
    sampler = TorchSampler(model.eval(), tokenizer, max_new_tokens=48, seed=seed)
    prompts = [format_prompt(p["problem"], "plain", tokenizer) for p in problems]
    return sampler.generate(prompts, n=k)


def p80_over_draws(model, tokenizer, n, k, draws):
    """The 80th-percentile entropy of `draws` independent samples of n problems x k responses (draw
    d: problems drawn with seed d, sampler seed 1234 + d)."""
    out = []
    for d in range(draws):
        rollouts = fixed_responses(model, tokenizer, n, k, seed=1234 + d, problem_seed=d)
        entropy, mask, _ = response_entropy(model, rollouts, tokenizer.pad_token_id)
        out.append(entropy_statistics(entropy, mask)["p80"])
    return out


def load_model(spec):
    """"tiny:SEED" (the warm start of that seed) or a model folder: (model, tokenizer) on the CPU,
    in eval mode."""
    name, seed = spec.split(":") if spec.startswith("tiny:") else (spec, "0")
    model, tokenizer = load_policy(name, "cpu", seed=int(seed))
    return model.eval(), tokenizer


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default="tiny:0",
                    help="the model that samples the responses: tiny:SEED or a folder")
    ap.add_argument("--compare", action="append", default=[], metavar="NAME=MODEL",
                    help="a model scored on the same responses: its top-rho overlap with the base "
                         "(repeatable; MODEL as --base)")
    ap.add_argument("--n", type=int, default=100, help="test problems of the fixed responses")
    ap.add_argument("--k", type=int, default=2, help="responses per problem")
    ap.add_argument("--rho", type=float, default=0.2, help="share of tokens counted as forking")
    ap.add_argument("--draws", type=int, default=8,
                    help="independent samples for the range of the 80th percentile")
    ap.add_argument("--draw-n", type=int, default=64, help="problems per such sample")
    ap.add_argument("--out", default=None, help="write the result as JSON here")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    base, tok = load_model(args.base)
    rollouts = fixed_responses(base, tok, args.n, args.k)
    h, mask, _ = response_entropy(base, rollouts, tok.pad_token_id)
    others = {}
    for item in args.compare:
        name, _, spec = item.partition("=")
        others[name] = response_entropy(load_model(spec)[0], rollouts, tok.pad_token_id)[0]
    draws = p80_over_draws(base, tok, args.draw_n, args.k, args.draws)
    command = sys.argv[1:] if argv is None else list(argv)
    result = dict(command=" ".join(["python -m nano_forkrl.study.rl_change"] + command),
                  base=args.base, n=args.n, k=args.k, tokens=int(mask.sum()), rho=args.rho,
                  overlap=overlaps_with(h, others, mask, args.rho),
                  p80=dict(fixed=entropy_statistics(h, mask)["p80"], draws=draws,
                           draw_n=args.draw_n, low=min(draws, default=None),
                           high=max(draws, default=None)))
    print(json.dumps(result, indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main()
