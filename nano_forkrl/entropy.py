"""Per-token log-probs and entropy of the next-token distribution, chunked over tokens.

For logits z over the vocabulary (after dividing by the sampling temperature tau):

    log pi(y_t | q, y_<t) = z[y_t] - logsumexp(z)                     (the sampled token's log-prob)
    H_t = -sum_v p_v log p_v = logsumexp(z) - sum_v softmax(z)_v z_v   (token entropy, in nats)

H_t ranks the "forking tokens" (Wang et al. 2025); log pi feeds DAPO's ratio pi_theta / pi_old.

Memory is the point of this module. Qwen3 has V = 151,936, so the float32 logits of 4,096 tokens
alone take 2.5 GB. We never build them: the transformer body runs once ([B, T, H] hidden states),
then the output head is applied `chunk_size` tokens at a time and each [chunk, V] block is reduced
to two numbers per token before the next is made. With gradients, every block is checkpointed, so
backward also re-creates one block at a time instead of keeping all logits alive; not when all of
them are small (SMALL_LOGITS: the tiny model's 270-token vocabulary), as recomputing costs time.

CPU and CUDA run the same code. On CUDA (bf16 autocast) a chunk holds its bf16 logits (2 bytes per
entry) and float32 copy (4), then at most three float32 blocks (log-softmax, softmax, their
product): peak about chunk x V x 12 bytes, i.e. 1.9 GB for chunk 1024 and Qwen3's V, and about twice
that while backward recomputes a chunk. On CPU the model is float32 and the same bound holds.
"""
import contextlib
import math
from fractions import Fraction
from functools import partial

import torch
from torch.utils.checkpoint import checkpoint

SMALL_LOGITS = 2**22  # entries of [B T, V] logits (16 MiB in float32) kept without checkpointing


def autocast(model):
    """bf16 autocast for the forward passes on CUDA (a no-op on CPU): float32 master weights, bf16
    matmuls. It lives here, with the forward passes it wraps (here and in update.py)."""
    if next(model.parameters()).device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def token_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of softmax(logits) over the last dim, in float32. Shape logits.shape[:-1].

    Computed as -sum exp(log p) * log p with log p = log_softmax(z): equal to logsumexp(z) - sum p
    z, but it never subtracts two large numbers (that form loses ~1e-3 nats at logits ~1e4 in
    float32), and a probability that underflows to 0 contributes exactly 0. Logits must be finite.
    """
    # BEGIN SOLUTION entropy
    return _entropy_from_logp(torch.log_softmax(logits.float(), dim=-1))
    # END SOLUTION


def _entropy_from_logp(logp):
    """-sum_v exp(logp_v) * logp_v over the last dim: the entropy of log-probabilities (float32)."""
    # BEGIN SOLUTION entropy
    # Not einsum/bmm: it would save a [.., V] block, but CPU bmm sums 151,936 terms with ~1e-3 error
    return -(logp.exp() * logp).sum(dim=-1)
    # END SOLUTION


def logprobs_from_logits(logits: torch.Tensor, labels: torch.Tensor,
                         temperature: float = 1.0) -> torch.Tensor:
    """log softmax(logits / temperature)[labels], float32, shape labels.shape == logits.shape[:-1].

    Needs no [.., V] float32 log-softmax tensor: gather one logit, subtract logsumexp.
    """
    # BEGIN SOLUTION logprobs
    z = logits.float()
    if temperature != 1.0:
        z = z / temperature
    picked = z.gather(-1, labels.long().unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(z, dim=-1)
    # END SOLUTION


def _head_chunk(head, hidden, labels, temperature):
    """One block: hidden [c, H] -> logits [c, V] (model dtype) -> (log-prob [c], entropy [c]) in
    float32: the two formulas above sharing one log-softmax (these few passes over [c, V] are the
    module's cost)."""
    # BEGIN SOLUTION logprobs
    z = head(hidden).float()
    if temperature != 1.0:
        z = z / temperature
    logp = torch.log_softmax(z, dim=-1)
    del z  # autograd does not need it (log_softmax saves its output), so free the block now
    return logp.gather(-1, labels.long().unsqueeze(-1)).squeeze(-1), _entropy_from_logp(logp)
    # END SOLUTION


def _body_and_head(model):
    """The transformer body (returns last hidden states) and the output head of a HF causal LM."""
    body = model.get_decoder() if hasattr(model, "get_decoder") else model.model
    has_head = hasattr(model, "get_output_embeddings")
    head = model.get_output_embeddings() if has_head else model.lm_head
    if body is model or head is None:
        raise TypeError(f"{type(model).__name__}: cannot split into a body and an output head")
    return body, head


def token_logprobs_and_entropy(model, input_ids, attention_mask=None, *, labels=None,
                               temperature=1.0, chunk_size=1024, with_grad=False):
    """Per-token log-probs and next-token entropies, each [B, T] float32, without [B, T, V] float32
    logits.

    Shift convention:
      * labels=None: position t scores the token that follows it,
            logprobs[:, t] = log p(input_ids[:, t+1] | input_ids[:, :t+1]),
        and the last column is 0 (there is no next token).
      * labels given (same shape as input_ids; CS336 style: input_ids = full[:, :-1],
        labels = full[:, 1:]):
            logprobs[:, t] = log p(labels[:, t] | input_ids[:, :t+1]).
      * entropy[:, t] is the entropy of the next-token distribution at position t (every column is
        real).
    Logits are divided by `temperature` first, so log-probs are those of the distribution the
    sampler drew from. With an attention_mask, position ids count only real tokens (as HF generate
    and vLLM do), so a left-padded row scores exactly like the same row without padding. Padding
    positions still get values (finite, meaningless); callers mask them out.

    with_grad=False: runs under torch.no_grad() (not inference_mode, so outputs may later meet
    autograd). with_grad=True: gradients flow to the model; each chunk is checkpointed (unless the
    logits are small, SMALL_LOGITS), so backward recomputes one [chunk_size, V] block at a time.
    The entropy stays differentiable, though callers normally detach it. Extra memory: about
    chunk_size x V x 12 bytes at peak, ~24 bytes per entry in backward (module docstring).
    """
    # BEGIN SOLUTION logprobs
    with torch.set_grad_enabled(with_grad):
        body, head = _body_and_head(model)
        position_ids = None
        if attention_mask is not None:
            position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        hidden = body(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                      use_cache=False).last_hidden_state
        B, T = input_ids.shape
        shifted = labels is None
        if shifted:  # the token after t; the last column gets a dummy label and is zeroed below
            labels = torch.cat([input_ids[:, 1:], input_ids[:, -1:]], dim=1)
        flat_h, flat_y = hidden.reshape(B * T, -1), labels.reshape(B * T)
        # small logits (a tiny vocabulary): kept for backward, as recomputing them saves nothing
        small = B * T * head.weight.shape[0] <= SMALL_LOGITS
        checkpointed = partial(checkpoint, _head_chunk, use_reentrant=False)
        head_chunk = checkpointed if with_grad and not small else _head_chunk
        blocks = [head_chunk(head, flat_h[s:s + chunk_size], flat_y[s:s + chunk_size], temperature)
                  for s in range(0, B * T, chunk_size)]
        logprobs, entropy = (torch.cat(parts).view(B, T) for parts in zip(*blocks))
        if shifted:
            logprobs = torch.cat([logprobs[:, :-1], logprobs.new_zeros(B, 1)], dim=1)
    return logprobs, entropy
    # END SOLUTION


def real_width(attention_mask):
    """1 + the last column holding a real token in any row: cutting a padded (micro-)batch there
    drops only padding, so its forward costs nothing for the columns every row leaves empty."""
    return int(attention_mask.any(0).nonzero().max()) + 1


@torch.no_grad()
def score_batch(model, batch, *, micro_batch_size=8, temperature=1.0, chunk_size=1024):
    """(logprobs, entropy) [B, T] float32 on the CPU for a right-padded batch from
    `data.collate_rollouts`, with no grad, `micro_batch_size` rows at a time, each micro-batch cut
    to its longest row (columns past it stay 0): the old log-probs and entropies of the loop, and
    the teacher-forced entropies of `analysis`."""
    device = next(model.parameters()).device
    logprobs, entropy = torch.zeros(batch["labels"].shape), torch.zeros(batch["labels"].shape)
    for s in range(0, logprobs.shape[0], micro_batch_size):
        rows = slice(s, s + micro_batch_size)
        attn = batch["attention_mask"][rows]
        w = real_width(attn)
        ids, labels = (batch[k][rows, :w].to(device) for k in ("input_ids", "labels"))
        with autocast(model):
            lp, h = token_logprobs_and_entropy(model, ids, attn[:, :w].to(device), labels=labels,
                                               temperature=temperature, chunk_size=chunk_size)
        logprobs[rows, :w], entropy[rows, :w] = lp.float().cpu(), h.float().cpu()
    return logprobs, entropy


def entropy_statistics(entropy, mask, bins=50):
    """The paper's Sec. 3 summary of H_t over the masked tokens (the loop logs it every step).
    Percentiles are nearest-rank (the smallest value with at least q of the tokens at or below it,
    by sorting; torch.quantile refuses > 2^24 elements). The histogram has one bin [0, 1e-4) and
    bins - 1 log-spaced bins up to the max (entropy spans orders of magnitude)."""
    h = entropy[mask.bool()].float().cpu().sort().values
    n = h.numel()
    if n == 0:
        raise ValueError("no response tokens in the mask")
    # exact ceil(q n), no float error
    pct = {q: float(h[math.ceil(Fraction(q) * n) - 1]) for q in ("0.5", "0.8")}
    top = max(float(h[-1]), 1e-3)
    edges = torch.cat([torch.zeros(1), torch.logspace(-4, math.log10(top), bins)])
    # the max goes in the last bin
    idx = (torch.bucketize(h.clamp(min=0), edges, right=True) - 1).clamp(0, bins - 1)
    counts = torch.bincount(idx, minlength=bins).tolist()
    return {"n_tokens": n, "mean": float(h.mean()), "p50": pct["0.5"], "p80": pct["0.8"],
            "max": float(h[-1]), "share_below_0.01": float((h < 0.01).float().mean()),
            "histogram": {"edges": edges.tolist(), "counts": counts}}
