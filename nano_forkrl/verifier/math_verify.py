"""Optional second verifier: Hugging Face's Math-Verify package (`pip install math-verify`), behind
the same contract as ours: time-bounded (timebound.py, also in threads and Pool workers), never
raises on garbage, 0 if absent; look-alike minus signs and invisible characters are read as ours
reads them (latex.plain).

is_equivalent_math_verify(pred, gold): Math-Verify's parse() of both strings (each also tried inside
  $...$, since its LaTeX extraction looks for math delimiters or a box) and verify(gold, pred).
reward_math_verify(response, gold): Math-Verify extracts the answer from the whole response itself
  (last box, "final answer is", last math), after our </think> rule: text inside an unclosed
  <think> is never an answer.
The import is lazy: nano_forkrl never needs the package; available() says whether it is installed.
Math-Verify's own timeouts use SIGALRM and are switched off (they cannot run outside the main
thread); ours bound the call.
"""
import importlib
import importlib.util
import logging

from nano_forkrl.verifier.extract import after_thinking
from nano_forkrl.verifier.latex import plain
from nano_forkrl.verifier.timebound import bounded

MAX_CHARS = 100_000  # a response; a gold answer is far shorter


def available():
    """Is the math-verify package installed?"""
    return importlib.util.find_spec("math_verify") is not None


def _parse(text):
    from math_verify import parse  # lazy: an optional dependency

    found = parse(text, parsing_timeout=None)
    return found or parse(f"${text}$", parsing_timeout=None)


def _verify(pred, gold):
    from math_verify import verify

    parsed_gold, parsed_pred = _parse(gold), _parse(pred)
    return bool(parsed_gold and parsed_pred
                and verify(parsed_gold, parsed_pred, timeout_seconds=None))


def is_equivalent_math_verify(pred, gold, *, timeout=1.0):
    """Math-Verify's verdict on two answer strings (False if not installed, on errors
    and past timeout)."""
    strings = isinstance(pred, str) and isinstance(gold, str)
    if not strings or max(len(pred), len(gold)) > MAX_CHARS:
        return False
    if not available():
        return False
    # look-alike minus signs and invisible characters, as ours reads them
    pred, gold = plain(pred), plain(gold)
    try:
        # here, not in each forked child (an import takes ~1 s)
        importlib.import_module("math_verify")
        # it warns "timeout is disabled" on every call; ours bounds the call
        logging.getLogger("math_verify").setLevel(logging.ERROR)
        return bool(bounded(_verify, (pred, gold), timeout))
    except RuntimeError:
        # no time bound is possible here (see timebound.py): say so rather than answer wrongly
        raise
    except Exception:
        return False


def reward_math_verify(response, gold, *, correct=1.0, wrong=0.0, timeout=1.0):
    """correct if Math-Verify finds the response's answer equal to gold, else wrong."""
    if not isinstance(response, str):
        return wrong
    response = after_thinking(response)
    if response is None:
        return wrong  # still thinking: never committed to an answer
    return correct if is_equivalent_math_verify(response, gold, timeout=timeout) else wrong
