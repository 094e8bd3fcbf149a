"""The first protocol's results (tutorials/results/protocol/: 60 steps, seeds 0-2) re-read with the
seed as the unit of replication: what its 3 seeds can and cannot tell apart.

Per seed (its own warm start, RL run and evaluation of the same 200 test problems):
  - a variant's rise: test avg@4 after 60 steps minus at step 0, paired on the problems;
  - the difference between two variants: their test avg@4 after 60 steps, paired on the problems
    (same seed = same warm start), with its SE over problems.
Over the seeds: mean, sample SD, t-based 95% CI with df = n - 1 and a two-sided p
(study/paired.py), and the power of that many pairs (simulated, study/paired.power). Also:
  - the evaluation-noise floor of an SE over seeds, sqrt(sum_i se_i^2) / n: the SE that the
    per-problem noise of the n evaluations alone would give, run-to-run differences aside;
  - the lr the protocol's own rule (best validation avg@4 of seed 0, ties to the smaller lr)
    picks once the later 3e-5 runs are in the grid;
  - the rho sweep of seed 0 (one seed: only the SE over problems is known);
  - the F test of two variants' spreads over seeds (all tokens' rises over top 20%'s).

CLI: python -m nano_forkrl.study.reread --results tutorials/results/protocol --out reread.json
"""
import argparse
import json
import math

from nano_forkrl.study import protocol
from nano_forkrl.study.paired import betainc, power, summary, t_cdf
from nano_forkrl.study.uncertainty import paired_difference, problem_se

MAIN = protocol.MAIN
PAIRS = (("top 20%", "all tokens"), ("top 20%", "random 20%"), ("top 20%", "bottom 80%"),
         ("random 20%", "bottom 80%"), ("all tokens", "bottom 80%"))
RHOS = (("top 10%", 0.1), ("top 20%", 0.2), ("top 50%", 0.5), ("all tokens", 1.0))
WIDER_GRID = (3e-5,) + protocol.LRS  # the sweep with the edge check's lr


def run_of(results, variant, lr, seed):
    """The result of one (variant, lr, seed); KeyError when it was not run."""
    for r in results:
        if r["variant"] == variant and r["lr"] == lr and r["seed"] == seed:
            return r
    raise KeyError((variant, lr, seed))


def rise(r, split="test"):
    """(rise, SE over problems) of one run in points: avg@k at the end minus at step 0."""
    mean, se = paired_difference(r[split]["start"], r[split]["end"], r["k"])
    return 100 * mean, 100 * se


def difference(ra, rb, split="test"):
    """(a - b, SE over problems) in points: two runs' avg@k at the end, on the same problems."""
    mean, se = paired_difference(rb[split]["end"], ra[split]["end"], ra["k"])
    return 100 * mean, 100 * se


def noise_floor(ses):
    """sqrt(sum se_i^2) / n: the SE of a mean over n evaluations from their problem noise alone."""
    return math.sqrt(sum(se * se for se in ses)) / len(ses)


def over_seeds(pairs):
    """The seed-level analysis of [(value, SE over problems)] per seed: study/paired.summary (95%
    t-CI, df = n - 1), the two-sided p of "mean = 0", the per-seed values, the noise floor and
    the smallest equivalence margin the TOST (alpha 0.05) would accept."""
    values = [v for v, _ in pairs]
    out = summary(values)
    t = out["mean"] / out["se"] if out["se"] else math.inf
    out.update(p=2 * (1 - t_cdf(abs(t), out["n"] - 1)), per_seed=pairs,
               floor=noise_floor([se for _, se in pairs]),
               margin_needed=max(abs(x) for x in out["ci_tost"]))  # the TOST's smallest margin
    return out


def variance_ratio(a, b):
    """(F, two-sided p) of the sample variances of a over b (F test, df n_a - 1 and n_b - 1; the F
    law's CDF is the regularized incomplete beta I_{d1 F / (d1 F + d2)}(d1 / 2, d2 / 2))."""
    d1, d2 = a["n"] - 1, b["n"] - 1
    f = a["sd"] ** 2 / b["sd"] ** 2
    cdf = betainc(d1 / 2, d2 / 2, d1 * f / (d1 * f + d2))
    return f, 2 * min(cdf, 1 - cdf)


def detectable(sd, n, target=0.8, sims=4000):
    """The smallest true difference a two-sided t-test of n pairs (SD sd) finds with probability
    `target` (bisection on the simulated power)."""
    lo, hi = 0.0, 20 * sd
    for _ in range(30):
        mid = (lo + hi) / 2
        hit = power(n, sd, true_diff=mid, test="t", sims=sims) >= target
        lo, hi = (lo, mid) if hit else (mid, hi)
    return hi


def reread(results, seeds=(0,) + protocol.SEEDS):
    """Everything above as one dict (JSON-ready)."""
    lr = {v: protocol.chosen_lr(results, v) for v in MAIN}
    runs = {v: [run_of(results, v, lr[v], s) for s in seeds] for v in MAIN}
    out = dict(lr=lr, seeds=list(seeds))
    out["rise"] = {v: over_seeds([rise(r) for r in runs[v]]) for v in MAIN}
    out["difference"] = {f"{a} - {b}": over_seeds([difference(ra, rb) for ra, rb in
                                                    zip(runs[a], runs[b])]) for a, b in PAIRS}
    out["spread_all_over_top"] = variance_ratio(out["rise"]["all tokens"], out["rise"]["top 20%"])
    sd = out["difference"]["top 20% - all tokens"]["sd"]
    out["power"] = dict(sd=sd, **{f"n={n}, diff={d}": power(n, sd, true_diff=d, test="t")
                                  for n in (len(seeds), 16, 30) for d in (2.0, 3.0)},
                        detectable_80=detectable(sd, len(seeds)))
    out["wider_grid"] = {v: dict(chosen=protocol.chosen_lr(results, v, WIDER_GRID), validation={
        f"{x:g}": problem_se(run_of(results, v, x, 0)["validation"]["end"], 4)[0]
        for x in WIDER_GRID}) for v in MAIN}
    out["edge_rise"] = {v: dict(validation=rise(run_of(results, v, 3e-5, 0), "validation"),
                                test=rise(run_of(results, v, 3e-5, 0))) for v in MAIN}
    # rho 0.1 and 0.5 ran at top 20%'s lr only; rho 1.0 also ran there (its sweep)
    rho_runs = {f"{rho:g}": run_of(results, v, lr[v if v in lr else "top 20%"], 0)
                for v, rho in RHOS}
    rho_runs["1 at the top-20% lr"] = run_of(results, "all tokens", lr["top 20%"], 0)
    out["rho_seed0"] = {rho: dict(lr=r["lr"], rise=rise(r)) for rho, r in rho_runs.items()}
    out["rho_0.5_minus_0.2"] = difference(rho_runs["0.5"], rho_runs["0.2"])
    return out


def _line(name, s):
    per_seed = " / ".join(f"{v:+.2f}" for v, _ in s["per_seed"])
    return (f"{name:26s} {s['mean']:+6.2f} ± {s['se']:.2f}  95% CI [{s['ci95'][0]:+.1f}, "
            f"{s['ci95'][1]:+.1f}]  p {s['p']:.3f}  SD {s['sd']:.2f}  floor {s['floor']:.2f}"
            f"  per seed {per_seed}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", default="tutorials/results/protocol", help="the runs' JSON folder")
    ap.add_argument("--out", default=None, help="write the result as JSON here")
    args = ap.parse_args(argv)
    out = reread(protocol.load_results(args.results))
    print("points of test avg@4 after 60 steps; mean ± SE over seeds (t, df = n - 1)")
    for name, s in {**out["rise"], **out["difference"]}.items():
        print(_line(name, s))
    for key in ("spread_all_over_top", "power", "wider_grid", "edge_rise", "rho_seed0",
                "rho_0.5_minus_0.2"):
        print(f"{key}: {json.dumps(out[key])}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(out, f, indent=1)
    return out


if __name__ == "__main__":
    main()
