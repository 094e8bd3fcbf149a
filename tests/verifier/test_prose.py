"""Tests for nano_forkrl.verifier.prose: the value a sentence commits to, the last sentence, conclusions; math spans
found by a linear scanner that reads them as the regex it replaced did."""
import random
import re
import time

import pytest

from nano_forkrl.verifier.prose import conclusion, last_sentence, math_spans, sentence_answer, strip_end
from nano_forkrl.verifier.timebound import bounded

# the regex math_spans used to be: right, but quadratic ("\[" * n searched for "\]" from each "\[")
MATH_REGEX = re.compile(r"\$\$(.+?)\$\$|\$((?:\\\$|[^$\n])+)\$|\\\[(.+?)\\\]|\\\(([^\n]+?)\\\)", re.S)


@pytest.mark.parametrize("sentence, bare, value", [
    ("The largest $n$ is 34.", True, "34"), ("The volume of $ABCDEFGH$ is 120", True, "120"),
    ("the ordered pair $(x, y)$ is $(7, 6)$.", True, "(7, 6)"), ("The final answer is $10,455$", True, "10,455"),
    ("Therefore $x \\geq 5$ is the solution.", True, "x \\geq 5"), ("Jane started Sphere 3 hours ago", True, "3"),
    ("the error increases by 100%.", True, "100%"), ("the total is 19 points", True, "19"),
    ("x is 3 or 4", True, None), ("we get $x=3$ and $y=4$", True, None), ("no answer here: 42", False, None),
    ("nothing at all", True, None),
])
def test_sentence_answer(sentence, bare, value):
    assert sentence_answer(sentence, allow_bare_number=bare) == value


def test_math_spans_kinds_and_lines():
    assert math_spans(r"$a$ $$b$$ \[c\] \(d\)" + " $ \n e \n $") == ["a", "b", "c", "d"]
    assert math_spans(r"$\frac12 \$ = 3$") == [r"\frac12 \$ = 3"]  # an escaped dollar stays inside


def test_math_spans_read_as_the_regex_they_replace():
    """20,000 seeded strings of delimiters, escapes, letters and newlines: the same spans, in the same order."""
    rng = random.Random(0)
    alphabet = ["$", "$", "$$", "\\", "\\$", "\\[", "\\]", "\\(", "\\)", "[", ")", "\n", "a", " ", "."]
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        expected = [next(g for g in m.groups() if g is not None).strip() for m in MATH_REGEX.finditer(text)]
        assert math_spans(text) == expected, text


@pytest.mark.parametrize("text", ["\\[" * 100_000, "x \\(" * 50_000 + "\n\\)", "$" + "\\$ " * 50_000 + "\n",
                                  "$$ $" * 25_000], ids=["openings", "parentheses", "dollars", "display"])
def test_math_spans_are_linear_work(text):
    start = time.perf_counter()
    assert bounded(math_spans, (text,), 10.0, None) is not None  # None: still searching after 10 s
    assert time.perf_counter() - start < 2.0


def test_last_sentence_and_conclusion():
    assert last_sentence("Work: $2.5$ m. Thus $x = 2.5$ is it. I hope it is correct.") == "Thus $x = 2.5$ is it."
    assert last_sentence("first line\nSo the answer is 4") == "So the answer is 4"
    assert conclusion("Therefore, x = 3") and conclusion("We find that $x < 3$") and not conclusion("Then x = 3")
    assert strip_end("so 5. <|im_start|>user\n7") == "so 5. "


def test_long_text_is_bounded_work():
    start = time.perf_counter()
    assert last_sentence("$x$. " * 1_000_000 + "Thus 7.") == "Thus 7."
    assert time.perf_counter() - start < 5.0
