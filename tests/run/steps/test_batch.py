"""Tests for nano_forkrl/run/steps/batch.py: the mini-batches cover every row once per epoch, and
scoring fills the old log-probs."""
import torch
from conftest import make_tiny_qwen3

from nano_forkrl.entropy import score_batch
from nano_forkrl.run.place.single import OneProcess
from nano_forkrl.run.setup.config import Config
from nano_forkrl.run.steps.batch import mini_batches, score
from nano_forkrl.tasks.rollout_batch import collate
from nano_forkrl.sampling import Rollout


def _batch(rows=8):
    rollouts = [Rollout(i, [5, 6], list(range(10, 12 + i % 3)), "", "eos") for i in range(rows)]
    return collate(rollouts, torch.arange(rows).float(), torch.linspace(-1, 1, rows), pad_id=0)


class Half:
    """A place that keeps the first half of every mini-batch (as rank 0 of two does)."""

    def share(self, items):
        return items[:len(items) // 2]


def test_mini_batches_cover_each_row_once_per_epoch_in_a_seeded_order():
    cfg = Config(group_size=2, mini_batch_prompts=2, ppo_epochs=2, seed=3)
    batch = _batch(8)
    minis = list(mini_batches(batch, cfg, 5, OneProcess()))
    assert [len(m) for m in minis] == [4] * 4  # 8 rows in mini-batches of 2 prompts x 2, two epochs
    for epoch in (minis[:2], minis[2:]):
        assert sorted(torch.cat([m.rewards for m in epoch]).tolist()) == batch.rewards.tolist()
    again = list(mini_batches(batch, cfg, 5, OneProcess()))
    # the same cursor, the same order
    assert all(torch.equal(a.rewards, b.rewards) for a, b in zip(minis, again))
    other = list(mini_batches(batch, cfg, 6, OneProcess()))
    assert any(not torch.equal(a.rewards, b.rewards) for a, b in zip(minis, other))
    halves = list(mini_batches(batch, cfg, 5, Half()))
    assert all(torch.equal(h.rewards, m.rewards[:2]) for h, m in zip(halves, minis))


def test_score_fills_the_old_and_reference_log_probs():
    cfg = Config(micro_batch_size=3, chunk_size=7)
    model, batch = make_tiny_qwen3(), _batch(5)
    entropy = score(batch, cfg, OneProcess(), model)
    logp, h = score_batch(model, batch.inputs(), micro_batch_size=3, chunk_size=7)
    assert torch.equal(batch.old_logprobs, logp) and torch.equal(entropy, h)
    assert batch.ref_logprobs is None
    score(batch, cfg, OneProcess(), model, ref_model=model)
    assert torch.equal(batch.ref_logprobs, logp)
