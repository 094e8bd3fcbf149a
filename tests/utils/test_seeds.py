"""Tests for nano_forkrl/utils/seeds.py: one seed rule, no collisions between neighbouring keys."""
import torch

from nano_forkrl.utils.seeds import derive_seed, generator


def test_seeds_are_deterministic_distinct_and_63_bit():
    assert derive_seed("order", 0, 5) == derive_seed("order", 0, 5)
    seeds = {derive_seed("epoch", s, e) for s in range(50) for e in range(50)}
    assert len(seeds) == 2500 and all(0 <= x < 2**63 for x in seeds)
    assert derive_seed("epoch", 0, 100003) != derive_seed("epoch", 1, 0)  # where seed * 100003 + epoch collides
    assert derive_seed("mask", 1) != derive_seed("order", 1)


def test_generators_replay_the_same_stream():
    a, b = generator("mask", 3, 64), generator("mask", 3, 64)
    assert torch.equal(torch.rand(5, generator=a), torch.rand(5, generator=b))
    assert not torch.equal(torch.rand(5, generator=generator("mask", 3, 65)), torch.rand(5, generator=b))


def test_streams_of_seed_and_cursor_do_not_collide():
    draw = lambda *keys: torch.rand(4, generator=generator(*keys))
    assert torch.equal(draw("mask", 0, 32), draw("mask", 0, 32))  # reproducible
    assert not torch.equal(draw("mask", 0, 32), draw("mask", 32, 0))  # seed + cursor would have made these equal
    assert not torch.equal(draw("mask", 0, 0), draw("order", 0, 0))
