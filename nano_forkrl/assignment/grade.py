"""Grade a copy part by part: `python -m nano_forkrl.assignment grade [DIR]`, and
the autograder's core.

Each part runs its graded cases (cases.py: public ones, plus hidden ones where this copy holds them)
in a child process of its own, `jobs` at a time, each in a fresh copy of the package with the
student's files written over the grader's (sandbox.py). The child only sends outputs; this process
judges them against the solution's outputs (`expected`, recorded when the homework was built), so
nothing the student's code does in its process (patching pytest, skipping, exiting) can pass a case.
Before each part the grader's own files are hashed and compared with their hash at the start: a part
that finds them changed is not graded. A part scores points * passed / cases; a case that raised,
sent nothing or sent a wrong output scores 0, and what does not finish in time (per part, and the
overall `deadline`) scores 0 with a message.
"""
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from nano_forkrl.assignment import sandbox
from nano_forkrl.assignment.cases import judge, of_part
from nano_forkrl.assignment.parts import PARTS

EXPECTED = "assignment_expected.json"
# 9 parts, 2 at a time: 5 rounds of at most 90 s fit in 480 s
PART_TIMEOUT, DEADLINE, JOBS = 90.0, 480.0, 2


def replies(lines):
    """{case key: its last reply} from the child's JSON lines (lines that do not
    parse are ignored)."""
    found = {}
    for text in lines:
        try:
            reply = json.loads(text)
            found[str(reply["case"])] = reply
        # lines from an untrusted process (too deep, not JSON, ...): ignored
        except Exception:  # noqa: BLE001
            continue
    return found


def record(root, parts=None, timeout=300.0):
    """{case key: encoded outputs} that the code at root gives (the solution's: the
    expected outputs)."""
    parts = list(PARTS) if parts is None else parts
    lines, why, output = sandbox.run_part(root, parts, {}, timeout)
    got = replies(lines)
    wrong = [k for c in (c for p in parts for c in of_part(p))
             if "outputs" not in got.get(k := c.key, {})]
    if wrong or why:
        raise RuntimeError(f"record: the solution at {root} gives no output for {wrong} "
                           f"({why})\n{output[-2000:]}")
    return {k: v["outputs"] for k, v in got.items()}


def load_expected(root, parts=None):
    """The expected outputs held at root, or recorded from root when it is the
    solution repository."""
    path = Path(root) / EXPECTED
    if path.is_file():
        return json.loads(path.read_text())
    from nano_forkrl.assignment.markers import scan

    if scan(root):
        return record(root, parts)
    raise SystemExit(f"grade: {path} is missing (build the copy with `python -m "
                     "nano_forkrl.assignment build`)")


def grade_part(root, name, files, expected, timeout, trusted, drop, everything=False):
    """{"part", "points", "score", "passed", "run", "seconds", "cases": [(name, passed, public,
    message)], "output" (why the child stopped early, with its last output)}."""
    # the autograder's copy
    hidden = (Path(root) / "nano_forkrl" / "assignment" / "hidden.py").is_file()
    start, cases = time.perf_counter(), [c for c in of_part(name) if c.public or hidden]
    if sandbox.fingerprint(root) != trusted:
        got, why, output = {}, "was not started: the grader's own files changed during grading", ""
    elif timeout <= 0:
        got, why, output = {}, "was not started: the overall deadline had passed", ""
    else:
        lines, why, output = sandbox.run_part(root, [name], files, timeout, drop, everything)
        got = replies(lines)
    judged = [(c.name, *judge(c, got.get(c.key), expected), c.public) for c in cases]
    last = f"; its last output:\n{output[-1500:]}" if output.strip() else ""
    stopped = f"the part's process {why}" + last
    judged = [(n, ok, public,
               msg if not msg.startswith("no result") or not why else f"no result: {stopped}")
              for n, ok, msg, public in judged]
    passed = sum(ok for _, ok, _, _ in judged)
    return {"part": name, "points": PARTS[name].points,
            "score": PARTS[name].points * passed / max(len(cases), 1), "passed": passed,
            "run": len(cases), "seconds": time.perf_counter() - start, "cases": judged,
            "output": stopped if why else ""}


def grade(root=".", parts=None, *, files=None, expected=None, jobs=JOBS, timeout=PART_TIMEOUT,
          deadline=None, own_process=False):
    """Grade `parts` (default: the blank parts root/assignment.json names, else all) of the package
    at root, with `files` {relative path: bytes} written over it (None: root's own
    files are the student's).
    own_process: this process only grades (the autograder), so every process left
    behind is killed."""
    root = Path(root).resolve()
    if parts is None:
        listed = root / "assignment.json"
        parts = json.loads(listed.read_text())["parts"] if listed.is_file() else list(PARTS)
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise SystemExit(f"grade: unknown parts {unknown} (known: {', '.join(PARTS)})")
    expected = load_expected(root, parts) if expected is None else expected
    sandbox.become_subreaper()
    drop, trusted, start = sandbox.can_drop(), sandbox.fingerprint(root), time.monotonic()
    end = start + (deadline or float("inf"))

    def one(part):
        return grade_part(root, part, files or {}, expected, min(timeout, end - time.monotonic()),
                          trusted, drop, own_process)

    try:
        with ThreadPoolExecutor(max(1, jobs)) as pool:
            results = list(pool.map(one, parts))
    finally:
        sandbox.sweep(own_process)  # nothing the children started survives to write after us
        if drop:
            sandbox.kill_user()
    return {"parts": results, "seconds": time.monotonic() - start, "unprivileged": drop,
            "deadline": deadline, "timeout": timeout}


def _hint(result):
    """The first failure message of a part (e.g. its NotImplementedError)."""
    failed = [msg for _, ok, _, msg in result["cases"] if not ok]
    return (failed[0].splitlines() or [""])[0] if failed else ""


def table(results):
    """The per-part score table, then the failed cases by name, as text."""
    rows = [f"{'part':<10} {'cases':>9} {'score':>13} {'time':>5}  first failure"]
    for r in results["parts"]:
        rows.append(f"{r['part']:<10} {r['passed']:>4}/{r['run']:<4} {r['score']:>6.1f} / "
                    f"{r['points']:<4}{r['seconds']:>4.0f} s  {_hint(r)[:80]}")
    total = sum(r["score"] for r in results["parts"])
    top = sum(r["points"] for r in results["parts"])
    rows.append(f"{'total':<10} {'':>9} {total:>6.1f} / {top:<4}{results['seconds']:>4.0f} s  "
                f"({100 * total / max(top, 1):.1f}%)")
    failed = [f"  {r['part']}: {n}" + ("" if public else " (hidden)")
              for r in results["parts"] for n, ok, public, _ in r["cases"] if not ok]
    return "\n".join(rows + (["failed cases:", *failed] if failed else []))


def gradescope(results, note=""):
    """Gradescope's results.json object: one entry per case (each part's entries
    sum to its points)."""
    tests = []
    for r in results["parts"]:
        share = r["points"] / max(r["run"], 1)
        for name, ok, public, message in r["cases"]:
            tests.append({"name": f"{r['part']}: {name}" + ("" if public else " (hidden)"),
                          "score": round(share if ok else 0.0, 6), "max_score": round(share, 6),
                          "output": message, "visibility": "visible"})
    return {"score": round(sum(r["score"] for r in results["parts"]), 4),
            "execution_time": round(results["seconds"]),
            "output": (note + "\n\n" if note else "") + table(results), "tests": tests,
            "visibility": "visible", "stdout_visibility": "hidden"}


def report(results, json_path=None, note=""):
    """The table; with json_path, also write Gradescope's results.json there (atomically)."""
    if json_path:
        path = Path(json_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(gradescope(results, note), indent=1) + "\n")
        tmp.replace(path)
    return table(results)
