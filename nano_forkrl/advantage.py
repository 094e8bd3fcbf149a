"""How good was each sample relative to its group: group-normalised advantages and DAPO's reward
shaping.

For every prompt we sample a group of G responses and score them with a verifiable reward r_i. The
group is its own baseline (no value network). Rows are laid out group-contiguous: rows
g*G .. g*G+G-1 are prompt g.

    GRPO      A_i = (r_i - mean(r_group)) / (std(r_group) + eps)   (std unbiased, like torch.std)
    Dr.GRPO   A_i =  r_i - mean(r_group)                            (no per-question reweighting)

Every token of response i gets the same advantage A_i.

DAPO (Yu et al. 2025, arXiv 2503.14476) adds two things that live here:
  * dynamic sampling (J_DAPO's constraint 0 < #correct < G): a group whose rewards are all equal has
    A = 0 for every sample, hence no gradient; drop it (and sample more prompts) instead of
    wasting the batch on it.
  * soft overlong punishment (eq. 13): a length-aware penalty added to the reward of responses that
    approach or exceed the generation budget, so truncated answers are discouraged smoothly
    rather than cliff-like.

Reward values. DAPO scores right/wrong as +1/-1, CS336 as 1/0. The map r -> 2r - 1 shifts the mean
and doubles the std, so GRPO advantages are identical under both (up to eps). Dr.GRPO does not
divide by the std, so its advantages are exactly twice as large with +1/-1: the effective learning
rate doubles. Our default reward is 1/0 (as CS336); train.py exposes the choice.

Device: everything is elementwise or a reshape, so it runs wherever `rewards` lives
(CPU or CUDA alike).
"""
import torch


ESTIMATORS = {"grpo": True, "drgrpo": False}  # name -> normalize_std of group_advantages


def _grouped(rewards, group_size: int) -> torch.Tensor:
    """Validate and reshape rewards [B] -> [B // G, G] (float)."""
    r = torch.as_tensor(rewards)
    r = r.float() if not r.is_floating_point() else r
    if r.dim() != 1:
        raise ValueError(f"rewards must be 1-D, got shape {tuple(r.shape)}")
    if group_size < 2:
        raise ValueError(f"group_size must be >= 2 (a group of one has no baseline), got "
                         f"{group_size}")
    if r.numel() % group_size != 0:
        raise ValueError(f"{r.numel()} rewards do not split into groups of {group_size}")
    if torch.isnan(r).any():
        raise ValueError("rewards contain NaN")
    return r.view(-1, group_size)


def group_advantages(rewards, group_size: int, *, normalize_std: bool = True,
                     eps: float = 1e-6) -> torch.Tensor:
    """GRPO (normalize_std=True) or Dr.GRPO (False) advantages, one per sample: [B]."""
    # BEGIN SOLUTION advantage
    g = _grouped(rewards, group_size)
    adv = g - g.mean(dim=1, keepdim=True)
    if normalize_std:
        adv = adv / (g.std(dim=1, keepdim=True) + eps)  # an all-equal group gives 0 / eps = 0
    return adv.reshape(-1)
    # END SOLUTION


def dynamic_sampling_keep(rewards, group_size: int) -> torch.Tensor:
    """DAPO dynamic sampling filter: bool [B], False for every sample of a group whose rewards are
    all equal (all right or all wrong: zero advantage, no learning signal), True otherwise."""
    # BEGIN SOLUTION advantage
    g = _grouped(rewards, group_size)
    informative = (g != g[:, :1]).any(dim=1)  # [num_groups]
    return informative.repeat_interleave(group_size)
    # END SOLUTION


def overlong_penalty(lengths, max_len: int, buffer: int, factor: float = 1.0) -> torch.Tensor:
    """DAPO soft overlong punishment (eq. 13), added to the reward. With L_max = max_len,
    L_cache = buffer:

        0                                     if L <= L_max - L_cache
        ((L_max - L_cache) - L) / L_cache     if L_max - L_cache < L <= L_max  (ramp 0 -> -1)
        -1                                    if L > L_max
    all times `factor`. lengths: response lengths in tokens (any shape); returns float of the same
    shape. buffer must be in (0, max_len] (ValueError otherwise; this check is given)."""
    if not 0 < buffer <= max_len:
        raise ValueError(f"buffer must be in (0, max_len={max_len}], got {buffer}")
    # BEGIN SOLUTION advantage
    length = torch.as_tensor(lengths).float()
    start = max_len - buffer
    ramp = (start - length) / buffer
    penalty = torch.where(length <= start, torch.zeros_like(length), ramp)
    return torch.where(length > max_len, torch.full_like(length, -1.0), penalty) * factor
    # END SOLUTION
