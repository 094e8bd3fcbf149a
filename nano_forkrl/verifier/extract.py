"""Which part of a response is its final answer? The first half of the verifiable reward (verify.py does the rest):

    r(response, gold) = correct if is_equivalent(extract_answer(response), gold) else wrong

Only a committed answer counts, so that the model cannot be rewarded for a number that merely appears somewhere:
  * only the text after the LAST </think> (an unclosed <think> means "still thinking": no answer at all);
  * inside the last <answer>...</answer> block if there is one (the CS336 / R1-zero format);
  * in it the last \\boxed{...} / \\fbox{...} / "\\boxed 7", else the last "#### 72" / "answer is ..." /
    "Answer: ..." marker, else (inside <answer> tags only) the whole tagged text.
Several boxes in a row, "\\boxed{-2} and \\boxed{1}" or "\\boxed{3}, \\boxed{5}", are one list "-2, 1": a list
is compared as a multiset of the same length (verify.py), so listing candidates never hedges a single answer.
Everything here is regex work and linear in the length of the response (responses are up to ~30k tokens).
"""
import re

from nano_forkrl.verifier.latex import closing

_BOXED = re.compile(r"\\(?:boxed|fbox)(?=[\s{])\s*")
_MARKER = re.compile(r"####|\banswer\s*(?:is\b|:)", re.IGNORECASE)
# what may stand between two boxes of one list: spaces, math delimiters, \quad, and at least one "," ";" "and"
# (not "or": "\boxed{1\frac12} or \boxed{\frac32}" are two forms of one answer)
_GAP = re.compile(r"(?:\s|\$|\\[()[\]]|\\quad\b|\\text\{\s*and\s*\}|[,;]|\band\b)*")
_LIST_WORD = re.compile(r"[,;]|\band\b")


def _box_run(text):
    """Contents of the last \\boxed{...} and of the boxes right before it that form one list with it; None if
    there is no box or the last one is unbalanced. "\\boxed 7" (no braces) is a single answer."""
    found = list(_BOXED.finditer(text))
    if not found:
        return None
    i = found[-1].end()
    if not text.startswith("{", i):
        return [re.match(r"[^\s$]*", text[i:])[0]]
    j = closing(text, i)
    if j < 0:
        return None
    run, start = [text[i + 1:j]], found[-1].start()
    for m in reversed(found[:-1]):  # walk back while the previous box ends in a list separator before this one
        i = m.end()
        j = closing(text, i) if text.startswith("{", i) else -1
        gap = text[j + 1:start]
        if not (0 <= j < start and _GAP.fullmatch(gap) and _LIST_WORD.search(gap)):
            break
        run.insert(0, text[i + 1:j])
        start = m.start()
    return run


def boxed_answer(text):
    """The last \\boxed{} of `text`, or the run of boxes that ends it joined as one list ("3, 5"); None if none."""
    boxes = [b.strip() for b in _box_run(text) or [] if b.strip()]
    return ", ".join(boxes) or None


def _after_marker(text):
    """What follows the last answer marker, to the end of its line or sentence, without $ and period."""
    found = list(_MARKER.finditer(text))
    rest = text[found[-1].end():].lstrip(" :*").split("\n")[0] if found else ""
    math = re.match(r"\s*\$+([^$]*)\$", rest)  # "The answer is $x = 5$, since ..."
    return math[1] if math else re.split(r"\.(?:\s|$)", rest)[0].strip(" *$")


def extract_answer(text):
    """The committed final answer in a response (a string), or None. See the module docstring for the rules."""
    if not isinstance(text, str):
        return None
    if "</think>" in text:
        text = text.rsplit("</think>", 1)[1]
    elif "<think>" in text:
        return None  # still thinking: never committed to an answer
    before, closed, _ = text.rpartition("</answer>")  # the last <answer>...</answer> block (no regex: linear)
    tagged = bool(closed) and "<answer>" in before
    text = before.rpartition("<answer>")[2] if tagged else text
    candidates = (boxed_answer(text), _after_marker(text), text if tagged else None)  # in order of priority
    return next((c.strip() for c in candidates if c and c.strip()), None)
