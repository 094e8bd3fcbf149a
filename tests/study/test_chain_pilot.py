import pytest

from nano_forkrl.study import chain_pilot

PASSING = {"mean_length": 110.0, "share_below_0.01": 0.7, "start_avg4": 0.4, "rl_cpu_s": 120.0,
           "rl_steps": 20}  # 6 CPU-s per step: 10 CPU-minutes for 100 steps


def test_go_needs_all_four_criteria_of_the_preregistered_rule():
    checks, verdict = chain_pilot.judge(PASSING)
    assert verdict == "GO" and all(checks.values())
    for key, bad in (("mean_length", 40.0), ("mean_length", 151.0), ("share_below_0.01", 0.59),
                     ("start_avg4", 0.05), ("start_avg4", 0.85), ("rl_cpu_s", 5 * 60 + 1)):
        checks, verdict = chain_pilot.judge({**PASSING, key: bad})
        assert verdict == "NO-GO" and sum(not ok for ok in checks.values()) == 1, (key, bad)
    edges = {"mean_length": 80.0, "share_below_0.01": 0.6, "start_avg4": 0.8, "rl_cpu_s": 300.0,
             "rl_steps": 20}  # 25 CPU-minutes per 100 steps
    assert chain_pilot.judge(edges)[1] == "GO"  # the bounds are inclusive


def test_warm_measurements_of_a_short_chain_warm_start(tmp_path):
    from nano_forkrl.tasks.chain import chain_problems
    from nano_forkrl.tasks.tiny import load_tiny

    model, tok = load_tiny(tmp_path, task="chain", steps=3, batch_size=4)
    m = chain_pilot.warm_measurements(model, tok, chain_problems("validation", 4), n_sample=2, k=2)
    assert m["n_tokens"] > 0
    assert 1 <= m["mean_length"] <= chain_pilot.MAX_NEW_TOKENS and 0 <= m["truncated"] <= 1
    assert 0 <= m["share_below_0.01"] <= 1 and m["p50"] <= m["p80"]
    assert len(m["start"]) == 4 and m["start_avg4"] == pytest.approx(sum(m["start"]) / 8)
