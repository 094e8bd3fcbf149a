"""Tests for nano_forkrl/engines/cpudecode.py: the lean CPU step must give the plain HF path's
tokens, log-probs and random draws."""
import torch
from conftest import make_tiny_qwen3
from test_torch_sampler import PROMPTS, CharTok

from nano_forkrl.engines.cpudecode import LeanDecoder, LeanSession
from nano_forkrl.engines.torch_sampler import HFSession, TorchSampler


def _both(model, n=2, **kw):
    plain = TorchSampler(model, CharTok(), fast=False, seed=3, **kw).generate(PROMPTS, n=n)
    lean = TorchSampler(model, CharTok(), fast=True, seed=3, **kw)
    assert lean.static_decoder is None
    out = lean.generate(PROMPTS, n=n)
    assert isinstance(lean.static_decoder, LeanDecoder)  # the CPU default is this path
    return plain, out


def test_step_logits_equal_the_hf_forward_with_left_padding_in_float32():
    model = make_tiny_qwen3(layers=3)
    ids = torch.tensor([[0, 0, 5, 6, 7], [3, 4, 5, 6, 7], [0, 9, 9, 2, 8]])
    mask = (ids != 0).long()
    plain, lean = HFSession(model, ids, mask), LeanSession(LeanDecoder(model, 3, 12), ids, mask)
    with torch.no_grad():
        assert torch.allclose(plain.prefill(), lean.prefill(), atol=1e-5)
        for tok in ([11, 12, 13], [4, 4, 4], [20, 1, 30]):
            tok = torch.tensor(tok)
            real = torch.ones(3, dtype=torch.bool)
            a, b = plain.step(tok, real), lean.step(tok, real)
            assert torch.allclose(a, b, atol=1e-5), (a - b).abs().max()


def test_greedy_tokens_and_logprobs_equal_plain_path():
    plain, lean = _both(make_tiny_qwen3(), max_new_tokens=24, temperature=0)
    assert [r.response_ids for r in plain] == [r.response_ids for r in lean]
    for a, b in zip(plain, lean):
        assert torch.allclose(torch.tensor(a.logprobs), torch.tensor(b.logprobs), atol=1e-5)


def test_sampled_tokens_and_rng_state_equal_plain_path_with_the_same_seed(monkeypatch):
    """Same rule (sampling.sample_next), same generator, same draws in the same order: the same
    tokens, and the generator ends in the same state (the next batch draws alike too), also while
    stopped rows leave the forward (here most rows stop early, at different steps)."""
    model = make_tiny_qwen3()
    kw = dict(max_new_tokens=20, temperature=1.0, top_p=0.9, seed=7, eos_ids=[1, 5, 9, 13])
    plain = TorchSampler(model, CharTok(), fast=False, **kw)
    lean, rows, step = TorchSampler(model, CharTok(), **kw), [], LeanDecoder.lean_step
    monkeypatch.setattr(LeanDecoder, "lean_step",
                        lambda self, ids, *a: rows.append(len(ids)) or step(self, ids, *a))
    for _ in range(2):
        a, b = plain.generate(PROMPTS, n=3), lean.generate(PROMPTS, n=3)
        assert [(r.response_ids, r.finish_reason) for r in a] == \
            [(r.response_ids, r.finish_reason) for r in b]
        assert {r.finish_reason for r in a} == {"eos", "length"}
        assert torch.equal(plain.rng_state(), lean.rng_state())
    assert len(set(rows)) > 2 and min(rows) < len(PROMPTS) * 3 / 2  # the forward did shrink


def test_sampled_token_frequencies_match_the_model_distribution():
    """Equal in distribution, checked on its own: 4,000 first tokens of one prompt against
    softmax(z / T) (logits scaled up: far from uniform). Pearson's chi-square over the tokens with
    >= 5 expected counts (the rest pooled); the bound is the 1e-6 upper quantile for its degrees of
    freedom, so a correct sampler fails for one seed in a million, while the same counts moved onto
    the wrong tokens fail it."""
    model = make_tiny_qwen3(seed=1)
    with torch.no_grad():
        model.model.norm.weight.mul_(5.0)
    s = TorchSampler(model, CharTok(), max_new_tokens=1, temperature=0.7, seed=11, batch_size=4000)
    first = torch.tensor([r.response_ids[0] for r in s.generate(["hello"], n=4000)])
    with torch.no_grad():
        ids = torch.tensor([CharTok().encode("hello")])
        logits = model(input_ids=ids).logits[0, -1, :len(CharTok())]
    expected = torch.softmax(logits.double() / 0.7, -1) * len(first)
    big = expected >= 5
    assert 10 <= big.sum() < len(expected)  # enough cells, and a pooled tail

    def chi2(counts):
        obs, exp_ = (torch.cat([c[big], c[~big].sum()[None]]) for c in (counts, expected))
        return float(((obs - exp_) ** 2 / exp_).sum())

    k = int(big.sum())  # degrees of freedom: cells - 1
    bound = k * (1 - 2 / (9 * k) + 4.75 * (2 / (9 * k)) ** 0.5) ** 3  # 1e-6 quantile (W.-H.)
    observed = torch.bincount(first, minlength=len(CharTok())).double()
    assert chi2(observed) < bound, (chi2(observed), k)
    assert chi2(observed.roll(1)) > bound  # the right counts on the wrong tokens


def test_eos_handling_and_early_exit_match_plain_path():
    model = make_tiny_qwen3()
    kw = dict(max_new_tokens=30, temperature=0)
    first = TorchSampler(model, CharTok(), fast=False, **kw).generate(PROMPTS)
    eos = sorted({r.response_ids[2] for r in first})  # every row stops by its third token
    plain, lean = _both(model, max_new_tokens=30, temperature=0, eos_ids=eos)
    assert [(r.response_ids, r.finish_reason) for r in plain] == \
        [(r.response_ids, r.finish_reason) for r in lean]
    assert all(r.finish_reason == "eos" and len(r.response_ids) <= 3 for r in lean)
    steps = []
    s = TorchSampler(model, CharTok(), max_new_tokens=30, temperature=0, eos_ids=eos)
    s.generate(PROMPTS)  # builds the decoder; count the steps of the next batch
    original = s.static_decoder.lean_step
    s.static_decoder.lean_step = lambda *a: steps.append(1) or original(*a)
    s.generate(PROMPTS)
    assert len(steps) <= 2  # the loop ends when the last row stops, not after 30 tokens


def test_weights_changed_between_batches_are_used():
    model = make_tiny_qwen3()
    s = TorchSampler(model, CharTok(), max_new_tokens=8, temperature=0)
    before = [r.response_ids for r in s.generate(PROMPTS)]
    with torch.no_grad():
        torch.manual_seed(0)
        for layer in model.model.layers:  # the projections cpudecode concatenates
            for m in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj,
                      layer.mlp.gate_proj, layer.mlp.up_proj):
                m.weight.add_(torch.randn_like(m.weight))
    plain = TorchSampler(model, CharTok(), max_new_tokens=8, temperature=0, fast=False)
    plain = plain.generate(PROMPTS)
    after = s.generate(PROMPTS)
    assert [r.response_ids for r in after] == [r.response_ids for r in plain] != before
