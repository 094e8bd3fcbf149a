"""The memory plan: what each device holds in each phase of a training step, from the model's
config alone (no weights), checked before any weight is loaded or any engine is started.

P parameters (a tied embedding counted once), N GPUs (FSDP2 shards over N: run/place/sharding.py), w
bytes per master weight (4: --dtype auto, float32; 2: --dtype bf16). Per device, in bytes:

  resident     weights w P/N, AdamW's two moments 2w P/N, the step guard's copy of both 3w P/N
               (run/safety/guard.py; 0 with --no-step-guard), kept for the whole run; CUDA adds
               1 GiB (context and workspaces)
  gradients    w P/N, from a mini-batch's first backward to its optimizer step
  activations  one micro-batch of b = min(micro_batch_size, rows per GPU) rows of T = prompt +
               max_new_tokens tokens (update.py cuts to the longest row; prompt:
               --max-prompt-tokens, else 512): the checkpointed layer inputs (L + 2) b T H a (a = 4
               with float32 masters, 2 with bf16 weights or FSDP's bf16 compute), then the larger of
                 the forward's end: one head chunk, chunk x V x 12 (entropy.py), plus autocast's
                   bf16 copy of every weight, 2P, on one CUDA GPU with float32 masters;
                 a head chunk's backward: chunk x V x 16 (18 on CUDA) plus the head's weight
                   gradient before it is added to .grad, V H (w + 2 under autocast);
                 one layer's recompute: c b T (3H + 6q + 6kv + 4I), its saved tensors (q, kv: query
                   and key/value widths, I: the MLP's; c = 4 on CPU, 2 on CUDA), freed as the
                   gradients are made;
               plus the hidden states' gradient b T H x 4 and the boolean attention mask b T^2;
               under torchrun also the gathered embedding/head group, 8 B per entry
  step         the larger of AdamW's scratch (CUDA's foreach path: w P/N; the CPU path: two copies
               of the largest tensor) and the guard's check (p - copy and a float64 norm of the
               largest tensor: (w + 8) x largest), which run one after the other
  engine       vLLM: its --vllm-gpu-memory share while it generates; asleep (level 1: weights to the
               host, KV cache dropped) about 1.5 GiB, an estimate; on CPU 4P + 1 GiB of KV cache.
               TorchSampler on CUDA: a bf16 decoding copy 2P (float32 masters, or torchrun) and its
               static KV cache (512 rows of T tokens at most, a quarter of the GPU at most), kept.

Phases: rollout = resident + engine awake; update = resident + gradients + activations + engine
(asleep when it sleeps); optimizer step = resident + gradients + step + engine; under torchrun,
loading = the full model and the decoding copy before sharding. The no-grad scoring pass and the
weight push stay below these. A plan fits when its largest phase is at most 95% of the device
(allocator fragmentation). On CPU the device is the host's RAM, shared by every torchrun process.
Measured against on CPU by tests/run/setup/test_memplan.py. A run's check and `--plan`:
run/setup/memcheck.py; the table of presets: tools/memory.py.
"""
import json
import os
from dataclasses import dataclass

from nano_forkrl.engines.factory import resolve
from nano_forkrl.utils.errors import RunError
from nano_forkrl.run.setup.policy import QWEN3, qwen3_folder
from nano_forkrl.tasks.tiny import is_tiny, tiny_config

GiB = 2**30
PROMPT_TOKENS, CUDA_RUNTIME, ASLEEP, USABLE = 512, 1 * GiB, 1.5 * GiB, 0.95


class ConfigMissing(RunError):
    """The model's config.json cannot be read without its weights (or at all)."""


@dataclass(frozen=True)
class Shape:
    """What the plan reads of a config.json."""
    layers: int
    hidden: int
    inter: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied: bool

    @classmethod
    def of(cls, c):
        hd = c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]
        return cls(c["num_hidden_layers"], c["hidden_size"], c["intermediate_size"],
                   c["num_attention_heads"], c["num_key_value_heads"], hd, c["vocab_size"],
                   bool(c.get("tie_word_embeddings", True)))

    @property
    def params(self):
        h, q, kv = self.hidden, self.heads * self.head_dim, self.kv_heads * self.head_dim
        layer = h * (2 * q + 2 * kv) + 3 * h * self.inter + 2 * h + 2 * self.head_dim  # + norms
        return self.layers * layer + h + self.vocab * h * (1 if self.tied else 2)

    @property
    def largest(self):
        return max(self.vocab * self.hidden, self.hidden * self.inter)


def model_config(name):
    """--model's config.json as a dict, without weights: the shipped Qwen3 family for
    random:qwen3-XB and the hub's Qwen/Qwen3-XB(-Base), a folder's own file, tiny's, else
    transformers' (the hub or its cache)."""
    name = name[len("random:"):] if name.startswith("random:") else name
    if is_tiny(name):
        return tiny_config(300).to_dict()  # at most 300 ids: tiny.build_tiny_tokenizer's budget
    shipped = qwen3_folder(name.split("/")[-1].removesuffix("-Base"))
    folder = name if os.path.isdir(name) else shipped
    path = None if folder is None else os.path.join(folder, "config.json")
    if path is not None and os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    try:
        from transformers import AutoConfig
        return AutoConfig.from_pretrained(name).to_dict()
    except Exception as err:
        raise ConfigMissing(f"the memory plan needs {name}'s config.json: {type(err).__name__}: "
                            f"{err}. Pass a local folder, random:qwen3-0.6b ... random:qwen3-8b "
                            f"(shipped in {QWEN3}), or a hub name with network access") from None


def phases(shape, cfg, *, cuda, gpus, engine, sleeps):
    """({component: bytes}, {phase: bytes}) per device, as in the module docstring."""
    P, N, sharded = shape.params, gpus, gpus > 1
    w = 2 if cfg.dtype in ("bf16", "bfloat16") else 4
    rows = max(1, min(cfg.micro_batch_size, cfg.mini_batch_prompts * cfg.group_size // N))
    T = (cfg.max_prompt_tokens or PROMPT_TOKENS) + cfg.max_new_tokens
    tok, H, V, c = rows * T, shape.hidden, shape.vocab, 2 if cuda else 4
    q, kv = shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim
    chunk = min(cfg.chunk_size, tok) * V
    cast = 2 * P if cuda and w == 4 and not sharded else 0
    layer = c * tok * (3 * H + 6 * q + 6 * kv + 4 * shape.inter)
    stored = (shape.layers + 2) * tok * H * (2 if w == 2 or (cuda and sharded) else 4)
    head_grad = 0 if sharded else V * H * (w + 2 * cuda)  # sharded: in the gathered group
    backward = max((16 + 2 * cuda) * chunk + head_grad, layer)
    part = {"weights": w * P / N, "AdamW moments": 2 * w * P / N,
            "step guard's copy": 3 * w * P / N if cfg.step_guard else 0, "gradients": w * P / N,
            "activations": stored + max(cast + 12 * chunk, backward) + 4 * tok * H + rows * T * T,
            "gathered embedding/head": 8 * V * H * (1 if shape.tied else 2) if sharded else 0,
            "optimizer scratch": w * P / N if cuda else 2 * w * shape.largest / N,
            "guard check": (w + 8) * shape.largest / N if cfg.step_guard else 0}
    awake, asleep, copy = _engine(shape, cfg, cuda, sharded, T, w, engine, sleeps)
    part.update({"engine generating": awake, "engine during update": asleep})
    runtime = CUDA_RUNTIME if cuda else 0
    resident = part["weights"] + part["AdamW moments"] + part["step guard's copy"] + runtime
    grads, step = part["gradients"], max(part["optimizer scratch"], part["guard check"])
    phase = {"rollout": resident + awake,
             "update": resident + grads + part["activations"] + part["gathered embedding/head"]
             + asleep,
             "optimizer step": resident + grads + step + asleep}
    if sharded:
        phase["loading"] = w * P + copy + runtime
    return part, phase


def _engine(shape, cfg, cuda, sharded, T, w, engine, sleeps):
    """(bytes while generating, bytes during the update, decoding copy made before sharding)."""
    P = shape.params
    if engine == "vllm":
        if not cuda:
            return 4 * P + GiB, 4 * P + GiB, 0
        share = cfg.vllm_gpu_memory * cfg.gpu_memory * GiB
        return share, ASLEEP if sleeps else share, 0
    copy = (2 * P if cuda else 4 * P) if sharded else (2 * P if cuda and w == 4 else 0)
    slots = -(-T // 128) * 128  # engines/fastdecode.slots
    per_row = slots * 2 * shape.layers * shape.kv_heads * shape.head_dim * 2
    kv = min(cfg.gpu_memory * GiB / 4, 512 * per_row) if cuda else 0
    return copy + kv, copy + kv, copy


@dataclass
class Plan:
    """A plan's inputs (gpus and gpu_memory resolved) and its components and phases, in bytes."""
    shape: Shape
    cfg: object
    cuda: bool
    engine: str
    sleeps: bool
    part: dict
    phase: dict

    @property
    def peak(self):
        return max(self.phase.values())

    @property
    def limit(self):
        return USABLE * self.cfg.gpu_memory * GiB / (1 if self.cuda else self.cfg.gpus)

    @property
    def fits(self):
        return self.peak <= self.limit


def make_plan(cfg, *, cuda, shape=None, engine=None, sleeps=None):
    """The plan of `cfg` on cfg.gpus devices of cfg.gpu_memory GiB (both resolved: >= 1, > 0)."""
    shape = shape or Shape.of(model_config(cfg.model))
    engine = engine or resolve(cfg.sampler, cuda)  # the engine make_sampler would start
    sleeps = (cuda and engine == "vllm") if sleeps is None else sleeps  # VLLMSampler: CUDA only
    part, phase = phases(shape, cfg, cuda=cuda, gpus=cfg.gpus, engine=engine, sleeps=sleeps)
    return Plan(shape, cfg, cuda, engine, sleeps, part, phase)
