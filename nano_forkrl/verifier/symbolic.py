"""LaTeX answer -> sympy expression, for verify.py's symbolic comparison (after latex.normalize
and latex.structure).

to_sympy(s) = parse_expr(latex_to_python(s)): our own small LaTeX -> Python converter (sympy's
parse_latex needs antlr4), then sympy's parser with implicit multiplication ("2x", "xy", "2\\pi").
One letter is one symbol; e and i are Euler's number and the imaginary unit. Size guard: sympy
evaluates 9**9**9 or 100000! eagerly, in C code that no timer can interrupt, so we first parse with
evaluate=False and reject any power or factorial too big to compute (more than MAX_DIGITS digits)
before evaluating anything. Anything unparseable gives None, never an exception.
"""
import math
import re

import sympy
from sympy.core.function import AppliedUndef
from sympy.parsing.sympy_parser import (implicit_multiplication_application, parse_expr,
                                        standard_transformations)

from nano_forkrl.verifier.latex import closing

_FUNCS = ["sin", "cos", "tan", "cot", "sec", "csc", "asin", "acos", "atan", "sinh", "cosh", "tanh",
          "log", "exp"]
_GREEK = ("alpha beta gamma delta epsilon zeta eta theta iota kappa mu nu xi rho sigma tau phi chi "
          "psi omega").split()
_WORDS = {**{n: f" {n} " for n in _FUNCS + _GREEK}, "pi": " pi ", "infty": " oo ", "cdot": "*",
          "times": "*", "div": "/", "{": "(", "}": ")", "lfloor": " floor(", "rfloor": ")",
          "lceil": " ceiling(", "rceil": ")", "ln": " log ", "arcsin": " asin ", "arccos": " acos ",
          "arctan": " atan ", "lambda": " lamda "}
_CHARS = {"+": "+", "-": "-", "*": "*", "/": "/", "(": "(", ")": ")", "[": "(", "]": ")", " ": ""}
# command | number | one character
_TOKEN = re.compile(r"\\([A-Za-z]+|.)|(\d+\.?\d*|\.\d+)|(.)", re.S)
_SYMPY_NAMES = ["Integer", "Float", "Rational", "Symbol", "Add", "Mul", "Pow", "factorial",
                "factorial2", "binomial", "Abs", "floor", "ceiling", "pi", "oo"]
_GLOBALS = {n: getattr(sympy, n) for n in _FUNCS + _SYMPY_NAMES}
# Euler's e and the imaginary unit; E and I (choices) stay symbols
_LOCALS = {"e": sympy.E, "i": sympy.I}
# kept unevaluated for _too_big
_INERT = {n: sympy.Function(n) for n in ("factorial", "factorial2", "binomial")}
_TRANSFORMS = standard_transformations + (implicit_multiplication_application,)
# reject any power whose value would have more digits than this (or n! with n > 10^4)
MAX_DIGITS = 10**5


def _arg(s, i, brackets="{}"):
    """The macro argument at s[i]: a {group}, a \\command or one character -> (python
    code, next index)."""
    if s.startswith(brackets[0], i):
        if (j := closing(s, i, *brackets)) < 0:
            raise ValueError("unbalanced braces")
        return "(" + latex_to_python(s[i + 1:j]) + ")", j + 1
    # None (-> TypeError) when there is none
    m = re.compile(r"\s*(\\[A-Za-z]+|[^\s\\{}])").match(s, i)
    return "(" + latex_to_python(m[1]) + ")", m.end()


def latex_to_python(s):
    """Python-syntax code for sympy's parse_expr; raises ValueError/KeyError on anything
    it does not know."""
    out, i, bars = [], 0, 0
    while i < len(s):
        m = _TOKEN.match(s, i)
        (name, number, c), i = m.groups(), m.end()
        # a decimal is the exact rational it writes: 0.1 + 0.2 is 3/10, 1.0000001 is not 1
        if number:
            whole, _, fraction = number.partition(".")
            exact = f" ({int(whole + fraction)} / {10 ** len(fraction)}) "
            out.append(exact if fraction else f" {int(whole)} ")
        elif name in ("frac", "binom"):
            a, i = _arg(s, i)
            b, i = _arg(s, i)
            out.append(f"(({a})/({b}))" if name == "frac" else f" binomial({a},{b})")
        elif name == "sqrt":  # \sqrt{x}, \sqrt2, \sqrt[3]{x}
            n, i = _arg(s, i, "[]") if s.startswith("[", i) else ("2", i)
            a, i = _arg(s, i)
            out.append(f"(({a})**(1/{n}))")
        elif name == "log" and s.startswith("_", i):  # \log_b x = log(x) / log(b)
            b, i = _arg(s, i + 1)
            out.append(f"(1/log({b}))* log ")
        elif name in ("text", "mathbf") or c == "{":  # a group; \text{x} is just x
            a, i = _arg(s, i if name else i - 1)
            out.append(a)
        elif name:
            out.append(_WORDS[name])
        elif c == "^":
            a, i = _arg(s, i)
            out.append(f"**{a}")
        elif c == "_":  # x_1, a_{n}: part of the symbol's name (and never after a number)
            a, i = _arg(s, i)
            named = out and re.fullmatch(r"\s*[A-Za-z]\w*\s*", out[-1])
            if not (re.fullmatch(r"\(\s*\w+\s*\)", a) and named):
                raise ValueError("subscript")
            out[-1] = out[-1].strip() + "_" + a.strip("() ") + " "
        elif c == "|":
            out.append(" Abs(" if bars % 2 == 0 else ")")
            bars += 1
        elif c.isascii() and c.isalpha():
            out.append(f" {c} ")  # one letter = one symbol: "xy" is x*y
        elif c == "!" and out:
            out[-1] = out[-1].rstrip() + "!"  # the tokenizer needs "5!", not "5 !"
        else:
            out.append(_CHARS[c])
    return "".join(out)


def _size(x):
    """|value| of a constant sub-expression (its parts already passed _too_big), or None
    if it has symbols."""
    if x.free_symbols:
        return None
    x = x.replace(lambda n: isinstance(n, AppliedUndef),
                  lambda n: getattr(sympy, n.func.__name__)(*n.args))
    return abs(complex(sympy.N(x)))


def _too_big(expr):
    """Would evaluating expr build a gigantic number? Checked bottom-up, so inner towers
    are caught first."""
    for node in sympy.postorder_traversal(expr):
        if isinstance(node, sympy.Pow) and (exp := _size(node.exp)) is not None:
            base = _size(node.base)  # base**exp has about exp * log10|base| digits
            if base is None:
                scale = 1.0
            else:
                scale = 0.0 if base in (0.0, 1.0) else max(1.0, abs(math.log10(base)))
            if exp * scale > MAX_DIGITS:
                return True
        elif (isinstance(node, AppliedUndef) and (n := _size(node.args[0])) is not None
              and n > 10**4):
            return True
    return False


def _undefined_power(expr):
    """0 to a power that is not positive (0^0, and 1/0 written as 0^{-1})."""
    return any(isinstance(node, sympy.Pow) and node.base == 0 and node.exp.is_nonpositive
               for node in sympy.preorder_traversal(expr))


def to_sympy(s):
    """sympy expression for one normalized scalar answer, or None when unparseable or too big."""
    try:
        code = latex_to_python(s)
        # an empty group, as in \frac{}{} or [], is Python's empty tuple
        if re.search(r"\(\s*\)", code):
            return None
        raw = parse_expr(code, {**_LOCALS, **_INERT}, _TRANSFORMS, dict(_GLOBALS), evaluate=False)
        if _too_big(raw):
            return None
        if _undefined_power(raw):
            return sympy.nan  # sympy would say 0**0 == 1: an answer "0^0" must not equal "1"
        expr = parse_expr(code, dict(_LOCALS), _TRANSFORMS, dict(_GLOBALS))
        return expr if isinstance(expr, sympy.Expr) else None
    except Exception:  # SyntaxError, KeyError, RecursionError, ...: not an expression we can use
        return None
