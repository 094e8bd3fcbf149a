"""Tests for nano_forkrl/assignment/grade.py: per-part scores judged in the parent, Gradescope's results.json.

Each part starts a process that imports torch, so these tests grade a few small parts; the whole autograder
(all parts, blank and solution) runs once in test_autograder.py.
"""
import json
import re
from pathlib import Path

import pytest

from nano_forkrl.assignment.cli import build, main
from nano_forkrl.assignment.grade import grade, report
from nano_forkrl.assignment.markers import scan

ROOT = Path(__file__).resolve().parents[2]


def scores(results):
    return {r["part"]: (r["score"], r["passed"], r["run"]) for r in results["parts"]}


def test_the_solution_repository_scores_full_points_on_public_and_hidden_cases():
    results = grade(ROOT, ["entropy", "mask"])
    got = scores(results)
    assert got["entropy"][0] == 5.0 and got["mask"][0] == 10.0
    assert {public for r in results["parts"] for _, _, public, _ in r["cases"]} == {True, False}
    assert re.search(r"^total .* 15\.0 / 15 .*\(100\.0%\)$", report(results), re.M)


def test_blank_part_fails_with_its_message_and_a_broken_module_takes_down_only_its_part(tmp_path):
    out = tmp_path / "hw"
    build(out, ["advantage"])
    (out / "nano_forkrl" / "sampling.py").write_text("def sample_next(:\n")  # a student's syntax error
    results = grade(out, ["advantage", "sampling", "entropy"], jobs=2)
    got = scores(results)
    assert got["advantage"] == (0.0, 0, 2) and got["entropy"] == (5.0, 1, 1)  # public cases only here
    assert got["sampling"][0] == 0.0
    table = report(results, tmp_path / "results.json")
    assert "NotImplementedError: advantage: see tutorials/04_advantages.ipynb" in table
    assert re.search(r"^total .* 5\.0 / 25 ", table, re.M)
    assert "  advantage: grpo_and_drgrpo_of_two_groups\n" in table  # failed cases by name
    written = json.loads((tmp_path / "results.json").read_text())
    assert written["score"] == 5.0 and written["output"] == table
    by_part = {}
    for test in written["tests"]:
        assert set(test) == {"name", "score", "max_score", "output", "visibility"}
        part = test["name"].split(":")[0]
        by_part[part] = by_part.get(part, 0) + test["max_score"]
        if part == "advantage":
            assert test["score"] == 0 and "advantage: see tutorials/04_advantages.ipynb" in test["output"]
            assert "nano_forkrl/advantage.py" in test["output"] and "/tmp" not in test["output"]
        if part == "sampling":
            assert "SyntaxError" in test["output"]
    assert by_part == pytest.approx({"advantage": 10, "sampling": 10, "entropy": 5})


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
    assert re.search(r"^entropy +1/1 +5\.0 / 5 ", said, re.M) and "mask" not in said
    assert json.loads((tmp_path / "r.json").read_text())["score"] == 5


def _with_float_ceil_bug():
    """masking.py where k = math.ceil(rho * N), the bug a careful student can write."""
    text = (ROOT / "nano_forkrl" / "masking.py").read_text()
    good = "    k = _num_selected(rho, valid_rows.sum(dim=-1, keepdim=True))"
    assert good in text
    bug = "    k = torch.tensor([[math.ceil(rho * int(n))] for n in valid_rows.sum(dim=-1)])"
    return ("import math\n" + text.replace(good, bug)).encode()


def test_float_ceil_bug_fails_the_graded_case():
    """0.14 * 50 = 7.000000000000001: the graded case catches math.ceil(rho * N), and only that case fails."""
    results = grade(ROOT, ["mask"], files={"nano_forkrl/masking.py": _with_float_ceil_bug()})
    cases = {name: (ok, msg) for name, ok, _, msg in results["parts"][0]["cases"]}
    assert not cases["k_is_exactly_ceil_rho_n"][0]
    assert "expected 7, got 8" in cases["k_is_exactly_ceil_rho_n"][1]
    assert all(ok for name, (ok, _) in cases.items() if name != "k_is_exactly_ceil_rho_n")


GUMBEL = '''import torch


def sample_next(logits, temperature=1.0, top_p=1.0, generator=None):
    """Gumbel-max over the nucleus: another correct sampler, which draws other tokens than the solution's."""
    logp = torch.log_softmax(logits / (temperature or 1.0), dim=-1)
    if temperature == 0:
        tokens = logits.argmax(dim=-1)
    else:
        p, order = logp.exp().sort(dim=-1, descending=True)
        cut = torch.zeros_like(p, dtype=torch.bool).scatter(-1, order, (p.cumsum(-1) - p) >= top_p)
        u = torch.rand(logp.shape, generator=generator).clamp(1e-20, 1.0)
        tokens = (logp.masked_fill(cut, -float("inf")) - torch.log(-torch.log(u))).argmax(dim=-1)
    return tokens, logp.gather(-1, tokens[:, None]).squeeze(-1)
'''


def test_correct_but_different_code_scores_full_points():
    """Gumbel-max sampling draws other tokens with the same generator: the property checks still pass it."""
    results = grade(ROOT, ["sampling"], files={"nano_forkrl/sampling.py": GUMBEL.encode()})
    assert scores(results)["sampling"] == (10.0, 4, 4), report(results)
