"""The policy pi_theta: which model, on which device, in which dtype, and which rollout
engine samples from it.

Shared by `train`, `evaluate`, `analysis` and `bench` so that all four load a model the same way:

- `"tiny"` is the embedded default: the warm-started tiny Qwen3 of `nano_forkrl.tasks.tiny` (built
  and cached on first use, CPU friendly).
- Anything else goes to `AutoModelForCausalLM.from_pretrained(name_or_path)`: a hub name such as
  `Qwen/Qwen3-0.6B-Base` (needs network or a warm HF cache) or a local folder written by
  `save_pretrained` (our checkpoints are such folders).
- `"random:DIR"` (or `"random:tiny"`, or `"random:qwen3-0.6b"` ... `"random:qwen3-8b"`: the Qwen3
  configs and tokenizer shipped in `nano_forkrl/qwen3/`) builds the architecture of DIR's
  config.json with random weights, plus DIR's tokenizer: for speed and memory measurements only
  (`bench`, GPU checks); it never learns anything useful.

Device and dtype: "auto" picks CUDA when available, else CPU. dtype "auto" keeps the parameters
(master weights) in float32 and runs forward/backward under bf16 autocast on CUDA (`autocast`
below): with lr 1e-6 a pure-bf16 weight cannot absorb the update (bf16 keeps ~3 significant digits,
so w + 1e-6 * g rounds back to w). dtype "bf16" stores the weights in bf16 (half the memory; for
4B/8B on one GPU, with that caveat). On CPU everything is float32 (CPU bf16 matmuls are slow and the
tiny model is small).
"""
from pathlib import Path

import torch

from nano_forkrl.sampling import pad_id
from nano_forkrl.tasks.tiny import (TASKS, build_tiny_tokenizer, is_tiny, load_tiny, task_of,
                                    tiny_config)
from nano_forkrl.utils.device import to_dtype
from nano_forkrl.utils.errors import RunError

# configs + the family's tokenizer (PROVENANCE.md)
QWEN3 = Path(__file__).resolve().parents[2] / "qwen3"
# "auto": float32 master weights (bf16 autocast on CUDA)
DTYPES = {"auto": torch.float32, "fp32": torch.float32, "float32": torch.float32,
          "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}


def qwen3_folder(name):
    """The shipped folder of "qwen3-0.6b", "qwen3-1.7b", "qwen3-4b" or "qwen3-8b"
    (any case), or None."""
    size = name.lower().removeprefix("qwen3-")
    folder = QWEN3 / f"Qwen3-{size.upper()}"
    return folder if size != name.lower() and (folder / "config.json").is_file() else None


def pick_device(device="auto"):
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def pick_dtype(dtype, device=None):
    """"auto" = float32 master weights (see above). No fp16: it would need a gradient scaler (small
    grads underflow)."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    return DTYPES[dtype]


def load_policy(name_or_path, device="auto", dtype="auto", seed=0):
    """Returns (model, tokenizer) with the model on `device` in `dtype`, in train mode. A model that
    cannot be loaded, or a device this machine lacks, is a RunError naming the folder (and the
    damaged file) or the device."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = _available_device(device)
    dtype = pick_dtype(dtype, device)
    if is_tiny(name_or_path):
        model, tokenizer = load_tiny(seed=seed, task=task_of(name_or_path))
    elif name_or_path.startswith("random:"):
        model, tokenizer = random_policy(name_or_path[len("random:"):], device, dtype, seed)
    else:
        _check_local(name_or_path)
        tokenizer = _load(AutoTokenizer.from_pretrained, name_or_path, "tokenizer")
        model = _load(AutoModelForCausalLM.from_pretrained, name_or_path, "model", dtype=dtype)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token_id = pad_id(tokenizer)  # its EOS (sampling.pad_id)
    # --dtype bf16 keeps RoPE's inv_freq in float32 (utils/device.py)
    to_dtype(model.to(device), dtype)
    # the trainer never needs the cache; samplers ask for it explicitly
    model.config.use_cache = False
    return model.train(), tokenizer


def _available_device(device):
    """pick_device, refusing (RunError) a device string torch cannot parse or a device
    this machine lacks."""
    try:
        picked = pick_device(device)
    except (RuntimeError, ValueError) as err:
        raise RunError(f"--device {device!r} is not a device name (auto, cpu, cuda, cuda:N): "
                       f"{err}") from None
    if picked.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (picked.index or 0) >= count:
            raise RunError(f"--device {device}: this machine has {count} CUDA device(s); "
                           "use --device cpu or auto")
    elif picked.type != "cpu" and not (picked.type == "mps" and torch.backends.mps.is_available()):
        raise RunError(f"--device {device}: not available here; use --device cpu, cuda or auto")
    return picked


def _check_local(name):
    """A path-like name (starting with / . ~ or with more than one /) must be an existing folder:
    otherwise the hub client would answer with a confusing remark about repository names."""
    path = Path(name).expanduser()
    if path.is_dir():
        return
    if path.exists():
        raise RunError(f"--model {name}: is a file; a local model is a folder written by "
                       "save_pretrained")
    if name.startswith(("/", ".", "~")) or name.count("/") > 1:
        raise RunError(f"--model {name}: no such folder (a local model is a folder written by "
                       "save_pretrained; a hub name looks like 'owner/name'; the embedded CPU "
                       "default is --model tiny)")


def _load(load, name, what, **kwargs):
    """load(name, **kwargs); any failure becomes one RunError naming the folder
    and a damaged file."""
    try:
        return load(name, **kwargs)
    except Exception as err:
        where = _damaged_file(name) or name
        raise RunError(f"could not load the {what} from {where}: {type(err).__name__}: {err}\n"
                       "Pass a local folder (e.g. one written by save_pretrained) or a hub name on "
                       "a machine with network access, or use --model tiny for the embedded CPU "
                       "default.") from err


def _damaged_file(folder):
    """The first weight file of a local folder whose header does not read, or the config
    if it is not JSON."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        return None
    import json

    from safetensors import safe_open

    for p in sorted(folder.glob("*.json")):
        try:
            json.loads(p.read_text(encoding="utf-8"))
        except (ValueError, OSError):
            return p
    for p in sorted(folder.glob("*.safetensors")):
        try:
            with safe_open(str(p), framework="pt") as f:
                for key in f.keys():
                    f.get_slice(key)  # every tensor's extent is checked against the file size
        except Exception:
            return p
    return None


def random_policy(source, device, dtype=torch.float32, seed=0):
    """(model, tokenizer) with random weights: tiny.py's config and tokenizer for "tiny", the
    shipped config and tokenizer for "qwen3-0.6b" ... "qwen3-8b", else DIR's config.json and
    tokenizer files (no weights needed). Initialised on the device itself (a 0.6B init takes ~20 s
    on CPU). A missing or damaged DIR is a RunError naming it."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    if is_tiny(source):
        tokenizer = build_tiny_tokenizer(TASKS[task_of(source)])
        config = tiny_config(len(tokenizer), tokenizer.pad_token_id, tokenizer.eos_token_id)
    else:
        shipped = None if Path(source).expanduser().is_dir() else qwen3_folder(source)
        if shipped is None:
            _check_local(source)
        words = str(QWEN3 / "Qwen3-0.6B") if shipped else source  # the family's one tokenizer
        tokenizer = _load(AutoTokenizer.from_pretrained, words, "tokenizer")
        config = _load(AutoConfig.from_pretrained, str(shipped or source), "config")
    torch.manual_seed(seed)
    with torch.device(pick_device(device)):
        return AutoModelForCausalLM.from_config(config, dtype=dtype), tokenizer


def enable_grad_checkpointing(model, enable=True):
    """Recompute each decoder layer in backward instead of storing its activations (HF's own
    mechanism; transformers 5 renamed it activation checkpointing). Costs one extra forward of
    the body per update."""
    name = "activation" if hasattr(model, "activation_checkpointing_enable") else "gradient"
    if enable:
        getattr(model, f"{name}_checkpointing_enable")({"use_reentrant": False})
    else:
        getattr(model, f"{name}_checkpointing_disable")()
    return model
