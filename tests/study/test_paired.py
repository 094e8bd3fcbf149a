import math

import pytest

from nano_forkrl.study import paired

# a small paired experiment worked by hand: mean 0.3; squared deviations 0.49 + 5.29 + 0.04 + 7.29
# + 1.69 = 14.8, so SD = sqrt(14.8 / 4) = 1.9235 and SE = SD / sqrt(5) = 0.86023
DIFFS = [1.0, -2.0, 0.5, 3.0, -1.0]


@pytest.mark.parametrize("p, df, expected", [
    (0.975, 4, 2.7764), (0.975, 1, 12.7062), (0.95, 15, 1.7531), (0.95, 4, 2.1318),
    (0.975, 30, 2.0423), (0.975, 1000, 1.9623), (0.5, 7, 0.0)])
def test_t_quantile_matches_the_tables(p, df, expected):
    assert paired.t_quantile(p, df) == pytest.approx(expected, abs=5e-4)
    assert paired.t_quantile(1 - p, df) == pytest.approx(-expected, abs=5e-4)  # symmetric


def test_t_cdf_inverts_the_quantile_and_has_cauchy_tails():
    assert paired.t_cdf(0.0, 3) == 0.5
    assert paired.t_cdf(2.7764, 4) == pytest.approx(0.975, abs=1e-5)
    # df 1 is Cauchy: P(T <= 1) = 1/2 + atan(1)/pi
    assert paired.t_cdf(1.0, 1) == pytest.approx(0.75, abs=1e-12)
    with pytest.raises(ValueError):
        paired.t_quantile(1.0, 4)


def test_summary_and_tost_of_a_case_worked_by_hand():
    r = paired.summary(DIFFS, margin=3.0)
    assert r["n"] == 5 and r["mean"] == pytest.approx(0.3)
    assert r["sd"] == pytest.approx(math.sqrt(14.8 / 4))
    assert r["se"] == pytest.approx(0.860233, abs=1e-6)
    half = 2.776445 * 0.860233  # t(0.975, 4) * SE
    assert r["ci95"] == pytest.approx((0.3 - half, 0.3 + half), abs=1e-5)
    # TOST: t_low = 3.3 / 0.86023 = 3.836, t_high = -2.7 / 0.86023 = -3.139, df 4
    assert r["p_lower"] == pytest.approx(0.009260, abs=1e-5)
    assert r["p_upper"] == pytest.approx(0.017446, abs=1e-5)
    assert r["p_tost"] == r["p_upper"] and r["equivalent"]
    # the 90% CI (-1.534, 2.134) is inside +-3 but not inside +-2
    half = 2.131847 * 0.860233  # t(0.95, 4) * SE
    assert r["ci_tost"] == pytest.approx((0.3 - half, 0.3 + half), abs=1e-5)
    assert not paired.summary(DIFFS, margin=2.0)["equivalent"]


def test_verdict_follows_the_preregistered_order():
    eq = paired.summary(DIFFS, margin=3.0)
    assert paired.verdict(eq, planned_n=16).startswith("not decided: 5 pairs of the planned 16")
    assert paired.verdict(eq, planned_n=5) == "equivalent within +-3 points"
    better = paired.summary([3.0, 4.0, 5.0, 4.0, 3.0], margin=3.0)  # CI above 0, not inside +-3
    assert not better["equivalent"]
    assert paired.verdict(better, 5, ("top 20%", "all")) == "top 20% better (95% CI excludes 0)"
    worse = paired.summary([-3.0, -4.0, -5.0, -4.0, -3.0], margin=3.0)
    assert paired.verdict(worse, 5, ("top 20%", "all")).startswith("all better")
    wide = paired.summary([10.0, -8.0, 6.0, -9.0], margin=3.0)
    assert paired.verdict(wide, 4) == "not decided: neither equivalent nor different"
    with pytest.raises(ValueError):
        paired.summary([1.0])


def test_power_of_the_plan():
    # the plan's figures (SD 3.8 points, margin +-3): TOST power 0.83 at 16 pairs, 0.34 at 8
    assert paired.power(16, 3.8) == pytest.approx(0.83, abs=0.02)
    assert paired.power(8, 3.8) == pytest.approx(0.34, abs=0.02)
    assert paired.power(16, 3.8, true_diff=3.0, test="t") == pytest.approx(0.84, abs=0.02)
    # the t-test at no true difference rejects at its nominal rate: the quantiles are right
    null = paired.power(6, 1.0, true_diff=0.0, test="t", sims=20000)
    assert null == pytest.approx(0.05, abs=0.008)
    assert paired.power(16, 3.8) == paired.power(16, 3.8)  # a fixed seed: the same number each time
