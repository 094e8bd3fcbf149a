"""bench.py: one run writes every phase with a positive speed; a failing phase is recorded, not raised."""
import json

import pytest
import torch
from conftest import make_tiny_qwen3

from nano_forkrl import bench
from nano_forkrl.engines.torch_sampler import TorchSampler

TINY_ARGS = ["--model", "tiny", "--batches", "2", "--prompt-len", "5", "--new-tokens", "4", "--update-shape", "1x32",
             "--device", "cpu"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    # --grad-ckpt: the CUDA default, exercised here on CPU
    result = bench.main(TINY_ARGS + ["--naive-update", "--grad-ckpt", "--peak-tflops", "0.001", "--out", str(out)])
    return result, json.loads(out.read_text())


def test_every_phase_reports_positive_speed(tiny_run):
    result, on_disk = tiny_run
    assert on_disk == json.loads(json.dumps(result, default=str))  # what main returns is what it wrote
    phases = {(p["phase"], p.get("sampler")): p for p in on_disk["phases"]}
    assert set(phases) == {("rollout", "hf"), ("rollout", "torch"), ("rollout", "torch-plain"), ("update", None),
                           ("naive_update", None)}
    for p in phases.values():
        assert "error" not in p, p
        assert p["tok_per_s"] > 0 and p["seconds"] > 0 and p["peak_mem_gb"] > 0
    for kind in ("hf", "torch", "torch-plain"):  # exactly new_tokens per row: nothing stopped early
        rec = phases[("rollout", kind)]
        assert rec["tokens"] == 2 * 4 and rec["warmup_s"] > 0 and "startup_s" in rec
    update = phases[("update", None)]
    assert update["tokens"] == 32 and update["optim_s"] > 0 and update["grad_ckpt"] is True
    assert on_disk["device"] == "cpu" and on_disk["model"]["params"] > on_disk["model"]["non_embedding_params"] > 0


def test_mfu_follows_the_flop_formula(tiny_run):
    result, _ = tiny_run
    update = [p for p in result["phases"] if p["phase"] == "update"][0]
    # the hand formula, from tiny.py's config: q k v o projections, q/k-norm, SwiGLU MLP, two norms per layer
    from nano_forkrl.run.tiny import build_tiny_tokenizer, tiny_config
    c = tiny_config(len(build_tiny_tokenizer()))
    h, q, kv, f = c.hidden_size, c.num_attention_heads * c.head_dim, c.num_key_value_heads * c.head_dim, c.intermediate_size
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
    assert update["phase"] == "update" and "error" not in update and update["tok_per_s"] > 0  # the run went on
    assert torch_rec["peak_mem_gb"] > 0 and json.loads(out.read_text())["phases"][0]["error"] == torch_rec["error"]
    assert "sampler exploded" in bench.table(result["phases"])


def test_unknown_sampler_is_an_error_record():
    rec = bench.measure({}, torch.device("cpu"), lambda rec: bench.make_sampler("nope", None, None, None))
    assert rec["error"].startswith("ValueError: unknown sampler 'nope'")


def test_update_oom_is_recorded_and_leaves_the_model_clean(monkeypatch):
    model = make_tiny_qwen3()
    seen = []

    def oom(self, *args, **kwargs):  # runs after the backward pass: gradients exist, checkpointing is on
        seen.append(all(p.grad is not None for p in model.parameters()))
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(torch.optim.AdamW, "step", oom)
    args = bench.argparse.Namespace(update_shape=[1, 8], grad_ckpt=True, chunk_size=4, peak_tflops=None)
    rec = bench.bench_update(model, args, torch.device("cpu"), naive=False)
    assert seen == [True]
    assert rec["error"].startswith("OutOfMemoryError: CUDA out of memory") and rec["grad_ckpt"] is True
    checkpointing = getattr(model, "is_activation_checkpointing", None)  # transformers 5 name
    assert not (model.is_gradient_checkpointing if checkpointing is None else checkpointing)
    assert all(p.grad is None for p in model.parameters())


def test_config_folder_with_the_real_qwen3_tokenizer(tmp_path):
    """The GPU path: --model DIR with config.json + tokenizer files only (here Qwen3-0.6B's, shrunk to 1 small layer)."""
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
                         "--update-shape", "1x16", "--samplers", "hf,torch", "--out", str(tmp_path / "b.json")])
    assert result["model"]["config"]["vocab_size"] == 151_936
    for p in result["phases"]:
        assert "error" not in p and p["tok_per_s"] > 0, p


def test_saved_for_backward_counts_activations_not_parameters():
    """A bias-free Linear saves its input for the weight's gradient (50 x 100 float32 = 20,000 bytes) and its
    weight for the input's gradient; the weight is a parameter, so only the input counts."""
    layer, x = torch.nn.Linear(100, 1, bias=False), torch.randn(50, 100)
    assert bench.saved_for_backward(lambda: layer(x).sum(), layer) * 2**30 == 50 * 100 * 4
    y = torch.randn(50, 100, dtype=torch.float64)  # exp saves its output: a second, float64 storage
    assert bench.saved_for_backward(lambda: (layer(x).sum() + (y * layer.weight).exp().sum()), layer) * 2**30 == \
        50 * 100 * 4 + 50 * 100 * 8 * 2  # y (saved by mul for the weight's grad) and exp's output


def test_checkpointing_shrinks_what_backward_keeps(tiny_run, tmp_path):
    """The diagnostic behind saved_gb: with HF's checkpointing only each layer's input is kept for backward."""
    with_ckpt = [p for p in tiny_run[0]["phases"] if p["phase"] == "update"][0]
    without = bench.main(TINY_ARGS + ["--samplers", "torch", "--no-grad-ckpt", "--out", str(tmp_path / "b.json")])
    without = [p for p in without["phases"] if p["phase"] == "update"][0]
    assert with_ckpt["grad_ckpt"] and not without["grad_ckpt"]
    assert 0 < with_ckpt["saved_gb"] < without["saved_gb"] / 3
