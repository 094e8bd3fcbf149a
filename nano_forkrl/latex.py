"""LaTeX answer strings -> canonical strings, structures and (size-guarded) sympy expressions, for verify.py.

normalize(s): Hendrycks-MATH style clean-up: \\dfrac -> \\frac; no \\left, \\right, units, degrees, \\%, \\$, spaces;
  1,000 -> 1000; 3e5 -> 3\\times10^{5}; x = 5 -> 5; \\text{(B)} -> B; East -> east; 1\\frac45 -> (1+\\frac45).
structure(s): (kind, brackets, parts): scalar, tuple (ordered), set (unordered) or union of intervals.
to_sympy(s): our own small LaTeX -> Python converter (sympy's parse_latex needs antlr4) + parse_expr with implicit
  multiplication. sympy evaluates 9**9**9 or 100000! eagerly, in C code that no timer can interrupt, so we parse
  with evaluate=False first and reject any power or factorial too big to compute before evaluating anything.
"""
import math
import re

import sympy
from sympy.core.function import AppliedUndef
from sympy.parsing.sympy_parser import implicit_multiplication_application, parse_expr, standard_transformations

# ---------------------------------------------------------------- canonical string
_DROP = ["\\displaystyle", "\\left.", "\\right.", "^{\\circ}", "^\\circ", "\\circ", "°", "\\%", "%", "\\$", "$",
         "\\!", "\\,", "\\;", "\\:", "\\quad"]
_SWAP = [("{,}", ","), ("\\dfrac", "\\frac"), ("\\tfrac", "\\frac"), ("\\mbox", "\\text"), ("\\textbf", "\\text"),
         ("\\textrm", "\\text"), ("\\mathrm", "\\text"), ("\\mp", "\\pm")]
_AND_OR = re.compile(r"\\text\{\s*(?:and|or)\s*\}|\s+(?:and|or)\s+")
_UNIT = re.compile(r"(?<=[\w})\].])\s*\\text\{\s*[A-Za-z][^{}]*\}(?:\^\{?\d\}?)?")  # "5\text{ cm}^2" -> "5"
_LHS = re.compile(r"^\\?[A-Za-z]+(?:_\{?\w+\}?)?(?:\([A-Za-z]\))?(?:=|\\in(?![a-z]))(?!.*=)")  # x=, f(x)=, x\in
_THOUSANDS = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")  # "1,000" is a thousand; "1,2" stays a list


def normalize(s):
    """Canonical string form of one answer: equal strings mean equal answers."""
    s = s.strip()
    for old in _DROP:
        s = s.replace(old, "")
    for old, new in _SWAP:
        s = s.replace(old, new)
    s = re.sub(r"\\(?:left|right)(?![A-Za-z])|(?<!\\)\\(?=[ ()[\]])", "", s)  # also "\ ", "\(", not "\\("
    s = _UNIT.sub("", _AND_OR.sub(",", s))
    s = re.sub(r"\\text\{([^{}]*)\}", r"\1", s)  # a \text{...} left over is the answer itself: \text{(B)}
    # drop whitespace, but keep one space where a command meets a letter ("\cot x" is not "\cotx")
    s = re.sub(r"(\\[A-Za-z]+)?\s+(?=([A-Za-z])?)", lambda m: (m[1] or "") + " " * bool(m[1] and m[2]), s)
    s = _LHS.sub("", re.sub(r"^\(([A-Z])\)$", r"\1", s.rstrip(".")))  # (B) -> B, then "x=5" -> "5"
    s = s.lower() if re.fullmatch(r"[A-Za-z]{2,}", s) else re.sub(r"^(\d+)_\{(\d+)\}$", r"\1_\2", s)  # 2516_{8}
    s = re.sub(r"^(\d+)(\\frac(?:\{\d+\}|\d){2})$", r"(\1+\2)", s)  # mixed number: 1\frac{4}{5} = 9/5
    s = re.sub(r"^(-?\d+\.?\d*)e([+-]?\d+)$", r"\1\\times10^{\2}", s)  # scientific: 3.8e-5 = 3.8\times10^{-5}
    return s.replace(",", "") if _THOUSANDS.fullmatch(s) else s


# ---------------------------------------------------------------- structured answers
_OPEN, _CLOSE = "([{", ")]}"
_MATRIX = re.compile(r"\\begin\{([pbvB]?matrix|array)\}(?:\{[^}]*\})?(.*)\\end\{\1\}", re.S)


def closing(s, i, opens="{", closes="}"):
    """Index of the bracket that closes the one opened at s[i] (counting only these kinds), or -1."""
    depth = 0
    for j in range(i, len(s)):
        depth += (s[j] in opens) - (s[j] in closes)
        if depth == 0:
            return j
    return -1


def split_top(s, sep):
    """Split s at each sep that is not inside brackets."""
    parts, depth, start = [], 0, 0
    for i, c in enumerate(s):
        depth += (c in _OPEN) - (c in _CLOSE)
        if depth == 0 and i >= start and s.startswith(sep, i):
            parts.append(s[start:i])
            start = i + len(sep)
    return parts + [s[start:]]


def _expand_pm(parts):
    """"1\\pm\\sqrt{5}" is the two answers 1+\\sqrt{5} and 1-\\sqrt{5}."""
    return [q for p in parts for q in ([p.replace("\\pm", pm, 1) for pm in "+-"] if p.count("\\pm") == 1 else [p])]


def structure(s):
    """(kind, brackets, parts) of a normalized answer. Kinds: scalar; tuple (ordered; brackets must match:
    "(]" for an interval, "2x3" for a matrix's shape, a column vector is "()"); set (unordered: \\{..\\},
    plain comma lists and "a\\pm b"); union (of intervals, unordered)."""
    m = _MATRIX.fullmatch(s)
    if m:
        rows = [split_top(r, "&") for r in split_top(m[2], "\\\\") if r]
        shape = "()" if all(len(r) == 1 for r in rows) else f"{len(rows)}x{','.join(str(len(r)) for r in rows)}"
        return "tuple", shape, [cell for r in rows for cell in r]
    parts = split_top(s, "\\cup")
    if len(parts) > 1:
        return "union", "", parts
    if s.startswith("\\{") and closing(s, 1, _OPEN, _CLOSE) == len(s) - 1 and s.endswith("\\}"):
        return "set", "", _expand_pm(split_top(s[2:-2], ","))
    inner = split_top(s[1:-1], ",")  # "(a)(b)" is a product, not a tuple: the bracket must close at the end
    if s[:1] in "([" and s[-1:] in ")]" and closing(s, 0, _OPEN, _CLOSE) == len(s) - 1 and len(inner) > 1:
        return "tuple", s[0] + s[-1], inner
    parts = _expand_pm(split_top(s, ","))
    return ("set" if len(parts) > 1 else "scalar"), "", parts


# ---------------------------------------------------------------- LaTeX -> sympy
_FUNCS = ["sin", "cos", "tan", "cot", "sec", "csc", "asin", "acos", "atan", "sinh", "cosh", "tanh", "log", "exp"]
_GREEK = "alpha beta gamma delta epsilon zeta eta theta iota kappa mu nu xi rho sigma tau phi chi psi omega".split()
_WORDS = {**{n: f" {n} " for n in _FUNCS + _GREEK}, "pi": " pi ", "infty": " oo ", "cdot": "*", "times": "*",
          "div": "/", "{": "(", "}": ")", "lfloor": " floor(", "rfloor": ")", "lceil": " ceiling(", "rceil": ")",
          "ln": " log ", "arcsin": " asin ", "arccos": " acos ", "arctan": " atan ", "lambda": " lamda "}
_CHARS = {"+": "+", "-": "-", "*": "*", "/": "/", "(": "(", ")": ")", "[": "(", "]": ")", " ": ""}
_TOKEN = re.compile(r"\\([A-Za-z]+|.)|(\d+\.?\d*|\.\d+)|(.)", re.S)  # command | number | one character
_GLOBALS = {n: getattr(sympy, n) for n in _FUNCS + ["Integer", "Float", "Rational", "Symbol", "Add", "Mul", "Pow",
            "factorial", "factorial2", "binomial", "Abs", "floor", "ceiling", "pi", "oo"]}
_LOCALS = {"e": sympy.E, "i": sympy.I}  # Euler's e and the imaginary unit; E and I (choices) stay symbols
_INERT = {n: sympy.Function(n) for n in ("factorial", "factorial2", "binomial")}  # kept unevaluated for _too_big
_TRANSFORMS = standard_transformations + (implicit_multiplication_application,)
MAX_DIGITS = 10**5  # reject any power whose value would have more digits than this (or n! with n > 10^4)


def _arg(s, i, brackets="{}"):
    """The macro argument at s[i]: a {group}, a \\command or one character -> (python code, next index)."""
    if s.startswith(brackets[0], i):
        if (j := closing(s, i, *brackets)) < 0:
            raise ValueError("unbalanced braces")
        return "(" + latex_to_python(s[i + 1:j]) + ")", j + 1
    m = re.compile(r"\s*(\\[A-Za-z]+|[^\s\\{}])").match(s, i)  # None (-> TypeError) when there is none
    return "(" + latex_to_python(m[1]) + ")", m.end()


def latex_to_python(s):
    """Python-syntax code for sympy's parse_expr; raises ValueError/KeyError on anything it does not know."""
    out, i, bars = [], 0, 0
    while i < len(s):
        m = _TOKEN.match(s, i)
        (name, number, c), i = m.groups(), m.end()
        if number:
            out.append(f" {number} ")
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
            if not (re.fullmatch(r"\(\s*\w+\s*\)", a) and out and re.fullmatch(r"\s*[A-Za-z]\w*\s*", out[-1])):
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
    """|value| of a constant sub-expression (its parts already passed _too_big), or None if it has symbols."""
    if x.free_symbols:
        return None
    x = x.replace(lambda n: isinstance(n, AppliedUndef), lambda n: getattr(sympy, n.func.__name__)(*n.args))
    return abs(complex(sympy.N(x)))


def _too_big(expr):
    """Would evaluating expr build a gigantic number? Checked bottom-up, so inner towers are caught first."""
    for node in sympy.postorder_traversal(expr):
        if isinstance(node, sympy.Pow) and (exp := _size(node.exp)) is not None:
            base = _size(node.base)  # base**exp has about exp * log10|base| digits
            scale = 1.0 if base is None else 0.0 if base in (0.0, 1.0) else max(1.0, abs(math.log10(base)))
            if exp * scale > MAX_DIGITS:
                return True
        elif isinstance(node, AppliedUndef) and (n := _size(node.args[0])) is not None and n > 10**4:
            return True
    return False


def to_sympy(s):
    """sympy expression for one normalized scalar answer, or None when unparseable or too big."""
    try:
        code = latex_to_python(s)
        if _too_big(parse_expr(code, {**_LOCALS, **_INERT}, _TRANSFORMS, dict(_GLOBALS), evaluate=False)):
            return None
        expr = parse_expr(code, dict(_LOCALS), _TRANSFORMS, dict(_GLOBALS))
        return expr if isinstance(expr, sympy.Expr) else None
    except Exception:  # SyntaxError, KeyError, RecursionError, ...: not an expression we can use
        return None
