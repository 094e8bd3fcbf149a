"""The trainer state: `trainer_state.pt`, what a checkpoint holds besides the weights, read back.

It holds the step, the data cursor (how many prompts were consumed), the optimizer state, every RNG
stream (torch CPU, CUDA, the sampler's; under torchrun a list with every rank's), the run's config
and its training data's fingerprint (run/persist/checkpoint.py writes it). Loading never runs code:
the file is read with `weights_only=True` (tensors and plain data only), and anything else is a
RunError naming the file. A checkpoint of n processes is resumed by n processes only.
"""
import pickle
from pathlib import Path

import torch

from nano_forkrl.utils.errors import RunError

STATE = "trainer_state.pt"


def load_state(path, mmap=False):
    """The trainer state in `path`, read without running any code from the file (weights_only:
    tensors and plain containers only). RunError naming the file when it is unreadable or holds
    other Python objects."""
    try:
        return torch.load(path, mmap=mmap, weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights only load failed" not in str(err).lower():
            raise RunError(f"{path}: unreadable trainer state ({type(err).__name__}: "
                           f"{err})") from None
        found = next((line.strip() for line in str(err).splitlines()
                      if "global" in line.lower()), "")
        raise RunError(f"{path}: refused to load: it holds Python objects that could run code when "
                       f"loaded, which a trainer state never does ({found[:120]})") from None
    except Exception as err:  # a torn or foreign file: say which file, not a pickle traceback
        raise RunError(f"{path}: unreadable trainer state ({type(err).__name__}: {err})") from None


def processes_mismatch(n):
    """The error for a checkpoint written by n processes resumed by another number of them."""
    return RunError(f"the checkpoint was written by {n} process(es): resume it with as many "
                    f"(torchrun --nproc_per_node {n}, or python -m nano_forkrl.train for 1)")


def restore_state(folder, optimizer, sampler, processes=1):
    """Load optimizer and RNG states from `folder/trainer_state.pt` into a run of `processes`
    processes (a torchrun checkpoint holds a list of every rank's RNG states);
    returns (step, cursor)."""
    path = Path(folder) / STATE
    state = load_state(path)
    rngs = state["sampler_rng"]
    if (saved := len(rngs) if isinstance(rngs, list) else 1) != processes:
        raise processes_mismatch(saved)
    try:
        optimizer.load_state_dict(state["optimizer"])
    except Exception as err:
        raise RunError(f"{path}: cannot restore the trainer state ({type(err).__name__}: {err}); "
                       "the checkpoint is damaged or from a different model") from err
    torch.set_rng_state(state["torch_rng"])
    sampler.set_rng_state(state["sampler_rng"])
    if state["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return state["step"], state["cursor"]
