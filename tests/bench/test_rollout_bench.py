"""rollout_bench.py: error records instead of exceptions, one record per batch size, one sampler built."""
import argparse

import torch
from conftest import make_tiny_qwen3

from nano_forkrl.tasks.tiny import build_tiny_tokenizer
from nano_forkrl.bench import rollout_bench
from nano_forkrl.bench.rollout_bench import bench_rollout, make_sampler, measure

CPU = torch.device("cpu")
ARGS = argparse.Namespace(batches=[1, 3], prompt_len=4, new_tokens=3)


def test_unknown_sampler_is_an_error_record():
    rec = measure({}, CPU, lambda rec: make_sampler("nope", None, None, None))
    assert rec["error"].startswith("ValueError: unknown sampler 'nope': use hf, torch, torch-plain, vllm")
    assert rec["peak_mem_gb"] > 0


def test_one_record_per_batch_size_each_handed_on_as_it_ends():
    tok = build_tiny_tokenizer()
    model = make_tiny_qwen3(vocab_size=len(tok))
    seen = []
    records = bench_rollout("torch-plain", model, tok, ARGS, CPU, on_record=lambda r: seen.append(dict(r)))
    assert seen == records and [r["batch"] for r in records] == [1, 3]
    assert [r["tokens"] for r in records] == [1 * 3, 3 * 3]  # exactly new_tokens per row
    assert "startup_s" in records[0] and "startup_s" not in records[1]  # the sampler is built once
    assert all(r["tok_per_s"] > 0 and "weight_sync_s" not in r for r in records)
    assert all(0 < r["cpu_s"] for r in records)  # this process decoded: it spent CPU time


def test_a_sampler_that_cannot_be_built_is_recorded_once(monkeypatch):
    """A start-up failure (e.g. vLLM refusing the model) is one error record, not one per batch size."""
    def refuse(*args):
        raise RuntimeError("head_dim 16 is not supported")

    monkeypatch.setattr(rollout_bench, "make_sampler", refuse)
    records = bench_rollout("vllm", None, None, ARGS, CPU)
    assert len(records) == 1 and records[0]["error"] == "RuntimeError: head_dim 16 is not supported"


def test_timed_returns_the_result_and_seconds():
    out, seconds = rollout_bench.timed(lambda: 7, CPU)
    assert out == 7 and seconds >= 0
