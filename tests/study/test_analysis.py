"""Tests for nano_forkrl.study.analysis: statistics and tables by hand / brute force and the CLI end
to end on a random tiny Qwen3 saved to disk (the bucket sampler: test_temperature.py)."""
import json
import math

import pytest
import torch
from conftest import make_tiny_qwen3

from nano_forkrl.study.analysis import forking_token_table, main, response_entropy, topk_overlap
from nano_forkrl.study.temperature import DEFAULT_PAIRS
from nano_forkrl.entropy import token_entropy
from nano_forkrl.engines.torch_sampler import TorchSampler
from nano_forkrl.tasks.tiny import build_tiny_tokenizer, tiny_problems

VOCAB = 288  # > len(tiny tokenizer) = 270: the padded ids of the embedding are exercised too


@pytest.fixture(scope="module")
def tok():
    return build_tiny_tokenizer()


@pytest.fixture(scope="module")
def model():
    return make_tiny_qwen3(vocab_size=VOCAB, seed=3)


class FakeTokenizer:
    def decode(self, ids):
        return f"t{ids[0]}"


def test_forking_token_table_hand_example():
    entropy = torch.tensor([[2.0, 0.1, 1.5, 0.01, 9.9], [0.5, 1.8, 0.02, 0.4, 0.001]])
    labels = torch.tensor([[5, 7, 5, 9, 0], [7, 5, 3, 7, 9]])
    mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    table = forking_token_table(entropy, mask, labels, FakeTokenizer(), rho=0.4)  # 9 tokens -> k = 4
    # highest 4: 2.0 (5), 1.8 (5), 1.5 (5), 0.5 (7); the padding (9.9) never counts
    assert [(t, c) for t, c, _ in table["high"]] == [("t5", 3), ("t7", 1)]
    assert table["high"][0][2] == pytest.approx((2.0 + 1.8 + 1.5) / 3)
    # lowest 4: 0.001 (9), 0.01 (9), 0.02 (3), 0.1 (7); equal counts: lower id first
    assert [(t, c) for t, c, _ in table["low"]] == [("t9", 2), ("t3", 1), ("t7", 1)]
    assert table["low"][0][2] == pytest.approx(0.0055)
    assert len(forking_token_table(entropy, mask, labels, FakeTokenizer(), rho=0.4, top=1)["low"]) == 1


def test_forking_token_table_brute_force_random():
    g = torch.Generator().manual_seed(1)
    entropy, labels = torch.rand(4, 30, generator=g), torch.randint(0, 6, (4, 30), generator=g)
    mask = torch.rand(4, 30, generator=g) > 0.3
    table = forking_token_table(entropy, mask, labels, FakeTokenizer(), rho=0.2, top=100)
    pos = sorted((float(entropy[b, t]), int(labels[b, t])) for b in range(4) for t in range(30) if mask[b, t])
    k = math.ceil(0.2 * len(pos))
    for name, chosen in (("high", pos[-k:]), ("low", pos[:k])):
        expect = {}
        for h, i in chosen:
            expect.setdefault(f"t{i}", []).append(h)
        assert {t: c for t, c, _ in table[name]} == {t: len(v) for t, v in expect.items()}
        for t, c, mean in table[name]:
            assert mean == pytest.approx(sum(expect[t]) / c)
        assert [c for _, c, _ in table[name]] == sorted((c for _, c, _ in table[name]), reverse=True)


def test_topk_overlap():
    mask = torch.ones(1, 10, dtype=torch.bool)
    a = torch.tensor([[9.0, 8, 0, 0, 0, 0, 0, 0, 0, 0]])  # rho 0.2 of 10 -> k = 2: positions {0, 1}
    b = torch.tensor([[0.0, 8, 0, 0, 0, 9, 0, 0, 0, 0]])  # positions {1, 5}
    assert topk_overlap(a, a, mask) == 1.0
    assert topk_overlap(a, b, mask) == 0.5 == topk_overlap(b, a, mask)
    c = torch.tensor([[0.0, 0, 5, 6, 0, 0, 0, 0, 0, 0]])
    assert topk_overlap(a, c, mask) == 0.0
    padded = torch.cat([mask, torch.zeros(1, 2, dtype=torch.bool)], 1)  # huge entropy on padding is ignored
    assert topk_overlap(torch.cat([a, torch.tensor([[50.0, 50]])], 1), torch.cat([a, torch.zeros(1, 2)], 1),
                        padded) == 1.0
    g = torch.Generator().manual_seed(2)
    x, y, m = torch.rand(3, 40, generator=g), torch.rand(3, 40, generator=g), torch.rand(3, 40, generator=g) > 0.2
    assert topk_overlap(x, y, m, rho=0.3) == topk_overlap(y, x, m, rho=0.3)


def rollouts_for(model, tok, n=2, max_new_tokens=8, **kw):
    prompts = [p["problem"] + "\n" for p in tiny_problems("test", 3)]
    return TorchSampler(model, tok, max_new_tokens=max_new_tokens, seed=7, **kw).generate(prompts, n=n)


def test_response_entropy_matches_full_forward(model, tok):
    rollouts = rollouts_for(model, tok)
    entropy, mask, labels = response_entropy(model, rollouts, tok.pad_token_id, batch_size=4)
    assert entropy.shape == mask.shape == labels.shape and mask.sum() == sum(len(r.response_ids) for r in rollouts)
    with torch.no_grad():
        for b, r in enumerate(rollouts):
            logits = model(torch.tensor([r.prompt_ids + r.response_ids])).logits[0]
            p, n = len(r.prompt_ids), len(r.response_ids)
            assert labels[b][mask[b]].tolist() == r.response_ids
            torch.testing.assert_close(entropy[b][mask[b]], token_entropy(logits[p - 1:p + n - 1]), atol=1e-4, rtol=0)
    again, _, _ = response_entropy(model, rollouts, tok.pad_token_id, batch_size=1)
    torch.testing.assert_close(again[mask], entropy[mask], atol=1e-5, rtol=0)


def test_cli_end_to_end(tmp_path, tok):
    for name, seed in (("base", 5), ("other", 6)):
        m = make_tiny_qwen3(vocab_size=VOCAB, seed=seed)
        m.save_pretrained(tmp_path / name)
        tok.save_pretrained(tmp_path / name)
    out = tmp_path / "out"
    common = ["--model", str(tmp_path / "base"), "--bench", "tiny", "--n", "2", "--k", "2", "--max-new-tokens", "6",
              "--device", "cpu"]
    result = main(common + ["--out", str(out), "--sweep", "--compare", str(tmp_path / "base")])
    saved = json.loads((out / "stats.json").read_text())
    assert saved["overlap"] == 1.0 == result["overlap"]  # a model against itself
    assert len(saved["sweep"]) == len(DEFAULT_PAIRS)
    stats = saved["stats"]
    assert 0 < stats["n_tokens"] <= 2 * 2 * 6 and sum(stats["histogram"]["counts"]) == stats["n_tokens"]
    assert set(saved["tokens"]) == {"high", "low"} and saved["tokens"]["high"]
    assert (out / "entropy_hist.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    other = main(common + ["--out", str(tmp_path / "out2"), "--compare", str(tmp_path / "other")])
    assert 0.0 <= other["overlap"] <= 1.0 and "sweep" not in other
    assert other["stats"] == result["stats"]  # same model, same seed: same responses
