"""SIGTERM and SIGINT stop a run after its current step, with a checkpoint: a cluster's preemption
or a Ctrl-C costs at most the step in flight, never the steps since the last save.

While the loop trains, `Stop` handles both signals. The first one only sets a flag (and says so on
stderr); the loop finishes the step it is in (stopping halfway would leave its updates half applied)
and the evaluation due at it, if any, saves a checkpoint, and `exit_if` leaves with status 128 + the
signal's number (143 for SIGTERM, 130 for SIGINT, as if the signal had killed it) after saying where
to resume from; after the last step the run just ends. A second
signal puts the previous handlers back and is delivered again: the process exits at once (SIGTERM's
default action; SIGINT's KeyboardInterrupt), and the last complete checkpoint stays usable
(run/persist/checkpoint.py). Under torchrun every rank gets the signal; they agree on the flag after
each step (one all-reduce of one number) so that all of them save the same step together.
"""
import contextlib
import functools
import os
import signal
import sys
import threading

import torch

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stop:
    """A context: inside it the first SIGTERM/SIGINT is a request to stop (`requested`),
    the second exits."""

    def __init__(self):
        self.signum, self.agreed, self.previous = None, None, {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # Python sets handlers only there
            self.previous = {s: signal.signal(s, self._handle) for s in SIGNALS}
        return self

    def __exit__(self, *exc):
        for s, handler in self.previous.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)
        self.previous = {}

    def _handle(self, signum, frame):
        if self.signum is not None:  # the second signal: the previous handlers take it, now
            self.__exit__()
            signal.raise_signal(signum)
            return
        self.signum = signum
        # os.write: safe inside a handler
        os.write(2, f"\n{signal.Signals(signum).name}: the run stops after this step and saves a "
                    "checkpoint (send the signal again to exit at once)\n".encode())

    def requested(self, ranks=None):
        """The signal to stop for, or None; under torchrun the same answer on every rank
        (call it on all)."""
        self.agreed = self.signum
        if ranks is not None:
            asked = ranks.sum(torch.tensor([float(self.signum is not None)], device=ranks.device))
            self.agreed = (self.signum or signal.SIGTERM) if asked.item() > 0 else None
        return self.agreed

    def exit_if(self, step, cfg):
        """After the checkpoint of `step` was saved: when `requested` last said stop and the run has
        steps left, a message and SystemExit(128 + signum)."""
        if self.agreed is None or step >= cfg.steps:
            return
        print(f"stopped by {signal.Signals(self.agreed).name} after step {step}: the checkpoint is "
              f"saved in {cfg.out_dir}; continue with --resume", file=sys.stderr)
        raise SystemExit(128 + self.agreed)


def holding(fn):
    """`fn(..., held)` called as `fn(...)`: `held` is an ExitStack closed however fn ends (return,
    error, SystemExit), so what a run holds (its folder's lock, the `Stop` handlers) is given
    back in-process too."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        with contextlib.ExitStack() as held:
            return fn(*args, held=held, **kwargs)
    return run
