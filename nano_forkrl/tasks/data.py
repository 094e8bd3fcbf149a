"""Problems in, token batches out.

1. `load_problems` reads math problems from a vendored eval set, a JSONL or parquet file, a folder
   of shards or a Hugging Face dataset, and maps every known layout to {"id", "problem", "answer"}
   (answers are strings). A malformed row raises `DataError` naming the file and line; nothing is
   dropped silently. So does a row that cannot be judged: a problem with nothing visible (only
   whitespace, zero-width or control characters), an answer the verifier normalises to nothing
   (\\boxed{}) or that is longer than it judges (verify.MAX_CHARS), and a number that is not the one
   written: NaN, infinities, true/false, a float whose integer is not the number it prints as (1e30
   holds 1000000000000000019884624838656), a JSON number no float holds as written
   (sources.InexactNumber: 1e400, 2.0000000000000001). An int is kept exactly; a float becomes the
   decimal Python prints for it (27.0 -> "27", 0.5 -> "0.5").
2. `format_prompt` wraps a problem in one of the prompt `TEMPLATES` (tasks/prompts.py).
3. `collate_rollouts` builds the training batch (CS336's `tokenize_prompt_and_output`:
   `nano_forkrl.cs336`). Each sequence x = prompt + response is right-padded with the pad id to the
   batch max length L, then

       input_ids = x[:, :-1]    labels = x[:, 1:]
       response_mask[b, t] = labels[b, t] is a response token

   so the logits at position t score labels[b, t], the next token. The policy-gradient loss sums
   only where response_mask is True, so prompt and padding tokens get no gradient. Tensors are built
   on the CPU (int64 ids, bool masks); the loop moves them with `.to(device)`, and nothing else
   differs on CUDA.
"""
import math
import re
from decimal import Decimal
from itertools import islice

import torch

from nano_forkrl.utils.errors import DataError
# EVALSETS_DIR, VENDORED, TEMPLATES and format_prompt stay importable from here: callers name the
# vendored sets and the templates through this module
from nano_forkrl.tasks.prompts import TEMPLATES, format_prompt  # noqa: F401
from nano_forkrl.tasks.sources import EVALSETS_DIR, VENDORED, InexactNumber, rows as _rows
from nano_forkrl.tasks.tiny import is_tiny, task_problems
from nano_forkrl.verifier.extract import boxed_answer
from nano_forkrl.verifier.latex import MAX_CHARS, normalize

_DAPO_WRAPPER = re.compile(r"\ASolve the following math problem.*?\n\n"
                           r"|\n\nRemember to put your answer.*\Z", re.S)


def load_problems(source, split=None, limit=None):
    """Return [{"id": str, "problem": str, "answer": str}, ...], the first `limit` rows of `source`.

    source: a vendored name (VENDORED), a .jsonl or .parquet file, a folder (all *.jsonl and
    *.parquet files in it, in sorted order), or a Hugging Face dataset name "owner/name" or
    "owner/name:config" (needs `datasets` and network). `split` is only used for Hugging Face and
    defaults to "train". Blank JSONL lines are skipped.
    """
    rows = islice(_rows(str(source), split), limit)  # stop reading as soon as `limit` rows are in
    problems = [_to_problem(row, where, fallback_id) for row, where, fallback_id in rows]
    if not problems and limit != 0:
        raise DataError(f"{source}: no rows (empty file, or a folder without *.jsonl / *.parquet "
                        "files)")
    return problems


TINY_SIZES = {"train": 20000, "validation": 200, "test": 200}  # drawn when no limit is given
# the split the loop evaluates while it trains (a benchmark or a file is used whole): the embedded
# task's test split is only read at the end (study/main_job.py, study/protocol.py)
HELD_OUT = "validation"


def load_split(source, split, limit=None, seed=0):
    """The problems of a run's data source: "tiny" is the embedded task's `split`
    (nano_forkrl.tasks.tiny, drawn with `seed`), anything else `load_problems(source, limit=limit)`.
    The one place that knows "tiny" is special."""
    if is_tiny(source):
        return task_problems(source, split, limit or TINY_SIZES[split], seed=seed)
    return load_problems(source, limit=limit)


def _to_problem(row, where, fallback_id):
    """Map one raw row (our layout, GSM8K, MATH, DAPO-Math-17k or AIME style) to
    {"id", "problem", "answer"}."""
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
    problem = _first(row, "problem", "question", "prompt")
    # DAPO: a list of chat messages; the problem is the user turn, without DAPO's "Answer:"
    # wrapper (our template asks)
    if isinstance(problem, list):
        problem = next((m.get("content") for m in problem if m.get("role") == "user"), None)
        problem = _DAPO_WRAPPER.sub("", problem) if isinstance(problem, str) else problem
    if not isinstance(problem, str):
        raise DataError(f"{where}: missing problem (need a string 'problem', 'question' or user "
                        "'prompt' message)")
    answer = _first(row, "answer")
    if answer is None and isinstance(row.get("reward_model"), dict):  # DAPO
        answer = row["reward_model"].get("ground_truth")
    # MATH raw: the last \boxed{} of the solution
    if answer is None and isinstance(row.get("solution"), str):
        answer = boxed_answer(row["solution"])
    elif isinstance(answer, str) and "####" in answer:  # GSM8K raw: "... #### 1,080" -> "1080"
        answer = answer.rsplit("####", 1)[1].replace(",", "")
    if answer is None:
        raise DataError(f"{where}: missing answer (need 'answer', 'reward_model.ground_truth' or a "
                        f"'solution' with \\boxed{{}})")
    problem, answer = problem.strip(), _answer_text(answer, where)
    if not _visible(problem):
        raise DataError(f"{where}: empty problem")
    extra = row["extra_info"] if isinstance(row.get("extra_info"), dict) else {}
    # DAPO keeps it in extra_info.index
    row_id = _first({**extra, **row}, "id", "idx", "unique_id", "index")
    row_id = str(fallback_id if row_id is None else row_id)
    return {"id": row_id, "problem": problem, "answer": answer}


def _first(row, *keys):
    return next((row[k] for k in keys if row.get(k) is not None), None)


def _answer_text(answer, where):
    """The gold answer as a string, or DataError when no response could be judged against it."""
    if isinstance(answer, bool) or not isinstance(answer, (str, int, float)):
        raise DataError(f"{where}: answer must be a string or a number, got "
                        f"{type(answer).__name__}")
    numeric = not isinstance(answer, str) or isinstance(answer, InexactNumber)
    text = (_number_text(answer, where) if numeric else answer).strip()
    if not text:
        raise DataError(f"{where}: empty answer")
    if len(text) > MAX_CHARS:  # the verifier calls any longer string "not equal", even to itself
        raise DataError(f"{where}: answer is {len(text)} characters long; the verifier judges at "
                        f"most {MAX_CHARS}")
    # the verifier's rule for what an answer is; it would equal nothing
    if not _visible(normalize(text)):
        raise DataError(f"{where}: empty answer ({text!r} normalises to nothing)")
    return text


def _number_text(x, where):
    """A numeric answer as the decimal written: an int exactly, a float as Python prints it
    (27.0 -> "27")."""
    if isinstance(x, InexactNumber):
        raise DataError(f"{where}: answer {x} cannot be held by a float as written (it would read "
                        f"as {float(x)!r}); write it as a string")
    if isinstance(x, int):
        return str(x)
    if not math.isfinite(x):
        raise DataError(f"{where}: answer {x!r} is not a finite number")
    if not x.is_integer():
        return repr(x)
    text = str(int(x))
    # past 2^53 a float holds a nearby integer, not the one written
    if Decimal(text) != Decimal(repr(x)):
        raise DataError(f"{where}: answer {x!r} is not exactly the integer a float holds ({text}); "
                        "write it as a string or an integer")
    return text


def _visible(text):
    """Whether text shows anything: not only whitespace and zero-width, format or control
    characters."""
    return any(c.isprintable() and not c.isspace() for c in text)


def collate_rollouts(prompt_ids, response_ids, pad_id):
    """The same batch from token ids (what the RL loop has after sampling; re-tokenising text could
    change them).

    Returns input_ids, labels (int64), response_mask (bool) and attention_mask (int64, 1 on the real
    tokens of input_ids), each [B, max_len - 1].
    """
    if len(prompt_ids) != len(response_ids) or not prompt_ids:
        raise ValueError(f"need equally many prompts and responses, got {len(prompt_ids)} and "
                         f"{len(response_ids)}")
    seqs = [[*p, *r] for p, r in zip(prompt_ids, response_ids)]
    full = torch.full((len(seqs), max(map(len, seqs))), pad_id, dtype=torch.long)
    is_response = torch.zeros_like(full, dtype=torch.bool)
    is_real = torch.zeros_like(full, dtype=torch.bool)
    for b, (p, seq) in enumerate(zip(prompt_ids, seqs)):
        full[b, :len(seq)] = torch.tensor(seq, dtype=torch.long)
        is_response[b, len(p):len(seq)] = True
        is_real[b, :len(seq)] = True
    # clone(): input_ids and labels must not share storage, since callers may edit labels in place
    return {"input_ids": full[:, :-1].clone(), "labels": full[:, 1:].clone(),
            "response_mask": is_response[:, 1:].clone(), "attention_mask": is_real[:, :-1].long()}
