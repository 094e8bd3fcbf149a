"""Tests for nano_forkrl/run/steps/rollouts.py: the resumable prompt stream and DAPO's dynamic
sampling."""
import random
import re

import pytest

from nano_forkrl.run.place.single import OneProcess
from nano_forkrl.run.setup.config import parse_args
from nano_forkrl.run.steps.rollouts import collect_rollouts, next_prompts
from nano_forkrl.sampling import Rollout


def test_prompt_stream_is_resumable_and_covers_each_epoch():
    problems = [{"id": str(i)} for i in range(7)]
    first, c = next_prompts(problems, 0, 5, seed=3)
    second, c = next_prompts(problems, c, 9, seed=3)
    whole, _ = next_prompts(problems, 0, 14, seed=3)
    assert first + second == whole and c == 14
    # one epoch = a permutation
    assert sorted(p["id"] for p in whole[:7]) == sorted(p["id"] for p in problems)
    assert whole[:7] != whole[7:]  # a new permutation each epoch


class Scripted:
    """Prompt i answers correctly in sample j iff script(i, j); counts calls."""
    pad_id = 0

    def __init__(self, script):
        self.script, self.calls = script, 0

    def generate(self, prompts, n=1, max_new_tokens=None):
        self.calls += 1
        answer = lambda i, j: "1" if self.script(self.calls, i, j) else "0"
        return [Rollout(i, [1], [2], r"\boxed{%s}" % answer(i, j), "eos")
                for i in range(len(prompts)) for j in range(n)]


def test_dynamic_sampling_drops_equal_groups_and_samples_more():
    cfg = parse_args(["--prompts-per-step", "4", "--mini-batch-prompts", "2", "--group-size", "2"])
    problems = [{"id": str(i), "problem": "p", "answer": "1"} for i in range(50)]
    # first batch: only prompts 0 and 1 have mixed rewards; second batch: all mixed
    sampler = Scripted(lambda call, i, j: j == 0 and (call > 1 or i < 2))
    batch, cursor, stats = collect_rollouts(cfg, sampler, None, problems, 0, OneProcess())
    assert sampler.calls == 2 and cursor == 8 and len(batch) == 4 * 2 and stats["groups_kept"] == 4
    assert stats["gen_rounds"] == 2
    assert batch.rewards.tolist() == [1.0, 0.0] * 4
    # GRPO: (r - mean) / std
    assert batch.advantages.tolist() == pytest.approx([0.7071, -0.7071] * 4, abs=1e-3)
    assert stats["accuracy"] == pytest.approx(2 / 8)  # logged from the first, unfiltered batch


def test_without_dynamic_sampling_every_group_is_kept():
    cfg = parse_args(["--prompts-per-step", "4", "--mini-batch-prompts", "2", "--group-size", "2",
                      "--no-dynamic-sampling"])
    problems = [{"id": str(i), "problem": "p", "answer": "1"} for i in range(50)]
    sampler = Scripted(lambda call, i, j: False)
    batch, cursor, _ = collect_rollouts(cfg, sampler, None, problems, 0, OneProcess())
    assert sampler.calls == 1 and len(batch) == 4 * 2 and cursor == 4
    assert batch.advantages.tolist() == [0.0] * 8  # equal rewards: nothing to learn, but kept


def test_no_informative_group_gives_no_batch():
    cfg = parse_args(["--prompts-per-step", "2", "--mini-batch-prompts", "2", "--group-size", "2",
                      "--max-gen-batches", "2"])
    problems = [{"id": str(i), "problem": "p", "answer": "1"} for i in range(50)]
    never = Scripted(lambda call, i, j: False)
    batch, cursor, stats = collect_rollouts(cfg, never, None, problems, 0, OneProcess())
    assert batch is None and cursor == 4 and stats["groups_kept"] == 0


class Lengths(Scripted):
    """Like Scripted, but sample j of every group is j + 1 tokens long (so overlong shaping differs
    within a group)."""

    def generate(self, prompts, n=1, max_new_tokens=None):
        return [Rollout(r.prompt_index, r.prompt_ids, [2] * (k % n + 1), r.text, "length")
                for k, r in enumerate(super().generate(prompts, n, max_new_tokens))]


def test_dynamic_sampling_filters_on_correctness_not_on_shaped_scores():
    """DAPO's condition is 0 < #correct < G. With the overlong penalty an all-wrong group has
    unequal scores (its samples differ in length); it must still be dropped."""
    cfg = parse_args(["--prompts-per-step", "2", "--mini-batch-prompts", "2", "--group-size", "2",
                      "--max-new-tokens", "2", "--overlong-buffer", "2", "--max-gen-batches", "1"])
    problems = [{"id": str(i), "problem": "p", "answer": "1"} for i in range(50)]
    sampler = Lengths(lambda call, i, j: i == 0 and j == 0)  # prompt 0 mixed, prompt 1 all wrong
    batch, _, stats = collect_rollouts(cfg, sampler, None, problems, 0, OneProcess())
    assert len(batch) == 2 and stats["groups_kept"] == 1
    # the rewards keep the shaping: -0.5 at 1 token, -1 at 2
    assert batch.rewards.tolist() == pytest.approx([1.0 - 0.5, 0.0 - 1.0])


class Counting(Scripted):
    """Like Scripted, but records how many prompts each call gets, and every rollout's prompt ids
    are its problem's number (so the kept groups can be read back from the batch)."""

    def __init__(self, script):
        super().__init__(script)
        self.sizes = []

    def generate(self, prompts, n=1, max_new_tokens=None):
        self.sizes.append(len(prompts))
        numbers = [int(re.search(r"#(\d+)#", p)[1]) for p in prompts]
        return [Rollout(r.prompt_index, [numbers[r.prompt_index]], r.response_ids, r.text,
                        r.finish_reason) for r in super().generate(prompts, n, max_new_tokens)]


def _numbered(k=60):
    return [{"id": str(i), "problem": f"#{i}#", "answer": "1"} for i in range(k)]


def _kept_numbers(batch, G):
    """The problem number of each kept group, in batch order (every row of a group has it)."""
    first = batch.input_ids[:, 0].view(-1, G)
    assert (first == first[:, :1]).all()
    return first[:, 0].tolist()


SMALL = ["--prompts-per-step", "4", "--mini-batch-prompts", "2", "--group-size", "2"]


def test_each_round_samples_gen_prompts_in_one_call_and_keeps_groups_in_order():
    cfg = parse_args(SMALL + ["--gen-prompts", "6"])
    problems = _numbered()
    # round 1: only its prompts 1 and 4 are informative; round 2: all of them
    sampler = Counting(lambda call, i, j: j == 0 and (call > 1 or i in (1, 4)))
    batch, cursor, stats = collect_rollouts(cfg, sampler, None, problems, 0, OneProcess())
    assert sampler.sizes == [6, 6] and cursor == 12 and stats["gen_rounds"] == 2
    stream = [int(p["id"]) for p in next_prompts(problems, 0, 12, seed=cfg.seed)[0]]
    # round 1's two groups, then round 2's first two: the rest of round 2 is dropped
    assert _kept_numbers(batch, 2) == [stream[1], stream[4], stream[6], stream[7]]
    assert stats["groups_kept"] == 4 and len(batch) == 4 * 2


@pytest.mark.parametrize("gen_prompts", [0, 4, 7, 16])
def test_rounds_keep_the_first_informative_groups_of_the_stream(gen_prompts):
    """Against an oracle written from the rule: round r samples the next gen_prompts prompts
    (prompts_per_step when 0) of the stream; the kept groups are the first informative ones, at
    most prompts_per_step; the step ends when they are enough or after max_gen_batches rounds."""
    cfg = parse_args(SMALL + ["--gen-prompts", str(gen_prompts), "--max-gen-batches", "3"])
    informative = lambda call, i: random.Random(f"{call} {i}").random() < 0.3
    problems, cursor, per_round = _numbered(200), 0, gen_prompts or 4
    for _ in range(4):
        sampler = Counting(lambda call, i, j: j == 0 and informative(call, i))
        batch, new_cursor, stats = collect_rollouts(cfg, sampler, None, problems, cursor,
                                                    OneProcess())
        stream = [int(p["id"]) for p in next_prompts(problems, cursor, 3 * per_round, cfg.seed)[0]]
        expected, rounds = [], 0
        while len(expected) < 4 and rounds < 3:
            rounds += 1
            expected += [stream[(rounds - 1) * per_round + i] for i in range(per_round)
                         if informative(rounds, i)]
        assert sampler.sizes == [per_round] * rounds and stats["gen_rounds"] == rounds
        assert new_cursor == cursor + rounds * per_round
        kept = None if batch is None else _kept_numbers(batch, 2)
        assert kept == (expected[:4] or None)
        cursor = new_cursor


def test_a_full_first_round_is_capped_at_prompts_per_step():
    cfg = parse_args(SMALL + ["--gen-prompts", "8"])
    problems = _numbered()
    sampler = Counting(lambda call, i, j: j == 0)  # every group informative
    batch, cursor, stats = collect_rollouts(cfg, sampler, None, problems, 0, OneProcess())
    assert sampler.sizes == [8] and cursor == 8 and stats["gen_rounds"] == 1
    stream = [int(p["id"]) for p in next_prompts(problems, 0, 8, seed=cfg.seed)[0]]
    assert _kept_numbers(batch, 2) == stream[:4]
    # the next step starts after the surplus: the stream goes on where this step left it
    _, cursor, _ = collect_rollouts(cfg, sampler, None, problems, cursor, OneProcess())
    assert cursor == 16


def test_without_dynamic_sampling_gen_prompts_is_not_sampled():
    cfg = parse_args(SMALL + ["--gen-prompts", "8", "--no-dynamic-sampling"])
    sampler = Counting(lambda call, i, j: False)
    batch, cursor, stats = collect_rollouts(cfg, sampler, None, _numbered(), 0, OneProcess())
    assert sampler.sizes == [4] and cursor == 4 and len(batch) == 4 * 2
    assert stats["gen_rounds"] == 1


@pytest.mark.parametrize("value", ["3", "-1"])
def test_gen_prompts_below_prompts_per_step_is_refused(value):
    with pytest.raises(ValueError, match="gen_prompts"):
        parse_args(SMALL + ["--gen-prompts", value])
    assert parse_args(SMALL + ["--gen-prompts", "4"]).gen_prompts == 4
