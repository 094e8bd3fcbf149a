"""Tests for the package as a whole (nano_forkrl/__init__.py's map): module size, line width, the
import graph, the layers and the tests' mirror of the package.

- every module is under 200 lines and no line is over 120 characters (the house width), and at least
  95% of the package's lines are at most 100 characters: modules stay small by splitting concepts,
  not by packing lines;
- the import graph (module-level and function-level imports of nano_forkrl) has no cycle;
- the layers: every import goes to the same folder of its floor or to a lower floor (FLOORS), and
  nothing imports train.py (a tool that needs a training run starts `python -m nano_forkrl.train`);
- the six concepts depend only on each other and on the verifier's helpers: nothing in run/, tools/
  or engines/, so a student can read them without the machinery;
- every module has its test file, tests/<its folder>/test_<its name>.py (a folder's cli.py:
  test_<folder>.py), but for the exceptions named with their reason (UNMIRRORED);
- shipped code names no development set-up.
"""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "nano_forkrl"
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)
CONCEPTS = ("sampling", "verify", "advantage", "entropy", "masking", "loss", "update")
# the floors by import (nano_forkrl/__init__.py): a folder or a top-level file -> its floor
FLOORS = {"utils/": 1, "verifier/": 1, "sampling": 1, "advantage": 1, "entropy": 1, "masking": 1,
          "loss": 1,
          "verify": 2, "update": 2, "engines/": 2, "tasks/": 2,
          "run/": 3, "assignment/": 3,
          "train": 4, "cs336": 4, "tools/": 4, "bench/": 4, "study/": 4}
# modules without a test file of their own, and where they are tested
UNMIRRORED = {
    "assignment/public.py": "the homework's public cases: tests/assignment/test_cases.py (every "
                            "part has public and hidden cases) and test_grade.py (the solution "
                            "passes all)",
    "assignment/hidden.py": "the homework's hidden cases: tested as assignment/public.py is",
    "assignment/hidden_nn.py": "the hidden cases of the network parts: tested as public.py is",
    "run/setup/validate.py": "the config's checks: tests/run/setup/test_config.py, with the config",
}


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


def _room(module):
    """The folder ("run/") or top-level file ("train") of a dotted module name."""
    rel = next(p for p in MODULES if _name(p) == module).relative_to(PACKAGE)
    return rel.parts[0] + "/" if len(rel.parts) > 1 else rel.stem


def test_every_module_has_a_floor():
    rooms = {_room(_name(p)) for p in MODULES if _name(p) != "nano_forkrl"}
    assert rooms == set(FLOORS), f"not on a floor: {sorted(rooms - set(FLOORS))}, " \
                                 f"gone: {sorted(set(FLOORS) - rooms)}"


def test_imports_go_to_the_same_folder_or_a_lower_floor():
    """A module imports from its own folder or from a lower floor: nothing runs up a floor or
    across a floor to another folder, and nothing imports train.py."""
    wrong = []
    for path in MODULES:
        here = _name(path)
        if here == "nano_forkrl":
            continue
        for there in sorted(_imports(path)):
            assert there != "nano_forkrl.train", f"{here} imports nano_forkrl.train"
            a, b = _room(here), _room(there)
            if FLOORS[b] > FLOORS[a] or (FLOORS[b] == FLOORS[a] and a != b):
                wrong.append(f"{here} (floor {FLOORS[a]}) -> {there} (floor {FLOORS[b]})")
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_at_least_95_percent_of_the_lines_are_at_most_100_characters():
    lines = [line for path in MODULES for line in path.read_text().splitlines()]
    wide = sum(len(line) > 100 for line in lines)
    assert wide <= 0.05 * len(lines), f"{wide} of {len(lines)} lines are over 100 characters"


def _test_file(path):
    rel = path.relative_to(PACKAGE)
    name = rel.parent.name if path.name == "cli.py" else path.stem
    return PACKAGE.parent / "tests" / rel.parent / f"test_{name}.py"


def test_every_module_has_its_test_file():
    missing = [str(p.relative_to(PACKAGE)) for p in MODULES
               if p.name not in ("__init__.py", "__main__.py") and not _test_file(p).exists()]
    unexplained = sorted(set(missing) - set(UNMIRRORED))
    assert not unexplained, f"modules without tests/<folder>/test_<name>.py: {unexplained}"
    gone = sorted(set(UNMIRRORED) - {str(p.relative_to(PACKAGE)) for p in MODULES})
    assert not gone, f"UNMIRRORED names modules that do not exist: {gone}"
