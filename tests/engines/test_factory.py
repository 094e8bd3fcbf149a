"""Tests for nano_forkrl/engines/factory.py: which engine `make_sampler` builds, the stop ids it is given, and
`close_sampler` (a vLLM engine's close is tested against a real engine in test_vllm_sampler.py)."""
import pytest
from conftest import make_tiny_qwen3

from nano_forkrl.engines.factory import close_sampler, make_sampler
from nano_forkrl.engines.torch_sampler import TorchSampler
from nano_forkrl.tasks.tiny import build_tiny_tokenizer


def test_auto_is_torch_on_cpu_even_with_vllm_installed():
    model, tok = make_tiny_qwen3(vocab_size=320), build_tiny_tokenizer()
    assert isinstance(make_sampler("auto", model, tok, max_new_tokens=4), TorchSampler)
    assert isinstance(make_sampler("torch", model, tok, max_new_tokens=4), TorchSampler)


def test_stop_ids_include_the_generation_config_eos_and_unknown_kinds_fail():
    model, tok = make_tiny_qwen3(vocab_size=320), build_tiny_tokenizer()
    model.generation_config.eos_token_id = [tok.eos_token_id, 7]  # e.g. Qwen3's <|endoftext|> and <|im_end|>
    assert make_sampler("torch", model, tok, max_new_tokens=4).eos_ids == sorted({tok.eos_token_id, 7})
    with pytest.raises(ValueError, match="unknown sampler"):
        make_sampler("tgi", model, tok, max_new_tokens=4)


def test_close_sampler_closes_an_engine_and_leaves_torch_samplers_alone():
    model, tok = make_tiny_qwen3(vocab_size=320), build_tiny_tokenizer()
    sampler = make_sampler("torch", model, tok, max_new_tokens=4)
    close_sampler(sampler)  # nothing to free: it decodes with the policy
    assert len(sampler.generate(["1+1="])) == 1
    closed = []

    class Engine:
        def close(self):
            closed.append(True)

    close_sampler(Engine())
    close_sampler(None)  # a benchmark whose sampler never started
    assert closed == [True]
