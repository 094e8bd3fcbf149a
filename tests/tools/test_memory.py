"""tools/memory.py: the README's table of presets is this command's output, and
--gpu-memory moves it."""
import textwrap
from pathlib import Path

from nano_forkrl.tools.memory import HEADER, main, preset_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_table_is_the_plan():
    """README's presets table is `python -m nano_forkrl.tools.memory`'s output, line for line."""
    assert textwrap.indent(preset_table(), "  ") in README.read_text()  # inside a list item


def test_bigger_gpus_fit_with_fewer_of_them(capsys):
    text = main(["--gpu-memory", "160"])
    assert capsys.readouterr().out == text + "\n"
    rows = text.splitlines()
    assert rows[:2] == HEADER and len(rows) == 2 + 4  # the four qwen3 presets
    need = {row.split(" | ")[0].strip("| "): row.split(" | ")[4] for row in rows[2:]}
    assert need == {"qwen3-0.6b": "1", "qwen3-1.7b": "1", "qwen3-4b": "1", "qwen3-8b": "2"}
