import math

import pytest
import torch

from nano_forkrl.cs336 import compute_naive_policy_gradient_loss
from nano_forkrl.loss import aggregate, clipped_pg_loss, kl_k3, naive_pg_loss

LOG = math.log


def test_naive_pg_loss_hand_values():
    logp = torch.tensor([[-1.0, -2.0], [-0.5, 0.0]])
    expected = torch.tensor([[2.0, 4.0], [-0.5, 0.0]])  # -A * logp with A = [2, -1]
    torch.testing.assert_close(naive_pg_loss(logp, torch.tensor([2.0, -1.0])), expected)
    torch.testing.assert_close(naive_pg_loss(logp, torch.tensor([[2.0], [-1.0]])), expected)
    # CS336 argument order: (raw_rewards_or_advantages [B, 1], policy_log_probs)
    loss = compute_naive_policy_gradient_loss(torch.tensor([[2.0], [-1.0]]), logp)
    torch.testing.assert_close(loss, expected)


def _ratios_batch():
    # row 0: A = +2, row 1: A = -1; ratios inside, below and above [0.8, 1.28], and 1.25 (inside
    # only because eps_high = 0.28 > eps_low = 0.2)
    ratios = torch.tensor([[1.1, 0.5, 1.5, 1.25], [1.1, 0.5, 1.5, 1.25]])
    return ratios.log(), torch.zeros(2, 4), torch.tensor([2.0, -1.0])


def test_clipped_pg_loss_hand_values_asymmetric():
    logp, old, adv = _ratios_batch()
    loss, st = clipped_pg_loss(logp, old, adv, eps_low=0.2, eps_high=0.28)
    # A>0: -min(rA, clip(r)A): 1.1 -> -2.2; 0.5 -> -min(1.0, 1.6) = -1.0; 1.5 -> -min(3.0, 2.56);
    # 1.25 -> -2.5
    # A<0: 1.1 -> 1.1; 0.5 -> -min(-0.5, -0.8) = 0.8; 1.5 -> -min(-1.5, -1.28) = 1.5; 1.25 -> 1.25
    torch.testing.assert_close(loss, torch.tensor([[-2.2, -1.0, -2.56, -2.5],
                                                   [1.1, 0.8, 1.5, 1.25]]))
    assert st["clipped_high"].tolist() == [[False, False, True, False],
                                           [False, False, False, False]]
    assert st["clipped_low"].tolist() == [[False, False, False, False], [False, True, False, False]]
    assert st["is_clipped"].tolist() == [[False, False, True, False], [False, True, False, False]]
    torch.testing.assert_close(st["ratio"], logp.exp())
    # symmetric 0.2 clips the 1.25 token of the positive row: -min(2.5, 2.4) = -2.4
    loss_sym, _ = clipped_pg_loss(logp, old, adv, eps_low=0.2, eps_high=0.2)
    assert loss_sym[0, 3].item() == pytest.approx(-2.4)


def test_clipped_tokens_get_no_gradient():
    logp, old, adv = _ratios_batch()
    logp.requires_grad_(True)
    loss, st = clipped_pg_loss(logp, old, adv)
    loss.sum().backward()
    expected = -(adv[:, None] * logp.detach().exp())  # d(-rA)/dlogp = -rA where unclipped
    expected[st["is_clipped"]] = 0.0
    torch.testing.assert_close(logp.grad, expected)


def test_dual_clip():
    logp = torch.tensor([[LOG(5.0), LOG(1.5)], [LOG(5.0), LOG(0.5)]])
    adv = torch.tensor([-1.0, 2.0])
    loss, st = clipped_pg_loss(logp, torch.zeros(2, 2), adv, dual_clip=3.0)
    # A<0: ratio 5 -> min(5, 3) = 3; ratio 1.5 -> 1.5 (under the bound). A>0 untouched: -2.56,
    # -min(1.0, 1.6)
    torch.testing.assert_close(loss, torch.tensor([[3.0, 1.5], [-2.56, -1.0]]))
    assert st["dual_clipped"].tolist() == [[True, False], [False, False]]
    with pytest.raises(ValueError):
        clipped_pg_loss(logp, torch.zeros(2, 2), adv, dual_clip=1.0)


def test_ratio_is_finite_for_extreme_log_ratios():
    logp = torch.tensor([[0.0, -200.0]], requires_grad=True)
    loss, _ = clipped_pg_loss(logp, torch.tensor([[-float("inf"), 0.0]]), torch.tensor([1.0]))
    loss.sum().backward()
    assert torch.isfinite(loss).all() and torch.isfinite(logp.grad).all()


def test_kl_k3():
    x = torch.randn(3, 5)
    torch.testing.assert_close(kl_k3(x, x), torch.zeros(3, 5))
    assert (kl_k3(x, torch.randn(3, 5)) >= 0).all()
    # d = ref - logp = log 2: exp(d) - d - 1 = 1 - log 2
    assert kl_k3(torch.tensor(0.0), torch.tensor(LOG(2.0))).item() == pytest.approx(1 - LOG(2.0))
    kl = kl_k3(torch.tensor([0.0, -float("inf")]), torch.tensor([-float("inf"), 0.0]))
    assert torch.isfinite(kl).all()


# --- aggregate -----------------------------------------------------------------------------------
LOSS = torch.tensor([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]])
TRAINED = torch.tensor([[1, 0, 1, 0], [0, 0, 0, 1]], dtype=torch.bool)
RESP = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool)


@pytest.mark.parametrize("mode, expected", [
    ("token-mean", (1 + 3 + 8) / 3),
    ("token-mean-all", (1 + 3 + 8) / 7),
    ("seq-mean-token-mean", ((1 + 3) / 2 + 8 / 1) / 2),
    ("constant", (1 + 3 + 8) / (2 * 10)),
])
def test_aggregate_hand_values(mode, expected):
    got = aggregate(LOSS, TRAINED, mode, response_mask=RESP, constant=10)
    assert got.item() == pytest.approx(expected)
    # micro-batches (one row each) with the mini-batch normalisers sum to the same number
    num_tokens = TRAINED.sum() if mode == "token-mean" else RESP.sum()
    split = sum(aggregate(LOSS[i:i + 1], TRAINED[i:i + 1], mode, response_mask=RESP[i:i + 1],
                          num_sequences=2, num_tokens=num_tokens, constant=10)
                for i in range(2))
    assert split.item() == pytest.approx(expected)


def test_aggregate_empty_sequence_counts_and_garbage_ignored():
    trained = TRAINED.clone()
    trained[1] = False
    # the row without trained tokens adds 0 but still counts: (2 + 0) / 2
    assert aggregate(LOSS, trained, "seq-mean-token-mean").item() == pytest.approx(1.0)
    assert aggregate(LOSS, torch.zeros_like(TRAINED), "token-mean").item() == 0.0
    loss = LOSS.clone().requires_grad_(True)
    garbage = torch.where(TRAINED, loss, torch.full_like(loss, float("nan")))
    out = aggregate(garbage, TRAINED, "token-mean")
    out.backward()
    assert out.item() == pytest.approx(4.0)
    torch.testing.assert_close(loss.grad, TRAINED.float() / 3)


def test_aggregate_errors():
    with pytest.raises(ValueError):
        aggregate(LOSS, TRAINED, "sum")
    with pytest.raises(ValueError):
        aggregate(LOSS, TRAINED, "constant")
    with pytest.raises(ValueError):
        aggregate(LOSS, TRAINED, "token-mean-all")


