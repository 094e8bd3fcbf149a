"""User errors in one line: what the command-line tools print instead of a traceback.

`RunError` is a mistake the user can fix (a bad flag, a missing or damaged file, a run folder that
would be overwritten); its message says what and where. `cli(main, argv)` runs a tool's `main` and
turns any exception into a single `error: ...` line on stderr and exit status 2, unless `--debug` is
among the arguments or the environment sets NANO_FORKRL_DEBUG=1: then the exception propagates with
its full traceback. An error that is not a known user error still gets one line, with its type, and
the hint to rerun with --debug.
"""
import os
import sys

DEBUG_ENV = "NANO_FORKRL_DEBUG"


class RunError(Exception):
    """A user error: the message alone tells the user what to change."""


class DataError(ValueError):
    """A data source or row that cannot become a problem. The message says where
    and what is wrong."""


def debug_requested(argv):
    """True when the traceback was asked for: `--debug` in argv, or
    NANO_FORKRL_DEBUG set and not 0."""
    args = sys.argv[1:] if argv is None else argv
    return "--debug" in args or os.environ.get(DEBUG_ENV, "0") not in ("", "0")


def describe(err):
    """The one line printed for `err`: its message for user errors, else its type and message."""
    if isinstance(err, (RunError, DataError)):
        return str(err)
    if isinstance(err, ValueError) and str(err).startswith("invalid config:"):
        return str(err)
    text = str(err) or repr(err)
    return f"{type(err).__name__}: {text} (rerun with --debug or {DEBUG_ENV}=1 for the traceback)"


def cli(main, argv=None):
    """Run `main(argv)`; a failure becomes one line on stderr and `SystemExit(2)` (argparse's
    usage-error code).
    KeyboardInterrupt exits 130 without a traceback. SystemExit from argparse or `main`
    passes unchanged."""
    if debug_requested(argv):
        return main(argv)
    try:
        return main(argv)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except Exception as err:  # the boundary of the tool: everything becomes one readable line
        print(f"error: {describe(err)}", file=sys.stderr)
        raise SystemExit(2) from None
