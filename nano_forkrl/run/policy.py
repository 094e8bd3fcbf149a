"""The policy pi_theta: which model, on which device, in which dtype, and which rollout engine samples from it.

Shared by `train`, `evaluate`, `analysis` and `bench` so that all four load a model the same way:

- `"tiny"` is the embedded default: the warm-started tiny Qwen3 of `nano_forkrl.run.tiny` (built and cached on
  first use, CPU friendly).
- Anything else goes to `AutoModelForCausalLM.from_pretrained(name_or_path)`: a hub name such as
  `Qwen/Qwen3-0.6B-Base` (needs network or a warm HF cache) or a local folder written by `save_pretrained`
  (our checkpoints are such folders).
- `"random:DIR"` (or `"random:tiny"`) builds the architecture of DIR's config.json with random weights, plus DIR's
  tokenizer: for speed and memory measurements only (`bench`, GPU checks); it never learns anything useful.

Device and dtype: "auto" picks CUDA when available, else CPU. dtype "auto" keeps the parameters (master
weights) in float32 and runs forward/backward under bf16 autocast on CUDA (`autocast` below): with lr 1e-6 a
pure-bf16 weight cannot absorb the update (bf16 keeps ~3 significant digits, so w + 1e-6 * g rounds back to w).
dtype "bf16" stores the weights in bf16 (half the memory; for 4B/8B on one GPU, with that caveat).
On CPU everything is float32 (CPU bf16 matmuls are slow and the tiny model is small).
"""
import contextlib

import torch


def pick_device(device="auto"):
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def pick_dtype(dtype, device=None):
    """"auto" = float32 master weights (see above). No fp16: it would need a gradient scaler (small grads underflow)."""
    dtypes = {"auto": torch.float32, "fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16,
              "bfloat16": torch.bfloat16}
    if dtype not in dtypes:
        raise ValueError(f"dtype must be one of {sorted(dtypes)}, got {dtype!r}")
    return dtypes[dtype]


def load_policy(name_or_path, device="auto", dtype="auto", seed=0):
    """Returns (model, tokenizer) with the model on `device` in `dtype`, in train mode."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = pick_device(device)
    dtype = pick_dtype(dtype, device)
    if name_or_path == "tiny":
        from nano_forkrl.run.tiny import load_tiny

        model, tokenizer = load_tiny(seed=seed)
    elif name_or_path.startswith("random:"):
        model, tokenizer = random_policy(name_or_path[len("random:"):], device, dtype, seed)
    else:
        try:
            tokenizer = AutoTokenizer.from_pretrained(name_or_path)
            model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=dtype)
        except OSError as err:
            raise SystemExit(
                f"could not load model {name_or_path!r}: {err}\n"
                "Pass a local folder (e.g. one written by save_pretrained) or a hub name on a machine with "
                "network access, or use --model tiny for the embedded CPU default.") from err
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(device=device, dtype=dtype)
    model.config.use_cache = False  # the trainer never needs the cache; samplers ask for it explicitly
    return model.train(), tokenizer


def random_policy(source, device, dtype=torch.float32, seed=0):
    """(model, tokenizer) with random weights: tiny.py's config and tokenizer for "tiny", else DIR's config.json
    and tokenizer files (no weights needed). Initialised on the device itself (a 0.6B init takes ~20 s on CPU)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    if source == "tiny":
        from nano_forkrl.run.tiny import build_tiny_tokenizer, tiny_config

        tokenizer = build_tiny_tokenizer()
        config = tiny_config(len(tokenizer), tokenizer.pad_token_id, tokenizer.eos_token_id)
    else:
        tokenizer, config = AutoTokenizer.from_pretrained(source), AutoConfig.from_pretrained(source)
    torch.manual_seed(seed)
    with torch.device(pick_device(device)):
        return AutoModelForCausalLM.from_config(config, dtype=dtype), tokenizer


def make_sampler(kind, model, tokenizer, *, max_new_tokens, temperature=1.0, top_p=1.0, seed=0,
                 gpu_memory_utilization=0.35, batch_size=512):
    """kind: "auto" (vLLM when importable on CUDA, else torch), "torch" or "vllm". A row stops at the tokenizer's
    EOS or any EOS of the model's generation config (Qwen3: <|endoftext|> and <|im_end|>)."""
    on_cuda = next(model.parameters()).device.type == "cuda"
    extra = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    eos_ids = sorted({tokenizer.eos_token_id, *(extra if isinstance(extra, (list, tuple)) else [extra])} - {None})
    if kind == "auto":
        kind = "vllm" if on_cuda and _vllm_importable() else "torch"
    if kind == "vllm":
        from nano_forkrl.engines.vllm_sampler import VLLMSampler

        return VLLMSampler(model, tokenizer, max_new_tokens=max_new_tokens, temperature=temperature,
                           top_p=top_p, seed=seed, gpu_memory_utilization=gpu_memory_utilization, eos_ids=eos_ids)
    if kind != "torch":
        raise ValueError(f"unknown sampler {kind!r}: use auto, torch or vllm")
    from nano_forkrl.sampling import TorchSampler

    return TorchSampler(model, tokenizer, max_new_tokens=max_new_tokens, temperature=temperature,
                        top_p=top_p, seed=seed, batch_size=batch_size, eos_ids=eos_ids)


def _vllm_importable():
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


def autocast(model):
    """bf16 autocast for forward/backward on CUDA (no-op on CPU): fp32 master weights, bf16 matmuls."""
    if next(model.parameters()).device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def enable_grad_checkpointing(model, enable=True):
    """Recompute each decoder layer in backward instead of storing its activations (HF's own mechanism;
    transformers 5 renamed it activation checkpointing). Costs one extra forward of the body per update."""
    name = "activation" if hasattr(model, "activation_checkpointing_enable") else "gradient"
    if enable:
        getattr(model, f"{name}_checkpointing_enable")({"use_reentrant": False})
    else:
        getattr(model, f"{name}_checkpointing_disable")()
    return model
