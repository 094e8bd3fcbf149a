"""Shared fixtures: tiny random Qwen3 models (no hub), and the real Qwen3 tokenizer when ../shared is present."""
from pathlib import Path

import pytest
import torch

SHARED_QWEN3 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "qwen3" / "Qwen3-0.6B"


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


@pytest.fixture
def tiny_model():
    return make_tiny_qwen3()


@pytest.fixture
def qwen3_tokenizer():
    """The real Qwen3 tokenizer from ../shared/data (not shipped with the project): skipped when absent."""
    if not (SHARED_QWEN3 / "vocab.json").exists():
        pytest.skip(f"real Qwen3 tokenizer not found at {SHARED_QWEN3} (only present in the dev workplace)")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(SHARED_QWEN3))
