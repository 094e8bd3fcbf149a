"""Every knob of the loop in one dataclass, the presets, and the command line.

Presets
- `tiny` (default): the embedded CPU job. A warm-started 0.12M-parameter Qwen3 on synthetic step-by-step
  arithmetic (`nano_forkrl.run.tiny`): 300 steps of 32 prompts x 8 samples, lr 5e-4, a few minutes on 2 cores.
- `qwen3-0.6b`, `qwen3-1.7b`, `qwen3-4b`, `qwen3-8b`: the paper's DAPO recipe scaled to one GPU node.
  The paper (Wang et al. 2025, on top of DAPO) used 512 prompts x 16 responses per rollout batch, mini-batches
  of 32 prompts (16 gradient steps per batch), lr 1e-6, eps_low 0.2 / eps_high 0.28, no KL, temperature 1.0,
  max response 20,480 tokens with a 4,096-token overlong buffer, dynamic sampling, token-mean loss, rho 0.2.
  On one node we keep every algorithmic setting and shrink the sizes: 64 prompts x 16 responses, mini-batches of
  16 prompts (4 gradient steps per batch), max response 4,096 (0.6B/1.7B) or 8,192 (4B/8B) tokens with a
  1,024/2,048 buffer. These presets have NOT been run to convergence here (no weights or network in this
  workplace): they are the documented starting point, not a reproduced result.
"""
import argparse
import math
from dataclasses import asdict, dataclass, fields


@dataclass
class Config:
    # model and data
    model: str = "tiny"                  # hub name, local folder, or "tiny"
    train_data: str = "tiny"             # load_problems source, or "tiny" (synthetic arithmetic)
    eval_data: str = "tiny"              # vendored set name / path, or "tiny" (held-out arithmetic)
    template: str = "plain"              # plain | boxed | r1-zero | qwen-chat | qwen-chat-nothink
    eval_n: int = 200                    # problems per evaluation (0 = all)
    eval_k: int = 4                      # samples per problem: avg@k, pass@k
    eval_every: int = 25                 # steps between evaluations (0 = only at start and end)
    # rollouts
    steps: int = 300
    prompts_per_step: int = 32           # prompts per rollout batch
    group_size: int = 8                  # G responses per prompt
    max_new_tokens: int = 48
    max_prompt_tokens: int = 0           # longer training prompts are skipped (counted, logged); 0 = the
                                         # model's context minus max_new_tokens. Longer held-out ones: error
    temperature: float = 1.0
    top_p: float = 1.0
    sampler: str = "auto"                # auto | torch | vllm
    vllm_gpu_memory: float = 0.35        # share of GPU memory the colocated vLLM engine may take
    # rewards and advantages
    reward_correct: float = 1.0          # CS336 uses 1/0, DAPO +1/-1: same GRPO advantages, see advantage.py
    reward_wrong: float = 0.0
    advantage: str = "grpo"              # grpo: (r - mean) / (std + eps); drgrpo: r - mean
    dynamic_sampling: bool = True        # DAPO: drop groups with equal rewards and sample more prompts
    max_gen_batches: int = 3             # at most this many rollout batches to fill one training batch
    overlong_buffer: int = 0             # DAPO soft overlong punishment (0 = off)
    overlong_factor: float = 1.0
    # forking tokens
    rho: float = 0.2                     # share of response tokens trained (1.0 = all tokens, plain DAPO)
    mask_mode: str = "top"               # top | bottom | random
    mask_source: str = "rollout"         # rollout: old-policy entropy, top-rho over the whole batch (paper)
                                         # current: current-policy entropy per micro-batch (released code)
    per_sequence: bool = False           # top-rho within each response instead of across the batch
    # update
    lr: float = 5e-4
    weight_decay: float = 0.0
    mini_batch_prompts: int = 8          # prompts per optimizer step (x G sequences)
    micro_batch_size: int = 64           # sequences per forward/backward
    ppo_epochs: int = 1
    eps_low: float = 0.2
    eps_high: float = 0.28
    dual_clip: float = 0.0               # 0 = off; verl's clip_ratio_c default is 3.0
    loss_agg: str = "token-mean"         # token-mean | token-mean-all | seq-mean-token-mean | constant
    kl_coef: float = 0.0
    max_grad_norm: float = 1.0
    chunk_size: int = 1024               # tokens per output-head chunk (entropy.py)
    grad_ckpt: bool = False              # recompute decoder layers in backward (long sequences on GPU)
    # run
    seed: int = 0
    device: str = "auto"
    dtype: str = "auto"
    out_dir: str = "runs/tiny"
    resume: bool = False                 # continue the run in out_dir from its newest complete checkpoint
    overwrite: bool = False              # replace the run in out_dir (else an existing run is never touched)
    debug: bool = False                  # full tracebacks instead of one-line errors (or NANO_FORKRL_DEBUG=1)
    save_every: int = 25
    preset: str = "tiny"


def _qwen3(name, max_new_tokens, buffer):
    return dict(model=f"Qwen/{name}-Base", train_data="BytedTsinghua-SIA/DAPO-Math-17k", eval_data="aime24",
                template="boxed", eval_n=0, eval_k=16, eval_every=20, steps=200, prompts_per_step=64,
                group_size=16, max_new_tokens=max_new_tokens, overlong_buffer=buffer, lr=1e-6,
                weight_decay=0.1, mini_batch_prompts=16, micro_batch_size=8, chunk_size=2048, grad_ckpt=True,
                out_dir=f"runs/{name.lower()}", save_every=10)


PRESETS = {
    "tiny": {},
    "qwen3-0.6b": _qwen3("Qwen3-0.6B", 4096, 1024),
    "qwen3-1.7b": _qwen3("Qwen3-1.7B", 4096, 1024),
    "qwen3-4b": _qwen3("Qwen3-4B", 8192, 2048),
    "qwen3-8b": _qwen3("Qwen3-8B", 8192, 2048),
}

CHOICES = {"template": ("plain", "boxed", "r1-zero", "qwen-chat", "qwen-chat-nothink"),
           "sampler": ("auto", "torch", "vllm"), "dtype": ("auto", "fp32", "float32", "bf16", "bfloat16"),
           "advantage": ("grpo", "drgrpo"), "mask_mode": ("top", "bottom", "random"),
           "mask_source": ("rollout", "current"),
           "loss_agg": ("token-mean", "token-mean-all", "seq-mean-token-mean", "constant")}


def validate(cfg):
    """Clear errors for values that would otherwise fail deep inside the loop (or silently train nothing)."""
    def bad(msg):
        raise ValueError(f"invalid config: {msg}")
    if not 0.0 <= cfg.rho <= 1.0:
        bad(f"rho must be in [0, 1], got {cfg.rho}")
    if cfg.group_size < 2:
        bad(f"group_size must be >= 2 (a group of one has no baseline), got {cfg.group_size}")
    for name, allowed in CHOICES.items():
        if getattr(cfg, name) not in allowed:
            bad(f"{name} must be one of {allowed}, got {getattr(cfg, name)!r}")
    for name in ("steps", "prompts_per_step", "mini_batch_prompts", "micro_batch_size", "max_new_tokens",
                 "ppo_epochs", "max_gen_batches", "chunk_size"):
        if getattr(cfg, name) < 1:
            bad(f"{name} must be >= 1, got {getattr(cfg, name)}")
    if cfg.prompts_per_step % cfg.mini_batch_prompts:
        bad(f"prompts_per_step ({cfg.prompts_per_step}) must be a multiple of mini_batch_prompts "
            f"({cfg.mini_batch_prompts})")
    for f in fields(cfg):  # NaN passes every comparison below unnoticed, and inf is never a sane setting
        if f.type in (float, "float") and not math.isfinite(getattr(cfg, f.name)):
            bad(f"{f.name} must be a finite number, got {getattr(cfg, f.name)}")
    for name in ("eval_n", "eval_every", "save_every", "overlong_buffer", "max_prompt_tokens"):
        if getattr(cfg, name) < 0:
            bad(f"{name} must be >= 0, got {getattr(cfg, name)}")
    if cfg.eval_k < 1:
        bad(f"eval_k must be >= 1, got {cfg.eval_k}")
    if not 0 < cfg.temperature <= 10 or not 0 < cfg.top_p <= 1:
        bad(f"need 0 < temperature <= 10 and 0 < top_p <= 1, got {cfg.temperature}, {cfg.top_p}"
            + (" (temperature 0, greedy, gives identical samples per group: no advantage signal)"
               if cfg.temperature == 0 else ""))
    if not 0 <= cfg.eps_low < 1 or cfg.eps_high < 0 or (cfg.dual_clip and cfg.dual_clip <= 1):
        bad("need 0 <= eps_low < 1, eps_high >= 0, and dual_clip 0 (off) or > 1")
    if cfg.overlong_buffer > cfg.max_new_tokens:
        bad(f"overlong_buffer ({cfg.overlong_buffer}) must be in [0, max_new_tokens={cfg.max_new_tokens}] "
            "(0 turns the overlong shaping off)")
    if not 0 < cfg.lr <= 1:  # an AdamW step moves every weight by about lr: above 1 it erases any model
        bad(f"lr must be > 0 and at most 1, got {cfg.lr}")
    for name in ("weight_decay", "kl_coef", "max_grad_norm", "overlong_factor"):
        if getattr(cfg, name) < 0:
            bad(f"{name} must be >= 0, got {getattr(cfg, name)}")
    if cfg.weight_decay * cfg.lr >= 1:
        bad(f"weight_decay x lr must be < 1 (AdamW shrinks the weights by that share each step), got "
            f"{cfg.weight_decay} x {cfg.lr}")
    if cfg.reward_correct <= cfg.reward_wrong:
        bad(f"reward_correct ({cfg.reward_correct}) must be larger than reward_wrong ({cfg.reward_wrong})")
    if not 0 < cfg.vllm_gpu_memory <= 1:
        bad(f"vllm_gpu_memory is a share of the GPU memory, in (0, 1], got {cfg.vllm_gpu_memory}")
    if cfg.resume and cfg.overwrite:
        bad("--resume continues the run in out_dir and --overwrite replaces it: pass one of them")
    if cfg.per_sequence and cfg.mask_source == "current":
        bad("per_sequence selects from the rollout entropy: use it with mask_source 'rollout'")
    return cfg


def parse_args(argv=None):
    """Preset first, then any flag overrides it: `--preset qwen3-0.6b --rho 1.0 --model /path`."""
    ap = argparse.ArgumentParser(prog="python -m nano_forkrl.train",
                                 description="RLVR with DAPO on the top-rho forking tokens.")
    ap.add_argument("--preset", default="tiny", help=f"one of {sorted(PRESETS)}")
    for f in fields(Config):
        if f.name == "preset":
            continue
        flag = "--" + f.name.replace("_", "-")
        if f.type in (bool, "bool"):
            ap.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
        else:
            kind = {"int": int, "float": float, "str": str}.get(str(f.type), f.type)
            ap.add_argument(flag, type=kind, default=None, choices=CHOICES.get(f.name))
    args = ap.parse_args(argv)
    if args.preset not in PRESETS:
        ap.error(f"unknown preset {args.preset!r}; choose from {sorted(PRESETS)}")
    values = {**PRESETS[args.preset], "preset": args.preset}
    values.update({k: v for k, v in vars(args).items() if v is not None and k != "preset"})
    return validate(Config(**values))


def to_dict(cfg):
    return asdict(cfg)
