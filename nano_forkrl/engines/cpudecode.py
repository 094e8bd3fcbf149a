"""The CPU path of `TorchSampler`: a static KV cache and a lean one-token step for small models.

Why: the tiny preset's model does about 10 MFLOP per decode step for 256 rows, well under a
millisecond of arithmetic, but HF's forward adds milliseconds of Python per step: building the 4-D
attention mask, growing the KV cache by concatenation, module and keyword plumbing. So, per batch:
  1. fastdecode's `StaticCacheDecoder` holds the K/V cache [layers, B, n_kv, S, head_dim] and runs
     the prompt (its general forward is the prefill); here also an additive attention bias [B, S]
     (-inf on left padding) and the RoPE tables cos, sin [S, head_dim] of every reachable position;
  2. each layer's q/k/v weights, and the MLP's gate/up weights, are concatenated: one matmul makes
     them all (each output column is the same dot product as in the separate layers);
and a step is about 25 tensor ops per layer: no mask building, attention over the filled slots only.
The arithmetic is Qwen3's, in HF's order: RMSNorm, q/k-norm per head (q and k heads together), RoPE
as q cos + rotate_half(q) sin (= roll(q) * sin with the first half's sign folded into the table),
attention with the G query heads of a kv head folded into the query axis (no K/V copy) as
baddbmm (scores + padding bias), softmax, bmm (at 256 rows x 2 kv heads of 16 dims, SDPA's CPU
kernel costs 2-3x more per call), o_proj, residual, SwiGLU MLP, residual. Tests check tokens,
log-probs and RNG draws against the plain HF path in float32.
"""
import torch
import torch.nn.functional as F

from nano_forkrl.engines.fastdecode import StaticCacheDecoder


def _linear_weights(*linears):
    """One weight (and bias, or None) for several projections of the same input."""
    weight = torch.cat([m.weight for m in linears])
    bias = None if linears[0].bias is None else torch.cat([m.bias for m in linears])
    return weight, bias


class LeanDecoder(StaticCacheDecoder):
    """fastdecode's static cache and prefill, plus a one-token step without the HF modules (CPU)."""

    def __init__(self, model, batch, max_len):
        super().__init__(model, batch, max_len)
        p = next(model.parameters())
        self.bias = torch.zeros(batch, self.S, dtype=p.dtype)  # 0: attend, -inf: left padding
        self.cos = self.sin = self.layers = None

    def pack(self):
        """Concatenate the current weights (per batch: the policy changes between batches)."""
        cfg, body = self.model.config, self.body
        positions = torch.arange(self.S)[None]
        cos, sin = body.rotary_emb(self.k, positions)  # HF's own tables, [1, S, D]
        half = self.head_dim // 2
        self.cos = cos[0]
        self.sin = torch.cat([-sin[0, :, :half], sin[0, :, half:]], dim=-1)
        n_q = cfg.num_attention_heads
        self.layers = []
        for layer in body.layers:
            a, mlp = layer.self_attn, layer.mlp
            qk_norm = torch.cat([a.q_norm.weight.expand(n_q, -1),
                                 a.k_norm.weight.expand(self.n_kv, -1)])
            self.layers.append((
                layer.input_layernorm, _linear_weights(a.q_proj, a.k_proj, a.v_proj),
                (qk_norm, a.q_norm.variance_epsilon), a.o_proj, a.scaling,
                layer.post_attention_layernorm, _linear_weights(mlp.gate_proj, mlp.up_proj),
                mlp.act_fn, mlp.down_proj))

    def lean_step(self, ids, positions, slot, cache=None):
        """ids, positions [b]: the tokens written to cache slot `slot`; returns logits [b, V].
        cache: (k, v, bias) of the b rows still decoding (LeanSession's), default all B rows."""
        B, D, n_kv, L = ids.shape[0], self.head_dim, self.n_kv, slot + 1
        k_cache, v_cache, bias = cache or (self.k, self.v, self.bias)
        h = self.body.embed_tokens(ids)                                   # [B, H]
        cos, sin = self.cos[positions][:, None], self.sin[positions][:, None]  # [B, 1, D]
        # [B * n_kv, 1, L]: one row of the bias per kv head (each row's G query heads share it)
        bias = bias[:, None, None, :L].expand(B, n_kv, 1, L).reshape(B * n_kv, 1, L)
        for i, (norm1, (w_qkv, b_qkv), (w_qk, eps), o_proj, scale, norm2, (w_gu, b_gu), act,
                down) in enumerate(self.layers):
            x = F.rms_norm(h, (h.shape[-1],), norm1.weight, norm1.variance_epsilon)
            qkv = F.linear(x, w_qkv, b_qkv).view(B, -1, D)         # [B, n_q + 2 n_kv, D]
            qk = F.rms_norm(qkv[:, :-n_kv], (D,), None, eps) * w_qk  # normalise, then weight
            qk = qk * cos + qk.roll(D // 2, -1) * sin              # RoPE on q and k heads at once
            k_cache[i, :, :, slot] = qk[:, -n_kv:]
            v_cache[i, :, :, slot] = qkv[:, -n_kv:]
            q = qk[:, :-n_kv].reshape(B * n_kv, self.group, D)   # G query heads per kv head
            keys = k_cache[i, :, :, :L].reshape(B * n_kv, L, D)   # views: no copy of the cache
            values = v_cache[i, :, :, :L].reshape(B * n_kv, L, D)
            # attention as three batched ops (SDPA's CPU kernel costs more per call at this size)
            scores = torch.baddbmm(bias, q, keys.transpose(1, 2), alpha=scale)  # [B n_kv, G, L]
            o = torch.bmm(scores.softmax(-1), values)                            # [B n_kv, G, D]
            h = h + o_proj(o.reshape(B, -1))
            gate, up = F.linear(F.rms_norm(h, (h.shape[-1],), norm2.weight, norm2.variance_epsilon),
                                w_gu, b_gu).chunk(2, dim=-1)
            h = h + down(act(gate) * up)
        norm = self.body.norm
        h = F.rms_norm(h, (h.shape[-1],), norm.weight, norm.variance_epsilon)
        return self.model.lm_head(h)


class LeanSession:
    """One batch's decode state on the CPU path (the `prefill` / `step` pair of TorchSampler's
    loop): the prompt fills slots 0..P-1, step t writes slot P + t.

    Finished rows leave the forward: when a quarter of the rows left have stopped, the cache of
    the others is copied into smaller tensors (`rows`: their batch rows). The logits of all B rows
    stay in one buffer (a stopped row keeps its last ones), so `sample_next` still draws for every
    row, as on the plain path: the same RNG draws, and the same tokens for the running rows (each
    row's arithmetic does not depend on the other rows of the batch; tests)."""

    def __init__(self, decoder, ids, mask):
        self.dec, self.ids, self.P, self.t = decoder, ids, ids.shape[1], 0
        decoder.valid.zero_()
        decoder.valid[:, :self.P] = mask.bool()
        decoder.bias.zero_()
        decoder.bias[:, :self.P].masked_fill_(~mask.bool(), float("-inf"))
        decoder.pack()
        self.positions = (mask.cumsum(-1) - 1).clamp(min=0)
        self.rows = torch.arange(ids.shape[0])
        self.cache, self.logits = (decoder.k, decoder.v, decoder.bias), None

    def prefill(self):
        self.logits = self.dec.forward(self.ids, self.positions, torch.tensor(0), self.P)
        self.positions = self.positions[:, -1].clone()
        return self.logits

    def step(self, tokens, real):
        """tokens [B]; real [B]: the rows whose token is their own (still running before it)."""
        running = real[self.rows]
        if int(running.sum()) <= 0.75 * len(self.rows):  # drop the stopped rows from the forward
            keep = running.nonzero().squeeze(1)
            k, v, bias = self.cache
            self.cache = (k[:, keep], v[:, keep], bias[keep])
            self.rows, self.positions = self.rows[keep], self.positions[keep]
        self.positions += 1
        self.t += 1
        out = self.dec.lean_step(tokens[self.rows], self.positions, self.P + self.t - 1, self.cache)
        self.logits[self.rows] = out
        return self.logits
