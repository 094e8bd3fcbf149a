"""Answers stated in a sentence, for extract.py: "Final Answer: The largest $n$ is 34." -> "34".

sentence_answer(sentence): the math or number a sentence commits to, tried in this order:
  1. what follows its last " is " / " are ", if that is one math span or one number ("... is $(7, 6)$");
  2. its only math span ("Therefore $x \\geq 5$ is the solution.");
  3. its only number, with a "%" ("... increases by 100%"), if allow_bare_number (the caller saw a marker or
     a concluding word, so that "no answer here: 42" stays no answer).
Anything else (two candidates, no candidate) is None: a sentence that names two values commits to neither.
last_sentence(text): the final sentence, without a closing "I hope it is correct." and without chat-template
tokens that leaked into the response. conclusion(sentence): it starts with "Therefore", "Thus", "So", ...
"""
import re

# $$...$$ and \[...\] may span lines; inline $...$ and \(...\) may not ("$ \n 9 \n $" is no math)
_MATH = re.compile(r"\$\$(.+?)\$\$|\$((?:\\\$|[^$\n])+)\$|\\\[(.+?)\\\]|\\\(([^\n]+?)\\\)", re.S)
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:,\d{3})*(?:\.\d+)?(?:/\d+)?%?(?![\w.]|\.\d)")
_IS = re.compile(r"\s(?:is|are)\s")
_BOILERPLATE = re.compile(r"\s*I hope it is correct\.?\s*$", re.I)
_END = re.compile(r"<\|(?:im_start|im_end|endoftext|eot_id)\|>")
_CONCLUSION = re.compile(r"(?:therefore|thus|so|hence|finally|in conclusion|we (?:find|get|have|obtain)"
                         r"|the (?:solution|answer|result) (?:is|are))\b", re.I)
_SENTENCE_END = re.compile(r"[.!?](?:\s+|$)(?=\S)|\n\s*")  # what ends one sentence and starts another
_TAIL = 2000  # a final sentence is shorter than this: older text is never looked at (bounded work)


def math_spans(text):
    """Contents of the $...$, $$...$$, \\[...\\] and \\(...\\) spans of text, in order."""
    return [next(g for g in m.groups() if g is not None).strip() for m in _MATH.finditer(text)]


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
    """The final sentence of text (math spans kept whole), without the "I hope it is correct." courtesy."""
    text = _BOILERPLATE.sub("", text[-_TAIL:]).strip()
    starts = [0]
    inside = [(m.start(), m.end()) for m in _MATH.finditer(text)]
    for m in _SENTENCE_END.finditer(text):
        if not any(a < m.start() < b for a, b in inside):  # the "." in "$2.5$" ends nothing
            starts.append(m.end())
    return text[starts[-1]:].strip()


def conclusion(sentence):
    """Does the sentence start like a conclusion ("Therefore, ...", "Thus ...", "We find that ...")?"""
    return bool(_CONCLUSION.match(sentence.lstrip(" *")))
