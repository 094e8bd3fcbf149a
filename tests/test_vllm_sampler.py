"""Tests for nano_forkrl/vllm_sampler.py without a GPU: a stand-in `vllm` module records what the sampler asks
of the engine (vLLM itself only runs on CUDA; the real engine is exercised on a GPU machine, see README)."""
import sys
import types
from types import SimpleNamespace

import pytest
import torch
from conftest import make_tiny_qwen3


class FakeModel:
    def __init__(self):
        self.loaded = []

    def load_weights(self, weights):
        self.loaded.append({k: v.clone() for k, v in weights})


class FakeLLM:
    last = None

    def __init__(self, model, **kwargs):
        self.source, self.kwargs, self.resets = model, kwargs, 0
        self.model = FakeModel()
        worker = SimpleNamespace(model_runner=SimpleNamespace(model=self.model))
        self.llm_engine = SimpleNamespace(model_executor=SimpleNamespace(driver_worker=SimpleNamespace(worker=worker)))
        FakeLLM.last = self

    def reset_prefix_cache(self):
        self.resets += 1

    def generate(self, prompts, params, use_tqdm=False):
        self.params = params
        outs = []
        for p in prompts:
            comps = [SimpleNamespace(token_ids=[5, 6, 1] if j % 2 == 0 else [7, 8, 9],
                                     logprobs=[{t: SimpleNamespace(logprob=-0.5)} for t in ([5, 6, 1] if j % 2 == 0 else [7, 8, 9])])
                     for j in range(params.n)]
            outs.append(SimpleNamespace(prompt_token_ids=p["prompt_token_ids"], outputs=comps))
        return outs


@pytest.fixture
def fake_vllm(monkeypatch):
    mod = types.ModuleType("vllm")
    mod.LLM = FakeLLM
    mod.SamplingParams = lambda **kw: SimpleNamespace(**kw)
    monkeypatch.setitem(sys.modules, "vllm", mod)
    return mod


@pytest.fixture
def policy():
    from nano_forkrl.tiny import build_tiny_tokenizer
    tok = build_tiny_tokenizer()
    return make_tiny_qwen3(vocab_size=len(tok) + 6), tok  # embedding rows beyond the tokenizer, as in Qwen3


def test_engine_is_built_in_process_in_bf16_and_gets_the_weights(fake_vllm, policy, monkeypatch):
    from nano_forkrl.vllm_sampler import VLLMSampler
    monkeypatch.delenv("VLLM_ENABLE_V1_MULTIPROCESSING", raising=False)
    model, tok = policy
    s = VLLMSampler(model, tok, max_new_tokens=7, seed=3, gpu_memory_utilization=0.3)
    llm = FakeLLM.last
    import os
    assert os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0"
    assert llm.kwargs["dtype"] == "bfloat16" and llm.kwargs["gpu_memory_utilization"] == 0.3
    assert len(llm.model.loaded) == 1 and llm.resets == 1
    assert torch.equal(llm.model.loaded[0]["model.embed_tokens.weight"], model.model.embed_tokens.weight)
    with torch.no_grad():
        model.model.norm.weight.add_(1.0)  # "an update"
    s.load_weights(model)
    assert torch.equal(llm.model.loaded[-1]["model.norm.weight"], model.model.norm.weight) and llm.resets == 2


def test_generate_returns_group_contiguous_rollouts(fake_vllm, policy):
    from nano_forkrl.vllm_sampler import VLLMSampler
    model, tok = policy
    s = VLLMSampler(model, tok, max_new_tokens=7, temperature=0.8, top_p=0.9, seed=3)
    rs = s.generate(["Compute 1+2.\n", [3, 4]], n=2)
    p = FakeLLM.last.params
    assert (p.n, p.temperature, p.top_p, p.max_tokens, p.stop_token_ids) == (2, 0.8, 0.9, 7, [tok.eos_token_id])
    assert p.allowed_token_ids == list(range(len(tok)))  # never the padded embedding rows
    assert [r.prompt_index for r in rs] == [0, 0, 1, 1]
    assert rs[2].prompt_ids == [3, 4] and rs[0].prompt_ids == tok.encode("Compute 1+2.\n", add_special_tokens=False)
    assert [r.finish_reason for r in rs] == ["eos", "length", "eos", "length"]  # eos id is 1 in the tiny tokenizer
    assert rs[0].logprobs == [-0.5, -0.5, -0.5]


def test_seeds_are_reproducible_and_restorable(fake_vllm, policy):
    from nano_forkrl.vllm_sampler import VLLMSampler
    model, tok = policy
    s = VLLMSampler(model, tok, seed=3)
    state = s.rng_state()
    s.generate([[1]])
    first = FakeLLM.last.params.seed
    s.generate([[1]])
    assert FakeLLM.last.params.seed != first  # a new stream per call
    s.set_rng_state(state)
    s.generate([[1]])
    assert FakeLLM.last.params.seed == first
