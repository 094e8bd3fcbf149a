"""Which part of a response is its final answer? The first half of the verifiable reward
(verify.py does the rest):

    r(response, gold) = correct if is_equivalent(extract_answer(response), gold) else wrong

Only a committed answer counts, so that the model cannot be rewarded for a number that
merely appears somewhere:
  * only the text after the LAST </think> (an unclosed <think> means "still thinking": no answer at
    all), and before a leaked chat-template token (<|im_start|>: the turn ended there);
  * inside the last <answer>...</answer> block if there is one (the CS336 / R1-zero format);
  * in it the last \\boxed{...} / \\fbox{...} / "\\boxed 7" (a later "Final Answer: ..." line
    overrides it), else the last "#### 72" / "answer is ..." / "Answer: ..." / "Answer $9$" marker,
    else (inside <answer> tags only) the whole tagged text, else a concluding last sentence
    ("Therefore, ... is 2/3.", prose.py).
Several boxes in a row, "\\boxed{-2} and \\boxed{1}", "\\boxed{3}, \\boxed{5}" or
"\\boxed{1} papers and \\boxed{2} bins", are one list "-2, 1": a list is compared as a multiset of
the same length (verify.py), so listing candidates never hedges a single answer. "or", "=" or a
sentence end between two boxes breaks the run. Look-alike minus signs and invisible characters are
read as plain text first (latex.plain: "\\boxed{−5}" is -5). All of it is linear in the length of
the response (responses are up to ~30k tokens): no regex here or in prose.py can read the same text
in two ways under a repetition (such a regex backtracks exponentially where it fails), and math
spans come from a scanner. extract_answer also runs under the verifier's time bound (timebound.py)
as a whole; committed_answer is the same without the bound.
"""
import re

from nano_forkrl.verifier.latex import closing, plain
from nano_forkrl.verifier.prose import (conclusion, last_sentence, math_spans, sentence_answer,
                                        strip_end)
from nano_forkrl.verifier.timebound import bounded

_BOXED = re.compile(r"\\(?:boxed|fbox)(?=[\s{])\s*")
_MARKER = re.compile(r"####|\banswer\s*(?:is\b|:|(?=\$|\\[\[(]))", re.IGNORECASE)
_FINAL = re.compile(r"final answer\s*(?:is\b|:)", re.IGNORECASE)  # overrides an earlier box
# what may stand between two boxes of one list: spaces, math delimiters, \quad, words and
# \text{words}, and at least one "," ";" "and" (not "or": "\boxed{1\frac12} or \boxed{\frac32}" are
# two forms of one answer; not "=": "x = \boxed{-3} and y = \boxed{4}" are labelled values; not "."
# or a digit). One character or one command per repetition: with [A-Za-z]+ inside the * a 50-letter
# gap that fails took minutes (2^n splits)
_GAP = re.compile(r"(?:[\s,;$()A-Za-z]|\\[()[\]]|\\quad\b|\\text\{[A-Za-z\s()]*\})*")
_LIST_WORD = re.compile(r"[,;]|\band\b")
# words between boxes only with "and", and never a correction
# ("\boxed{1}, finally \boxed{2}" is the answer 2)
_NOT_LIST = re.compile(r"\b(?:or|finally|then|actually|wait|instead|but|so|thus|therefore|hence"
                       r"|not|no)\b", re.I)
_MAX_GAP = 60
# the non-word characters that end a text (a run starts after a \w: linear)
_TRAILING = re.compile(r"(?<!\W)\W*\Z")


def _box_run(text):
    """Contents of the last \\boxed{...} and of the boxes right before it that form one list with
    it; None if there is no box or the last one is unbalanced. "\\boxed 7" (no braces)
    is a single answer."""
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
    # walk back while the previous box ends in a list separator before this one
    for m in reversed(found[:-1]):
        i = m.end()
        j = closing(text, i) if text.startswith("{", i) else -1
        gap = text[j + 1:start] if 0 <= j < start and start - j <= _MAX_GAP else "."
        words = re.sub(r"\\[A-Za-z]+|\band\b", "", gap)
        joined = re.search(r"\band\b", gap) or not re.search(r"[A-Za-z]", words)
        listed = _GAP.fullmatch(gap) and _LIST_WORD.search(gap) and joined
        if not (listed and not _NOT_LIST.search(gap)):
            break
        # appended backwards and reversed once: linear in the number of boxes
        run.append(text[i + 1:j])
        start = m.start()
    return run[::-1]


def boxed_answer(text):
    """The last \\boxed{} of `text`, or the run of boxes that ends it joined as one list
    ("3, 5"); None if none."""
    boxes = [b.strip() for b in _box_run(text) or [] if b.strip()]
    return ", ".join(boxes) or None


def _after_marker(text, marker=_MARKER):
    """What follows the last answer marker: a math span right after it, else the rest of its line or
    sentence (without $ and period); a whole sentence after it ("The largest $n$ is 34") gives
    the value it states."""
    found = list(marker.finditer(text))
    if not found:
        return None
    rest = text[found[-1].end():].lstrip(" :*")
    spans = math_spans(rest[:1000])
    # "Answer \[ 9 \]", "answer is $x = 5$, since ..."
    if spans and re.match(r"\s*(?:\$|\\[\[(])", rest):
        return spans[0]
    line = rest.split("\n")[0]
    # prose, not "3.5 cm"
    if len(re.findall(r"\b[A-Za-z]{2,}\b", re.sub(r"\$[^$]*\$", "", line))) >= 3:
        return sentence_answer(re.split(r"\.(?:\s|$)", line)[0], allow_bare_number=True)
    return re.split(r"\.(?:\s|$)", line)[0].strip(" *$")


def _from_prose(text):
    """The value of a concluding final sentence; or of a one-sentence response that ends in math."""
    sentence = last_sentence(text)
    if conclusion(sentence):
        return sentence_answer(sentence, allow_bare_number=True)
    closing_marks = _TRAILING.search(sentence)[0]  # "$", "\)" or "\]" among them: it ends in math
    if sentence == text.strip() and any(mark in closing_marks for mark in ("$", "\\)", "\\]")):
        return sentence_answer(sentence, allow_bare_number=False)
    return None


def after_thinking(text):
    """The part of a response that may hold its answer: the text after the LAST </think>; None while
    an unclosed <think> is still thinking (never committed); the whole text if it has no <think>.
    The one owner of the </think> rule: extract_answer and
    math_verify.reward_math_verify apply it."""
    if "</think>" in text:
        return text.rsplit("</think>", 1)[1]
    return None if "<think>" in text else text


def extract_answer(text, *, timeout=1.0):
    """The committed final answer in a response (a string), or None; None also
    past timeout seconds."""
    return bounded(committed_answer, (text,), timeout, None)


def committed_answer(text):
    """The committed final answer in a response (a string), or None. See the module
    docstring for the rules."""
    # BEGIN SOLUTION extract
    if not isinstance(text, str):
        return None
    text = after_thinking(strip_end(plain(text)))
    if text is None:
        return None  # still thinking: never committed to an answer
    # the last <answer>...</answer> block (no regex: linear)
    before, closed, _ = text.rpartition("</answer>")
    tagged = bool(closed) and "<answer>" in before
    text = before.rpartition("<answer>")[2] if tagged else text
    boxed, finals = boxed_answer(text), [m.start() for m in _FINAL.finditer(text)]
    # "\boxed{200} ... Final Answer: $10,455$"
    if boxed and finals and finals[-1] > text.rfind("\\boxed"):
        boxed = _after_marker(text, _FINAL) or boxed
    candidates = (boxed, _after_marker(text), text if tagged else None)  # in order of priority
    found = next((c.strip() for c in candidates if c and c.strip()), None)
    return found if found is not None or tagged else _from_prose(text)
    # END SOLUTION
