"""The step guard: an optimizer step is kept only if it leaves finite weights and a sane update.

`policy_step` already skips a step whose loss or gradient is not finite. A finite gradient can still
produce broken weights (an absurd learning rate, an overflow inside the optimizer), and those would
be synced to the sampler and checkpointed. `GuardedOptimizer` wraps the optimizer the loop passes to
`policy_step`:

    before each step   copy the parameters and the optimizer state into preallocated buffers
                       (same device)
    after the step     accept it only if every parameter is finite and
                       ||new - old|| <= max_update_ratio * ||old||
    if not             copy the buffers back (weights and optimizer state exactly as before),
                       count it

The copy costs one extra set of weights and optimizer state in memory and a device-local copy per
step (no host sync beyond one scalar check). `rejected` counts the rejected steps since the last
`take_rejected()`; the loop stops the run through `check_step` when MAX_FAILED_STEPS training steps
in a row had an optimizer step undone here or skipped by `policy_step`.
"""
import sys

import torch

from nano_forkrl.utils.errors import RunError

# consecutive training steps with an undone or skipped optimizer step: the run diverges
MAX_FAILED_STEPS = 3
# one step moving the weights by half their norm: the run is blowing up, not learning
MAX_UPDATE_RATIO = 0.5


def _norm(t):
    return torch.linalg.vector_norm(t, dtype=torch.float64)


class GuardedOptimizer:
    """An optimizer wrapper with `step`, `zero_grad`, `state_dict`, `load_state_dict` and
    `param_groups`."""

    def __init__(self, optimizer, max_update_ratio=MAX_UPDATE_RATIO, enabled=True):
        self.optimizer, self.max_update_ratio, self.enabled = optimizer, max_update_ratio, enabled
        self.rejected, self.last_reason, self._copies = 0, None, {}

    @property
    def param_groups(self):
        return self.optimizer.param_groups

    def zero_grad(self, set_to_none=True):
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self):
        return self.optimizer.state_dict()

    def load_state_dict(self, state):
        self.optimizer.load_state_dict(state)

    def _params(self):
        return [p for g in self.optimizer.param_groups for p in g["params"]]

    def _tensors(self):
        """(key, tensor) for every parameter and every tensor of the optimizer state, in a fixed
        order."""
        out = [(("p", i), p) for i, p in enumerate(self._params())]
        for i, p in enumerate(self._params()):
            for name, value in self.optimizer.state.get(p, {}).items():
                if torch.is_tensor(value):
                    out.append((("s", i, name), value))
        return out

    def _snapshot(self):
        """Copy every tensor into its buffer; state entries that do not exist yet are remembered as
        absent."""
        present = set()
        with torch.no_grad():
            for key, t in self._tensors():
                buf = self._copies.get(key)
                kind = (t.shape, t.dtype, t.device)
                if buf is None or (buf.shape, buf.dtype, buf.device) != kind:
                    buf = self._copies[key] = torch.empty_like(t)
                buf.copy_(t)
                present.add(key)
        scalars = {i: {k: v for k, v in self.optimizer.state.get(p, {}).items()
                       if not torch.is_tensor(v)} for i, p in enumerate(self._params())}
        return present, scalars

    def _restore(self, present, scalars):
        with torch.no_grad():
            for i, p in enumerate(self._params()):
                state = self.optimizer.state.get(p)
                if state is None:
                    continue
                # state created by the rejected step (the first step) goes away
                for name in list(state):
                    if torch.is_tensor(state[name]) and ("s", i, name) not in present:
                        del state[name]
                state.update(scalars.get(i, {}))
                if not state:
                    del self.optimizer.state[p]
            for key, t in self._tensors():
                if key in present:
                    t.copy_(self._copies[key])

    def _check(self):
        """None when the step is acceptable, else the reason it is not."""
        params = self._params()
        with torch.no_grad():
            finite = torch.stack([torch.isfinite(p).all() for p in params]).all()
            old = torch.stack([_norm(self._copies[("p", i)]) for i in range(len(params))]).norm()
            delta = torch.stack([_norm(p - self._copies[("p", i)])
                                 for i, p in enumerate(params)]).norm()
        if not bool(finite):
            return "the step made some weights NaN or infinite"
        ratio = float(delta) / max(float(old), 1e-12)
        if ratio > self.max_update_ratio:
            return f"the update was {ratio:.3g} x the weight norm (limit {self.max_update_ratio})"
        return None

    def step(self):
        # --no-step-guard: no copy kept (checkpoints still refuse non-finite weights)
        if not self.enabled:
            self.optimizer.step()
            return
        present, scalars = self._snapshot()
        self.optimizer.step()
        reason = self._check()
        if reason is not None:
            self._restore(present, scalars)
            self.rejected += 1
            self.last_reason = reason

    def take_rejected(self):
        """(number of rejected steps since the last call, the last reason); resets the count."""
        out = (self.rejected, self.last_reason)
        self.rejected = 0
        return out


def check_step(stats, guard, step, failed, out_dir):
    """Record the guard's rejections in `stats`; returns the count of failing steps in a row, or
    raises RunError when it reaches MAX_FAILED_STEPS."""
    rejected, reason = guard.take_rejected()
    stats["updates_rejected"] = rejected
    # policy_step refused a non-finite loss or gradient ("no_groups": no update, not a failure)
    skipped = stats.get("nonfinite", 0) > 0
    if rejected:
        print(f"warning: step {step}: {rejected} optimizer step(s) undone: {reason}",
              file=sys.stderr)
    if not (rejected or skipped):
        return 0
    failed += 1
    if failed >= MAX_FAILED_STEPS:
        why = reason or "non-finite loss or gradient"
        raise RunError(f"stopping at step {step}: {failed} steps in a row had optimizer steps "
                       f"undone or skipped (last: {why}). Nothing broken was saved; the last "
                       f"checkpoint in {out_dir} is intact. "
                       "Lower --lr (or --max-grad-norm) and resume with --resume.")
    return failed
