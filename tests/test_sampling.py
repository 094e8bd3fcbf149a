"""Tests for nano_forkrl/sampling.py: sample_next (temperature, top-p, the policy's log-probs), the
Sampler contract's stop ids and EOS cut, and the pad-id and unused-id rules."""
import math
from types import SimpleNamespace

import pytest
import torch

from nano_forkrl.sampling import (Sampler, drop_unused, encode_prompts, pad_id, sample_next,
                                  unused_ids)


def test_sample_next_greedy_and_logprob():
    logits = torch.tensor([[0.0, 2.0, 1.0], [3.0, 0.0, 0.0]])
    tok, lp = sample_next(logits, temperature=0)
    assert tok.tolist() == [1, 0]
    assert torch.allclose(lp, torch.log_softmax(logits, -1)[[0, 1], [1, 0]])


def test_sample_next_temperature_logprob_is_policy_logprob():
    torch.manual_seed(0)
    logits = torch.randn(5, 7)
    g = torch.Generator().manual_seed(1)
    tok, lp = sample_next(logits, temperature=0.7, generator=g)
    ref = torch.log_softmax(logits / 0.7, -1).gather(-1, tok[:, None]).squeeze(-1)
    assert torch.allclose(lp, ref)


def test_top_p_keeps_only_the_nucleus():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])).repeat(2000, 1)
    g = torch.Generator().manual_seed(0)
    tok, _ = sample_next(logits, temperature=1.0, top_p=0.7, generator=g)
    assert set(tok.tolist()) == {0, 1}  # 0.5 < 0.7 so token 1 is needed; 0.8 >= 0.7 so nothing else
    share = (tok == 0).float().mean().item()
    assert abs(share - 0.5 / 0.8) < 0.05  # renormalised inside the nucleus
    tok, _ = sample_next(logits, temperature=1.0, top_p=0.4, generator=g)
    assert set(tok.tolist()) == {0}  # the top token is always kept


def test_sample_next_distribution_matches_softmax():
    logits = torch.tensor([[1.0, 0.0, -1.0]]).repeat(20000, 1)
    tok, _ = sample_next(logits, temperature=2.0, generator=torch.Generator().manual_seed(0))
    freq = torch.bincount(tok, minlength=3).float() / len(tok)
    assert torch.allclose(freq, torch.softmax(logits[0] / 2.0, -1), atol=0.02)


class Tok:
    eos_token_id, pad_token_id = 1, None

    def __len__(self):
        return 10

    def decode(self, ids, skip_special_tokens=True):
        return " ".join(map(str, ids))


def test_sampler_stop_ids_come_from_the_tokenizer_and_the_generation_config():
    model = SimpleNamespace(generation_config=SimpleNamespace(eos_token_id=[1, 7]))
    s = Sampler(model, Tok(), max_new_tokens=4, temperature=1.0, top_p=1.0)
    # no pad token: the first EOS pads
    assert s.eos_ids == [1, 7] and s.pad_id == 1 and s.vocab_limit == 10
    given = Sampler(model, Tok(), max_new_tokens=4, temperature=1.0, top_p=1.0, eos_ids=[3])
    assert given.eos_ids == [3]


def test_to_rollout_cuts_at_the_first_eos_and_keeps_it():
    s = Sampler(None, Tok(), max_new_tokens=4, temperature=1.0, top_p=1.0, eos_ids=[1, 7])
    r = s.to_rollout(2, [5, 5], [4, 7, 3, 1], [-0.1, -0.2, -0.3, -0.4])
    got = (r.prompt_index, r.prompt_ids, r.response_ids, r.finish_reason)
    assert got == (2, [5, 5], [4, 7], "eos")
    assert r.logprobs == [-0.1, -0.2] and r.text == "4 7"
    r = s.to_rollout(0, [5], [4, 3], [-0.1, -0.2])
    assert r.response_ids == [4, 3] and r.finish_reason == "length"


class CharTok(Tok):
    def encode(self, s, add_special_tokens=False):
        return [2 + ord(c) % 8 for c in s]


def test_encode_prompts_tokenizes_strings_and_passes_id_lists():
    assert encode_prompts(CharTok(), ["ab", [5, 6], (7,)]) == [[3, 4], [5, 6], [7]]


@pytest.mark.parametrize("prompts, index", [(["", "ab"], 0), (["ab", []], 1), ([[4], "a", ()], 2)])
def test_an_empty_prompt_is_refused_naming_its_index(prompts, index):
    with pytest.raises(ValueError, match=f"prompt {index} is empty"):
        encode_prompts(CharTok(), prompts)


def test_pad_id_is_the_pad_else_the_eos_else_the_first_stop_id():
    tok = SimpleNamespace(pad_token_id=None, eos_token_id=None)
    assert pad_id(tok) is None and pad_id(tok, (7, 0)) == 7
    tok.eos_token_id = 3
    assert pad_id(tok, (7,)) == 3
    tok.pad_token_id = 0
    assert pad_id(tok, (7,)) == 0  # a pad id of 0 is an id, not "none"


def test_unused_ids_are_never_drawn():
    assert unused_ids(10, 12) == range(10, 12) and not unused_ids(12, 12) and not unused_ids(12, 10)
    logits = torch.zeros(2000, 12)
    logits[:, 10:] = 50.0  # an untrained model may put its mass there
    tok, _ = sample_next(drop_unused(logits, 10), 1.0, generator=torch.Generator().manual_seed(0))
    assert tok.max() < 10 and len(set(tok.tolist())) == 10


def test_the_draw_never_lands_on_a_token_without_mass(monkeypatch):
    """The inverse-CDF draw at both ends of u: u = 0 picks the first token with mass, and a
    u * total that rounds up to the total (here u = 1) picks the last one, never the zero-mass ids
    after it."""
    logits = torch.full((3, 8), float("-inf"))
    logits[:, 2:5] = 0.0
    for u, want in ((0.0, 2), (1.0, 4)):
        monkeypatch.setattr(torch, "rand", lambda *shape, u=u, **kw: torch.full(shape, u))
        tok, lp = sample_next(logits, temperature=1.0)
        assert tok.tolist() == [want] * 3 and torch.allclose(lp, torch.full((3,), -math.log(3)))
