"""Tests for nano_forkrl/assignment/student.py: the handout, the stripped references, the upload
zip, the tutorials' links and the notebook outputs that quote a solution."""
import json
import zipfile
from pathlib import Path

import pytest

from nano_forkrl.assignment.cli import main
from nano_forkrl.assignment.markers import MarkerError
from nano_forkrl.assignment.student import clear_quotes, handout, relink, strip, submit


def test_strip_removes_functions_with_their_decorators_only():
    text = "import x\n\n\n@dec\ndef a():\n    return 1\n\n\ndef b():\n    return 2\n"
    assert strip(text, ("a",)) == "import x\n\n\n\n\ndef b():\n    return 2\n"


def test_handout_lists_the_parts_of_the_build(tmp_path):
    (tmp_path / "tutorials").mkdir()
    (tmp_path / "tutorials" / "HANDOUT.md").write_text("# HW\n\n<!-- PARTS -->\n\nend\n")
    text = handout(tmp_path, ["loss"], ["nano_forkrl/loss.py"])
    assert "| `loss` | [07_update.ipynb](tutorials/07_update.ipynb) | 10 | 1-1.5 h | mask |" in text
    assert "You write in: `nano_forkrl/loss.py`." in text and "<!-- PARTS -->" not in text


def test_submit_zips_exactly_the_listed_files_and_names_the_blank_ones(tmp_path, capsys):
    (tmp_path / "nano_forkrl" / "verifier").mkdir(parents=True)
    (tmp_path / "nano_forkrl" / "loss.py").write_text("def f():\n    return 1\n")
    blank = 'raise NotImplementedError("extract")\n'
    (tmp_path / "nano_forkrl" / "verifier" / "extract.py").write_text(blank)
    (tmp_path / "nano_forkrl" / "other.py").write_text("")
    files = ["nano_forkrl/loss.py", "nano_forkrl/verifier/extract.py"]
    (tmp_path / "assignment.json").write_text(json.dumps({"files": files}))
    assert submit(tmp_path, tmp_path / "s.zip") == ["nano_forkrl/verifier/extract.py"]
    assert zipfile.ZipFile(tmp_path / "s.zip").namelist() == files
    main(["submit", str(tmp_path), "--out", str(tmp_path / "t.zip")])
    assert "still blank: nano_forkrl/verifier/extract.py" in capsys.readouterr().out


def test_relink_points_a_link_at_the_line_that_defines_the_name(tmp_path):
    (tmp_path / "tutorials").mkdir()
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "m.py").write_text("x = 1\n\n\ndef f():\n    pass\n")
    here = Path("tutorials/01.ipynb")
    assert relink("see [`f`](../pkg/m.py#L1)", here, tmp_path) == "see [`f`](../pkg/m.py#L4)"
    assert relink("see [`x`](../pkg/m.py#L1)", here, tmp_path) == "see [`x`](../pkg/m.py#L1)"
    assert relink("see [`f`](../pkg/gone.py#L1)", here, tmp_path) == "see [`f`](../pkg/gone.py#L1)"


def test_clear_quotes_clears_outputs_and_refuses_sources_that_quote_a_solution():
    quote = "total = masked_sum(x, mask)"
    cell = {"cell_type": "code", "source": ["print(1)"], "outputs": [{"text": [quote]}]}
    nb = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    text, cleared = clear_quotes(json.dumps(nb), "01.ipynb", {quote})
    assert cleared == 1 and json.loads(text)["cells"][0]["outputs"] == []
    assert clear_quotes(json.dumps(nb), "01.ipynb", {"other = line_of_code"}) == (json.dumps(nb), 0)
    cell["source"] = [quote]
    with pytest.raises(MarkerError, match="quotes a line of a removed solution"):
        clear_quotes(json.dumps(nb), "01.ipynb", {quote})
