"""Tests for nano_forkrl/run/persist/state.py: the trainer state is read back without running code
from it, names its file when it cannot be, and is restored only into as many processes as wrote it
(the save protocol around it: test_checkpoint.py)."""
import pytest
import torch

from nano_forkrl.run.persist.state import STATE, load_state, processes_mismatch, restore_state
from nano_forkrl.utils.errors import RunError


class Sampler:
    def __init__(self):
        self.state = None

    def set_rng_state(self, state):
        self.state = state


class Payload:
    """A Python object in a pickle: what a trainer state never holds."""


def write(folder, sampler_rng, optimizer):
    folder.mkdir()
    torch.save({"step": 3, "cursor": 96, "optimizer": optimizer.state_dict(),
                "torch_rng": torch.get_rng_state(), "sampler_rng": sampler_rng,
                "cuda_rng": None}, folder / STATE)
    return folder


def test_restore_returns_step_and_cursor_and_sets_every_state(tmp_path):
    weight = torch.nn.Parameter(torch.ones(3))
    saved = torch.optim.AdamW([weight], lr=0.1)
    weight.grad = torch.ones(3)
    saved.step()
    folder = write(tmp_path / "checkpoint", {"generator": torch.arange(3)}, saved)
    optimizer, sampler = torch.optim.AdamW([torch.nn.Parameter(torch.ones(3))], lr=0.1), Sampler()
    assert restore_state(folder, optimizer, sampler) == (3, 96)
    assert torch.equal(sampler.state["generator"], torch.arange(3))
    assert optimizer.state_dict()["state"][0]["step"] == saved.state_dict()["state"][0]["step"]


def test_a_checkpoint_of_two_processes_is_refused_by_one_and_back(tmp_path):
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.ones(2))], lr=0.1)
    two = write(tmp_path / "two", [[1], [2]], optimizer)
    with pytest.raises(RunError, match=r"written by 2 process\(es\).*--nproc_per_node 2"):
        restore_state(two, optimizer, Sampler())
    one = write(tmp_path / "one", [1], optimizer)
    with pytest.raises(RunError, match=r"written by 1 process"):
        restore_state(one, optimizer, Sampler(), processes=2)
    assert "python -m nano_forkrl.train for 1" in str(processes_mismatch(1))


def test_an_optimizer_of_another_model_is_a_clear_error(tmp_path):
    saved = torch.optim.SGD([torch.nn.Parameter(torch.ones(2))], lr=0.1)
    folder = write(tmp_path / "checkpoint", [1], saved)
    other = torch.optim.SGD([torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))],
                            lr=0.1)
    with pytest.raises(RunError, match="damaged or from a different model"):
        restore_state(folder, other, Sampler())


def test_python_objects_are_refused_and_torn_files_named(tmp_path):
    torch.save({"step": Payload()}, tmp_path / "hostile.pt")
    with pytest.raises(RunError, match="hostile.pt: refused to load"):
        load_state(tmp_path / "hostile.pt")
    (tmp_path / "torn.pt").write_bytes(b"PK\x03\x04 not a whole file")
    with pytest.raises(RunError, match="torn.pt: unreadable trainer state"):
        load_state(tmp_path / "torn.pt")
