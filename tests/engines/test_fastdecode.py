"""Tests for nano_forkrl/engines/fastdecode.py: the static-cache decoder must give the plain HF path's tokens."""
import pytest
import torch
from conftest import SHARED_QWEN3, greedy_rows_equal_up_to_ties, make_tiny_qwen3, needs_cuda, tiny_prompts
from test_torch_sampler import PROMPTS, CharTok

from nano_forkrl.engines.fastdecode import BUCKET, StaticCacheDecoder, StaticSession, slots
from nano_forkrl.engines.torch_sampler import TorchSampler


class StaticSampler(TorchSampler):
    """TorchSampler on fastdecode's path even on CPU (run eagerly, without graphs): on CPU the
    sampler's default is cpudecode, so this is how the CUDA path's computation is checked here."""

    def _session(self, ids, mask, max_len):
        if self.static_decoder is None or self.static_decoder.key != (ids.shape[0], slots(max_len)):
            self.static_decoder = StaticCacheDecoder(self.model, ids.shape[0], max_len)
        return StaticSession(self.static_decoder, ids, mask)


def _both(model, **kw):
    plain = TorchSampler(model, CharTok(), fast=False, seed=3, **kw).generate(PROMPTS, n=2)
    fast = StaticSampler(model, CharTok(), seed=3, **kw).generate(PROMPTS, n=2)
    return plain, fast


def test_greedy_tokens_and_logprobs_equal_plain_path():
    plain, fast = _both(make_tiny_qwen3(), max_new_tokens=20, temperature=0)
    assert [r.response_ids for r in plain] == [r.response_ids for r in fast]
    for a, b in zip(plain, fast):
        assert torch.allclose(torch.tensor(a.logprobs), torch.tensor(b.logprobs), atol=1e-5)


def test_sampled_tokens_equal_plain_path_with_same_seed_across_a_bucket_boundary():
    plain, fast = _both(make_tiny_qwen3(), max_new_tokens=BUCKET + 20, temperature=1.0, top_p=0.9)
    assert [r.response_ids for r in plain] == [r.response_ids for r in fast]


def test_eos_handling_matches_plain_path():
    model = make_tiny_qwen3()
    first = TorchSampler(model, CharTok(), max_new_tokens=30, temperature=0, fast=False).generate(PROMPTS)
    eos = [first[0].response_ids[2], first[2].response_ids[5]]
    plain, fast = _both(model, max_new_tokens=30, temperature=0, eos_ids=eos)
    assert [(r.response_ids, r.finish_reason) for r in plain] == [(r.response_ids, r.finish_reason) for r in fast]
    assert any(r.finish_reason == "eos" for r in fast)


def test_prefill_logits_equal_hf_forward_with_left_padding():
    model = make_tiny_qwen3()
    ids = torch.tensor([[0, 0, 5, 6, 7], [3, 4, 5, 6, 7]])
    mask = (ids != 0).long()
    mask[1, 0] = 1
    dec = StaticCacheDecoder(model, 2, 16)
    dec.valid[:, :5] = mask.bool()
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        ours = dec.forward(ids, pos, torch.tensor(0), 5)
        ref = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits[:, -1]
    assert torch.allclose(ours, ref, atol=1e-5)


# ---------------------------------------------------------------- on a GPU (skipped on CPU)
@needs_cuda
def test_cuda_graph_decoder_greedy_equals_plain_path():
    """The CUDA path proper: static KV cache + CUDA graphs, decoding with a bf16 copy of the fp32 policy, against
    the plain HF path with the same bf16 copy, on the warm-started tiny model (confident logits: few near-ties)."""
    from nano_forkrl.run.setup.policy import load_policy

    model, tok = load_policy("tiny", device="cuda")
    prompts, kw = tiny_prompts(64), dict(max_new_tokens=48, temperature=0, batch_size=64)
    plain = TorchSampler(model, tok, fast=False, **kw).generate(prompts)
    fast = TorchSampler(model, tok, fast=True, **kw).generate(prompts)
    assert greedy_rows_equal_up_to_ties(model, plain, fast) >= 0.9 * len(prompts)
    for a, b in zip(plain, fast):
        if a.response_ids == b.response_ids:  # same tokens: the same log-probs up to bf16 rounding
            assert max(abs(x - y) for x, y in zip(a.logprobs, b.logprobs)) < 0.05


@needs_cuda
def test_cuda_graph_decoder_on_the_qwen3_0_6b_shape():
    """GQA 16/8 heads, head_dim 128, vocab 151,936 with random weights (near-ties everywhere: the helper checks
    that every divergence is one)."""
    from nano_forkrl.run.setup.policy import load_policy

    if not (SHARED_QWEN3 / "config.json").exists():
        pytest.skip(f"Qwen3-0.6B config not found at {SHARED_QWEN3} (set NANO_FORKRL_QWEN3_DIR)")
    model, tok = load_policy(f"random:{SHARED_QWEN3}", device="cuda")
    prompts = [[int(t) for t in torch.randint(0, 150_000, (64,), generator=torch.Generator().manual_seed(i))]
               for i in range(8)]
    kw = dict(max_new_tokens=32, temperature=0, eos_ids=[])
    plain = TorchSampler(model, tok, fast=False, **kw).generate(prompts)
    fast = TorchSampler(model, tok, fast=True, **kw).generate(prompts)
    greedy_rows_equal_up_to_ties(model, plain, fast)
    assert all(len(r.response_ids) == 32 and max(r.response_ids) < len(tok) for r in fast)


def test_kv_rows_counts_the_cache_by_hand():
    from transformers import Qwen3Config

    from nano_forkrl.engines.fastdecode import kv_rows
    cfg = Qwen3Config(num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8, head_dim=128)  # 0.6B
    per_slot = 2 * 28 * 8 * 128 * 2  # K and V, every layer, bf16: 112 KiB per token
    assert per_slot == 112 * 1024
    assert kv_rows(cfg, 4400, 20 * 2**30) == 20 * 2**30 // (per_slot * 4480)  # 4400 slots round up to 35 x 128
    assert kv_rows(cfg, 4400, 20 * 2**30) == 41
    assert kv_rows(cfg, 4400, 1) == 1  # never zero rows: one row always decodes
    assert kv_rows(cfg, 128, per_slot * 128 * 7, dtype_bytes=2) == 7


def test_kv_budget_splits_the_batch_without_changing_results():
    model = make_tiny_qwen3()
    calls = []
    capped = TorchSampler(model, CharTok(), max_new_tokens=10, temperature=0, fast=True, seed=1, kv_cache_gb=1e-9)
    original = capped._generate_rows
    capped._generate_rows = lambda rows, n: calls.append(len(rows)) or original(rows, n)
    greedy_free = TorchSampler(model, CharTok(), max_new_tokens=10, temperature=0, fast=True).generate(PROMPTS, n=2)
    assert [r.response_ids for r in capped.generate(PROMPTS, n=2)] == [r.response_ids for r in greedy_free]
    assert calls == [1] * 8  # the budget fits one row: eight forwards of one row instead of one of eight


def test_one_decoder_is_kept_and_reused_for_its_shape():
    model = make_tiny_qwen3()
    s = TorchSampler(model, CharTok(), max_new_tokens=10, temperature=0, fast=True)
    s.generate(PROMPTS)
    first = s.static_decoder
    key = first.key
    s.generate(PROMPTS)
    assert s.static_decoder is first  # same shape: the same cache (and, on CUDA, the same graphs)
    s.generate(PROMPTS, n=2)  # twice the rows: a new shape replaces the old one
    second = s.static_decoder
    assert second.key == (2 * key[0], key[1]) and second is not first
