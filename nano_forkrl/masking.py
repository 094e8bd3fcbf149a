"""Which tokens learn: masked reductions and the top-rho forking-token mask.

Wang et al. 2025 (arXiv 2506.01939) keep the DAPO objective but multiply each token's term by

    1[H_t >= tau_rho],   tau_rho = the entropy above which lie the top rho (= 20%) of response
                         tokens,

so only the high-entropy "forking tokens" get a policy gradient. `top_entropy_mask` builds that
indicator as an exact top-k with k = ceil(rho * N), N = number of valid response tokens (prompt and
padding never count and are never chosen). Among equal entropies the earlier position (row-major
flat index) wins, so the mask is deterministic. It also builds the paper's controls: mode="bottom"
(the other 1 - rho, i.e. the 80% lowest-entropy tokens) and mode="random" (k uniformly random
response tokens).

Which policy's entropy selects the tokens is decided in one place, `TokenSelection` (the loop's only
way to build a mask). source="rollout" (default, the paper's text "top rho within each batch"): the
rollout (old) policy's entropies over the whole rollout batch, once, fixed while the policy moves.
source="current" (the released verl code): the current policy's entropies inside each micro-batch,
re-ranked at every forward. verl took the threshold with torch.quantile; we avoid it: it
interpolates (so the count is not exactly k) and refuses inputs above 2^24 elements; a stable sort
has neither problem.

CPU and CUDA run the same code and everything stays on the tensor's device: rows are ranked by one
batched sort and k is computed on the device, so the NaN check is the only host sync.
"""
from dataclasses import dataclass
from fractions import Fraction

import torch

MODES, SOURCES = ("top", "bottom", "random"), ("rollout", "current")
NEEDS_MASK = 'source "rollout" needs the rollout batch\'s mask (TokenSelection.for_batch)'


def masked_sum(tensor: torch.Tensor, mask: torch.Tensor, dim=None) -> torch.Tensor:
    """sum(tensor * mask) over `dim` (all elements if None). Masked-out entries count as exactly 0,
    even if they hold nan/inf (padding garbage must not poison the sum). Mask: bool or 0/1
    numbers."""
    # BEGIN SOLUTION mask
    kept = torch.where(mask.bool(), tensor * mask, 0.0)
    return kept.sum() if dim is None else kept.sum(dim)
    # END SOLUTION


def masked_mean(tensor: torch.Tensor, mask: torch.Tensor, dim=None) -> torch.Tensor:
    """CS336: sum(tensor * mask, dim) / sum(mask, dim). A slice whose mask is all zero gives 0/0 =
    nan, exactly like the CS336 reference; callers that can meet empty rows must handle that
    themselves."""
    # BEGIN SOLUTION mask
    count = mask.sum() if dim is None else mask.sum(dim)
    return masked_sum(tensor, mask, dim) / count
    # END SOLUTION


def _num_selected(rho: float, n):
    """k = ceil(rho * n) with no float error (0.2 * 10 is 2, not 3). rho is read as the fraction p/q
    the user wrote (0.2 -> 1/5; denominators up to 10^6), then k = ceil(p n / q) in integer
    arithmetic. Works for a Python int n and for an int64 tensor of per-row counts."""
    frac = Fraction(repr(float(rho))).limit_denominator(10**6)
    p, q = frac.numerator, frac.denominator
    return (p * n + q - 1) // q


def top_entropy_mask(entropy: torch.Tensor, response_mask: torch.Tensor, rho: float = 0.2, *,
                     mode: str = "top", per_sequence: bool = False,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Bool mask (shape of `entropy`) of the forking tokens among the valid tokens of
    `response_mask`.

    mode="top":    the k = ceil(rho N) highest-entropy valid tokens (ties: earlier position first).
    mode="bottom": the valid tokens NOT chosen by "top" (N - k lowest; rho=0.2 -> the bottom 80%).
    mode="random": k valid tokens drawn uniformly without replacement (`generator`: reproducible).
    per_sequence=False ranks all valid tokens of the whole tensor together (the paper: "within each
    batch");
    True applies the same rule to each row (last dim) separately with k_i = ceil(rho N_i).
    rho = 1 returns response_mask (as bool); rho = 0 selects nothing.
    """
    if not 0.0 <= rho <= 1.0:  # also catches nan
        raise ValueError(f"rho must be in [0, 1], got {rho}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if entropy.shape != response_mask.shape:
        raise ValueError(f"entropy {tuple(entropy.shape)} and response_mask "
                         f"{tuple(response_mask.shape)} differ")
    valid = response_mask.bool()
    if entropy.numel() == 0:
        return valid.clone()
    if bool((torch.isnan(entropy) & valid).any()):
        raise ValueError("entropy is NaN on a response token: the ranking would be meaningless "
                         "(check the logits / log-probs for overflow)")
    # BEGIN SOLUTION mask
    # Rows to rank within: one row for the whole batch, or one per sequence.
    width = entropy.shape[-1] if (per_sequence and entropy.dim() > 0) else entropy.numel()
    valid_rows = valid.reshape(-1, width)
    if mode == "random":  # top-k of i.i.d. uniform scores = a uniformly random k-subset
        gen_device = generator.device if generator is not None else entropy.device
        score = torch.rand(valid_rows.shape, generator=generator, device=gen_device)
        score = score.to(entropy.device)
    else:
        # Clamp so that valid tokens rank above every invalid one, even a valid token whose score is
        # -inf.
        score = entropy.reshape(-1, width).clamp(min=torch.finfo(entropy.dtype).min)
    score = torch.where(valid_rows, score, float("-inf"))
    # Stable descending sort: equal scores keep their original (position) order.
    order = torch.sort(score, dim=-1, descending=True, stable=True).indices
    rank = torch.empty_like(order)
    rank.scatter_(-1, order, torch.arange(width, device=order.device).expand_as(order))
    k = _num_selected(rho, valid_rows.sum(dim=-1, keepdim=True))  # [rows, 1], on device
    top = valid_rows & (rank < k)
    chosen = valid_rows & ~top if mode == "bottom" else top
    return chosen.reshape(entropy.shape)
    # END SOLUTION


@dataclass(frozen=True)
class TokenSelection:
    """Which response tokens get the policy gradient: the one owner of that decision, in both of its
    sources.

    rho, mode ("top" forking tokens | "bottom" 1 - rho | "random" rho), per_sequence: see
        `top_entropy_mask`.
    source "rollout": `for_batch` ranks the old policy's entropy over the whole rollout batch, once;
        every micro-batch then trains its rows of that fixed mask.
    source "current": `for_batch` returns None, and `for_micro_batch` ranks the current policy's
        (detached) entropy among that micro-batch's response tokens, at every forward.
    `trained_count` gives the update its loss's token count: update.py never asks for the source.
    """
    rho: float = 0.2
    mode: str = "top"
    source: str = "rollout"
    per_sequence: bool = False

    def __post_init__(self):
        if not 0.0 <= self.rho <= 1.0:  # also catches nan
            raise ValueError(f"rho must be in [0, 1], got {self.rho}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {self.source!r}")
        if self.per_sequence and self.source == "current":
            raise ValueError("per_sequence ranks within each rollout response: use it with source "
                             "'rollout'")

    def for_batch(self, old_entropy, response_mask, generator=None):
        """The rollout batch's mask (source "rollout"), or None: chosen per micro-batch (source
        "current")."""
        if self.source == "current":
            return None
        return top_entropy_mask(old_entropy, response_mask, self.rho, mode=self.mode,
                                per_sequence=self.per_sequence, generator=generator)

    def trained_count(self, batch_mask, response_mask):
        """How many tokens of a (mini-)batch are trained, as a tensor (the loss's "token-mean"
        normaliser): the response tokens of `batch_mask` (source "rollout"), or None: with source
        "current" each micro-batch's count is known only after its forward."""
        if self.source == "current":
            return None
        if batch_mask is None:
            raise ValueError(NEEDS_MASK)
        return (batch_mask.bool() & response_mask.bool()).sum()

    def for_micro_batch(self, batch_rows, current_entropy, response_mask):
        """The trained tokens of one micro-batch: `batch_rows` (its rows of `for_batch`'s mask) for
        "rollout", top-rho of `current_entropy` among its response tokens for "current". Always
        inside response_mask."""
        response_mask = response_mask.bool()
        if self.source == "rollout":
            if batch_rows is None:
                raise ValueError(NEEDS_MASK)
            return batch_rows.bool() & response_mask
        chosen = top_entropy_mask(current_entropy, response_mask, self.rho, mode=self.mode)
        return chosen & response_mask
