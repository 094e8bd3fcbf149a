"""Validation of a run's Config: a clear error for every value that would fail deep inside the loop,
or train nothing, or destroy the model (non-finite numbers, impossible shapes, unknown names).

The objective's own rules (rho, the mask's mode and source, the clip range, the loss's
coefficients) belong to the concepts that use them: `update_settings` builds masking.TokenSelection
and update.UpdateSettings from the config, and `validate` reports what they refuse.
"""
import math
from dataclasses import fields

from nano_forkrl.masking import TokenSelection
from nano_forkrl.update import UpdateSettings, one_process
from nano_forkrl.verifier.math_verify import available as math_verify_available


def update_settings(cfg, reduce=one_process):
    """The update's settings from the config (Dr.GRPO's constant: the response budget). `reduce`:
    the sum over the processes (the run's place: run/place/)."""
    selection = TokenSelection(rho=cfg.rho, mode=cfg.mask_mode, source=cfg.mask_source,
                               per_sequence=cfg.per_sequence)
    return UpdateSettings(selection=selection, eps_low=cfg.eps_low, eps_high=cfg.eps_high,
                          dual_clip=cfg.dual_clip or None, loss_agg=cfg.loss_agg,
                          kl_coef=cfg.kl_coef, entropy_coef=cfg.entropy_coef,
                          constant=cfg.max_new_tokens if cfg.loss_agg == "constant" else None,
                          micro_batch_size=cfg.micro_batch_size, max_grad_norm=cfg.max_grad_norm,
                          temperature=cfg.temperature, chunk_size=cfg.chunk_size, reduce=reduce)


def validate(cfg):
    """Clear errors for values that would otherwise fail deep inside the loop (or train nothing)."""
    def bad(msg):
        raise ValueError(f"invalid config: {msg}")
    if cfg.group_size < 2:
        bad(f"group_size must be >= 2 (a group of one has no baseline), got {cfg.group_size}")
    for f in fields(cfg):
        allowed = f.metadata.get("choices")
        if allowed and getattr(cfg, f.name) not in allowed:
            bad(f"{f.name} must be one of {allowed}, got {getattr(cfg, f.name)!r}")
    try:  # the mask's and the objective's rules, stated once by the classes that use them
        update_settings(cfg)
    except ValueError as err:
        bad(str(err))
    if cfg.verifier == "math-verify" and not math_verify_available():
        bad("verifier 'math-verify' needs the optional package: pip install math-verify")
    for name in ("steps", "prompts_per_step", "mini_batch_prompts", "micro_batch_size",
                 "max_new_tokens", "ppo_epochs", "max_gen_batches", "chunk_size"):
        if getattr(cfg, name) < 1:
            bad(f"{name} must be >= 1, got {getattr(cfg, name)}")
    if cfg.gen_prompts and cfg.gen_prompts < cfg.prompts_per_step:  # 0: prompts_per_step
        bad(f"gen_prompts ({cfg.gen_prompts}) must be 0 or at least prompts_per_step "
            f"({cfg.prompts_per_step})")
    if cfg.prompts_per_step % cfg.mini_batch_prompts:
        bad(f"prompts_per_step ({cfg.prompts_per_step}) must be a multiple of mini_batch_prompts "
            f"({cfg.mini_batch_prompts})")
    # NaN passes every comparison below unnoticed, and inf is never a sane setting
    for f in fields(cfg):
        if f.type in (float, "float") and not math.isfinite(getattr(cfg, f.name)):
            bad(f"{f.name} must be a finite number, got {getattr(cfg, f.name)}")
    for name in ("eval_n", "eval_every", "save_every", "overlong_buffer", "max_prompt_tokens",
                 "gen_prompts"):
        if getattr(cfg, name) < 0:
            bad(f"{name} must be >= 0, got {getattr(cfg, name)}")
    if cfg.eval_k < 1:
        bad(f"eval_k must be >= 1, got {cfg.eval_k}")
    if not 0 < cfg.temperature <= 10 or not 0 < cfg.top_p <= 1:
        bad(f"need 0 < temperature <= 10 and 0 < top_p <= 1, got {cfg.temperature}, {cfg.top_p}"
            + (" (temperature 0, greedy, gives identical samples per group: no advantage signal)"
               if cfg.temperature == 0 else ""))
    if cfg.overlong_buffer > cfg.max_new_tokens:
        bad(f"overlong_buffer ({cfg.overlong_buffer}) must be in "
            f"[0, max_new_tokens={cfg.max_new_tokens}] "
            "(0 turns the overlong shaping off)")
    if not 0 < cfg.lr <= 1:  # an AdamW step moves every weight by about lr: above 1, erased
        bad(f"lr must be > 0 and at most 1, got {cfg.lr}")
    for name in ("weight_decay", "overlong_factor"):
        if getattr(cfg, name) < 0:
            bad(f"{name} must be >= 0, got {getattr(cfg, name)}")
    if cfg.weight_decay * cfg.lr >= 1:
        bad("weight_decay x lr must be < 1 (AdamW shrinks the weights by that share each step), "
            f"got {cfg.weight_decay} x {cfg.lr}")
    if cfg.reward_correct <= cfg.reward_wrong:
        bad(f"reward_correct ({cfg.reward_correct}) must be larger than reward_wrong "
            f"({cfg.reward_wrong})")
    if not 0 < cfg.vllm_gpu_memory <= 1:
        bad(f"vllm_gpu_memory is a share of the GPU memory, in (0, 1], got {cfg.vllm_gpu_memory}")
    if cfg.resume and cfg.overwrite:
        bad("--resume continues the run in out_dir and --overwrite replaces it: pass one of them")
    return cfg
