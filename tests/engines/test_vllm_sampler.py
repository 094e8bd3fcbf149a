"""Tests for nano_forkrl/engines/vllm_sampler.py without a GPU: a stand-in `vllm` module records what the sampler asks
of the engine (vLLM itself only runs on CUDA; the real engine is exercised on a GPU machine, see README)."""
import importlib.util
import json
import sys
import types
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import greedy_rows_equal_up_to_ties, make_tiny_qwen3, tiny_prompts
from transformers import AutoTokenizer


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
    from nano_forkrl.run.tiny import build_tiny_tokenizer
    tok = build_tiny_tokenizer()
    return make_tiny_qwen3(vocab_size=len(tok) + 6), tok  # embedding rows beyond the tokenizer, as in Qwen3


def test_engine_is_built_in_process_in_bf16_and_gets_the_weights(fake_vllm, policy, monkeypatch):
    from nano_forkrl.engines.vllm_sampler import VLLMSampler
    monkeypatch.delenv("VLLM_ENABLE_V1_MULTIPROCESSING", raising=False)
    model, tok = policy
    s = VLLMSampler(model, tok, max_new_tokens=7, seed=3, gpu_memory_utilization=0.3)
    llm = FakeLLM.last
    import os
    assert os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0"
    assert llm.kwargs["dtype"] == "bfloat16" and llm.kwargs["gpu_memory_utilization"] == 0.3
    assert llm.kwargs["load_format"] == "dummy"  # random until the push: the folder has no weight files
    assert json.loads((Path(llm.source) / "config.json").read_text())["architectures"] == ["Qwen3ForCausalLM"]
    assert sorted(p.name for p in Path(llm.source).glob("*.json"))[0] == "config.json"
    assert not list(Path(llm.source).glob("*.safetensors")) and AutoTokenizer.from_pretrained(llm.source).vocab == tok.vocab
    assert len(llm.model.loaded) == 1 and llm.resets == 1
    assert torch.equal(llm.model.loaded[0]["model.embed_tokens.weight"], model.model.embed_tokens.weight)
    with torch.no_grad():
        model.model.norm.weight.add_(1.0)  # "an update"
    s.load_weights(model)
    assert torch.equal(llm.model.loaded[-1]["model.norm.weight"], model.model.norm.weight) and llm.resets == 2


def test_generate_returns_group_contiguous_rollouts(fake_vllm, policy):
    from nano_forkrl.engines.vllm_sampler import VLLMSampler
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
    from nano_forkrl.engines.vllm_sampler import VLLMSampler
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


# ---------------------------------------------------------------- the real engine (GPU + vLLM; skipped otherwise)
needs_vllm = pytest.mark.skipif(not (torch.cuda.is_available() and importlib.util.find_spec("vllm")),
                                reason="the real vLLM engine needs a GPU and vllm installed (README, 'GPU checks')")


@needs_vllm
def test_cuda_vllm_greedy_equals_torch_sampler_and_follows_weight_pushes():
    """The issue's two device checks: (1) vLLM's greedy tokens equal TorchSampler's for the same prompts; (2) after
    a policy update and `load_weights`, vLLM's greedy tokens are the updated policy's (up to bf16 near-ties)."""
    from nano_forkrl.run.data import tokenize_prompt_and_output
    from nano_forkrl.entropy import get_response_log_probs
    from nano_forkrl.loss import sft_microbatch_train_step
    from nano_forkrl.run.policy import load_policy
    from nano_forkrl.sampling import TorchSampler
    from nano_forkrl.engines.vllm_sampler import VLLMSampler

    model, tok = load_policy("tiny", device="cuda")
    prompts, kw = tiny_prompts(32), dict(max_new_tokens=40, temperature=0)
    vllm_s = VLLMSampler(model, tok, gpu_memory_utilization=0.2, **kw)
    torch_s = TorchSampler(model, tok, **kw)
    before = torch_s.generate(prompts)
    assert greedy_rows_equal_up_to_ties(model, before, vllm_s.generate(prompts)) >= 0.9 * len(prompts)

    target = " 5+4=9. \\boxed{9}"  # teach every prompt one fixed answer: the greedy outputs must change
    batch = {k: v.cuda() for k, v in tokenize_prompt_and_output(prompts, [target] * len(prompts), tok).items()}
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(80):  # on CPU this takes the loss from 177 to 0.3 and all 32 rows to the target
        logp = get_response_log_probs(model, batch["input_ids"], batch["labels"])["log_probs"]
        sft_microbatch_train_step(logp, batch["response_mask"], 1)
        opt.step()
        opt.zero_grad()
    vllm_s.load_weights(model)
    torch_s.load_weights(model)
    after_torch, after_vllm = torch_s.generate(prompts), vllm_s.generate(prompts)
    assert sum(target.strip() in a.text for a in after_torch) >= 0.9 * len(prompts)
    assert sum(a.response_ids != b.response_ids for a, b in zip(before, after_torch)) >= 0.9 * len(prompts)
    assert greedy_rows_equal_up_to_ties(model, after_torch, after_vllm) >= 0.9 * len(prompts)
