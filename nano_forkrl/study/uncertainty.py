"""Uncertainty of avg@k: the standard error over problems, over seeds, and of a paired difference.

avg@k of one model is the mean over n problems of p_i = c_i / k (c_i correct of k samples).
Problems differ in difficulty, so the k n samples are NOT independent draws: the standard error is
that of a mean over problems,

    SE = std_i(p_i) / sqrt(n)        (std with n - 1),

which includes both the spread of difficulty and the sampling noise of each p_i. The binomial
formula sqrt(a (1 - a) / (k n)) assumes every problem equally hard and understates it.
Across seeds (each seed: its own warm start, RL run and evaluation) the reported number is the mean
over seeds with SE = std over seeds / sqrt(n_seeds): it contains the problem noise and the
run-to-run noise. Two evaluations on the SAME problems (a model before and after RL) differ by
mean_i(p_i - q_i), whose SE is std_i(p_i - q_i) / sqrt(n): pairing removes the shared difficulty.
Paired differences over seeds, their t-interval and equivalence test: study/paired.py.
"""
import math


def _mean_se(values):
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, float("nan")
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


def problem_se(per_problem, k):
    """(avg@k, SE over problems) from the per-problem correct counts c_i of k samples each."""
    return _mean_se([c / k for c in per_problem])


def binomial_se(avg, n_problems, k):
    """The equal-difficulty formula, for comparison only: sqrt(a (1 - a) / (k n))."""
    return math.sqrt(avg * (1 - avg) / (k * n_problems))


def paired_difference(per_problem_a, per_problem_b, k):
    """(mean of b - a, its SE) for two evaluations of the same problems in the same order."""
    if len(per_problem_a) != len(per_problem_b):
        raise ValueError("paired evaluations need the same problems")
    return _mean_se([(b - a) / k for a, b in zip(per_problem_a, per_problem_b)])


def over_seeds(values):
    """(mean, SE over seeds) of one number per seed; SE is nan for a single seed."""
    return _mean_se(list(values))


def fmt(mean, se, digits=3):
    """"0.412 ± 0.021" ("0.412 ± n/a" when the SE is undefined)."""
    return f"{mean:.{digits}f} ± " + ("n/a" if math.isnan(se) else f"{se:.{digits}f}")
