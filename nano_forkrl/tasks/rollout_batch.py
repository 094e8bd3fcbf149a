"""The rollout batch: what one training step learns from, a typed record of [B, T] and [B] tensors.

`collate` builds it from sampled rollouts (ids and masks in `data.collate_rollouts`' layout, the
rewards and the group advantages); the loop adds the rollout policy's log-probs and the trained
tokens (run/steps/batch.py), and the update (update.policy_step) takes it one mini-batch at a time:
every field is sliced by the same rows, once.
"""
from dataclasses import dataclass, fields

import torch

from nano_forkrl.tasks.data import collate_rollouts


@dataclass
class RolloutBatch:
    """Rows are sequences (prompt + response, right-padded: `tasks.data.collate_rollouts`' layout).

    input_ids, labels, attention_mask, response_mask: [B, T]; labels = the next token of input_ids.
    advantages: [B] A_i of each response's group; rewards: [B] r_i (after DAPO's overlong shaping).
    old_logprobs: [B, T] the rollout policy's log-probs of the labels.
    ref_logprobs: [B, T] the reference policy's, for the KL term (None without one).
    token_mask: [B, T] bool, the trained tokens (masking.TokenSelection.for_batch); None when they
        are chosen inside each micro-batch (source "current").
    """
    input_ids: torch.Tensor
    labels: torch.Tensor
    attention_mask: torch.Tensor
    response_mask: torch.Tensor
    advantages: torch.Tensor
    rewards: torch.Tensor | None = None
    old_logprobs: torch.Tensor | None = None
    ref_logprobs: torch.Tensor | None = None
    token_mask: torch.Tensor | None = None

    def __len__(self):
        return self.input_ids.shape[0]

    def __getitem__(self, rows):
        """The batch of these rows (index tensor, slice or list): every field sliced alike."""
        return self._map(lambda t: t[rows])

    def to(self, device):
        """Every tensor on `device` (a no-op for those already there)."""
        return self._map(lambda t: t.to(device))

    def _map(self, fn):
        """The batch of fn(field) for every tensor field (absent fields stay None)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return RolloutBatch(**{k: None if v is None else fn(v) for k, v in values.items()})

    def inputs(self):
        """What entropy.score_batch reads: {input_ids, labels, attention_mask}."""
        return {"input_ids": self.input_ids, "labels": self.labels,
                "attention_mask": self.attention_mask}


def collate(rollouts, rewards, advantages, pad_id):
    """The batch of sampled `rollouts` (sampling.Rollout: prompt_ids, response_ids) with their
    rewards and advantages [B]."""
    ids = collate_rollouts([r.prompt_ids for r in rollouts], [r.response_ids for r in rollouts],
                           pad_id)
    return RolloutBatch(**ids, advantages=advantages, rewards=rewards)
