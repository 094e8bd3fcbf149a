"""Every random stream of a run from one rule: a seed derived from a tuple of keys such as
("order", seed, cursor).

Distinct tuples give distinct, unrelated seeds (the first 8 bytes of a SHA-256 of the tuple's repr,
63 bits so that every consumer takes it). Arithmetic such as seed * 100003 + epoch would not: seed 0
at epoch 100003 would repeat seed 1 at epoch 0. Used for the prompt order, the mini-batch order, the
random-mask control and vLLM's per-call sampling seeds; a resumed run re-derives the same
streams from the same keys.
"""
import hashlib

import torch


def derive_seed(*keys):
    """A 63-bit integer seed for the tuple `keys` (ints and strings)."""
    digest = hashlib.sha256(repr(keys).encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def generator(*keys):
    """A CPU torch.Generator seeded by derive_seed(*keys)."""
    return torch.Generator().manual_seed(derive_seed(*keys))
