"""shrink_config.py: a smaller config of the same architecture and vocabulary, beside the tokenizer files."""
import json

import pytest

from nano_forkrl.tools.shrink_config import main, shrink


def _src(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    config = {"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "hidden_size": 1024,
              "intermediate_size": 3072, "num_hidden_layers": 28, "num_attention_heads": 16,
              "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 151_936, "eos_token_id": 151_645}
    (src / "config.json").write_text(json.dumps(config))
    (src / "vocab.json").write_text("{}")
    (src / "model.safetensors").write_bytes(b"weights")
    return src


def test_shrinks_the_sizes_keeps_the_vocabulary_and_copies_no_weights(tmp_path):
    src = _src(tmp_path)
    config = main([str(src), str(tmp_path / "dst"), "--hidden", "256", "--layers", "4", "--heads", "4",
                   "--kv-heads", "2", "--head-dim", "64"])
    on_disk = json.loads((tmp_path / "dst" / "config.json").read_text())
    assert on_disk == config and config["hidden_size"] == 256 and config["intermediate_size"] == 768
    assert (config["num_hidden_layers"], config["num_attention_heads"], config["num_key_value_heads"],
            config["head_dim"]) == (4, 4, 2, 64)
    assert config["vocab_size"] == 151_936 and config["eos_token_id"] == 151_645
    assert sorted(p.name for p in (tmp_path / "dst").iterdir()) == ["config.json", "vocab.json"]


def test_bad_sizes_are_errors(tmp_path):
    src = _src(tmp_path)
    with pytest.raises(ValueError, match="kv heads"):
        shrink(src, tmp_path / "dst", heads=3, kv_heads=2)
    with pytest.raises(ValueError, match="unknown sizes"):
        shrink(src, tmp_path / "dst", width=3)
    assert shrink(src, tmp_path / "dst", layers=2)["intermediate_size"] == 3072  # not given: SRC's
