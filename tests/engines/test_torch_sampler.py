"""Tests for nano_forkrl/engines/torch_sampler.py: TorchSampler's plain HF path (the CUDA path: test_fastdecode.py)."""
import pytest
import torch
from conftest import greedy_rows_equal_up_to_ties, make_tiny_qwen3

from nano_forkrl.tasks.data import collate_rollouts
from nano_forkrl.entropy import token_logprobs_and_entropy
from nano_forkrl.engines.torch_sampler import TorchSampler
from nano_forkrl.sampling import sample_next


class CharTok:
    """A minimal tokenizer: one id per character, ids 2..49; 0 = pad, 1 = eos; len 60 < vocab 64."""
    eos_token_id, pad_token_id = 1, 0

    def __len__(self):
        return 60

    def encode(self, s, add_special_tokens=False):
        return [ord(c) % 48 + 2 for c in s]

    def decode(self, ids, skip_special_tokens=True):
        return "".join(chr(65 + i % 26) for i in ids if not (skip_special_tokens and i in (0, 1)))


PROMPTS = ["hello world", "a", "xyz", "the quick brown fox"]


def test_group_layout_and_counts():
    s = TorchSampler(make_tiny_qwen3(), CharTok(), max_new_tokens=5, temperature=1.0, fast=False, eos_ids=[63])
    rs = s.generate(PROMPTS, n=3)
    assert len(rs) == 12
    assert [r.prompt_index for r in rs] == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert all(r.prompt_ids == CharTok().encode(PROMPTS[r.prompt_index]) for r in rs)
    assert all(len(r.response_ids) == 5 and r.finish_reason == "length" for r in rs)  # 63 is never sampled
    assert all(len(r.logprobs) == len(r.response_ids) for r in rs)


def test_greedy_equals_hf_generate_with_left_padding():
    model = make_tiny_qwen3()
    rs = TorchSampler(model, CharTok(), max_new_tokens=12, temperature=0, fast=False).generate(PROMPTS)
    for p, r in zip(PROMPTS, rs):
        ids = torch.tensor([CharTok().encode(p)])
        ref = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=12, do_sample=False,
                             eos_token_id=1, pad_token_id=0)[0, ids.shape[1]:]
        assert r.response_ids == ref.tolist()


@pytest.mark.parametrize("prompts, index", [(["", "hello"], 0), (["hello", []], 1)])
def test_an_empty_prompt_is_a_value_error_naming_it(prompts, index):
    s = TorchSampler(make_tiny_qwen3(), CharTok(), max_new_tokens=3, temperature=1.0, fast=False)
    with pytest.raises(ValueError, match=f"prompt {index} is empty"):
        s.generate(prompts, n=2)


def test_batch_size_does_not_change_results():
    model = make_tiny_qwen3()
    a = TorchSampler(model, CharTok(), max_new_tokens=8, temperature=0, fast=False, batch_size=1).generate(PROMPTS, n=2)
    b = TorchSampler(model, CharTok(), max_new_tokens=8, temperature=0, fast=False, batch_size=64).generate(PROMPTS, n=2)
    assert [r.response_ids for r in a] == [r.response_ids for r in b]


def test_stops_at_eos_and_keeps_it():
    model = make_tiny_qwen3()
    first = TorchSampler(model, CharTok(), max_new_tokens=10, temperature=0, fast=False).generate(["hello"])[0]
    stop = first.response_ids[3]
    cut = first.response_ids.index(stop)
    r = TorchSampler(model, CharTok(), max_new_tokens=10, temperature=0, fast=False, eos_ids=[stop]).generate(["hello"])[0]
    assert r.finish_reason == "eos" and r.response_ids == first.response_ids[:cut + 1]


def test_never_emits_ids_beyond_the_tokenizer():
    model = make_tiny_qwen3(tie=False)
    model.lm_head.register_forward_hook(lambda m, i, out: out + torch.cat(
        [torch.zeros(out.shape[-1] - 4), torch.full((4,), 1e4)]))  # ids 60..63 would always win
    rs = TorchSampler(model, CharTok(), max_new_tokens=20, temperature=1.0, fast=False).generate(PROMPTS, n=4)
    assert max(t for r in rs for t in r.response_ids) < len(CharTok())


class FullTok(CharTok):
    def __len__(self):
        return 64  # every id of the model is a token: no masking, so both sides see the same distribution


def test_greedy_logprobs_equal_teacher_forced_logprobs():
    model = make_tiny_qwen3()
    rs = TorchSampler(model, FullTok(), max_new_tokens=10, temperature=0, fast=False).generate(PROMPTS)
    batch = collate_rollouts([r.prompt_ids for r in rs], [r.response_ids for r in rs], pad_id=0)
    lp, _ = token_logprobs_and_entropy(model, batch["input_ids"], batch["attention_mask"], labels=batch["labels"])
    for i, r in enumerate(rs):
        teacher = lp[i][batch["response_mask"][i]]
        assert torch.allclose(teacher, torch.tensor(r.logprobs), atol=1e-5)


def test_rng_state_round_trip_reproduces_samples():
    s = TorchSampler(make_tiny_qwen3(), CharTok(), max_new_tokens=6, temperature=1.0, fast=False, seed=5)
    state = s.rng_state()
    a = s.generate(PROMPTS, n=2)
    s.set_rng_state(state)
    b = s.generate(PROMPTS, n=2)
    assert [r.response_ids for r in a] == [r.response_ids for r in b]
    s.reseed(5)
    c = s.generate(PROMPTS, n=2)
    assert [r.response_ids for r in a] == [r.response_ids for r in c]


def test_greedy_comparison_of_two_engines_accepts_only_near_ties():
    """conftest.greedy_rows_equal_up_to_ties, which the GPU checks use to compare bf16 engines."""
    import dataclasses

    import pytest
    model = make_tiny_qwen3()
    rs = TorchSampler(model, FullTok(), max_new_tokens=8, temperature=0, fast=False).generate(PROMPTS)
    assert greedy_rows_equal_up_to_ties(model, rs, rs) == len(PROMPTS)
    # a divergence at token 3 to the least likely token: a real disagreement, not a tie
    ids = torch.tensor([rs[0].prompt_ids + rs[0].response_ids[:3]])
    worst = int(model(input_ids=ids).logits[0, -1].argmin())
    bad = dataclasses.replace(rs[0], response_ids=rs[0].response_ids[:3] + [worst] + rs[0].response_ids[4:])
    with pytest.raises(AssertionError, match="diverges at token 3 without a near-tie"):
        greedy_rows_equal_up_to_ties(model, [bad], rs[:1])
    with torch.no_grad():  # all logits equal: every token is tied with every other
        model.lm_head.weight.zero_()
    assert greedy_rows_equal_up_to_ties(model, [bad], rs[:1]) == 0
