"""How good is the model: avg@k and pass@k with the training sampler and verifier.

For each problem we draw k samples and count c correct ones (reward from `verify.reward`):

    avg@k  = mean over problems of c / k                      (the paper's "avg@16" metric)
    pass@k = mean over problems of 1 - C(n - c, k) / C(n, k)   (unbiased estimator, Chen et al. 2021;
                                                                with n = k samples it is 1 when c > 0)

The same sampler as training is used (temperature, top-p, max tokens), with a fixed seed so that scores at
different training steps are comparable.

CLI:  python -m nano_forkrl.tools.evaluate --model PATH --bench aime24 --k 8
"""
import argparse
import json
import math
from math import comb
from pathlib import Path

import torch
import transformers

from nano_forkrl.engines.factory import CHOICES as SAMPLERS
from nano_forkrl.run.bounds import check_lengths, prompt_limit
from nano_forkrl.run.checkpoint import load_state
from nano_forkrl.run.data import TEMPLATES, format_prompt, load_split
from nano_forkrl.run.errors import cli
from nano_forkrl.verify import VERIFIERS, reward


def pass_at_k(n, c, k):
    """Unbiased pass@k from n samples with c correct (needs n >= k)."""
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def evaluate(sampler, problems, *, k=1, template="plain", tokenizer=None, seed=1234, max_new_tokens=None,
             verifier="ours"):
    """avg@k and pass@k of `sampler` on `problems`, scored by `verifier` (verify.VERIFIERS). Returns
    {"avg@k", "pass@k", "n_problems", "k", "mean_length", "per_problem": [c_i, ...]}."""
    state = sampler.rng_state()
    sampler.reseed(seed)  # fixed evaluation noise; training's RNG stream is restored below
    try:
        prompts = [format_prompt(p["problem"], template, tokenizer) for p in problems]
        rollouts = sampler.generate(prompts, n=k, max_new_tokens=max_new_tokens)
    finally:
        sampler.set_rng_state(state)
    correct = [0] * len(problems)
    for r in rollouts:
        correct[r.prompt_index] += reward(r.text, problems[r.prompt_index]["answer"], verifier=verifier) > 0
    return summarize(correct, k, sum(len(r.response_ids) for r in rollouts))


def summarize(correct, k, total_length):
    """evaluate's result from the correct counts per problem (k samples each) and the summed response length
    (also how a distributed evaluation combines its shares, run/distributed.py)."""
    n = max(len(correct), 1)
    return {
        f"avg@{k}": sum(c / k for c in correct) / n,
        f"pass@{k}": sum(pass_at_k(k, c, k) for c in correct) / n,
        "n_problems": len(correct), "k": k,
        "mean_length": total_length / max(len(correct) * k, 1),
        "per_problem": correct,
    }


def cli_defaults(model, bench, template, max_new_tokens, long):
    """(bench, template, max_new_tokens), each as given, else from what the model is. A checkpoint of ours knows its
    training config (trainer_state.pt, read lazily with mmap); the tiny model, by name or trained on the tiny task,
    gets the tiny held-out set, the plain template and the preset's 48 tokens; any other model math500, the boxed
    template and `long` tokens."""
    state = Path(str(model)) / "trainer_state.pt"
    trained = load_state(state, mmap=True).get("config", {}) if state.exists() else {}  # never runs its code
    tiny = model == "tiny" or bench == "tiny" or trained.get("train_data") == "tiny"
    return (bench or ("tiny" if tiny else trained.get("eval_data") or "math500"),
            template or trained.get("template") or ("plain" if tiny else "boxed"),
            max_new_tokens or trained.get("max_new_tokens") or (48 if tiny else long))


def parse_args(argv=None):
    """The CLI's arguments; out-of-range values are an argparse error (one usage line, exit status 2)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny", help="hub name, local folder (e.g. a run's checkpoint/), or 'tiny'")
    ap.add_argument("--bench", default=None,
                    help="aime24 | aime25 | amc23 | math500 | gsm8k | a JSONL/parquet path | 'tiny' (default: "
                         "'tiny' for the tiny model, else math500)")
    ap.add_argument("--k", type=int, default=8, help="samples per problem: avg@k and pass@k (default: 8)")
    ap.add_argument("--n", type=int, default=None, help="only the first N problems")
    ap.add_argument("--template", default=None, choices=sorted(TEMPLATES),
                    help="prompt template (default: the checkpoint's training template, else boxed)")
    ap.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default: 1.0)")
    ap.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (default: 1.0)")
    ap.add_argument("--max-new-tokens", type=int, default=None,
                    help="response budget (default: the training config's, else 48 for tiny, 4096 otherwise)")
    ap.add_argument("--max-prompt-tokens", type=int, default=0,
                    help="refuse problems with longer prompts (0: the model's context minus "
                         "--max-new-tokens)")
    ap.add_argument("--sampler", default="auto", choices=SAMPLERS,
                    help="rollout engine (default: auto = vLLM on CUDA when installed, else torch)")
    ap.add_argument("--verifier", default="ours", choices=VERIFIERS,
                    help="answer checker: ours (verify.py) or math-verify (optional package; default: ours)")
    ap.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda (default: auto)")
    ap.add_argument("--seed", type=int, default=1234, help="the sampling seed (default: 1234)")
    ap.add_argument("--out", default=None, help="write the result as JSON here")
    ap.add_argument("--debug", action="store_true", help="full tracebacks (or NANO_FORKRL_DEBUG=1)")
    args = ap.parse_args(argv)
    checks = [
        (args.k >= 1, "--k must be >= 1"),
        (args.n is None or args.n >= 1, "--n must be >= 1"),
        (math.isfinite(args.temperature) and 0 <= args.temperature <= 10, "--temperature must be in [0, 10]"),
        (0 < args.top_p <= 1, "--top-p must be in (0, 1]"),
        (args.max_new_tokens is None or args.max_new_tokens >= 1, "--max-new-tokens must be >= 1"),
        (args.max_prompt_tokens >= 0, "--max-prompt-tokens must be >= 0"),
    ]
    for ok, message in checks:
        if not ok:
            ap.error(message)
    return args


def main(argv=None):
    """The command line: prints the summary as JSON; one `error: ...` line for any failure (run/errors.py)."""
    return cli(_main, argv)


def _main(argv):
    args = parse_args(argv)
    transformers.utils.logging.disable_progress_bar()  # one result, not a bar per weight load

    from nano_forkrl.engines.factory import close_sampler, make_sampler
    from nano_forkrl.run.policy import load_policy

    bench, template, max_new = cli_defaults(args.model, args.bench, args.template, args.max_new_tokens, long=4096)
    model, tokenizer = load_policy(args.model, args.device)
    problems = load_split(bench, "test", limit=args.n)
    limit = prompt_limit(model, max_new, args.max_prompt_tokens)
    # before the sampler reserves memory for them
    check_lengths(problems, template, tokenizer, limit, what=f"--bench {bench}")
    sampler = make_sampler(args.sampler, model, tokenizer, max_new_tokens=max_new,
                           temperature=args.temperature, top_p=args.top_p, seed=args.seed)
    try:
        with torch.no_grad():
            result = evaluate(sampler, problems, k=args.k, template=template, tokenizer=tokenizer, seed=args.seed,
                              verifier=args.verifier)
    finally:
        close_sampler(sampler)  # a vLLM engine's memory
    summary = {key: v for key, v in result.items() if key != "per_problem"}
    print(json.dumps({"model": args.model, "bench": bench, **summary}, indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"model": args.model, "bench": bench, **result}, f, indent=1)
    return result


if __name__ == "__main__":
    main()
