"""The policy step: one optimizer step of DAPO's clipped surrogate on a mini-batch's forking tokens.

The objective (Wang et al. 2025 = DAPO, Yu et al. 2025, with an entropy mask), maximised:

    J(theta) = 1/N sum_i sum_t trained_it min(ratio_it A_i,
                                              clip(ratio_it, 1 - eps_low, 1 + eps_high) A_i)

    ratio_it   = pi_theta(o_it | q, o_i<t) / pi_old(o_it | q, o_i<t)   (importance ratio, loss.py)
    A_i        = the group-normalised reward of response i              (advantage.py)
    trained_it = 1[H_it >= tau_rho]: the top-rho highest-entropy response tokens, the forking
                 tokens (masking.py; also the controls: the bottom 1 - rho, a random rho)
    eps_high > eps_low: clip-higher (DAPO); optional dual clip for A_i < 0 (loss.py)
    N          = sum_i sum_t trained_it, the mini-batch's trained tokens ("token-mean", the
                 default; `settings.loss_agg` picks another normaliser, loss.aggregate)

Optional terms, per trained token and with the same normaliser: - kl_coef k3(pi_theta, pi_ref), a
KL to a reference (off, as in DAPO), and + entropy_coef H_it, an entropy bonus (off by default; the
current policy's entropy with its gradient, as TRL and verl add it). The loss is -J, accumulated
over micro-batches; then the gradient norm is clipped and the optimizer steps.

`settings.selection` (masking.TokenSelection) gives each micro-batch's trained tokens and N. With
the rollout mask (the default) N is known before any forward: the micro-batch size does not change
the result. With the current policy's mask per micro-batch (the released verl code) N is known only
after each forward, so, like verl, "token-mean" averages each micro-batch over its own trained
tokens and weights it by its share of the mini-batch's sequences.

A NaN/inf loss or gradient norm skips the step (gradients dropped, parameters and optimizer state
untouched; UpdateStats.nonfinite). Statistics are summed on the model's device and read back with
one sync at the end; the forward passes run under bf16 autocast on CUDA (entropy.autocast).
"""
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from nano_forkrl.entropy import autocast, real_width, token_logprobs_and_entropy
from nano_forkrl.loss import aggregate, clipped_pg_loss, kl_k3
from nano_forkrl.masking import TokenSelection, masked_sum

STAT_NAMES = ("loss", "trained", "clipped_low", "clipped_high", "approx_kl", "kl_ref",
              "entropy_trained", "entropy_untrained", "untrained")  # summed per micro-batch


def one_process(tensor):
    """The sum over the processes of one process: the tensor itself."""
    return tensor


@dataclass(frozen=True)
class UpdateSettings:
    """Everything `policy_step` needs besides the batch: the objective and how it is computed.

    selection: which tokens learn (masking.TokenSelection: rho, mode, rollout/current source).
    eps_low, eps_high, dual_clip (None = off): DAPO's clip-higher surrogate (loss.clipped_pg_loss).
    loss_agg: the normaliser (loss.aggregate); constant: Dr.GRPO's, for loss_agg="constant" only.
    kl_coef: weight of the k3 KL to a reference policy (0 = none, as in DAPO).
    entropy_coef: weight of the entropy bonus on the trained tokens (0 = none).
    micro_batch_size: sequences per forward/backward; max_grad_norm: clipping (None or 0 = none).
    temperature: the sampler's (log-probs of the distribution sampled from); chunk_size: entropy's.
    reduce: the sum over the processes' shares of the mini-batch (run/place/), applied to the
        normalisers and statistics; `one_process` (the tensor itself) without torchrun.
    """
    selection: TokenSelection = TokenSelection()
    eps_low: float = 0.2
    eps_high: float = 0.28
    dual_clip: float | None = None
    loss_agg: str = "token-mean"
    constant: float | None = None
    kl_coef: float = 0.0
    entropy_coef: float = 0.0
    micro_batch_size: int = 8
    max_grad_norm: float | None = 1.0
    temperature: float = 1.0
    chunk_size: int = 1024
    reduce: Callable[[torch.Tensor], torch.Tensor] = one_process

    def __post_init__(self):
        if not (0 <= self.eps_low < 1 and self.eps_high >= 0):
            raise ValueError(f"need 0 <= eps_low < 1 and eps_high >= 0, got {self.eps_low}, "
                             f"{self.eps_high}")
        if self.dual_clip is not None and not self.dual_clip > 1:
            raise ValueError(f"dual_clip must be None (off) or > 1, got {self.dual_clip}")
        for name in ("kl_coef", "entropy_coef", "max_grad_norm"):
            if getattr(self, name) is not None and not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.loss_agg == "constant" and self.constant is None:
            raise ValueError('loss_agg "constant" needs constant (Dr.GRPO: max response length)')


@dataclass(frozen=True)
class UpdateStats:
    """One policy step's statistics (python numbers), over the whole mini-batch (all processes')."""
    loss: float
    grad_norm: float
    clip_frac_low: float  # share of trained tokens where the low clip is active (A < 0)
    clip_frac_high: float  # ... the high clip (A > 0)
    approx_kl: float  # k3 estimate of KL(pi_old || pi_theta), mean over trained tokens
    kl_ref: float  # k3 to the reference, mean over trained tokens (0 without one)
    frac_tokens_trained: float  # trained / response tokens
    tokens_trained: float
    entropy_trained: float  # mean H_t over trained tokens
    entropy_untrained: float  # ... over the untrained response tokens
    nonfinite: bool  # the loss or gradient was NaN/inf: the optimizer step was skipped


def policy_step(model, optimizer, batch, settings=UpdateSettings()) -> UpdateStats:
    """One optimizer step of the module docstring's objective over `batch`, a RolloutBatch
    (tasks/rollout_batch.py): input_ids, labels, attention_mask, response_mask and old_logprobs
    [B, T] (the rollout policy's log-probs of the labels), advantages [B] (or [B, 1]), token_mask
    [B, T] bool (`settings.selection.for_batch(...)` of the rollout batch; None for the "current"
    source), ref_logprobs [B, T] (the reference policy's, needed when kl_coef > 0). Returns the
    step's UpdateStats. kl_coef > 0 without ref_logprobs is a ValueError (this check is given)."""
    if settings.kl_coef > 0 and batch.ref_logprobs is None:
        raise ValueError("kl_coef > 0 needs ref_logprobs (the reference policy's log-probs)")
    # BEGIN SOLUTION update
    selection, micro = settings.selection, settings.micro_batch_size
    device = next(model.parameters()).device
    batch = batch.to(device)
    response = batch.response_mask.bool()
    n_seq = response.shape[0]
    adv = torch.as_tensor(batch.advantages).reshape(n_seq).to(device, torch.float32)
    old = batch.old_logprobs.to(torch.float32)
    ref = batch.ref_logprobs.to(torch.float32) if settings.kl_coef > 0 else None
    n_trained = selection.trained_count(batch.token_mask, response)  # None: per micro-batch only
    token_mean = settings.loss_agg == "token-mean"
    per_micro_mean = token_mean and n_trained is None  # verl's weighting (module docstring)
    num_tokens = n_trained if token_mean and not per_micro_mean else response.sum()
    num_tokens = settings.reduce(num_tokens)  # the mini-batch spans every process
    n_all = int(settings.reduce(torch.tensor(n_seq, device=device)))

    optimizer.zero_grad()
    sums = torch.zeros(len(STAT_NAMES), dtype=torch.float64, device=device)
    for start in range(0, n_seq, micro):
        rows = slice(start, start + micro)  # columns up to its last real token: no padding compute
        mb = (rows, slice(0, real_width(batch.attention_mask[rows])))
        # bf16 forward on CUDA (a no-op on CPU); backward runs outside, as torch advises
        with autocast(model):
            logp, entropy = token_logprobs_and_entropy(
                model, batch.input_ids[mb], batch.attention_mask[mb], labels=batch.labels[mb],
                temperature=settings.temperature, chunk_size=settings.chunk_size, with_grad=True)
        fixed = None if batch.token_mask is None else batch.token_mask[mb]  # the rollout mask
        trained = selection.for_micro_batch(fixed, entropy.detach(), response[mb])
        # Untrained positions may hold padding garbage (-inf old log-probs): zero them BEFORE the
        # loss math; torch.where drops their value later, but a NaN would poison the backward.
        zero = torch.zeros_like(logp)
        logp, old_logp = torch.where(trained, logp, zero), torch.where(trained, old[mb], zero)
        loss_tok, clip = clipped_pg_loss(logp, old_logp, adv[mb[0]], eps_low=settings.eps_low,
                                         eps_high=settings.eps_high, dual_clip=settings.dual_clip)
        kl_ref = zero
        if ref is not None:
            kl_ref = kl_k3(logp, torch.where(trained, ref[mb], zero))
            loss_tok = loss_tok + settings.kl_coef * kl_ref
        if settings.entropy_coef:  # the bonus keeps its gradient: it is what pushes the entropy up
            loss_tok = loss_tok - settings.entropy_coef * entropy
        if per_micro_mean:
            loss = aggregate(loss_tok, trained, "token-mean") * (response[mb].shape[0] / n_all)
        else:
            loss = aggregate(loss_tok, trained, settings.loss_agg, response_mask=response[mb],
                             num_tokens=num_tokens, num_sequences=n_all, constant=settings.constant)
        loss.backward()
        sums += _sums(loss, trained, response[mb] & ~trained, clip, logp, old_logp, kl_ref, entropy)

    sums = settings.reduce(sums)
    params = [p for p in model.parameters() if p.grad is not None]
    grad_norm = torch.nn.utils.clip_grad_norm_(params, settings.max_grad_norm or float("inf"))
    values = dict(zip(STAT_NAMES, sums.tolist()))  # the one device -> host sync (+ grad_norm)
    grad_norm = float(grad_norm)
    nonfinite = not (math.isfinite(values["loss"]) and math.isfinite(grad_norm))
    if not nonfinite:
        optimizer.step()
    optimizer.zero_grad()  # on a skipped step this just drops the bad gradients
    return _stats(values, grad_norm, nonfinite)
    # END SOLUTION


@torch.no_grad()
def _sums(loss, trained, untrained, clip, logp, old_logp, kl_ref, entropy):
    """One micro-batch's terms of the STAT_NAMES sums (masked sums, not boolean indexing: indexing
    would sync CUDA every micro-batch). clip: loss.clipped_pg_loss's statistics."""
    entropy = entropy.detach()
    approx_kl = kl_k3(old_logp, logp.detach())
    parts = [masked_sum(x, trained) for x in (clip["clipped_low"], clip["clipped_high"], approx_kl,
                                               kl_ref.detach(), entropy)]
    terms = (loss.detach(), trained.sum(), *parts, masked_sum(entropy, untrained), untrained.sum())
    return torch.stack([t.double() for t in terms])


def _stats(values, grad_norm, nonfinite):
    """UpdateStats from the summed STAT_NAMES `values` (means over trained or untrained tokens)."""
    n_tr, n_untr = values["trained"], values["untrained"]
    den = max(n_tr, 1.0)
    return UpdateStats(
        loss=values["loss"], grad_norm=grad_norm, clip_frac_low=values["clipped_low"] / den,
        clip_frac_high=values["clipped_high"] / den, approx_kl=values["approx_kl"] / den,
        kl_ref=values["kl_ref"] / den, frac_tokens_trained=n_tr / max(n_tr + n_untr, 1.0),
        tokens_trained=n_tr,
        entropy_trained=values["entropy_trained"] / den,
        entropy_untrained=values["entropy_untrained"] / max(n_untr, 1.0), nonfinite=nonfinite)
