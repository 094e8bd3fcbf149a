"""The powered experiment's report (tutorials/results/powered/PLAN.md): the lr sweep on validation,
the paired test differences of Plan A with the pre-registered analysis, and the chain pilot.

Reads the result JSON files that `python -m nano_forkrl.study.protocol --design powered` wrote (one
per run) and the pilot's (`python -m nano_forkrl.study.chain_pilot`); writes summary.json and
summary.md next to them. Whatever has not run yet is reported as missing, never filled in.

CLI: python -m nano_forkrl.study.powered --folder tutorials/results/powered
"""
import argparse
import json
from pathlib import Path

from nano_forkrl.study import paired, protocol, runner
from nano_forkrl.study.uncertainty import problem_se

PLANNED_PAIRS = 16
# the commits that fixed the plan before the runs
PLAN = "b47efa8 (PLAN.md), amendment 1 in 346fad9"
ISSUE_SD = 3.8  # the paired SD (points) the plan's power was computed with
NAMES = ("top 20%", "all tokens")


def sweep_table(results, design=protocol.DESIGNS["powered"]):
    """{variant: {"validation": {lr: (avg, SE) or None}, "chosen": lr or None}}; an lr is chosen
    only when every lr of the grid has run (the rule compares the whole grid)."""
    table = {}
    for v in design["variants"]:
        cells = {}
        for lr in design["lrs"]:
            row = next((r for r in results if r["variant"] == v and r["lr"] == lr
                        and r["seed"] == 0), None)
            cells[lr] = problem_se(row["validation"]["end"], row["k"]) if row else None
        done = all(c is not None for c in cells.values())
        chosen = protocol.chosen_lr(results, v, design["lrs"]) if done else None
        n_done = sum(c is not None for c in cells.values())
        table[v] = dict(validation=cells, chosen=chosen, done=n_done)
    return table


def pairs(results, chosen, names=NAMES):
    """[(seed, {variant: run})] for the seeds where both variants ran at their chosen lr and were
    evaluated on test."""
    by_seed = {}
    for r in results:
        if r["seed"] != 0 and "test" in r and chosen.get(r["variant"]) == r["lr"]:
            by_seed.setdefault(r["seed"], {})[r["variant"]] = r
    return [(s, runs) for s, runs in sorted(by_seed.items()) if all(n in runs for n in names)]


def test_avg(run, when="end"):
    """Test avg@k of a run at the "end" of RL or at its warm start ("start")."""
    return problem_se(run["test"][when], run["k"])[0]


def analyse(results, planned=PLANNED_PAIRS, names=NAMES):
    """The report as a dict: sweep, pairs, the paired analysis (points) and its verdict, power."""
    sweep = sweep_table(results)
    chosen = {v: row["chosen"] for v, row in sweep.items()}
    done = pairs(results, chosen, names)
    diffs = [100 * (test_avg(runs[names[0]]) - test_avg(runs[names[1]])) for _, runs in done]
    report = dict(sweep=sweep, chosen=chosen, planned_pairs=planned, n_pairs=len(done),
                  pairs=[dict(seed=s, **{v: test_avg(runs[v]) for v in names}, diff=d)
                         for (s, runs), d in zip(done, diffs)])
    if len(diffs) >= 2:
        report["analysis"] = paired.summary(diffs, margin=3.0)
        report["verdict"] = paired.verdict(report["analysis"], planned, names)
        report["power_tost"] = {"issue_sd": paired.power(len(diffs), ISSUE_SD),
                                "realised_sd": paired.power(len(diffs), report["analysis"]["sd"])}
        # secondary, descriptive (PLAN.md): each variant's rise over its own warm start, in points
        report["rise"] = {v: paired.summary([100 * (test_avg(runs[v]) - test_avg(runs[v], "start"))
                                             for _, runs in done]) for v in names}
    else:
        report["verdict"] = f"not decided: {len(diffs)} pairs of the planned {planned}"
    report["power_tost_planned"] = paired.power(planned, ISSUE_SD)
    report["commits"] = sorted({r.get("commit", "unknown") for r in results})
    report["minutes"] = {protocol.slug(r["variant"], r["lr"], r["seed"]): r.get("total_s", 0) / 60
                         for r in results}
    return report


def markdown(report, pilot=None):
    """The summary as Markdown: the sweep table, the pairs, the verdict, the pilot."""
    lines = ["# The powered experiment: results so far", "",
             "- this file: `python -m nano_forkrl.study.powered --folder "
             "tutorials/results/powered`",
             "- runs/*.json: `python -m nano_forkrl.study.protocol --design powered ...`",
             "- chain_pilot.json: `python -m nano_forkrl.study.chain_pilot`",
             f"- the plan: {PLAN}",
             f"- code of the runs: {', '.join(report.get('commits', [])) or 'none'}", "",
             "## Sweep: validation avg@4 after 100 steps, seed 0 (500 problems, +- SE)", "",
             "| variant | " + " | ".join(f"lr {lr:g}" for lr in protocol.DESIGNS["powered"]["lrs"])
             + " | chosen |", "|---" * 6 + "|"]
    for v, row in report["sweep"].items():
        cells = [f"{a:.3f} +- {se:.3f}" if a is not None else "not run"
                 for a, se in ((c if c else (None, None)) for c in row["validation"].values())]
        chosen = f"{row['chosen']:g}" if row["chosen"] else f"not yet ({row['done']} of 4 lrs)"
        lines.append(f"| {v} | " + " | ".join(cells) + f" | {chosen} |")
    lines += ["", f"## Plan A: {report['n_pairs']} pairs of the planned {report['planned_pairs']}",
              ""]
    for p in report["pairs"]:
        lines.append(f"- seed {p['seed']}: top 20% {p['top 20%']:.4f}, all tokens "
                     f"{p['all tokens']:.4f}, difference {p['diff']:+.2f} points")
    if "analysis" in report:
        a = report["analysis"]
        lines.append(f"- mean difference {a['mean']:+.2f} points (SD {a['sd']:.2f}), 95% t-CI "
                     f"[{a['ci95'][0]:+.2f}, {a['ci95'][1]:+.2f}], TOST p {a['p_tost']:.3f}")
    for v, r in report.get("rise", {}).items():
        lines.append(f"- secondary (descriptive): {v} rises {r['mean']:+.2f} points over its warm "
                     f"start, 95% t-CI [{r['ci95'][0]:+.2f}, {r['ci95'][1]:+.2f}]")
    lines += [f"- verdict: **{report['verdict']}**",
              f"- TOST power at the planned 16 pairs (SD 3.8): {report['power_tost_planned']:.2f}"]
    if "power_tost" in report:  # the plan: power restated with the realised N and SD
        pw = report["power_tost"]
        lines.append(f"- TOST power with these {report['n_pairs']} pairs: {pw['issue_sd']:.2f} at "
                     f"SD 3.8, {pw['realised_sd']:.2f} at the realised SD")
    if report.get("minutes"):
        lines += ["", "## Wall-clock per run (minutes, training and evaluation)", ""]
        lines += [f"- {k}: {v:.1f}" for k, v in report["minutes"].items()]
    if pilot:
        m = pilot["measurements"]
        lines += ["", f"## Plan B pilot: **{pilot['verdict']}**", ""] + [
            f"- {k}: {'pass' if ok else 'FAIL'}" for k, ok in pilot["checks"].items()] + [
            f"- mean response length {m['mean_length']:.1f} tokens; entropy < 0.01 for "
            f"{100 * m['share_below_0.01']:.1f}% of tokens; warm start avg@4 {m['start_avg4']:.3f};"
            f" RL {m['rl_cpu_s'] / m['rl_steps'] * 100 / 60:.1f} CPU-minutes per 100 steps; "
            f"rise after {m['rl_steps']} steps {m['rise_points']:+.2f} points"]
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folder", default="tutorials/results/powered")
    folder = Path(ap.parse_args(argv).folder)
    report = analyse(protocol.load_results(folder / "runs"))
    pilot_file = folder / "chain_pilot.json"
    pilot = json.loads(pilot_file.read_text()) if pilot_file.exists() else None
    report["pilot"] = pilot and {k: pilot[k] for k in ("verdict", "checks")}
    runner.write_json(folder / "summary.json", report)
    runner.write_text(folder / "summary.md", markdown(report, pilot))
    print(markdown(report, pilot))


if __name__ == "__main__":
    main()
