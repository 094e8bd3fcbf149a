"""Tests for nano_forkrl/cs336.py: the CS336 GRPO assignment's names, argument names and semantics."""
import math

import pytest
import torch
from conftest import make_tiny_qwen3

from nano_forkrl.cs336 import (compute_entropy, compute_group_normalized_rewards, compute_grpo_clip_loss,
                               compute_naive_policy_gradient_loss, compute_policy_gradient_loss,
                               get_response_log_probs, grpo_microbatch_train_step, masked_mean, masked_normalize,
                               r1_zero_reward_fn, sft_microbatch_train_step, tokenize_prompt_and_output)
from nano_forkrl.loss import clipped_pg_loss

LOG = math.log
X = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
M = torch.tensor([[1, 0, 1], [0, 0, 0]])


def tiny_tokenizer(pad=True):
    """A word-level tokenizer: ids 0 <pad>, 1 <eos>, then the words of the tests."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<pad>", "<eos>", "what", "is", "2", "+", "?", "it", "4", "."]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<eos>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    kwargs = {"pad_token": "<pad>"} if pad else {}
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", **kwargs)


def short(value):
    """Readable test ids for long strings."""
    return repr(value)[:40]


@pytest.fixture(scope="module")
def model():
    return make_tiny_qwen3()


def test_cs336_keyword_names():
    out = masked_normalize(tensor=X, mask=M.bool(), normalize_constant=4.0, dim=0)
    torch.testing.assert_close(out, torch.tensor([0.25, 0.0, 0.75]))
    assert masked_mean(tensor=X, mask=M.bool(), dim=None).item() == 2.0


def test_cs336_get_response_log_probs(model):
    torch.manual_seed(8)
    full = torch.randint(2, 64, (2, 8))
    inp, labels = full[:, :-1], full[:, 1:]
    out = get_response_log_probs(model, inp, labels)
    assert set(out) == {"log_probs"}
    assert out["log_probs"].requires_grad  # CS336's training step backpropagates through it
    out = get_response_log_probs(model, inp, labels, return_token_entropy=True)
    logits = model(inp).logits
    ref = torch.log_softmax(logits, -1).gather(-1, labels[..., None]).squeeze(-1)
    torch.testing.assert_close(out["log_probs"], ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(out["token_entropy"], compute_entropy(logits), atol=1e-5, rtol=0)
    for no_grad in (torch.no_grad, torch.inference_mode):  # old log-probs: no graph, and no error
        with no_grad():
            out = get_response_log_probs(model, inp, labels, return_token_entropy=True)
        assert not out["log_probs"].requires_grad
        torch.testing.assert_close(out["log_probs"], ref.detach(), atol=1e-5, rtol=0)


def test_tokenize_prompt_and_output_by_hand():
    out = tokenize_prompt_and_output(["what is 2 + 2 ?", "it"], ["it is 4 .", "4"], tiny_tokenizer())
    # full sequences: [2,3,4,5,4,6 | 7,3,8,9] and [7 | 8] + 8 pads (id 0); "|" = prompt/output boundary
    assert set(out) == {"input_ids", "labels", "response_mask"}
    assert out["input_ids"].tolist() == [[2, 3, 4, 5, 4, 6, 7, 3, 8], [7, 8, 0, 0, 0, 0, 0, 0, 0]]
    assert out["labels"].tolist() == [[3, 4, 5, 4, 6, 7, 3, 8, 9], [8, 0, 0, 0, 0, 0, 0, 0, 0]]
    F, T = False, True
    assert out["response_mask"].tolist() == [[F, F, F, F, F, T, T, T, T], [T, F, F, F, F, F, F, F, F]]
    assert out["input_ids"].dtype == out["labels"].dtype == torch.long
    assert out["response_mask"].dtype == torch.bool


def test_tokenize_prompt_and_output_pads_with_eos_when_no_pad_token():
    tok = tiny_tokenizer(pad=False)
    assert tok.pad_token_id is None
    out = tokenize_prompt_and_output(["what is", "it"], ["4", "is 4 ."], tok)
    assert out["input_ids"].tolist() == [[2, 3, 8], [7, 3, 8]]
    assert out["labels"].tolist() == [[3, 8, 1], [3, 8, 9]]  # eos (1) pads the shorter row
    assert out["response_mask"].tolist() == [[False, True, False], [True, True, True]]


def test_tokenize_prompt_and_output_with_real_qwen3(qwen3_tokenizer):
    prompts = ["Hello, world!", "This is a test.", "This is another test."]  # the CS336 fixture strings
    outputs = ["Hello, world!", "This is a test.", "This is another test."]
    out = tokenize_prompt_and_output(prompts, outputs, qwen3_tokenizer)
    enc = [(qwen3_tokenizer.encode(p, add_special_tokens=False), qwen3_tokenizer.encode(o, add_special_tokens=False))
           for p, o in zip(prompts, outputs)]
    width = max(len(p) + len(o) for p, o in enc)
    pad = qwen3_tokenizer.pad_token_id
    assert pad == 151643 and out["input_ids"].shape == (3, width - 1)
    for b, (p, o) in enumerate(enc):
        full = p + o + [pad] * (width - len(p) - len(o))
        assert out["input_ids"][b].tolist() == full[:-1]
        assert out["labels"][b].tolist() == full[1:]
        mask = [len(p) <= t + 1 < len(p) + len(o) for t in range(width - 1)]
        assert out["response_mask"][b].tolist() == mask


def test_compute_group_normalized_rewards_cs336():
    def reward_fn(response, ground_truth):
        correct = float(response.strip() == ground_truth)
        return {"reward": correct, "format_reward": 1.0, "answer_reward": correct}

    responses = ["4", "5", "4", "x", "7", "7", "7", "7"]
    truths = ["4"] * 4 + ["7"] * 4
    adv, raw, meta = compute_group_normalized_rewards(reward_fn, responses, truths, 4, 1e-6, True)
    torch.testing.assert_close(raw, torch.tensor([1.0, 0, 1, 0, 1, 1, 1, 1]))
    a = 0.5 / (math.sqrt(1 / 3) + 1e-6)
    torch.testing.assert_close(adv, torch.tensor([a, -a, a, -a, 0, 0, 0, 0]))
    assert meta["reward_mean"] == pytest.approx(0.75) and meta["answer_reward_mean"] == pytest.approx(0.75)
    assert meta["format_reward_mean"] == 1.0 and meta["reward_max"] == 1.0 and meta["reward_min"] == 0.0
    assert meta["reward_std"] == pytest.approx(raw.std().item())
    assert meta["frac_groups_all_equal"] == pytest.approx(0.5)
    adv2, _, _ = compute_group_normalized_rewards(reward_fn, responses, truths, 4, 1e-6, False)
    torch.testing.assert_close(adv2, torch.tensor([0.5, -0.5, 0.5, -0.5, 0, 0, 0, 0]))
    with pytest.raises(ValueError):
        compute_group_normalized_rewards(reward_fn, responses, truths[:-1], 4, 1e-6, True)


def test_cs336_grpo_clip_equals_native_symmetric():
    torch.manual_seed(0)
    logp, adv = torch.randn(2, 10), torch.rand(2, 1) - 0.5
    old = logp + torch.randn(2, 10)
    loss, meta = compute_grpo_clip_loss(adv, logp, old, 0.1)
    native, st = clipped_pg_loss(logp, old, adv, eps_low=0.1, eps_high=0.1)
    torch.testing.assert_close(loss, native)
    r = (logp - old).exp()
    torch.testing.assert_close(loss, -torch.minimum(r * adv, r.clamp(0.9, 1.1) * adv))  # the CS336 formula
    assert torch.equal(meta["is_clipped"], st["is_clipped"])
    assert meta["clip_fraction"].item() == pytest.approx(st["is_clipped"].float().mean().item())


def test_compute_policy_gradient_loss_types():
    torch.manual_seed(1)
    logp, old = torch.randn(2, 6), torch.randn(2, 6)
    raw, adv = torch.rand(2, 1), torch.randn(2, 1)
    out, _ = compute_policy_gradient_loss(logp, "no_baseline", raw_rewards=raw, advantages=adv)
    torch.testing.assert_close(out, -raw * logp)
    out, _ = compute_policy_gradient_loss(logp, "reinforce_with_baseline", raw_rewards=raw, advantages=adv)
    torch.testing.assert_close(out, -adv * logp)
    out, meta = compute_policy_gradient_loss(logp, "grpo_clip", advantages=adv, old_log_probs=old, cliprange=0.5)
    torch.testing.assert_close(out, clipped_pg_loss(logp, old, adv, eps_low=0.5, eps_high=0.5)[0])
    assert "is_clipped" in meta
    with pytest.raises(ValueError):
        compute_policy_gradient_loss(logp, "ppo", advantages=adv)


def test_grpo_microbatch_train_step_matches_hand_formula():
    torch.manual_seed(2)
    base, old = torch.randn(2, 5), torch.randn(2, 5)
    adv = torch.tensor([[1.0], [-0.5]])
    mask = torch.tensor([[1, 1, 0, 1, 0], [0, 1, 1, 1, 1]], dtype=torch.bool)
    logp = base.clone().requires_grad_(True)
    loss, _ = grpo_microbatch_train_step(logp, mask, 2, "grpo_clip", advantages=adv, old_log_probs=old, cliprange=0.2)
    ref = base.clone().requires_grad_(True)
    r = (ref - old).exp()
    per_tok = -torch.minimum(r * adv, r.clamp(0.8, 1.2) * adv)
    per_seq = (per_tok * mask).sum(-1) / mask.sum(-1)  # row means over 3 and 4 response tokens
    expected = per_seq.mean() / 2
    expected.backward()
    torch.testing.assert_close(loss, expected.detach())
    torch.testing.assert_close(logp.grad, ref.grad)


def test_sft_microbatch_train_step_by_hand():

    logp = torch.tensor([[-1.0, -2.0, -3.0], [-0.5, -0.5, -4.0]], requires_grad=True)
    mask = torch.tensor([[0, 1, 1], [1, 1, 0]])
    loss, meta = sft_microbatch_train_step(logp, mask, gradient_accumulation_steps=2, normalize_constant=2.0)
    # per sequence: (2+3)/2 = 2.5 and (0.5+0.5)/2 = 0.5; mean 1.5; / 2 accumulation steps
    assert loss.item() == pytest.approx(0.75) and meta["num_response_tokens"].item() == 4
    assert torch.allclose(logp.grad, -mask / (2.0 * 2 * 2))  # d loss / d logp = -mask / (c * B * gas)


@pytest.mark.parametrize("response, gold, expected", [
    (r"reasoning </think> <answer>\boxed{2}</answer>", "2", (1.0, 1.0, 1.0)),
    ("reasoning </think> <answer>2</answer>", "2", (1.0, 1.0, 1.0)),
    ("reasoning </think> <answer>3</answer>", "2", (1.0, 0.0, 0.0)),  # formatted, wrong: format reward only
    ("reasoning without any answer", "2", (0.0, 0.0, 0.0)),
    (r"<think> cut off \boxed{2}", "2", (0.0, 0.0, 0.0)),
    (r"\boxed{7}", "7", (0.0, 0.0, 0.0)),  # right, but not in the R1-zero format: CS336 gives nothing
    ("x </think><answer>7</answer>", "7", (0.0, 0.0, 0.0)),  # the format wants one space between the tags
    ("x </think> <answer>7", "7", (0.0, 0.0, 0.0)),  # never closed
    ("x </think> <answer>7</answer>", 7, (1.0, 1.0, 1.0)),  # numeric ground truth
    ("x </think> <answer>0.5</answer>", 0.5, (1.0, 1.0, 1.0)),
    ("x </think> <answer>7</answer>", ["6", "7"], (1.0, 1.0, 1.0)),  # any of several accepted answers
    (r"x </think> <answer>\boxed{8}</answer>", ["6", "7"], (1.0, 0.0, 0.0)),
    ("</think> <answer>0.25</answer>", r"\boxed{\frac14}", (1.0, 1.0, 1.0)),  # a boxed ground truth (CS336 allows it)
    ("</think> <answer></answer>", "2", (1.0, 0.0, 0.0)),  # formatted but empty
    (None, "2", (0.0, 0.0, 0.0)),  # garbage never raises
], ids=short)
def test_r1_zero_reward_fn(response, gold, expected):
    out = r1_zero_reward_fn(response, gold)
    assert (out["format_reward"], out["answer_reward"], out["reward"]) == expected
    assert r1_zero_reward_fn(response, gold, fast=False) == out
