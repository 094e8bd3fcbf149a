import math

import pytest

from nano_forkrl.study import uncertainty as u


def test_problem_se_is_the_se_of_per_problem_means():
    counts = [4, 0, 4, 0]  # two easy, two impossible problems: avg 0.5
    mean, se = u.problem_se(counts, 4)
    assert mean == 0.5 and se == pytest.approx(math.sqrt(1 / 3) / 2)
    assert u.binomial_se(0.5, 4, 4) == pytest.approx(0.125) and 0.125 < se  # equal difficulty understates it


def test_paired_difference_and_seeds():
    diff, se = u.paired_difference([0, 1, 2, 3], [1, 2, 3, 4], 4)
    assert diff == 0.25 and se == 0.0  # the same shift on every problem: no uncertainty left
    with pytest.raises(ValueError):
        u.paired_difference([1], [1, 2], 4)
    mean, se = u.over_seeds([0.4, 0.5, 0.6])
    assert mean == pytest.approx(0.5) and se == pytest.approx(0.1 / math.sqrt(3))
    assert math.isnan(u.over_seeds([0.3])[1]) and u.fmt(0.3, float("nan")) == "0.300 ± n/a"
    assert u.fmt(0.41234, 0.0216) == "0.412 ± 0.022"
