"""Tests for nano_forkrl/assignment/harness.py: one JSON line per case, outputs or the error raised."""
import json
from pathlib import Path

from nano_forkrl.assignment.cases import of_part
from nano_forkrl.assignment.sandbox import run_part

ROOT = Path(__file__).resolve().parents[2]


def test_one_line_per_case_with_outputs_or_the_error_in_the_students_file():
    broken = b"def group_advantages(*args, **kwargs):\n    raise NotImplementedError('advantage: see x')\n"
    lines, why, _ = run_part(ROOT, ["advantage"], {"nano_forkrl/advantage.py": broken}, timeout=120)
    replies = [json.loads(s) for s in lines]
    assert why == "" and [r["case"] for r in replies] == [c.key for c in of_part("advantage")]
    first = replies[0]["error"]
    assert first.startswith("NotImplementedError: advantage: see x")
    assert 'File "nano_forkrl/advantage.py", line 2, in group_advantages' in first
    assert "assignment/public" not in first and "/tmp" not in first  # no case code, no sandbox path
    assert "ImportError" in replies[1]["error"]  # dynamic_sampling_keep is missing from this file


def test_the_solution_sends_outputs_for_every_case():
    lines, why, _ = run_part(ROOT, ["entropy"], {}, timeout=120)
    replies = [json.loads(s) for s in lines]
    assert why == "" and all("outputs" in r for r in replies) and len(replies) == len(of_part("entropy"))
