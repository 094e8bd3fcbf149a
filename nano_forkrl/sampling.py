"""Rollouts: G samples per prompt from the current policy.

For prompt q an engine draws G responses o_1..o_G ~ pi_theta(. | q), token by token:

    o_t ~ softmax(z_t / T) restricted to the top-p nucleus,
    z_t = logits at step t, T = temperature

`sample_next` is that rule for one step; `Sampler` is the contract every engine keeps
(`generate(prompts, n)` returns len(prompts) * n `Rollout`s, group-contiguous: rows g*G .. g*G+G-1
belong to prompt g, the layout `advantage.py` expects; `load_weights(model)` syncs the engine after
an update). The engines live in `engines/`: `TorchSampler` (plain transformers + torch, CPU or GPU;
`cpudecode` and `fastdecode` are its CPU and CUDA paths) and `VLLMSampler` (vLLM, GPU or vLLM's CPU
build).

Two details that bite in practice:
- Qwen3's embedding has 151,936 rows but the tokenizer only ~151,669 tokens: ids >= len(tokenizer)
  must never be sampled (`unused_ids`), or an untrained (or random) model emits ids the tokenizer
  cannot decode.
- TorchSampler returns each token's log-prob under softmax(z / T) over the tokenizer's ids
  (VLLMSampler only when asked: the loop never reads them); tests check them against the
  teacher-forced log-probs of `entropy.py` (equal whenever the model gives the unused ids no mass,
  as a trained Qwen3 does).
"""
from dataclasses import dataclass, field

import torch


@dataclass
class Rollout:
    prompt_index: int          # which prompt of the batch (group id)
    prompt_ids: list[int]
    response_ids: list[int]    # includes the EOS token when finish_reason == "eos"
    text: str                  # decoded response, special tokens dropped
    finish_reason: str         # "eos" or "length"
    # log pi(o_t | q, o_<t) at the sampling temperature
    logprobs: list[float] = field(default_factory=list)


def sample_next(logits, temperature=1.0, top_p=1.0, generator=None):
    """Pick one token per row from logits [B, V] (float32). temperature 0 means greedy.

    Returns (tokens [B], logprobs [B]) where logprobs are under softmax(logits / T) before the top-p
    cut (the policy's distribution, which is what the update's importance ratio needs); greedy
    (T = 0) returns the log-probs under softmax(logits), i.e. T = 1. top_p keeps the smallest set of
    most likely tokens whose mass reaches top_p (the most likely token always); `generator` (a
    torch.Generator) drives the random draw: one uniform per row, read through the cumulative
    distribution (inverse-CDF sampling).
    """
    # BEGIN SOLUTION sampling
    if temperature == 0:
        logp = torch.log_softmax(logits, dim=-1)
        tokens = logits.argmax(dim=-1)
        return tokens, logp.gather(-1, tokens[:, None]).squeeze(-1)
    logp = torch.log_softmax(logits / temperature, dim=-1)
    probs = logp.exp()
    if top_p < 1.0:
        # keep the smallest set of tokens whose mass reaches top_p (the top token is always kept)
        sorted_p, order = probs.sort(dim=-1, descending=True)
        outside = (sorted_p.cumsum(-1) - sorted_p) >= top_p
        sorted_p = sorted_p.masked_fill(outside, 0.0)
        probs = torch.zeros_like(probs).scatter_(-1, order, sorted_p)
    # inverse-CDF draw: one uniform u per row picks the first token whose cumulative mass exceeds
    # u * total (a token of zero mass owns an empty interval, so it is never picked)
    cdf = probs.cumsum(-1)
    total = cdf[:, -1:].contiguous()
    u = torch.rand(cdf.shape[0], 1, generator=generator, device=cdf.device, dtype=cdf.dtype)
    tokens = torch.searchsorted(cdf, u * total, right=True)
    last = torch.searchsorted(cdf, total)  # the last token with mass: where u * total rounds up
    tokens = torch.minimum(tokens, last).squeeze(-1)
    return tokens, logp.gather(-1, tokens[:, None]).squeeze(-1)
    # END SOLUTION


def pad_id(tokenizer, eos_ids=()):
    """The one pad-id rule: the tokenizer's pad id, else its EOS id, else the first of `eos_ids`
    (e.g. a model's generation-config EOS). None when there is none: the caller decides."""
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id, *eos_ids):
        if candidate is not None:
            return int(candidate)
    return None


def unused_ids(vocab_limit, vocab_size):
    """The ids no engine may sample: embedding rows at or past the tokenizer's `vocab_limit` ids
    (Qwen3: 151,669..151,935), which an untrained model may still give mass."""
    return range(vocab_limit, max(vocab_limit, vocab_size))


def drop_unused(logits, vocab_limit):
    """logits [B, V] with the `unused_ids` at -inf (in place), so that no rule can pick them."""
    unused = unused_ids(vocab_limit, logits.shape[-1])
    if unused:
        logits[:, unused.start:] = float("-inf")
    return logits


def encode_prompts(tokenizer, prompts):
    """Strings are tokenized as they are (templates already hold any special tokens); id lists pass
    through. ValueError naming its index for an empty prompt: the first token would be sampled from
    nothing."""
    ids = [tokenizer.encode(p, add_special_tokens=False) if isinstance(p, str) else list(p)
           for p in prompts]
    empty = next((i for i, p in enumerate(ids) if not p), None)
    if empty is not None:
        raise ValueError(f"prompt {empty} is empty (no tokens): a prompt needs at least one token")
    return ids


class Sampler:
    """What `train`, `evaluate` and `checkpoint` rely on, whichever engine samples. Owns the stop
    and pad ids.

    A row stops at any of `eos_ids`: by default the tokenizer's EOS and every EOS of the model's
    generation config (Qwen3: <|endoftext|> and <|im_end|>). Padding: `pad_id` (the tokenizer's
    pad, else its EOS, else the first stop id, else 0). `unused_ids` (at or above `vocab_limit` =
    len(tokenizer)) are never sampled. Engines implement `generate`, `load_weights` and the RNG
    state (`reseed`, `rng_state`, `set_rng_state`; saved in checkpoints, restored by `--resume`).
    """

    def __init__(self, model, tokenizer, *, max_new_tokens, temperature, top_p, eos_ids=None):
        self.tokenizer = tokenizer
        self.max_new_tokens, self.temperature, self.top_p = max_new_tokens, temperature, top_p
        if eos_ids is None:
            extra = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
            extra = extra if isinstance(extra, (list, tuple)) else [extra]
            eos_ids = [tokenizer.eos_token_id, *extra]
        self.eos_ids = sorted({int(e) for e in eos_ids if e is not None})
        self.pad_id = pad_id(tokenizer, (*self.eos_ids, 0))
        self.vocab_limit = len(tokenizer)

    def generate(self, prompts, n=1, max_new_tokens=None):
        """prompts: strings or token-id lists (`encode_prompts`: ValueError for an empty one).
        Returns len(prompts) * n Rollouts, group-contiguous."""
        raise NotImplementedError

    def load_weights(self, model):
        """Make the next `generate` sample from `model`'s current weights."""
        raise NotImplementedError

    def to_rollout(self, index, prompt_ids, tokens, logprobs):
        """Cut a decoded row at its first EOS (kept) and drop what follows it."""
        response, finish = [], "length"
        for tok in tokens:
            response.append(tok)
            if tok in self.eos_ids:
                finish = "eos"
                break
        text = self.tokenizer.decode(response, skip_special_tokens=True)
        kept = [float(x) for x in logprobs[:len(response)]]
        return Rollout(index, list(prompt_ids), response, text, finish, kept)
