"""Tests for nano_forkrl.latex: canonical strings, structures, LaTeX -> sympy, and the size guard."""
import time

import pytest
import sympy

from nano_forkrl.latex import closing, latex_to_python, normalize, split_top, structure, to_sympy

x, y, n = sympy.symbols("x y n")


@pytest.mark.parametrize("raw, canonical", [
    (r"\dfrac{1}{2}", r"\frac{1}{2}"),
    (r"\tfrac{1}{2}", r"\frac{1}{2}"),
    (r"\left( 3, \frac{\pi}{2} \right)", r"(3,\frac{\pi}{2})"),
    (r"5\text{ cm}", "5"),
    (r"15\mbox{ cm}^2", "15"),
    (r"5.4 \text{ cents}", "5.4"),
    (r"\frac{270}7\text{ degrees}", r"\frac{270}7"),
    (r"90^\circ", "90"),
    (r"90^{\circ}", "90"),
    (r"10\%", "10"),
    (r"\$18.90", "18.90"),
    ("$x$", "x"),
    ("1,000", "1000"),
    ("-1,234,567.5", "-1234567.5"),
    (r"10,\!080", "10080"),
    (r"11,\! 111,\! 111,\! 100", "11111111100"),
    ("1,2", "1,2"),  # a list, not a thousand
    ("1,23", "1,23"),
    ("x = 5", "5"),
    (r"f(x) = 2x", "2x"),
    (r"x \in [-2,7]", "[-2,7]"),
    (r"5x - 7y + 11z + 4 = 0", "5x-7y+11z+4=0"),  # not a short "x =" prefix: kept
    ("(B)", "B"),
    (r"\text{(C)}", "C"),
    (r"\text{East}", "east"),
    (r"\cot x", r"\cot x"),  # the space that ends a command stays
    (r"1 \pm \sqrt{19}", r"1\pm\sqrt{19}"),
    (r"1 \mp 2", r"1\pm2"),
    (r"4210_{5}", "4210_5"),
    (r"137 \frac{1}{2}", r"(137+\frac{1}{2})"),
    (r"1\frac45", r"(1+\frac45)"),
    (r"2 \text{ and } 3", "2,3"),
    ("5.", "5"),
    ("3.83e35", r"3.83\times10^{35}"),
    ("-2e-5", r"-2\times10^{-5}"),
    (r"\(5\)", "(5)"),
    (r"a\ b", "ab"),
    (r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}", r"\begin{pmatrix}1\\2\end{pmatrix}"),
])
def test_normalize(raw, canonical):
    assert normalize(raw) == canonical


def test_closing_and_split_top():
    assert closing("{a{b}c}d", 0) == 6
    assert closing("{a{b}", 0) == -1
    assert closing("(0,1]", 0, "([", ")]") == 4
    assert split_top("1,(2,3),\\{4,5\\}", ",") == ["1", "(2,3)", "\\{4,5\\}"]
    assert split_top(r"(0,1)\cup(2,3)", r"\cup") == ["(0,1)", "(2,3)"]
    assert split_top(r"1&2\\3&4", "\\\\") == ["1&2", "3&4"]


@pytest.mark.parametrize("s, expected", [
    ("5", ("scalar", "", ["5"])),
    ("(1,2)", ("tuple", "()", ["1", "2"])),
    ("(0,1]", ("tuple", "(]", ["0", "1"])),
    ("[a,b)", ("tuple", "[)", ["a", "b"])),
    ("(a+5)(b+2)", ("scalar", "", ["(a+5)(b+2)"])),  # a product, not a tuple
    ("(5)", ("scalar", "", ["(5)"])),
    (r"\{1,2\}", ("set", "", ["1", "2"])),
    ("1,2,3", ("set", "", ["1", "2", "3"])),
    (r"1\pm\sqrt{5}", ("set", "", [r"1+\sqrt{5}", r"1-\sqrt{5}"])),
    (r"\{1\pm\sqrt{5},-2\}", ("set", "", [r"1+\sqrt{5}", r"1-\sqrt{5}", "-2"])),
    (r"(-\infty,2)\cup(3,\infty)", ("union", "", [r"(-\infty,2)", r"(3,\infty)"])),
    (r"\begin{pmatrix}1\\2\end{pmatrix}", ("tuple", "()", ["1", "2"])),  # column vector
    (r"\begin{pmatrix}1&2\\3&4\end{pmatrix}", ("tuple", "2x2,2", ["1", "2", "3", "4"])),
    (r"\begin{bmatrix}1&2&3\end{bmatrix}", ("tuple", "1x3", ["1", "2", "3"])),
])
def test_structure(s, expected):
    assert structure(s) == expected


@pytest.mark.parametrize("latex, expected", [
    (r"\frac{1}{2}", sympy.Rational(1, 2)),
    (r"\frac12", sympy.Rational(1, 2)),
    (r"\frac9{19}", sympy.Rational(9, 19)),
    (r"\frac{\sqrt{3}}{3}", sympy.sqrt(3) / 3),
    (r"\sqrt2", sympy.sqrt(2)),
    (r"11\sqrt2", 11 * sympy.sqrt(2)),
    (r"\sqrt[3]{x}", x ** sympy.Rational(1, 3)),
    (r"2\pi", 2 * sympy.pi),
    (r"3x", 3 * x),
    (r"xy", x * y),
    (r"x^2+3x", x**2 + 3 * x),
    (r"x^{10}", x**10),
    (r"2^{3^{2}}", 512),
    (r"5!", 120),
    (r"(n+1)!", sympy.factorial(n + 1)),
    (r"\binom{10}{3}", 120),
    (r"-2+7i", -2 + 7 * sympy.I),
    (r"e^{i\pi}", -1),
    (r"\ln e", 1),
    (r"\log_28", 3),
    (r"\cot x", sympy.cot(x)),
    (r"|x-1|", sympy.Abs(x - 1)),
    (r"\lfloor 2.5 \rfloor", 2),
    (r"x_1+x_{2}", sympy.Symbol("x_1") + sympy.Symbol("x_2")),
    (r"2\cdot 3\times 4", 24),
    (r"\infty", sympy.oo),
    (r"\alpha\beta", sympy.Symbol("alpha") * sympy.Symbol("beta")),
    (r"(137+\frac{1}{2})", sympy.Rational(275, 2)),
    (r"\text{x}+1", x + 1),
])
def test_to_sympy(latex, expected):
    got = to_sympy(latex)
    assert got == expected or sympy.simplify(got - expected) == 0


@pytest.mark.parametrize("bad", [
    r"\frac{1}{2", r"\frac", r"\sqrt", "x=", "1,2", r"\unknowncommand{3}", "204_5", "'", r"\\", "",
    "(" * 300 + "1" + ")" * 300,
])
def test_to_sympy_rejects_garbage(bad):
    assert to_sympy(bad) is None


@pytest.mark.parametrize("huge", [
    r"9^{9^{9^9}}", r"9^{9^9}", r"2^{10^{6}}", r"10^{100001}", r"100000!", r"(10!)!", r"2^{10!}",
    r"\binom{10^9}{5}", r"x^{10^{9}}", r"0.5^{10^9}", r"(1+x)^{9^{9^9}}",
])
def test_too_big_numbers_are_refused_before_evaluation(huge):
    start = time.perf_counter()
    assert to_sympy(huge) is None
    assert time.perf_counter() - start < 5.0  # generous: it is ~1 ms, computing any of these takes minutes


@pytest.mark.parametrize("ok", [r"2^{100}", r"10^{99999}", r"1^{10^{9}}", r"(-1)^{10^{9}}", r"1000!", r"(3!)!"])
def test_large_but_reasonable_numbers_are_kept(ok):
    assert to_sympy(ok) is not None


def test_latex_to_python_is_plain_python_syntax():
    code = latex_to_python(r"\frac{2\pi}{3}")
    assert "pi" in code and "/" in code
    with pytest.raises((ValueError, KeyError)):
        latex_to_python(r"\frac{1}{2")
    with pytest.raises((ValueError, KeyError)):
        latex_to_python("a=b")
