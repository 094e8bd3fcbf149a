"""Graded cases: what the grader runs in a student's code, and how it judges what comes back.

A case is a function without arguments that runs in the grading child (where the student's modules
are imported) and returns outputs: tensors, numbers, bools, strings, None, and lists, tuples and
dicts of them. `raised(f, ...)` turns an expected exception into an output ("raises ValueError").
The grading parent never runs student code: it decodes the outputs (plain JSON, no pickle) and
compares them with the outputs the solution gave when the homework was built (`expected`), or, for
random outputs (samples), applies the case's `check`, a property test written for the parent. So a
student's process can only hand over outputs, and outputs only score when they are right.

Cases are public (public.py: they ship with the student copy, as do their expected outputs) or
hidden (hidden*.py: only the autograder holds them and their expected outputs).
"""
import importlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

CASES: dict = {}  # "part::name" -> Case, in definition order
MODULES = tuple(f"nano_forkrl.assignment.{m}" for m in ("public", "hidden", "hidden_nn"))
DTYPES = {"float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8",
          "bool"}
MAX_MESSAGE = 1200  # characters of one case's feedback


@dataclass(frozen=True)
class Case:
    part: str
    name: str
    run: Callable
    public: bool
    # parent side: check(outputs) raises AssertionError when they are wrong
    check: Callable | None = None
    rtol: float = 1e-5
    atol: float = 1e-6

    @property
    def key(self):
        return f"{self.part}::{self.name}"


def case(part, *, public=False, check=None, rtol=1e-5, atol=1e-6):
    """Register the decorated function as a case of `part` (its name is the function's)."""
    def register(fn):
        c = Case(part, fn.__name__, fn, public, check, rtol, atol)
        CASES[c.key] = c
        return fn
    return register


def load():
    """Every case this copy holds: public ones always, hidden ones where hidden.py exists."""
    for name in MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name != name:
                raise
    return CASES


def of_part(part):
    return [c for c in load().values() if c.part == part]


def raised(fn, *args, **kwargs):
    """fn's result, or "raises <ExceptionType>" when it raises an Exception (the graded way
    to check errors)."""
    try:
        return fn(*args, **kwargs)
    except Exception as err:  # noqa: BLE001 - the exception's type is the output
        return f"raises {type(err).__name__}"


# ---------------------------------------------------------------- outputs <-> JSON (the
# child -> parent channel)
def encode(x):
    """Outputs as JSON-able values; a tensor becomes {"tensor": dtype, "shape", "values"}."""
    if isinstance(x, torch.Tensor):
        t = x.detach().cpu()
        values = (t.float() if t.dtype in (torch.bfloat16, torch.float16) else t)
        values = values.reshape(-1).tolist()
        return {"tensor": str(t.dtype).removeprefix("torch."), "shape": list(t.shape),
                "values": values}
    if isinstance(x, dict):
        return {"dict": {str(k): encode(v) for k, v in x.items()}}
    if isinstance(x, (list, tuple)):
        return {"list": [encode(v) for v in x]}
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    return {"object": f"{type(x).__name__}: {str(x)[:200]}"}  # never equal to an expected output


def decode(x):
    """The inverse of encode for values from an untrusted process: only known
    dtypes, no code runs."""
    if isinstance(x, dict) and "tensor" in x:
        if x["tensor"] not in DTYPES:
            raise ValueError(f"unknown dtype {x['tensor']!r}")
        return torch.tensor(x["values"], dtype=getattr(torch, x["tensor"])).reshape(x["shape"])
    if isinstance(x, dict) and "dict" in x:
        return {k: decode(v) for k, v in x["dict"].items()}
    if isinstance(x, dict) and "list" in x:
        return [decode(v) for v in x["list"]]
    if isinstance(x, dict):
        return f"<{x.get('object', 'object')}>"
    return x


def line(key, *, outputs=None, error=None):
    """One message of the channel: a case's outputs or the error it raised."""
    return json.dumps({"case": key, "outputs": encode(outputs)} if error is None else
                      {"case": key, "error": error}, allow_nan=True) + "\n"


# ---------------------------------------------------------------- judging (parent side)
def compare(got, want, rtol, atol, where="output"):
    """Raise AssertionError (what differs, where) unless got matches want."""
    if isinstance(want, torch.Tensor):
        assert isinstance(got, torch.Tensor), \
            f"{where}: expected a tensor, got {type(got).__name__} {got!r:.80}"
        assert got.shape == want.shape, \
            f"{where}: expected shape {tuple(want.shape)}, got {tuple(got.shape)}"
        if want.dtype == torch.bool or not want.is_floating_point():
            kind = "bool" if want.dtype == torch.bool else "integer"
            same_kind = (got.dtype == torch.bool) == (want.dtype == torch.bool)
            assert same_kind and not got.is_floating_point(), \
                f"{where}: expected a {kind} tensor, got {got.dtype}"
            torch.testing.assert_close(got.long(), want.long(), rtol=0, atol=0,
                                       msg=lambda m: f"{where}: {m}")
            return
        torch.testing.assert_close(got.double(), want.double(), rtol=rtol, atol=atol,
                                   equal_nan=True, msg=lambda m: f"{where}: {m}")
    elif isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), \
            f"{where}: expected keys {sorted(want)}, got " \
            f"{sorted(got) if isinstance(got, dict) else got!r:.80}"
        for k in want:
            compare(got[k], want[k], rtol, atol, f"{where}[{k!r}]")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), \
            f"{where}: expected {len(want)} items"
        for i, (g, w) in enumerate(zip(got, want)):
            compare(g, w, rtol, atol, f"{where}[{i}]")
    elif isinstance(want, float) and not isinstance(want, bool):
        ok = isinstance(got, (int, float)) and not isinstance(got, bool) and (
            math.isclose(got, want, rel_tol=rtol, abs_tol=atol)
            or (math.isnan(got) and math.isnan(want)))
        assert ok, f"{where}: expected {want!r}, got {got!r:.80}"
    else:
        assert type(got) is type(want) and got == want, \
            f"{where}: expected {want!r:.80}, got {got!r:.80}"


def judge(c, reply, expected):
    """(passed, message) of case c given the child's reply ({"outputs"} or {"error"},
    None if none came)."""
    if reply is None:
        return False, ("no result: the part's process stopped before this case (see the part's "
                       "message)")
    if "error" in reply:
        return False, str(reply["error"])[:MAX_MESSAGE]
    try:
        got = decode(reply.get("outputs"))
        if c.check is not None:
            c.check(got)
        elif c.key not in expected:
            return False, "no expected output recorded for this case: rebuild the autograder"
        else:
            compare(got, decode(expected[c.key]), c.rtol, c.atol)
    # outputs from an untrusted process: anything odd is a failure
    except Exception as err:  # noqa: BLE001
        text = "\n".join(str(err).strip().splitlines()[:12])
        return False, f"{type(err).__name__}: {text}"[:MAX_MESSAGE]
    return True, ""
