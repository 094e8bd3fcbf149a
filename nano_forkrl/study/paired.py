"""The pre-registered analysis of a paired experiment: t confidence interval, TOST equivalence,
power.

Pair i gives one difference d_i (e.g. test avg@4 of top 20% minus all tokens, same warm start and
RL seed). With n pairs, mean m and sample SD s (n - 1 in the denominator), the standard error is
se = s / sqrt(n) and

    95% CI:  m +- t(0.975, n - 1) * se                     (Student's t, df = n - 1)
    TOST:    equivalent within +-margin when both one-sided tests reject at alpha:
             (m + margin) / se > t(1 - alpha, n - 1)  and  (m - margin) / se < -t(1 - alpha, n - 1),
             i.e. the (1 - 2 alpha) CI lies inside (-margin, +margin); its p-value is the larger
             one-sided one.

Student's t is computed here (the regularized incomplete beta by its continued fraction, the
quantile by bisection), so the analysis needs only the standard library. Power is simulated:
normal differences with a given SD, analysed exactly as above, with a fixed seed (the same number
every time).
"""
import math
import random


def _betacf(a, b, x, iters=300, eps=1e-15):
    """The continued fraction of the incomplete beta function (Lentz's method)."""
    tiny, c, d = 1e-300, 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, iters + 1):
        for num in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                    -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            break
    return h


def betainc(a, b, x):
    """The regularized incomplete beta function I_x(a, b) for 0 <= x <= 1."""
    if x <= 0.0 or x >= 1.0:
        return 0.0 if x <= 0.0 else 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    # the fraction converges fast below the mean of the beta law; use the symmetry above it
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t, df):
    """P(T <= t) for Student's t with df degrees of freedom."""
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_quantile(p, df):
    """The t with P(T <= t) = p (0 < p < 1), by bisection on t_cdf: t_quantile(0.975, 4) = 2.776."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    lo, hi = -1e4, 1e4
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
    return (lo + hi) / 2


def summary(diffs, margin=3.0, alpha=0.05):
    """Mean, SD, SE, 95% t-CI, (1 - 2 alpha) CI and TOST of paired differences (n >= 2)."""
    n = len(diffs)
    if n < 2:
        raise ValueError("a paired analysis needs at least 2 pairs")
    mean = sum(diffs) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    se = sd / math.sqrt(n)
    t95, t_one = t_quantile(0.975, n - 1), t_quantile(1 - alpha, n - 1)
    out = dict(n=n, mean=mean, sd=sd, se=se, ci95=(mean - t95 * se, mean + t95 * se),
               ci_tost=(mean - t_one * se, mean + t_one * se), margin=margin, alpha=alpha)
    out.update(tost(mean, se, n, margin, alpha))
    return out


def tost(mean, se, n, margin, alpha=0.05):
    """Two one-sided t-tests of |true difference| < margin:
    {"p_lower", "p_upper", "p_tost", "equivalent"}."""
    if se == 0:
        inside = abs(mean) < margin
        return dict(p_lower=0.0 if inside else 1.0, p_upper=0.0 if inside else 1.0,
                    p_tost=0.0 if inside else 1.0, equivalent=inside)
    p_lower = 1.0 - t_cdf((mean + margin) / se, n - 1)  # H0: difference <= -margin
    p_upper = t_cdf((mean - margin) / se, n - 1)  # H0: difference >= +margin
    p = max(p_lower, p_upper)
    return dict(p_lower=p_lower, p_upper=p_upper, p_tost=p, equivalent=p < alpha)


def verdict(result, planned_n, names=("A", "B")):
    """The pre-registered sentence: equivalent, one better, or not decided (always so for an
    interim look, fewer pairs than planned)."""
    if result["n"] < planned_n:
        return f"not decided: {result['n']} pairs of the planned {planned_n} (interim look)"
    if result["equivalent"]:
        return f"equivalent within +-{result['margin']:g} points"
    lo, hi = result["ci95"]
    if lo > 0 or hi < 0:
        return f"{names[0] if lo > 0 else names[1]} better (95% CI excludes 0)"
    return "not decided: neither equivalent nor different"


def power(n, sd, margin=3.0, true_diff=0.0, alpha=0.05, test="tost", sims=20000, seed=0):
    """Simulated power with n pairs of normal differences (mean true_diff, SD sd): the share of
    experiments where the TOST declares equivalence (test="tost") or the two-sided t-test rejects 0
    (test="t")."""
    rng = random.Random(seed)
    t_one, t_two = t_quantile(1 - alpha, n - 1), t_quantile(1 - alpha / 2, n - 1)
    hits = 0
    for _ in range(sims):
        d = [rng.gauss(true_diff, sd) for _ in range(n)]
        mean = sum(d) / n
        se = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1) / n)
        if test == "tost":
            hits += mean - t_one * se > -margin and mean + t_one * se < margin
        else:
            hits += abs(mean) > t_two * se
    return hits / sims
