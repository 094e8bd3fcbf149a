"""Tests for nano_forkrl/tasks/data.py: loading problems and the shifted, padded token batches (the
prompt templates it re-exports: tests/tasks/test_prompts.py)."""
import hashlib
import json
import sys
import types
from pathlib import Path

import pytest
import torch

from nano_forkrl.tasks import data
from nano_forkrl.tasks import prompts
from nano_forkrl.tasks.data import (
    TEMPLATES, VENDORED, DataError, collate_rollouts, format_prompt, load_problems,
)

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
COUNTS = {"aime24": 30, "aime25": 30, "amc23": 40, "math500": 500, "gsm8k": 1319}


def write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows),
                    encoding="utf-8")
    return path


def write_parquet(path, rows):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


# ---------------------------------------------------------------- vendored eval sets

@pytest.mark.parametrize("name", sorted(COUNTS))
def test_vendored_set_loads_with_documented_row_count(name):
    problems = load_problems(name)
    assert len(problems) == COUNTS[name]
    assert len({p["id"] for p in problems}) == len(problems)
    for p in problems:
        assert set(p) == {"id", "problem", "answer"}
        assert all(isinstance(v, str) and v and v == v.strip() for v in p.values())


def test_vendored_names_are_exactly_the_documented_five_and_found_next_to_the_module(tmp_path, monkeypatch):
    assert set(VENDORED) == set(COUNTS)
    assert data.EVALSETS_DIR == Path(data.__file__).parent / "evalsets"
    monkeypatch.chdir(tmp_path)  # the lookup must not depend on the working directory
    first = load_problems("aime24")[0]
    assert (first["id"], first["answer"]) == ("2024-I-1", "204") and first["problem"].startswith("Every morning Aya")
    assert load_problems("aime25")[0]["answer"] == "70"
    assert load_problems("gsm8k")[0]["answer"] == "18"
    provenance = (data.EVALSETS_DIR / "PROVENANCE.md").read_text(encoding="utf-8")
    for name in [*COUNTS, "olympiadbench", "minerva_math", "byte copies"]:
        assert name in provenance
    for name in COUNTS:
        digest = hashlib.sha256((data.EVALSETS_DIR / f"{name}.jsonl").read_bytes()).hexdigest()
        assert digest in provenance, f"PROVENANCE.md does not list the sha256 of {name}.jsonl"


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_vendored_files_are_byte_copies_of_shared(name):
    shared = SHARED / "eval" / name / "test.jsonl"
    if not shared.exists():
        pytest.skip(f"{shared} not present (only in the dev workplace)")
    assert (data.EVALSETS_DIR / f"{name}.jsonl").read_bytes() == shared.read_bytes()


def test_real_train_sets_when_present():
    gsm8k, math = SHARED / "train" / "gsm8k", SHARED / "train" / "math" / "train.jsonl"
    if not (gsm8k.is_dir() and math.exists()):
        pytest.skip("../shared/data/train not present (only in the dev workplace)")
    rows = load_problems(gsm8k)
    assert len(rows) == 7473  # 3,737 + 3,736 in two shards, read in sorted order
    assert rows[0]["id"] == "gsm8k-train-00000" and rows[-1]["id"] == "gsm8k-train-07472"
    assert rows[0]["answer"] == "72"
    assert len(load_problems(math)) == 7470
    # not vendored: by path
    assert len(load_problems(SHARED / "eval" / "olympiadbench" / "test.jsonl")) == 675


# ---------------------------------------------------------------- layouts

def test_our_layout_ids_and_answer_conversion(tmp_path):
    f = write_jsonl(tmp_path / "mine.jsonl", [
        {"id": "a", "problem": " 1+1? ", "answer": " 2 "},
        {"problem": "AIME style", "answer": 25},  # int answer, no id -> "<stem>-<line>"
        {"idx": 7, "question": "Qwen style", "answer": 27.0},  # float that is an integer -> "27"
        {"unique_id": "test/x.json", "problem": "p", "answer": 0.5},
    ])
    assert load_problems(f) == [
        {"id": "a", "problem": "1+1?", "answer": "2"},
        {"id": "mine-2", "problem": "AIME style", "answer": "25"},
        {"id": "7", "problem": "Qwen style", "answer": "27"},
        {"id": "test/x.json", "problem": "p", "answer": "0.5"},
    ]


def test_gsm8k_raw_layout(tmp_path):
    f = write_jsonl(tmp_path / "gsm.jsonl", [
        {"question": "Q1", "answer": "48/2 = <<48/2=24>>24\n48+24 = <<48+24=72>>72\n#### 72"},
        {"question": "Q2", "answer": "step\n#### 1,080"},
    ])
    assert load_problems(f) == [{"id": "gsm-1", "problem": "Q1", "answer": "72"},
                                {"id": "gsm-2", "problem": "Q2", "answer": "1080"}]


def test_math_raw_layout_takes_last_boxed_with_nested_braces(tmp_path):
    f = write_jsonl(tmp_path / "math.jsonl", [
        {"problem": "P1", "solution": "First $\\boxed{1}$ then $\\boxed{\\frac{1}{2}}$.",
         "level": "Level 3"},
        {"problem": "P2", "solution": "So $x \\in \\boxed{\\{1,2\\}}$"},
    ])
    assert [p["answer"] for p in load_problems(f)] == ["\\frac{1}{2}", "\\{1,2\\}"]
    assert data.boxed_answer("no box here") is None
    assert data.boxed_answer("\\boxed{unclosed") is None


def test_dapo_layout_jsonl_and_parquet(tmp_path):
    rows = [{"data_source": "math_dapo",
             "prompt": [{"role": "user", "content": "Solve: what is 3*4?"}],
             "ability": "MATH",
             "reward_model": {"ground_truth": "12", "style": "rule-lighteval/MATH_v2"},
             "extra_info": {"index": "9a9b6eb4-a1cb-49d1-8c1e-62eaf2f74079"}},
            {"data_source": "math_dapo",
             "prompt": [{"role": "user", "content": "Solve the following math problem step by step. The last line "
                         "of your response should be of the form Answer: $Answer.\n\nSecond\n\nRemember to put your "
                         # DAPO's wrapper: dropped, our template asks
                         "answer on its own line after \"Answer:\"."}],
             "ability": "MATH",
             "reward_model": {"ground_truth": "-3", "style": "rule-lighteval/MATH_v2"},
             "extra_info": {"index": "0001"}}]
    expected = [{"id": "9a9b6eb4-a1cb-49d1-8c1e-62eaf2f74079", "problem": "Solve: what is 3*4?",
                 "answer": "12"},
                {"id": "0001", "problem": "Second", "answer": "-3"}]
    assert load_problems(write_jsonl(tmp_path / "dapo.jsonl", rows)) == expected
    assert load_problems(write_parquet(tmp_path / "dapo.parquet", rows)) == expected


def test_parquet_round_trip_equals_jsonl(tmp_path):
    rows = [{"id": f"r{i}", "problem": f"problem {i}", "answer": str(i * i)} for i in range(5)]
    assert load_problems(write_parquet(tmp_path / "x.parquet", rows)) == load_problems(
        write_jsonl(tmp_path / "x.jsonl", rows)) == rows
    no_ids = write_parquet(tmp_path / "noid.parquet", [{"question": "q", "answer": 3}])
    assert load_problems(no_ids) == [{"id": "noid-1", "problem": "q", "answer": "3"}]


def test_folder_reads_all_shards_in_sorted_order(tmp_path):
    write_jsonl(tmp_path / "train-00001-of-00002.jsonl", [{"problem": "c", "answer": "3"}])
    write_jsonl(tmp_path / "train-00000-of-00002.jsonl", [{"problem": "a", "answer": "1"},
                                                          {"problem": "b", "answer": "2"}])
    write_parquet(tmp_path / "z-extra.parquet", [{"problem": "d", "answer": "4"}])
    (tmp_path / "README.md").write_text("not data")
    problems = load_problems(tmp_path)
    assert [p["problem"] for p in problems] == ["a", "b", "c", "d"]
    assert [p["id"] for p in problems] == ["train-00000-of-00002-1", "train-00000-of-00002-2",
                                           "train-00001-of-00002-1", "z-extra-1"]
    assert load_problems(str(tmp_path)) == problems


def test_limit_takes_the_first_rows_and_stops_reading(tmp_path):
    f = write_jsonl(tmp_path / "x.jsonl",
                    [{"problem": f"p{i}", "answer": str(i)} for i in range(4)] + ["{bad"])
    assert [p["answer"] for p in load_problems(f, limit=2)] == ["0", "1"]
    assert load_problems(f, limit=0) == []
    assert len(load_problems("math500", limit=10)) == 10
    assert load_problems("gsm8k", limit=5) == load_problems("gsm8k")[:5]
    with pytest.raises(DataError, match="line 5"):  # without a limit the bad last line is reached
        load_problems(f)


def test_blank_lines_are_skipped_but_line_numbers_stay_physical(tmp_path):
    f = write_jsonl(tmp_path / "b.jsonl",
                    [{"problem": "a", "answer": "1"}, "", {"problem": "b", "answer": "2"}])
    assert [p["id"] for p in load_problems(f)] == ["b-1", "b-3"]


# ---------------------------------------------------------------- bad input fails loudly

@pytest.mark.parametrize("bad_row, message", [
    ("{not json", "bad JSON"),
    ('[1, 2, 3]', "expected a JSON object"),
    ('"a string"', "expected a JSON object"),
    ({"problem": "p"}, "missing answer"),
    ({"problem": "p", "answer": None}, "missing answer"),
    ({"problem": "p", "answer": "  "}, "empty answer"),
    ({"problem": "p", "answer": ""}, "empty answer"),
    ({"answer": "1"}, "missing problem"),
    ({"problem": 5, "answer": "1"}, "missing problem"),
    ({"problem": " ", "answer": "1"}, "empty problem"),
    ({"problem": "p", "answer": [1, 2]}, "answer must be a string or a number"),
    ({"problem": "p", "solution": "no box"}, "missing answer"),
    ({"prompt": [{"role": "system", "content": "s"}], "reward_model": {"ground_truth": "1"}},
     "missing problem"),
])
def test_malformed_row_names_file_and_line(tmp_path, bad_row, message):
    f = write_jsonl(tmp_path / "broken.jsonl",
                    [{"problem": "ok", "answer": "1"}, {"problem": "ok", "answer": "2"}, bad_row])
    with pytest.raises(DataError) as err:
        load_problems(f)
    assert str(f) in str(err.value) and "broken.jsonl line 3" in str(err.value)
    assert message in str(err.value)
    assert isinstance(err.value, ValueError)


# ---------------------------------------------------------------- rows that cannot be judged

ZW = "\u200b"  # zero-width space: invisible, and not whitespace to str.strip()


@pytest.mark.parametrize("bad_row, message", [
    ('{"problem": "p", "answer": NaN}', "answer nan is not a finite number"),
    ('{"problem": "p", "answer": Infinity}', "answer inf is not a finite number"),
    ('{"problem": "p", "answer": -Infinity}', "answer -inf is not a finite number"),
    ('{"problem": "p", "reward_model": {"ground_truth": NaN}}',
     "answer nan is not a finite number"),
    ('{"problem": "p", "answer": true}', "answer must be a string or a number, got bool"),
    ('{"problem": "p", "answer": false}', "answer must be a string or a number, got bool"),
    ('{"problem": "p", "answer": 1e30}', "answer 1e+30 is not exactly the integer a float holds "
                                          "(1000000000000000019884624838656)"),
    ('{"problem": "p", "answer": 1e400}',
     "answer 1e400 cannot be held by a float as written (it would read as inf)"),
    ('{"problem": "p", "answer": 2.0000000000000001}',
     "answer 2.0000000000000001 cannot be held by a float"),
    ('{"problem": "p", "answer": 0.1000000000000000001}',
     "answer 0.1000000000000000001 cannot be held"),
    ({"problem": "p", "answer": "\\boxed{}"}, "empty answer ('\\\\boxed{}' normalises to nothing)"),
    ({"problem": "p", "answer": "\\boxed{ }"}, "empty answer"),
    ({"problem": "p", "answer": "$\\text{}$"}, "empty answer"),
    ({"problem": "p", "answer": ZW}, "empty answer"),
    ({"problem": "p", "answer": f" {ZW}\ufeff\u2060 "}, "empty answer"),
    ({"problem": "p", "answer": "\\(\\)"}, "empty answer"),
    ({"problem": "p", "reward_model": {"ground_truth": "\\boxed{}"}}, "empty answer"),
    ({"problem": "p", "solution": f"So $\\boxed{{{ZW}}}$."}, "empty answer"),  # MATH layout
    ({"problem": "p", "solution": "So $\\boxed{\\text{}}$."}, "empty answer"),
    ({"problem": "p", "answer": "1" * 1001}, "answer is 1001 characters long"),
    ({"problem": ZW, "answer": "1"}, "empty problem"),
    ({"problem": f" {ZW}\n\u200c\u200d\ufeff\t", "answer": "1"}, "empty problem"),
    ({"question": "\x00", "answer": "1"}, "empty problem"),
    ({"prompt": [{"role": "user", "content": ZW}], "reward_model": {"ground_truth": "1"}},
     "empty problem"),
])
def test_a_row_that_cannot_be_judged_names_file_and_line(tmp_path, bad_row, message):
    f = write_jsonl(tmp_path / "broken.jsonl", [{"problem": "ok", "answer": "1"}, bad_row])
    with pytest.raises(DataError) as err:
        load_problems(f)
    assert "broken.jsonl line 2: " in str(err.value) and message in str(err.value)


@pytest.mark.parametrize("value, expected", [
    ("42", "42"), ("-7", "-7"), ("123456789012345678901234567890", "123456789012345678901234567890"),  # exact
    # integers a float holds
    ("27.0", "27"), ("-0.0", "0"), ("1E5", "100000"), ("1e16", "10000000000000000"),
    ("9007199254740992.0", "9007199254740992"),  # 2^53
    ("0.5", "0.5"), ("0.1", "0.1"), ("2.75", "2.75"), ("-1.25", "-1.25"), ("0.10", "0.1"),
    ("1.5e-7", "1.5e-07"),  # the decimal Python prints, which reads back as the number written
])
def test_a_number_answer_becomes_the_decimal_it_was_written_as(tmp_path, value, expected):
    f = write_jsonl(tmp_path / "n.jsonl", [f'{{"problem": "p", "answer": {value}}}'])
    assert load_problems(f)[0]["answer"] == expected


def test_answers_and_problems_that_only_look_odd_are_kept(tmp_path):
    # visible text around the invisible one
    rows = [{"problem": f"{ZW}What is 1+1?", "answer": "0"},
            {"problem": "p", "answer": "\\boxed{0}"}, {"problem": "p", "answer": "\\emptyset"},
            # a string is as written
            {"problem": "p", "answer": "1" * 1000}, {"problem": "p", "answer": "nan"}]
    assert [p["answer"] for p in load_problems(write_jsonl(tmp_path / "ok.jsonl", rows))] == [
        "0", "\\boxed{0}", "\\emptyset", "1" * 1000, "nan"]


@pytest.mark.parametrize("answers, message", [
    ([1.0, float("nan")], "bad.parquet row 2: answer nan is not a finite number"),
    ([1.0, float("inf")], "bad.parquet row 2: answer inf is not a finite number"),
    ([True, False], "bad.parquet row 1: answer must be a string or a number, got bool"),
    ([1.0, 2.0**60], "bad.parquet row 2: answer 1.152921504606847e+18 is not exactly the integer"),
    (["1", "\\boxed{}"], "bad.parquet row 2: empty answer"),
    (["1", ZW], "bad.parquet row 2: empty answer"),
])
def test_a_parquet_row_that_cannot_be_judged_names_file_and_row(tmp_path, answers, message):
    f = write_parquet(tmp_path / "bad.parquet", [{"problem": "p", "answer": a} for a in answers])
    with pytest.raises(DataError, match=message.replace(".", r"\.").replace("+", r"\+")):
        load_problems(f)


def test_a_parquet_float_answer_keeps_its_value(tmp_path):
    f = write_parquet(tmp_path / "f.parquet",
                      [{"problem": "p", "answer": a} for a in (27.0, 0.5, 0.1, 1e16)])
    assert [p["answer"] for p in load_problems(f)] == ["27", "0.5", "0.1", "10000000000000000"]
    f = write_parquet(tmp_path / "zw.parquet",
                      [{"problem": "p", "answer": "1"}, {"problem": ZW, "answer": "2"}])
    with pytest.raises(DataError, match=r"zw\.parquet row 2: empty problem"):
        load_problems(f)


def test_malformed_parquet_row_names_file_and_row(tmp_path):
    f = write_parquet(tmp_path / "bad.parquet",
                      [{"problem": "ok", "answer": "1"}, {"problem": "ok", "answer": ""}])
    with pytest.raises(DataError, match=r"bad\.parquet row 2: empty answer"):
        load_problems(f)


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_empty_file_is_an_error(tmp_path, content):
    f = tmp_path / "empty.jsonl"
    f.write_text(content)
    with pytest.raises(DataError, match="no rows"):
        load_problems(f)


def test_empty_parquet_and_empty_folder_are_errors(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"problem": pa.array([], pa.string()),
                             "answer": pa.array([], pa.string())}),
                   tmp_path / "e.parquet")
    with pytest.raises(DataError, match="no rows"):
        load_problems(tmp_path / "e.parquet")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="no rows"):
        load_problems(tmp_path / "sub")


@pytest.mark.parametrize("source", ["aime2024", "no_such_file.jsonl", "./missing/folder", "x.json"])
def test_unknown_source_lists_the_vendored_names(tmp_path, monkeypatch, source):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.json").write_text("[]")  # an existing file of an unsupported type
    with pytest.raises(DataError) as err:
        load_problems(source)
    assert repr(source) in str(err.value)
    assert all(name in str(err.value) for name in VENDORED)


# ---------------------------------------------------------------- Hugging Face names

def test_hf_name_without_datasets_package_gives_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` raise ImportError
    with pytest.raises(DataError) as err:
        load_problems("BytedTsinghua-SIA/DAPO-Math-17k")
    msg = str(err.value)
    assert "pip install datasets" in msg and "DAPO-Math-17k" in msg and ".parquet" in msg


def test_hf_name_offline_gives_a_clear_error(monkeypatch):
    def load_dataset(*args, **kwargs):
        raise ConnectionError("Couldn't reach the Hub")

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    with pytest.raises(DataError) as err:
        load_problems("openai/gsm8k:main", split="test")
    msg = str(err.value)
    assert "Couldn't reach the Hub" in msg and "'test'" in msg and "load_problems('data.parquet')" in msg


def test_hf_name_loads_rows_with_default_split_train(monkeypatch):
    calls = []

    def load_dataset(repo, config, split):
        calls.append((repo, config, split))
        return [{"question": "q1", "answer": "x\n#### 5"}, {"question": "q2", "answer": "#### 6"}]

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    problems = load_problems("openai/gsm8k:main")
    assert calls == [("openai/gsm8k", "main", "train")]
    assert problems == [{"id": "gsm8k-1", "problem": "q1", "answer": "5"},
                        {"id": "gsm8k-2", "problem": "q2", "answer": "6"}]
    load_problems("owner/name", split="validation", limit=1)
    assert calls[-1] == ("owner/name", None, "validation")


def test_the_templates_are_re_exported_from_prompts():
    assert TEMPLATES is prompts.TEMPLATES and format_prompt is prompts.format_prompt


# ---------------------------------------------------------------- token batches

def test_collate_rollouts_by_hand():
    out = collate_rollouts([[5, 6], [7]], [[8, 9, 10], [11, 12]], pad_id=0)
    # full: [5,6 | 8,9,10] and [7 | 11,12] + [0,0]
    assert out["input_ids"].tolist() == [[5, 6, 8, 9], [7, 11, 12, 0]]
    assert out["labels"].tolist() == [[6, 8, 9, 10], [11, 12, 0, 0]]
    assert out["response_mask"].tolist() == [[False, True, True, True], [True, True, False, False]]
    assert out["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    assert out["attention_mask"].dtype == torch.long and out["response_mask"].dtype == torch.bool


def test_collate_rollouts_edge_cases():
    out = collate_rollouts([(1, 2, 3), torch.tensor([4])], [(), torch.tensor([5, 6])], pad_id=9)
    assert out["input_ids"].tolist() == [[1, 2], [4, 5]]
    assert out["labels"].tolist() == [[2, 3], [5, 6]]
    # an empty response trains nothing
    assert out["response_mask"].tolist() == [[False, False], [True, True]]
    out["labels"][0, 0] = -100  # labels must not alias input_ids
    assert out["input_ids"][0, 1] == 2
    with pytest.raises(ValueError):
        collate_rollouts([[1]], [[2], [3]], pad_id=0)
    with pytest.raises(ValueError):
        collate_rollouts([], [], pad_id=0)


def test_collate_rollouts_brute_force_invariants():
    gen = torch.Generator().manual_seed(0)
    prompts = [torch.randint(2, 50, (int(n),), generator=gen).tolist() for n in torch.randint(1, 6, (8,), generator=gen)]
    responses = [torch.randint(2, 50, (int(n),), generator=gen).tolist() for n in torch.randint(0, 9, (8,), generator=gen)]
    out = collate_rollouts(prompts, responses, pad_id=0)
    width = max(len(p) + len(r) for p, r in zip(prompts, responses))
    assert out["input_ids"].shape == out["labels"].shape == out["response_mask"].shape == (8, width - 1)
    for b, (p, r) in enumerate(zip(prompts, responses)):
        # exactly the response tokens, in order
        assert out["labels"][b][out["response_mask"][b]].tolist() == r
        assert out["attention_mask"][b].sum() == min(len(p) + len(r), width - 1)
        assert torch.equal(out["input_ids"][b, 1:], out["labels"][b, :-1])  # the one-token shift


def test_the_loop_s_held_out_split_of_the_tiny_task_is_validation_disjoint_from_test():
    from nano_forkrl.tasks.arithmetic import split_of

    held_out, test = data.load_split("tiny", data.HELD_OUT), data.load_split("tiny", "test")
    assert data.HELD_OUT == "validation" and len(held_out) == 200 == len(test)
    assert {split_of(p["problem"]) for p in held_out} == {"validation"}
    assert not {p["problem"] for p in held_out} & {p["problem"] for p in test}
