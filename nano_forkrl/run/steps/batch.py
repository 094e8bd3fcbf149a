"""The loop's steps on the rollout batch (tasks/rollout_batch.py: RolloutBatch): `score` adds the
rollout policy's log-probs (and the entropies the mask ranks), `mini_batches` cuts it for the
update.
"""
import torch

from nano_forkrl.utils.seeds import generator as seeded


def score(batch, cfg, place, model, ref_model=None):
    """Fills the batch's old log-probs (and the reference's, for the KL) from `model`, no grad,
    chunked; returns the entropies H_t [B, T] the mask ranks. `place` splits the rows over the
    processes."""
    kwargs = dict(micro_batch_size=cfg.micro_batch_size, temperature=cfg.temperature,
                  chunk_size=cfg.chunk_size)
    batch.old_logprobs, entropy = place.score_batch(model, batch, **kwargs)
    if ref_model is not None:  # the KL term (kl_coef > 0)
        batch.ref_logprobs = place.score_batch(ref_model, batch, **kwargs)[0]
    return entropy


def mini_batches(batch, cfg, cursor, place):
    """The update's mini-batches: per PPO epoch a seeded permutation of the rows, cut into
    mini_batch_prompts x G rows; `place` keeps this process's share of each."""
    rows = cfg.mini_batch_prompts * cfg.group_size
    for epoch in range(cfg.ppo_epochs):
        order = torch.randperm(len(batch), generator=seeded("order", cfg.seed, cursor, epoch))
        for s in range(0, len(batch), rows):
            yield batch[place.share(order[s:s + rows])]
