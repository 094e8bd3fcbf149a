"""Where the tiny warm start's wrong responses first go wrong, with "operand" split in two.

`arithmetic.first_mistake` calls a line whose term is not left an "operand" mistake. That covers
two different errors: a wrong CHOICE (a term of the problem that is already used, or taken with the
wrong sign) and a MISCOPY (a number that is no term of the problem at all). Which one dominates
says whether the operand tokens' uncertainty is about deciding or about copying digits.

CLI: python -m nano_forkrl.study.mistakes --n 200 --k 2  (validation problems, sampler seed 0, as
in tutorials/09's first cell)
"""
import argparse
import json
import re
from collections import Counter

from nano_forkrl.engines.torch_sampler import TorchSampler
from nano_forkrl.run.setup.policy import load_policy
from nano_forkrl.tasks.arithmetic import first_mistake, parse_problem, tiny_problems
from nano_forkrl.tasks.data import format_prompt

LINE = re.compile(r"(\d+)([+-])(\d+)=(\d+)")


def operand_kind(problem, text):
    """For a response whose first mistake is "operand": "miscopy" when the offending line's number
    is no term of the problem, "choice" when it is one (already used, or with the wrong sign)."""
    first, steps = parse_problem(problem)
    left = [b if op == "+" else -b for op, b in steps]
    for m in map(LINE.fullmatch, text.split("\n")):
        if m is None:  # past the computation lines: no operand went wrong
            break
        term = int(m[3]) if m[2] == "+" else -int(m[3])
        if term not in left:
            return "choice" if int(m[3]) in {b for _, b in steps} else "miscopy"
        left.remove(term)
    raise ValueError(f"no operand mistake in {text!r}")


def classify(problem, text):
    """first_mistake, with "operand" replaced by "operand: miscopy" or "operand: choice"."""
    where = first_mistake(problem, text)
    return f"operand: {operand_kind(problem, text)}" if where == "operand" else where


def count(problems, rollouts):
    """{first mistake (None: right): number of responses}, most frequent first."""
    counts = Counter(classify(problems[r.prompt_index]["problem"], r.text) for r in rollouts)
    return {str(where): n for where, n in counts.most_common()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny", help="'tiny' (the warm start) or a model folder")
    ap.add_argument("--seed", type=int, default=0, help="the warm start's seed (--model tiny)")
    ap.add_argument("--n", type=int, default=200, help="validation problems")
    ap.add_argument("--k", type=int, default=2, help="responses per problem")
    args = ap.parse_args(argv)
    model, tok = load_policy(args.model, "cpu", seed=args.seed)
    problems = tiny_problems("validation", args.n)
    sampler = TorchSampler(model.eval(), tok, max_new_tokens=48, seed=0)
    rollouts = sampler.generate([format_prompt(p["problem"], "plain", tok) for p in problems],
                                n=args.k)
    result = count(problems, rollouts)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
