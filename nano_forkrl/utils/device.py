"""Casting a model to another dtype without changing the function it computes
more than the cast must.

`model.to(torch.bfloat16)` casts every floating tensor, buffers included. Qwen3's rotary embedding
keeps its inverse frequencies theta_i = base^(-2i/d) in a buffer (`inv_freq`); rounded to bf16 (3
significant digits) the angle p * theta_i at position p = 4,096 is off by up to ~p * theta_i / 256,
several radians for the fast frequencies. A bf16 sampler would then draw from a different policy
than the float32 one the trainer scores, and the importance ratio pi_theta / pi_old would not start
at 1. So the rotary buffers stay float32 (HF computes the angles in float32 anyway; only the
buffer's rounding hurts).
"""
import torch

ROTARY_BUFFERS = ("inv_freq", "original_inv_freq")  # what HF's rotary modules register


def to_dtype(model, dtype):
    """model.to(dtype) in place, with the rotary buffers kept in float32. Returns the model."""
    saved = {name: buf.detach().clone() for name, buf in model.named_buffers()
             if name.rsplit(".", 1)[-1] in ROTARY_BUFFERS}
    model.to(dtype)
    for name, value in saved.items():
        module_name, _, attr = name.rpartition(".")
        module = model.get_submodule(module_name)
        # a registered buffer: setattr replaces it in place
        setattr(module, attr, value.to(torch.float32))
    return model
