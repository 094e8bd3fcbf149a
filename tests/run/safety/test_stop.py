"""Tests for nano_forkrl/run/safety/stop.py: the first SIGTERM/SIGINT asks the loop to stop after its step, the second
exits at once. (A real run stopped by SIGTERM and resumed: tests/run/persist/test_checkpoint.py.)"""
import os
import signal
import subprocess
import sys

import pytest

from nano_forkrl.run.setup.config import Config
from nano_forkrl.run.safety.stop import Stop, holding


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_first_signal_only_asks_to_stop_and_the_handlers_come_back(signum, capfd):
    before = signal.getsignal(signum)
    with Stop() as stops:
        assert stops.requested() is None
        os.kill(os.getpid(), signum)  # delivered to this thread before kill returns
        assert stops.requested() == signum
        assert f"{signal.Signals(signum).name}: the run stops after this step" in capfd.readouterr().err
        stops.exit_if(7, Config(steps=7))  # the last step: the run just ends
        with pytest.raises(SystemExit) as exit_:
            stops.exit_if(7, Config(steps=10, out_dir="runs/x"))
    assert exit_.value.code == 128 + signum
    assert f"stopped by {signal.Signals(signum).name} after step 7" in capfd.readouterr().err
    assert signal.getsignal(signum) is before
    Stop().exit_if(7, Config(steps=10))  # nothing asked: nothing happens


TWICE = """
import os, signal, sys, time
from nano_forkrl.run.safety.stop import Stop
signum = getattr(signal, sys.argv[1])
with Stop() as stops:
    os.kill(os.getpid(), signum)
    print("asked", stops.requested(), flush=True)
    os.kill(os.getpid(), signum)
    time.sleep(60)
    print("still running", flush=True)
"""


@pytest.mark.parametrize("name", ["SIGTERM", "SIGINT"])
def test_a_second_signal_exits_at_once(name):
    child = subprocess.run([sys.executable, "-c", TWICE, name], capture_output=True, text=True, timeout=120)
    assert child.stdout.startswith("asked") and "still running" not in child.stdout
    if name == "SIGTERM":
        assert child.returncode == -signal.SIGTERM  # the default action: killed by the signal
    else:
        assert child.returncode == -signal.SIGINT and "KeyboardInterrupt" in child.stderr  # (train: "interrupted")


def test_holding_gives_everything_back_however_the_run_ends():
    closed = []

    @holding
    def run(fail, held):
        held.callback(closed.append, fail)
        held.enter_context(Stop())
        if fail:
            raise SystemExit(143)
        return "done"

    before = signal.getsignal(signal.SIGTERM)
    assert run(False) == "done"
    with pytest.raises(SystemExit):
        run(True)
    assert closed == [False, True] and signal.getsignal(signal.SIGTERM) is before
