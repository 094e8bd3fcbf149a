"""Tests for nano_forkrl/assignment/cases.py: the registry, the JSON channel, judging in the parent."""
import json
import math

import pytest
import torch

from nano_forkrl.assignment.cases import Case, compare, decode, encode, judge, line, load, raised
from nano_forkrl.assignment.parts import PARTS


def test_every_part_has_public_and_hidden_cases():
    cases = load()
    for part in PARTS:
        kinds = {c.public for c in cases.values() if c.part == part}
        assert kinds == {True, False}, part


def test_outputs_survive_the_channel():
    outputs = (torch.tensor([[1.5, math.nan]]), torch.tensor([True, False]), torch.arange(3),
               torch.ones(2, dtype=torch.bfloat16), {"a": 1.0, "b": None}, ["x", 3, True])
    back = decode(json.loads(line("p::c", outputs=outputs))["outputs"])
    compare(back, decode(encode(outputs)), 0, 0)
    assert back[3].dtype == torch.bfloat16 and back[1].dtype == torch.bool and back[4] == {"a": 1.0, "b": None}
    assert decode(encode(object())).startswith("<object: ")
    with pytest.raises(ValueError, match="unknown dtype"):
        decode({"tensor": "complex64", "shape": [1], "values": [1]})


def test_compare_says_what_differs_and_where():
    with pytest.raises(AssertionError, match=r"(?s)output\[1\]: .*Mismatched elements: 1 / 3"):
        compare([torch.zeros(1), torch.tensor([1.0, 2.0, 3.5])], [torch.zeros(1), torch.tensor([1.0, 2.0, 3.0])],
                1e-5, 1e-6)
    with pytest.raises(AssertionError, match="expected a bool tensor"):
        compare(torch.tensor([1, 0]), torch.tensor([True, False]), 0, 0)
    with pytest.raises(AssertionError, match=r"output\['k'\]: expected 7, got 8"):
        compare({"k": 8}, {"k": 7}, 0, 0)
    with pytest.raises(AssertionError, match="expected True, got 1"):
        compare(1, True, 0, 0)
    compare(2.0 + 1e-7, 2.0, 1e-5, 0)


def test_judge_fails_errors_silence_and_wrong_outputs_and_runs_property_checks():
    c = Case("mask", "c", lambda: None, public=True)
    expected = {"mask::c": encode([1.0, 2.0])}
    assert judge(c, {"outputs": encode([1.0, 2.0])}, expected) == (True, "")
    assert judge(c, {"error": "NotImplementedError: mask"}, expected) == (False, "NotImplementedError: mask")
    assert not judge(c, None, expected)[0] and not judge(c, {"outputs": "x"}, expected)[0]
    assert "no expected output" in judge(c, {"outputs": 1}, {})[1]

    def check(outputs):
        assert outputs > 0, "not positive"
    p = Case("sampling", "p", lambda: None, public=False, check=check)
    assert judge(p, {"outputs": 3}, {}) == (True, "")
    assert judge(p, {"outputs": -1}, {})[1].startswith("AssertionError: not positive")
    assert not judge(p, {"outputs": {"list": [1]}}, {})[0]  # a check that breaks on odd outputs fails the case


def test_raised_turns_an_exception_into_an_output():
    assert raised(int, "x") == "raises ValueError" and raised(int, "3") == 3
