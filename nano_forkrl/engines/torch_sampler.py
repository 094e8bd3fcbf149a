"""`TorchSampler`: batched rollouts with plain transformers + torch, on CPU or GPU (the `Sampler` contract).

Prompts are left-padded into one batch, each prompt repeated G times, the KV cache grows one token per step,
and a row stops at an EOS id or after `max_new_tokens`. On CUDA, `engines/fastdecode.py` replaces the
step-by-step HF call with a static KV cache and a captured CUDA graph (the same computation: token-identical to
this path on CPU in float32); on CPU the HF call is already fast enough for the tiny preset.

The KV cache, not the model, bounds the batch on a GPU: 2 x layers x kv_heads x head_dim x 2 bytes per token
(112 KiB for Qwen3-0.6B), so 512 rows of 4,400 tokens would need 240 GiB. On CUDA the rows per forward are
capped so that the cache fits `kv_cache_gb` (default: a quarter of the GPU's memory).
"""
import copy

import torch
from transformers import DynamicCache

from nano_forkrl.engines.fastdecode import kv_rows
from nano_forkrl.run.device import to_dtype
from nano_forkrl.sampling import Sampler, encode_prompts, sample_next


class TorchSampler(Sampler):
    """Batched sampling with a KV cache using the policy module itself (so weight sync is free on CPU)."""

    def __init__(self, model, tokenizer, *, max_new_tokens=256, temperature=1.0, top_p=1.0, batch_size=256,
                 eos_ids=None, seed=0, fast=None, kv_cache_gb=None):
        super().__init__(model, tokenizer, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                         eos_ids=eos_ids)
        self.model, device = model, next(model.parameters()).device
        if device.type == "cuda" and next(model.parameters()).dtype == torch.float32:
            # fp32 master weights train; a bf16 copy decodes (2x less memory traffic per step), RoPE kept fp32
            self.model = to_dtype(copy.deepcopy(model), torch.bfloat16).eval()
        self.batch_size = batch_size  # rows per forward, at most; kv_cache_gb may cap it further
        if kv_cache_gb is None and device.type == "cuda":
            kv_cache_gb = torch.cuda.get_device_properties(device).total_memory / 4 / 2**30
        self.kv_cache_gb = kv_cache_gb  # None: no cap (CPU)
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
            if self.fast:
                from nano_forkrl.engines.fastdecode import generate_static
                tokens, logprobs = generate_static(self, [ids for _, ids in rows], max_new_tokens)
            else:
                tokens, logprobs = self._generate_hf(rows, max_new_tokens)
        finally:
            self.model.train(was_training)
        return [self.to_rollout(i, ids, toks, lps) for (i, ids), toks, lps in zip(rows, tokens, logprobs)]

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
        past, step_ids = DynamicCache(config=self.model.config), ids  # explicit: no implicit-cache path
        for _ in range(max_new_tokens):
            positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, -step_ids.shape[1]:]
            out = self.model(input_ids=step_ids, attention_mask=mask, position_ids=positions,
                             past_key_values=past, use_cache=True, logits_to_keep=1)  # not [B, P, V] at prefill
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
