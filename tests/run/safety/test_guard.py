"""Tests for nano_forkrl/run/safety/guard.py: a step that breaks the weights is undone exactly; a
diverging run stops."""
import pytest
import torch

from nano_forkrl.utils.errors import RunError
from nano_forkrl.run.safety.guard import MAX_FAILED_STEPS, GuardedOptimizer, check_step


def _setup(lr):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    return model, opt, GuardedOptimizer(opt)


def _backward(model):
    model(torch.randn(8, 4)).pow(2).sum().backward()


def _state(opt):
    return {(i, k): v.clone() for i, s in enumerate(opt.state.values()) for k, v in s.items()}


def test_a_good_step_is_kept():
    model, opt, guard = _setup(1e-2)
    before = [p.detach().clone() for p in model.parameters()]
    _backward(model)
    guard.step()
    assert guard.rejected == 0 and len(opt.state) == 2
    assert not any(torch.equal(a, p) for a, p in zip(before, model.parameters()))


@pytest.mark.parametrize("lr, reason", [(float("inf"), "NaN or infinite"),
                                        (1e30, "x the weight norm")])
def test_a_first_step_that_breaks_the_weights_is_undone(lr, reason):
    model, opt, guard = _setup(lr)
    before = [p.detach().clone() for p in model.parameters()]
    _backward(model)
    guard.step()
    assert guard.rejected == 1 and reason in guard.last_reason
    assert all(torch.equal(a, p) for a, p in zip(before, model.parameters()))
    assert len(opt.state) == 0  # the optimizer state the bad step created is gone too


def test_a_later_bad_step_restores_weights_and_optimizer_state_exactly():
    model, opt, guard = _setup(1e-2)
    for _ in range(3):
        _backward(model)
        guard.step()
        guard.zero_grad()
    before, state = [p.detach().clone() for p in model.parameters()], _state(opt)
    opt.param_groups[0]["lr"] = float("inf")
    _backward(model)
    guard.step()
    assert guard.take_rejected()[0] == 1 and guard.rejected == 0
    assert all(torch.equal(a, p) for a, p in zip(before, model.parameters()))
    after = _state(opt)
    assert after.keys() == state.keys() and all(torch.equal(after[k], state[k]) for k in state)
    opt.param_groups[0]["lr"] = 1e-2  # and training goes on from there
    _backward(model)
    guard.step()
    assert guard.rejected == 0


@pytest.mark.parametrize("margin, kept", [(0.99, True), (1.01, False)])
def test_the_update_ratio_is_the_norm_of_all_weights_moves(margin, kept):
    """The limit applies to ||new - old|| / ||old|| over all parameters together: a step just
    under it is kept, just over it undone (the ratio computed here tensor by tensor)."""
    model, opt, guard = _setup(1e-1)
    before = [p.detach().clone() for p in model.parameters()]
    _backward(model)
    opt.step()  # the step the guard will see (same gradients, same fresh state), measured here
    norm = lambda ts: torch.stack([torch.linalg.vector_norm(t, dtype=torch.float64) for t in ts])
    ratio = float(norm([p - b for p, b in zip(model.parameters(), before)]).norm()
                  / norm(before).norm())
    with torch.no_grad():
        for p, b in zip(model.parameters(), before):
            p.copy_(b)
    opt.state.clear()
    guard.max_update_ratio = ratio / margin
    guard.step()
    assert guard.rejected == (0 if kept else 1)


def test_the_wrapper_passes_state_through():
    model, opt, guard = _setup(1e-2)
    assert guard.param_groups is opt.param_groups
    _backward(model)
    guard.step()
    guard.load_state_dict(guard.state_dict())
    assert opt.state_dict()["state"][0]["step"] == 1


class Counted:
    def __init__(self, rejected):
        self.rejected = rejected

    def take_rejected(self):
        return self.rejected, "the update was 1e+30 x the weight norm" if self.rejected else None


def test_a_run_whose_steps_keep_failing_stops_with_a_message():
    failed = 0
    stats = {"loss": 0.1, "nonfinite": 0.0}
    assert check_step(dict(stats), Counted(0), 1, failed, "out") == 0
    for step in range(1, MAX_FAILED_STEPS):
        failed = check_step(dict(stats), Counted(1), step, failed, "out")
    assert failed == MAX_FAILED_STEPS - 1
    failed = check_step(dict(stats), Counted(0), 9, failed, "out")
    assert failed == 0  # a good step resets the count
    skipped = {"loss": float("nan"), "nonfinite": 1.0}  # policy_step refused a non-finite gradient
    with pytest.raises(RunError, match=r"stopping at step 3: 3 steps in a row.*Lower --lr"):
        for step in range(1, MAX_FAILED_STEPS + 1):
            failed = check_step(dict(skipped), Counted(0), step, failed, "out")
    no_data = {"no_groups": True}  # every group had equal rewards: no update, not a failure
    assert check_step(no_data, Counted(0), 1, 2, "out") == 0 and no_data["updates_rejected"] == 0


def test_switched_off_it_keeps_no_copy_and_undoes_nothing():
    """--no-step-guard for models whose extra copy of weights and optimizer state does not fit."""
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    opt = torch.optim.AdamW(model.parameters(), lr=1e30)
    guard = GuardedOptimizer(opt, enabled=False)
    _backward(model)
    guard.step()
    assert guard._copies == {} and guard.rejected == 0
    assert max(float(p.abs().max()) for p in model.parameters()) > 1e20  # the wild step was kept
