"""The grading child: runs the graded cases of some parts in the student's code and
sends their outputs.

    python -s -m nano_forkrl.assignment.harness FD PART [PART ...]

Started by sandbox.py in a fresh copy of the package, as its own session (and as user nobody when
the grader runs as root). For each case of the parts (cases.py) it writes one JSON line to the file
descriptor FD: the case's outputs, or the exception it raised (a NotImplementedError of a blank
part, a skip, a SystemExit: every exception is a failure). Judging happens in the parent, never
here: whatever this process writes (student code can write too) only counts if it matches
the expected outputs.
"""
import os
import sys
import traceback

import torch

from nano_forkrl.assignment.cases import line, of_part

TRACE_LINES = 6  # the innermost frames shown with an error


def _error(err):
    """'Type: message' and the innermost frames in the student's files (never a case's own code: a
    hidden case's inputs stay out of the feedback), with paths relative to the copy."""
    frames = [f for f in traceback.extract_tb(err.__traceback__)
              if "nano_forkrl/assignment/" not in f.filename]
    where = "".join(traceback.format_list(frames[-TRACE_LINES:]))
    where = where.replace(os.getcwd() + os.sep, "").rstrip()
    return f"{type(err).__name__}: {err}".strip() + (f"\n{where}" if where else "")


def run(fd, parts):
    out = os.fdopen(fd, "w", buffering=1)
    torch.set_num_threads(1)
    for part in parts:
        for c in of_part(part):
            torch.manual_seed(0)
            try:
                outputs = c.run()
            except BaseException as err:  # noqa: BLE001 - SystemExit, pytest's Skipped, ...
                out.write(line(c.key, error=_error(err)))
                continue
            try:
                out.write(line(c.key, outputs=outputs))
            except (TypeError, ValueError, OverflowError) as err:
                out.write(line(c.key, error=f"the outputs cannot be sent: {err}"))
    out.close()


if __name__ == "__main__":
    run(int(sys.argv[1]), sys.argv[2:])
