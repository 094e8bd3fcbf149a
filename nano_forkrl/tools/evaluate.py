"""`python -m nano_forkrl.tools.evaluate`: avg@k and pass@k of a model or checkpoint
(run/steps/evaluation.py).

For each problem we draw k samples and count c correct ones (reward from `verify.reward`):

    avg@k  = mean over problems of c / k                      (the paper's "avg@16" metric)
    pass@k = mean over problems of 1 - C(n - c, k) / C(n, k)   (unbiased
                                                               estimator, Chen et al. 2021;
                                                                with n = k samples it is 1 when c >
                                                                0)

The same sampler as training is used (temperature, top-p, max tokens), with a fixed seed so that
scores at different training steps are comparable.

CLI:  python -m nano_forkrl.tools.evaluate --model PATH --bench aime24 --k 8
"""
import argparse
import json
import math

import torch
import transformers

from nano_forkrl.engines.factory import CHOICES as SAMPLERS
from nano_forkrl.run.setup.bounds import check_lengths, prompt_limit
from nano_forkrl.run.steps.evaluation import cli_defaults, evaluate
from nano_forkrl.tasks.data import TEMPLATES, load_split
from nano_forkrl.utils.errors import cli
from nano_forkrl.verify import VERIFIERS


def parse_args(argv=None):
    """The CLI's arguments; out-of-range values are an argparse error (one usage line, exit status
    2)."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny",
                    help="hub name, local folder (e.g. a run's checkpoint/), or 'tiny'")
    ap.add_argument("--bench", default=None,
                    help="aime24 | aime25 | amc23 | math500 | gsm8k | a JSONL/parquet path | "
                         "'tiny' (default: 'tiny' for the tiny model, else math500)")
    ap.add_argument("--k", type=int, default=8,
                    help="samples per problem: avg@k and pass@k (default: 8)")
    ap.add_argument("--n", type=int, default=None, help="only the first N problems")
    ap.add_argument("--template", default=None, choices=sorted(TEMPLATES),
                    help="prompt template (default: the checkpoint's training template, else "
                         "boxed)")
    ap.add_argument("--temperature", type=float, default=1.0,
                    help="sampling temperature (default: 1.0)")
    ap.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (default: 1.0)")
    ap.add_argument("--max-new-tokens", type=int, default=None,
                    help="response budget (default: the training config's, else 48 for tiny, "
                         "4096 otherwise)")
    ap.add_argument("--max-prompt-tokens", type=int, default=0,
                    help="refuse problems with longer prompts (0: the model's context minus "
                         "--max-new-tokens)")
    ap.add_argument("--sampler", default="auto", choices=SAMPLERS,
                    help="rollout engine (default: auto = vLLM on CUDA when installed, else torch)")
    ap.add_argument("--verifier", default="ours", choices=VERIFIERS,
                    help="answer checker: ours (verify.py) or math-verify (optional package; "
                         "default: ours)")
    ap.add_argument("--device", default="auto",
                    help="auto (CUDA when available), cpu, cuda (default: auto)")
    ap.add_argument("--seed", type=int, default=1234, help="the sampling seed (default: 1234)")
    ap.add_argument("--out", default=None, help="write the result as JSON here")
    ap.add_argument("--debug", action="store_true", help="full tracebacks (or NANO_FORKRL_DEBUG=1)")
    args = ap.parse_args(argv)
    checks = [
        (args.k >= 1, "--k must be >= 1"),
        (args.n is None or args.n >= 1, "--n must be >= 1"),
        (math.isfinite(args.temperature) and 0 <= args.temperature <= 10, "--temperature must be "
                                                                          "in [0, 10]"),
        (0 < args.top_p <= 1, "--top-p must be in (0, 1]"),
        (args.max_new_tokens is None or args.max_new_tokens >= 1, "--max-new-tokens must be >= 1"),
        (args.max_prompt_tokens >= 0, "--max-prompt-tokens must be >= 0"),
    ]
    for ok, message in checks:
        if not ok:
            ap.error(message)
    return args


def main(argv=None):
    """The command line: prints the summary as JSON; one `error: ...` line for any failure
    (utils/errors.py)."""
    return cli(_main, argv)


def _main(argv):
    args = parse_args(argv)
    transformers.utils.logging.disable_progress_bar()  # one result, not a bar per weight load

    from nano_forkrl.engines.factory import close_sampler, make_sampler
    from nano_forkrl.run.setup.policy import load_policy

    bench, template, max_new = cli_defaults(args.model, args.bench, args.template,
                                            args.max_new_tokens, long=4096)
    model, tokenizer = load_policy(args.model, args.device)
    problems = load_split(bench, "test", limit=args.n)
    limit = prompt_limit(model, max_new, args.max_prompt_tokens)
    # before the sampler reserves memory for them
    check_lengths(problems, template, tokenizer, limit, what=f"--bench {bench}")
    sampler = make_sampler(args.sampler, model, tokenizer, max_new_tokens=max_new,
                           temperature=args.temperature, top_p=args.top_p, seed=args.seed)
    try:
        with torch.no_grad():
            result = evaluate(sampler, problems, k=args.k, template=template, tokenizer=tokenizer,
                              seed=args.seed, verifier=args.verifier)
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
