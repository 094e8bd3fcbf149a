"""Tests for nano_forkrl/assignment/student.py: the handout, the stripped references, the upload zip."""
import json
import zipfile

from nano_forkrl.assignment.cli import main
from nano_forkrl.assignment.student import handout, strip, submit


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
    (tmp_path / "nano_forkrl" / "verifier" / "extract.py").write_text('raise NotImplementedError("extract")\n')
    (tmp_path / "nano_forkrl" / "other.py").write_text("")
    files = ["nano_forkrl/loss.py", "nano_forkrl/verifier/extract.py"]
    (tmp_path / "assignment.json").write_text(json.dumps({"files": files}))
    assert submit(tmp_path, tmp_path / "s.zip") == ["nano_forkrl/verifier/extract.py"]
    assert zipfile.ZipFile(tmp_path / "s.zip").namelist() == files
    main(["submit", str(tmp_path), "--out", str(tmp_path / "t.zip")])
    assert "still blank: nano_forkrl/verifier/extract.py" in capsys.readouterr().out
