"""Tests for nano_forkrl.study.temperature: the bucket sampler against TorchSampler, its greedy
buckets, each row's temperature, and the sweep."""
import math

import pytest
import torch
from conftest import make_tiny_qwen3

import nano_forkrl.run.steps.evaluation as evaluate_mod
from nano_forkrl.engines.torch_sampler import TorchSampler
from nano_forkrl.entropy import entropy_statistics, token_entropy
from nano_forkrl.study.analysis import response_entropy
from nano_forkrl.study.temperature import BucketTemperatureSampler, bucket_temperature_sweep
from nano_forkrl.tasks.tiny import build_tiny_tokenizer, tiny_problems

VOCAB = 288  # > len(tiny tokenizer) = 270: the padded ids of the embedding are exercised too


@pytest.fixture(scope="module")
def tok():
    return build_tiny_tokenizer()


@pytest.fixture(scope="module")
def model():
    return make_tiny_qwen3(vocab_size=VOCAB, seed=3)


def rollouts_for(model, tok, n=2, max_new_tokens=8, **kw):
    prompts = [p["problem"] + "\n" for p in tiny_problems("test", 3)]
    return TorchSampler(model, tok, max_new_tokens=max_new_tokens, seed=7, **kw).generate(prompts, n=n)


def test_bucket_sampler_equal_temperatures_is_plain_sampling(model, tok):
    for t in (0.7, 1.0):
        plain = rollouts_for(model, tok, temperature=t)
        # the median entropy as threshold, so that both buckets occur (a random model is near uniform: H ~ 5.66)
        threshold = entropy_statistics(*response_entropy(model, plain, tok.pad_token_id)[:2])["p50"]
        sampler = BucketTemperatureSampler(model, tok, threshold=threshold, t_high=t, t_low=t, max_new_tokens=8,
                                           seed=7)
        bucket = sampler.generate([p["problem"] + "\n" for p in tiny_problems("test", 3)], n=2)
        assert [r.response_ids for r in bucket] == [r.response_ids for r in plain]
        assert [r.logprobs for r in bucket] == [r.logprobs for r in plain]


@pytest.mark.parametrize("threshold,t_high,t_low", [(math.inf, 5.0, 0.0), (-math.inf, 0.0, 5.0), (0.0, 0.0, 0.0)])
def test_bucket_sampler_greedy_bucket_everywhere_is_greedy(model, tok, threshold, t_high, t_low):
    greedy = rollouts_for(model, tok, temperature=0.0, max_new_tokens=10)
    sampler = BucketTemperatureSampler(model, tok, threshold=threshold, t_high=t_high, t_low=t_low,
                                       max_new_tokens=10, seed=123)
    out = sampler.generate([p["problem"] + "\n" for p in tiny_problems("test", 3)], n=2)
    assert [r.response_ids for r in out] == [r.response_ids for r in greedy]


def test_bucket_sampler_pick_uses_each_rows_temperature(model, tok):
    limit = len(tok)
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(4, VOCAB, generator=g)
    logits[0] *= 0.1                      # nearly flat: entropy ~ log(270) ~ 5.6 -> hot
    logits[1, 17] = 40.0                  # one dominant token: entropy ~ 0 -> cold
    logits[2] *= 0.1
    logits[3, 5] = 40.0
    logits[:, limit:] = 100.0             # ids the tokenizer lacks: must never be picked nor count in H
    h = token_entropy(logits[:, :limit])
    assert h[0] > 4 and h[2] > 4 and h[1] < 1e-3 and h[3] < 1e-3
    s = BucketTemperatureSampler(model, tok, threshold=1.0, t_high=0.5, t_low=2.0, seed=0)
    for _ in range(5):
        tokens, lps = s.pick(logits.clone())
        assert bool((tokens < limit).all())
        for row, t in ((0, 0.5), (1, 2.0), (2, 0.5), (3, 2.0)):
            expect = torch.log_softmax(logits[row, :limit] / t, -1)[tokens[row]]
            assert lps[row].item() == pytest.approx(expect.item(), abs=1e-5)
    s.t_high, s.t_low = 0.0, 2.0  # greedy where hot: the argmax, log-prob at T = 1 (sample_next's convention)
    tokens, lps = s.pick(logits.clone())
    for row in (0, 2):
        assert tokens[row] == logits[row, :limit].argmax()
        assert lps[row].item() == pytest.approx(torch.log_softmax(logits[row, :limit], -1).max().item(), abs=1e-5)


def test_sweep_one_row_per_pair_and_matches_plain_sampling(model, tok, monkeypatch):
    # a random model never answers right, so score a checkable property of the text instead
    monkeypatch.setattr(evaluate_mod, "reward", lambda text, gold, **kw: float(len(text) % 2 == 0))
    problems = tiny_problems("test", 3)
    pairs = [(0.8, 0.8), (0.0, 0.0), (2.0, 0.0), (0.0, 1.0)]
    rows = bucket_temperature_sweep(model, tok, problems, threshold=5.656, pairs=pairs, k=3, template="plain",
                                    max_new_tokens=6, seed=11)
    assert [(r["t_high"], r["t_low"]) for r in rows] == pairs
    assert all(0.0 <= r["accuracy"] <= 1.0 and r["mean_length"] > 0 for r in rows)
    for row, temperature in ((rows[0], 0.8), (rows[1], 0.0)):  # equal temperatures = TorchSampler at that T
        plain = TorchSampler(model, tok, max_new_tokens=6, temperature=temperature, seed=11)
        res = evaluate_mod.evaluate(plain, problems, k=3, template="plain", tokenizer=tok, seed=11)
        assert row["accuracy"] == res["avg@3"]
