from nano_forkrl.study import powered

LRS = (3e-5, 1e-4, 3e-4, 1e-3)


def run(variant, lr, seed, val_end, test_end=None):
    r = dict(variant=variant, lr=lr, seed=seed, k=4, validation=dict(start=[0, 4], end=val_end))
    if test_end is not None:
        r["test"] = dict(start=[0, 0, 0, 0], end=test_end)
    return r


def sweep(variant, best):
    return [run(variant, lr, 0, [4, 4] if lr == best else [1, 1]) for lr in LRS]


def test_no_lr_is_chosen_before_the_whole_grid_has_run():
    table = powered.sweep_table(sweep("top 20%", 1e-4)[:3])
    assert table["top 20%"]["chosen"] is None and table["top 20%"]["done"] == 3
    assert table["all tokens"]["done"] == 0
    full = powered.sweep_table(sweep("top 20%", 1e-4))
    assert full["top 20%"]["chosen"] == 1e-4 and full["top 20%"]["validation"][1e-4][0] == 1.0


def test_pairs_and_the_preregistered_analysis():
    results = sweep("top 20%", 1e-4) + sweep("all tokens", 3e-4)
    assert powered.analyse(results)["verdict"] == "not decided: 0 pairs of the planned 16"
    # pair 101: top 20% solves 3 of 4 samples on each of 4 problems (0.75), all tokens 0.5
    results += [run("top 20%", 1e-4, 101, [4, 4], [3, 3, 3, 3]),
                run("all tokens", 3e-4, 101, [4, 4], [2, 2, 2, 2]),
                run("top 20%", 1e-4, 102, [4, 4], [2, 2, 2, 2]),
                run("all tokens", 3e-4, 102, [4, 4], [2, 2, 2, 2]),
                run("all tokens", 1e-3, 103, [4, 4], [4, 4, 4, 4]),  # not its chosen lr: no pair
                run("top 20%", 1e-4, 104, [4, 4], [4, 4, 4, 4])]  # its partner has not run
    report = powered.analyse(results)
    assert report["n_pairs"] == 2 and [p["seed"] for p in report["pairs"]] == [101, 102]
    assert [p["diff"] for p in report["pairs"]] == [25.0, 0.0]
    assert report["analysis"]["mean"] == 12.5 and report["analysis"]["n"] == 2
    assert report["verdict"] == "not decided: 2 pairs of the planned 16 (interim look)"
    # the secondary analysis: each variant's rise over its warm start (0 of 4 at the start here)
    assert report["rise"]["top 20%"]["mean"] == 62.5  # 75 and 50 points
    assert report["rise"]["all tokens"]["mean"] == 50.0 and report["rise"]["all tokens"]["sd"] == 0
    text = powered.markdown(report)
    assert "2 pairs of the planned 16" in text and "difference +25.00 points" in text
    assert "top 20% rises +62.50 points over its warm start" in text
    assert "TOST power with these 2 pairs: " in text
    assert "| top 20% | 0.250 +- " in text and "| 0.0001 |" in text
