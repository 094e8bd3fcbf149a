"""Tests for nano_forkrl/run/checkpoint.py: atomic checkpoint folders and the metrics log on resume.
(The bit-exact resume of a whole run is tested in test_train.py.)"""
import json

import torch
from conftest import make_tiny_qwen3

from nano_forkrl.run.checkpoint import Logger, restore_state, save_checkpoint
from nano_forkrl.run.config import Config


class FakeSampler:
    def __init__(self):
        self.state = "s0"

    def rng_state(self):
        return self.state

    def set_rng_state(self, s):
        self.state = s


def test_save_then_restore_round_trip(tmp_path):
    from nano_forkrl.run.tiny import build_tiny_tokenizer
    tok = build_tiny_tokenizer()
    model = make_tiny_qwen3(vocab_size=len(tok))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.tensor([[1, 2, 3]])).logits.sum().backward()
    opt.step()
    sampler = FakeSampler()
    sampler.state = "after-step"
    torch.manual_seed(42)
    save_checkpoint(tmp_path, model, tok, opt, sampler, step=7, cursor=224, cfg=Config())
    assert not (tmp_path / "checkpoint.tmp").exists() and not (tmp_path / "checkpoint.old").exists()
    expected_next = torch.rand(3)
    opt2 = torch.optim.AdamW(model.parameters(), lr=1e-3)
    s2 = FakeSampler()
    torch.manual_seed(0)
    assert restore_state(tmp_path / "checkpoint", opt2, s2) == (7, 224)
    assert s2.state == "after-step" and torch.equal(torch.rand(3), expected_next)
    assert opt2.state_dict()["state"][0]["step"] == opt.state_dict()["state"][0]["step"]
    # saving again replaces the folder atomically (old one renamed, then removed)
    save_checkpoint(tmp_path, model, tok, opt, sampler, step=8, cursor=256, cfg=Config())
    state = torch.load(tmp_path / "checkpoint" / "trainer_state.pt", weights_only=False)
    assert state["step"] == 8 and state["config"]["rho"] == 0.2


def test_a_stale_temp_folder_from_a_killed_save_is_replaced(tmp_path):
    from nano_forkrl.run.tiny import build_tiny_tokenizer
    tok = build_tiny_tokenizer()
    model = make_tiny_qwen3(vocab_size=len(tok))
    (tmp_path / "checkpoint.tmp").mkdir()
    (tmp_path / "checkpoint.tmp" / "garbage").write_text("half written")
    save_checkpoint(tmp_path, model, tok, torch.optim.SGD(model.parameters(), lr=0.1), FakeSampler(), 1, 8, Config())
    assert not (tmp_path / "checkpoint" / "garbage").exists()


def test_logger_drops_lines_written_after_the_checkpoint(tmp_path):
    log = Logger(tmp_path, 0)
    for step in (0, 1, 2, 3):
        log.log({"step": step, "accuracy": 0.1 * step})
    Logger(tmp_path, 2)  # resuming from a checkpoint taken at step 2: step 3 is replayed
    steps = [json.loads(l)["step"] for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == [0, 1, 2]
    Logger(tmp_path, 0)  # a fresh run starts a fresh log
    assert (tmp_path / "metrics.jsonl").read_text() == ""


def test_a_kill_between_the_two_renames_resumes_from_the_old_folder(tmp_path):
    from nano_forkrl.run.checkpoint import latest_checkpoint
    assert latest_checkpoint(tmp_path) is None
    (tmp_path / "checkpoint.old").mkdir()
    (tmp_path / "checkpoint.old" / "trainer_state.pt").write_bytes(b"x")  # save renamed checkpoint -> .old, then died
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint.old"
    (tmp_path / "checkpoint").mkdir()
    (tmp_path / "checkpoint" / "trainer_state.pt").write_bytes(b"y")
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint"
