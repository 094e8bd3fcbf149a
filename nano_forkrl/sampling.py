"""Rollouts: G samples per prompt from the current policy.

For prompt q the sampler draws G responses o_1..o_G ~ pi_theta(. | q), token by token:

    o_t ~ softmax(z_t / T) restricted to the top-p nucleus,      z_t = logits at step t, T = temperature

`TorchSampler` is plain transformers + torch, on CPU or GPU: prompts are left-padded into one batch, each
prompt repeated G times (rows g*G .. g*G+G-1 belong to prompt g: the group layout `advantage.py` expects),
the KV cache grows one token per step, and a row stops at an EOS id or after `max_new_tokens`.
On CUDA, `nano_forkrl.engines.fastdecode` replaces the step-by-step HF call with a static KV cache and a captured
CUDA graph (the same computation: token-identical to this path on CPU in float32; on an H100 about 14x HF
`generate`'s tok/s at 64 rows, see README); on CPU the HF call is already fast enough for the tiny preset.
`VLLMSampler` (GPU, in `vllm_sampler.py`) has the same interface: `generate(prompts, n)`, `load_weights(model)`.

Three details that bite in practice:
- Qwen3's embedding has 151,936 rows but the tokenizer only ~151,669 tokens: logits of ids >= len(tokenizer)
  are set to -inf so an untrained (or random) model can never emit an id the tokenizer cannot decode.
- Each sampled token's log-prob under the distribution it was drawn from, softmax(z / T) over the
  tokenizer's ids, is returned; tests check it against the teacher-forced log-probs of `entropy.py` (equal
  whenever the model gives the unused ids no mass, as a trained Qwen3 does).
- The KV cache, not the model, bounds the batch on a GPU: 2 x layers x kv_heads x head_dim x 2 bytes per token
  (112 KiB for Qwen3-0.6B), so 512 rows of 4,400 tokens would need 240 GiB. On CUDA the rows per forward are
  capped so that the cache fits `kv_cache_gb` (default: a quarter of the GPU's memory).
"""
from dataclasses import dataclass, field

import copy

import torch

from nano_forkrl.engines.fastdecode import kv_rows


@dataclass
class Rollout:
    prompt_index: int          # which prompt of the batch (group id)
    prompt_ids: list[int]
    response_ids: list[int]    # includes the EOS token when finish_reason == "eos"
    text: str                  # decoded response, special tokens dropped
    finish_reason: str         # "eos" or "length"
    logprobs: list[float] = field(default_factory=list)  # log pi(o_t | q, o_<t) at the sampling temperature


def sample_next(logits, temperature=1.0, top_p=1.0, generator=None):
    """Pick one token per row from logits [B, V] (float32). temperature 0 means greedy.

    Returns (tokens [B], logprobs [B]) where logprobs are under softmax(logits / T) before the top-p cut
    (the policy's distribution, which is what the update's importance ratio needs).
    """
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
    tokens = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
    return tokens, logp.gather(-1, tokens[:, None]).squeeze(-1)


def encode_prompts(tokenizer, prompts):
    """Strings are tokenized as they are (templates already hold any special tokens); id lists pass through."""
    return [tokenizer.encode(p, add_special_tokens=False) if isinstance(p, str) else list(p) for p in prompts]


class TorchSampler:
    """Batched sampling with a KV cache using the policy module itself (so weight sync is free)."""

    def __init__(self, model, tokenizer, *, max_new_tokens=256, temperature=1.0, top_p=1.0, batch_size=256,
                 eos_ids=None, seed=0, fast=None, kv_cache_gb=None):
        self.tokenizer = tokenizer
        self.model, device = model, next(model.parameters()).device
        if device.type == "cuda" and next(model.parameters()).dtype == torch.float32:
            # fp32 master weights train; a bf16 copy decodes (2x less memory traffic per step)
            self.model = copy.deepcopy(model).to(torch.bfloat16).eval()
        self.max_new_tokens, self.temperature, self.top_p = max_new_tokens, temperature, top_p
        self.batch_size = batch_size  # rows per forward, at most; kv_cache_gb may cap it further
        if kv_cache_gb is None and device.type == "cuda":
            kv_cache_gb = torch.cuda.get_device_properties(device).total_memory / 4 / 2**30
        self.kv_cache_gb = kv_cache_gb  # None: no cap (CPU)
        eos = eos_ids if eos_ids is not None else [tokenizer.eos_token_id]
        self.eos_ids = sorted({int(e) for e in eos if e is not None})
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_ids[0]
        self.vocab_limit = len(tokenizer)  # ids at or above this are never sampled
        self.generator = torch.Generator(device=device).manual_seed(seed)
        # fast=None: the static-cache CUDA-graph decoder on CUDA, the plain HF call elsewhere
        self.fast = (device.type == "cuda") if fast is None else fast
        self._decoders = {}  # fastdecode's KV cache and CUDA graphs, for the last batch shape

    def reseed(self, seed):
        """Restart the sampling RNG (evaluation uses a fixed seed so scores are comparable across steps)."""
        self.generator.manual_seed(seed)

    def rng_state(self):
        return self.generator.get_state()

    def set_rng_state(self, state):
        self.generator.set_state(state)

    def load_weights(self, model):
        """On CPU the sampler decodes with the training module itself: nothing to copy. On CUDA with fp32
        master weights, copy them into the bf16 decoding copy in place (captured graphs stay valid)."""
        if self.model is model:
            return
        with torch.no_grad():
            for dst, src in zip(self.model.parameters(), model.parameters()):
                dst.copy_(src)

    @torch.no_grad()
    def generate(self, prompts, n=1, max_new_tokens=None):
        """prompts: strings or token-id lists. Returns len(prompts) * n Rollouts, group-contiguous."""
        prompt_ids = encode_prompts(self.tokenizer, prompts)
        rows = [(i, ids) for i, ids in enumerate(prompt_ids) for _ in range(n)]
        max_new_tokens = max_new_tokens or self.max_new_tokens
        per_batch = self.batch_size
        if self.kv_cache_gb is not None:
            longest = max(len(ids) for ids in prompt_ids) + max_new_tokens
            per_batch = min(per_batch, kv_rows(self.model.config, longest, self.kv_cache_gb * 2**30,
                                               next(self.model.parameters()).element_size()))
        out = []
        for start in range(0, len(rows), per_batch):
            out += self._generate_rows(rows[start:start + per_batch], max_new_tokens)
        return out

    def _generate_rows(self, rows, max_new_tokens):
        was_training = self.model.training
        self.model.eval()
        try:
            if self.fast:
                from nano_forkrl.engines.fastdecode import generate_static
                tokens, logprobs = generate_static(self, [ids for _, ids in rows], max_new_tokens)
            else:
                tokens, logprobs = self._generate_hf(rows, max_new_tokens)
        finally:
            self.model.train(was_training)
        return [self._to_rollout(i, ids, toks, lps) for (i, ids), toks, lps in zip(rows, tokens, logprobs)]

    def _left_pad(self, prompt_ids, device):
        width = max(len(p) for p in prompt_ids)
        ids = torch.full((len(prompt_ids), width), self.pad_id, dtype=torch.long, device=device)
        mask = torch.zeros_like(ids)
        for r, p in enumerate(prompt_ids):
            ids[r, width - len(p):] = torch.tensor(p, dtype=torch.long, device=device)
            mask[r, width - len(p):] = 1
        return ids, mask

    def _generate_hf(self, rows, max_new_tokens):
        """The reference decode loop: HF forward with a growing (dynamic) KV cache."""
        device = next(self.model.parameters()).device
        ids, mask = self._left_pad([p for _, p in rows], device)
        B = ids.shape[0]
        eos = torch.tensor(self.eos_ids, dtype=torch.long, device=device)
        done = torch.zeros(B, dtype=torch.bool, device=device)
        new_tokens, new_logprobs = [], []
        past, step_ids = None, ids
        for _ in range(max_new_tokens):
            positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, -step_ids.shape[1]:]
            out = self.model(input_ids=step_ids, attention_mask=mask, position_ids=positions,
                             past_key_values=past, use_cache=True, logits_to_keep=1)  # not [B, P, V] at prefill
            past = out.past_key_values
            tok, lp = self.pick(out.logits[:, -1, :])
            tok = torch.where(done, torch.full_like(tok, self.pad_id), tok)
            new_tokens.append(tok)
            new_logprobs.append(lp)
            done = done | torch.isin(tok, eos)
            if bool(done.all()):
                break
            step_ids = tok[:, None]
            mask = torch.cat([mask, (~done | torch.isin(tok, eos)).long()[:, None]], dim=1)
        return torch.stack(new_tokens, 1).tolist(), torch.stack(new_logprobs, 1).tolist()

    def pick(self, logits):
        """Next token for each row from last-position logits [B, V]; subclasses may change the rule
        (e.g. analysis.py samples forking tokens at another temperature)."""
        z = logits.float()
        z[:, self.vocab_limit:] = float("-inf")  # ids the tokenizer cannot decode (Qwen3 pads its embedding)
        return sample_next(z, self.temperature, self.top_p, self.generator)

    def _to_rollout(self, index, prompt_ids, tokens, logprobs):
        """Cut a decoded row at its first EOS (kept) and drop the padding after it."""
        response, finish = [], "length"
        for tok in tokens:
            response.append(tok)
            if tok in self.eos_ids:
                finish = "eos"
                break
        text = self.tokenizer.decode(response, skip_special_tokens=True)
        return Rollout(index, list(prompt_ids), response, text, finish, [float(x) for x in logprobs[:len(response)]])
