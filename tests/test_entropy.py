"""Tests for nano_forkrl.entropy: formulas by hand, the chunked path against the naive full-logits
path."""
import contextlib
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from conftest import make_tiny_qwen3
from nano_forkrl.cs336 import compute_entropy
from nano_forkrl import entropy
from nano_forkrl.entropy import (autocast, entropy_statistics, logprobs_from_logits, token_entropy,
                                 token_logprobs_and_entropy)

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------ token_entropy / logprobs_from_logits
def test_uniform_logits_give_log_v():
    for v in (2, 7, 151936):
        h = token_entropy(torch.full((3, v), 5.0))
        assert h.shape == (3,)
        torch.testing.assert_close(h, torch.full((3,), math.log(v)), atol=1e-4, rtol=0)


def test_peaked_logits_give_zero_and_two_way_tie_gives_log2():
    logits = torch.zeros(4, 50)
    logits[:, 3] = 100.0
    assert token_entropy(logits).abs().max() < 1e-6
    extreme = torch.tensor([[1e4, 1e4, -1e4, 0.0], [-1e4, 1e4, -1e4, -1e4]])
    h = token_entropy(extreme)
    assert torch.isfinite(h).all()
    torch.testing.assert_close(h, torch.tensor([math.log(2), 0.0]), atol=1e-6, rtol=0)


def test_entropy_matches_naive_float64():
    torch.manual_seed(0)
    logits = 4 * torch.randn(2, 5, 33)
    p = torch.softmax(logits.double(), -1)
    naive = -(p * p.log()).sum(-1)
    h = token_entropy(logits)
    assert h.dtype == torch.float32 and h.shape == (2, 5)
    torch.testing.assert_close(h.double(), naive, atol=1e-5, rtol=0)
    torch.testing.assert_close(compute_entropy(logits), h)


def test_bf16_input_gives_float32_output():
    torch.manual_seed(1)
    logits = torch.randn(3, 40).bfloat16()
    h = token_entropy(logits)
    assert h.dtype == torch.float32
    torch.testing.assert_close(h, token_entropy(logits.float()))
    lp = logprobs_from_logits(logits, torch.tensor([0, 5, 39]))
    assert lp.dtype == torch.float32


def test_logprobs_from_logits_hand_values_and_temperature():
    logits = torch.tensor([[0.0, math.log(3.0)]])
    torch.testing.assert_close(logprobs_from_logits(logits, torch.tensor([1])),
                               torch.tensor([math.log(0.75)]))
    # temperature 2: z = [0, ln(3)/2] -> p(1) = sqrt(3) / (1 + sqrt(3))
    want = math.log(math.sqrt(3) / (1 + math.sqrt(3)))
    torch.testing.assert_close(logprobs_from_logits(logits, torch.tensor([1]), temperature=2.0),
                               torch.tensor([want]))


def test_logprobs_from_logits_matches_log_softmax_gather():
    torch.manual_seed(2)
    logits, labels = torch.randn(2, 6, 20), torch.randint(0, 20, (2, 6))
    for temp in (1.0, 0.6, 1.3):
        ref = torch.log_softmax(logits / temp, -1).gather(-1, labels[..., None]).squeeze(-1)
        torch.testing.assert_close(logprobs_from_logits(logits, labels, temperature=temp), ref)


# ---------------------------------------------------------------- the chunked model path
def naive(model, ids, attention_mask=None, temperature=1.0):
    """Full logits, log_softmax, shift: the reference the chunked path must equal."""
    kwargs = {}
    if attention_mask is not None:
        kwargs = dict(attention_mask=attention_mask,
                      position_ids=(attention_mask.cumsum(-1) - 1).clamp(min=0))
    z = model(ids, **kwargs).logits.float() / temperature
    lp = torch.log_softmax(z, -1)[:, :-1].gather(-1, ids[:, 1:, None]).squeeze(-1)
    lp = torch.cat([lp, torch.zeros(ids.shape[0], 1)], dim=1)
    p = torch.softmax(z, -1)
    return lp, -(p * torch.log_softmax(z, -1)).sum(-1)


@pytest.fixture(scope="module")
def model():
    return make_tiny_qwen3()


def test_chunked_equals_naive_for_any_chunk_size(model):
    torch.manual_seed(3)
    ids = torch.randint(2, 64, (3, 7))  # B*T = 21
    with torch.no_grad():
        ref_lp, ref_h = naive(model, ids)
    for chunk in (1, 4, 5, 20, 21, 1024):
        lp, h = token_logprobs_and_entropy(model, ids, chunk_size=chunk)
        assert lp.shape == h.shape == (3, 7) and lp.dtype == h.dtype == torch.float32
        torch.testing.assert_close(lp, ref_lp, atol=1e-5, rtol=0)
        torch.testing.assert_close(h, ref_h, atol=1e-5, rtol=0)
        assert (lp[:, -1] == 0).all()


def test_labels_convention_matches_shifted_convention(model):
    torch.manual_seed(4)
    full = torch.randint(2, 64, (2, 9))
    inp, labels = full[:, :-1], full[:, 1:]
    lp_l, h_l = token_logprobs_and_entropy(model, inp, labels=labels, chunk_size=3)
    lp_s, h_s = token_logprobs_and_entropy(model, full, chunk_size=5)
    torch.testing.assert_close(lp_l, lp_s[:, :-1], atol=1e-5, rtol=0)
    torch.testing.assert_close(h_l, h_s[:, :-1], atol=1e-5, rtol=0)
    with torch.no_grad():
        ref = torch.log_softmax(model(inp).logits, -1).gather(-1, labels[..., None]).squeeze(-1)
    torch.testing.assert_close(lp_l, ref, atol=1e-5, rtol=0)
    assert (lp_l[:, -1] != 0).all()  # with labels every column is a real score


def test_padding_left_and_right(model):
    torch.manual_seed(5)
    ids = torch.randint(2, 64, (2, 8))
    mask = torch.tensor([[0, 0, 0, 1, 1, 1, 1, 1],   # left padded: 5 real tokens
                         [1, 1, 1, 1, 1, 1, 0, 0]])  # right padded: 6 real tokens
    ids = ids * mask  # pad id 0
    lp, h = token_logprobs_and_entropy(model, ids, mask, chunk_size=3)
    with torch.no_grad():
        ref_lp, ref_h = naive(model, ids, mask)
        alone0 = token_logprobs_and_entropy(model, ids[:1, 3:])
        alone1 = token_logprobs_and_entropy(model, ids[1:, :6])
    real = mask.bool()
    scored = real.clone()
    scored[:, :-1] &= real[:, 1:]  # log-prob at t needs a real token at t + 1
    scored[:, -1] = False
    torch.testing.assert_close(lp[scored], ref_lp[scored], atol=1e-5, rtol=0)
    torch.testing.assert_close(h[real], ref_h[real], atol=1e-5, rtol=0)
    assert torch.isfinite(lp).all() and torch.isfinite(h).all()  # padding gets harmless values
    # a padded row scores like the same tokens with no padding at all
    torch.testing.assert_close(lp[0, 3:-1], alone0[0][0, :-1], atol=1e-5, rtol=0)
    torch.testing.assert_close(h[0, 3:], alone0[1][0], atol=1e-5, rtol=0)
    torch.testing.assert_close(lp[1, :5], alone1[0][0, :5], atol=1e-5, rtol=0)
    torch.testing.assert_close(h[1, :6], alone1[1][0], atol=1e-5, rtol=0)


def test_temperature(model):
    torch.manual_seed(6)
    ids = torch.randint(2, 64, (2, 6))
    with torch.no_grad():
        ref_lp, ref_h = naive(model, ids, temperature=0.7)
    lp, h = token_logprobs_and_entropy(model, ids, temperature=0.7, chunk_size=5)
    torch.testing.assert_close(lp, ref_lp, atol=1e-5, rtol=0)
    torch.testing.assert_close(h, ref_h, atol=1e-5, rtol=0)
    lp1, _ = token_logprobs_and_entropy(model, ids)
    assert (lp - lp1)[:, :-1].abs().max() > 1e-3  # temperature really changes the scores


def test_gradients_match_naive(model):
    torch.manual_seed(7)
    ids = torch.randint(2, 64, (2, 6))
    weights = torch.randn(2, 6)

    def grads(fn):
        model.zero_grad()
        lp, h = fn()
        ((lp * weights).sum() + h.sum()).backward()
        return {n: p.grad.clone() for n, p in model.named_parameters()}

    ref = grads(lambda: naive(model, ids))
    got = grads(lambda: token_logprobs_and_entropy(model, ids, chunk_size=5, with_grad=True))
    model.zero_grad()
    assert ref.keys() == got.keys()
    for name in ref:
        torch.testing.assert_close(got[name], ref[name], atol=1e-5, rtol=1e-4, msg=name)
    assert any(g.abs().max() > 0 for g in got.values())


def test_no_grad_path_returns_plain_tensors(model):
    ids = torch.randint(2, 64, (2, 5))
    lp, h = token_logprobs_and_entropy(model, ids)
    assert not lp.requires_grad and not h.requires_grad
    lp, h = token_logprobs_and_entropy(model, ids, with_grad=True)
    assert lp.requires_grad and h.requires_grad


def test_head_only_ever_sees_chunks_forward_and_backward(model, monkeypatch):
    """Checkpointing: backward re-runs the head chunk by chunk; no [B, T, V] logits are ever
    produced (here the toy vocabulary is treated as a large one)."""
    monkeypatch.setattr(entropy, "SMALL_LOGITS", 0)
    shapes = []
    original = model.lm_head.forward

    def recording(x):
        out = original(x)
        shapes.append(tuple(out.shape))
        return out

    model.lm_head.forward = recording
    try:
        ids = torch.randint(2, 64, (2, 9))  # 18 tokens, chunk 4 -> 5 chunks
        token_logprobs_and_entropy(model, ids, chunk_size=4)
        assert len(shapes) == 5
        shapes.clear()
        lp, h = token_logprobs_and_entropy(model, ids, chunk_size=4, with_grad=True)
        assert len(shapes) == 5
        (lp.sum() + h.sum()).backward()
        assert len(shapes) == 10  # recomputed in backward, one chunk at a time
        assert all(len(s) == 2 and s[0] <= 4 and s[1] == 64 for s in shapes)
    finally:
        del model.lm_head.forward
        model.zero_grad()


def test_small_logits_are_kept_not_recomputed_with_the_same_results(model, monkeypatch):
    """Below SMALL_LOGITS entries the head is not checkpointed; log-probs, entropies and gradients
    are bitwise those of the checkpointed path."""
    torch.manual_seed(5)
    ids, weights = torch.randint(2, 64, (3, 9)), torch.randn(3, 9)
    calls = []
    real_checkpoint = entropy.checkpoint
    monkeypatch.setattr(entropy, "checkpoint", lambda *a, **k: calls.append(1) or
                        real_checkpoint(*a, **k))

    def run(small_logits):
        monkeypatch.setattr(entropy, "SMALL_LOGITS", small_logits)
        model.zero_grad()
        lp, h = token_logprobs_and_entropy(model, ids, chunk_size=4, with_grad=True)
        ((lp * weights).sum() + h.sum()).backward()
        return [lp, h] + [p.grad.clone() for p in model.parameters()]

    kept = run(27 * 64)  # exactly B T V entries: small
    assert calls == []
    checkpointed = run(27 * 64 - 1)
    assert len(calls) == 7  # ceil(27 / 4) chunks
    model.zero_grad()
    assert all(torch.equal(a, b) for a, b in zip(kept, checkpointed))


MEMORY_SCRIPT = textwrap.dedent("""
    import resource, sys, torch
    sys.path[:0] = [{root!r}, {tests!r}]
    from conftest import make_tiny_qwen3
    from nano_forkrl.entropy import token_logprobs_and_entropy

    def peak():  # this process's high-water mark: Linux keeps ru_maxrss across fork+exec (the
        try:     # parent's would show), so read VmHWM, which exec resets; ru_maxrss elsewhere
            return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status")
                        if l.startswith("VmHWM:"))
        except (OSError, StopIteration):
            unit = 1 if sys.platform == "darwin" else 1024
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit

    model = make_tiny_qwen3(vocab_size=151936, hidden_size=16, layers=1)
    ids = torch.randint(0, 151936, (1, 1024))
    before = peak()
    lp, h = token_logprobs_and_entropy(model, ids, chunk_size=64)
    after = peak()
    assert torch.isfinite(lp).all() and torch.isfinite(h).all()
    print(after - before, after)
""")


@pytest.mark.skipif(sys.platform == "win32", reason="uses the resource module")
def test_real_vocab_peak_memory_far_below_full_logits():
    """1,024 tokens x 151,936 vocab: full float32 logits would be 622 MB (and log-softmax as much
    again); chunks of 64 need ~120 MB."""
    script = MEMORY_SCRIPT.format(root=str(ROOT), tests=str(ROOT / "tests"))
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    growth, peak = map(int, res.stdout.split())
    full_logits = 1024 * 151936 * 4
    assert growth < full_logits / 2, f"peak RSS grew by {growth / 1e9:.2f} GB"
    assert peak < 1.2e9, f"peak RSS {peak / 1e9:.2f} GB"


def test_score_batch_equals_one_full_pass_on_real_tokens():
    from nano_forkrl.tasks.data import collate_rollouts
    from nano_forkrl.entropy import score_batch
    model = make_tiny_qwen3()
    batch = collate_rollouts([[3, 4, 5], [6], [7, 8]], [[9, 10], [11, 12, 13, 14], [15]], pad_id=0)
    ref_lp, ref_h = token_logprobs_and_entropy(model, batch["input_ids"], batch["attention_mask"],
                                               labels=batch["labels"], temperature=0.7)
    for micro in (1, 2, 3):
        lp, h = score_batch(model, batch, micro_batch_size=micro, temperature=0.7)
        real = batch["attention_mask"].bool()
        assert torch.allclose(lp[real], ref_lp[real], atol=1e-5)
        assert torch.allclose(h[real], ref_h[real], atol=1e-5)
        assert not lp.requires_grad
    lp, _ = score_batch(model, batch, micro_batch_size=1)
    # row 2 alone has 3 real inputs: its micro-batch is cut to that width
    assert lp[2, 3:].abs().sum() == 0


def test_real_width_is_one_past_the_last_real_column():
    from nano_forkrl.entropy import real_width
    right = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 0, 0, 0]])  # collate_rollouts' right padding
    left = torch.tensor([[0, 0, 1, 1, 0], [0, 1, 1, 1, 0]])
    # never cuts a real token, whatever the padding side
    assert real_width(right) == 3 and real_width(left) == 4
    assert real_width(torch.ones(2, 5, dtype=torch.long)) == 5


# -------------------------------------------------------- entropy_statistics (the paper's Sec. 3)
VALUES = [0.0, 0.005, 0.002, 2.0, 0.5, 1.0, 0.009, 3.0, 0.3, 0.1]


def padded_batch(pad_value):
    """VALUES laid out in a [2, 7] tensor (6 + 4 valid tokens); every other entry is padding =
    pad_value."""
    entropy = torch.full((2, 7), pad_value)
    mask = torch.zeros(2, 7, dtype=torch.bool)
    entropy[0, :6], entropy[1, 1:5] = torch.tensor(VALUES[:6]), torch.tensor(VALUES[6:])
    mask[0, :6], mask[1, 1:5] = True, True
    return entropy, mask


def test_padding_never_counted():
    a, b = entropy_statistics(*padded_batch(0.0)), entropy_statistics(*padded_batch(1e6))
    assert a == b


def test_percentiles_by_sorting_random():
    g = torch.Generator().manual_seed(0)
    for n in (1, 5, 37, 1000):
        h = torch.rand(n, generator=g) * 3
        stats = entropy_statistics(h[None], torch.ones(1, n, dtype=torch.bool))
        ordered = sorted(h.tolist())
        assert stats["p80"] == ordered[math.ceil(0.8 * n) - 1]
        assert stats["p50"] == ordered[math.ceil(0.5 * n) - 1]
        # the definition: at least 80% of tokens at or below p80, and fewer than 80% strictly below
        at_or_below = sum(x <= stats["p80"] for x in ordered)
        assert at_or_below >= 0.8 * n > sum(x < stats["p80"] for x in ordered)
        assert sum(stats["histogram"]["counts"]) == n


def test_entropy_statistics_hand_values():
    stats = entropy_statistics(*padded_batch(100.0))
    # sorted: 0, .002, .005, .009, .1, .3, .5, 1, 2, 3 -> nearest rank: p50 = 5th value, p80 = 8th
    assert stats["n_tokens"] == 10
    assert stats["p50"] == pytest.approx(0.1) and stats["p80"] == pytest.approx(1.0)
    assert stats["share_below_0.01"] == pytest.approx(0.4)
    assert stats["mean"] == pytest.approx(sum(VALUES) / 10)
    assert stats["max"] == pytest.approx(3.0)  # the padding (100) is not counted
    counts, edges = stats["histogram"]["counts"], stats["histogram"]["edges"]
    assert len(counts) == 50 and len(edges) == 51 and sum(counts) == 10
    assert edges[0] == 0 and edges[1] == pytest.approx(1e-4) and edges[-1] == pytest.approx(3.0)
    brute = [sum(edges[i] <= v < edges[i + 1] or (i == 49 and v == max(VALUES)) for v in VALUES)
             for i in range(50)]
    assert counts == brute and counts[0] == 1  # only 0.0 is below 1e-4


def test_entropy_statistics_empty_mask_raises():
    with pytest.raises(ValueError):
        entropy_statistics(torch.ones(2, 3), torch.zeros(2, 3, dtype=torch.bool))


def test_autocast_is_a_no_op_on_cpu():
    assert isinstance(autocast(make_tiny_qwen3()), contextlib.nullcontext)
