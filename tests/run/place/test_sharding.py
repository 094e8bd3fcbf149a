"""Tests for nano_forkrl/run/place/sharding.py: the decode copy, the whole view of a sharded policy,
and the gathered state a checkpoint is written from. (Two processes against one:
tests/run/place/test_distributed.py.)"""
import pytest
import torch
import torch.distributed as tdist
from conftest import make_tiny_qwen3

from nano_forkrl.run.place.sharding import (FullView, OptimizerState, Whole, decode_copy, full,
                                            full_state, shard)


def test_the_decode_copy_is_a_separate_float32_module_with_the_tie_kept():
    model = make_tiny_qwen3(tie=True).train()
    copy = decode_copy(model)
    assert not copy.training
    assert all(p.dtype == torch.float32 and not p.requires_grad for p in copy.parameters())
    assert copy.lm_head.weight is copy.model.embed_tokens.weight  # one tensor, as in the original
    ids = torch.tensor([[3, 4, 5, 6]])
    assert torch.equal(copy(ids).logits, model(ids).logits)
    with torch.no_grad():
        model.model.embed_tokens.weight.add_(1.0)
    # its own storage
    assert not torch.equal(copy.model.embed_tokens.weight, model.model.embed_tokens.weight)


def test_the_full_view_of_a_plain_module_is_the_module():
    model = make_tiny_qwen3()
    view = FullView(model)
    assert all(a is not None and torch.equal(a, b)
               for a, b in zip(view.parameters(), model.parameters()))
    assert [n for n, _ in view.state_dict().items()] == list(model.state_dict())
    assert view.config is model.config


@pytest.fixture
def one_rank(tmp_path):
    """A one-process gloo group: FSDP2 on a single rank shards nothing but runs the same code."""
    tdist.init_process_group("gloo", init_method=f"file://{tmp_path}/store", rank=0, world_size=1)
    yield
    tdist.destroy_process_group()


@pytest.mark.parametrize("tie", [True, False])
def test_a_sharded_policy_trains_and_saves_like_the_plain_one(one_rank, tmp_path, tie):
    from transformers import AutoModelForCausalLM

    from nano_forkrl.entropy import token_logprobs_and_entropy

    plain, sharded = make_tiny_qwen3(tie=tie).train(), shard(make_tiny_qwen3(tie=tie).train())
    ids = torch.randint(2, 64, (3, 9), generator=torch.Generator().manual_seed(0))
    optimizers = []
    for model in (plain, sharded):  # the output head chunk by chunk, outside the body's forward
        logp, _ = token_logprobs_and_entropy(model, ids[:, :-1], labels=ids[:, 1:], chunk_size=5,
                                             with_grad=True)
        logp.sum().backward()
        optimizers.append(torch.optim.AdamW(model.parameters(), lr=1e-2))
        optimizers[-1].step()
    for (name, a), b in zip(plain.named_parameters(), sharded.parameters()):
        assert torch.allclose(a, full(b), atol=1e-6), name
    weights, optim = full_state(sharded, optimizers[1])
    Whole(sharded, weights).save_pretrained(tmp_path / "hf")
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "hf")
    assert all(torch.allclose(a, b, atol=1e-6)
               for a, b in zip(plain.parameters(), loaded.parameters()))
    sharded.zero_grad(set_to_none=True)  # as at a resume: no gradients yet
    fresh = torch.optim.AdamW(sharded.parameters(), lr=1e-2)
    OptimizerState(sharded, fresh).load_state_dict(optim)
    restored = [fresh.state[p]["exp_avg"] for p in sharded.parameters()]
    saved = [optimizers[1].state[p]["exp_avg"] for p in sharded.parameters()]
    assert all(full(a).abs().sum() > 0 and torch.equal(full(a), full(b))
               for a, b in zip(restored, saved))
