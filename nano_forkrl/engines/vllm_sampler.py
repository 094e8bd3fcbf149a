"""Rollouts from a colocated vLLM engine: the `Sampler` contract of `sampling.py`, on a GPU or vLLM's CPU build.

Colocated means one process (and one GPU) holds both the policy being trained and a vLLM engine that samples from
a copy of the same weights. After every policy update `load_weights(model)` pushes the new weights into the
engine in-process (no files, no pickling), so the next rollouts come from the updated policy pi_theta.

The push is vLLM's own in-place reload: `llm.collective_rpc("reload_weights", kwargs={"weights_iterator": ...})`
runs the worker's `reload_weights` on our (name, tensor) pairs, which loads them through the model's checkpoint
loader (so fused q/k/v and gate/up projections are filled as from a checkpoint) and re-runs any post-load
processing. vLLM 0.32 no longer lets a caller invoke `model.load_weights` after start-up (its parameters lose
their `weight_loader`), so that private route is not used. Versions: see `SUPPORTED` and the README.

Choices:
- `VLLM_ENABLE_V1_MULTIPROCESSING=0` keeps the engine core in this process: the push hands over tensors, where
  the default multiprocess engine would pickle every tensor across processes (seconds instead of milliseconds).
- The engine starts with random weights (`load_format="dummy"`) from a temporary folder that holds only the
  policy's config.json and tokenizer, and gets the policy's weights by the push: nothing is read twice from disk
  or the hub, and random-weight models (no weight files) work the same way.
- dtype: bf16 on CUDA (the trainer keeps float32 masters); float32 on CPU, where greedy tokens then equal
  `TorchSampler`'s exactly (tests).
- Ids the tokenizer does not know (Qwen3: 151,669..151,935) get a logit bias of -100 (vLLM's limit), i.e. a
  probability below e^-100 relative to any other token. Not `allowed_token_ids` for Qwen3: vLLM's V2 GPU runner
  refuses more than 1,024 ids in either list, and Qwen3 would need 151,669 allowed ids but only 267 biased ones.
- Log-probs are vLLM's default `raw_logprobs`: of the model's distribution before temperature and bias, i.e. the
  teacher-forced log-probs of `entropy.py` at temperature 1 (tests compare them). Training recomputes its own.
- vLLM's CPU worker sets torch to one thread and replaces `torch.set_num_threads` with a no-op, and its start-up
  exports variables such as LD_PRELOAD and LOCAL_WORLD_SIZE (good for a serving process, bad for the trainer that
  shares it and the processes it starts later): all of it is put back after the engine starts.
"""
import os
import tempfile

import torch

from nano_forkrl.run.seeds import derive_seed
from nano_forkrl.sampling import Sampler, encode_prompts

SUPPORTED = ("0.26", "0.34")  # [from, to): the versions whose worker has reload_weights(weights_iterator=...)
MAX_IDS = 1024  # vLLM's V2 runner limit per request for logit_bias and for allowed_token_ids


def check_version(version):
    """Fail loudly outside the supported range rather than push weights through an API that may have changed."""
    key = tuple(int(x) for x in version.split(".")[:2] if x.isdigit())
    low, high = (tuple(int(x) for x in v.split(".")) for v in SUPPORTED)
    if not low <= key < high:
        raise RuntimeError(f"vLLM {version} is not supported by VLLMSampler: use vLLM >= {SUPPORTED[0]}, "
                           f"< {SUPPORTED[1]} (README, 'vLLM'), or --sampler torch")


def unused_id_mask(vocab_limit, vocab_size):
    """SamplingParams keywords that keep ids >= vocab_limit from being sampled: a logit bias of -100 on the unused
    ids when they are few (Qwen3: 267), else the list of allowed ids when that is short (a small tokenizer on a big
    embedding); nothing when the embedding has no extra rows. Either list must stay within MAX_IDS."""
    if vocab_size <= vocab_limit:
        return {}
    if vocab_size - vocab_limit <= MAX_IDS:
        return {"logit_bias": {i: -100.0 for i in range(vocab_limit, vocab_size)}}
    if vocab_limit <= MAX_IDS:
        return {"allowed_token_ids": list(range(vocab_limit))}
    raise ValueError(f"{vocab_size - vocab_limit} embedding rows beyond a {vocab_limit}-id tokenizer: both the "
                     f"unused and the allowed ids exceed vLLM's {MAX_IDS}-id limit; resize the embedding")


class VLLMSampler(Sampler):
    def __init__(self, model, tokenizer, *, max_new_tokens=1024, temperature=1.0, top_p=1.0, seed=0,
                 gpu_memory_utilization=0.35, eos_ids=None, max_model_len=None, enforce_eager=None):
        super().__init__(model, tokenizer, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                         eos_ids=eos_ids)
        on_cuda = next(model.parameters()).device.type == "cuda"
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # engine in-process: fast weight push
        os.environ.setdefault("VLLM_USE_FLASHINFER_SAMPLER", "0")
        os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
        if not on_cuda:
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB of KV cache on CPU (vLLM's default is 4)
        import vllm  # imported lazily: vLLM is optional

        check_version(vllm.__version__)
        self.seed, self._calls = seed, 0  # per-call seeds derive from (seed, calls): reproducible, resumable
        self._tmp = tempfile.TemporaryDirectory(prefix="nano_forkrl_vllm_")  # config + tokenizer, no weights
        self.source_dir = self._tmp.name
        if not model.config.architectures:  # a model built from a config in code has none; vLLM picks by it
            model.config.architectures = [type(model).__name__]
        model.config.save_pretrained(self.source_dir)
        tokenizer.save_pretrained(self.source_dir)
        threads, set_threads, environ = torch.get_num_threads(), torch.set_num_threads, dict(os.environ)
        self.llm = vllm.LLM(model=self.source_dir, dtype="bfloat16" if on_cuda else "float32", load_format="dummy",
                            seed=seed, gpu_memory_utilization=gpu_memory_utilization,
                            enforce_eager=(not on_cuda) if enforce_eager is None else enforce_eager,
                            max_model_len=max_model_len or min(model.config.max_position_embeddings, 32768),
                            enable_prefix_caching=True)
        torch.set_num_threads = set_threads  # undo the CPU worker's no-op replacement, then its 1-thread setting
        torch.set_num_threads(threads)
        os.environ.clear()  # and the variables its start-up exports (LD_PRELOAD, LOCAL_WORLD_SIZE, ...), which
        os.environ.update(environ)  # every later subprocess of the trainer would inherit
        self.sampling_mask = unused_id_mask(self.vocab_limit, model.config.vocab_size)
        self.load_weights(model)  # the engine's copy now equals the policy (rounded to bf16 on CUDA)

    # -- RNG state, saved and restored by checkpoints like TorchSampler's ---------------------------------
    def reseed(self, seed):
        self.seed, self._calls = seed, 0

    def rng_state(self):
        return (self.seed, self._calls)

    def set_rng_state(self, state):
        self.seed, self._calls = state

    def load_weights(self, model):
        """Push the policy's current weights into the engine (in-process, no copy to disk)."""
        weights = ((name, p.detach()) for name, p in model.state_dict().items())
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": weights})
        self.llm.reset_prefix_cache()  # cached KV of old prompts was computed with the old weights

    def generate(self, prompts, n=1, max_new_tokens=None):
        from vllm import SamplingParams

        prompt_ids = encode_prompts(self.tokenizer, prompts)
        params = SamplingParams(n=n, temperature=self.temperature, top_p=self.top_p,
                                max_tokens=max_new_tokens or self.max_new_tokens, stop_token_ids=self.eos_ids,
                                seed=derive_seed("vllm", self.seed, self._calls), logprobs=0, skip_special_tokens=True,
                                **self.sampling_mask)
        self._calls += 1
        outputs = self.llm.generate([{"prompt_token_ids": ids} for ids in prompt_ids], params, use_tqdm=False)
        rollouts = []
        for i, (ids, out) in enumerate(zip(prompt_ids, outputs)):
            for c in out.outputs:
                lps = [d[t].logprob for d, t in zip(c.logprobs or [], c.token_ids)]
                rollouts.append(self.to_rollout(i, ids, list(c.token_ids), lps))
        return rollouts

