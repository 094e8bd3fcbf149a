"""The public graded cases: they ship with the student copy, with the outputs the solution gives.

Each checks an interface and the examples of a docstring; `python -m nano_forkrl.assignment grade`
runs them exactly as the autograder does (which also runs hidden cases, hidden.py, on the same
functions). A case returns outputs and the grader compares them with the solution's (cases.py);
random outputs are judged by a property check instead. The helpers below build deterministic inputs
for both files.
"""
from dataclasses import asdict

import torch

from nano_forkrl.assignment.cases import case

SLOW = 60.0  # the verifier's time bound in the cases: generous, so a busy grader still answers


def randn(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def tiny_model(seed=0, vocab=48):
    """A Qwen3 with a toy config and random weights (float32, CPU; no download)."""
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(seed)
    config = Qwen3Config(vocab_size=vocab, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         head_dim=8, max_position_embeddings=128, tie_word_embeddings=True,
                         pad_token_id=0, eos_token_id=1, bos_token_id=1)
    return Qwen3ForCausalLM(config).eval()


def batch(seed=0, lens=(7, 4, 6, 3), prompt=2, width=10, vocab=48):
    """data.collate_rollouts' layout, right-padded with id 0: input_ids = full[:, :-1],
    labels = full[:, 1:]."""
    g = torch.Generator().manual_seed(seed)
    full = torch.randint(2, vocab, (len(lens), width + 1), generator=g)
    pos, ends = torch.arange(width + 1), torch.tensor([prompt + n for n in lens])[:, None]
    full = torch.where(pos < ends, full, 0)
    resp = (pos >= prompt) & (pos < ends)
    return {"input_ids": full[:, :-1], "labels": full[:, 1:], "response_mask": resp[:, 1:],
            "attention_mask": (pos < ends)[:, :-1].long()}


# ---------------------------------------------------------------- sampling (02)
@case("sampling", public=True)
def greedy_picks_the_argmax_with_its_logprob():
    from nano_forkrl.sampling import sample_next

    tokens, logprobs = sample_next(torch.tensor([[1.0, 3.0, 2.0], [0.0, 0.0, 5.0]]), temperature=0)
    return tokens, logprobs


# ---------------------------------------------------------------- extract, verify (03)
@case("extract", public=True)
def docstring_examples():
    from nano_forkrl.verifier.extract import extract_answer

    texts = (r"so the result is \boxed{\frac{1}{2}}.", r"first \boxed{1}, then \boxed{2}",
             "#### 72", "The answer is 5.", "</think> <answer>5</answer>", None)
    return [extract_answer(s) for s in texts]


@case("verify", public=True)
def equal_forms_of_one_number():
    from nano_forkrl.verify import is_equivalent

    pairs = [("0.5", r"\frac{1}{2}"), ("1/2", "0.5"), ("2", "3"), (r"\sqrt{4}", "2"),
             ("1,000", "1000")]
    return [is_equivalent(a, b, timeout=SLOW) for a, b in pairs]


@case("verify", public=True)
def reward_of_a_boxed_answer():
    from nano_forkrl.verify import reward

    return [reward(r"so \boxed{4}", "4", timeout=SLOW), reward(r"so \boxed{5}", "4", timeout=SLOW),
            reward("no answer", "4", wrong=-1.0, timeout=SLOW)]


# ---------------------------------------------------------------- advantage (04)
@case("advantage", public=True)
def grpo_and_drgrpo_of_two_groups():
    from nano_forkrl.advantage import group_advantages

    rewards = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0]
    return group_advantages(rewards, 3), group_advantages(rewards, 3, normalize_std=False)


@case("advantage", public=True)
def dynamic_sampling_and_overlong_penalty():
    from nano_forkrl.advantage import dynamic_sampling_keep, overlong_penalty

    return (dynamic_sampling_keep([1, 0, 1, 1], 2),
            overlong_penalty(torch.tensor([10, 16, 18, 20, 25]), max_len=20, buffer=4))


# ---------------------------------------------------------------- entropy, logprobs (05)
@case("entropy", public=True)
def uniform_and_peaked_logits():
    from nano_forkrl.entropy import token_entropy

    peaked = torch.tensor([[0.0, 50.0, 0.0], [5.0, 5.0, -50.0]])
    return token_entropy(torch.zeros(2, 8)), token_entropy(peaked)


@case("logprobs", public=True)
def logprobs_from_logits_with_temperature():
    from nano_forkrl.entropy import logprobs_from_logits

    logits, labels = randn(2, 3, 7), torch.tensor([[0, 6, 2], [1, 1, 5]])
    return (logprobs_from_logits(logits, labels),
            logprobs_from_logits(logits, labels, temperature=0.7))


@case("logprobs", public=True, rtol=1e-4, atol=1e-5)
def token_logprobs_and_entropy_shifted():
    from nano_forkrl.entropy import token_logprobs_and_entropy

    b = batch()
    return token_logprobs_and_entropy(tiny_model(), b["input_ids"], b["attention_mask"],
                                      chunk_size=7)


# ---------------------------------------------------------------- mask (06)
@case("mask", public=True)
def masked_sum_and_mean_hand_values():
    from nano_forkrl.masking import masked_mean, masked_sum

    x, m = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), torch.tensor([[1, 0, 1], [0, 0, 0]])
    return masked_sum(x, m), masked_mean(x, m), masked_sum(x, m, dim=1), masked_mean(x, m, dim=1)


@case("mask", public=True)
def top_entropy_mask_hand_example():
    from nano_forkrl.masking import top_entropy_mask

    ent = torch.tensor([[9.0, 0.5, 2.0, 2.0, 0.1], [2.0, 3.0, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[0, 1, 1, 1, 1], [1, 1, 0, 0, 0]])
    return [top_entropy_mask(ent, mask, 0.5, mode=mode) for mode in ("top", "bottom")]


# ---------------------------------------------------------------- loss (07)
@case("loss", public=True)
def clipped_loss_and_stats():
    from nano_forkrl.loss import clipped_pg_loss

    logp = torch.tensor([[-1.0, -0.5, -2.0], [-0.2, -3.0, -1.0]])
    old = torch.tensor([[-1.5, -0.5, -1.0], [-0.9, -2.0, -1.0]])
    return clipped_pg_loss(logp, old, torch.tensor([1.0, -1.0]))


@case("loss", public=True)
def aggregate_four_normalisers():
    from nano_forkrl.loss import aggregate

    loss, m = torch.arange(8.0).reshape(2, 4), torch.tensor([[1, 1, 0, 0], [0, 1, 0, 0]])
    resp = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    return [aggregate(loss, m, "token-mean"),
            aggregate(loss, m, "token-mean-all", response_mask=resp),
            aggregate(loss, m, "seq-mean-token-mean"), aggregate(loss, m, "constant", constant=4)]


# ---------------------------------------------------------------- update (07)
@case("update", public=True, rtol=1e-4, atol=1e-6)
def one_step_stats_and_weights():
    from nano_forkrl.masking import TokenSelection
    from nano_forkrl.tasks.rollout_batch import RolloutBatch
    from nano_forkrl.update import UpdateSettings, policy_step

    model, b = tiny_model(), batch()
    mask = TokenSelection(rho=0.5).for_batch(randn(4, 10, seed=2).abs(), b["response_mask"])
    rollouts = RolloutBatch(**b, advantages=torch.tensor([1.0, -1.0, 0.5, -0.5]),
                            old_logprobs=randn(4, 10, seed=1) * 0.1 - 3.0, token_mask=mask)
    stats = policy_step(model, torch.optim.SGD(model.parameters(), lr=0.1), rollouts,
                        UpdateSettings(micro_batch_size=3))
    return asdict(stats), model.model.norm.weight, model.model.embed_tokens.weight[:6]
