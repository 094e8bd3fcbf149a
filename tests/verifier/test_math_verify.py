"""Tests for nano_forkrl.verifier.math_verify: the optional Math-Verify backend (skipped where the
package is absent), and that without it the backend answers 0, never raises, and nano_forkrl never
imports it eagerly."""
import subprocess
import sys
import threading

import pytest

from nano_forkrl.verifier import math_verify as backend
from nano_forkrl.verifier.extract import after_thinking
from nano_forkrl.verify import reward

needs_package = pytest.mark.skipif(not backend.available(),
                                   reason="math-verify is not installed (optional)")


def test_absent_package_is_zero_not_an_error(monkeypatch):
    monkeypatch.setattr(backend, "available", lambda: False)
    assert backend.is_equivalent_math_verify("1", "1") is False
    assert reward(r"\boxed{1}", "1", verifier="math-verify", wrong=-1.0) == -1.0


def test_not_imported_by_the_verifier():
    code = "import sys, nano_forkrl.verify; print('math_verify' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "False"


def test_unknown_verifier_is_an_error():
    with pytest.raises(ValueError):
        reward(r"\boxed{1}", "1", verifier="other")


@needs_package
@pytest.mark.parametrize("pred, gold, same", [
    (r"\frac12", "0.5", True), ("x=5", "5", True), (r"\dfrac{1}{2}", r"\frac12", True),
    ("1", "2", False), (None, "1", False), ("\\frac{", "}", False), ("", "", False),
])
def test_verdicts(pred, gold, same):
    assert backend.is_equivalent_math_verify(pred, gold) is same


@needs_package
def test_rewards_and_threads():
    assert reward(r"so \boxed{2}", "2", verifier="math-verify") == 1.0
    assert reward(r"<think> \boxed{2}", "2", verifier="math-verify") == 0.0  # still thinking
    assert reward(r"so \boxed{3}", "2", verifier="math-verify", wrong=-1.0) == -1.0
    out = []
    worker = threading.Thread(
        target=lambda: out.append(backend.is_equivalent_math_verify(r"\frac12", "0.5")))
    worker.start()
    worker.join()
    assert out == [True]


def test_the_think_rule_is_the_extractors(monkeypatch):
    """reward_math_verify hands Math-Verify what extract.after_thinking keeps, and nothing while the
    response is still thinking."""
    seen = []
    monkeypatch.setattr(backend, "is_equivalent_math_verify",
                        lambda pred, gold, timeout: seen.append(pred) or True)
    response = r"<think>\boxed{1}</think> so \boxed{2}"
    assert backend.reward_math_verify(response, "2") == 1.0
    assert seen == [after_thinking(response)] == [r" so \boxed{2}"]
    assert backend.reward_math_verify(r"<think> \boxed{2}", "2") == 0.0 and len(seen) == 1
    # the owner decides: "still thinking"
    monkeypatch.setattr(backend, "after_thinking", lambda text: None)
    assert backend.reward_math_verify("no tags at all", "2") == 0.0 and len(seen) == 1
