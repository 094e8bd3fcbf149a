"""Hidden graded cases of the tensor parts (entropy, logprobs, mask, loss, update); see
hidden.py."""
import math
from dataclasses import asdict

import torch

from nano_forkrl.assignment.cases import case
from nano_forkrl.assignment.public import batch, randn, tiny_model


@case("entropy")
def entropy_of_large_and_bf16_logits():
    from nano_forkrl.entropy import token_entropy

    big = randn(3, 5, 17, seed=4) * 1e4
    return token_entropy(big), token_entropy(randn(4, 33, seed=6, dtype=torch.bfloat16) * 3).float()


@case("logprobs", rtol=1e-4, atol=1e-5)
def labels_padding_and_gradients():
    from nano_forkrl.entropy import token_logprobs_and_entropy

    model, b = tiny_model(seed=1), batch(seed=3)
    logp, ent = token_logprobs_and_entropy(model, b["input_ids"], b["attention_mask"],
                                           labels=b["labels"], temperature=0.8, chunk_size=5,
                                           with_grad=True)
    (logp * b["response_mask"]).sum().backward()
    return logp, ent.detach(), model.model.norm.weight.grad, logp.requires_grad


@case("logprobs", rtol=1e-4, atol=1e-5)
def left_padding_scores_like_no_padding():
    from nano_forkrl.entropy import token_logprobs_and_entropy

    model = tiny_model(seed=2)
    ids = torch.randint(2, 48, (1, 6), generator=torch.Generator().manual_seed(2))
    padded = torch.cat([torch.zeros(1, 3, dtype=torch.long), ids], 1)
    attn = torch.tensor([[0, 0, 0] + [1] * 6])
    a = token_logprobs_and_entropy(model, ids, chunk_size=4)
    b = token_logprobs_and_entropy(model, padded, attn, chunk_size=1024)
    return [t[:, :6] for t in a], [t[:, 3:] for t in b]


@case("mask")
def k_is_exactly_ceil_rho_n():
    """0.14 * 50 = 7.000000000000001 in floating point: math.ceil would select 8 tokens, not 7."""
    from nano_forkrl.masking import top_entropy_mask

    counts = []
    cases = ((0.14, 50), (0.07, 100), (0.2, 10), (0.2, 11), (0.29, 100), (1 / 3, 9), (0.57, 100))
    for rho, n in cases:
        ent = torch.rand(1, n, generator=torch.Generator().manual_seed(n))
        m = torch.ones(1, n, dtype=torch.bool)
        counts.append([int(top_entropy_mask(ent, m, rho, mode=mode).sum())
                       for mode in ("top", "bottom", "random")])
    return counts


@case("mask")
def ties_per_sequence_and_padding_never_chosen():
    from nano_forkrl.masking import top_entropy_mask

    ent = torch.tensor([[1.0, 1.0, 1.0, 5.0, 0.0, 2.0], [3.0, 3.0, -math.inf, 3.0, 9.0, 9.0]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 0, 0]])
    return [top_entropy_mask(ent, mask, rho, per_sequence=ps, mode=mo)
            for rho in (0.25, 0.6, 1.0, 0.0) for ps in (False, True) for mo in ("top", "bottom")]


@case("mask")
def garbage_under_the_mask_and_gradient():
    from nano_forkrl.masking import masked_mean, masked_sum

    x = torch.tensor([[1.0, math.nan, 3.0], [math.inf, 5.0, 6.0]], requires_grad=True)
    mask = torch.tensor([[1, 0, 1], [0, 1, 1]])
    masked_mean(x, mask).backward()
    return masked_mean(x, mask.bool(), dim=0), masked_sum(x, mask.float(), dim=-1), x.grad


@case("loss")
def dual_clip_kl_and_naive():
    from nano_forkrl.loss import clipped_pg_loss, kl_k3, naive_pg_loss

    logp, old = randn(3, 5, seed=7), randn(3, 5, seed=8)
    adv = torch.tensor([[1.5], [-2.0], [0.5]])
    loss, stats = clipped_pg_loss(logp, old, adv, eps_low=0.1, eps_high=0.3, dual_clip=3.0)
    kl = kl_k3(logp, torch.full_like(logp, -math.inf))
    return loss, stats, naive_pg_loss(logp, adv.view(-1)), kl


@case("loss")
def aggregate_empty_masks_and_micro_batches():
    from nano_forkrl.loss import aggregate

    loss = randn(4, 6, seed=9)
    m = torch.rand(4, 6, generator=torch.Generator().manual_seed(9)) > 0.5
    empty = torch.zeros(2, 3, dtype=torch.bool)
    halves = [aggregate(loss[i:i + 2], m[i:i + 2], "token-mean", num_tokens=m.sum(),
                        num_sequences=4) for i in (0, 2)]
    return [aggregate(torch.full((2, 3), math.nan), empty),
            aggregate(loss[:2, :3], empty, "seq-mean-token-mean"), sum(halves),
            aggregate(loss, m, "token-mean")]


@case("update", rtol=1e-4, atol=1e-6)
def current_source_kl_and_clipping():
    from nano_forkrl.masking import TokenSelection
    from nano_forkrl.tasks.rollout_batch import RolloutBatch
    from nano_forkrl.update import UpdateSettings, policy_step

    model, b = tiny_model(seed=3), batch(seed=4)
    rollouts = RolloutBatch(**b, advantages=torch.tensor([[1.0], [-1.0], [2.0], [0.0]]),
                            old_logprobs=randn(4, 10, seed=5) * 0.1 - 3.0,
                            ref_logprobs=randn(4, 10, seed=6) * 0.1 - 3.0)
    settings = UpdateSettings(selection=TokenSelection(rho=0.3, source="current"), kl_coef=0.1,
                              micro_batch_size=2, max_grad_norm=0.05, loss_agg="token-mean")
    stats = policy_step(model, torch.optim.SGD(model.parameters(), lr=0.5), rollouts, settings)
    return asdict(stats), model.model.embed_tokens.weight[:6]


@case("update")
def a_nan_loss_skips_the_step():
    from nano_forkrl.masking import TokenSelection
    from nano_forkrl.tasks.rollout_batch import RolloutBatch
    from nano_forkrl.update import UpdateSettings, policy_step

    model, b = tiny_model(seed=4), batch(seed=5)
    before = [p.detach().clone() for p in model.parameters()]
    mask = TokenSelection(rho=1.0).for_batch(torch.ones(4, 10), b["response_mask"])
    rollouts = RolloutBatch(**b, advantages=torch.tensor([math.nan, 1.0, 1.0, 1.0]),
                            old_logprobs=torch.zeros(4, 10), token_mask=mask)
    stats = policy_step(model, torch.optim.SGD(model.parameters(), lr=0.5), rollouts,
                        UpdateSettings(loss_agg="seq-mean-token-mean"))
    return stats.nonfinite, all(torch.equal(p, q) for p, q in zip(before, model.parameters()))
