from nano_forkrl.study import protocol


def fake(variant, lr, seed, val_end):
    return dict(variant=variant, lr=lr, seed=seed, k=4, validation=dict(start=[0, 4], end=val_end))


def test_lr_is_chosen_on_validation_of_seed_0_only():
    results = [fake("top 20%", 1e-4, 0, [1, 1]), fake("top 20%", 3e-4, 0, [4, 3]),
               fake("top 20%", 1e-3, 0, [0, 0]), fake("top 20%", 1e-4, 1, [4, 4])]
    assert protocol.chosen_lr(results, "top 20%") == 3e-4
    assert protocol.chosen_lr(results, "bottom 80%") is None
    # a check outside the sweep never changes the choice
    late = results + [fake("top 20%", 3e-5, 0, [4, 4])]
    assert protocol.chosen_lr(late, "top 20%") == 3e-4
    assert protocol.chosen_lr(late, "top 20%", (3e-5,)) == 3e-5
    tie = [fake("all tokens", 1e-3, 0, [2, 2]), fake("all tokens", 1e-4, 0, [2, 2])]
    assert protocol.chosen_lr(tie, "all tokens") == 1e-4  # a tie goes to the smaller lr


def test_jobs_of_each_stage():
    sweep = protocol.jobs("sweep", [], ["top 20%"], lrs=(1e-4, 3e-4))
    assert sweep == [("top 20%", 1e-4, 0), ("top 20%", 3e-4, 0)]
    results = [fake("top 20%", 3e-4, 0, [4, 4])]
    assert protocol.jobs("seeds", results, ["top 20%", "all tokens"], seeds=(1, 2)) == [
        ("top 20%", 3e-4, 1), ("top 20%", 3e-4, 2)]  # no sweep result yet for all tokens: none
    rho = protocol.jobs("seeds", results, ["top 10%"], seeds=(0,), lr_from="top 20%")
    assert rho == [("top 10%", 3e-4, 0)]
    assert protocol.slug("top 20%", 3e-4, 1) == "top20_lr0.0003_s1"


def test_validation_file_and_sets_never_overlap(tmp_path):
    val, test, path = protocol.sets(30, 30, tmp_path)
    assert path.read_text().count("\n") == 30
    assert not {p["problem"] for p in val} & {p["problem"] for p in test}


def test_seeds_run_seed_by_seed_so_a_stop_leaves_whole_pairs():
    results = [fake("top 20%", 3e-4, 0, [4, 4]), fake("all tokens", 1e-4, 0, [4, 4])]
    todo = protocol.jobs("seeds", results, ["top 20%", "all tokens"], seeds=(101, 102))
    assert todo == [("top 20%", 3e-4, 101), ("all tokens", 1e-4, 101),
                    ("top 20%", 3e-4, 102), ("all tokens", 1e-4, 102)]


def test_powered_design_tests_on_problems_no_earlier_run_showed(tmp_path):
    d = protocol.DESIGNS["powered"]
    assert 0 not in d["seeds"] and len(d["seeds"]) == 16 and d["sweep_splits"] == ("validation",)
    val, test, _ = protocol.sets(50, 1000, tmp_path, test_skip=d["test_skip"])
    _, shown, _ = protocol.sets(50, 200, tmp_path / "main")  # the main job's 200 held-out problems
    problems = {p["problem"] for p in test}
    assert len(problems) == 1000
    assert not problems & {p["problem"] for p in shown}
    assert not problems & {p["problem"] for p in val}
