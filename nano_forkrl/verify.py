"""Is the model's final answer right? The verifiable reward of RLVR (DAPO: correct=+1, wrong=-1; CS336: 1, 0):

    r(response, gold) = correct if is_equivalent(extract_answer(response), gold) else wrong

extract.py finds the committed answer; this module decides whether it equals gold. A verifier that says "equal"
too easily is a reward-hacking hole: every rule errs towards "not equal". It compares
  1. canonical strings (latex.normalize; "%" is dropped, so 10\\% == 10 != 0.1), then
  2. structures (latex.structure): tuples, intervals, matrices in order and with the same brackets; sets,
     comma lists ("1, 2" == "2,1") and unions of intervals as multisets of the same length, then
  3. elements: integers exactly; with a decimal or an irrational up to a relative error of 1e-6 (0.333 != 1/3,
     0.3333333 == 1/3); else with sympy: expand(a-b) == 0 or simplify(a-b) == 0. Equations and inequalities
     need the same relations in the same order ("5 >= x" reads "x <= 5") and equal sides: y = 2x is not 2x = y.
Time bound: cheap guards first (answers over MAX_CHARS are rejected; symbolic.to_sympy refuses numbers of over
1e5 digits before sympy evaluates them), then the sympy part under a hard limit: SIGALRM (setitimer) in the main
thread, which interrupts Python code; in other threads (signals are main-thread only) a forked child process
(spawn off Linux) that is killed at the deadline. Timeouts and errors count as "not equal": nothing raises.
"""
import contextlib
import multiprocessing
import re
import signal
import sys
import threading
from fractions import Fraction

import sympy

from nano_forkrl.verifier.extract import extract_answer  # which part of a response is the answer (still importable from here)
from nano_forkrl.verifier.latex import normalize, structure
from nano_forkrl.verifier.symbolic import to_sympy

MAX_CHARS = 1000  # a longer "answer" is not an answer
REL_TOL = Fraction(1, 10**6)
_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)")
_WORD = re.compile(r"[a-z]{2,}")  # "east": text, not the product e*a*s*t (which would equal "seat")
_RELATION = re.compile(r"(<=|>=|≠|=|<|>)")  # latex.normalize wrote \leq as <=, \ne as ≠


# ---------------------------------------------------------------- structured answers
def _equal(a, b):
    """Equality of two normalized answers (no time bound here: see _bounded)."""
    (kind, brackets, xs), (kind_b, brackets_b, ys) = structure(a), structure(b)
    if a == b or (kind, brackets, len(xs)) != (kind_b, brackets_b, len(ys)):
        return a == b
    if kind == "scalar":
        return _scalar_equal(xs[0], ys[0])
    if kind == "tuple":  # also intervals and matrices (brackets holds the shape)
        return all(map(_equal, xs, ys))
    unused = list(ys)  # set / list / union: every element of xs equals a different element of ys
    for x in xs:
        hit = next((k for k, y in enumerate(unused) if _equal(x, y)), None)
        if hit is None:
            return False
        unused.pop(hit)
    return True


# ---------------------------------------------------------------- elements: numeric, then symbolic
def _close(x, y):
    """|x - y| <= 1e-6 max(|x|, |y|), for Fractions (exact, no overflow) or sympy Floats (no overflow either)."""
    return abs(x - y) <= REL_TOL * max(abs(x), abs(y))


def _scalar_equal(a, b):
    if a == b or _WORD.fullmatch(a) or _WORD.fullmatch(b):
        return a == b  # words compare as text (normalize lower-cased them)
    sides_a, sides_b = _oriented(_RELATION.split(a)), _oriented(_RELATION.split(b))
    if len(sides_a) > 1 or len(sides_b) > 1:  # equations and inequalities: same relations, equal sides in order
        same = len(sides_a) == len(sides_b) and sides_a[1::2] == sides_b[1::2] and "" not in sides_a + sides_b
        return same and all(map(_scalar_equal, sides_a[::2], sides_b[::2]))
    if _NUMBER.fullmatch(a) and _NUMBER.fullmatch(b):
        x, y = Fraction(a), Fraction(b)
        return x == y if x.denominator == y.denominator == 1 else _close(x, y)  # integers: exactly
    return _sympy_equal(to_sympy(a), to_sympy(b))


def _oriented(parts):
    """[sides and relations] of "a > b > c" read as "c < b < a", so that only <, <=, =, ≠ need comparing."""
    if set(parts[1::2]) & {">", ">="} and not set(parts[1::2]) & {"<", "<="}:
        return [{">": "<", ">=": "<="}.get(p, p) if k % 2 else p for k, p in enumerate(parts)][::-1]
    return parts


def _sympy_equal(x, y):
    if x is None or y is None or x.has(sympy.nan, sympy.zoo) or y.has(sympy.nan, sympy.zoo):
        return False  # unparseable, too big, or 1/0
    if not (x - y).free_symbols:  # constants: exact for rationals and infinities, else 1e-6 relative
        if (x.is_Rational and y.is_Rational) or not (x.is_finite and y.is_finite):
            return x == y
        return bool(_close(sympy.N(x, 30), sympy.N(y, 30)))
    return sympy.expand(x - y) == 0 or sympy.simplify(x - y) == 0


# ---------------------------------------------------------------- time bound
class _Timeout(BaseException):  # not an Exception: sympy's own "except Exception" must not swallow it
    @staticmethod
    def handler(signum, frame):
        raise _Timeout


def _with_alarm(fn, args, timeout):
    """Main thread: SIGALRM stops fn after timeout seconds (it interrupts Python code, not one long C call). The
    alarm repeats every 50 ms: one raised inside a __del__ or a gc callback is swallowed by Python, the next is not."""
    old_handler = signal.signal(signal.SIGALRM, _Timeout.handler)  # ValueError outside the main interpreter
    try:
        signal.setitimer(signal.ITIMER_REAL, max(timeout, 1e-3), 0.05)  # 0 would mean "no alarm"
        return fn(*args)
    except (_Timeout, Exception):
        return False
    finally:
        while True:  # an alarm may still land before the timer is off: retry until it is
            try:
                signal.setitimer(signal.ITIMER_REAL, 0)
                break
            except _Timeout:
                continue
        signal.signal(signal.SIGALRM, old_handler)


def _child(conn, fn, args):
    try:
        conn.send(fn(*args))
    except Exception:
        conn.send(False)


def _in_child(fn, args, timeout):
    """Other threads (signals are main-thread only): fn runs in a child process that is killed at the deadline."""
    ctx = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")  # fork: ~10 ms, no imports
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, fn, args), daemon=True)
    proc.start()  # raises in a daemonic process (no children allowed there): counts as "not equal"
    send.close()  # so that a dead child reads as end-of-file at once
    try:
        return receive.poll(timeout) and receive.recv()
    finally:
        proc.kill()
        proc.join()
        receive.close()


def _bounded(fn, args, timeout):
    """fn(*args) if it finishes within timeout seconds, else False. Never raises."""
    try:
        main = threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")
        if main and signal.getitimer(signal.ITIMER_REAL)[0] == 0:  # and the caller has no alarm of its own
            with contextlib.suppress(ValueError):  # signal.signal refuses outside the main interpreter
                return _with_alarm(fn, args, timeout)
        return _in_child(fn, args, timeout)
    except (_Timeout, Exception):
        return False


# ---------------------------------------------------------------- reward
def is_equivalent(pred, gold, *, timeout=1.0):
    """True iff the answer strings pred and gold mean the same mathematical object (within timeout seconds)."""
    if not (isinstance(pred, str) and isinstance(gold, str)) or max(len(pred), len(gold)) > MAX_CHARS:
        return False
    a, b = normalize(pred), normalize(gold)  # regex work only
    if a == b or (_NUMBER.fullmatch(a) and _NUMBER.fullmatch(b)):  # the common case needs neither sympy nor a timer
        return bool(a) and _scalar_equal(a, b)
    return bool(a and b and _bounded(_equal, (a, b), timeout))


def reward(response, gold, *, correct=1.0, wrong=0.0, timeout=1.0):
    """correct if the response's final answer equals gold, else wrong (DAPO: correct=1.0, wrong=-1.0)."""
    pred = extract_answer(response)
    return correct if pred is not None and is_equivalent(pred, gold, timeout=timeout) else wrong


def r1_zero_reward_fn(response, ground_truth, fast=True):
    """CS336 (spring 2025) name, signature and rules, for the R1-zero prompt ("... </think> <answer> ... </answer>").
    Format: the response contains "</think> <answer>" and "</answer>"; without it every reward is 0 (a bare
    \\boxed{} answer too). With it: format 1, and answer = reward = 1 if the tagged answer (its last \\boxed{} if
    any) is right. ground_truth: a string, a number or a list of accepted answers. `fast`: accepted, unused
    (this verifier has one mode). The training loop uses `reward`, which takes the answer in any format."""
    if not (isinstance(response, str) and "</think> <answer>" in response and "</answer>" in response):
        return {"format_reward": 0.0, "answer_reward": 0.0, "reward": 0.0}
    golds = ground_truth if isinstance(ground_truth, (list, tuple)) else [ground_truth]
    pred = extract_answer(response)
    right = pred is not None and any(is_equivalent(pred, str(g) if isinstance(g, (int, float)) else g) for g in golds)
    return {"format_reward": 1.0, "answer_reward": float(right), "reward": float(right)}
