"""Tests for nano_forkrl/assignment/cli.py: the student copy that `build` writes.

The copy imports, holds one raise per region and no line of a removed solution, keeps tests and tutorials,
leaves out what only the solution repository has, and becomes the solution again once the bodies are put back.
Grading is tested in test_grade.py.
"""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from nano_forkrl.assignment.cli import build, main
from nano_forkrl.assignment.markers import MarkerError, scan
from nano_forkrl.assignment.parts import PARTS

ROOT = Path(__file__).resolve().parents[2]
MARKER = re.compile(r"^\s*# (BEGIN|END) SOLUTION")


def solution_regions():
    """{file: [(part, [region lines without markers])]} of the solution repository."""
    out = {}
    for rel, spans in scan(ROOT).items():
        lines = (ROOT / rel).read_text().splitlines(keepends=True)
        out[rel] = [(part, lines[b:e - 1]) for part, b, e, _ in spans]
    return out


def without_markers(text):
    return "".join(s for s in text.splitlines(keepends=True) if not MARKER.match(s))


@pytest.fixture(scope="module")
def copy(tmp_path_factory):
    out = tmp_path_factory.mktemp("hw") / "full"
    done = build(out)
    return out, done


def test_layout_keeps_tests_and_tutorials_and_leaves_out_the_rest(copy):
    out, done = copy
    assert done["parts"] == list(PARTS) and set(done["files"]) == set(solution_regions())
    listing = json.loads((out / "assignment.json").read_text())
    assert listing["parts"] == list(PARTS) and listing["files"] == done["files"]
    assert listing["functions"]["nano_forkrl/entropy.py:token_entropy"] == "entropy"
    for kept in ("README.md", "tests/conftest.py", "tests/test_entropy.py", "tutorials/README.md"):
        assert (out / kept).is_file(), kept
    assert sorted(p.name for p in (out / "tutorials").glob("*.ipynb")) == \
        sorted(p.name for p in (ROOT / "tutorials").glob("*.ipynb"))
    names = {p.name for p in out.rglob("*")}
    assert not names & {".git", "__pycache__", ".pytest_cache", "runs", "test_assignment.py", "ASSIGNMENT.md",
                        "HANDOUT.md", "hidden.py", "hidden_nn.py",
                        "test_autograder.py"}


def test_the_copy_has_the_handout_public_expected_outputs_and_no_reference_ranking(copy):
    out, _ = copy
    readme = (out / "README.md").read_text()
    assert "python -m nano_forkrl.assignment submit" in readme and "inert" not in readme
    assert "| `mask` | [06_masking_forking_tokens.ipynb](tutorials/06_masking_forking_tokens.ipynb) | 10 |" in readme
    expected = json.loads((out / "assignment_expected.json").read_text())
    from nano_forkrl.assignment.cases import load

    cases = load()
    assert set(expected) == {k for k, c in cases.items() if c.public} and len(expected) >= 9
    assert "ASSIGNMENT.md" not in (out / "tutorials" / "README.md").read_text()  # no link to a page left out
    masking_tests = (out / "tests" / "test_masking.py").read_text()
    assert "def brute_force" not in masking_tests and "def test_hand_example_and_ties" in masking_tests


def test_each_region_is_one_raise_naming_its_part_and_tutorial(copy):
    out, _ = copy
    for rel, regions in solution_regions().items():
        text = (out / rel).read_text()
        assert "SOLUTION" not in text, rel
        raises = re.findall(r'^( *)raise NotImplementedError\("(\w+): see tutorials/([\w.]+)"\)$', text, re.M)
        assert [part for _, part, _ in raises] == [part for part, _ in regions], rel
        for (indent, part, notebook), (_, body) in zip(raises, regions):
            assert notebook == PARTS[part].tutorial
            assert indent == re.match(r" *", body[0])[0], (rel, part)  # the body's indentation
        compile(text, rel, "exec")


def test_the_copy_imports_and_blank_functions_raise_their_message(copy):
    out, _ = copy
    code = ("import torch, nano_forkrl, nano_forkrl.train, nano_forkrl.cs336, nano_forkrl.tools.evaluate\n"
            "from nano_forkrl.entropy import token_entropy\n"
            "from nano_forkrl.advantage import group_advantages\n"
            "print(nano_forkrl.__file__)\n"
            "for f, args in ((token_entropy, (torch.zeros(2, 3),)), (group_advantages, ([1.0, 0.0], 2))):\n"
            "    try:\n        f(*args)\n    except NotImplementedError as e:\n        print(e)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=out, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [str(out / "nano_forkrl" / "__init__.py"),
                                        "entropy: see tutorials/05_entropy.ipynb",
                                        "advantage: see tutorials/04_advantages.ipynb"]


def _text(path):
    """A file's text; for a notebook every string in it (sources and saved outputs), unescaped."""
    text = path.read_text(errors="replace")
    if path.suffix != ".ipynb":
        return text

    def strings(x):
        if isinstance(x, str):
            yield x
        for v in x.values() if isinstance(x, dict) else x if isinstance(x, list) else ():
            yield from strings(v)
    return "\n".join(strings(json.loads(text)))


def _text_files(root):
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix not in {".png", ".pyc"}:
            yield path.relative_to(root), _text(path)


def without_regions(text):
    kept, inside = [], False
    for line in text.splitlines(keepends=True):
        if MARKER.match(line):
            inside = "BEGIN" in line
        elif not inside:
            kept.append(line)
    return "".join(kept)


def test_no_line_of_a_removed_solution_is_in_the_copy(copy):
    out, _ = copy
    removed = {s.strip() for regions in solution_regions().values() for _, body in regions for s in body}
    files = dict(_text_files(out))
    # what the solution repository also has outside its regions is no solution's own
    given = "\n".join(without_regions(_text(ROOT / f)) for f in files if (ROOT / f).is_file())
    own = removed - {s.strip() for s in given.splitlines()}
    quoted = {s for s in own if len(s) >= 20 and s not in given}  # not even inside a longer given line
    assert len(own) > 150 and len(quoted) > 100
    for rel, text in files.items():
        lines = {s.strip() for s in text.splitlines()}
        assert not own & lines, (rel, own & lines)
        assert not [s for s in quoted if s in text], rel


def test_putting_the_bodies_back_gives_the_solution_without_markers(copy):
    out, _ = copy
    for rel, regions in solution_regions().items():
        bodies = iter(regions)
        student = (out / rel).read_text().splitlines(keepends=True)
        lines = ["".join(next(bodies)[1]) if "raise NotImplementedError(" in s else s for s in student]
        assert "".join(lines) == without_markers((ROOT / rel).read_text()), rel


def test_tutorial_links_point_at_the_definitions_in_the_copy(copy):
    out, _ = copy
    link = re.compile(r"\[`([A-Za-z_]\w*)`\]\((\.\./[^)#\s]+\.py)#L(\d+)\)")
    checked = 0
    for nb in (out / "tutorials").glob("*.ipynb"):
        for name, target, line in link.findall(nb.read_text()):
            source = (out / "tutorials" / target).resolve().read_text().splitlines()
            defines = re.compile(rf"^\s*(def|class)\s+{name}\b|^{name}\s*[:=]")
            if any(defines.search(s) for s in source):  # else a stale link of the solution repository itself
                assert defines.search(source[int(line) - 1]), (nb, name, line)
                checked += 1
    assert checked > 10


def test_some_parts_only(tmp_path):
    build(tmp_path / "hw", ["advantage", "loss"])
    for rel, regions in solution_regions().items():
        text = (tmp_path / "hw" / rel).read_text()
        assert "SOLUTION" not in text
        blanked = {p for p in ("advantage", "loss") if any(part == p for part, _ in regions)}
        assert {m for m in re.findall(r'NotImplementedError\("(\w+):', text)} == blanked, rel
        if not blanked:
            assert text == without_markers((ROOT / rel).read_text()), rel
    assert json.loads((tmp_path / "hw" / "assignment.json").read_text())["parts"] == ["advantage", "loss"]


def test_refusals(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    for out in (tmp_path / "full", ROOT / "hw"):
        with pytest.raises(SystemExit, match="new or empty folder outside"):
            build(out)
    fake = tmp_path / "repo"
    (fake / "nano_forkrl").mkdir(parents=True)
    (fake / "nano_forkrl" / "m.py").write_text("def f():\n    # BEGIN SOLUTION entropy\n    return 1\n")
    with pytest.raises(MarkerError, match=r"^nano_forkrl/m.py:2: BEGIN SOLUTION entropy has no END"):
        build(tmp_path / "out1", root=fake)
    with pytest.raises(SystemExit, match="no solution region of"):
        (fake / "nano_forkrl" / "m.py").write_text("def f():\n    return 1\n")
        build(tmp_path / "out2", ["loss"], root=fake)


def test_notebooks_quoting_a_solution(tmp_path):
    fake = tmp_path / "repo"
    (fake / "nano_forkrl").mkdir(parents=True)
    (fake / "tutorials").mkdir()
    (fake / "nano_forkrl" / "m.py").write_text(
        "def f(x):\n    # BEGIN SOLUTION entropy\n    return x.exp().sum() * 12345\n    # END SOLUTION\n")
    shown = {"output_type": "stream", "name": "stdout", "text": ["    return x.exp().sum() * 12345\n"]}
    cell = {"cell_type": "code", "metadata": {}, "outputs": [shown],
            "source": ["import inspect\n", "print(inspect.getsource(f))"]}
    (fake / "tutorials" / "a.ipynb").write_text(json.dumps({"cells": [cell], "metadata": {}}))
    assert build(tmp_path / "out", ["entropy"], root=fake)["cleared"] == ["tutorials/a.ipynb"]
    assert json.loads((tmp_path / "out" / "tutorials" / "a.ipynb").read_text())["cells"][0]["outputs"] == []
    cell["source"] = ["def f(x):\n", "    return x.exp().sum() * 12345\n"]
    (fake / "tutorials" / "a.ipynb").write_text(json.dumps({"cells": [cell], "metadata": {}}))
    with pytest.raises(MarkerError, match="tutorials/a.ipynb: cell 0 quotes a line of a removed solution"):
        build(tmp_path / "out2", ["entropy"], root=fake)


def test_cli_build(tmp_path, capsys):
    main(["build", str(tmp_path / "hw"), "--parts", "entropy"])
    said = capsys.readouterr().out
    assert "2 functions blanked, parts entropy" in said
    assert "students write in nano_forkrl/entropy.py\n" in said
