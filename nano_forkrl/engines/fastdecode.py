"""The fast CUDA path of `TorchSampler`: a static KV cache and one captured CUDA graph per decode
step.

Why: HF `generate` on a 0.6B model spends ~100 ms per decode step on Python and kernel launches (a
Qwen3 layer is ~20 small kernels, x 28 layers) and on growing the KV cache by concatenation. The GPU
work itself is a few ms. So we
  1. preallocate K/V for every layer as [B, n_kv_heads, S, head_dim] (S = prompt + max_new_tokens),
  2. write step t's key/value into slot P + t in place (`index_copy_` with the slot as a device
     tensor),
  3. capture the whole 1-token forward (all layers + output head) once in a CUDA graph per
     attention-length bucket of 128 slots, and replay it: one launch per step instead of ~600.
The forward below is Qwen3's own computation, written out with the HF module's weights (so weight
sync is free and it is the same model): x -> RMSNorm -> q/k/v proj -> per-head RMSNorm on q, k ->
RoPE -> attention over the cache (padding slots masked) -> o_proj -> residual -> RMSNorm -> SwiGLU
MLP -> residual.
On CPU it runs eagerly (no graphs); tests check it token-for-token against the plain HF path.
Grouped-query attention without copying K/V: the G = n_heads / n_kv_heads query heads that share
a kv head are folded into the query-length axis, q [B, H, T, D] -> [B, n_kv, G*T, D].
"""
import torch
import torch.nn.functional as F

# attention-length granularity: each step attends over ceil(len / 128) * 128 cache slots
BUCKET = 128


def _rope(x, cos, sin):
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


def slots(length):
    """Cache slots for `length` tokens: rounded up to whole buckets."""
    return -(-length // BUCKET) * BUCKET


def kv_rows(config, seq_len, budget_bytes, dtype_bytes=2):
    """How many rows of `seq_len` tokens (rounded up to a bucket, as the cache is) fit
    `budget_bytes` of K/V."""
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    per_row = 2 * config.num_hidden_layers * config.num_key_value_heads * head_dim * dtype_bytes
    return max(1, int(budget_bytes // (per_row * slots(seq_len))))


class StaticCacheDecoder:
    def __init__(self, model, batch, max_len):
        cfg, p = model.config, next(model.parameters())
        self.model, self.body = model, model.model
        self.n_kv = cfg.num_key_value_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        self.group = cfg.num_attention_heads // self.n_kv
        self.S = slots(max_len)
        # the shape it serves: TorchSampler reuses it while the shape repeats
        self.key = (batch, self.S)
        shape = (len(self.body.layers), batch, self.n_kv, self.S, self.head_dim)
        self.k = torch.zeros(shape, dtype=p.dtype, device=p.device)
        self.v = torch.zeros_like(self.k)
        # slot holds a real token
        self.valid = torch.zeros(batch, self.S, dtype=torch.bool, device=p.device)
        self.graphs = {}
        # one CUDA memory pool shared by every bucket's graph (replayed one at a time, in order)
        self.pool = None

    def forward(self, ids, positions, slot, length):
        """ids, positions [B, T] at cache slots slot..slot+T-1 (slot: 0-d long tensor); attends over
        the first `length` slots. Returns logits [B, V] of the last position (model dtype)."""
        B, T = ids.shape
        h = self.body.embed_tokens(ids)
        cos, sin = self.body.rotary_emb(h, positions)
        cos, sin = cos[:, None], sin[:, None]                       # [B, 1, T, D]
        slots = slot + torch.arange(T, device=ids.device)           # [T]
        key_pos = torch.arange(length, device=ids.device)
        # [B, T, L]: a real key at or before the query's slot
        allowed = self.valid[:, None, :length] & (key_pos[None, None, :] <= slots[None, :, None])
        # a padding query sees itself: no NaN rows
        allowed |= key_pos[None, None, :] == slots[None, :, None]
        bias = torch.zeros(allowed.shape, dtype=h.dtype, device=h.device)
        bias = bias.masked_fill(~allowed, float("-inf"))
        bias = bias.repeat(1, self.group, 1)[:, None]  # [B, 1, G*T, L] (heads folded into rows)
        for i, layer in enumerate(self.body.layers):
            attn = layer.self_attn
            x = layer.input_layernorm(h)
            q = attn.q_norm(attn.q_proj(x).view(B, T, -1, self.head_dim)).transpose(1, 2)
            k = attn.k_norm(attn.k_proj(x).view(B, T, -1, self.head_dim)).transpose(1, 2)
            v = attn.v_proj(x).view(B, T, -1, self.head_dim).transpose(1, 2)
            q, k = _rope(q, cos, sin), _rope(k, cos, sin)
            self.k[i].index_copy_(2, slots, k)
            self.v[i].index_copy_(2, slots, v)
            # fold the G query heads of a kv head
            q = q.reshape(B, self.n_kv, self.group * T, self.head_dim)
            keys, values = self.k[i, :, :, :length], self.v[i, :, :, :length]
            o = F.scaled_dot_product_attention(q, keys, values, attn_mask=bias, scale=attn.scaling)
            o = o.reshape(B, -1, T, self.head_dim).transpose(1, 2).reshape(B, T, -1)
            h = h + attn.o_proj(o)
            h = h + layer.mlp(layer.post_attention_layernorm(h))
        return self.model.lm_head(self.body.norm(h[:, -1]))

    def step(self, ids, positions, slot):
        """One decode step (T = 1). On CUDA: replay the graph captured for this attention-length
        bucket."""
        length = min(self.S, (slot // BUCKET + 1) * BUCKET)
        slot_t = torch.tensor(slot, device=ids.device)
        if ids.device.type != "cuda":
            return self.forward(ids, positions, slot_t, length)
        if length not in self.graphs:
            self.graphs[length] = self._capture(ids, positions, slot_t, length)
        graph, (ids_in, pos_in, slot_in), out = self.graphs[length]
        ids_in.copy_(ids)
        pos_in.copy_(positions)
        slot_in.copy_(slot_t)
        graph.replay()
        return out

    def _capture(self, ids, positions, slot, length):
        static = (ids.clone(), positions.clone(), slot.clone())
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up off the main stream, as torch.cuda.graphs requires
            self.forward(*static, length)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        # not one private pool (and logits block) per bucket
        self.pool = self.pool or torch.cuda.graph_pool_handle()
        with torch.cuda.graph(graph, pool=self.pool):
            out = self.forward(*static, length)
        return graph, static, out


class StaticSession:
    """One batch's decode state on this path (the `prefill` / `step` pair that TorchSampler's loop
    drives): the prompt fills slots 0..P-1 of the decoder's cache, step t writes slot P + t."""

    def __init__(self, decoder, ids, mask):
        self.dec, self.ids, self.P, self.t = decoder, ids, ids.shape[1], 0
        decoder.valid.zero_()
        decoder.valid[:, :self.P] = mask.bool()
        self.positions = (mask.cumsum(-1) - 1).clamp(min=0)

    def prefill(self):
        start = torch.tensor(0, device=self.ids.device)
        logits = self.dec.forward(self.ids, self.positions, start, self.P)
        self.positions = self.positions[:, -1:]
        return logits

    def step(self, tokens, real):
        """Finished rows keep decoding pad tokens into valid slots: their outputs are discarded, and
        one graph per bucket serves every step (so `real` is not needed here)."""
        slot = self.P + self.t
        self.dec.valid[:, slot] = True
        self.positions, self.t = self.positions + 1, self.t + 1
        return self.dec.step(tokens[:, None], self.positions, slot)
