"""Tests for nano_forkrl.verifier.symbolic: LaTeX -> sympy, garbage -> None, and the size guard."""
import time

import pytest
import sympy

from nano_forkrl.verifier.symbolic import latex_to_python, to_sympy

x, y, n = sympy.symbols("x y n")


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
    "(" * 300 + "1" + ")" * 300, r"\frac{}{}", r"[]\infty", "()",
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
