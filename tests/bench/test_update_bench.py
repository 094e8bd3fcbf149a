"""update_bench.py: what backward keeps (saved_gb), and an OOM in the update leaves the model clean."""
import argparse

import torch
from conftest import make_tiny_qwen3

from nano_forkrl.bench.update_bench import bench_update, naive_logprobs, saved_for_backward


def test_saved_for_backward_counts_activations_not_parameters():
    """A bias-free Linear saves its input for the weight's gradient (50 x 100 float32 = 20,000 bytes) and its
    weight for the input's gradient; the weight is a parameter, so only the input counts."""
    layer, x = torch.nn.Linear(100, 1, bias=False), torch.randn(50, 100)
    assert saved_for_backward(lambda: layer(x).sum(), layer) * 2**30 == 50 * 100 * 4
    y = torch.randn(50, 100, dtype=torch.float64)  # exp saves its output: a second, float64 storage
    assert saved_for_backward(lambda: (layer(x).sum() + (y * layer.weight).exp().sum()), layer) * 2**30 == \
        50 * 100 * 4 + 50 * 100 * 8 * 2  # y (saved by mul for the weight's grad) and exp's output


def test_naive_logprobs_match_the_chunked_ones():
    from nano_forkrl.entropy import token_logprobs_and_entropy

    model, ids = make_tiny_qwen3(), torch.randint(0, 64, (2, 9))
    logp, ent = naive_logprobs(model, ids)
    ref_logp, ref_ent = token_logprobs_and_entropy(model, ids, chunk_size=4, with_grad=False)
    assert logp.shape == (2, 9) and torch.allclose(logp[:, :-1], ref_logp[:, :-1], atol=1e-5)
    assert torch.allclose(ent[:, :-1], ref_ent[:, :-1], atol=1e-4)


def test_update_oom_is_recorded_and_leaves_the_model_clean(monkeypatch):
    model = make_tiny_qwen3()
    seen = []

    def oom(self, *args, **kwargs):  # runs after the backward pass: gradients exist, checkpointing is on
        seen.append(all(p.grad is not None for p in model.parameters()))
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(torch.optim.AdamW, "step", oom)
    args = argparse.Namespace(update_shape=[1, 8], grad_ckpt=True, chunk_size=4, peak_tflops=None)
    rec = bench_update(model, args, torch.device("cpu"), naive=False)
    assert seen == [True]
    assert rec["error"].startswith("OutOfMemoryError: CUDA out of memory") and rec["grad_ckpt"] is True
    checkpointing = getattr(model, "is_activation_checkpointing", None)  # transformers 5 name
    assert not (model.is_gradient_checkpointing if checkpointing is None else checkpointing)
    assert all(p.grad is None for p in model.parameters())
