"""Tests for nano_forkrl.verifier.extract: which part of a response is the committed final answer
(box, list of boxes, marker, <answer> tags, </think>), and that junk of any size gives None quickly:
linear by construction (hostile inputs, a fuzz test, scaling by ratio, all on committed_answer, the
extraction without its time bound) and bounded as a whole (extract_answer)."""
import random
import time

import pytest

from nano_forkrl.verifier.extract import after_thinking, committed_answer, extract_answer
from nano_forkrl.verifier.timebound import bounded
from nano_forkrl.verify import extract_answer as extract_answer_from_verify

NEVER_HANGS_S = 10.0  # generous bound for "returns quickly"
SLOW = object()  # what a guarded call gives past its guard
# two inputs that stalled extraction: a gap between boxes that the gap regex backtracked over
# exponentially (27 s; each more letter doubled it), and a quadratic search for a closing "\]" after
# each of 40,000 "\[" (50 s)
WORDY_GAP = r"\boxed{6} for the square board, but the other one gives 8: \boxed{8}"
OPENINGS = "Answer: the value we get is " + "\\[" * 40_000


def short(value):
    """Readable test ids for huge adversarial strings."""
    return repr(value)[:40]


@pytest.mark.parametrize("response, expected", [
    (r"so the result is \boxed{\frac{1}{2}}.", r"\frac{1}{2}"),
    (r"first \boxed{1}, finally \boxed{2}", "2"),  # the last box wins
    (r"\boxed{\{1,2\}}", r"\{1,2\}"),
    # nested braces
    (r"\boxed{\frac{\sqrt{3}}{\left(2\right)}}", r"\frac{\sqrt{3}}{\left(2\right)}"),
    (r"$\boxed 7$", "7"),
    (r"\fbox{3}", "3"),
    ("#### 72", "72"),
    ("so she pays 3 + 4 = 7 dollars\n#### 1,000", "1,000"),
    ("The answer is 5.", "5"),
    ("The answer is 3.5 cm. Done.", "3.5 cm"),
    ("The final answer is $\\frac{3}{4}$. I hope it is correct.", r"\frac{3}{4}"),
    ("Answer: (B)", "(B)"),
    ("**Final Answer:** 42", "42"),
    ("answer is:   -3\nmore text", "-3"),
    ("Answer: $x = 5$, since ...", "x = 5"),
    ("The answer is 4. Later: the answer is 6.", "6"),  # last marker wins
    (r"The answer is 4, i.e. \boxed{5}. Answer: 6", "5"),  # a box beats any marker
    (r"<think>maybe \boxed{3}</think> The answer is 4", "4"),  # only after </think>
    (r"<think>a</think><think>b</think> \boxed{9}", "9"),  # the LAST </think>
    ("</think> <answer>5</answer>", "5"),  # CS336 format
    (r"</think> <answer>\boxed{6}</answer>", "6"),
    (r"\boxed{1} </think> <answer> 7 </answer>", "7"),
    (r"The roots are \boxed{-3} and \boxed{4}.", "-3, 4"),  # boxes in a row form one list
    (r"\boxed{2}, \boxed{5}, \boxed{11}", "2, 5, 11"),
    (r"\(\boxed{(1, 4)}\) \quad \text{and} \quad \(\boxed{(4, 1)}\)", "(1, 4), (4, 1)"),
    (r"$x = \boxed{-3}$ and $y = \boxed{4}$", "4"),  # words between the boxes: not one list
    (r"$$\boxed{6}$$ \boxed{9}", "9"),  # no separator: the last box only
    (r"\boxed{2\frac12} or \boxed{\frac52}", r"\frac52"),  # "or": two forms of one answer
    (r"first \boxed{7}. Then \boxed{8}", "8"),
    (r"\boxed{\boxed{1}, \boxed{2}}", "1, 2"),
    (r"\boxed{1} papers and \boxed{2} bins", "1, 2"),  # words between boxes joined by "and"
    (r"$$\boxed{(3, 3)} \text{ for part (a) and } \boxed{(1, 1)}$$", "(3, 3), (1, 1)"),
    (r"\boxed{1} and then \boxed{2}", "2"),  # a correction word breaks the run
    (r"\boxed{1} and 7 more \boxed{2}", "2"),  # a number between: not one list
    ("Answer \\[ 9 \\]", "9"), ("Answer $ 9 $", "9"), ("Answer $$ \n 9 \n $$", "9"),
    ("Answer \\( 9 \\)", "9"),
    ("Answer $ \n 9 \n $", None),  # inline math never spans lines
    ("Final Answer: The largest $n$ is 34.", "34"),
    ("Final Answer: Jane started growing Sphere 3 hours ago. I hope it is correct.", "3"),
    (r"so $0.04 \cdot 10 = \boxed{200}$. Final Answer: The final answer is $10,455$."
     r" I hope it is correct.", "10,455"),
    (r"Final Answer: \boxed{5}", "5"),  # the marker before the box: the box
    (r"Therefore $x \geq 5$ is the solution.", r"x \geq 5"),
    ("Thus $x <= 2$ is our answer.", "x <= 2"), ("We find that $x \\lt 3$.", "x \\lt 3"),
    # leaked chat tokens
    ("Work. Therefore, the probability that Alice wins is 2/3. <|im_start|>user", "2/3"),
    ("Work. So, the ordered pair $(x, y)$ that solves the system is $(7, 6)$.", "(7, 6)"),
    ("Work. Therefore, there are 12 sequences. I hope it is correct.", "12"),
    ("The identity matrix is $ \\begin{pmatrix}1 & 0 \\\\ 0 & 1\\end{pmatrix} $.",
     r"\begin{pmatrix}1 & 0 \\ 0 & 1\end{pmatrix}"),
    ("x" * 100_000 + r" \boxed{1}", "1"),
    ("<answer>" * 12_500 + "</answer> <answer>2</answer>", "2"),
], ids=short)
def test_extract_answer(response, expected):
    assert extract_answer(response) == expected


@pytest.mark.parametrize("response", [
    r"<think> still thinking \boxed{3}",  # unclosed <think>: never committed
    r"<think>\boxed{3}</think>",  # the box is inside the thinking only
    "no answer here: 42",
    "Work. Therefore x is 3 or 4.",  # two candidates: no commitment
    "Work. The value is 5. Then we continue",  # the last sentence concludes nothing
    "We computed $x = 3$ and $y = 4$ and more",  # two math spans, no conclusion
    "Final Answer: somewhere between 3 and 4",
    "",
    r"\boxed{}",
    r"\boxed{x",  # unbalanced, and no marker
    r"\boxed{" * 30_000,
    r"\boxed{1}, \boxed{2" + ", \boxed{3}" * 20_000,  # the last box is unbalanced
    "<answer>" * 12_500, "answer is " * 10_000, "#### " * 20_000, "\\boxed " * 14_000,
    "$" * 100_000,
    None, 123, b"\\boxed{1}", ["\\boxed{1}"],
], ids=short)
def test_extract_answer_none(response):
    start = time.perf_counter()
    assert extract_answer(response) is None
    assert time.perf_counter() - start < NEVER_HANGS_S  # linear time, also on 100k-character junk


def test_long_list_of_boxes_is_linear_and_joined():
    start = time.perf_counter()
    assert extract_answer(r"\boxed{1}, " * 20_000 + r"\boxed{2}") == "1, " * 20_000 + "2"
    assert time.perf_counter() - start < NEVER_HANGS_S


def test_megabytes_of_comma_joined_boxes_are_linear():
    """Linear, not quadratic (10 MB took 2 minutes before): 8x the input may take at most ~20x the
    time (a quadratic cost would take 64x), and 2.75 MB stays within a generous bound. Ratios, not
    absolute seconds: a loaded machine slows both sizes alike. 340 KB and 2.75 MB suffice: the
    quadratic code of before took 1.8 s on the first and 99 s on the second. The time bound is
    raised above the 1 s default: this measures extraction itself."""
    def seconds(n):
        start = time.perf_counter()
        assert extract_answer(r"\boxed{1}, " * n + r"\boxed{2}", timeout=60.0).endswith("1, 1, 2")
        return time.perf_counter() - start

    small, large = seconds(31_250), seconds(250_000)
    assert large < 20 * small + 0.5, (small, large)
    assert large < 30.0


@pytest.mark.parametrize("response, expected", [
    ("<think>a</think> b", " b"),
    ("<think>a</think><think>b</think>c", "c"),  # the LAST </think>
    ("a </think> b", " b"),  # a template that opened <think> in the prompt
    (r"<think> still \boxed{3}", None),  # unclosed: still thinking
    (r"no tags \boxed{3}", r"no tags \boxed{3}"),
])
def test_after_thinking_owns_the_think_rule(response, expected):
    assert after_thinking(response) == expected


def test_still_importable_from_verify():
    assert extract_answer_from_verify is extract_answer


def _guarded(text, guard_s=NEVER_HANGS_S):
    """(committed_answer(text) or SLOW past guard_s, seconds): a regression fails the test
    instead of hanging it."""
    start = time.perf_counter()
    return bounded(committed_answer, (text,), guard_s, SLOW), time.perf_counter() - start


@pytest.mark.parametrize("response, expected", [(WORDY_GAP, "8"), (OPENINGS, None)], ids=short)
def test_hostile_inputs_are_linear_and_right(response, expected):
    answer, seconds = _guarded(response)
    assert answer == expected and seconds < 2.0, (answer, seconds)
    # also within the default 1 s bound of the whole call
    assert extract_answer(response) == expected


WORDS = ("the", "answer", "is", "and", "or", "for", "square", "board", "but", "other", "one",
         "gives", "so", "then", "Answer:", "Final Answer:", "Therefore,", "####", "we", "get",
         "value", "cm", "I hope it is correct.")
LATEX = (r"\frac", r"\sqrt", r"\text{", r"\text{ and }", r"\quad", r"\[", r"\]", r"\(", r"\)", "$",
         "$$", r"\$", r"\left(", r"\right)", r"\boxed{", r"\boxed{8}", r"\boxed 7", r"\fbox{", "{",
         "}", "(", ")", "=", "<think>", "</think>", "<answer>", "</answer>", "\n", ", ", ": ", ". ",
         "; ", "8", "-3", "2.5", "x", "\u2212")


def _document(rng):
    """Up to ~4 kB of English words, LaTeX commands, braces and boxes, mostly
    separated by spaces."""
    pieces = [rng.choice(WORDS if rng.random() < 0.5 else LATEX) for _ in range(rng.randint(1,
                                                                                            700))]
    return "".join(p + (" " if rng.random() < 0.6 else "") for p in pieces)


def test_fuzz_of_words_latex_braces_and_boxes_is_quick_and_never_raises():
    """3,000 seeded documents up to ~4 kB: each extraction returns a string or None, none takes 2 s
    (before the gap regex was linear, such mixes took minutes: words between two
    boxes, then a digit)."""
    rng, worst = random.Random(19), (0.0, "")
    for _ in range(3000):
        text = _document(rng)
        answer, seconds = _guarded(text, 5.0)
        assert answer is None or isinstance(answer, str), (answer, text[:300])
        worst = max(worst, (seconds, text))
    assert worst[0] < 2.0, worst


def _seconds(text, repeats=5):
    """Best of `repeats` timings of committed_answer(text) (the minimum: what the code
    costs, not the load)."""
    times = []
    for _ in range(repeats):
        answer, seconds = _guarded(text)
        assert answer is not SLOW, text[:100]
        times.append(seconds)
    return min(times)


@pytest.mark.parametrize("make", [
    # quadratic before: a search for "\]" from each "\["
    lambda n: "Answer: the value we get is " + "\\[" * n,
    # and for "\)" on the line from each "\("
    lambda n: "Answer: the value we get is " + "\\(" * n + "\n\\)",
    lambda n: "So " + "$ \\$ x " * n + "\n",  # $...$ that never closes
    lambda n: "I hope it is correct. " * n + "Therefore " + " " * n + ".",
    lambda n: _document(random.Random(n)) * (n // 100),  # ordinary mixed text
], ids=["openings", "parentheses", "dollars", "courtesy", "mixed"])
def test_extraction_time_is_linear_in_the_length(make):
    """8x the input takes less than 16x the time (a quadratic cost takes 64x); minima of
    repeats, not absolute
    seconds: a loaded machine slows both sizes alike."""
    small, large = _seconds(make(4000)), _seconds(make(32_000))
    assert large < 16 * small + 0.05, (small, large)
