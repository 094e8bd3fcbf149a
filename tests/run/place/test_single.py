"""Tests for nano_forkrl/run/place/single.py: the one-process place has every method of the torchrun
one, and each is the plain single-process call."""
import inspect

import torch
from conftest import make_tiny_qwen3

from nano_forkrl.entropy import score_batch
from nano_forkrl.run.place.distributed import Ranks, setup
from nano_forkrl.run.place.single import OneProcess
from nano_forkrl.run.setup.config import Config
from nano_forkrl.tasks.data import collate_rollouts
from nano_forkrl.tasks.rollout_batch import RolloutBatch


def _public(cls):
    return {n for n, _ in inspect.getmembers(cls, callable) if not n.startswith("_")}


def test_it_has_the_methods_of_ranks_with_the_same_arguments():
    assert _public(Ranks) <= _public(OneProcess)
    for name in _public(Ranks):
        ours = inspect.signature(getattr(OneProcess, name))
        theirs = inspect.signature(getattr(Ranks, name))
        assert list(ours.parameters)[:len(theirs.parameters)] == list(theirs.parameters) or \
            "kwargs" in ours.parameters, name


def test_without_torchrun_setup_returns_one_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    place = setup(Config())
    assert isinstance(place, OneProcess) and (place.rank, place.world, place.main) == (0, 1, True)


def test_shares_are_everything_and_collectives_return_their_input():
    place, items, t = OneProcess(), list(range(5)), torch.arange(3.0)
    assert place.share(items) == items and place.span(5) == slice(0, 5)
    assert place.gather("x") == ["x"]
    assert place.sum(t) is t and place.seed(7) == 7
    model = object()
    assert place.policy(model, "torch") == (model, model, None) and place.full_view(model) is model
    with place.main_first():
        place.barrier()


def test_score_batch_is_entropy_score_batch_of_the_batch():
    model = make_tiny_qwen3()
    ids = collate_rollouts([[3, 4], [5]], [[6, 7, 8], [9]], pad_id=0)
    batch = RolloutBatch(**ids, advantages=torch.zeros(2))
    ours = OneProcess().score_batch(model, batch, chunk_size=4)
    plain = score_batch(model, ids, chunk_size=4)
    assert all(torch.equal(a, b) for a, b in zip(ours, plain))
