"""Equations, inequalities and chains in normalized answers, for verify.py.

  * sides(s): "a > b > c" -> ["c", "<", "b", "<", "a"] (read left to right with only
    <, <=, =, ≠, ≈ left);
  * chain_value(s): a chain of "=" / "≈" stands for its final value: "x = 5+5+1 = 11" -> "11",
    "x = 1/3 ≈ 0.33" -> "1/3" (the exact value before the first ≈), "x ≈ 11" -> "11";
  * as_interval(s): the set an inequality in one variable states: "-2 <= x <= 7" -> "[-2,7]",
    "x > 5" -> "(5,\\infty)", "1 <= |z| <= 2" -> "[-2,-1]\\cup[1,2]"; None for anything else;
  * same_up_to_factor(a, b): one equation or inequality each, equal after moving everything to one
    side and multiplying by a constant (non-zero for = and ≠, positive for < and <=):
    "-x > -1" is "x < 1".
"""
import re

import sympy

from nano_forkrl.verifier.symbolic import to_sympy

# latex.normalize wrote \leq as <=, \ne as ≠, \approx as ≈
RELATION = re.compile(r"(<=|>=|≠|≈|=|<|>)")
_FLIP = {">": "<", ">=": "<="}
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+|\\frac\{\d+\}\{\d+\}|\\infty)")
# x, a_1, f(x): what an interval is about
_VARIABLE = re.compile(r"[A-Za-z](?:_\{?\w+\}?)?(?:\([A-Za-z]\))?")
_ABS = re.compile(rf"\|({_VARIABLE.pattern})\|")


def sides(s):
    """[side, relation, side, ...] of s, turned round when it only uses > and >=."""
    parts = RELATION.split(s)
    relations = set(parts[1::2])
    if relations & {">", ">="} and not relations & {"<", "<="}:
        return [_FLIP.get(p, p) if k % 2 else p for k, p in enumerate(parts)][::-1]
    return parts


def chain_value(s):
    """The final value of a chain of = and ≈ (see the module docstring); s itself
    for anything else."""
    parts = RELATION.split(s)
    relations = parts[1::2]
    if "" in parts or not relations or not set(relations) <= {"=", "≈"}:
        return s
    if "≈" in relations:
        k = relations.index("≈")
        # the exact value before the approximation, else it
        return parts[2 * k] if k > 0 else parts[2]
    return parts[-1] if len(relations) >= 2 else s  # "x = 5" is left to normalize's label rules


def _negate(bound):
    return bound[1:] if bound.startswith("-") else "-" + bound


def as_interval(s):
    """The interval (or union of two) an inequality in one variable states, as a
    normalized string; or None."""
    parts = sides(s)
    relations = parts[1::2]
    if not relations or not set(relations) <= {"<", "<="} or len(relations) > 2 or "" in parts:
        return None
    if len(relations) == 1:  # "x < 5" or "5 < x"
        if _NUMBER.fullmatch(parts[0]):
            low, high = parts[0], "\\infty"
        else:
            low, high = "-\\infty", parts[2]
        variable = parts[0] if high != "\\infty" else parts[2]
        relations = ["<", relations[0]] if high != "\\infty" else [relations[0], "<"]
    else:
        low, variable, high = parts[0], parts[2], parts[4]
    if not (_NUMBER.fullmatch(low) and _NUMBER.fullmatch(high)):
        return None
    brackets = "[" if relations[0] == "<=" else "(", "]" if relations[1] == "<=" else ")"
    if _VARIABLE.fullmatch(variable):
        return f"{brackets[0]}{low},{high}{brackets[1]}"
    # a <= |z| <= b, a >= 0
    if _ABS.fullmatch(variable) and len(parts) == 5 and not low.startswith("-"):
        mirrored = {"(": ")", "[": "]", ")": "(", "]": "["}  # the negative half: -high to -low
        negative = f"{mirrored[brackets[1]]}{_negate(high)},{_negate(low)}{mirrored[brackets[0]]}"
        return f"{negative}\\cup{brackets[0]}{low},{high}{brackets[1]}"
    return None


def same_up_to_factor(a, b):
    """One relation each, the same kind, and lhs - rhs of one a constant multiple of the other's."""
    parts_a, parts_b = sides(a), sides(b)
    if len(parts_a) != 3 or len(parts_b) != 3 or parts_a[1] != parts_b[1] or parts_a[1] == "≈":
        return False
    sides_a = [to_sympy(p) for p in parts_a[::2]]
    sides_b = [to_sympy(p) for p in parts_b[::2]]
    if None in sides_a + sides_b:
        return False
    da, db = sides_a[1] - sides_a[0], sides_b[1] - sides_b[0]
    if not (da.free_symbols and db.free_symbols) or da == 0 or db == 0:
        return False  # "1 = 1" and "2 = 2" are not answers that could be scaled into each other
    ratio = sympy.simplify(da / db)
    if ratio.free_symbols or ratio.has(sympy.nan, sympy.zoo) or not ratio.is_finite or ratio == 0:
        return False
    return bool(ratio.is_positive) if parts_a[1] in ("<", "<=") else bool(ratio.is_nonzero)
