"""Tests for nano_forkrl.verifier.relations: orientation, chains, inequalities as intervals, equations up to a
factor (and the near misses that must stay different)."""
import pytest

from nano_forkrl.verifier.relations import as_interval, chain_value, same_up_to_factor, sides


def test_sides_read_greater_than_as_less_than():
    assert sides("5>=x") == ["x", "<=", "5"]
    assert sides("9>t>2") == ["2", "<", "t", "<", "9"]
    assert sides("x<5") == ["x", "<", "5"]


@pytest.mark.parametrize("chain, value", [
    ("x=5+5+1=11", "11"), ("1=\\zzz=x=0", "0"), ("x=1/3≈0.33", "1/3"), ("x≈11", "11"),
    ("x=5", "x=5"), ("x<5", "x<5"), ("2<x=3", "2<x=3"), ("5", "5"),
])
def test_chain_value(chain, value):
    assert chain_value(chain) == value


@pytest.mark.parametrize("inequality, interval", [
    ("-2<=x<=7", "[-2,7]"), ("0<f(x)<1", "(0,1)"), ("x>5", "(5,\\infty)"), ("x<=2", "(-\\infty,2]"),
    ("5<a", "(5,\\infty)"), ("1<=|z|<=\\frac{3}{2}", "[-\\frac{3}{2},-1]\\cup[1,\\frac{3}{2}]"),
    ("0<x<y", None), ("x=5", None), ("x≠5", None), ("x+y<1", None), ("1<x<2<y", None), ("-1<=|z|<=1", None),
])
def test_as_interval(inequality, interval):
    assert as_interval(inequality) == interval


@pytest.mark.parametrize("a, b, same", [
    ("-34x-45y+20z-100=0", "34x+45y-20z+100=0", True), ("x^2/4+y^2/3=1", "x^2/16+y^2/12=1/4", True),
    ("-x>-1", "x<1", True), ("2x<2", "x<1", True), ("x≠1", "2x≠2", True),
    ("x<1", "-x<-1", False),  # a negative factor turns an inequality round
    ("x+y=1", "x+y=2", False), ("x^2=1", "x=1", False), ("1=1", "2=2", False), ("x=1", "x<1", False),
    ("x≈1", "2x≈2", False), ("x=1=y", "2x=2=2y", False),
])
def test_same_up_to_factor(a, b, same):
    assert same_up_to_factor(a, b) is same and same_up_to_factor(b, a) is same
