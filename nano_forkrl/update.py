"""The policy step: one optimizer step of DAPO's clipped surrogate on the forking tokens of a mini-batch.

    forward (with grad) -> logp, entropy     per micro-batch, chunked (entropy.py)
    which tokens learn  -> token_mask         top-rho entropy among response tokens (masking.py)
    per-token loss      -> clipped surrogate (+ kl_coef * k3 to a reference)   (loss.py)
    aggregate           -> scalar, normalised over the whole MINI-batch, backward; repeat; clip grad norm; step

Which tokens learn is `settings.selection` (masking.TokenSelection), the mask's one owner:
  source "rollout" (default; the paper's text "top-rho within each batch"): the caller passes the rollout batch's
      mask (`selection.for_batch`, from the old policy's entropy), fixed while the policy moves. Micro-batch size
      does not change the result: "token-mean" divides every micro-batch by the mini-batch's trained-token count.
  source "current" (the released verl code): inside each micro-batch, top-rho of the CURRENT policy's entropy
      (detached) among its response tokens (`selection.for_micro_batch`). The count is only known after the
      forward, so, exactly like verl, "token-mean" averages each micro-batch over its own selected tokens and
      weights it by its share of the mini-batch's sequences (verl: loss * micro_bsz / mini_bsz). Other modes use
      mini-batch normalisers in both cases.

Stats: approx_kl is the k3 estimate of KL(pi_old || pi_theta) on the trained tokens (samples come from pi_old),
clip fractions and entropies are over trained (or untrained response) tokens. A NaN/inf loss or gradient norm
skips the step (gradients dropped, parameters and optimizer state untouched) and reports skipped=True.

Device: batch tensors may be on CPU and are moved to the model's device; statistics are accumulated on the device
and read back with a single sync at the end, so CUDA never waits per micro-batch.
"""
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from nano_forkrl.entropy import autocast, real_width, token_logprobs_and_entropy
from nano_forkrl.loss import aggregate, clipped_pg_loss, kl_k3
from nano_forkrl.masking import TokenSelection, masked_sum

STAT_NAMES = ("loss", "trained", "clipped_low", "clipped_high", "approx_kl", "kl_ref", "entropy_trained",
              "entropy_untrained", "untrained")


@dataclass(frozen=True)
class UpdateSettings:
    """Everything `policy_step` needs besides the batch: the objective and how it is computed.

    selection: which tokens learn (masking.TokenSelection: rho, mode, rollout/current source).
    eps_low, eps_high, dual_clip: DAPO's clip-higher surrogate (loss.clipped_pg_loss); dual_clip None = off.
    loss_agg: the normaliser (loss.aggregate); constant: Dr.GRPO's constant, for loss_agg="constant" only.
    kl_coef: weight of the k3 KL to a reference policy (0 = none, as in DAPO).
    micro_batch_size: sequences per forward/backward; max_grad_norm: clipping (None = none).
    temperature: the sampler's (log-probs are those of the distribution sampled from); chunk_size: entropy.py's.
    reduce: under torchrun, the sum over the ranks' shares of the mini-batch (run/place/distributed.py), applied to
        the normalisers and statistics; None in one process.
    """
    selection: TokenSelection = TokenSelection()
    eps_low: float = 0.2
    eps_high: float = 0.28
    dual_clip: float | None = None
    loss_agg: str = "token-mean"
    constant: float | None = None
    kl_coef: float = 0.0
    micro_batch_size: int = 8
    max_grad_norm: float | None = 1.0
    temperature: float = 1.0
    chunk_size: int = 1024
    reduce: Callable[[torch.Tensor], torch.Tensor] | None = None

    def __post_init__(self):
        if self.loss_agg == "constant" and self.constant is None:
            raise ValueError('loss_agg "constant" needs constant (Dr.GRPO: the max response length)')


def policy_step(model, optimizer, batch, *, old_logprobs, advantages, token_mask=None, ref_logprobs=None,
                settings=UpdateSettings()) -> dict:
    """One optimizer step over `batch` (input_ids, labels, response_mask, attention_mask: [B, T]).

    old_logprobs [B, T]: rollout-policy log-probs of the labels; advantages [B] or [B, 1]; token_mask [B, T] bool:
    `settings.selection.for_batch(...)` of the rollout batch (None for the "current" source); ref_logprobs [B, T]:
    the reference policy's log-probs, needed when kl_coef > 0. Returns python floats: loss, grad_norm,
    clip_frac_low, clip_frac_high, approx_kl, kl_ref, frac_tokens_trained, tokens_trained, entropy_trained,
    entropy_untrained, and skipped (bool). kl_coef > 0 without ref_logprobs is a ValueError (this check is given)."""
    if settings.kl_coef > 0 and ref_logprobs is None:
        raise ValueError("kl_coef > 0 needs ref_logprobs (the reference policy's log-probs of the labels)")
    # BEGIN SOLUTION update
    cfg, selection = settings, settings.selection
    device = next(model.parameters()).device
    resp = batch["response_mask"].to(device).bool()
    n_seq = resp.shape[0]
    adv = torch.as_tensor(advantages).reshape(n_seq).to(device, torch.float32)
    old = old_logprobs.to(device, torch.float32)
    ref = ref_logprobs.to(device, torch.float32) if cfg.kl_coef > 0 else None
    token_mask = None if token_mask is None else token_mask.to(device)
    if selection.source == "rollout":  # the fixed mask over the whole mini-batch (token-mean's normaliser)
        token_mask = selection.for_micro_batch(token_mask, None, resp)
    per_micro_mean = selection.source == "current" and cfg.loss_agg == "token-mean"  # verl's weighting (doc)
    num_tokens = token_mask.sum() if cfg.loss_agg == "token-mean" and not per_micro_mean else resp.sum()
    n_all = n_seq  # the mini-batch's sequences; under torchrun the mini-batch spans all ranks
    if cfg.reduce is not None:
        num_tokens, n_all = cfg.reduce(num_tokens), int(cfg.reduce(torch.tensor(n_seq, device=device)))
    attn = batch.get("attention_mask")

    optimizer.zero_grad()
    acc = torch.zeros(len(STAT_NAMES), dtype=torch.float64, device=device)
    for start in range(0, n_seq, cfg.micro_batch_size):
        # rows start..start+micro, columns up to the micro-batch's last real token: padding costs no compute
        w = resp.shape[1] if attn is None else real_width(attn[start:start + cfg.micro_batch_size])
        mb = (slice(start, start + cfg.micro_batch_size), slice(0, w))
        with autocast(model):  # bf16 forward on CUDA (a no-op on CPU); backward runs outside, as torch advises
            logp, ent = token_logprobs_and_entropy(
                model, batch["input_ids"][mb].to(device), None if attn is None else attn[mb].to(device),
                labels=batch["labels"][mb].to(device), temperature=cfg.temperature, chunk_size=cfg.chunk_size,
                with_grad=True)
        ent, r = ent.detach(), resp[mb]
        m = selection.for_micro_batch(None if token_mask is None else token_mask[mb], ent, r)
        # Untrained positions may hold padding garbage (e.g. -inf old log-probs). Zero them BEFORE the loss math:
        # torch.where later drops their value, but a NaN there would still poison the backward pass.
        zero = torch.zeros_like(logp)
        lp, old_lp = torch.where(m, logp, zero), torch.where(m, old[mb], zero)
        loss_tok, st = clipped_pg_loss(lp, old_lp, adv[mb[0]], eps_low=cfg.eps_low, eps_high=cfg.eps_high,
                                       dual_clip=cfg.dual_clip)
        kl_ref = zero
        if ref is not None:
            kl_ref = kl_k3(lp, torch.where(m, ref[mb], zero))
            loss_tok = loss_tok + cfg.kl_coef * kl_ref
        if per_micro_mean:
            loss = aggregate(loss_tok, m, "token-mean") * (r.shape[0] / n_all)
        else:
            loss = aggregate(loss_tok, m, cfg.loss_agg, response_mask=r, num_tokens=num_tokens,
                             num_sequences=n_all, constant=cfg.constant)
        loss.backward()
        with torch.no_grad():  # masked sums, not boolean indexing: indexing would sync CUDA every micro-batch
            untrained = r & ~m
            sums = [masked_sum(x, where) for x, where in ((st["clipped_low"], m), (st["clipped_high"], m),
                    (kl_k3(old_lp, lp.detach()), m), (kl_ref.detach(), m), (ent, m), (ent, untrained))]
            acc += torch.stack([t.double() for t in (loss.detach(), m.sum(), *sums, untrained.sum())])

    if cfg.reduce is not None:
        acc = cfg.reduce(acc)
    params = [p for p in model.parameters() if p.grad is not None]
    grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm or float("inf"))
    values = dict(zip(STAT_NAMES, acc.tolist()))  # the one device -> host sync (plus grad_norm below)
    grad_norm = float(grad_norm)
    skipped = not (math.isfinite(values["loss"]) and math.isfinite(grad_norm))
    if not skipped:
        optimizer.step()
    optimizer.zero_grad()  # on a skipped step this just drops the bad gradients

    n_tr, n_untr = values["trained"], values["untrained"]
    den = max(n_tr, 1.0)
    return {"loss": values["loss"], "grad_norm": grad_norm, "clip_frac_low": values["clipped_low"] / den,
            "clip_frac_high": values["clipped_high"] / den, "approx_kl": values["approx_kl"] / den,
            "kl_ref": values["kl_ref"] / den, "frac_tokens_trained": n_tr / max(n_tr + n_untr, 1.0),
            "tokens_trained": n_tr, "entropy_trained": values["entropy_trained"] / den,
            "entropy_untrained": values["entropy_untrained"] / max(n_untr, 1.0), "skipped": skipped}
    # END SOLUTION
