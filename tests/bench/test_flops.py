"""flops.py: the FLOP formula on hand-computed configs, the non-embedding count, peak lookup and MFU."""
import pytest
from conftest import make_tiny_qwen3

from nano_forkrl.bench.flops import PEAK_TFLOPS, flops_per_token, mfu, non_embedding_params, peak_tflops


def _layer_params(hidden=32, heads=4, kv_heads=2, head_dim=8, inter=64):
    attn = hidden * heads * head_dim + 2 * hidden * kv_heads * head_dim + heads * head_dim * hidden  # q, k, v, o
    return attn + 2 * head_dim + 3 * hidden * inter + 2 * hidden  # q/k RMSNorm, SwiGLU gate/up/down, two norms


@pytest.mark.parametrize("tie", [True, False])
def test_non_embedding_params_excludes_embedding_and_head(tie):
    model = make_tiny_qwen3(vocab_size=64, hidden_size=32, layers=2, tie=tie)
    expected = 2 * _layer_params() + 32  # two blocks + final norm (9296 per block)
    assert expected == 18_624
    assert non_embedding_params(model) == expected
    total = sum(p.numel() for p in model.parameters())
    assert total == expected + 64 * 32 * (1 if tie else 2)  # the head is a separate tensor only when untied


def test_flops_per_token_hand_example():
    model = make_tiny_qwen3(vocab_size=64, hidden_size=32, layers=2)
    # 6 N + 12 L d_attn T + 6 d V with N = 18,624, L = 2, d_attn = 4 heads x 8 = 32, T = 10, d = 32, V = 64
    assert flops_per_token(model.config, 18_624, 10) == 111_744 + 7_680 + 12_288 == 131_712
    # attention grows linearly in T: 12 L d_attn per extra token of context
    assert flops_per_token(model.config, 18_624, 11) - flops_per_token(model.config, 18_624, 10) == 12 * 2 * 32


def test_qwen3_0_6b_shape():
    """Qwen3-0.6B's published shape: 28 layers, hidden 1024, 16 x 128 query heads, vocab 151,936."""
    from transformers import Qwen3Config

    cfg = Qwen3Config(hidden_size=1024, num_hidden_layers=28, num_attention_heads=16, head_dim=128,
                      num_key_value_heads=8, intermediate_size=3072, vocab_size=151_936)
    n = 28 * _layer_params(1024, 16, 8, 128, 3072) + 1024
    assert n == 596_049_920 - 151_936 * 1024 == 440_467_456  # the real model's count minus the tied embedding
    per_token = flops_per_token(cfg, n, 4096)
    assert per_token == 6 * n + 12 * 28 * 2048 * 4096 + 6 * 1024 * 151_936
    assert 6.3e9 < per_token < 6.5e9  # at T = 4096 attention is about as costly as all the weights


def test_peak_lookup_and_mfu():
    assert peak_tflops("NVIDIA H100 80GB HBM3") == PEAK_TFLOPS["H100"] == 989.0
    assert peak_tflops("NVIDIA H100 PCIe") == 756.0  # the PCIe card is slower: matched before "H100"
    assert peak_tflops("NVIDIA H200") == 989.0 and peak_tflops("cpu") is None
    assert mfu(989e12 * 2.0, 4.0, 989.0) == pytest.approx(0.5)
    assert mfu(1e12, 1.0, None) is None
