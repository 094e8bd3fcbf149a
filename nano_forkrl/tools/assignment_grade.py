"""Grade a copy of the repository part by part: `python -m nano_forkrl.tools.assignment grade [DIR]`.

Each part's tests (assignment_parts.PARTS) run in a pytest process of their own, `jobs` at a time, with a time
limit: a syntax error, import error, crash or endless loop in one part costs that part its points, no other.
The outcome of each test comes from pytest's junit xml. A part scores points * passed / run (skipped tests do
not count; a part none of whose tests ran scores 0). The tests of a part that is still blank fail with its
NotImplementedError message ("entropy: see tutorials/05_entropy.ipynb"), shown as the part's first failure.

`report` prints the table and can write Gradescope's results.json: one entry per test case {"name",
"score", "max_score", "output"} (a part's entries sum to its points), the total "score", "execution_time",
and the table as "output".
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from nano_forkrl.tools.assignment_parts import PARTS


def _cases(xml_path):
    """[(test name, passed, skipped, message)] from a junit xml file (empty if pytest wrote none)."""
    if not Path(xml_path).is_file() or Path(xml_path).stat().st_size == 0:
        return []
    cases = []
    for case in ET.parse(xml_path).getroot().iter("testcase"):
        bad = case.find("failure") if case.find("failure") is not None else case.find("error")
        skipped = case.find("skipped") is not None and bad is None
        text = "" if bad is None else (bad.get("message") or bad.text or "")
        name = f"{case.get('classname', '')}::{case.get('name', '')}".lstrip(":")
        first = (text.strip().splitlines() or [""])[0][:500]
        cases.append((name, bad is None and not skipped, skipped, first))
    return cases


def grade_part(root, name, timeout=300.0):
    """{"part", "points", "score", "passed", "run", "seconds", "cases": [(name, passed, skipped, message)],
    "output" (pytest's last lines when no test ran)}."""
    part = PARTS[name]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.setdefault("OMP_NUM_THREADS", "1")  # parts run side by side: no oversubscribed torch threads
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "junit.xml"
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={xml}",
               "-o", "junit_family=xunit1", "--rootdir", str(root), *part.tests]
        try:
            done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
            output, cases = (done.stdout + done.stderr)[-2000:], _cases(xml)
        except subprocess.TimeoutExpired:
            output, cases = f"{name}: the tests ran past {timeout:.0f} s (an endless loop?)", []
    counted = [c for c in cases if not c[2]]
    passed = sum(c[1] for c in counted)
    score = part.points * passed / len(counted) if counted else 0.0
    return {"part": name, "points": part.points, "score": score, "passed": passed, "run": len(counted),
            "seconds": time.perf_counter() - start, "cases": cases, "output": output if not counted else ""}


def grade(root=".", parts=None, *, jobs=2, timeout=300.0):
    """Grade `parts` of the copy at root (default: the blank parts root/assignment.json names, else all)."""
    root = Path(root).resolve()
    if parts is None:
        listed = root / "assignment.json"
        parts = json.loads(listed.read_text())["parts"] if listed.is_file() else list(PARTS)
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise SystemExit(f"grade: unknown parts {unknown} (known: {', '.join(PARTS)})")
    start = time.perf_counter()
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        results = list(pool.map(lambda p: grade_part(root, p, timeout), parts))
    return {"parts": results, "seconds": time.perf_counter() - start}


def _hint(result):
    """The first failure message of a part (e.g. its NotImplementedError), or why nothing ran."""
    failed = [c[3] for c in result["cases"] if not c[1] and not c[2]]
    if failed:
        return failed[0]
    if not result["run"]:
        lines = [s for s in result["output"].splitlines() if s.strip()]
        return (lines[-1] if lines else "no test ran")[:100]
    return ""


def table(results):
    """The per-part score table, as text."""
    rows = [f"{'part':<10} {'tests':>9} {'score':>13} {'time':>5}  first failure"]
    for r in results["parts"]:
        rows.append(f"{r['part']:<10} {r['passed']:>4}/{r['run']:<4} {r['score']:>6.1f} / {r['points']:<4}"
                    f"{r['seconds']:>4.0f} s  {_hint(r)[:80]}")
    total, top = sum(r["score"] for r in results["parts"]), sum(r["points"] for r in results["parts"])
    rows.append(f"{'total':<10} {'':>9} {total:>6.1f} / {top:<4}{results['seconds']:>4.0f} s  "
                f"({100 * total / max(top, 1):.1f}%)")
    return "\n".join(rows)


def gradescope(results):
    """Gradescope's results.json object: one entry per test case; each part's entries sum to its points."""
    tests = []
    for r in results["parts"]:
        counted = [c for c in r["cases"] if not c[2]]
        if not counted:
            tests.append({"name": f"{r['part']}: no test ran", "score": 0.0,
                          "max_score": float(r["points"]), "output": r["output"]})
        for name, passed, _, message in counted:
            share = r["points"] / len(counted)
            tests.append({"name": f"{r['part']}: {name}", "score": share if passed else 0.0,
                          "max_score": share, "output": message})
    return {"score": round(sum(r["score"] for r in results["parts"]), 4),
            "execution_time": round(results["seconds"]), "output": table(results), "tests": tests}


def report(results, json_path=None):
    """The table; with json_path, also write Gradescope's results.json there."""
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(gradescope(results), indent=1) + "\n")
    return table(results)
