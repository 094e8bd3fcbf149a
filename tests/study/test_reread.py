"""Tests for nano_forkrl.study.reread: the seed-level re-reading of the first protocol, by hand on
made-up runs and against the committed results that the README quotes."""
import math
from pathlib import Path

import pytest

from nano_forkrl.study import protocol, reread

RESULTS = Path(__file__).resolve().parents[2] / "tutorials" / "results" / "protocol"


def fake(variant, lr, seed, test_end, val_end=(1, 1, 1, 1), test_start=(1, 1, 1, 1)):
    """One run's JSON with k = 2 and four problems (per-problem correct counts)."""
    return dict(variant=variant, lr=lr, seed=seed, k=2,
                validation=dict(start=[1, 1, 1, 1], end=list(val_end)),
                test=dict(start=list(test_start), end=list(test_end)))


def test_rise_and_difference_by_hand():
    a, b = fake("top 20%", 1e-4, 0, [2, 2, 1, 1]), fake("all tokens", 1e-4, 0, [2, 1, 1, 0])
    assert reread.rise(a)[0] == pytest.approx(25.0)  # (1 + 1 + 0 + 0) / 2 / 4 problems
    mean, se = reread.difference(a, b)
    assert mean == pytest.approx(25.0)  # a - b: (0 + 1 + 0 + 1) / 2 / 4
    assert se == pytest.approx(100 * math.sqrt(4 * 0.25 ** 2 / 3) / 2)  # diffs 0, .5, 0, .5


def test_over_seeds_is_a_t_interval_with_n_minus_1_df():
    s = reread.over_seeds([(1.0, 0.5), (2.0, 0.5), (3.0, 0.5)])
    assert s["mean"] == 2.0 and s["sd"] == pytest.approx(1.0)
    half = 4.302653 * 1.0 / math.sqrt(3)  # t(0.975, 2)
    assert s["ci95"] == pytest.approx((2.0 - half, 2.0 + half), abs=1e-4)
    assert s["p"] == pytest.approx(0.07418, abs=1e-4)  # two-sided, t = 2 sqrt(3), df = 2
    assert s["floor"] == pytest.approx(math.sqrt(3 * 0.25) / 3)
    assert s["margin_needed"] == pytest.approx(2.0 + 2.919986 / math.sqrt(3), abs=1e-4)


def test_variance_ratio_by_hand():
    # F(2, 2): P(F <= f) = f / (1 + f), so F = 3 has the two-sided p 2 / 4
    f, p = reread.variance_ratio(dict(n=3, sd=math.sqrt(3)), dict(n=3, sd=1.0))
    assert f == pytest.approx(3.0) and p == pytest.approx(0.5)


def test_the_wider_grid_applies_the_protocol_rule_with_ties_to_the_smaller_lr():
    results = [fake("random 20%", lr, 0, [1] * 4, val_end=v)
               for lr, v in ((3e-5, [2, 1, 1, 1]), (1e-4, [1, 2, 1, 1]), (3e-4, [0] * 4),
                             (1e-3, [0] * 4))]
    assert protocol.chosen_lr(results, "random 20%") == 1e-4  # the sweep alone
    assert protocol.chosen_lr(results, "random 20%", reread.WIDER_GRID) == 3e-5  # the tie


@pytest.mark.skipif(not RESULTS.is_dir(), reason="the committed protocol results are not here")
def test_the_committed_results_give_the_numbers_the_readme_quotes():
    out = reread.reread(protocol.load_results(RESULTS))
    top_all = out["difference"]["top 20% - all tokens"]
    assert top_all["mean"] == pytest.approx(0.375)
    assert top_all["sd"] == pytest.approx(3.79, abs=0.01)
    assert [round(x, 1) for x in top_all["ci95"]] == [-9.0, 9.8]
    assert round(top_all["margin_needed"], 1) == 6.8 and not top_all["equivalent"]
    assert round(out["difference"]["top 20% - random 20%"]["p"], 2) == 0.14
    assert round(out["difference"]["top 20% - bottom 80%"]["p"], 2) == 0.02
    assert round(out["rise"]["bottom 80%"]["p"], 2) == 0.07
    ratio, p = out["spread_all_over_top"]
    assert round(ratio) == 22 and round(p, 2) == 0.09
    assert out["wider_grid"]["bottom 80%"]["chosen"] == 3e-5
    assert out["wider_grid"]["random 20%"]["chosen"] == 3e-5
    assert out["lr"] == {"top 20%": 1e-4, "all tokens": 3e-4, "bottom 80%": 1e-4,
                         "random 20%": 1e-4}
    assert 0.07 < out["power"]["n=3, diff=2.0"] < 0.11 and 10 < out["power"]["detectable_80"] < 14
    rho = {key: v["rise"][0] for key, v in out["rho_seed0"].items()}
    assert rho["0.5"] > rho["1"] > rho["0.2"] > rho["0.1"]
