"""Tests for nano_forkrl.study.main_job: a finished run's warm start and final checkpoint on the
test split."""
import json

import torch
from conftest import make_tiny_qwen3

from nano_forkrl.study import main_job
from nano_forkrl.tasks.arithmetic import split_of, tiny_problems
from nano_forkrl.tasks.tiny import build_tiny_tokenizer


def fake_run(folder, model_path):
    """A run folder as train.py leaves it: checkpoint/ (model, tokenizer, trainer_state.pt with the
    run's config) and metrics.jsonl with two evaluations."""
    tok = build_tiny_tokenizer()
    ckpt = folder / "checkpoint"
    make_tiny_qwen3(vocab_size=288, seed=4).save_pretrained(ckpt)
    tok.save_pretrained(ckpt)
    config = dict(model=str(model_path), seed=0, steps=2, lr=1e-4, rho=0.2, mask_mode="top",
                  eval_data="tiny", template="plain", max_new_tokens=6, temperature=1.0, top_p=1.0)
    torch.save({"step": 2, "config": config}, ckpt / "trainer_state.pt")
    evals = [{"step": s, "eval": {"avg@2": a, "k": 2}} for s, a in ((0, 0.25), (2, 0.5))]
    lines = [evals[0], {"step": 1, "loss": 0.1}, {"step": 2, "loss": 0.0}, evals[1]]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return ckpt


def test_the_report_reads_test_problems_and_pairs_start_and_end(tmp_path):
    ckpt = fake_run(tmp_path / "run", tmp_path / "run" / "checkpoint")  # starts where it ends
    out = tmp_path / "main_job.json"
    args = ["--run", str(tmp_path / "run"), "--n", "3", "--k", "2", "--out", str(out)]
    result = main_job.main(args)
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    assert result["problems"] == [p["id"] for p in tiny_problems("test", 3)]
    assert all(split_of(p["problem"]) == "test" for p in tiny_problems("test", 3))
    assert len(result["test_start"]) == 3 and all(0 <= c <= 2 for c in result["test_end"])
    assert result["test_start"] == result["test_end"] and result["rise"][0] == 0  # same model
    assert [list(point) for point in result["held_out"]] == [[0, 0.25], [2, 0.5]]
    assert result["config"]["steps"] == 2 and result["command"].endswith(f"--out {out}")
    assert ckpt.is_dir()


def test_the_start_is_the_run_s_model_and_seed(tmp_path, monkeypatch):
    fake_run(tmp_path / "run", "tiny")
    loaded = []

    def fake_load_policy(name, device, seed=0):
        loaded.append((name, seed))
        return name, "tok"

    counts = {"tiny": [0, 1, 2, 2], str(tmp_path / "run" / "checkpoint"): [2, 1, 2, 2]}
    monkeypatch.setattr(main_job, "load_policy", fake_load_policy)
    monkeypatch.setattr(main_job, "test_counts",
                        lambda model, tok, problems, config, k: counts[model])
    result = main_job.report(tmp_path / "run", n=4, k=2)
    assert loaded == [("tiny", 0), (str(tmp_path / "run" / "checkpoint"), 0)]
    assert result["start"][0] == 5 / 8 and result["end"][0] == 7 / 8
    assert result["rise"][0] == 2 / 8  # (2 - 0) / 2 on the first problem, / 4 problems
