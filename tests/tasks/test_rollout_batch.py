"""Tests for nano_forkrl/tasks/rollout_batch.py: the rollout batch is sliced alike in every field
and keeps the data module's layout."""
import torch

from nano_forkrl.sampling import Rollout
from nano_forkrl.tasks.rollout_batch import collate


def _batch(rows=8):
    rollouts = [Rollout(i, [5, 6], list(range(10, 12 + i % 3)), "", "eos") for i in range(rows)]
    return collate(rollouts, torch.arange(rows).float(), torch.linspace(-1, 1, rows), pad_id=0)


def test_rows_of_every_field_are_taken_alike_and_absent_fields_stay_absent():
    batch = _batch()
    batch.old_logprobs = torch.randn(batch.labels.shape)
    rows = torch.tensor([5, 1])
    part = batch[rows]
    assert len(part) == 2 and part.token_mask is None and part.ref_logprobs is None
    for name in ("input_ids", "labels", "attention_mask", "response_mask", "advantages", "rewards",
                 "old_logprobs"):
        assert torch.equal(getattr(part, name), getattr(batch, name)[rows]), name
    moved = part.to("cpu")
    assert torch.equal(moved.input_ids, part.input_ids) and moved.token_mask is None
    assert set(part.inputs()) == {"input_ids", "labels", "attention_mask"}


def test_collate_keeps_the_layout_of_the_data_module():
    batch = _batch(3)
    assert batch.response_mask.sum(1).tolist() == [2, 3, 4]  # the response tokens are labels
    assert batch.rewards.tolist() == [0.0, 1.0, 2.0]
    assert batch.advantages.tolist() == [-1.0, 0.0, 1.0]
