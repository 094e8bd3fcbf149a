"""The long-chain task (issue 24's Plan B): long responses of near-certain filler around a few real
decisions, the regime where the paper places the advantage of training only the forking tokens.

Problem "Chain 17+25-8+3+40." (3-4 signed terms; every operand and running value in [0, 99]). A
solution restates the whole state before every step, then takes one term:

    now 17, left +25 -8 +3 +40
    take -8: 17-8=9
    now 9, left +25 +3 +40
    ...
    now 80, left none
    \\boxed{80}

Only one thing per step is free: WHICH term to take next (any order that keeps every running value
in [0, 99] is right; demonstrations pick uniformly among the terms that still allow a valid finish).
Everything else is determined by what came before: the restated state is a copy of the line above
minus the term taken, the take line copies the value and the term, and the result is arithmetic.
So most of the 80-150 response tokens are near-certain filler. The reward checks the boxed integer
(verify.reward). Splits by a hash of the problem string, as in arithmetic.py: 8/10 train, 1/10
validation, 1/10 test.
"""
import hashlib
import random
import re

from nano_forkrl.tasks.arithmetic import can_finish, draw_problems, split_of  # the same hash split

TERMS = (3, 4)  # signed terms per problem: 3-4 give responses of about 80-150 tokens


def make_problem(rng):
    """One random problem {"id", "problem", "answer", "solution"}; every running value stays in
    [0, 99]. The solution takes the terms left to right (the tokenizer learns its merges from
    it)."""
    expr = str(value := rng.randint(0, 99))
    for _ in range(rng.randint(*TERMS)):
        op = rng.choice("+-") if 0 < value < 99 else ("+" if value == 0 else "-")
        b = rng.randint(1, 99 - value) if op == "+" else rng.randint(1, value)
        value, expr = value + b if op == "+" else value - b, f"{expr}{op}{b}"
    problem = f"Chain {expr}."
    pid = "chain-" + hashlib.sha256(problem.encode()).hexdigest()[:12]
    return {"id": pid, "problem": problem, "answer": str(value), "solution": solution(problem)}


def parse_problem(problem):
    """"Chain 17+25-8." -> (17, [25, -8]): the first value and the signed terms."""
    first = int(re.match(r"Chain (\d+)", problem).group(1))
    terms = re.findall(r"([+-])(\d+)", problem)
    return first, [int(b) if op == "+" else -int(b) for op, b in terms]


def chain_problems(split, n, seed=0):
    """n distinct problems of one split as {"id", "problem", "answer"} (the shape of
    data.load_problems)."""
    return draw_problems(make_problem, split, n, random.Random(f"chain-{split}-{seed}"))


def _signed(d):
    return f"+{d}" if d > 0 else str(d)


def solution(problem, rng=None):
    """A correct solution: the state line, then the take line, for every step. Without rng the
    terms are taken left to right; with rng each step takes a term drawn uniformly from those after
    which the remaining terms can still finish inside [0, 99]."""
    value, terms = parse_problem(problem)
    lines = []
    while terms:
        lines.append(f"now {value}, left {' '.join(_signed(d) for d in terms)}")
        ok = [i for i in range(len(terms)) if 0 <= value + terms[i] <= 99
              and can_finish(value + terms[i], terms[:i] + terms[i + 1:])]
        d = terms.pop(rng.choice(ok) if rng is not None else 0)
        lines.append(f"take {_signed(d)}: {value}{_signed(d)}={value + d}")
        value += d
    return "\n".join(lines + [f"now {value}, left none", f"\\boxed{{{value}}}"])


def first_mistake(problem, text):
    """Where a response first goes wrong: "state" (a restated line that is not the state), "take"
    (a term that is not left: a wrong decision), "result" (wrong arithmetic or out of [0, 99]),
    "boxed" (the box differs from the last value or comes early), "other" (not the format); None
    for a correct solution."""
    value, left = parse_problem(problem)
    lines = text.split("\n") if text else [""]
    for i, line in enumerate(lines[:-1]):
        if i % 2 == 0:
            if line != f"now {value}, left {' '.join(_signed(d) for d in left) or 'none'}":
                return "state"
            continue
        m = re.fullmatch(r"take ([+-]\d+): (\d+)([+-]\d+)=(\d+)", line)
        if not m or m[1] != m[3] or int(m[2]) != value:
            return "other"
        if int(m[1]) not in left:
            return "take"
        left.remove(int(m[1]))
        if int(m[4]) != value + int(m[1]) or not 0 <= int(m[4]) <= 99:
            return "result"
        value = int(m[4])
    box = re.fullmatch(r"\\boxed\{(\d+)\}(<\|im_end\|>)?", lines[-1])
    if not box or left or len(lines) % 2:
        return "boxed" if box else "other"
    return None if int(box[1]) == value else "boxed"
