"""Tests for nano_forkrl/utils/device.py: a bf16 copy keeps RoPE's inverse frequencies in float32."""
import copy

import torch
from conftest import make_tiny_qwen3

from nano_forkrl.utils.device import to_dtype


def _inv_freqs(model):
    return {n: b for n, b in model.named_buffers() if n.endswith("inv_freq")}


def test_bf16_copy_keeps_the_rotary_buffers_in_float32():
    model = make_tiny_qwen3()
    ref = {n: b.clone() for n, b in _inv_freqs(model).items()}
    assert ref, "Qwen3's rotary embedding registers inv_freq"
    plain = copy.deepcopy(model).to(torch.bfloat16)  # what a plain cast does: the buffers are rounded
    assert any(b.dtype == torch.bfloat16 for b in _inv_freqs(plain).values())
    ours = to_dtype(copy.deepcopy(model), torch.bfloat16)
    assert all(p.dtype == torch.bfloat16 for p in ours.parameters())
    for name, buf in _inv_freqs(ours).items():
        assert buf.dtype == torch.float32 and torch.equal(buf, ref[name])


def test_rounding_inv_freq_would_move_the_angles_by_radians_at_long_positions():
    inv = _inv_freqs(make_tiny_qwen3(hidden_size=256))  # head_dim 64, as Qwen3
    theta = next(iter(inv.values()))
    err = (4096 * (theta.to(torch.bfloat16).float() - theta)).abs().max()
    assert err > 1.0  # radians: why the buffer must stay float32

