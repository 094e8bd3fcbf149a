"""Which engine samples the rollouts:
`make_sampler("auto" | "torch" | "vllm", model, tokenizer, ...)`.

"auto" takes vLLM on CUDA when it is installed and `TorchSampler` otherwise; on CPU vLLM's CPU build
runs only when asked for (`--sampler vllm`): for the tiny preset the torch path is faster and needs
no second copy. Under torchrun every rank builds its own engine (vLLM's on cuda:LOCAL_RANK,
`engines/vllm_sampler.py`).
`close_sampler` frees what `make_sampler` started: whoever makes a sampler closes it (try/finally).
"""
import importlib.util

CHOICES = ("auto", "torch", "vllm")


def resolve(kind, on_cuda):
    """The engine a choice stands for: "auto" is vLLM on CUDA when it is installed, else torch."""
    if kind not in CHOICES:
        raise ValueError(f"unknown sampler {kind!r}: use one of {', '.join(CHOICES)}")
    if kind == "auto":
        return "vllm" if on_cuda and importlib.util.find_spec("vllm") is not None else "torch"
    return kind


def make_sampler(kind, model, tokenizer, *, max_new_tokens, temperature=1.0, top_p=1.0, seed=0,
                 gpu_memory_utilization=0.35, batch_size=512):
    kind = resolve(kind, next(model.parameters()).device.type == "cuda")
    common = dict(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed)
    if kind == "vllm":
        from nano_forkrl.engines.vllm_sampler import VLLMSampler

        return VLLMSampler(model, tokenizer, gpu_memory_utilization=gpu_memory_utilization,
                           **common)
    from nano_forkrl.engines.torch_sampler import TorchSampler

    return TorchSampler(model, tokenizer, batch_size=batch_size, **common)


def close_sampler(sampler):
    """Shut a vLLM engine down and free its memory; `TorchSampler` decodes with the policy and holds
    nothing."""
    close = getattr(sampler, "close", None)
    if close is not None:
        close()
