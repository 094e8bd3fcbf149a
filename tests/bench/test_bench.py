"""bench/cli.py: one run writes every phase with a positive speed; a failing phase is recorded, not raised; the
JSON is on disk after every phase. The measurements themselves: tests/bench/test_rollout_bench.py and
tests/bench/test_update_bench.py."""
import json

import pytest
import torch

from nano_forkrl.bench import cli as bench
from nano_forkrl.engines.torch_sampler import TorchSampler

TINY_ARGS = ["--model", "tiny", "--batches", "2", "--prompt-len", "5", "--new-tokens", "4",
             "--update-shape", "1x32", "--device", "cpu"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    # --grad-ckpt: the CUDA default, exercised here on CPU
    flags = ["--naive-update", "--grad-ckpt", "--peak-tflops", "0.001", "--out", str(out)]
    result = bench.main(TINY_ARGS + flags)
    return result, json.loads(out.read_text())


def test_every_phase_reports_positive_speed(tiny_run):
    result, on_disk = tiny_run
    assert on_disk == json.loads(json.dumps(result, default=str))  # what main returns is what it wrote
    phases = {(p["phase"], p.get("sampler")): p for p in on_disk["phases"]}
    assert set(phases) == {("rollout", "hf"), ("rollout", "torch"), ("rollout", "torch-plain"),
                           ("update", None), ("naive_update", None)}
    for p in phases.values():
        assert "error" not in p, p
        assert p["tok_per_s"] > 0 and p["seconds"] > 0 and p["peak_mem_gb"] > 0
    for kind in ("hf", "torch", "torch-plain"):  # exactly new_tokens per row: nothing stopped early
        rec = phases[("rollout", kind)]
        assert rec["tokens"] == 2 * 4 and rec["warmup_s"] > 0 and "startup_s" in rec
    update = phases[("update", None)]
    assert update["tokens"] == 32 and update["optim_s"] > 0 and update["grad_ckpt"] is True
    assert on_disk["device"] == "cpu" and on_disk["complete"] is True and on_disk["running"] is None
    assert on_disk["model"]["params"] > on_disk["model"]["non_embedding_params"] > 0


def test_mfu_follows_the_flop_formula(tiny_run):
    result, _ = tiny_run
    update = [p for p in result["phases"] if p["phase"] == "update"][0]
    # the hand formula, from tiny.py's config: q k v o projections, q/k-norm, SwiGLU MLP, two norms per layer
    from nano_forkrl.tasks.tiny import build_tiny_tokenizer, tiny_config
    c = tiny_config(len(build_tiny_tokenizer()))
    h, f = c.hidden_size, c.intermediate_size
    q, kv = c.num_attention_heads * c.head_dim, c.num_key_value_heads * c.head_dim
    per_layer = h * q + 2 * h * kv + q * h + 2 * c.head_dim + 3 * h * f + 2 * h
    n = c.num_hidden_layers * per_layer + h  # + final norm
    assert result["model"]["non_embedding_params"] == n
    per_token = 6 * n + 12 * c.num_hidden_layers * q * 32 + 6 * h * c.vocab_size  # T = 32
    assert update["tflops"] == pytest.approx(per_token * 32 / update["seconds"] / 1e12)
    assert update["mfu"] == pytest.approx(update["tflops"] / 0.001)


def test_a_failing_sampler_is_recorded_and_the_run_goes_on(tmp_path, monkeypatch):
    def broken(self, prompts, n=1, max_new_tokens=None):
        raise RuntimeError("sampler exploded")

    monkeypatch.setattr(TorchSampler, "generate", broken)
    out = tmp_path / "b.json"
    result = bench.main(TINY_ARGS + ["--samplers", "torch", "--out", str(out)])
    torch_rec, update = result["phases"]
    assert torch_rec["error"] == "RuntimeError: sampler exploded" and "tok_per_s" not in torch_rec
    assert update["phase"] == "update" and "error" not in update and update["tok_per_s"] > 0  # it went on
    assert torch_rec["peak_mem_gb"] > 0
    assert json.loads(out.read_text())["phases"][0]["error"] == torch_rec["error"]
    assert "sampler exploded" in bench.table(result["phases"])


def test_config_folder_with_the_real_qwen3_tokenizer(tmp_path):
    """The GPU path: --model DIR with config.json + tokenizer files only (here Qwen3-0.6B's, shrunk to 1 small
    layer)."""
    import shutil

    from conftest import SHARED_QWEN3

    if not (SHARED_QWEN3 / "vocab.json").exists():
        pytest.skip(f"real Qwen3 tokenizer not found at {SHARED_QWEN3}")
    for name in ("vocab.json", "merges.txt", "tokenizer_config.json"):
        shutil.copy(SHARED_QWEN3 / name, tmp_path / name)
    config = json.loads((SHARED_QWEN3 / "config.json").read_text())
    config.update(num_hidden_layers=1, hidden_size=32, intermediate_size=64, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=8)
    (tmp_path / "config.json").write_text(json.dumps(config))
    result = bench.main(["--model", str(tmp_path), "--batches", "2", "--prompt-len", "4", "--new-tokens", "3",
                         "--update-shape", "1x16", "--samplers", "hf,torch",
                         "--out", str(tmp_path / "b.json")])
    assert result["model"]["config"]["vocab_size"] == 151_936
    for p in result["phases"]:
        assert "error" not in p and p["tok_per_s"] > 0, p


def test_checkpointing_shrinks_what_backward_keeps(tiny_run, tmp_path):
    """The diagnostic behind saved_gb: with HF's checkpointing only each layer's input is kept for
    backward."""
    with_ckpt = [p for p in tiny_run[0]["phases"] if p["phase"] == "update"][0]
    flags = ["--samplers", "torch", "--no-grad-ckpt", "--out", str(tmp_path / "b.json")]
    without = bench.main(TINY_ARGS + flags)
    without = [p for p in without["phases"] if p["phase"] == "update"][0]
    assert with_ckpt["grad_ckpt"] and not without["grad_ckpt"]
    assert 0 < with_ckpt["saved_gb"] < without["saved_gb"] / 3


def test_the_json_is_written_after_every_phase(tmp_path, monkeypatch):
    """A run killed in a later phase (here: an exception no measurement catches) keeps the finished phases on
    disk, and names the phase it was in; each write holds exactly the phases finished by then."""
    out, seen = tmp_path / "b.json", []
    flush = bench.flush

    def spy(path, result):
        flush(path, result)
        seen.append(([p["phase"] for p in result["phases"]], result["running"], result["complete"]))
        assert json.loads(out.read_text())["phases"] == json.loads(json.dumps(result["phases"], default=str))

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # what a timeout's signal looks like to the rest of the run

    monkeypatch.setattr(bench, "flush", spy)
    monkeypatch.setattr(bench, "bench_update", killed)
    with pytest.raises(KeyboardInterrupt):
        bench.main(TINY_ARGS + ["--batches", "1,2", "--samplers", "torch,hf", "--out", str(out)])
    on_disk = json.loads(out.read_text())
    assert [(p["sampler"], p["batch"]) for p in on_disk["phases"]] == [("torch", 1), ("torch", 2), ("hf", 1),
                                                                       ("hf", 2)]
    assert on_disk["running"] == "update" and on_disk["complete"] is False
    assert "error" not in on_disk["phases"][0]
    assert seen == [([], "rollout torch", False), (["rollout"], "rollout torch", False),
                    (["rollout"] * 2, "rollout torch", False), (["rollout"] * 2, "rollout hf", False),
                    (["rollout"] * 3, "rollout hf", False), (["rollout"] * 4, "rollout hf", False),
                    (["rollout"] * 4, "update", False)]
    assert not (tmp_path / "b.json.tmp").exists()  # written atomically: nothing left beside it


def test_complete_run_and_rollouts_only(tmp_path):
    """--no-update skips the update; at the end the file says complete, with nothing running."""
    out = tmp_path / "b.json"
    result = bench.main(TINY_ARGS + ["--samplers", "torch", "--no-update", "--out", str(out)])
    on_disk = json.loads(out.read_text())
    assert [p["phase"] for p in on_disk["phases"]] == ["rollout"] and on_disk["complete"] is True
    assert on_disk["running"] is None and result["complete"] is True
    only_update = bench.main(TINY_ARGS + ["--samplers", "none", "--out", str(out)])
    assert [p["phase"] for p in only_update["phases"]] == ["update"]


def test_vllm_is_in_the_default_list_on_cuda_only_and_listed_runs_on_cpu(tmp_path, monkeypatch):
    """The default list adds vllm on CUDA only; on CPU an explicit --samplers vllm is measured (here a stub
    rollout: the tiny preset's head_dim 16 is refused by vLLM's CPU attention), and last."""
    calls = []
    monkeypatch.setattr(bench, "bench_rollout", lambda kind, *a, **k: calls.append(kind))
    bench.main(TINY_ARGS + ["--no-update", "--out", str(tmp_path / "a.json")])
    assert calls == ["hf", "torch", "torch-plain"]
    calls.clear()
    bench.main(TINY_ARGS + ["--samplers", "vllm,torch", "--no-update", "--out", str(tmp_path / "b.json")])
    assert calls == ["torch", "vllm"]
    assert "vllm" in bench.SAMPLERS_HELP and "CPU" in bench.SAMPLERS_HELP


def test_loop_phases_run_with_the_loop_flags(tmp_path, monkeypatch):
    """--rl-steps and --eval-runs add the loop's measurements (bench/loop_bench.py), with --preset
    and --loop-flags passed through."""
    calls = []

    def stub(kind):
        return lambda *a: calls.append((kind, *a)) or {"phase": kind, "preset": a[0], "runs": a[1],
                                                       "seconds": 0.5, "peak_mem_gb": 0.1}
    monkeypatch.setattr(bench, "bench_rl_steps", stub("rl_step"))
    monkeypatch.setattr(bench, "bench_eval", stub("evaluation"))
    flags = ["--samplers", "none", "--no-update", "--rl-steps", "5", "--eval-runs", "2",
             "--loop-flags", "--eval-n 50", "--out", str(tmp_path / "b.json")]
    result = bench.main(TINY_ARGS + flags)
    device = torch.device("cpu")
    assert calls == [("rl_step", "tiny", 5, device, ["--eval-n", "50"]),
                     ("evaluation", "tiny", 2, device, ["--eval-n", "50"])]
    assert [p["phase"] for p in result["phases"]] == ["rl_step", "evaluation"]
    assert "tiny x5" in bench.table(result["phases"])
