"""The policy-gradient loss: DAPO's clip-higher surrogate per token, and how it is averaged over
tokens.

Per token t of response i, with ratio = pi_theta / pi_old = exp(logp - old_logp) and advantage A_i:

    loss_it = -min(ratio * A_i, clip(ratio, 1 - eps_low, 1 + eps_high) * A_i)
              (J_DAPO's term; clip-higher: eps_high > eps_low)
    dual clip (optional, A_i < 0 only): loss_it = min(loss_it, -c * A_i), c > 1
              (caps the loss of a huge ratio)
    KL (optional): + kl_coef * k3,  k3 = exp(ref - logp) - (ref - logp) - 1 >= 0
              (Schulman's k3 estimator)

Only trained tokens (the top-rho highest-entropy response tokens, Wang et al. 2025) count;
`aggregate` reduces the per-token loss to one number and documents the four normalisers in use (they
differ ~1/rho in scale). update.py writes the whole objective and runs the optimizer step; this file
is pure tensor math (device-agnostic: the same code on CPU and CUDA).
"""
import torch

AGGREGATIONS = ("token-mean", "token-mean-all", "seq-mean-token-mean", "constant")  # `aggregate`
MAX_LOG_RATIO = 20.0  # exp(20) ~ 5e8: keeps ratios finite (an inf ratio turns 0-gradients into NaN)


def _per_row(advantages: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Advantages [B] or [B, 1] -> [B, 1], broadcastable against per-token [B, T]."""
    return advantages.reshape(like.shape[0], 1).to(like.dtype)


def naive_pg_loss(logprobs, advantages):
    """REINFORCE per-token loss -A * logp: [B, T] (A from [B] or [B, 1])."""
    # BEGIN SOLUTION loss
    return -_per_row(advantages, logprobs) * logprobs
    # END SOLUTION


def clipped_pg_loss(logprobs, old_logprobs, advantages, *, eps_low=0.2, eps_high=0.28,
                    dual_clip=None):
    """DAPO clip-higher surrogate -> (loss [B, T], stats of per-token tensors). Stats (bool unless
    noted): clipped_low  ratio < 1 - eps_low and A < 0 (the low clip is active: pushing the token
    down stops there), clipped_high ratio > 1 + eps_high and A > 0, is_clipped (CS336): the clipped
    term was the smaller one, dual_clipped (the dual clip bound was taken), ratio (float). dual_clip
    None is off; else it must be > 1 (ValueError; this check is given). Gradients flow to logprobs
    only (old_logprobs are treated as constants)."""
    if dual_clip is not None and dual_clip <= 1:
        raise ValueError(f"dual_clip must be > 1, got {dual_clip}")
    # BEGIN SOLUTION loss
    adv = _per_row(advantages, logprobs)
    log_ratio = (logprobs - old_logprobs.detach()).clamp(-MAX_LOG_RATIO, MAX_LOG_RATIO)
    ratio = torch.exp(log_ratio)
    unclipped = ratio * adv
    clipped = ratio.clamp(1 - eps_low, 1 + eps_high) * adv
    loss = -torch.minimum(unclipped, clipped)
    dual_clipped = torch.zeros_like(loss, dtype=torch.bool)
    if dual_clip is not None:
        dual_clipped = (adv < 0) & (loss > -dual_clip * adv)
        loss = torch.where(dual_clipped, -dual_clip * adv, loss)
    stats = {"clipped_low": (ratio < 1 - eps_low) & (adv < 0),
             "clipped_high": (ratio > 1 + eps_high) & (adv > 0),
             "is_clipped": clipped < unclipped, "dual_clipped": dual_clipped,
             "ratio": ratio.detach()}
    return loss, stats
    # END SOLUTION


def kl_k3(logprobs, ref_logprobs):
    """Per-token k3 estimate of KL(pi || pi_ref) for tokens sampled from pi: exp(d) - d - 1 with d =
    ref - logp. Always >= 0. d is clamped to +-20 so a -inf log-prob gives a large finite value, not
    inf/NaN (tokens beyond the clamp get no KL gradient). Also used for approx_kl(old || current)
    with logprobs=old, ref=current."""
    # BEGIN SOLUTION loss
    d = (ref_logprobs - logprobs).clamp(-MAX_LOG_RATIO, MAX_LOG_RATIO)
    return torch.exp(d) - d - 1
    # END SOLUTION


# --- aggregation over the trained tokens ---------------------------------------------------------
def aggregate(per_token_loss, token_mask, mode="token-mean", *, response_mask=None, num_tokens=None,
              num_sequences=None, constant=None):
    """Reduce a per-token loss [B, T] over the trained tokens (token_mask) to a scalar. S = sum of
    trained losses.

    "token-mean"          S / #trained tokens                    the 80/20 paper's released code
                                                                 (default)
    "token-mean-all"      S / #response tokens                   the paper's formula (= J_DAPO's
                                                                 1/sum|o_i|), TRL; ~1/rho times
                                                                 smaller than token-mean
    "seq-mean-token-mean" sum_i (S_i / #trained_i) / #sequences  GRPO; a sequence with no trained
                                                                 token adds 0 but still counts
                                                                 (keeps the normaliser fixed)
    "constant"            S / (#sequences * constant)            Dr.GRPO, constant = max response
                                                                 length

    Micro-batching: pass the MINI-batch's num_tokens (#trained or #response tokens) and
    num_sequences; then the sum of the micro-batch results equals the mini-batch result, hence the
    same gradient. Left None they are taken from this tensor. Untrained positions are dropped with
    torch.where, so NaN/inf there cannot leak into the loss. No trained token gives a loss of
    exactly 0 (not NaN: the normaliser is at least 1), unlike masking.masked_mean. The argument
    checks (an unknown mode, "token-mean-all" without response_mask or num_tokens, "constant"
    without constant: ValueError) are given."""
    if mode not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation mode {mode!r}: use one of {AGGREGATIONS}")
    if mode == "token-mean-all" and num_tokens is None and response_mask is None:
        raise ValueError("token-mean-all needs response_mask or num_tokens")
    if mode == "constant" and constant is None:
        raise ValueError('mode "constant" needs constant (e.g. the max response length)')
    # BEGIN SOLUTION loss
    trained = token_mask.bool()
    loss = torch.where(trained, per_token_loss, torch.zeros_like(per_token_loss))
    if num_sequences is None:
        num_sequences = loss.shape[0]
    if mode == "token-mean":
        denom = trained.sum() if num_tokens is None else num_tokens
    elif mode == "token-mean-all":
        denom = response_mask.bool().sum() if num_tokens is None else num_tokens
    elif mode == "seq-mean-token-mean":
        per_seq = loss.sum(-1) / trained.sum(-1).clamp(min=1)
        return per_seq.sum() / num_sequences
    else:  # "constant"
        denom = num_sequences * constant
    # 0 trained tokens -> loss 0
    return loss.sum() / torch.as_tensor(denom, device=loss.device).clamp(min=1)
    # END SOLUTION
