"""Where problem rows come from: vendored evaluation sets, JSONL and parquet
files, folders, hub names.

`rows(source, split)` yields (raw row, where, fallback id); `where` ("<file> line N" / "row N") is
what error messages name. Every failure to read a source is a `DataError` that names the file (and
line, for JSONL): a missing source, a non-UTF-8 line, bad JSON, an unreadable parquet file, an
unreachable hub dataset. `data.load_problems` maps the rows to problems.

A JSON number with a fraction or an exponent is read as a float only when the float is the number
written (its shortest decimal reads back as that number); otherwise it stays its text, an
`InexactNumber`, so that a gold answer such as 1e400 (inf as a float) or 2.0000000000000001 (2.0) is
refused instead of silently rounded.
"""
import json
from decimal import Decimal
from itertools import chain
from pathlib import Path

from nano_forkrl.utils.errors import DataError

EVALSETS_DIR = Path(__file__).parent / "evalsets"
# byte copies of public evaluation sets, see evalsets/PROVENANCE.md
VENDORED = ("aime24", "aime25", "amc23", "math500", "gsm8k")


class InexactNumber(str):
    """The text of a JSON number that no float holds as written (see the module docstring)."""


def _json_float(text):
    value = float(text)
    return value if Decimal(repr(value)) == Decimal(text) else InexactNumber(text)


def rows(source, split):
    """An iterator of (raw row, "<file> line N" for error messages, fallback id) over every file of
    `source`."""
    path = EVALSETS_DIR / f"{source}.jsonl" if source in VENDORED else Path(source)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".jsonl", ".parquet"))
    elif path.is_file() and path.suffix in (".jsonl", ".parquet"):
        files = [path]
    elif (source.count("/") == 1 and path.suffix not in (".jsonl", ".parquet")
          and source[0] not in "./~"):
        return _hf_rows(source, split or "train")
    else:
        raise DataError(f"unknown data source {source!r}: not a vendored set "
                        f"({', '.join(VENDORED)}), not an existing .jsonl/.parquet file or folder, "
                        f"and not a Hugging Face name 'owner/name'")
    return chain.from_iterable(_parquet_rows(f) if f.suffix == ".parquet" else _jsonl_rows(f)
                               for f in files)


def _jsonl_rows(path):
    try:
        f = open(path, "rb")  # bytes: a decoding error can then name its line
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    with f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                where = f"{path} line {lineno}"
                message = f"not UTF-8 text (byte {e.start + 1} of the line)"
                raise DataError(f"{where}: {message}") from None
            if line.strip():  # a blank line (e.g. a trailing one) holds no row
                try:
                    row = json.loads(line, parse_float=_json_float)
                except json.JSONDecodeError as e:
                    message = f"bad JSON ({e.msg}, column {e.colno})"
                    raise DataError(f"{path} line {lineno}: {message}") from None
                except (ValueError, RecursionError) as e:  # over 4,300 digits, nesting too deep
                    message = f"bad JSON ({type(e).__name__}: {e})"
                    raise DataError(f"{path} line {lineno}: {message}") from None
                yield row, f"{path} line {lineno}", f"{path.stem}-{lineno}"


def _parquet_rows(path):
    import pyarrow  # lazy: only parquet sources need pyarrow
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(path).to_pylist()
    except (pyarrow.ArrowException, OSError) as e:
        raise DataError(f"{path}: not a readable parquet file ({type(e).__name__}: {e})") from None
    return ((row, f"{path} row {i}", f"{path.stem}-{i}") for i, row in enumerate(rows, 1))


def _hf_rows(name, split):
    repo, _, config = name.partition(":")
    hint = (f"On a machine with network, save it once with `datasets.load_dataset({repo!r}, "
            f"{config or None!r}, split={split!r}).to_parquet('data.parquet')` and pass the file "
            "instead: load_problems('data.parquet')")
    try:
        import datasets  # lazy: an optional dependency, only for hub names
    except ImportError:
        raise DataError(f"{name!r} is not a local file or folder, so it was taken as a Hugging "
                        f"Face dataset, but the `datasets` package is not installed (pip install "
                        f"datasets). {hint}") from None
    try:
        ds = datasets.load_dataset(repo, config or None, split=split)
    except Exception as e:  # offline, unknown name, missing config: the way out is the same
        raise DataError(f"could not load Hugging Face dataset {name!r} split {split!r} "
                        f"({type(e).__name__}: {e}). {hint}") from e
    short = repo.split("/")[-1]
    return ((row, f"{name} [{split}] row {i}", f"{short}-{i}") for i, row in enumerate(ds, 1))
