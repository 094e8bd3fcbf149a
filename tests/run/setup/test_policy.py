"""Tests for nano_forkrl/run/setup/policy.py: device/dtype choice, loading from a folder."""

import pytest
import torch
from conftest import make_tiny_qwen3

from nano_forkrl.run.setup.policy import (enable_grad_checkpointing, load_policy, pick_device,
                                pick_dtype, qwen3_folder, random_policy)


def test_device_and_dtype_choice():
    assert pick_device("cpu").type == "cpu"
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert pick_dtype("auto", torch.device("cpu")) == torch.float32  # fp32 master weights everywhere
    assert pick_dtype("bf16", torch.device("cpu")) == torch.bfloat16
    with pytest.raises(ValueError, match="dtype must be one of"):
        pick_dtype("fp16")  # no gradient scaler here: small gradients would underflow


@pytest.fixture
def saved_folder(tmp_path):
    from nano_forkrl.tasks.tiny import build_tiny_tokenizer
    tok = build_tiny_tokenizer()
    model = make_tiny_qwen3(vocab_size=len(tok))
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    return tmp_path, model


def test_load_policy_from_a_local_folder(saved_folder):
    path, original = saved_folder
    model, tok = load_policy(str(path), device="cpu")
    assert model.training and next(model.parameters()).dtype == torch.float32
    assert tok.pad_token_id is not None
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), original.state_dict().values()))


def test_random_policy_from_a_config_folder(saved_folder):
    """"random:DIR" = DIR's architecture and tokenizer with fresh random weights, the same for the same seed."""
    path, original = saved_folder
    (path / "model.safetensors").unlink()  # config and tokenizer files are all it needs
    a, tok = load_policy(f"random:{path}", device="cpu", seed=3)
    b, _ = load_policy(f"random:{path}", device="cpu", seed=3)
    c, _ = random_policy(str(path), "cpu", seed=4)
    assert a.training and a.config.vocab_size == original.config.vocab_size and tok.pad_token_id is not None
    assert sum(p.numel() for p in a.parameters()) == sum(p.numel() for p in original.parameters())
    weights = [m.model.layers[0].mlp.up_proj.weight for m in (a, b, c, original)]
    assert torch.equal(weights[0], weights[1]) and not torch.equal(weights[0], weights[2])
    assert not torch.equal(weights[0], weights[3])


def test_random_tiny_has_the_tiny_architecture():
    from nano_forkrl.tasks.tiny import build_tiny_tokenizer, tiny_config

    model, tok = random_policy("tiny", "cpu")
    assert model.config.hidden_size == tiny_config(len(build_tiny_tokenizer())).hidden_size
    assert model.config.vocab_size >= len(tok)


@pytest.mark.parametrize("name,params,tied", [("qwen3-0.6b", 596_049_920, True),
                                             ("Qwen3-8B", 8_190_735_360, False)])
def test_random_qwen3_shapes_from_the_shipped_configs(name, params, tied):
    """random:qwen3-0.6b ... random:qwen3-8b need no folder: the shipped configs, one tokenizer."""
    model, tok = random_policy(name, "meta")  # the meta device: shapes without memory or init time
    assert sum(p.numel() for p in model.parameters()) == params
    assert model.config.tie_word_embeddings == tied
    assert len(tok) == 151_669 and tok("Hello, world!").input_ids == [9707, 11, 1879, 0]
    assert qwen3_folder("qwen3-3b") is None and qwen3_folder("tiny") is None


def test_missing_model_gives_a_clear_error(tmp_path):
    from nano_forkrl.utils.errors import RunError
    with pytest.raises(RunError, match="no such folder"):
        load_policy(str(tmp_path / "nope"), device="cpu")


def test_grad_checkpointing_keeps_gradients_equal():
    import torch
    from nano_forkrl.entropy import token_logprobs_and_entropy
    ids = torch.randint(0, 60, (2, 12))
    grads = []
    for ckpt in (False, True):
        model = make_tiny_qwen3().train()
        if ckpt:
            enable_grad_checkpointing(model)
        lp, h = token_logprobs_and_entropy(model, ids, attention_mask=torch.ones_like(ids), with_grad=True)
        (lp.sum() + h.sum()).backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(*grads))
