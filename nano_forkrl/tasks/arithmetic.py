"""The tiny preset's task: step-by-step arithmetic in a free order of steps, its three
splits, token classes.

Problem "Compute 17+25-8." (2-4 operands, + and -, every operand and running value in [0, 99]); the
reward checks the boxed integer. A solution applies the signed terms one per line, in ANY order that
keeps every running value in [0, 99]: "17-8=9\\n9+25=34\\n\\boxed{34}" is as right as
"17+25=42\\n42-8=34\\n\\boxed{34}". So each line starts with a genuine decision (which remaining
term to apply next: a wrong pick can leave [0, 99] or lose a term), followed by a copy, a
computation and more copying. Demonstrations are always CORRECT; a free demonstration picks
uniformly among the terms that still allow a valid finish.

Splits by a hash of the problem string: 8/10 train, 1/10 validation, 1/10 test; a string is in
exactly one. `token_classes` names what each response token is (decision, copy, result digit,
format), for the tables of where the high-entropy tokens fall.
"""
import hashlib
import random
import re
from itertools import permutations

SPLITS = ("train", "validation", "test")
CLASSES = ("running value", "operator", "operand", "=", "result digit", "newline",
           "boxed answer digit", "\\boxed{ }", "<|im_end|>", "other")


def make_problem(rng):
    """One random problem {"id", "problem", "answer", "solution"}; every running value stays in [0,
    99]. The solution is the left-to-right one (the tokenizer learns its merges from these)."""
    expr = str(value := rng.randint(0, 99))
    for _ in range(rng.randint(1, 3)):
        op = rng.choice("+-") if 0 < value < 99 else ("+" if value == 0 else "-")
        b = rng.randint(1, 99 - value) if op == "+" else rng.randint(1, value)
        value, expr = value + b if op == "+" else value - b, f"{expr}{op}{b}"
    problem = f"Compute {expr}."
    pid = "tiny-" + hashlib.sha256(problem.encode()).hexdigest()[:12]
    return {"id": pid, "problem": problem, "answer": str(value), "solution": solution(problem)}


def parse_problem(problem):
    """"Compute 17+25-8." -> (17, [("+", 25), ("-", 8)])."""
    first = int(re.match(r"Compute (\d+)", problem).group(1))
    return first, [(op, int(b)) for op, b in re.findall(r"([+-])(\d+)", problem)]


def split_of(problem):
    """"test" (hash % 10 == 0), "validation" (== 1) or "train": a problem string is in
    exactly one split."""
    bucket = int(hashlib.sha256(problem.encode()).hexdigest(), 16) % 10
    return "test" if bucket == 0 else "validation" if bucket == 1 else "train"


def tiny_problems(split, n, seed=0):
    """n distinct problems of one split as {"id", "problem", "answer"} (the shape of
    data.load_problems)."""
    return draw_problems(make_problem, split, n, random.Random(f"{split}-{seed}"))


def draw_problems(make, split, n, rng):
    """n distinct problems of `split`, drawn by make(rng) until enough fall in it (split_of): the
    draw every embedded task shares (chain.py too)."""
    assert split in SPLITS, split
    seen, out = set(), []
    while len(out) < n:
        p = make(rng)
        if split_of(p["problem"]) == split and p["problem"] not in seen:
            seen.add(p["problem"])
            out.append({k: p[k] for k in ("id", "problem", "answer")})
    return out


def can_finish(value, terms):
    """True if some order of `terms` keeps every running value from `value` on in [0, 99]."""
    for order in permutations(terms):
        v, ok = value, True
        for d in order:
            v += d
            ok = ok and 0 <= v <= 99
        if ok:
            return True
    return False


def solution(problem, rng=None):
    """A correct step-by-step solution: left to right without rng; with rng, each step applies a
    term drawn uniformly from those after which the remaining terms can still
    finish inside [0, 99]."""
    value, steps = parse_problem(problem)
    terms, lines = [b if op == "+" else -b for op, b in steps], []
    while terms:
        ok = [i for i in range(len(terms))
              if can_finish(value + terms[i], terms[:i] + terms[i + 1:])
              and 0 <= value + terms[i] <= 99]
        i = rng.choice(ok) if rng is not None else 0
        d = terms.pop(i)
        lines.append(f"{value}{'+' if d > 0 else '-'}{abs(d)}={value + d}")
        value += d
    return "\n".join(lines) + f"\n\\boxed{{{value}}}"


def token_classes(pieces):
    """The class (one of CLASSES) of each decoded response token: "17", "-", "8", "=", "9", "\\n",
    ... A line "a-b=c" is: running value (copied from the line above), operator and operand (the
    decision: which term next), "=", result digits (the computation), newline; then "\\boxed{",
    answer digits, "}", eos."""
    out, state = [], "start"  # start | value | operand | result | boxed
    for p in pieces:
        if p == "<|im_end|>":
            out.append("<|im_end|>")
        elif p.isdigit():
            cls = {"start": "running value", "value": "running value", "operand": "operand",
                   "result": "result digit", "boxed": "boxed answer digit"}.get(state, "other")
            state = "value" if state == "start" else state
            out.append(cls)
        elif p in "+-" and state == "value":
            out.append("operator")
            state = "operand"
        elif p == "=" and state == "operand":
            out.append("=")
            state = "result"
        elif p == "\n":
            out.append("newline")
            state = "start"
        elif p.startswith("\\boxed") or p in ("{", "}"):
            out.append("\\boxed{ }")
            state = "boxed" if p != "}" else "end"
        else:
            out.append("other")
    return out


def first_mistake(problem, text):
    """Where a response first goes wrong: "running value" (not the value of the line above),
    "operand" (a term that is not left: a wrong decision), "result digit" (wrong arithmetic, or a
    value out of [0, 99]), "missing term" (boxed before every term was used), "boxed answer digit"
    (the box differs from the last value), "other" (not the solution format); None for a
    correct solution."""
    value, steps = parse_problem(problem)
    left = [b if op == "+" else -b for op, b in steps]
    *lines, last = text.split("\n") if text else [""]
    for line in lines:
        m = re.fullmatch(r"(\d+)([+-])(\d+)=(\d+)", line)
        if not m:
            return "other"
        a, op, b, c = int(m[1]), m[2], int(m[3]), int(m[4])
        d = b if op == "+" else -b
        if a != value:
            return "running value"
        if d not in left:
            return "operand"
        left.remove(d)
        if c != value + d or not 0 <= c <= 99:
            return "result digit"
        value = c
    box = re.fullmatch(r"\\boxed\{(\d+)\}(<\|im_end\|>)?", last)
    if not box:
        return "other"
    if left:
        return "missing term"
    return "boxed answer digit" if int(box[1]) != value else None
