import copy
import math
from dataclasses import asdict

import pytest
import torch

from conftest import make_tiny_qwen3
from nano_forkrl.masking import TokenSelection
from nano_forkrl.tasks.rollout_batch import RolloutBatch
from nano_forkrl.update import UpdateSettings, policy_step

PROMPT_LEN, RESP_LENS, T = 3, [9, 6, 8, 4], 12  # T = label length; full sequences have T + 1 slots


def make_batch(seed=0, vocab=64):
    """The data.collate_rollouts layout, right-padded with pad id 0: input_ids = full[:, :-1],
    labels = full[:, 1:], response_mask on label positions, attention_mask on the real tokens of
    input_ids."""
    g = torch.Generator().manual_seed(seed)
    full = torch.randint(2, vocab, (len(RESP_LENS), T + 1), generator=g)
    pos = torch.arange(T + 1)
    ends = torch.tensor([PROMPT_LEN + n for n in RESP_LENS])[:, None]
    full = torch.where(pos < ends, full, 0)
    resp = (pos >= PROMPT_LEN) & (pos < ends)
    return {"input_ids": full[:, :-1], "labels": full[:, 1:], "response_mask": resp[:, 1:],
            "attention_mask": (pos < ends)[:, :-1].long()}


def rollout_batch(batch, old, adv, token_mask=None, ref_logprobs=None):
    """make_batch's tensors as the RolloutBatch policy_step reads."""
    return RolloutBatch(**batch, advantages=adv, old_logprobs=old, token_mask=token_mask,
                        ref_logprobs=ref_logprobs)


def reference_logp_entropy(model, batch):
    """Plain full-vocab forward (fine for vocab 64): log p(label) and entropy, with grad."""
    logits = model(input_ids=batch["input_ids"],
                   attention_mask=batch["attention_mask"]).logits.float()
    logp_all = logits.log_softmax(-1)
    logp = logp_all.gather(-1, batch["labels"][..., None]).squeeze(-1)
    return logp, -(logp_all.exp() * logp_all).sum(-1)


def dapo_token_loss(logp, old, adv, eps_low=0.2, eps_high=0.28):
    r = (logp - old).exp()
    a = adv.reshape(-1, 1)
    return -torch.minimum(r * a, r.clamp(1 - eps_low, 1 + eps_high) * a)


class GradRecorder:
    """A stand-in optimizer: step() records the (clipped) gradients instead of changing the
    weights."""

    def __init__(self, model):
        self.params, self.grads, self.steps = list(model.parameters()), None, 0

    def step(self):
        self.steps += 1
        self.grads = [torch.zeros_like(p) if p.grad is None else p.grad.clone()
                      for p in self.params]

    def zero_grad(self, set_to_none=True):
        for p in self.params:
            p.grad = None


def reference_grads(model, loss):
    model.zero_grad()
    loss.backward()
    grads = [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    return grads


def assert_grads_close(a, b, atol=1e-6):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, atol=atol, rtol=1e-4)


@pytest.fixture
def setup():
    model, batch = make_tiny_qwen3(), make_batch()
    with torch.no_grad():
        logp, ent = reference_logp_entropy(model, batch)
    g = torch.Generator().manual_seed(1)
    # some ratios fall outside the clip range
    old = logp + 0.3 * torch.randn(logp.shape, generator=g)
    adv = torch.tensor([1.0, -0.5, 2.0, -1.5])
    return model, batch, old, adv, ent


def test_gradient_flows_only_through_masked_tokens(setup):
    model, batch, old, adv, _ = setup
    token_mask = torch.zeros(4, T, dtype=torch.bool)
    for row, col in [(0, 3), (0, 7), (1, 5), (2, 2)]:  # row 3 has no trained token
        token_mask[row, col] = True
    assert (token_mask <= batch["response_mask"]).all()
    opt = GradRecorder(model)
    settings = UpdateSettings(micro_batch_size=2, max_grad_norm=None)
    stats = policy_step(model, opt, rollout_batch(batch, old, adv, token_mask=token_mask), settings)
    logp, _ = reference_logp_entropy(model, batch)
    expected = dapo_token_loss(logp, old, adv)[token_mask].sum() / 4
    assert stats.loss == pytest.approx(expected.item(), rel=1e-5)
    assert_grads_close(opt.grads, reference_grads(model, expected))
    assert all(p.grad is None for p in model.parameters())  # zero_grad after the step

    # garbage at untrained positions (old log-probs: random / -inf / NaN; the advantage of the
    # untrained row)
    # changes nothing
    old2 = torch.where(token_mask, old, torch.randn(old.shape))
    old2[0, 0], old2[1, 1], old2[3, 4] = -float("inf"), float("nan"), float("nan")
    adv2 = adv.clone()
    adv2[3] = float("nan")
    opt2 = GradRecorder(model)
    stats2 = policy_step(model, opt2, rollout_batch(batch, old2, adv2, token_mask=token_mask),
                         settings)
    assert not stats2.nonfinite
    assert_grads_close(opt2.grads, opt.grads, atol=0)


def test_rho_one_is_plain_dapo(setup):
    model, batch, old, adv, ent = setup
    opt = GradRecorder(model)
    # no token_mask: select from the rollout entropy; rho = 1 keeps every response token
    everything = TokenSelection(rho=1.0).for_batch(ent, batch["response_mask"])
    stats = policy_step(model, opt, rollout_batch(batch, old, adv, token_mask=everything),
                        UpdateSettings(micro_batch_size=3, max_grad_norm=None))
    resp = batch["response_mask"]
    logp, _ = reference_logp_entropy(model, batch)
    # DAPO token-mean over all responses
    expected = dapo_token_loss(logp, old, adv)[resp].sum() / resp.sum()
    assert stats.loss == pytest.approx(expected.item(), rel=1e-5)
    assert stats.frac_tokens_trained == 1.0 and stats.tokens_trained == sum(RESP_LENS)
    assert_grads_close(opt.grads, reference_grads(model, expected))


@pytest.mark.parametrize("loss_agg",
                         ["token-mean", "token-mean-all", "seq-mean-token-mean", "constant"])
def test_micro_batch_size_does_not_change_the_update(setup, loss_agg):
    model, batch, old, adv, ent = setup
    from nano_forkrl.masking import top_entropy_mask
    token_mask = top_entropy_mask(ent, batch["response_mask"], 0.3)
    results = []
    for mbs in (1, 2, 4):
        m = copy.deepcopy(model)
        opt = torch.optim.SGD(m.parameters(), lr=1.0)
        settings = UpdateSettings(loss_agg=loss_agg, constant=10, micro_batch_size=mbs,
                                  max_grad_norm=1.0)
        stats = policy_step(m, opt, rollout_batch(batch, old, adv, token_mask=token_mask), settings)
        moved = [p.detach() - q.detach() for p, q in zip(m.parameters(), model.parameters())]
        results.append((stats, moved))
    (s1, d1), rest = results[0], results[1:]
    assert max(d.abs().max().item() for d in d1) > 1e-4  # the step did move the weights
    for s, d in rest:
        assert s.loss == pytest.approx(s1.loss, rel=1e-5, abs=1e-7)
        assert s.grad_norm == pytest.approx(s1.grad_norm, rel=1e-4)
        assert_grads_close(d, d1, atol=1e-5)


def test_nan_advantages_skip_the_step(setup):
    model, batch, old, adv, _ = setup
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    bad = adv.clone()
    bad[0] = float("nan")  # row 0 has trained tokens
    everything = rollout_batch(batch, old, bad, token_mask=batch["response_mask"])
    stats = policy_step(model, opt, everything)
    assert stats.nonfinite is True and not math.isfinite(stats.loss)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before))
    assert len(opt.state) == 0 and all(p.grad is None for p in model.parameters())


def test_grad_clipping_bounds_the_update(setup):
    model, batch, old, adv, _ = setup
    norms = {}
    for max_norm in (1.0, None):
        m = copy.deepcopy(model)
        opt = torch.optim.SGD(m.parameters(), lr=1.0)
        big = rollout_batch(batch, old, adv * 1e4, token_mask=batch["response_mask"])
        stats = policy_step(m, opt, big, UpdateSettings(max_grad_norm=max_norm))
        step = math.sqrt(sum(((p - q) ** 2).sum().item()
                             for p, q in zip(m.parameters(), model.parameters())))
        norms[max_norm] = (stats.grad_norm, step)
    grad_norm, step = norms[1.0]
    # lr 1: the update IS the clipped gradient; unclipped: the update norm is the grad norm
    assert grad_norm > 10 and step == pytest.approx(1.0, rel=1e-3)
    assert norms[None][1] == pytest.approx(grad_norm, rel=1e-3)


def test_stats_match_hand_computation(setup):
    model, batch, old, adv, ent = setup
    from nano_forkrl.masking import top_entropy_mask
    resp = batch["response_mask"]
    token_mask = top_entropy_mask(ent, resp, 0.2)
    stats = policy_step(model, GradRecorder(model),
                        rollout_batch(batch, old, adv, token_mask=token_mask),
                        UpdateSettings(micro_batch_size=3))
    expected_keys = {"loss", "grad_norm", "clip_frac_low", "clip_frac_high", "approx_kl", "kl_ref",
                     "frac_tokens_trained", "tokens_trained", "entropy_trained",
                     "entropy_untrained", "nonfinite"}
    assert expected_keys == set(asdict(stats))
    for key in ("clip_frac_low", "clip_frac_high", "frac_tokens_trained"):
        assert 0.0 <= getattr(stats, key) <= 1.0
    n = token_mask.sum().item()
    assert n == math.ceil(0.2 * resp.sum().item()) and stats.tokens_trained == n
    assert stats.frac_tokens_trained == pytest.approx(n / resp.sum().item())
    with torch.no_grad():
        logp, ent_now = reference_logp_entropy(model, batch)
    r, a = (logp - old).exp(), adv[:, None].expand_as(logp)
    low, high = (r < 0.8) & (a < 0), (r > 1.28) & (a > 0)
    assert stats.clip_frac_low == pytest.approx(low[token_mask].float().mean().item())
    assert stats.clip_frac_high == pytest.approx(high[token_mask].float().mean().item())
    assert (low | high)[token_mask].any()  # the test data does exercise clipping
    d = logp - old
    assert stats.approx_kl == pytest.approx((d.exp() - d - 1)[token_mask].mean().item(), rel=1e-4)
    assert stats.entropy_trained == pytest.approx(ent_now[token_mask].mean().item(), rel=1e-5)
    untrained = resp & ~token_mask
    assert stats.entropy_untrained == pytest.approx(ent_now[untrained].mean().item(), rel=1e-5)
    assert stats.kl_ref == 0.0 and stats.nonfinite is False and stats.grad_norm > 0


def test_kl_term_adds_k3_on_trained_tokens(setup):
    model, batch, old, adv, _ = setup
    resp = batch["response_mask"]
    ref = old - 0.2
    opt = GradRecorder(model)
    stats = policy_step(model, opt,
                        rollout_batch(batch, old, adv, token_mask=resp, ref_logprobs=ref),
                        UpdateSettings(kl_coef=0.1, max_grad_norm=None))
    logp, _ = reference_logp_entropy(model, batch)
    d = ref - logp
    k3 = d.exp() - d - 1
    expected = (dapo_token_loss(logp, old, adv) + 0.1 * k3)[resp].sum() / resp.sum()
    assert stats.loss == pytest.approx(expected.item(), rel=1e-5)
    assert stats.kl_ref == pytest.approx(k3[resp].mean().item(), rel=1e-4)
    assert_grads_close(opt.grads, reference_grads(model, expected))
    with pytest.raises(ValueError):
        policy_step(model, opt, rollout_batch(batch, old, adv, token_mask=resp),
                    UpdateSettings(kl_coef=0.1))


def test_mask_source_current_selects_per_micro_batch(setup):
    model, batch, old, adv, _ = setup
    rho, mbs, resp = 0.25, 2, batch["response_mask"]
    opt = GradRecorder(model)
    settings = UpdateSettings(selection=TokenSelection(rho=rho, source="current"),
                              micro_batch_size=mbs,
                              max_grad_norm=None)
    stats = policy_step(model, opt, rollout_batch(batch, old, adv), settings)
    # by hand: in each micro-batch, the ceil(rho * N_micro) highest CURRENT entropies among its
    # response tokens; each micro-batch is a token-mean over its own selection, weighted by its
    # share of sequences (verl)
    logp, ent = reference_logp_entropy(model, batch)
    tok_loss, expected, n_trained = dapo_token_loss(logp, old, adv), 0.0, 0
    for s in range(0, 4, mbs):
        r = resp[s:s + mbs]
        k = math.ceil(rho * r.sum().item())
        scores = torch.where(r, ent[s:s + mbs].detach(), -float("inf")).flatten()
        chosen = torch.zeros(r.numel(), dtype=torch.bool)
        chosen[scores.topk(k).indices] = True
        expected = expected + tok_loss[s:s + mbs].flatten()[chosen].mean() * (mbs / 4)
        n_trained += k
    assert stats.tokens_trained == n_trained
    assert stats.loss == pytest.approx(expected.item(), rel=1e-5)
    assert_grads_close(opt.grads, reference_grads(model, expected))


def test_bad_arguments(setup):
    model, batch, old, adv, _ = setup
    opt = GradRecorder(model)
    with pytest.raises(ValueError):
        # rollout: no token_mask, no entropy
        policy_step(model, opt, rollout_batch(batch, old, adv))
    with pytest.raises(ValueError):
        policy_step(model, opt, rollout_batch(batch, old, adv),
                    UpdateSettings(selection=TokenSelection(source="future")))
    assert opt.steps == 0


def test_micro_batches_are_cut_to_their_longest_row(monkeypatch):
    """Padding costs no compute: each micro-batch's forward sees only the columns up to its last
    real token, and the step is the same as one over the full width (right padding: no real token
    attends to the padding)."""
    import nano_forkrl.update as update

    batch = make_batch()
    model = make_tiny_qwen3()
    widths, real = [], update.token_logprobs_and_entropy

    def spy(model, input_ids, *args, **kwargs):
        widths.append(input_ids.shape[1])
        return real(model, input_ids, *args, **kwargs)

    monkeypatch.setattr(update, "token_logprobs_and_entropy", spy)
    old = torch.randn(len(RESP_LENS), T, generator=torch.Generator().manual_seed(1)) * 0.1 - 2
    adv = torch.tensor([1.0, -1.0, 0.5, -0.5])
    mask = batch["response_mask"].clone()
    grads = []
    # all ones: full width (right padding: the real tokens never attend to the padding after them)
    for b in (batch, {**batch, "attention_mask": torch.ones_like(batch["attention_mask"])}):
        opt = GradRecorder(model)
        stats = policy_step(model, opt, rollout_batch(b, old, adv, token_mask=mask),
                            UpdateSettings(micro_batch_size=1))
        grads.append((stats.loss, opt.grads))
    # the real tokens of each row: prompt + response
    assert widths == [3 + n for n in RESP_LENS] + [T] * 4
    assert grads[0][0] == pytest.approx(grads[1][0], rel=1e-5)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(grads[0][1], grads[1][1]))


# ------------------------------------------------------------ the entropy bonus (--entropy-coef)
def test_entropy_coef_zero_is_the_surrogate_alone_bit_for_bit(setup):
    model, batch, old, adv, ent = setup
    from nano_forkrl.masking import top_entropy_mask
    mask = top_entropy_mask(ent, batch["response_mask"], 0.3)
    runs = []
    for settings in (UpdateSettings(max_grad_norm=None),
                     UpdateSettings(max_grad_norm=None, entropy_coef=0.0),
                     UpdateSettings(max_grad_norm=None, entropy_coef=1e-3)):
        opt = GradRecorder(model)
        step = policy_step(model, opt, rollout_batch(batch, old, adv, token_mask=mask), settings)
        runs.append((step, opt.grads))
    (plain, g0), (zero, g1), (bonus, g2) = runs
    assert plain == zero and all(torch.equal(a, b) for a, b in zip(g0, g1))
    assert bonus.loss != plain.loss and any(not torch.equal(a, b) for a, b in zip(g0, g2))


def test_entropy_bonus_gradient_is_that_of_the_mean_entropy_of_the_trained_tokens(setup):
    """With zero advantages the surrogate has no gradient: what is left is - coef x the masked mean
    entropy's, with the gradient of the entropy itself (not detached)."""
    model, batch, old, _, ent = setup
    from nano_forkrl.masking import top_entropy_mask
    mask, coef = top_entropy_mask(ent, batch["response_mask"], 0.5), 0.3
    opt = GradRecorder(model)
    stats = policy_step(model, opt, rollout_batch(batch, old, torch.zeros(4), token_mask=mask),
                        UpdateSettings(entropy_coef=coef, micro_batch_size=3, max_grad_norm=None))
    _, entropy = reference_logp_entropy(model, batch)
    expected = -coef * entropy[mask].sum() / mask.sum()
    assert stats.loss == pytest.approx(expected.item(), rel=1e-5)
    assert_grads_close(opt.grads, reference_grads(model, expected))
    assert max(g.abs().max().item() for g in opt.grads) > 0


def test_entropy_bonus_raises_the_policy_entropy(setup):
    model, batch, old, adv, _ = setup
    resp = batch["response_mask"]
    after = {}
    for coef in (0.0, 0.5):
        m = copy.deepcopy(model)
        opt = torch.optim.SGD(m.parameters(), lr=0.5)
        for _ in range(3):  # the same data each step: only the coefficient differs
            policy_step(m, opt, rollout_batch(batch, old, adv, token_mask=resp),
                        UpdateSettings(entropy_coef=coef, max_grad_norm=None))
        with torch.no_grad():
            after[coef] = reference_logp_entropy(m, batch)[1][resp].mean().item()
    # measured: 4.082 vs 4.071 nats (the maximum: log 64 = 4.16)
    assert after[0.5] > after[0.0] + 5e-3
