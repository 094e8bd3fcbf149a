"""The paper's observations, measured: how token entropy spreads over a chain of thought, and why
it matters.

Wang et al. 2025 ("Beyond the 80/20 Rule", arXiv 2506.01939) report, in their Section 3 (numbers
are the paper's, Qwen3-8B on AIME'24/'25, entropy H_t = -sum_v p_v log p_v of the temperature-1
next-token distribution, in nats):
  1. The distribution is very skewed: over 50% of response tokens have H_t < 0.01 and the 80th
     percentile is 0.672, so only 20% of tokens lie above it             -> `entropy_statistics`
  2. High-entropy tokens are "forks" ("wait", "however", "thus", "suppose"); low-entropy tokens
     complete what is already decided (word suffixes, formula pieces)   -> `forking_token_table`
  3. Decoding with T_high for tokens above the threshold and T_low below: lowering T_high hurts,
     raising it moderately helps, while changing T_low matters much less
                                            -> study/temperature.py's `bucket_temperature_sweep`
And in Section 4 (Table 1, Qwen3-14B + DAPO): RLVR keeps the base model's forks, the top-20%
positions of the base and RL-trained models overlap by more than 86% on the same responses
                                                                         -> `topk_overlap`
(the overlap over checkpoints and the entropy change by percentile bucket: study/rl_change.py)

CLI: python -m nano_forkrl.study.analysis --model PATH --bench math500 --n 64 [--k 1]
[--compare RL_PATH] [--sweep] writes stats.json and entropy_hist.png to --out. CPU and CUDA: same
code; on CUDA entropies run under bf16 autocast.
"""
import argparse
import json
from collections import defaultdict
from pathlib import Path

import torch
import transformers

from nano_forkrl.engines.factory import make_sampler
from nano_forkrl.entropy import entropy_statistics, score_batch
from nano_forkrl.masking import top_entropy_mask
from nano_forkrl.run.setup.policy import load_policy
from nano_forkrl.study.temperature import bucket_temperature_sweep
from nano_forkrl.tasks.data import collate_rollouts, format_prompt, load_split


@torch.no_grad()
def response_entropy(model, rollouts, pad_id, *, temperature=1.0, chunk_size=1024, batch_size=8):
    """Teacher-forced H_t at every generated token: (entropy, response_mask, labels), each [B, T]
    on the CPU.
    entropy[b, t] is the entropy of the distribution that produced labels[b, t]."""
    batch = collate_rollouts([r.prompt_ids for r in rollouts], [r.response_ids for r in rollouts],
                             pad_id)
    _, entropy = score_batch(model, batch, micro_batch_size=batch_size, temperature=temperature,
                             chunk_size=chunk_size)
    return entropy, batch["response_mask"], batch["labels"]


def forking_token_table(entropy, mask, labels, tokenizer, *, rho=0.2, top=20):
    """The `top` most frequent tokens among the rho highest-entropy positions ("high") and among
    the rho lowest-entropy positions ("low"): [(token_text, count, mean_entropy)], most frequent
    first (ties: lower id)."""
    table = {}
    for name, sign in (("high", 1.0), ("low", -1.0)):
        chosen = top_entropy_mask(sign * entropy.float(), mask, rho)
        ids, hs = labels[chosen].tolist(), entropy[chosen].float().tolist()
        groups = defaultdict(list)  # token id -> entropies at its chosen positions
        for i, e in zip(ids, hs):
            groups[i].append(e)
        ranked = sorted(groups, key=lambda i: (-len(groups[i]), i))[:top]
        table[name] = [(tokenizer.decode([i]), len(groups[i]), sum(groups[i]) / len(groups[i]))
                       for i in ranked]
    return table


def topk_overlap(entropy_a, entropy_b, mask, rho=0.2):
    """Share of model A's top-rho positions that are also model B's top-rho positions (same
    responses).
    Both sets have k = ceil(rho N) positions, so the value is symmetric in A and B."""
    a, b = top_entropy_mask(entropy_a, mask, rho), top_entropy_mask(entropy_b, mask, rho)
    return float((a & b).sum()) / max(int(a.sum()), 1)


def plot_histogram(stats, path):
    from matplotlib.figure import Figure  # no pyplot: renders with Agg, needs no display

    edges = list(stats["histogram"]["edges"])
    edges[0] = edges[1] / 10  # the [0, 1e-4) bin, drawn on a log axis
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    ax.stairs(stats["histogram"]["counts"], edges, fill=True)
    ax.axvline(stats["p80"], color="r", ls="--", label=f"80th percentile = {stats['p80']:.3f}")
    below = 100 * stats["share_below_0.01"]
    ax.axvline(0.01, color="k", ls=":", label=f"0.01: {below:.0f}% of tokens below")
    ax.set(xscale="log", xlabel="token entropy (nats)", ylabel="tokens",
           title=f"{stats['n_tokens']} tokens")
    ax.legend()
    fig.savefig(path, dpi=120, bbox_inches="tight")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny", help="hub name, local folder, or 'tiny'")
    ap.add_argument("--bench", default=None,
                    help="vendored name, JSONL/parquet path or 'tiny' (the tiny task's test split)")
    ap.add_argument("--n", type=int, default=64, help="number of problems")
    ap.add_argument("--k", type=int, default=1, help="responses per problem")
    ap.add_argument("--compare", default=None, help="second model (e.g. after RL): top-rho overlap")
    ap.add_argument("--template", default=None,
                    help="prompt template (default: the training config's, else boxed)")
    ap.add_argument("--max-new-tokens", type=int, default=None,
                    help="response budget (default: the training config's)")
    ap.add_argument("--rho", type=float, default=0.2,
                    help="share of tokens counted as forking (default: 0.2)")
    ap.add_argument("--sweep", action="store_true",
                    help="bucket-temperature sweep at threshold = p80")
    ap.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    ap.add_argument("--dtype", default="auto", help="auto (float32 masters) or bf16")
    ap.add_argument("--seed", type=int, default=1234, help="sampling seed (default: 1234)")
    ap.add_argument("--out", default="analysis_out", help="folder for stats.json and the plots")
    args = ap.parse_args(argv)
    transformers.utils.logging.disable_progress_bar()  # one result, not a bar per weight load
    from nano_forkrl.run.steps.evaluation import cli_defaults
    from nano_forkrl.verify import reward  # lazy, like evaluate: sympy is only needed here

    bench, template, max_new = cli_defaults(args.model, args.bench, args.template,
                                            args.max_new_tokens, long=2048)
    model, tok = load_policy(args.model, args.device, args.dtype)
    problems = load_split(bench, "test", limit=args.n)  # "tiny": the tiny task's test split
    sampler = make_sampler("auto", model, tok, max_new_tokens=max_new, seed=args.seed)
    prompts = [format_prompt(p["problem"], template, tok) for p in problems]
    rollouts = sampler.generate(prompts, n=args.k)
    del sampler
    rewards = [reward(r.text, problems[r.prompt_index]["answer"]) for r in rollouts]
    accuracy = sum(rewards) / len(rollouts)
    entropy, mask, labels = response_entropy(model, rollouts, tok.pad_token_id)
    stats = entropy_statistics(entropy, mask)
    table = forking_token_table(entropy, mask, labels, tok, rho=args.rho)
    result = {"model": args.model, "bench": bench, "n_problems": len(problems), "k": args.k,
              "accuracy": accuracy, "stats": stats, "tokens": table}
    for name, what in (("high", "forking (top rho)"), ("low", "following (bottom rho)")):
        print(f"{what}: " + ", ".join(f"{t!r} x{c} (H={h:.2f})" for t, c, h in table[name]))
    if args.sweep:
        result["sweep"] = bucket_temperature_sweep(
            model, tok, problems, threshold=stats["p80"], k=args.k, template=template,
            max_new_tokens=max_new, seed=args.seed)
    if args.compare:
        del model  # free the memory before loading the second model
        model_b, tok_b = load_policy(args.compare, args.device, args.dtype)
        if len(tok_b) != len(tok):
            raise SystemExit(f"--compare {args.compare}: its tokenizer differs from the first "
                             "model's")
        entropy_b, _, _ = response_entropy(model_b, rollouts, tok.pad_token_id)
        result["overlap"] = topk_overlap(entropy, entropy_b, mask, args.rho)
    hidden = ("histogram", "stats", "tokens")
    shown = {key: v for key, v in {**stats, **result}.items() if key not in hidden}
    print(json.dumps(shown))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "stats.json").write_text(json.dumps(result, indent=1))
    plot_histogram(stats, out / "entropy_hist.png")
    return result


if __name__ == "__main__":
    main()
