"""Shared fixtures: tiny random Qwen3 models (no hub), the real Qwen3 tokenizer (nano_forkrl/qwen3)."""
import contextlib
import os
from pathlib import Path

# One thread per test process, set before torch loads OpenMP: the suite's models are tiny, and on a
# busy 2-core machine two OpenMP threads wait for each other at every op (4 RL steps of the tiny
# preset took 168 s with 2 threads beside other work, 37 s with 1). The child processes the tests
# start (training runs, notebook kernels, engines) inherit it; the README's `pytest -n 2` runs two
# test processes instead, one per core.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))  # in case a plugin imported torch first

SHARED_QWEN3 = Path(os.environ.get("NANO_FORKRL_QWEN3_DIR") or  # another copy; default: the shipped one
                    Path(__file__).resolve().parents[1] / "nano_forkrl" / "qwen3" / "Qwen3-0.6B")


def make_tiny_qwen3(vocab_size=64, hidden_size=32, layers=2, seed=0, tie=True):
    """A real Qwen3ForCausalLM with a toy config and random weights (float32, CPU)."""
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(seed)
    config = Qwen3Config(
        vocab_size=vocab_size, hidden_size=hidden_size, intermediate_size=2 * hidden_size,
        num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2, head_dim=hidden_size // 4,
        max_position_embeddings=512, tie_word_embeddings=tie, pad_token_id=0, eos_token_id=1, bos_token_id=1,
    )
    return Qwen3ForCausalLM(config).eval()


def vocab_tokenizer():
    """The real Qwen3 tokenizer (151,669 ids) from SHARED_QWEN3 when present, else the tiny preset's tokenizer:
    tests that need a tokenizer beside a Qwen3-sized embedding run either way."""
    from transformers import AutoTokenizer

    from nano_forkrl.tasks.tiny import build_tiny_tokenizer

    if (SHARED_QWEN3 / "vocab.json").exists():
        return AutoTokenizer.from_pretrained(str(SHARED_QWEN3))
    return build_tiny_tokenizer()


def qwen3_shaped(tokenizer, seed=0, tie=True, vocab_size=151_936):
    """A small random Qwen3ForCausalLM shaped like the real one where engines care: Qwen3's 151,936-row
    embedding and head_dim 64 (vLLM's CPU attention refuses head_dim 16). 2 layers, width 128 (float32, CPU)."""
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(seed)
    config = Qwen3Config(
        vocab_size=vocab_size, hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, head_dim=64, max_position_embeddings=512, tie_word_embeddings=tie,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.eos_token_id,
    )
    return Qwen3ForCausalLM(config).eval()


# `pytest -m quick`: the six concepts and the loop, about a minute on 2 cores (README, "Two commands")
QUICK_FILES = {"test_sampling.py", "test_verify.py", "test_advantage.py", "test_entropy.py",
               "test_masking.py", "test_loss.py", "test_update.py"}
QUICK_TESTS = {("test_train.py", "test_few_steps_end_to_end")}


def pytest_configure(config):
    config.addinivalue_line("markers", "quick: the six concepts and the loop (pytest -m quick)")


def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.name in QUICK_FILES or (item.path.name, item.originalname) in QUICK_TESTS:
            item.add_marker(pytest.mark.quick)


@contextlib.contextmanager
def session_shared(tmp_path_factory, name):
    """The folder `name` of this test session (it may not exist yet), locked while the caller
    fills or reads it: under pytest-xdist every worker has its basetemp inside the session's temp
    folder, so the workers share what the first one built instead of each building it again."""
    from filelock import FileLock  # a dependency of torch

    base = tmp_path_factory.getbasetemp()
    where = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / name
    with FileLock(f"{where}.lock"):
        yield where


@contextlib.contextmanager
def copied_at_save(monkeypatch, step, to):
    """Inside: the run's save of `step` is followed by a copy of its folder to `to`, the files a
    run killed right after that save leaves (the resume tests' "killed" run, without a kill)."""
    import shutil

    from nano_forkrl.run.place.single import OneProcess

    save = OneProcess.save

    def save_then_copy(self, out_dir, *rest, **kwargs):
        save(self, out_dir, *rest, **kwargs)
        if rest[4] == step:  # rest: (model, tokenizer, optimizer, sampler, step, ...)
            shutil.copytree(out_dir, to)

    monkeypatch.setattr(OneProcess, "save", save_then_copy)
    try:
        yield
    finally:
        monkeypatch.setattr(OneProcess, "save", save)


@pytest.fixture
def tiny_model():
    return make_tiny_qwen3()


@pytest.fixture
def qwen3_tokenizer():
    """The real Qwen3 tokenizer (shipped in nano_forkrl/qwen3, or NANO_FORKRL_QWEN3_DIR)."""
    if not (SHARED_QWEN3 / "vocab.json").exists():
        pytest.skip(f"real Qwen3 tokenizer not found at {SHARED_QWEN3} (NANO_FORKRL_QWEN3_DIR)")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(SHARED_QWEN3))


# ---------------------------------------------------------------- GPU checks (skipped without CUDA)
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="checks the CUDA path: needs a GPU (README, 'GPU checks')")


def tiny_prompts(n=32):
    """Held-out prompts of the tiny task, as the loop formats them."""
    from nano_forkrl.tasks.data import format_prompt
    from nano_forkrl.tasks.tiny import tiny_problems

    return [format_prompt(p["problem"], "plain") for p in tiny_problems("test", n)]


def greedy_rows_equal_up_to_ties(model, rows_a, rows_b, tol=0.25):
    """Compare two engines' greedy rollouts of the same prompts. bf16 kernels differ in rounding, so two correct
    engines may pick different tokens where the top two are (nearly) tied; after that their texts legitimately
    differ. So: at each row's first divergence, the two picked tokens must be within `tol` nats under the
    float32 `model` given the shared prefix (a near-tie), else the engines disagree. Returns the identical rows."""
    identical = 0
    for a, b in zip(rows_a, rows_b, strict=True):
        assert a.prompt_ids == b.prompt_ids
        d = next((i for i, (x, y) in enumerate(zip(a.response_ids, b.response_ids)) if x != y), None)
        if d is None:
            identical += len(a.response_ids) == len(b.response_ids)
            continue
        ids = torch.tensor([list(a.prompt_ids) + list(a.response_ids[:d])], device=next(model.parameters()).device)
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=ids).logits[0, -1].float(), dim=-1)
        gap = (logp[a.response_ids[d]] - logp[b.response_ids[d]]).abs().item()
        assert gap <= tol, f"row diverges at token {d} without a near-tie: log-prob gap {gap:.3f} > {tol}"
    return identical


class _Payload:
    """Unpickling this runs a shell command: what a hostile checkpoint would carry."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def write_hostile_state(path, marker):
    """A `trainer_state.pt` that looks like ours (step, config) but whose pickle creates the file `marker` when
    it is loaded with weights_only=False."""
    import shlex

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save({"step": 2, "cursor": 8, "config": {}, "payload": _Payload(f"touch {shlex.quote(str(marker))}")},
               path)
