"""Tests for the errors of nano_forkrl/run/setup/policy.py's load_policy/random_policy: each names what is wrong."""
import pytest
import torch
from conftest import make_tiny_qwen3

from nano_forkrl.utils.errors import RunError
from nano_forkrl.run.setup.policy import load_policy, random_policy


@pytest.fixture
def saved_folder(tmp_path):
    from nano_forkrl.tasks.tiny import build_tiny_tokenizer
    tok = build_tiny_tokenizer()
    make_tiny_qwen3(vocab_size=len(tok)).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    return tmp_path


def test_a_missing_folder_is_named_not_taken_for_a_hub_name(tmp_path):
    with pytest.raises(RunError, match=r"--model /nonexistent: no such folder"):
        load_policy("/nonexistent", device="cpu")
    with pytest.raises(RunError, match=r"no such folder"):
        random_policy(str(tmp_path / "nope"), "cpu")
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunError, match=r"is a file"):
        load_policy(str(tmp_path / "file"), device="cpu")


def test_a_truncated_weight_file_is_named(saved_folder):
    weights = saved_folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(RunError, match=r"could not load the model from .*model\.safetensors"):
        load_policy(str(saved_folder), device="cpu")


def test_a_damaged_config_is_named(saved_folder):
    (saved_folder / "config.json").write_text('{"model_type": ')
    with pytest.raises(RunError, match=r"config\.json"):
        load_policy(str(saved_folder), device="cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")
def test_a_device_this_machine_lacks_is_a_clear_error():
    with pytest.raises(RunError, match=r"--device cuda: this machine has 0 CUDA device"):
        load_policy("tiny", device="cuda")


def test_a_device_name_torch_does_not_know_is_a_clear_error():
    with pytest.raises(RunError, match=r"--device 'gpu' is not a device name"):
        load_policy("tiny", device="gpu")
