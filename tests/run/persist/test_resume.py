"""Tests for nano_forkrl/run/persist/resume.py: a resume with another configuration or other data is refused with the list
of differences, or, when accepted, really uses the new values. (The loop's use of it: tests/test_train.py.)"""
import pytest
import torch

from nano_forkrl.run.setup.config import Config, to_dict
from nano_forkrl.utils.errors import RunError
from nano_forkrl.run.persist.resume import SILENT, apply_changes, check_changes, differences, fingerprint, restore_run

PROBLEMS = [{"id": "a", "problem": "1 + 2", "answer": "3"}, {"id": "b", "problem": "2 + 2", "answer": "4"}]


def _checkpoint(folder, cfg, problems=PROBLEMS):
    folder.mkdir(parents=True)
    torch.save({"step": 4, "config": to_dict(cfg), "data": fingerprint(problems)}, folder / "trainer_state.pt")
    return folder


def test_the_fingerprint_follows_the_contents_and_order_of_the_problems():
    assert fingerprint(PROBLEMS) == fingerprint([dict(p) for p in PROBLEMS])
    assert fingerprint(PROBLEMS) != fingerprint(PROBLEMS[::-1])
    assert fingerprint(PROBLEMS) != fingerprint([PROBLEMS[0], {**PROBLEMS[1], "answer": "5"}])


def test_only_the_documented_fields_may_differ_silently():
    saved = Config(lr=1e-4)
    quiet = Config(lr=1e-4, steps=900, eval_every=3, save_every=7, out_dir="elsewhere", resume=True, overwrite=True,
                   debug=True, accept_config_changes=True, final_save=False, plan=True, gpus=8, gpu_memory=40.0)
    assert differences(to_dict(saved), "d", quiet, "d") == {}
    assert set(SILENT) == {"steps", "eval_every", "save_every", "final_save", "out_dir", "resume", "overwrite",
                           "debug", "accept_config_changes", "plan", "gpus", "gpu_memory"}
    loud = Config(lr=1e-3, rho=1.0, seed=5)
    assert differences(to_dict(saved), "d", loud, "e") == {"lr": [1e-4, 1e-3], "rho": [0.2, 1.0], "seed": [0, 5],
                                                            "training data": ["d", "e"]}
    old = {k: v for k, v in to_dict(saved).items() if k != "per_sequence"}  # a field an older version lacked
    assert differences(old, None, Config(lr=1e-4), "x") == {}  # its default; no fingerprint: data not compared
    assert differences(old, None, Config(lr=1e-4, per_sequence=True), "x") == {"per_sequence": [False, True]}


def test_a_changed_configuration_or_data_file_is_refused_with_the_list(tmp_path):
    folder = _checkpoint(tmp_path / "checkpoint", Config(lr=1e-4))
    assert check_changes(Config(lr=1e-4, steps=500, resume=True), folder, fingerprint(PROBLEMS)) == {}
    replaced = fingerprint(PROBLEMS[:1])  # the training file was replaced
    with pytest.raises(RunError, match=r"another configuration or data: lr 0.0001 -> 0.001, seed 0 -> 5, training "
                                       r"data sha256:[0-9a-f]{12} -> sha256:[0-9a-f]{12}\. .*"
                                       "--accept-config-changes"):
        check_changes(Config(lr=1e-3, seed=5), folder, replaced)
    accepted = check_changes(Config(lr=1e-3, seed=5, accept_config_changes=True), folder, replaced)
    assert set(accepted) == {"lr", "seed", "training data"}


class Sampler:
    def __init__(self, state):
        self.state = state

    def rng_state(self):
        return self.state

    def set_rng_state(self, state):
        self.state = state


def test_accepted_values_win_over_the_restored_state(capsys):
    """The restored optimizer brings back its saved lr and weight decay; a new seed its saved RNG streams."""
    weights = torch.nn.Parameter(torch.ones(3))
    saved = torch.optim.AdamW([weights], lr=1e-4, weight_decay=0.0)
    optimizer = torch.optim.AdamW([weights], lr=1e-3, weight_decay=0.1)
    optimizer.load_state_dict(saved.state_dict())
    assert optimizer.param_groups[0]["lr"] == 1e-4  # what load_state_dict does: the new lr would be ignored
    torch.manual_seed(5)
    fresh = torch.get_rng_state(), "fresh"
    torch.manual_seed(0)
    sampler = Sampler("restored")
    cfg = Config(lr=1e-3, weight_decay=0.1, seed=5)
    apply_changes(cfg, {"lr": [1e-4, 1e-3], "seed": [0, 5]}, optimizer, sampler, fresh)
    assert optimizer.param_groups[0]["lr"] == 1e-3 and optimizer.param_groups[0]["weight_decay"] == 0.1
    assert sampler.state == "fresh" and torch.equal(torch.get_rng_state(), fresh[0])
    assert "continuing with lr 0.0001 -> 0.001, seed 0 -> 5" in capsys.readouterr().out
    apply_changes(Config(lr=1e-3, weight_decay=0.1), {"lr": [1e-4, 1e-3]}, optimizer, sampler, (None, "other"))
    assert sampler.state == "fresh"  # the seed did not change: the restored streams stay


def test_a_fresh_run_starts_at_step_zero_with_its_data_fingerprint(capsys):
    assert restore_run(Config(), None, PROBLEMS, None, None) == (0, 0, fingerprint(PROBLEMS), {})
    assert restore_run(Config(resume=True, out_dir="runs/new"), None, PROBLEMS, None, None)[:2] == (0, 0)
    assert "--resume: no run in runs/new yet, starting fresh" in capsys.readouterr().out
