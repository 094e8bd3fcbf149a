"""Is the model's final answer right? RLVR's verifiable reward (DAPO: +1/-1; CS336: 1/0):

    r(response, gold) = correct if is_equivalent(extract_answer(response), gold) else wrong

extract.py finds the committed answer; this module decides whether it equals gold. A verifier that
says "equal" too easily is a reward-hacking hole: every rule errs towards "not equal". It compares
  1. canonical strings (latex.normalize; "%" is dropped, so 10\\% == 10 != 0.1), then
  2. structures (latex.structure): tuples, intervals, matrices in order and with the same brackets;
     sets, comma lists ("1, 2" == "2,1") and unions of intervals as multisets of the same length;
     an inequality in one variable vs its interval; a labelled list ("AB=4, CD=5") vs its values;
  3. elements: exactly where the answer is exact (integers, fractions and decimals as rationals:
     123456.7 != 123456.8, 1.0000001 != 1); a decimal against an irrational or a non-terminating
     fraction up to a relative 1e-6 (0.333 != 1/3, 0.3333333 == 1/3); else with sympy: expand or
     simplify of the difference is 0 (exact also at huge magnitude: e^{100} != e^{100}+1). Undefined
     values (1/0, 0^0) equal nothing, not even themselves. Relations: relations.py (chains,
     equations up to a constant factor, orientation).
Both answers are read as plain text first (latex.plain: U+2212 and other look-alike minus signs are
"-"; bidi marks, zero-width characters and NUL are dropped). Time bound: each call of reward,
extract_answer and is_equivalent runs as a whole (extraction and normalization included) under a
hard limit (timebound.py, which also works in threads of multiprocessing.Pool workers); inside it,
cheap guards first (answers over MAX_CHARS are rejected; symbolic.to_sympy refuses numbers of over
1e5 digits before sympy evaluates them). Two plain numbers (the common case) compare as fractions at
once, with no normalisation (and no timer in is_equivalent). Timeouts and errors count as "not
equal": nothing raises. A call that cannot be bounded (no file descriptor or process left for the
timer's child) is judged wrong too, with a logged warning, and counted: pop_failures().
"""
import re
from fractions import Fraction

import sympy

from nano_forkrl.verifier.extract import committed_answer, extract_answer  # __all__
from nano_forkrl.verifier.latex import MAX_CHARS, normalize, plain, structure
from nano_forkrl.verifier.relations import (RELATION, as_interval, chain_value, same_up_to_factor,
                                            sides)
from nano_forkrl.verifier.symbolic import to_sympy
from nano_forkrl.verifier.timebound import bounded, pop_failures  # pop_failures: re-exported

__all__ = ["extract_answer", "is_equivalent", "pop_failures", "reward"]
REL_TOL = sympy.Rational(1, 10**6)
VERIFIERS = ("ours", "math-verify")
# one way to read each number (linear even where it fails)
_NUMBER = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)")
_DECIMAL = re.compile(r"-?(?:\d+\.\d+|\.\d+)")  # what may approximate an irrational
_WORD = re.compile(r"[a-z]{2,}")  # "east": text, not the product e*a*s*t (which would equal "seat")
# AB=4, x_1=..., \alpha=...
_LABELLED = re.compile(r"(?:\\?[A-Za-z]+(?:_\{?\w+\}?)?)=([^=<>≠≈]+)")


# ---------------------------------------------------------------- structured answers
def _defined(s):
    """False if any element of s is undefined (1/0, 0/0, 0^0): such an answer equals nothing."""
    kind, _, parts = structure(s)
    if kind != "scalar":
        return all(map(_defined, parts))
    values = [to_sympy(side) for side in RELATION.split(parts[0])[::2]]
    return not any(v is not None and v.has(sympy.nan, sympy.zoo) for v in values)


def _equal(a, b):
    """Equality of two normalized answers (no time bound here: see timebound.bounded)."""
    if a == b:
        return _defined(a)
    (kind, brackets, xs), (kind_b, brackets_b, ys) = structure(a), structure(b)
    if (kind, brackets, len(xs)) != (kind_b, brackets_b, len(ys)):
        return _across_kinds(a, (kind, xs), b, (kind_b, ys))
    if kind == "scalar":
        return _scalar_equal(xs[0], ys[0])
    if kind == "tuple":  # also intervals and matrices (brackets holds the shape)
        return all(map(_equal, xs, ys))
    if _labelled(xs) != _labelled(ys):  # "AB=4, CD=5" vs "4, 5": the values in the order written
        return _labelled(xs) and _values_equal(xs, ys) or _labelled(ys) and _values_equal(ys, xs)
    unused = list(ys)  # set / list / union: every element of xs equals a different element of ys
    for x in xs:
        hit = next((k for k, y in enumerate(unused) if _equal(x, y)), None)
        if hit is None:
            return False
        unused.pop(hit)
    return True


def _labelled(parts):
    return len(parts) > 1 and all(_LABELLED.fullmatch(p) for p in parts)


def _values_equal(labelled, values):
    return len(labelled) == len(values) and not any(RELATION.search(v) for v in values) and all(
        _equal(_LABELLED.fullmatch(p)[1], v) for p, v in zip(labelled, values))


def _across_kinds(a, kind_a, b, kind_b):
    """An inequality vs its interval ("0 < x < 1" vs "(0,1)"); a labelled list vs tuples."""
    for (s, (kind, xs)), other in (((a, kind_a), b), ((b, kind_b), a)):
        if kind == "scalar" and (interval := as_interval(xs[0])) is not None and interval != s:
            return _equal(interval, other)
        if kind == "set" and _labelled(xs) and structure(other)[0] != "scalar":
            return _values_equal(xs, structure(other)[2])
    return False


# ---------------------------------------------------------------- elements: numeric, then symbolic
def _scalar_equal(a, b):
    a, b = chain_value(a), chain_value(b)
    if a == b or _WORD.fullmatch(a) or _WORD.fullmatch(b):
        return a == b and _defined(a)  # words compare as text (normalize lower-cased them)
    sides_a, sides_b = sides(a), sides(b)
    # equations and inequalities: same relations, equal sides in order
    if len(sides_a) > 1 or len(sides_b) > 1:
        same = (len(sides_a) == len(sides_b) and sides_a[1::2] == sides_b[1::2]
                and "" not in sides_a + sides_b)
        equal_sides = same and all(map(_scalar_equal, sides_a[::2], sides_b[::2]))
        return equal_sides or same_up_to_factor(a, b)
    if _NUMBER.fullmatch(a) and _NUMBER.fullmatch(b):
        return Fraction(a) == Fraction(b)  # exact: 1234567 != 1234567.5
    return _sympy_equal(a, b)


def _terminating(x):
    """x is a rational with a finite decimal expansion (a decimal that differs is another number)"""
    if not x.is_Rational:
        return False
    q = int(x.q)
    for p in (2, 5):
        while q % p == 0:
            q //= p
    return q == 1


def _sympy_equal(a, b):
    """Two normalised element strings are equal as sympy expressions (to_sympy parses them).
    Unparseable, too big or undefined (nan, zoo) is never equal. Constants: exactly equal (after
    simplification); infinities only to themselves; a decimal equals an irrational or
    non-terminating constant within REL_TOL (relative), never a rational with a finite decimal
    expansion (0.333 is not 1/3). With symbols: the difference expands or simplifies to 0."""
    # BEGIN SOLUTION verify
    x, y = to_sympy(a), to_sympy(b)
    if x is None or y is None or x.has(sympy.nan, sympy.zoo) or y.has(sympy.nan, sympy.zoo):
        return False  # unparseable, too big, or undefined
    difference = x - y
    if not difference.free_symbols:  # constants
        if not (x.is_finite and y.is_finite):
            return x == y
        if difference == 0 or sympy.simplify(difference) == 0 or difference.equals(0) is True:
            return True
        approximate = ((_DECIMAL.fullmatch(a) and not _terminating(y))
                       or (_DECIMAL.fullmatch(b) and not _terminating(x)))
        return bool(approximate) and bool(abs(sympy.N(difference, 30))
                                          <= REL_TOL * abs(sympy.N(y, 30)))
    return sympy.expand(difference) == 0 or sympy.simplify(difference) == 0
    # END SOLUTION


# ---------------------------------------------------------------- reward
def _equivalent(pred, gold):
    """is_equivalent without its time bound."""
    # BEGIN SOLUTION verify
    strings = isinstance(pred, str) and isinstance(gold, str)
    if not strings or max(len(pred), len(gold)) > MAX_CHARS:
        return False
    if _NUMBER.fullmatch(pred) and _NUMBER.fullmatch(gold):  # is_equivalent's rule, no normalize
        return Fraction(pred) == Fraction(gold)
    a, b = normalize(plain(pred)), normalize(plain(gold))
    if _NUMBER.fullmatch(a) and _NUMBER.fullmatch(b):
        return Fraction(a) == Fraction(b)
    return bool(a and b and _equal(a, b))
    # END SOLUTION


def is_equivalent(pred, gold, *, timeout=1.0):
    """True iff strings pred and gold mean the same mathematical object (within timeout seconds).
    Anything else (None, a number) or an empty answer is False; it never raises."""
    # BEGIN SOLUTION verify
    numbers = all(isinstance(s, str) and len(s) <= MAX_CHARS and _NUMBER.fullmatch(s)
                  for s in (pred, gold))
    # the common case needs neither sympy nor a timer (bounded work: two short regex matches)
    if numbers:
        return Fraction(pred) == Fraction(gold)
    return bool(bounded(_equivalent, (pred, gold), timeout))
    # END SOLUTION


def _judge(response, gold):
    """reward without its time bound: does the response's committed answer equal gold?"""
    # BEGIN SOLUTION verify
    pred = committed_answer(response)
    return pred is not None and _equivalent(pred, gold)
    # END SOLUTION


def reward(response, gold, *, correct=1.0, wrong=0.0, timeout=1.0, verifier="ours"):
    """correct if the response's final answer equals gold, else wrong (DAPO: correct=1.0,
    wrong=-1.0); the whole call within timeout seconds. verifier="math-verify" judges with the
    optional Math-Verify package instead (verifier/math_verify.py)."""
    if verifier not in VERIFIERS:
        raise ValueError(f"verifier must be one of {VERIFIERS}, not {verifier!r}")
    if verifier == "math-verify":
        from nano_forkrl.verifier.math_verify import reward_math_verify  # lazy: optional package
        return reward_math_verify(response, gold, correct=correct, wrong=wrong, timeout=timeout)
    return correct if bounded(_judge, (response, gold), timeout) else wrong
