"""The rollout batch: what one training step learns from, as one typed record of [B, T] and [B] tensors.

The rollout step builds it (`collate`: ids and masks from `tasks.data.collate_rollouts`, the rewards and the
group advantages), `score` adds the rollout policy's log-probs, masking adds the trained tokens, and the update
takes it one mini-batch at a time (`mini_batches`): every field is sliced by the same rows, once.
"""
from dataclasses import dataclass, fields

import torch

from nano_forkrl.tasks.data import collate_rollouts
from nano_forkrl.utils.seeds import generator as seeded


@dataclass
class RolloutBatch:
    """Rows are sequences (prompt + response, right-padded; the layout of `tasks.data.collate_rollouts`).

    input_ids, labels, attention_mask, response_mask: [B, T]; labels = the next token of input_ids.
    advantages: [B] A_i of each response's group; rewards: [B] r_i (after DAPO's overlong shaping).
    old_logprobs: [B, T] the rollout policy's log-probs of the labels (`score`).
    ref_logprobs: [B, T] the reference policy's, for the KL term (None without one).
    token_mask: [B, T] bool, the trained tokens (masking.TokenSelection.for_batch); None when they are
        chosen inside each micro-batch (source "current").
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
        """The batch of these rows (an index tensor, a slice or a list), every field sliced alike."""
        return RolloutBatch(**{f.name: _apply(getattr(self, f.name), lambda t: t[rows]) for f in fields(self)})

    def to(self, device):
        """Every tensor on `device` (a no-op for those already there)."""
        return RolloutBatch(**{f.name: _apply(getattr(self, f.name), lambda t: t.to(device))
                               for f in fields(self)})

    def inputs(self):
        """What entropy.score_batch reads: {input_ids, labels, attention_mask}."""
        return {"input_ids": self.input_ids, "labels": self.labels, "attention_mask": self.attention_mask}


def _apply(value, fn):
    return None if value is None else fn(value)


def collate(rollouts, rewards, advantages, pad_id):
    """The batch of sampled `rollouts` (engines' Rollout: prompt_ids, response_ids) with their rewards and
    advantages [B]."""
    ids = collate_rollouts([r.prompt_ids for r in rollouts], [r.response_ids for r in rollouts], pad_id)
    return RolloutBatch(**ids, advantages=advantages, rewards=rewards)


def score(batch, cfg, place, model, ref_model=None):
    """Fills the batch's old log-probs (and the reference's, for the KL) from `model`, no grad, chunked;
    returns the entropies H_t [B, T] the mask ranks. `place` splits the rows over the processes."""
    kwargs = dict(micro_batch_size=cfg.micro_batch_size, temperature=cfg.temperature, chunk_size=cfg.chunk_size)
    batch.old_logprobs, entropy = place.score_batch(model, batch, **kwargs)
    if ref_model is not None:  # the KL term (kl_coef > 0)
        batch.ref_logprobs = place.score_batch(ref_model, batch, **kwargs)[0]
    return entropy


def mini_batches(batch, cfg, cursor, place):
    """The update's mini-batches: per PPO epoch a seeded permutation of the rows, cut into mini_batch_prompts
    x G rows; `place` keeps this process's share of each."""
    rows = cfg.mini_batch_prompts * cfg.group_size
    for epoch in range(cfg.ppo_epochs):
        order = torch.randperm(len(batch), generator=seeded("order", cfg.seed, cursor, epoch))
        for s in range(0, len(batch), rows):
            yield batch[place.share(order[s:s + rows])]
