"""Tests for nano_forkrl/run/steps/rollouts.py: the resumable prompt stream and DAPO's dynamic
sampling."""
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
