"""Tests for nano_forkrl.masking: hand values for the masked reductions, brute force for the forking
mask."""
import math
import random
from fractions import Fraction

import pytest
import torch

from nano_forkrl.cs336 import masked_normalize
from nano_forkrl.masking import TokenSelection, masked_mean, masked_sum, top_entropy_mask

NAN = float("nan")
X = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
M = torch.tensor([[1, 0, 1], [0, 0, 0]])


# ---------------------------------------------------------------- masked reductions
@pytest.mark.parametrize("mask", [M.bool(), M.float(), M.long()])
def test_masked_sum_mean_normalize_hand_values(mask):
    assert masked_sum(X, mask).item() == 4.0
    assert masked_mean(X, mask).item() == 2.0
    assert masked_normalize(X, mask, 8.0).item() == 0.5
    assert masked_normalize(X, mask).item() == 4.0  # CS336 default 1.0
    assert masked_normalize(X, mask, dim=1).tolist() == [4.0, 0.0]
    torch.testing.assert_close(masked_sum(X, mask, dim=0), torch.tensor([1.0, 0.0, 3.0]))
    torch.testing.assert_close(masked_sum(X, mask, dim=1), torch.tensor([4.0, 0.0]))
    torch.testing.assert_close(masked_mean(X, mask, dim=0), torch.tensor([1.0, NAN, 3.0]),
                               equal_nan=True)
    torch.testing.assert_close(masked_mean(X, mask, dim=-1), torch.tensor([2.0, NAN]),
                               equal_nan=True)
    torch.testing.assert_close(masked_normalize(X, mask, 2.0, dim=1), torch.tensor([2.0, 0.0]))


def test_all_zero_mask_mean_is_nan_like_cs336():
    zero = torch.zeros_like(M)
    assert torch.isnan(masked_mean(X, zero))
    assert masked_sum(X, zero).item() == 0.0


def test_garbage_under_the_mask_is_ignored_and_gradient_is_mask_over_count():
    x = torch.tensor([[1.0, NAN, 3.0], [float("inf"), 5.0, 6.0]], requires_grad=True)
    mask = torch.tensor([[1, 0, 1], [0, 1, 1]])
    out = masked_mean(x, mask)
    assert out.item() == pytest.approx((1 + 3 + 5 + 6) / 4)
    out.backward()
    torch.testing.assert_close(x.grad, mask.float() / 4)


def test_matches_cs336_formula_on_random_3d():
    torch.manual_seed(0)
    t = torch.randn(2, 10, 100)
    mask = torch.rand_like(t) > 0.5
    for dim in (None, 0, 1, 2, -1):
        s = (t * mask).sum() if dim is None else (t * mask).sum(dim)
        n = mask.sum() if dim is None else mask.sum(dim)
        torch.testing.assert_close(masked_mean(t, mask, dim), s / n, equal_nan=True)
        torch.testing.assert_close(masked_normalize(t, mask, 42.0, dim), s / 42.0)


# ---------------------------------------------------------------- top_entropy_mask
RHOS = {0.0: Fraction(0), 0.05: Fraction(1, 20), 0.2: Fraction(1, 5), 0.5: Fraction(1, 2),
        1.0: Fraction(1)}


def brute_force(ent, mask, rho, per_sequence):
    """Sort valid positions by (-entropy, position) in plain Python; keep the first ceil(rho N)."""
    rows = [list(range(ent.numel()))] if not per_sequence else \
        [[r * ent.shape[1] + c for c in range(ent.shape[1])] for r in range(ent.shape[0])]
    e, m = ent.flatten().tolist(), mask.flatten().tolist()
    out = [False] * ent.numel()
    for row in rows:
        valid = [i for i in row if m[i]]
        k = math.ceil(RHOS[rho] * len(valid))
        for i in sorted(valid, key=lambda i: (-e[i], i))[:k]:
            out[i] = True
    return torch.tensor(out).view(ent.shape)


def random_case(rng):
    B, T = rng.randint(1, 6), rng.randint(1, 40)
    # many ties
    ent = torch.tensor([[round(rng.uniform(0, 3), 1) for _ in range(T)] for _ in range(B)])
    mask = torch.zeros(B, T, dtype=torch.bool)
    for b in range(B):  # prompt, then response, then padding
        start = rng.randint(0, T)
        end = rng.randint(start, T)
        mask[b, start:end] = True
    return ent, mask


@pytest.mark.parametrize("per_sequence", [False, True])
def test_top_matches_brute_force(per_sequence):
    rng = random.Random(0)
    for _ in range(150):
        ent, mask = random_case(rng)
        for rho in RHOS:
            got = top_entropy_mask(ent, mask, rho, per_sequence=per_sequence)
            assert got.dtype == torch.bool and got.shape == ent.shape
            assert torch.equal(got, brute_force(ent, mask, rho, per_sequence)), (ent, mask, rho)
            bottom = top_entropy_mask(ent, mask, rho, mode="bottom", per_sequence=per_sequence)
            assert torch.equal(bottom, mask & ~got)


def test_k_is_exact_ceil_without_float_error():
    # 0.14 * 50 = 7.000000000000001 and 0.07 * 100 = 7.000000000000001 in floating point:
    # math.ceil gives 8
    assert math.ceil(0.14 * 50) == 8 and math.ceil(0.07 * 100) == 8
    for rho, n, k in [(0.14, 50, 7), (0.07, 100, 7), (0.2, 10, 2), (0.3, 10, 3), (0.7, 10, 7),
                      (0.1, 30, 3),
                      (0.2, 11, 3), (0.05, 1, 1),
                      (0.2, 1, 1), (0.2, 5, 1), (0.21, 100, 21), (1 / 3, 9, 3), (0.999, 1000, 999)]:
        ent, mask = torch.rand(1, n), torch.ones(1, n, dtype=torch.bool)
        assert top_entropy_mask(ent, mask, rho).sum().item() == k, (rho, n)
        assert top_entropy_mask(ent, mask, rho, mode="random").sum().item() == k, (rho, n)
        assert top_entropy_mask(ent, mask, rho, mode="bottom").sum().item() == n - k, (rho, n)


def test_hand_example_and_ties_go_to_earlier_positions():
    ent = torch.tensor([[9.0, 0.5, 2.0, 2.0, 0.1], [2.0, 3.0, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[0, 1, 1, 1, 1], [1, 1, 0, 0, 0]])  # the 9.0 is prompt: never chosen
    # N = 6, k = ceil(0.5 * 6) = 3: 3.0, then the tied 2.0s in flat order: [0, 2], [0, 3], [1, 0]
    # -> first two
    want = torch.tensor([[0, 0, 1, 1, 0], [0, 1, 0, 0, 0]]).bool()
    assert torch.equal(top_entropy_mask(ent, mask, 0.5), want)
    equal = torch.ones(2, 5)
    # all tied: the first 3 valid positions in flat order
    first = top_entropy_mask(equal, mask, 0.5)
    assert torch.equal(first, torch.tensor([[0, 1, 1, 1, 0], [0, 0, 0, 0, 0]]).bool())


def test_rho_one_and_zero():
    rng = random.Random(1)
    for _ in range(20):
        ent, mask = random_case(rng)
        for per_sequence in (False, True):
            everything = top_entropy_mask(ent, mask.float(), 1.0, per_sequence=per_sequence)
            assert torch.equal(everything, mask)
            assert not top_entropy_mask(ent, mask, 0.0, per_sequence=per_sequence).any()
            all_bottom = top_entropy_mask(ent, mask, 0.0, mode="bottom", per_sequence=per_sequence)
            assert torch.equal(all_bottom, mask)


def test_per_sequence_counts_and_empty_rows():
    ent = torch.rand(4, 12)
    mask = torch.zeros(4, 12, dtype=torch.bool)
    mask[0, 2:12] = True  # 10 -> 2
    mask[1, 0:3] = True   # 3 -> 1
    mask[3, 5] = True     # 1 -> 1; row 2 is all padding
    got = top_entropy_mask(ent, mask, 0.2, per_sequence=True)
    assert got.sum(1).tolist() == [2, 1, 0, 1] and not (got & ~mask).any()
    assert got[3, 5]
    # global: ceil(0.2 * 14) = 3
    assert top_entropy_mask(ent, mask, 0.2).sum().item() == math.ceil(14 / 5)
    assert not top_entropy_mask(ent, torch.zeros_like(mask), 0.2).any()
    one = torch.zeros_like(mask)
    one[2, 7] = True
    assert torch.equal(top_entropy_mask(ent, one, 0.2), one)
    assert not top_entropy_mask(ent, one, 0.2, mode="bottom").any()


def test_random_mode_size_support_reproducibility_and_uniformity():
    ent, mask = torch.rand(3, 100), torch.rand(3, 100) > 0.3
    n = int(mask.sum())
    a = top_entropy_mask(ent, mask, 0.2, mode="random", generator=torch.Generator().manual_seed(1))
    b = top_entropy_mask(ent, mask, 0.2, mode="random", generator=torch.Generator().manual_seed(1))
    c = top_entropy_mask(ent, mask, 0.2, mode="random", generator=torch.Generator().manual_seed(2))
    assert a.sum().item() == math.ceil(n / 5) and not (a & ~mask).any()
    assert torch.equal(a, b) and not torch.equal(a, c)
    per_row = top_entropy_mask(ent, mask, 0.2, mode="random", per_sequence=True)
    assert per_row.sum(1).tolist() == [math.ceil(int(r) / 5) for r in mask.sum(1)]
    # each of 10 valid tokens is picked with probability k / N = 2 / 10
    gen, small = torch.Generator().manual_seed(0), torch.ones(1, 10, dtype=torch.bool)
    counts = sum(top_entropy_mask(torch.zeros(1, 10), small, 0.2, mode="random",
                                  generator=gen).float()
                 for _ in range(4000))
    assert ((counts / 4000 - 0.2).abs() < 0.04).all(), counts


def test_more_than_2_pow_24_elements():
    n = 2**24 + 10  # torch.quantile refuses inputs this large
    torch.manual_seed(0)
    ent = torch.rand(1, n)
    mask = torch.ones(1, n, dtype=torch.bool)
    mask[0, :5] = False
    got = top_entropy_mask(ent, mask, 0.2)
    assert got.sum().item() == math.ceil(Fraction(1, 5) * (n - 5))
    assert not got[0, :5].any()
    assert ent[got].min() >= ent[mask & ~got].max()


def test_errors():
    ent, mask = torch.rand(2, 4), torch.ones(2, 4, dtype=torch.bool)
    for rho in (-0.1, 1.5, NAN):
        with pytest.raises(ValueError, match="rho"):
            top_entropy_mask(ent, mask, rho)
    with pytest.raises(ValueError, match="mode"):
        top_entropy_mask(ent, mask, 0.2, mode="middle")
    with pytest.raises(ValueError):
        top_entropy_mask(ent, mask[:, :3], 0.2)
    bad = ent.clone()
    bad[1, 2] = NAN
    with pytest.raises(ValueError, match="NaN"):
        top_entropy_mask(bad, mask, 0.2)
    mask[1, 2] = False  # NaN on padding is harmless
    assert top_entropy_mask(bad, mask, 0.2).sum().item() == 2


def test_infinite_scores_still_rank_valid_tokens_first():
    ent = torch.tensor([[float("-inf"), 1.0, float("-inf"), float("inf")]])
    mask = torch.tensor([[0, 1, 1, 1]]).bool()
    assert torch.equal(top_entropy_mask(ent, mask, 1.0), mask)
    assert torch.equal(top_entropy_mask(ent, mask, 0.5), torch.tensor([[0, 1, 0, 1]]).bool())


# ---------------------------------------------------------------- TokenSelection: the one owner
def test_selection_from_the_rollout_is_the_batch_mask_and_fixed_per_micro_batch():
    torch.manual_seed(0)
    ent, resp = torch.rand(4, 9), torch.rand(4, 9) > 0.3
    rule = TokenSelection(rho=0.25, mode="top")
    batch_mask = rule.for_batch(ent, resp)
    assert torch.equal(batch_mask, top_entropy_mask(ent, resp, 0.25))
    # the current policy's entropy is ignored: the rollout mask stays fixed
    other = torch.rand(2, 9)
    assert torch.equal(rule.for_micro_batch(batch_mask[:2], other, resp[:2]), batch_mask[:2])
    with pytest.raises(ValueError, match="for_batch"):
        rule.for_micro_batch(None, other, resp[:2])
    bottom = TokenSelection(rho=0.25, mode="bottom").for_batch(ent, resp)
    assert torch.equal(bottom, resp & ~batch_mask)


def test_selection_from_the_current_policy_ranks_each_micro_batch():
    torch.manual_seed(1)
    ent, resp = torch.rand(4, 9), torch.ones(4, 9, dtype=torch.bool)
    rule = TokenSelection(rho=0.5, source="current")
    assert rule.for_batch(ent, resp) is None
    m = rule.for_micro_batch(None, ent[:2], resp[:2])
    assert torch.equal(m, top_entropy_mask(ent[:2], resp[:2], 0.5)) and int(m.sum()) == 9


def test_selection_rejects_unknown_sources_and_per_sequence_with_current():
    with pytest.raises(ValueError, match="source"):
        TokenSelection(source="future")
    with pytest.raises(ValueError, match="per_sequence"):
        TokenSelection(per_sequence=True, source="current")



def test_selection_gives_the_loss_its_token_count():
    resp = torch.tensor([[1, 1, 1, 0], [0, 1, 1, 1]]).bool()
    # two entries fall outside the responses
    mask = torch.tensor([[1, 0, 0, 1], [1, 1, 0, 0]]).bool()
    assert TokenSelection().trained_count(mask, resp).item() == 2
    # known per micro-batch only
    assert TokenSelection(source="current").trained_count(None, resp) is None
    with pytest.raises(ValueError, match="rollout batch's mask"):
        TokenSelection().trained_count(None, resp)


@pytest.mark.parametrize("kwargs, message", [(dict(rho=1.5), "rho must be in"),
                                             (dict(rho=float("nan")), "rho"),
                                             (dict(mode="middle"), "mode must be one of")])
def test_selection_refuses_what_the_mask_cannot_do(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TokenSelection(**kwargs)
