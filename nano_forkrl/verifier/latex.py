"""LaTeX answer strings -> canonical strings and structures, for verify.py (symbolic.py
turns them into sympy).

normalize(s): Hendrycks-MATH style clean-up: \\dfrac -> \\frac; no \\left, \\right, units, degrees,
  \\%, \\$, spaces, \\[ \\], \\( \\) or \\boxed{} around the answer, final "." or ","; 1,000 -> 1000
  (but "1, 000" is a list); 3e5 -> 3\\times10^{5}; x = 5 -> 5; (x,y) = (1,2) -> (1,2); x=1, x=2 ->
  1,2; \\text{(B)} -> B; East -> east; \\leq -> <=; 1; 2 -> 1,2; mixed numbers 1\\frac45 and 1 4/5
  -> (1+\\frac45) (= 9/5, not 4/5 or 14/5).
structure(s): (kind, brackets, parts): scalar, tuple (ordered), set (unordered)
or union of intervals.
plain(s): look-alike minus signs (U+2212, dashes, small and full-width hyphen-minus) read as "-";
  invisible characters (bidi marks and isolates, zero-width spaces and joiners, byte-order mark,
  soft hyphen, NUL) dropped.
Every rule errs towards "not equal": labels are dropped only when they cannot matter (one variable,
or the whole answer), and a comma followed by a space never joins digits into one number.
"""
import re

# a longer "answer" is not an answer (verify.is_equivalent; tasks/data.py refuses such gold)
MAX_CHARS = 1000

# ---------------------------------------------------------------- canonical string
_MINUS = "\u2212\u2010\u2011\u2012\u2013\u2014\u2015\ufe63\uff0d"  # what a model may write for "-"
# dropped: NUL, soft hyphen, bidi marks and isolates, zero-width spaces and joiners, word
# joiner, byte-order mark
_INVISIBLE = "\x00\u00ad\u061c\u2060\ufeff" + "".join(map(chr, [*range(0x200B, 0x2010),
                                                               *range(0x202A, 0x202F),
                                                               *range(0x2066, 0x206A)]))
_PLAIN = str.maketrans({**dict.fromkeys(_MINUS, "-"), **dict.fromkeys(_INVISIBLE)})  # None: dropped
_DROP = ["\\displaystyle", "\\left.", "\\right.", "^{\\circ}", "^\\circ", "\\circ", "°", "\\%", "%",
         "\\$", "$", "\\!", "\\,", "\\;", "\\:", "\\quad"]
_SWAP = [("\\dfrac", "\\frac"), ("\\tfrac", "\\frac"), ("\\cfrac", "\\frac"), ("\\mbox", "\\text"),
         ("\\mp", "\\pm"), ("\\textbf", "\\text"), ("\\textrm", "\\text"),
         ("\\textnormal", "\\text"), ("\\mathrm", "\\text"), ("≤", "<="), ("≥", ">="), (";", ",")]
# "≠", not "!=": "5!=120" is a factorial
_RELATIONS = {"le": "<=", "leq": "<=", "leqslant": "<=", "ge": ">=", "geq": ">=", "geqslant": ">=",
              "lt": "<", "gt": ">", "ne": "≠", "neq": "≠", "approx": "≈"}
_RELATION = re.compile(r"\\(%s)(?![A-Za-z])" % "|".join(sorted(_RELATIONS, key=len, reverse=True)))
# \[ 5 \] or \( 5 \), nothing inside
_DELIMITED = re.compile(r"\\[(\[]((?:(?!\\[()\[\]]).)*)\\[)\]]", re.S)
_ESCAPED = re.compile(r"(?<!\\)\\\\(?=(?:[dtc]?frac|sqrt|left|right|text|boxed|pi|cdot|times|infty"
                     r"|leq?|geq?|neq?|lt|gt|in|approx)(?![A-Za-z]))")
_AND_OR = re.compile(r"\\text\{\s*(?:and|or)\s*\}|\s+(?:and|or)\s+|(?<=[)\]])(?:and|or)(?=[(\[])")
# "5\text{ cm}^2" -> "5"
_UNIT = re.compile(r"(?<=[\w})\].])\s*\\text\{\s*[A-Za-z][^{}]*\}(?:\^\{?\d\}?)?")
_NAME = r"\\?[A-Za-z]+(?:_\{?\w+\}?)?"  # x, AB, x_1, V_{1}, \alpha
# x=, f(x)=, (x,y)=, x\in, and geometric names: |AB|=, V_1:V_2=, \frac{NO}{BO}=: the
# whole answer is named
_LHS = re.compile(rf"^(?:{_NAME}(?:\([A-Za-z]\))?|\([A-Za-z](?:,[A-Za-z])+\)|\|{_NAME}\|"
                  rf"|{_NAME}(?::{_NAME})+"
                  rf"|\\frac\{{{_NAME}\}}\{{{_NAME}\}})(?:=|\\in(?![a-z]))(?!.*=)")
_LABEL = re.compile(r"([A-Za-z](?:_\{?\w+\}?)?)=(?!.*=)")  # x= in front of one element of a list
# "1 000"; "1 2" is no number (kept as "1␣2", which equals nothing but itself)
_SPACED_THOUSANDS = re.compile(r"-?[1-9]\d{0,2}(?: \d{3})+(?:\.\d+)?")
_STOP = r"(?:and|or|not|less|more|than|least|most|plus|minus|times|over)"
_UNIT_WORDS = re.compile(rf"^([+-]?\d+(?:\.\d+)?)\s+(?!{_STOP}\b)[a-z]+"
                         rf"(?:\s+(?!{_STOP}\b)[a-z]+)?$")
_GROUP_LABEL = re.compile(r"\s*([A-Za-z](?:_\{?\w+\}?)?)\s*=\s*([^=]+)")


def _label_groups(s):
    """"p=5,q=2; p=7,q=2" (solutions as labelled groups) -> "(5,2),(7,2)";
    anything else unchanged."""
    groups = [split_top(g, ",") for g in s.split(";")]
    matches = [[_GROUP_LABEL.fullmatch(p) for p in g] for g in groups]
    if len(groups) < 2 or not all(len(g) > 1 and all(g) for g in matches):
        return s
    labels = {tuple(m[1] for m in g) for g in matches}
    if len(labels) != 1:
        return s
    return ",".join("(" + ",".join(m[2].strip() for m in g) + ")" for g in matches)


# "1,000" is a thousand; "1,2" and "0,125" lists
_THOUSANDS = re.compile(r"-?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?")


def plain(s):
    """s with look-alike minus signs as "-" and invisible characters removed (see the
    module docstring)."""
    return s.translate(_PLAIN)


def normalize(s):
    """Canonical string form of one answer: equal strings mean equal answers."""
    # "32, 349" is a list of two numbers; "32,349" and "32{,}349" one number
    listy = re.search(r"(?<!\{),\s", s)
    m = _DELIMITED.fullmatch(s.strip())
    # "\\frac" (an escaped backslash, as in JSON) is \frac
    s = _ESCAPED.sub(r"\\", m[1] if m else s.strip())
    # a gold written \boxed{5}
    s = s[7:-1] if s.startswith("\\boxed{") and closing(s, 6) == len(s) - 1 else s
    s = _label_groups(s)
    for old in _DROP:
        s = s.replace(old, "")
    # "28 percent" is 28\%, and % is dropped
    s = re.sub(r"(?<=[\d}])\s*(?:percentage|percent|pct)\b", "", s)
    s = re.sub(r"\s!=\s*", "≠", s)  # "x != 3"; "5!=120" (no space) stays a factorial
    for old, new in _SWAP:
        s = s.replace(old, new)
    # 14{,}916; \leq -> <=
    s = _RELATION.sub(lambda r: _RELATIONS[r[1]], re.sub(r"\{\s*,\s*\}", ",", s))
    # also "\ ", "\(", not "\\("
    s = re.sub(r"\\(?:left|right)(?![A-Za-z])|(?<!\\)\\(?=[ ()[\]])", "", s)
    s = _UNIT.sub("", _AND_OR.sub(",", s))
    # a \text{...} left over is the answer itself: \text{(B)}
    s = re.sub(r"\\text\{([^{}]*)\}", r"\1", s)
    # 4 4/9 is 40/9, not 44/9
    s = re.sub(r"^([+-]?)(\d+)\s+(\d+)/(\d+)$", r"\1(\2+\\frac{\3}{\4})", s.strip())
    s = _UNIT_WORDS.sub(r"\1", s)  # "125 miles" -> 125
    if _SPACED_THOUSANDS.fullmatch(s):
        s = s.replace(" ", "")
    s = re.sub(r"(?<![_^\w.])(\d+(?:\.\d+)?)\s+(?=\d)", "\\1\u2423", s)
    # drop whitespace, but keep one space where a command meets a letter ("\cot x" is not "\cotx")
    s = re.sub(r"(\\[A-Za-z]+)?\s+(?=([A-Za-z])?)",
               lambda m: (m[1] or "") + " " * bool(m[1] and m[2]), s)
    s = re.sub(r"(?<!\.)[.,]$", "", s)  # sentence punctuation, but not "1,2,3,..."
    s = _LHS.sub("", re.sub(r"^\(([A-Z])\)$", r"\1", s))  # (B) -> B, then "x=5" -> "5"
    # a bare {group} shows its content
    s = s[1:-1] if s.startswith("{") and closing(s, 0) == len(s) - 1 else s
    parts = split_top(s, ",")
    labels = [_LABEL.match(p) for p in parts]
    # x=1,x=-2: the values of one variable
    if len(parts) > 1 and all(labels) and len({m[1] for m in labels}) == 1:
        s = ",".join(p[m.end():] for p, m in zip(parts, labels))
    # 2516_{8}
    s = s.lower() if re.fullmatch(r"[A-Za-z]{2,}", s) else re.sub(r"^(\d+)_\{(\d+)\}$", r"\1_\2", s)
    # mixed: -1\frac{4}{5} = -9/5
    s = re.sub(r"^([+-]?)(\d+)(\\frac(?:\{\d+\}|\d){2})$", r"\1(\2+\3)", s)
    # scientific: 3.8e-5 = 3.8\times10^{-5}
    s = re.sub(r"^(-?\d+\.?\d*)e([+-]?\d+)$", r"\1\\times10^{\2}", s)
    return s.replace(",", "") if _THOUSANDS.fullmatch(s) and not listy else s


# ---------------------------------------------------------------- structured answers
_OPEN, _CLOSE = "([{", ")]}"
_MATRIX = re.compile(r"\\begin\{([pbvB]?matrix|array)\}(?:\{[^}]*\})?(.*)\\end\{\1\}", re.S)


def closing(s, i, opens="{", closes="}"):
    """Index of the bracket that closes the one opened at s[i] (counting only
    these kinds), or -1."""
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
    return [q for p in parts
            for q in ([p.replace("\\pm", pm, 1) for pm in "+-"] if p.count("\\pm") == 1 else [p])]


def structure(s):
    """(kind, brackets, parts) of a normalized answer. Kinds: scalar; tuple (ordered; brackets must
    match: "(]" for an interval, "2x3" for a matrix's shape, a column vector is "()"); set
    (unordered: \\{..\\}, plain comma lists and "a\\pm b"); union (of intervals, unordered)."""
    # (matrix)
    m = _MATRIX.fullmatch(s) or (s[:1] + s[-1:] in ("()", "[]") and _MATRIX.fullmatch(s[1:-1]))
    if m:
        rows = [split_top(r, "&") for r in split_top(m[2], "\\\\") if r]
        widths = ",".join(str(len(r)) for r in rows)
        shape = "()" if all(len(r) == 1 for r in rows) else f"{len(rows)}x{widths}"
        return "tuple", shape, [cell for r in rows for cell in r]
    parts = split_top(s, "\\cup")
    if len(parts) > 1:
        return "union", "", parts
    if s.startswith("\\{") and closing(s, 1, _OPEN, _CLOSE) == len(s) - 1 and s.endswith("\\}"):
        return "set", "", _expand_pm(split_top(s[2:-2], ","))
    # "(a)(b)" is a product, not a tuple: the bracket must close at the end
    inner = split_top(s[1:-1], ",")
    bracketed = s[:1] in "([" and s[-1:] in ")]" and closing(s, 0, _OPEN, _CLOSE) == len(s) - 1
    if bracketed and len(inner) > 1:
        return "tuple", s[0] + s[-1], inner
    parts = _expand_pm(split_top(s, ","))
    return ("set" if len(parts) > 1 else "scalar"), "", parts
