"""Rollouts on GPU with a colocated vLLM engine: same interface as `sampling.TorchSampler`.

Colocated means one GPU holds both the policy being trained (transformers: float32 master weights, bf16
autocast) and a vLLM engine that samples from a bf16 copy of the same weights. After every policy update
`load_weights(model)` pushes the new weights into the engine in-process (no files, no pickling; 15 ms for a
Qwen3-0.6B shape on an H100 per ../shared/tools/vllm-device notes, not yet measured with this class), so the
next rollouts come from the updated policy pi_theta. Log-probs are vLLM's defaults (as we understand 0.26: of
the raw, temperature-1 distribution); training recomputes its own, so only their readers at T != 1 care.

Targets vLLM 0.26.0 (the build for torch 2.11 / CUDA 13); see the README for other versions. Choices:
- `VLLM_ENABLE_V1_MULTIPROCESSING=0` keeps the engine core in this process, so the model object is
  reachable and a weight push is a plain `load_weights(state_dict items)`; with the default multiprocess
  engine the same push pickles every tensor across processes (seconds instead of milliseconds).
- `gpu_memory_utilization` is the share of GPU memory vLLM may take (weights + KV cache); the rest stays for
  training. 0.35 leaves room for the update of a 0.6B-1.7B model on an 80 GB card.
- The engine starts with random weights (`load_format="dummy"`) from a temporary folder that holds only the
  policy's config.json and tokenizer, and gets the policy's weights by the same push: no weights are read from
  disk or the hub twice, and the tiny or random-weight models (no weight files) work the same way.
- Ids the tokenizer does not know (Qwen3: 151,669..151,935) are excluded with `allowed_token_ids`.
"""
import os
import tempfile

from nano_forkrl.sampling import Rollout, encode_prompts


class VLLMSampler:
    def __init__(self, model, tokenizer, *, max_new_tokens=1024, temperature=1.0, top_p=1.0, seed=0,
                 gpu_memory_utilization=0.35, eos_ids=None, max_model_len=None, enforce_eager=False):
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # engine in-process: fast weight push
        os.environ.setdefault("VLLM_USE_FLASHINFER_SAMPLER", "0")
        os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
        from vllm import LLM  # imported lazily: vLLM is optional and GPU-only

        self.tokenizer = tokenizer
        self.max_new_tokens, self.temperature, self.top_p = max_new_tokens, temperature, top_p
        eos = eos_ids if eos_ids is not None else [tokenizer.eos_token_id]
        self.eos_ids = sorted({int(e) for e in eos if e is not None})
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_ids[0]
        self.seed = seed
        self._calls = 0  # per-call seeds derive from (seed, calls): reproducible and resumable
        self._tmp = tempfile.TemporaryDirectory(prefix="nano_forkrl_vllm_")  # config + tokenizer, no weights
        model.config.architectures = model.config.architectures or [type(model).__name__]  # vLLM picks its class by it
        model.config.save_pretrained(self._tmp.name)
        tokenizer.save_pretrained(self._tmp.name)
        # a bf16 engine even when training keeps fp32 master weights; random ("dummy") until the push below
        self.llm = LLM(model=self._tmp.name, dtype="bfloat16", load_format="dummy", seed=seed,
                       gpu_memory_utilization=gpu_memory_utilization, enforce_eager=enforce_eager,
                       max_model_len=max_model_len or min(model.config.max_position_embeddings, 32768),
                       enable_prefix_caching=True)
        self._allowed = list(range(len(tokenizer))) if len(tokenizer) < model.config.vocab_size else None
        self.load_weights(model)  # the engine's copy now equals the policy (rounded to bf16)

    # -- RNG state, so training can save/restore it like TorchSampler's ------------------------------------
    def reseed(self, seed):
        self.seed, self._calls = seed, 0

    def rng_state(self):
        return (self.seed, self._calls)

    def set_rng_state(self, state):
        self.seed, self._calls = state

    def _model(self):
        engine = self.llm.llm_engine
        executor = getattr(engine, "model_executor", None)
        if executor is None:  # where vLLM 0.26 keeps it with the in-process engine core
            executor = engine.engine_core.engine_core.model_executor
        return executor.driver_worker.worker.model_runner.model

    def load_weights(self, model):
        """Push the policy's current weights into the engine (in-process, no copy to disk)."""
        self._model().load_weights(((name, p.detach()) for name, p in model.state_dict().items()))
        self.llm.reset_prefix_cache()  # cached KV of old prompts was computed with the old weights

    def generate(self, prompts, n=1, max_new_tokens=None):
        from vllm import SamplingParams

        prompt_ids = encode_prompts(self.tokenizer, prompts)
        params = SamplingParams(n=n, temperature=self.temperature, top_p=self.top_p,
                                max_tokens=max_new_tokens or self.max_new_tokens, stop_token_ids=self.eos_ids,
                                seed=self.seed * 1_000_003 + self._calls, logprobs=0,
                                allowed_token_ids=self._allowed, skip_special_tokens=True)
        self._calls += 1
        outputs = self.llm.generate([{"prompt_token_ids": ids} for ids in prompt_ids], params, use_tqdm=False)
        rollouts = []
        for i, (ids, out) in enumerate(zip(prompt_ids, outputs)):
            for c in out.outputs:
                tokens = list(c.token_ids)
                finish = "eos" if tokens and tokens[-1] in self.eos_ids else "length"
                lps = [d[t].logprob for d, t in zip(c.logprobs or [], tokens)]
                rollouts.append(Rollout(i, ids, tokens, self.tokenizer.decode(tokens, skip_special_tokens=True),
                                        finish, lps))
        return rollouts
