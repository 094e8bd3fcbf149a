"""Tests for the package as a whole (nano_forkrl/__init__.py's map): module size, line width, the import graph.

- every module is under 200 lines and no line is over 120 characters (the house width): modules stay small by
  splitting concepts, not by packing lines;
- the import graph (module-level and function-level imports of nano_forkrl) has no cycle;
- the six concepts depend only on each other and on the verifier's helpers: nothing in run/, tools/ or engines/,
  so a student can read them without the machinery;
- shipped code names no development set-up.
"""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "nano_forkrl"
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)
CONCEPTS = ("sampling", "verify", "advantage", "entropy", "masking", "loss", "update")


def _name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path):
    """The nano_forkrl modules `path` imports, anywhere in the file (relative imports resolved)."""
    found, here = set(), _name(path).split(".")
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(here[:len(here) - node.level] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    known = {_name(p) for p in MODULES}
    return {m for m in found if m in known and m != _name(path) and m != "nano_forkrl"}


def test_modules_are_small_and_lines_are_not_packed():
    for path in MODULES:
        lines = path.read_text().splitlines()
        assert len(lines) < 200, f"{path.relative_to(PACKAGE)}: {len(lines)} lines"
        wide = [i for i, line in enumerate(lines, 1) if len(line) > 120]
        assert not wide, f"{path.relative_to(PACKAGE)}: lines over 120 characters: {wide}"


def test_the_import_graph_has_no_cycle():
    graph = {_name(p): _imports(p) for p in MODULES}
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            assert state.get(nxt) != "open", "import cycle: " + " -> ".join(stack + [node, nxt])
            if nxt not in state:
                visit(nxt, stack + [node])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])


def test_the_concepts_do_not_import_the_machinery():
    allowed = {f"nano_forkrl.{c}" for c in CONCEPTS}
    for concept in CONCEPTS:
        deps = _imports(PACKAGE / f"{concept}.py")
        extra = {d for d in deps if d not in allowed and not d.startswith("nano_forkrl.verifier")}
        assert not extra, f"{concept}.py imports {sorted(extra)}"


def test_shipped_code_names_no_development_set_up():
    for path in MODULES:
        text = path.read_text()
        for word in ("../shared", "workplace", "device tool"):
            assert word not in text, f"{path.relative_to(PACKAGE)} mentions {word!r}"
