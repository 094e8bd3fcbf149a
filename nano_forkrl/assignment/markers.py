"""Solution regions: finding, checking and blanking the code between the two solution markers.

A region is two comment lines inside a function body, at the indentation of the body's statements,
around whole statements of that body (never the docstring):

    def token_entropy(logits):
        '''The docstring (the equation) stays.'''
        # BEGIN SOLUTION entropy
        ...the statements a student writes...
        # END SOLUTION

`regions` refuses, with file and line, a marker that is malformed, unbalanced, nested, indented
unlike its partner, outside a function, splitting a statement, or naming a part unknown to
assignment_parts.PARTS. Markers are found as comment tokens, so the same text inside a string is no
marker. `blank` replaces a region by `raise NotImplementedError("<part>: see tutorials/<notebook>")`
at the region's indentation.
"""
import ast
import io
import re
import tokenize
from pathlib import Path

from nano_forkrl.assignment.parts import PARTS

MARKER = re.compile(r"#\s*(begin|end)\s+solution\b\s*(.*)", re.IGNORECASE)


class MarkerError(ValueError):
    """A solution marker that cannot be used; the message starts with file:line."""


def regions(path, text=None):
    """[(part, BEGIN line, END line, function name)] of one Python file (1-based lines), checked."""
    text = Path(path).read_text() if text is None else text
    where, found, open_at, depth = str(path), [], None, 0
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.OP and tok.string in "([{)]}":
            depth += 1 if tok.string in "([{" else -1
        m = MARKER.fullmatch(tok.string) if tok.type == tokenize.COMMENT else None
        if not m:
            continue
        line, kind, rest = tok.start[0], m[1].lower(), m[2].strip()
        if depth:
            raise MarkerError(f"{where}:{line}: the marker splits a statement (it is inside "
                              "brackets)")
        marker = f"# BEGIN SOLUTION {rest}" if kind == "begin" else "# END SOLUTION"
        canonical = tok.string == marker
        if not canonical or tok.line.strip() != tok.string or (kind == "begin") != bool(rest):
            raise MarkerError(f"{where}:{line}: markers are lines of their own, exactly '# BEGIN "
                              f"SOLUTION <part>' and '# END SOLUTION'; not {tok.line.strip()!r}")
        if kind == "begin" and open_at:
            raise MarkerError(f"{where}:{line}: nested region (the one opened at line {open_at[1]} "
                              "is open)")
        if kind == "end" and not open_at:
            raise MarkerError(f"{where}:{line}: END SOLUTION without a BEGIN SOLUTION before it")
        if kind == "begin":
            if rest not in PARTS:
                raise MarkerError(f"{where}:{line}: unknown part {rest!r} (known: "
                                  f"{', '.join(PARTS)})")
            open_at = (rest, line, tok.start[1])
            continue
        if tok.start[1] != open_at[2]:
            raise MarkerError(f"{where}:{line}: END SOLUTION indented unlike its BEGIN (line "
                              f"{open_at[1]})")
        found.append((open_at[0], open_at[1], line))
        open_at = None
    if open_at:
        raise MarkerError(f"{where}:{open_at[1]}: BEGIN SOLUTION {open_at[0]} has no END SOLUTION")
    return [(part, b, e, _function(where, text, b, e)) for part, b, e in found]


def _function(where, text, b, e):
    """The function of whose body lines b..e (the markers) enclose whole statements;
    else MarkerError."""
    lines = text.splitlines()
    indent = len(lines[b - 1]) - len(lines[b - 1].lstrip())
    funcs = [n for n in ast.walk(ast.parse(text))
             if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    around = [fn for fn in funcs if fn.lineno < b <= fn.body[-1].end_lineno]
    if not around:
        raise MarkerError(f"{where}:{b}: the region is outside a function")
    fn = max(around, key=lambda n: n.lineno)  # the innermost
    if indent != fn.body[0].col_offset:
        raise MarkerError(f"{where}:{b}: markers are indented like the statements of {fn.name}'s "
                          "body")
    if any(s.lineno < n <= s.end_lineno for s in fn.body for n in (b, e)):
        raise MarkerError(f"{where}:{b}: the region splits a statement of {fn.name}")
    inside = [s for s in fn.body if b < s.lineno and s.end_lineno < e]
    if not inside:
        raise MarkerError(f"{where}:{b}: the region holds no statement")
    if ast.get_docstring(fn) is not None and fn.body[0] in inside:
        raise MarkerError(f"{where}:{b}: the region holds the docstring of {fn.name}, which must "
                          "stay")
    covered = {n for s in inside for n in range(s.lineno, s.end_lineno + 1)}
    stray = [n for n in range(b + 1, e) if n not in covered and lines[n - 1].strip()
             and not lines[n - 1].strip().startswith("#")]
    if stray:
        raise MarkerError(f"{where}:{stray[0]}: the region reaches outside the body of {fn.name}")
    return fn.name


def scan(root, package="nano_forkrl"):
    """{path relative to root: regions} of every module of the package that holds a region."""
    found = {}
    for path in sorted((Path(root) / package).rglob("*.py")):
        rel = path.relative_to(root)
        if spans := regions(rel, path.read_text()):
            found[rel.as_posix()] = spans
    return found


def blank(text, spans, parts):
    """(student text, removed lines): a region of `parts` becomes a raise, others lose
    only their markers."""
    lines, out, removed, skip_to = text.splitlines(keepends=True), [], [], 0
    starts, ends = {b: (part, e) for part, b, e, _ in spans}, {e for _, _, e, _ in spans}
    for n, line in enumerate(lines, 1):
        if n in starts and starts[n][0] in parts:
            part, skip_to = starts[n]
            indent = line[:len(line) - len(line.lstrip())]
            out.append(f'{indent}raise NotImplementedError("{part}: see '
                       f'tutorials/{PARTS[part].tutorial}")\n')
            removed += [s.strip() for s in lines[n:skip_to - 1] if s.strip()]
        elif n > skip_to and n not in starts and n not in ends:
            out.append(line)
    return "".join(out), removed
