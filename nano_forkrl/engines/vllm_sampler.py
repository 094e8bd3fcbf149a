"""Rollouts from a colocated vLLM engine: the `Sampler` contract of `sampling.py`, on a GPU or vLLM's CPU build.

Colocated means one process (and one GPU) holds both the policy being trained and a vLLM engine that samples from
a copy of the same weights. After every policy update `load_weights(model)` pushes the new weights into the
engine in-process through vLLM's own in-place reload, `llm.collective_rpc("reload_weights", kwargs={
"weights_iterator": ...})`: the model's checkpoint loader fills fused q/k/v and gate/up projections as from a
checkpoint (vLLM 0.32 no longer lets a caller invoke `model.load_weights` after start-up). Versions: `SUPPORTED`.

Choices:
- `VLLM_ENABLE_V1_MULTIPROCESSING=0` keeps the engine core in this process: the push hands over tensors, where
  the default multiprocess engine would pickle every tensor across processes (seconds instead of milliseconds).
- The engine starts with random weights (`load_format="dummy"`) from a folder that holds only the policy's
  config.json and tokenizer, and gets the weights by the push. The folder is named by a hash of those files, so
  vLLM's compile cache, whose key includes the model path, survives a restart.
- dtype: bf16 on CUDA (the trainer keeps float32 masters), float32 on CPU (greedy tokens = TorchSampler's).
- Ids the tokenizer does not know (Qwen3: 151,669..151,935) get a logit bias of -100 (vLLM's limit). Not
  `allowed_token_ids` for Qwen3: vLLM's V2 GPU runner refuses more than 1,024 ids in either list.
- Asleep during the update (CUDA): after every `generate` the engine sleeps at level 1 (weights offloaded to CPU,
  KV cache discarded), so the update gets the GPU memory the engine held; `load_weights` wakes the weights,
  pushes, then wakes the KV cache (vLLM's documented order). Level 1, not 2: a `generate` with no push since the
  last (an evaluation) needs the weights back. vLLM has no sleep mode on CPU: the calls are skipped, said once.
- Token ids in and out: the engine loads no tokenizer (`skip_tokenizer_init`; vLLM's copies of Qwen3's took
  seconds per start), and returns no log-probs unless asked (`logprobs=True`): the trainer decodes the text and
  recomputes every log-prob it uses. When asked, they are vLLM's `raw_logprobs` (before temperature and bias),
  i.e. the teacher-forced log-probs of `entropy.py` at temperature 1.
- `close()` shuts the engine core down: vLLM's in-process engine keeps its memory until then.
- Under torchrun each rank starts its own engine with vLLM's "external_launcher" backend, on cuda:LOCAL_RANK and
  in the trainer's process group (vLLM's default executor would put every rank's engine on cuda:0).
- vLLM's CPU worker sets torch to one thread and replaces `torch.set_num_threads` with a no-op, and its start-up
  exports variables such as LD_PRELOAD and LOCAL_WORLD_SIZE (bad for the trainer that shares the process and the
  processes it starts later): all of it is put back after the engine starts.
"""
import contextlib
import gc
import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

import torch
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

from nano_forkrl.utils.seeds import derive_seed
from nano_forkrl.sampling import Sampler, encode_prompts, unused_ids

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
    unused = unused_ids(vocab_limit, vocab_size)  # sampling.py's rule; here as vLLM's keywords
    if len(unused) <= MAX_IDS:
        return {"logit_bias": {i: -100.0 for i in unused}} if unused else {}
    if vocab_limit <= MAX_IDS:
        return {"allowed_token_ids": list(range(vocab_limit))}
    raise ValueError(f"{len(unused)} embedding rows beyond a {vocab_limit}-id tokenizer: both the "
                     f"unused and the allowed ids exceed vLLM's {MAX_IDS}-id limit; resize the embedding")


def source_folder(config, tokenizer, root=None):
    """The engine's model folder: config.json and tokenizer files only, named by a hash of their bytes, under
    $NANO_FORKRL_CACHE/vllm (default ~/.cache/nano_forkrl/vllm). Written to a temporary sibling and renamed into
    place, so processes starting together never read half a folder."""
    root = Path(root or os.environ.get("NANO_FORKRL_CACHE") or Path.home() / ".cache" / "nano_forkrl") / "vllm"
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    if not config.architectures:  # a config built in code names no model class; vLLM picks the class by it
        config.architectures = [MODEL_FOR_CAUSAL_LM_MAPPING_NAMES[config.model_type]]
    try:
        config.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        digest = hashlib.sha256()
        for f in sorted(tmp.iterdir()):
            digest.update(f.name.encode() + b"\0" + f.read_bytes())
        folder = root / digest.hexdigest()[:16]
        with contextlib.suppress(OSError):  # there already: started before (or by another rank just now)
            os.rename(tmp, folder)
        return str(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class VLLMSampler(Sampler):
    def __init__(self, model, tokenizer, *, max_new_tokens=1024, temperature=1.0, top_p=1.0, seed=0,
                 gpu_memory_utilization=0.35, eos_ids=None, max_model_len=None, enforce_eager=None, logprobs=False):
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
        self.seed, self._calls, self.logprobs = seed, 0, logprobs  # per-call seeds derive from (seed, calls)
        self.sleeps, self.asleep, self._told = on_cuda, False, False  # vLLM's sleep mode exists on CUDA only
        self.source_dir = source_folder(model.config, tokenizer)  # config + tokenizer, no weights
        torchrun = int(os.environ.get("WORLD_SIZE", "1")) > 1  # one engine per rank, in the trainer's group
        threads, set_threads, environ = torch.get_num_threads(), torch.set_num_threads, dict(os.environ)
        self.llm = vllm.LLM(model=self.source_dir, dtype="bfloat16" if on_cuda else "float32", load_format="dummy",
                            seed=seed % 2**32, gpu_memory_utilization=gpu_memory_utilization,  # numpy's range
                            enforce_eager=(not on_cuda) if enforce_eager is None else enforce_eager,
                            max_model_len=max_model_len or min(model.config.max_position_embeddings, 32768),
                            enable_prefix_caching=True, enable_sleep_mode=on_cuda, skip_tokenizer_init=True,
                            distributed_executor_backend="external_launcher" if torchrun else None)
        torch.set_num_threads = set_threads  # undo the CPU worker's no-op replacement, then its 1-thread setting
        torch.set_num_threads(threads)
        os.environ.clear()  # and the variables its start-up exports (LD_PRELOAD, LOCAL_WORLD_SIZE, ...), which
        os.environ.update(environ)  # every later subprocess of the trainer would inherit
        if torchrun and on_cuda and torch.cuda.current_device() != int(os.environ["LOCAL_RANK"]):
            raise RuntimeError(f"vLLM put rank {os.environ['RANK']}'s engine on cuda:{torch.cuda.current_device()}")
        self.sampling_mask = unused_id_mask(self.vocab_limit, model.config.vocab_size)
        self.load_weights(model)  # the engine's copy now equals the policy (rounded to bf16 on CUDA)

    def reseed(self, seed):
        self.seed, self._calls = seed, 0

    def rng_state(self):
        return (self.seed, self._calls)

    def set_rng_state(self, state):  # reseed, rng_state, set_rng_state: saved and restored by checkpoints
        self.seed, self._calls = state

    # -- sleep mode: the engine's GPU memory goes to the update between generate and the push -------------
    def _sleep(self):
        if self.sleeps:
            self.llm.sleep(level=1)  # weights to CPU, KV cache discarded
        elif not self._told:
            print("VLLMSampler: vLLM has no sleep mode on CPU: skipped, the engine keeps its memory", file=sys.stderr)
            self._told = True
        self.asleep = True

    def _wake(self, tags=None):
        if self.sleeps:
            self.llm.wake_up(tags=tags)
        self.asleep = self.asleep and tags is not None and "kv_cache" not in tags

    def load_weights(self, model):
        """Push the policy's current weights into the engine (in-process, no copy to disk). A sleeping engine
        wakes its weights first and its KV cache after the push."""
        self._check_open()
        if self.asleep:
            self._wake(["weights"])
        weights = ((name, p.detach()) for name, p in model.state_dict().items())
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": weights})
        if self.asleep:
            self._wake(["kv_cache"])
        self.llm.reset_prefix_cache()  # cached KV of old prompts was computed with the old weights

    def generate(self, prompts, n=1, max_new_tokens=None):
        from vllm import SamplingParams

        self._check_open()
        if self.asleep:  # a generate without a push since the last one (e.g. an evaluation)
            self._wake()
        prompt_ids = encode_prompts(self.tokenizer, prompts)
        params = SamplingParams(n=n, temperature=self.temperature, top_p=self.top_p,
                                max_tokens=max_new_tokens or self.max_new_tokens, stop_token_ids=self.eos_ids,
                                seed=derive_seed("vllm", self.seed, self._calls), detokenize=False,
                                logprobs=0 if self.logprobs else None, **self.sampling_mask)
        self._calls += 1
        outputs = self.llm.generate([{"prompt_token_ids": ids} for ids in prompt_ids], params, use_tqdm=False)
        self._sleep()
        rollouts = []
        for i, (ids, out) in enumerate(zip(prompt_ids, outputs)):
            for c in out.outputs:
                lps = [d[t].logprob for d, t in zip(c.logprobs or [], c.token_ids)]
                rollouts.append(self.to_rollout(i, ids, list(c.token_ids), lps))
        return rollouts

    def close(self):
        """Shut the engine core down and free its memory (weights, KV cache, graphs). Safe to call twice."""
        if self.llm is None:
            return
        self.llm.llm_engine.engine_core.shutdown()  # executor, scheduler, gc.unfreeze(), vLLM's process group
        self.llm = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _check_open(self):
        if self.llm is None:
            raise RuntimeError("VLLMSampler is closed: its engine was shut down by close()")
