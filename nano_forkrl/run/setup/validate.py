"""Validation of a run's Config: a clear error for every value that would fail deep inside the loop, or train
nothing, or destroy the model (non-finite numbers, impossible shapes, unknown names)."""
import math
from dataclasses import fields

from nano_forkrl.verifier.math_verify import available as math_verify_available


def validate(cfg):
    """Clear errors for values that would otherwise fail deep inside the loop (or silently train nothing)."""
    def bad(msg):
        raise ValueError(f"invalid config: {msg}")
    if not 0.0 <= cfg.rho <= 1.0:
        bad(f"rho must be in [0, 1], got {cfg.rho}")
    if cfg.group_size < 2:
        bad(f"group_size must be >= 2 (a group of one has no baseline), got {cfg.group_size}")
    for f in fields(cfg):
        allowed = f.metadata.get("choices")
        if allowed and getattr(cfg, f.name) not in allowed:
            bad(f"{f.name} must be one of {allowed}, got {getattr(cfg, f.name)!r}")
    if cfg.verifier == "math-verify" and not math_verify_available():
        bad("verifier 'math-verify' needs the optional package: pip install math-verify")
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
