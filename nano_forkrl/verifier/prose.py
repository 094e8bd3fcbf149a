"""Answers stated in a sentence, for extract.py: "Final Answer: The largest $n$ is 34." -> "34".

sentence_answer(sentence): the math or number a sentence commits to, tried in this order:
  1. what follows its last " is " / " are ", if that is one math span or one number
     ("... is $(7, 6)$");
  2. its only math span ("Therefore $x \\geq 5$ is the solution.");
  3. its only number, with a "%" ("... increases by 100%"), if allow_bare_number (the caller saw a
     marker or a concluding word, so that "no answer here: 42" stays no answer).
Anything else (two candidates, no candidate) is None: a sentence that names two
values commits to neither.
last_sentence(text): the final sentence, without a closing "I hope it is correct." and without
chat-template tokens that leaked into the response. conclusion(sentence): it starts with
"Therefore", "Thus", "So", ... Everything here is linear in the length of its input: math spans come
from a scanner, not from a regex that would look for a closing "\\]" again from every "\\["
(quadratic on "\\[\\[\\[...").
"""
import re

# $$...$$ and \[...\] may span lines; inline $...$ and \(...\) may not ("$ \n 9 \n $" is no math)
# what opens a span: \[ or \( only while a closing \] or \) is still ahead (else n
# openings cost n steps)
_OPENING = {(b, p): re.compile("|".join([r"\$"] + [r"\\\["] * b + [r"\\\("] * p))
            for b in (0, 1) for p in (0, 1)}
# $...$ content: \$ (escaped), or one other character
_INLINE = re.compile(r"(?:\\\$|[^$\n\\]|\\(?!\$))*")
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:,\d{3})*(?:\.\d+)?(?:/\d+)?%?(?![\w.]|\.\d)")
_IS = re.compile(r"\s(?:is|are)\s")
# no leading \s*: quadratic in spaces
_BOILERPLATE = re.compile(r"I hope it is correct\.?\s*$", re.I)
_END = re.compile(r"<\|(?:im_start|im_end|endoftext|eot_id)\|>")
_CONCLUSION = re.compile(r"(?:therefore|thus|so|hence|finally|in conclusion"
                         r"|we (?:find|get|have|obtain)"
                         r"|the (?:solution|answer|result) (?:is|are))\b", re.I)
# what ends one sentence and starts another
_SENTENCE_END = re.compile(r"[.!?](?:\s+|$)(?=\S)|\n\s*")
_TAIL = 2000  # a final sentence is shorter than this: older text is never looked at (bounded work)


def _finder(text, needle):
    """at(i): index of the first needle in text at or after i (-1: none). For growing i the searches
    never overlap (a result still ahead of i is reused), so all calls together are
    linear in len(text)."""
    cache = [len(text) + 1, -1]  # [searched from, result]

    def at(i):
        if not (cache[0] <= i and (cache[1] < 0 or cache[1] >= i)):
            cache[:] = i, text.find(needle, i)
        return cache[1]
    return at


def _spans(text):
    """(start, end, content) of each math span, left to right. At each position the first kind that
    closes wins: $$...$$ (lines allowed), $...$ (one line; \\$ inside is an escaped dollar, but with
    no other $ before the line ends the last \\$ closes it), \\[...\\], \\(...\\) (one line);
    each ends at the first closing delimiter after it."""
    display, bracket, paren, newline = (_finder(text, s) for s in ("$$", "\\]", "\\)", "\n"))
    # no \( before parens_from opens a span: its line has no \) after it
    found, i, parens_from = [], 0, 0
    while i < len(text):
        # openings are looked for up to limit, then on
        limit = parens_from if i < parens_from else len(text)
        opening = _OPENING[bracket(i + 3) >= 0, paren(i + 3) >= 0 and i >= parens_from]
        m = opening.search(text, i, limit)
        if m is None:
            i = limit
            continue
        p, span = m.start(), None
        if text.startswith("$$", p) and (q := display(p + 3)) >= 0:
            span = p, q + 2, text[p + 2:q]
        elif text[p] == "$":
            e = _INLINE.match(text, p + 1).end()  # up to the first unescaped $ or newline
            # else back to the last \$
            b = e if text.startswith("$", e) else text.rfind("\\$", p + 1, e) + 1
            span = (p, b + 1, text[p + 1:b]) if b > p + 1 else None
        elif text[p + 1] == "[" and (q := bracket(p + 3)) >= 0:
            span = p, q + 2, text[p + 2:q]
        elif text[p + 1] == "(" and (q := paren(p + 3)) >= 0:
            if 0 <= (end_of_line := newline(p + 2)) < q:  # \( ... \) stays on one line
                parens_from = end_of_line
            else:
                span = p, q + 2, text[p + 2:q]
        if span:
            found.append(span)
        i = span[1] if span else p + 1
    return found


def math_spans(text):
    """Contents of the $...$, $$...$$, \\[...\\] and \\(...\\) spans of text, in order."""
    return [content.strip() for _, _, content in _spans(text)]


def _only(found):
    return found[0] if len(found) == 1 else None


def sentence_answer(sentence, allow_bare_number):
    """The one value a sentence commits to (see the module docstring), or None."""
    sentence = sentence.strip().rstrip(".").strip()
    tails = _IS.split(sentence)
    if len(tails) > 1:
        tail = tails[-1].strip(" *")
        spans = math_spans(tail)
        if spans:
            if len(spans) == 1:
                return spans[0]
        elif _NUMBER.fullmatch(tail.split(" ")[0]) and len(_NUMBER.findall(tail)) == 1:
            return tail.split(" ")[0]  # "is 19 points": the number, without its unit
    spans = math_spans(sentence)
    if spans:
        return _only(spans)
    return _only(_NUMBER.findall(sentence)) if allow_bare_number else None


def strip_end(text):
    """text up to a leaked chat-template token (the model's turn ended there)."""
    m = _END.search(text)
    return text[:m.start()] if m else text


def last_sentence(text):
    """The final sentence of text (math spans kept whole), without the
    "I hope it is correct." courtesy."""
    text = _BOILERPLATE.sub("", text[-_TAIL:]).strip()
    starts, inside, k = [0], _spans(text), 0
    for m in _SENTENCE_END.finditer(text):  # both in order: one pass over the spans
        while k < len(inside) and inside[k][1] <= m.start():
            k += 1
        if not (k < len(inside) and inside[k][0] < m.start()):  # the "." in "$2.5$" ends nothing
            starts.append(m.end())
    return text[starts[-1]:].strip()


def conclusion(sentence):
    """Does the sentence start like a conclusion ("Therefore, ...", "Thus ...",
    "We find that ...")?"""
    return bool(_CONCLUSION.match(sentence.lstrip(" *")))
