"""run/setup/memcheck.py: --plan, the check before any weight is loaded, the advice, and the GPUs
each preset needs (the README's table of presets: tests/tools/test_memory.py)."""
import pytest

from nano_forkrl import train
from nano_forkrl.run.setup.config import GPUS, parse_args
from nano_forkrl.utils.errors import RunError
from nano_forkrl.run.setup.memcheck import advice, check, fits_with, report


def plan_for(preset, gpus, *extra):
    args = ["--preset", preset, "--plan", "--gpus", str(gpus), "--gpu-memory", "80", *extra]
    return report(parse_args(args))


@pytest.mark.parametrize("preset", sorted(GPUS))
def test_each_preset_fits_the_gpus_it_states_and_not_fewer(preset):
    assert plan_for(preset, GPUS[preset])[0].fits
    if GPUS[preset] > 1:
        assert not plan_for(preset, GPUS[preset] // 2)[0].fits


def test_advice_fits_and_is_minimal():
    """Every advised set of changes fits, and none fits without one of its changes."""
    plan = plan_for("qwen3-4b", 1)[0]
    sets = advice(plan)
    assert not plan.fits and len(sets) >= 2
    assert any(not any("gpus" in c[2] for c in s) for s in sets)  # one keeps to this one GPU
    for chosen in sets:
        assert fits_with(plan, chosen)
        for drop in chosen:
            assert not fits_with(plan, [c for c in chosen if c is not drop]), (chosen, drop)


def _no_weights(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("weights were loaded")

    import transformers

    monkeypatch.setattr(train, "load_policy", refuse)
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", refuse)
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_config", refuse)


def test_plan_flag_prints_the_plan_and_loads_nothing(monkeypatch, capsys):
    _no_weights(monkeypatch)
    assert train.main(["--preset", "qwen3-8b", "--plan", "--gpus", "8", "--gpu-memory", "80"]) == []
    out = capsys.readouterr().out
    assert "8.19B parameters" in out and "phase: update" in out and ": fits" in out
    train.main(["--preset", "qwen3-8b", "--plan", "--gpus", "1"])
    out = capsys.readouterr().out
    assert "DOES NOT FIT" in out and "fits with: 8 GPUs" in out


@pytest.mark.parametrize("where", [["--device", "cuda"],
                                   ["--device", "cpu", "--gpu-memory", "32"]])
def test_a_run_that_does_not_fit_stops_before_any_weight_is_loaded(monkeypatch, tmp_path, where):
    """On a GPU (80 GiB where there is none) or on a 32 GiB host: a RunError naming the fixes."""
    _no_weights(monkeypatch)
    cfg = parse_args(["--preset", "qwen3-8b", "--out-dir", str(tmp_path / "run"), *where])
    with pytest.raises(RunError, match="does not fit in memory") as err:
        train.train(cfg)
    assert "fits with:" in str(err.value) or "nothing the advice tries" in str(err.value)
    assert not (tmp_path / "run").exists()  # nothing written either


def test_a_run_checks_its_own_processes_not_gpus(monkeypatch, tmp_path):
    """--gpus sets what --plan assumes; one process that asks for 4 is checked on its one GPU."""
    _no_weights(monkeypatch)
    assert plan_for("qwen3-4b", 4)[0].fits
    cfg = parse_args(["--preset", "qwen3-4b", "--gpus", "4", "--device", "cuda",
                      "--gpu-memory", "80", "--out-dir", str(tmp_path / "run")])
    with pytest.raises(RunError, match="1 x 80 GiB GPU"):
        train.train(cfg)


def test_the_tiny_run_passes_with_one_line(capsys):
    assert check(parse_args(["--device", "cpu"])).fits
    assert capsys.readouterr().out.startswith("memory plan: peak")


def test_a_config_that_cannot_be_read_is_left_to_the_loader(capsys, tmp_path):
    assert check(parse_args(["--model", str(tmp_path / "missing"), "--device", "cpu"])) is None
    assert "memory plan skipped" in capsys.readouterr().out
