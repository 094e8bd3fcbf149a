"""Rollouts for one training step: the seeded prompt stream and DAPO's dynamic sampling.

Prompts come from an endless stream of seeded permutations of the training set (one per epoch),
addressed by a single integer cursor, so a resumed run sees exactly the prompts it would have seen.

DAPO's dynamic sampling (Yu et al. 2025, the constraint 0 < |{o_i correct}| < G): a group whose G
rewards are all equal has zero advantage for every sample, so it only dilutes the batch. Such groups
are dropped and more prompts are sampled (at most `max_gen_batches` generation rounds per step)
until `prompts_per_step` informative groups are collected. Each round samples `gen_prompts`
prompts in one sampler call (DAPO's oversampled generation batch, verl's gen_batch_size; 0 =
prompts_per_step): fewer, larger calls, at the price of a surplus. Informative groups are kept in
prompt order up to prompts_per_step and the surplus is dropped, as in verl; the cursor moves past
every prompt sampled. Rewards come from `verify.reward`, plus DAPO's soft overlong penalty when
`overlong_buffer` > 0. The kept groups leave as one RolloutBatch (tasks/rollout_batch.py) with
their group advantages (advantage.py).
"""
import torch

from nano_forkrl.advantage import ESTIMATORS, dynamic_sampling_keep, group_advantages
from nano_forkrl.advantage import overlong_penalty
from nano_forkrl.tasks.rollout_batch import collate
from nano_forkrl.tasks.data import format_prompt
from nano_forkrl.utils.seeds import generator as seeded
from nano_forkrl.verify import pop_failures, reward


def next_prompts(problems, cursor, k, seed):
    """Problems cursor..cursor+k of an endless stream of seeded epoch permutations (resumable
    from cursor)."""
    out, orders = [], {}
    for c in range(cursor, cursor + k):
        epoch, i = divmod(c, len(problems))
        if epoch not in orders:
            orders[epoch] = torch.randperm(len(problems), generator=seeded("epoch", seed, epoch))
        out.append(problems[int(orders[epoch][i])])
    return out, cursor + k


def sample_groups(cfg, sampler, tokenizer, batch, place):
    """G scored responses for each problem of `batch`, group-contiguous. Each process samples and
    scores its contiguous share of the prompts (`place.span`: all of them in one process) and gets
    every share back, in prompt order."""
    share = place.span(len(batch))
    prompts = [format_prompt(p["problem"], cfg.template, tokenizer) for p in batch[share]]
    rollouts = sampler.generate(prompts, n=cfg.group_size)
    scores = [reward(r.text, batch[share.start + r.prompt_index]["answer"],
                     correct=cfg.reward_correct, wrong=cfg.reward_wrong, verifier=cfg.verifier)
              for r in rollouts]
    for r in rollouts:
        r.prompt_index += share.start
    parts = place.gather((rollouts, scores))
    rollouts, scores = [r for rs, _ in parts for r in rs], [s for _, ss in parts for s in ss]
    return rollouts, torch.tensor(scores)


def collect_rollouts(cfg, sampler, tokenizer, problems, cursor, place):
    """Sample G responses for prompts_per_step prompts; with dynamic sampling keep only informative
    groups, sampling gen_prompts prompts per round (at most max_gen_batches rounds) until the
    training batch is full (DAPO). Returns (the RolloutBatch of the kept groups with their
    advantages, or None when no group was kept; the new cursor; the statistics of the first round,
    with gen_rounds: the rounds run). Every process returns the same groups; a batch left short is
    cut to rows that split evenly over them."""
    G, kept, first_stats = cfg.group_size, [], None
    per_round = cfg.gen_prompts or cfg.prompts_per_step
    if not cfg.dynamic_sampling:  # every group is kept: a larger round would only be thrown away
        per_round = cfg.prompts_per_step
    for rounds in range(1, cfg.max_gen_batches + 1):
        batch, cursor = next_prompts(problems, cursor, per_round, cfg.seed)
        rollouts, scores = sample_groups(cfg, sampler, tokenizer, batch, place)
        correct = scores == cfg.reward_correct
        lengths = torch.tensor([len(r.response_ids) for r in rollouts])
        if cfg.overlong_buffer:
            scores = scores + overlong_penalty(lengths, cfg.max_new_tokens, cfg.overlong_buffer,
                                               cfg.overlong_factor)
        if first_stats is None:  # log what the policy does, before any filtering
            first_stats = _stats(rollouts, scores, correct, lengths)
        # 0 < #correct < G: on correctness, not on the length-shaped scores (those differ in an
        # all-wrong group)
        keep = (dynamic_sampling_keep(correct.float(), G) if cfg.dynamic_sampling
                else torch.ones(len(rollouts)).bool())
        for g in range(len(batch)):
            if keep[g * G] and len(kept) < cfg.prompts_per_step:
                kept.append((rollouts[g * G:(g + 1) * G], scores[g * G:(g + 1) * G]))
        if len(kept) == cfg.prompts_per_step or not cfg.dynamic_sampling:
            break
    while len(kept) * G % place.world:  # every process must run as many forward passes
        kept.pop()
    first_stats["groups_kept"], first_stats["gen_rounds"] = len(kept), rounds
    # the verifier calls it could not time-bound (judged wrong)
    first_stats["verifier_failures"] = sum(pop_failures().values())
    return _batch_of(kept, cfg, sampler.pad_id), cursor, first_stats


def _stats(rollouts, scores, correct, lengths):
    """What the policy does in a rollout batch: mean reward, accuracy, length, truncated share."""
    return {"reward": scores.mean().item(), "accuracy": correct.float().mean().item(),
            "response_length": lengths.float().mean().item(),
            "truncated": sum(r.finish_reason == "length" for r in rollouts) / len(rollouts)}


def _batch_of(groups, cfg, pad_id):
    """The kept groups as one RolloutBatch with the group advantages A_i (advantage.py), or None."""
    if not groups:
        return None
    rewards = torch.cat([s for _, s in groups])
    advantages = group_advantages(rewards, cfg.group_size, normalize_std=ESTIMATORS[cfg.advantage])
    return collate([r for rs, _ in groups for r in rs], rewards, advantages, pad_id)
