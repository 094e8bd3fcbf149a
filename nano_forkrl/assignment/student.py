"""What the student copy holds for the student: the handout, the public expected
outputs, the upload.

`relink` points the tutorials' links at the definitions in the copy; `clear_quotes` clears a
notebook's outputs that quote a removed solution line (and refuses a source that quotes one);
`handout` fills tutorials/HANDOUT.md (the student's README) with the parts of a build;
`public_expected` is what the solution's code gives on the public graded cases (public.py), which
the copy ships so that `grade` runs them; `strip` leaves out of a test file the functions that would
hand over a solution (a pure-Python reference); `submit` zips the files a student uploads, under
their package paths.
"""
import ast
import functools
import json
import re
import zipfile
from pathlib import Path

from nano_forkrl.assignment.markers import MarkerError
from nano_forkrl.assignment.parts import PARTS

LINK = re.compile(r"\[`?([A-Za-z_]\w*)`?\]\(([^)#\s]+\.py)#L(\d+)\)")


def strip(text, names):
    """text without the top-level functions `names` (decorators included)."""
    lines = text.splitlines(keepends=True)
    for fn in sorted((n for n in ast.parse(text).body if getattr(n, "name", None) in names),
                     key=lambda n: -n.lineno):
        first = min([fn.lineno, *(d.lineno for d in fn.decorator_list)])
        del lines[first - 1:fn.end_lineno]
    return "".join(lines)


def handout(root, parts, files):
    """The student's README: tutorials/HANDOUT.md with this build's parts and files."""
    rows = [f"| `{p}` | [{PARTS[p].tutorial}](tutorials/{PARTS[p].tutorial}) | {PARTS[p].points} | "
            f"{PARTS[p].hours} h | {', '.join(PARTS[p].needs) or '-'} |" for p in parts]
    listing = "\n".join(["| part | read | points | time (estimate) | its tests also run |",
                         "|---|---|---|---|---|", *rows, "",
                         "You write in: " + ", ".join(f"`{f}`" for f in files) + "."])
    return (Path(root) / "tutorials" / "HANDOUT.md").read_text().replace("<!-- PARTS -->", listing)


@functools.lru_cache(maxsize=4)
def solution_outputs(root):
    """The outputs of every case on the code at root, the solution (recorded once per process)."""
    from nano_forkrl.assignment.grade import record

    return record(root)


def public_expected(root):
    """The solution's outputs of the public cases ({} for a repository without graded cases)."""
    from nano_forkrl.assignment.cases import CASES, load

    if not (Path(root) / "nano_forkrl" / "assignment" / "public.py").is_file():
        return {}
    load()
    return {k: v for k, v in solution_outputs(Path(root)).items() if k in CASES and CASES[k].public}


def submit(copy=".", out="submission.zip"):
    """Zip the files a student uploads (assignment.json's, under their package paths) ->
    [files still blank]."""
    copy = Path(copy).resolve()
    files = json.loads((copy / "assignment.json").read_text())["files"]
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for rel in files:
            z.write(copy / rel, rel)
    return [rel for rel in files if "raise NotImplementedError(" in (copy / rel).read_text()]


def relink(text, here, out):
    """Point every [`name`](../x.py#Lnn) link at the line that defines name in the student copy."""
    def fixed(m):
        target = (out / here.parent / m[2]).resolve()
        if not target.is_file():
            return m[0]
        defines = re.compile(rf"^\s*(?:def|class)\s+{m[1]}\b|^{m[1]}\s*[:=]")
        found = [i for i, s in enumerate(target.read_text().splitlines(), 1) if defines.search(s)]
        if not found or int(m[3]) in found:
            return m[0]
        return m[0].replace(f"#L{m[3]})", f"#L{found[0]})")
    return LINK.sub(fixed, text)


def clear_quotes(text, here, quotes):
    """(text, cells cleared): outputs quoting a removed line are cleared; a source
    quoting one is refused."""
    nb, cleared = json.loads(text), 0
    for i, cell in enumerate(nb["cells"]):
        if quotes & {s.strip() for s in "".join(cell["source"]).splitlines()}:
            raise MarkerError(f"{here}: cell {i} quotes a line of a removed solution; rewrite the "
                              "cell")
        shown = json.dumps(cell.get("outputs", []), ensure_ascii=False)
        if any(json.dumps(q, ensure_ascii=False)[1:-1] in shown for q in quotes):
            cell["outputs"], cleared = [], cleared + 1
    if not cleared:
        return text, 0
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n", cleared
