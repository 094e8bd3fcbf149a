"""The homework: a student copy of this repository with the solutions taken out, and its grader.

    python -m nano_forkrl.assignment build OUT [--parts entropy loss ...]    # the student copy
    python -m nano_forkrl.assignment autograder OUT.zip [--parts ...]        # Gradescope's zip
    python -m nano_forkrl.assignment grade [DIR] [--parts ...] [--json results.json]
    python -m nano_forkrl.assignment submit [DIR] [--out submission.zip]    # a student's upload

Solutions are marked inside function bodies by `# BEGIN SOLUTION <part>` / `# END SOLUTION` (the
rules: markers.py; the parts and their tests: parts.py). `build` copies the repository (the
files git tracks or would track, so no .git, caches or runs/), and replaces each region of the
chosen parts (all by default) with `raise NotImplementedError("<part>: see tutorials/<notebook>")`.
Signatures, docstrings, the code around the regions, tests and tutorials stay. The other parts keep
their code (only the markers go), so the loop runs as soon as the parts it needs are written. A
marker it cannot parse stops the build with the file and line. In the copy:
  * assignment.json names the blank parts (`grade` grades those by default), the files
    and functions to write;
  * assignment_expected.json holds the solution's outputs of the public graded cases (public.py);
    the hidden cases (hidden.py), the instructor's page and the tests of this tool are left out,
    and so is the pure-Python reference ranking of tests/test_masking.py (it would be a solution);
  * README.md is the student's handout (tutorials/HANDOUT.md, with the parts of this build listed);
  * tutorial links to module lines (`x.py#L12`) point where the named definitions now are;
  * saved notebook outputs stay: they show results, and no notebook quotes a solution. A cell whose
    outputs quote a line that only a removed solution has gets its outputs cleared; a cell whose
    source quotes one stops the build (rewrite the cell).
`grade` runs each part's graded cases in a process of its own and judges their outputs (grade.py);
`autograder` writes Gradescope's zip (autograder.py); `submit` zips the files a student uploads.
"""
import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from nano_forkrl.assignment.markers import MarkerError, blank, scan
from nano_forkrl.assignment.parts import PARTS
from nano_forkrl.assignment.student import (clear_quotes, handout, public_expected, relink, strip,
                                            submit)

ROOT = Path(__file__).resolve().parents[2]
# never copied (the names from ".device" on: for a folder without git)
SKIP = {".git", "__pycache__", ".pytest_cache", ".ipynb_checkpoints", "runs", ".cache",
        ".benchmarks", ".device", ".gpu", ".whl", ".vllm-parts", "gpu-out", "analysis_out"}
INSTRUCTOR_ONLY = {"nano_forkrl/assignment/hidden.py", "nano_forkrl/assignment/hidden_nn.py",
                   "tutorials/ASSIGNMENT.md", "tutorials/HANDOUT.md"}
# references: solutions
STRIP = {"tests/test_masking.py": ("brute_force", "test_top_matches_brute_force")}
MIN_QUOTE = 12  # shorter solution lines ("k = 1") are no quote of a solution


def _files(root):
    """What a student gets: git's view (tracked + untracked, not ignored), else every file; SKIP
    never."""
    try:
        listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=root,
                                check=True, capture_output=True, text=True).stdout.split("\0")
    except (OSError, subprocess.CalledProcessError):
        listed = [p.relative_to(root).as_posix() for p in root.rglob("*")]
    keep = [f for f in listed if f and not SKIP & set(Path(f).parts) and not f.endswith(".pyc")]
    keep = [f for f in keep if f not in INSTRUCTOR_ONLY and not f.startswith("tests/assignment/")
            and f not in ("assignment.json", "assignment_expected.json")]
    return sorted(f for f in keep if (root / f).is_file())


def build(out, parts=None, root=ROOT):
    """Write the student copy to `out` (new or empty). Returns {"parts", "regions",
    "files", "cleared"}."""
    out, root = Path(out).resolve(), Path(root).resolve()
    if out == root or root in out.parents or (out.exists() and any(out.iterdir())):
        raise SystemExit(f"build: {out} must be a new or empty folder outside {root}")
    found = scan(root)
    present = {part for spans in found.values() for part, *_ in spans}
    parts = list(PARTS) if parts is None else list(dict.fromkeys(parts))
    missing = [p for p in parts if p not in present]
    if missing:
        raise SystemExit(f"build: no solution region of {missing} in {root} (parts: "
                         f"{', '.join(PARTS)})")
    texts, removed, where = {}, [], {}
    for rel, spans in found.items():
        texts[rel], lost = blank((root / rel).read_text(), spans, set(parts))
        removed += lost
        where.update({f"{rel}:{fn}": part for part, _, _, fn in spans if part in parts})
    files, cleared = _files(root), []
    given = {s.strip() for rel in files if rel.endswith(".py")
             for s in (texts.get(rel) or (root / rel).read_text()).splitlines()}
    # lines only a solution has
    quotes = {s for s in removed if s not in given and len(s) >= MIN_QUOTE}
    for rel in files:
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        if rel in texts:
            (out / rel).write_text(texts[rel])
        elif rel in STRIP:  # a test file without its reference solution
            (out / rel).write_text(strip((root / rel).read_text(), STRIP[rel]))
        else:
            shutil.copy2(root / rel, out / rel)
    for rel in (f for f in files if f.endswith((".ipynb", ".md"))):
        text = relink((out / rel).read_text(), Path(rel), out)
        if rel.endswith(".ipynb"):
            text, n = clear_quotes(text, rel, quotes)
            cleared += [rel] * bool(n)
        else:  # a line linking to a page the copy leaves out (the instructor's) goes too
            gone = [f"]({Path(x).name})" for x in INSTRUCTOR_ONLY if x.endswith(".md")]
            text = "".join(s for s in text.splitlines(keepends=True)
                           if not any(g in s for g in gone))
        (out / rel).write_text(text)
    student_files = sorted({f for f, spans in found.items() if any(s[0] in parts for s in spans)})
    listing = {"parts": parts, "files": student_files, "functions": where}
    (out / "assignment.json").write_text(json.dumps(listing, indent=1) + "\n")
    (out / "assignment_expected.json").write_text(json.dumps(public_expected(root)) + "\n")
    if (root / "tutorials" / "HANDOUT.md").is_file():
        (out / "README.md").write_text(handout(root, parts, student_files))
    return {"parts": parts, "regions": len(where), "files": student_files, "cleared": cleared}


def autograder(out_zip, parts=None, root=ROOT):
    """Gradescope's autograder zip for a build of `parts` (autograder.py):
    {"parts", "cases", ...}."""
    from nano_forkrl.assignment.autograder import write_zip

    with tempfile.TemporaryDirectory() as tmp:
        done = build(Path(tmp) / "copy", parts, root=root)
        return {**done, **write_zip(out_zip, Path(tmp) / "copy", root)}


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m nano_forkrl.assignment",
                                 description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="write a student copy")
    b.add_argument("out")
    a = sub.add_parser("autograder",
                       help="write Gradescope's autograder zip (run in the solution repository)")
    a.add_argument("out")
    for p in (b, a):
        p.add_argument("--parts", nargs="+", choices=list(PARTS),
                       help="blank only these parts (default: all)")
    g = sub.add_parser("grade", help="run each part's graded cases and print its score")
    g.add_argument("dir", nargs="?", default=".")
    g.add_argument("--parts", nargs="+", choices=list(PARTS),
                   help="default: the parts assignment.json names, else all")
    g.add_argument("--json", help="write Gradescope's results.json here")
    g.add_argument("--jobs", type=int, default=2, help="parts graded at once (default 2)")
    g.add_argument("--timeout", type=float, default=90, help="seconds per part (default 90)")
    s = sub.add_parser("submit", help="zip the files to upload")
    s.add_argument("dir", nargs="?", default=".")
    s.add_argument("--out", default="submission.zip")
    args = ap.parse_args(argv)
    if args.command == "grade":
        from nano_forkrl.assignment.grade import grade, report

        print(report(grade(args.dir, args.parts, jobs=args.jobs, timeout=args.timeout), args.json))
        return
    if args.command == "submit":
        blank = submit(args.dir, args.out)
        still = f" (still blank: {', '.join(blank)})" if blank else ""
        print(f"{args.out}: upload this file" + still)
        return
    try:
        if args.command == "autograder":
            done = autograder(args.out, args.parts)
            print(f"{args.out}: {len(done['entries'])} files, {done['cases']} graded cases, parts "
                  f"{', '.join(done['parts'])}; upload it as the Gradescope autograder "
                  "(tutorials/ASSIGNMENT.md)")
            return
        done = build(args.out, args.parts)
    except MarkerError as err:
        raise SystemExit(f"build: {err}")
    print(f"student copy in {args.out}: {done['regions']} functions blanked, parts "
          f"{', '.join(done['parts'])}\nstudents write in {', '.join(done['files'])}")
    for rel in done["cleared"]:
        print(f"outputs quoting a solution cleared in {rel}")


if __name__ == "__main__":
    sys.exit(main())
