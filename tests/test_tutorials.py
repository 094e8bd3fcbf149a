"""Tests for tutorials/*.ipynb: every notebook re-executes from scratch without a cell error.

Every `tutorials/*.ipynb` is picked up automatically (a new notebook is tested as soon as it
exists). Each runs top to bottom in a fresh `python3` Jupyter kernel (nbclient, 600 s per cell)
with tutorials/ as the working directory; an exception in any cell fails its test. Outputs are not
compared: sampled text and timings differ between machines, and the notebooks assert nothing about
learning outcomes, so they cannot flake.

Environment given to the kernels (they inherit os.environ):
  NANO_FORKRL_TUTORIAL_FAST=1  notebooks that train (08, 09, 10) read it and run fewer steps on
                               fewer problems. The outputs saved in the notebooks come from full
                               runs. Export NANO_FORKRL_TUTORIAL_FAST=0 to test those.
  NANO_FORKRL_CACHE            where the tiny model's warm start lives: $NANO_FORKRL_CACHE if set,
                               else the default ~/.cache/nano_forkrl. A session fixture builds it
                               once (about a minute on 2 cores, only if missing) before the first
                               kernel starts, so no notebook builds it and no two kernels race to
                               build it.
Also checked without a kernel: every relative link in the notebooks' markdown points to an
existing file, a link to a line of a module (`[`name`](../nano_forkrl/x.py#L12)`) still points at
the line defining `name`, and tutorials/README.md lists every notebook. When a module changes and
line links go stale, `python tests/test_tutorials.py --fix-links` moves each one to the line that
now defines its name.
"""
import json
import os
import re
from pathlib import Path

import pytest

TUTORIALS = Path(__file__).resolve().parents[1] / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("*.ipynb"))
LINK = re.compile(r"\[([^\]]*)\]\((\.\./[^)#\s]+)(?:#L(\d+))?\)")


def _markdown(path):
    cells = json.loads(path.read_text())["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]


def _definition_lines(file, ident):
    """1-based lines of `file` that define ident: def/class (also indented) or a module-level
    assignment."""
    pattern = re.compile(rf"^\s*(def|class)\s+{ident}\b|^{ident}\s*[:=]")
    return [i for i, s in enumerate(file.read_text().splitlines(), 1) if pattern.search(s)]


@pytest.fixture(scope="session")
def tutorial_env():
    """Fast mode and one shared, pre-built tiny-model cache for every kernel."""
    from nano_forkrl.tasks.tiny import load_tiny

    cache = os.environ.get("NANO_FORKRL_CACHE") or str(Path.home() / ".cache" / "nano_forkrl")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NANO_FORKRL_CACHE", cache)
        mp.setenv("NANO_FORKRL_TUTORIAL_FAST", os.environ.get("NANO_FORKRL_TUTORIAL_FAST", "1"))
        load_tiny()  # builds the warm start if it is missing; the kernels then only load it
        yield cache


def test_the_tutorials_exist():
    assert len(NOTEBOOKS) >= 8, f"expected the numbered notebooks in {TUTORIALS}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tutorial_env):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     record_timing=False,
                                     resources={"metadata": {"path": str(TUTORIALS)}})
    # raises CellExecutionError (with the cell and its traceback) on any error
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_links_point_at_what_they_name(path):
    for text in _markdown(path):
        for name, target, line in LINK.findall(text):
            file = (TUTORIALS / target).resolve()
            assert file.is_file(), f"{path.name}: link to missing file {target}"
            if not line:
                continue
            n_lines = len(file.read_text().splitlines())
            assert int(line) <= n_lines, (
                f"{path.name}: {target}#L{line} is past the end of the file")
            ident = name.strip("`")
            if name.startswith("`") and ident.isidentifier():
                found = _definition_lines(file, ident)
                assert int(line) in found, (
                    f"{path.name}: {target}#L{line} should point at `{ident}`, defined at "
                    f"line(s) {found}; run `python tests/test_tutorials.py --fix-links`")


def test_readme_lists_every_notebook():
    readme = (TUTORIALS / "README.md").read_text()
    missing = [p.name for p in NOTEBOOKS if p.name not in readme]
    assert not missing, f"tutorials/README.md does not list {missing}"


def fix_links():
    """Point every [`name`](../x.py#Lnn) link at the line that now defines name (outputs are left
    untouched)."""
    import nbformat

    def fixed(match):
        name, target, line = match.groups()
        ident, file = name.strip("`"), (TUTORIALS / target).resolve()
        names_a_line = line and name.startswith("`") and file.is_file()
        found = _definition_lines(file, ident) if names_a_line else []
        if found and int(line) not in found:
            return f"[{name}]({target}#L{found[0]})"
        return match.group(0)

    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        changed = False
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                new = LINK.sub(fixed, cell.source)
                changed |= new != cell.source
                cell.source = new
        if changed:
            nbformat.write(nb, path)
            print(f"updated links in {path.name}")


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["--fix-links"]:
        raise SystemExit("usage: python tests/test_tutorials.py --fix-links"
                         "   (or run it with pytest)")
    fix_links()
