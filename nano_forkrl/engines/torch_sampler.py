"""`TorchSampler`: batched rollouts with plain transformers + torch, on CPU or GPU (the `Sampler`
contract).

Prompts are left-padded into one batch, each prompt repeated G times, the KV cache grows one token
per step, and a row stops at an EOS id or after `max_new_tokens`; the batch stops when every row
has stopped.
That plain path (`fast=False`) calls the HF model each step. The default fast paths compute the same
thing with a static KV cache: `engines/fastdecode.py` on CUDA (a captured CUDA graph per step),
`engines/cpudecode.py` on CPU (a lean one-token step without HF's per-step Python; README,
"Performance"). Both give the plain path's tokens on CPU in float32 (tests), drawing from the same
RNG stream in the same order.

The KV cache, not the model, bounds the batch on a GPU: 2 x layers x kv_heads x head_dim x 2 bytes
per token (112 KiB for Qwen3-0.6B), so 512 rows of 4,400 tokens would need 240 GiB. On CUDA the
rows per forward are capped so that the cache fits `kv_cache_gb` (default: a quarter of the GPU's
memory).
"""
import copy

import torch
from transformers import DynamicCache

from nano_forkrl.engines.fastdecode import kv_rows
from nano_forkrl.utils.device import to_dtype
from nano_forkrl.sampling import Sampler, drop_unused, encode_prompts, sample_next


class TorchSampler(Sampler):
    """Batched sampling with a KV cache using the policy module itself (so weight sync is free on
    CPU)."""

    def __init__(self, model, tokenizer, *, max_new_tokens=256, temperature=1.0, top_p=1.0,
                 batch_size=256, eos_ids=None, seed=0, fast=None, kv_cache_gb=None):
        super().__init__(model, tokenizer, max_new_tokens=max_new_tokens, temperature=temperature,
                         top_p=top_p, eos_ids=eos_ids)
        self.model, device = model, next(model.parameters()).device
        if device.type == "cuda" and next(model.parameters()).dtype == torch.float32:
            # fp32 master weights train; a bf16 copy decodes (2x less memory traffic per step),
            # RoPE kept fp32
            self.model = to_dtype(copy.deepcopy(model), torch.bfloat16).eval()
        self.batch_size = batch_size  # rows per forward, at most; kv_cache_gb may cap it further
        if kv_cache_gb is None and device.type == "cuda":
            kv_cache_gb = torch.cuda.get_device_properties(device).total_memory / 4 / 2**30
        self.kv_cache_gb = kv_cache_gb  # None: no cap (CPU)
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.fast = True if fast is None else fast  # False: the plain HF call each step
        self.static_decoder = None  # the static KV cache (and CUDA graphs) for the last batch shape

    def reseed(self, seed):
        """Restart the sampling RNG (evaluation uses a fixed seed so scores are comparable across
        steps)."""
        self.generator.manual_seed(seed)

    def rng_state(self):
        return self.generator.get_state()

    def set_rng_state(self, state):
        self.generator.set_state(state)

    def load_weights(self, model):
        """On CPU the sampler decodes with the training module itself: nothing to copy. On CUDA with
        fp32 master weights, copy them into the bf16 decoding copy in place (captured graphs stay
        valid)."""
        if self.model is model:
            return
        with torch.no_grad():
            for dst, src in zip(self.model.parameters(), model.parameters()):
                dst.copy_(src)  # parameters only: the float32 rotary buffers never change

    @torch.no_grad()
    def generate(self, prompts, n=1, max_new_tokens=None):
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
            ids, mask = self._left_pad([p for _, p in rows], next(self.model.parameters()).device)
            session = self._session(ids, mask, ids.shape[1] + max_new_tokens)
            # on CUDA ask "all rows done?" every 16 steps only: each question is a device -> host
            # sync; on CPU it is free and ends the batch (and its RNG draws) when the last row stops
            sync_every = 16 if self.fast and ids.device.type == "cuda" else 1
            tokens, logprobs = self._decode(session, max_new_tokens, sync_every=sync_every)
        finally:
            self.model.train(was_training)
        return [self.to_rollout(i, p, toks, lps)
                for (i, p), toks, lps in zip(rows, tokens, logprobs)]

    def _session(self, ids, mask, max_len):
        """The decode state for one batch: the plain HF path, or a static cache (fastdecode's CUDA
        graphs, or cpudecode's lean step). Only one static cache is kept; it is freed before one of
        another shape is built (on a GPU it is the big allocation)."""
        if not self.fast:
            return HFSession(self.model, ids, mask)
        from nano_forkrl.engines import cpudecode, fastdecode

        cuda = ids.device.type == "cuda"
        key = (ids.shape[0], fastdecode.slots(max_len))
        if self.static_decoder is None or self.static_decoder.key != key:
            self.static_decoder = None
            kind = fastdecode.StaticCacheDecoder if cuda else cpudecode.LeanDecoder
            self.static_decoder = kind(self.model, ids.shape[0], max_len)
        session = fastdecode.StaticSession if cuda else cpudecode.LeanSession
        return session(self.static_decoder, ids, mask)

    def _decode(self, session, max_new_tokens, sync_every):
        """The decode loop of both paths: pick a token per row, pad rows after their EOS, feed the
        token back. Returns (tokens [B][N], logprobs [B][N]) with pad ids after each row's EOS."""
        logits = session.prefill()
        eos = torch.tensor(self.eos_ids, dtype=torch.long, device=logits.device)
        done = torch.zeros(logits.shape[0], dtype=torch.bool, device=logits.device)
        tokens, logprobs = [], []
        for t in range(max_new_tokens):
            tok, lp = self.pick(logits)
            tok = torch.where(done, torch.full_like(tok, self.pad_id), tok)
            tokens.append(tok)
            logprobs.append(lp)
            real = ~done  # this token belongs to its row (an EOS included); later ones are padding
            done = done | torch.isin(tok, eos)
            if t == max_new_tokens - 1 or ((t + 1) % sync_every == 0 and bool(done.all())):
                break
            logits = session.step(tok, real)
        return torch.stack(tokens, 1).tolist(), torch.stack(logprobs, 1).tolist()

    def _left_pad(self, prompt_ids, device):
        width = max(len(p) for p in prompt_ids)
        ids = torch.full((len(prompt_ids), width), self.pad_id, dtype=torch.long, device=device)
        mask = torch.zeros_like(ids)
        for r, p in enumerate(prompt_ids):
            ids[r, width - len(p):] = torch.tensor(p, dtype=torch.long, device=device)
            mask[r, width - len(p):] = 1
        return ids, mask

    def pick(self, logits):
        """Next token for each row from last-position logits [B, V]; subclasses may change the rule
        (e.g. analysis.py samples forking tokens at another temperature)."""
        z = drop_unused(logits.float(), self.vocab_limit)  # ids the tokenizer cannot decode
        return sample_next(z, self.temperature, self.top_p, self.generator)


class HFSession:
    """One batch's decode state on the reference path: HF forward with a growing (dynamic) KV
    cache."""

    def __init__(self, model, ids, mask):
        self.model, self.ids, self.mask = model, ids, mask
        self.cache = DynamicCache(config=model.config)  # explicit: no implicit-cache path

    def _forward(self, step_ids):
        positions = (self.mask.cumsum(-1) - 1).clamp(min=0)[:, -step_ids.shape[1]:]
        out = self.model(input_ids=step_ids, attention_mask=self.mask, position_ids=positions,
                         past_key_values=self.cache, use_cache=True,
                         logits_to_keep=1)  # not [B, P, V] at prefill
        return out.logits[:, -1, :]

    def prefill(self):
        return self._forward(self.ids)

    def step(self, tokens, real):
        # padding after EOS is masked out
        self.mask = torch.cat([self.mask, real.long()[:, None]], dim=1)
        return self._forward(tokens[:, None])
