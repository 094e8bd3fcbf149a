"""The metrics log: `out_dir/metrics.jsonl`, one JSON line per step and per evaluation; TensorBoard
events when tensorboard is installed.

Guarantees:
- on resume from a checkpoint at step s, the log keeps exactly the lines with step <= s (the rest
  is replayed);
- a torn last line (the process was killed while appending it) is dropped, with a warning; a
  damaged line elsewhere is a RunError naming the file and line, since it was not written by a kill;
- the log is rewritten under a temporary name and renamed, so a kill during the rewrite loses
  nothing.
"""
import contextlib
import json
import os
import sys
import time
from pathlib import Path

from nano_forkrl.utils.errors import RunError


def read_log(path):
    """The records of a metrics.jsonl file, without a torn final line ([] when there is no file)."""
    path = Path(path)
    if not path.exists():
        return []
    lines = path.read_bytes().split(b"\n")
    records = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode("utf-8"))
            if not isinstance(record, dict) or not isinstance(record.get("step"), int):
                raise ValueError("not a record with an integer 'step'")
        except ValueError as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            if lineno == len(lines):  # no newline after it: the append was cut short by a kill
                print(f"warning: {path} line {lineno}: dropped a torn last line", file=sys.stderr)
                continue
            raise RunError(f"{path} line {lineno}: not a metrics record ({err})") from None
        records.append(record)
    return records


class Logger:
    """metrics.jsonl always; TensorBoard when installed. On resume, lines logged after the
    checkpoint are dropped; a fresh run (start_step 0) starts an empty log."""

    def __init__(self, out_dir, start_step):
        self.path = Path(out_dir) / "metrics.jsonl"
        kept = [r for r in read_log(self.path) if r["step"] <= start_step] if start_step > 0 else []
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))
        os.replace(tmp, self.path)
        try:
            from torch.utils.tensorboard import SummaryWriter
            self.tb = SummaryWriter(str(Path(out_dir) / "tb"))
        except Exception:  # tensorboard not installed: JSONL only
            self.tb = None

    def log(self, record):
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if self.tb:
            flat = {**{k: v for k, v in record.items() if isinstance(v, (int, float))},
                    **{f"time/{k}": v for k, v in record.get("time", {}).items()}}
            for k, v in flat.items():
                self.tb.add_scalar(k, v, record["step"])


class Quiet:
    """The Logger of a torchrun rank other than 0: logs nothing (rank 0 writes metrics.jsonl)."""

    def log(self, record):
        pass


def print_eval_change(path, k):
    """Print the held-out avg@k of the log's first and last evaluation (nothing with fewer than
    two)."""
    evals = [r for r in read_log(path) if "eval" in r]
    if len(evals) >= 2:
        first, last = evals[0]["eval"][f"avg@{k}"], evals[-1]["eval"][f"avg@{k}"]
        print(f"held-out avg@{k}: {first:.3f} at step {evals[0]['step']} -> {last:.3f} at step "
              f"{evals[-1]['step']}")


@contextlib.contextmanager
def timed(timer, phase):
    """Adds the seconds spent inside the block to timer[phase] (logged per step as "time")."""
    start = time.perf_counter()
    yield
    timer[phase] = timer.get(phase, 0.0) + time.perf_counter() - start
