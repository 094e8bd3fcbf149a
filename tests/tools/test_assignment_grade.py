"""Tests for nano_forkrl/tools/assignment_grade.py: per-part scores, isolation, Gradescope's results.json.

Each grade starts a pytest process per part, so these tests grade a few small parts; every test of every part
failing on a blank copy is checked in one pytest run over all node ids instead.
"""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from nano_forkrl.tools.assignment import build, main
from nano_forkrl.tools.assignment_grade import grade, report
from nano_forkrl.tools.assignment_markers import scan
from nano_forkrl.tools.assignment_parts import PARTS

ROOT = Path(__file__).resolve().parents[2]


def scores(results):
    return {r["part"]: (r["score"], r["passed"], r["run"]) for r in results["parts"]}


def test_the_solution_repository_scores_full_points():
    results = grade(ROOT, ["entropy", "sampling"])
    assert scores(results) == {"entropy": (5.0, 4, 4), "sampling": (10.0, 4, 4)}
    assert re.search(r"^total .* 15\.0 / 15 .*\(100\.0%\)$", report(results), re.M)


def test_blank_part_fails_with_its_message_and_a_broken_module_takes_down_only_its_part(tmp_path):
    out = tmp_path / "hw"
    build(out, ["advantage"])
    (out / "nano_forkrl" / "sampling.py").write_text("def sample_next(:\n")  # a student's syntax error
    results = grade(out, ["advantage", "sampling", "entropy"], jobs=2)
    got = scores(results)
    assert got["advantage"] == (0.0, 0, 15) and got["entropy"] == (5.0, 4, 4)
    assert got["sampling"][0] == 0.0
    table = report(results, tmp_path / "results.json")
    assert "NotImplementedError: advantage: see tutorials/04_advantages.ipynb" in table
    assert re.search(r"^total .* 5\.0 / 25 ", table, re.M)
    written = json.loads((tmp_path / "results.json").read_text())
    assert written["score"] == 5.0 and written["output"] == table
    by_part = {}
    for test in written["tests"]:
        assert set(test) == {"name", "score", "max_score", "output"}
        part = test["name"].split(":")[0]
        by_part[part] = by_part.get(part, 0) + test["max_score"]
        if part == "advantage":
            assert test["score"] == 0 and "advantage: see tutorials/04_advantages.ipynb" in test["output"]
    assert by_part == pytest.approx({"advantage": 10, "sampling": 10, "entropy": 5})
    assert [r["part"] for r in grade(out, ["advantage"])["parts"]] == ["advantage"]


def test_putting_the_solutions_back_scores_full_points(tmp_path, capsys):
    """One part here: test_assignment.py checks that every restored file equals the solution's."""
    out = tmp_path / "hw"
    build(out, ["entropy"])
    for rel, spans in scan(ROOT).items():
        lines = (ROOT / rel).read_text().splitlines(keepends=True)
        bodies = iter("".join(lines[b:e - 1]) for part, b, e, _ in spans if part == "entropy")
        student = (out / rel).read_text().splitlines(keepends=True)
        restored = [next(bodies) if "raise NotImplementedError(" in s else s for s in student]
        (out / rel).write_text("".join(restored))
    main(["grade", str(out), "--json", str(tmp_path / "r.json")])  # the parts of the copy's assignment.json
    said = capsys.readouterr().out
    assert re.search(r"^entropy +4/4 +5\.0 / 5 ", said, re.M) and "mask" not in said
    assert json.loads((tmp_path / "r.json").read_text())["score"] == 5


def test_every_graded_test_fails_on_a_blank_copy(tmp_path):
    """No free points: on the full student copy not one of the graded tests passes."""
    out = tmp_path / "hw"
    build(out)
    nodes = [n for part in PARTS.values() for n in part.tests]
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *nodes], cwd=out,
                          capture_output=True, text=True, timeout=600)
    summary = done.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"=* ?\d+ failed in [\d.]+s( \([\d:]+\))? ?=*", summary), summary
    assert "NotImplementedError: update: see tutorials/07_update.ipynb" in done.stdout
