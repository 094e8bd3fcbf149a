"""Tests for nano_forkrl.study.mistakes: an operand mistake is a miscopy or a wrong choice."""
from types import SimpleNamespace

import pytest

from nano_forkrl.study import mistakes

PROBLEM = "Compute 17+25-8."


@pytest.mark.parametrize("text, expected", [
    ("17-8=9\n9+25=34\n\\boxed{34}", None),                 # right, in a free order
    ("17+52=69\n69-8=61\n\\boxed{61}", "operand: miscopy"),  # 52 is no term of the problem
    ("17+8=25\n25+25=50\n\\boxed{50}", "operand: choice"),   # 8 with the wrong sign
    ("17+25=42\n42+25=67\n\\boxed{67}", "operand: choice"),  # 25 again: already used
    ("17+25=43\n43-8=35\n\\boxed{35}", "result digit"),
])
def test_classify(text, expected):
    assert mistakes.classify(PROBLEM, text) == expected


def test_count_names_the_right_responses_none():
    rollouts = [SimpleNamespace(prompt_index=0, text=t) for t in
                ("17-8=9\n9+25=34\n\\boxed{34}", "17+52=69\n69-8=61\n\\boxed{61}",
                 "17+52=69\n69-8=61\n\\boxed{61}")]
    assert mistakes.count([{"problem": PROBLEM}], rollouts) == {"operand: miscopy": 2, "None": 1}


def test_operand_kind_refuses_a_response_without_an_operand_mistake():
    with pytest.raises(ValueError):
        mistakes.operand_kind(PROBLEM, "17-8=9\n9+25=34\n\\boxed{34}")
