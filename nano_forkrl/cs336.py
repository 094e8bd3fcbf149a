"""The Stanford CS336 (spring 2025) GRPO assignment's function names and semantics, on top of this project's code.

A course can keep CS336's adapters and tests: every function here has the assignment's name, argument names and
return values, and delegates to the concept modules that the training loop itself uses (the loop never calls this
file). Where CS336 and this project differ in a convention, this file follows CS336:
- `masked_mean` of an all-zero mask is 0/0 = nan (masking.py);  `masked_normalize` defaults its constant to 1.0;
- `compute_grpo_clip_loss` clips symmetrically (eps_low = eps_high = cliprange); the loop uses DAPO's clip-higher;
- `grpo_microbatch_train_step` averages each sequence's response tokens, then the batch (GRPO), and calls
  backward; the loop's default aggregation is DAPO's token mean over the trained tokens (loss.aggregate);
- `r1_zero_reward_fn` demands the R1-zero format ("</think> <answer>...</answer>"); the loop's `verify.reward`
  takes the final answer in any format.
"""
import torch

from nano_forkrl.advantage import dynamic_sampling_keep, group_advantages
from nano_forkrl.entropy import token_entropy, token_logprobs_and_entropy
from nano_forkrl.loss import clipped_pg_loss, naive_pg_loss
from nano_forkrl.masking import masked_mean, masked_sum
from nano_forkrl.sampling import pad_id as pad_of
from nano_forkrl.tasks.data import collate_rollouts
from nano_forkrl.verifier.extract import extract_answer
from nano_forkrl.verify import is_equivalent

__all__ = ["compute_entropy", "compute_group_normalized_rewards", "compute_grpo_clip_loss",
           "compute_naive_policy_gradient_loss", "compute_policy_gradient_loss", "get_response_log_probs",
           "grpo_microbatch_train_step", "masked_mean", "masked_normalize", "r1_zero_reward_fn",
           "sft_microbatch_train_step", "tokenize_prompt_and_output"]


def masked_normalize(tensor: torch.Tensor, mask: torch.Tensor, normalize_constant: float = 1.0, dim=None):
    """sum(tensor * mask, dim) / normalize_constant (e.g. Dr. GRPO's fixed length normaliser)."""
    return masked_sum(tensor, mask, dim) / normalize_constant

def compute_entropy(logits: torch.Tensor) -> torch.Tensor:
    """`entropy.token_entropy` under CS336's name."""
    return token_entropy(logits)

def get_response_log_probs(model, input_ids, labels, return_token_entropy=False):
    """{"log_probs": [B, T]} (+ "token_entropy") with labels given, temperature 1; differentiable
    unless called under torch.no_grad() or torch.inference_mode() (e.g. for the old policy's log-probs)."""
    logprobs, entropy = token_logprobs_and_entropy(model, input_ids, labels=labels, with_grad=torch.is_grad_enabled())
    out = {"log_probs": logprobs}
    if return_token_entropy:
        out["token_entropy"] = entropy
    return out

def tokenize_prompt_and_output(prompt_strs, output_strs, tokenizer):
    """Tokenize prompts and outputs separately (no special tokens), concatenate, right-pad with the pad
    token (eos if there is none). Returns {"input_ids", "labels", "response_mask"}, each [B, max_len - 1]."""
    pad_id = pad_of(tokenizer)  # the pad id, else the EOS id (sampling.pad_id)
    if pad_id is None:
        raise ValueError("tokenizer has neither pad_token_id nor eos_token_id to pad with")
    prompt_ids = tokenizer(list(prompt_strs), add_special_tokens=False)["input_ids"]
    output_ids = tokenizer(list(output_strs), add_special_tokens=False)["input_ids"]
    batch = collate_rollouts(prompt_ids, output_ids, pad_id)
    return {k: batch[k] for k in ("input_ids", "labels", "response_mask")}

def compute_group_normalized_rewards(reward_fn, rollout_responses, repeated_ground_truths, group_size,
                                     advantage_eps, normalize_by_std):
    """reward_fn(response, ground_truth) -> dict with key "reward" (other numeric keys such as
    "format_reward" / "answer_reward" are averaged into the metadata too).

    Returns (advantages [B], raw_rewards [B], metadata) with metadata: reward_mean/std/max/min,
    <key>_mean for every key of the reward dicts, and frac_groups_all_equal (what dynamic sampling drops)."""
    if len(rollout_responses) != len(repeated_ground_truths):
        raise ValueError("rollout_responses and repeated_ground_truths differ in length")
    scores = [reward_fn(resp, gt) for resp, gt in zip(rollout_responses, repeated_ground_truths)]
    raw = torch.tensor([float(s["reward"]) for s in scores], dtype=torch.float32)
    adv = group_advantages(raw, group_size, normalize_std=normalize_by_std, eps=advantage_eps)
    meta = {f"{k}_mean": sum(float(s[k]) for s in scores) / len(scores)
            for k in scores[0] if isinstance(scores[0][k], (int, float))}
    meta.update(reward_mean=raw.mean().item(), reward_std=raw.std().item(),
                reward_max=raw.max().item(), reward_min=raw.min().item(),
                frac_groups_all_equal=1.0 - dynamic_sampling_keep(raw, group_size).float().mean().item())
    return adv, raw, meta

def compute_naive_policy_gradient_loss(raw_rewards_or_advantages, policy_log_probs):
    return naive_pg_loss(policy_log_probs, raw_rewards_or_advantages)

def compute_grpo_clip_loss(advantages, policy_log_probs, old_log_probs, cliprange):
    """Symmetric clip (eps_low = eps_high = cliprange). Metadata: the per-token stats plus clip_fraction."""
    loss, stats = clipped_pg_loss(policy_log_probs, old_log_probs, advantages, eps_low=cliprange, eps_high=cliprange)
    stats["clip_fraction"] = stats["is_clipped"].float().mean()
    return loss, stats

def compute_policy_gradient_loss(policy_log_probs, loss_type, raw_rewards=None, advantages=None,
                                 old_log_probs=None, cliprange=None):
    """loss_type: "no_baseline" (-R * logp), "reinforce_with_baseline" (-A * logp), "grpo_clip"."""
    if loss_type == "no_baseline":
        assert raw_rewards is not None, "no_baseline needs raw_rewards"
        return naive_pg_loss(policy_log_probs, raw_rewards), {}
    if loss_type == "reinforce_with_baseline":
        assert advantages is not None, "reinforce_with_baseline needs advantages"
        return naive_pg_loss(policy_log_probs, advantages), {}
    if loss_type == "grpo_clip":
        assert advantages is not None and old_log_probs is not None and cliprange is not None, "grpo_clip args"
        return compute_grpo_clip_loss(advantages, policy_log_probs, old_log_probs, cliprange)
    raise ValueError(f"unknown loss_type {loss_type!r}")

def grpo_microbatch_train_step(policy_log_probs, response_mask, gradient_accumulation_steps, loss_type,
                               raw_rewards=None, advantages=None, old_log_probs=None, cliprange=None):
    """Per-token loss -> mean over each sequence's response tokens -> mean over the batch
    -> / gradient_accumulation_steps -> backward. Returns (scaled loss, metadata)."""
    per_token, meta = compute_policy_gradient_loss(policy_log_probs, loss_type, raw_rewards, advantages,
                                                   old_log_probs, cliprange)
    loss = masked_mean(per_token, response_mask, dim=-1).mean() / gradient_accumulation_steps
    loss.backward()
    return loss, meta

def sft_microbatch_train_step(policy_log_probs, response_mask, gradient_accumulation_steps, normalize_constant=1.0):
    """The SFT step (the warm start's loss): -sum(log p over response tokens) / normalize_constant, averaged
    over the sequences, / gradient_accumulation_steps -> backward. Returns (scaled loss, metadata)."""
    nll = -masked_normalize(policy_log_probs, response_mask, normalize_constant, dim=-1)
    loss = nll.mean() / gradient_accumulation_steps
    loss.backward()
    return loss, {"num_response_tokens": response_mask.sum().detach()}

def r1_zero_reward_fn(response, ground_truth, fast=True):
    """The R1-zero prompt's reward ("... </think> <answer> ... </answer>").
    Format: the response contains "</think> <answer>" and "</answer>"; without it every reward is 0 (a bare
    \\boxed{} answer too). With it: format 1, and answer = reward = 1 if the tagged answer (its last \\boxed{} if
    any) is right. ground_truth: a string, a number or a list of accepted answers. `fast`: accepted, unused
    (this verifier has one mode). The training loop uses `reward`, which takes the answer in any format."""
    if not (isinstance(response, str) and "</think> <answer>" in response and "</answer>" in response):
        return {"format_reward": 0.0, "answer_reward": 0.0, "reward": 0.0}
    golds = ground_truth if isinstance(ground_truth, (list, tuple)) else [ground_truth]
    pred = extract_answer(response)
    right = pred is not None and any(is_equivalent(pred, str(g) if isinstance(g, (int, float)) else g) for g in golds)
    return {"format_reward": 1.0, "answer_reward": float(right), "reward": float(right)}
