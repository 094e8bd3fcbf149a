"""A smaller model folder of the same architecture: a config.json with fewer/narrower layers + the
tokenizer.

    python -m nano_forkrl.tools.shrink_config SRC DST --hidden 256 --layers 4 --heads 4 \
        --kv-heads 2 --head-dim 64

For benchmarks and dry runs of the GPU checks on a CPU: `--model random:DST` (train) or
`--model DST` (bench) builds it with random weights. The vocabulary (vocab_size, special ids) and
every other field stay as in SRC, so engines see the real embedding size and the real tokenizer. No
weights are read or written.
"""
import argparse
import json
import shutil
from pathlib import Path

SIZES = {"hidden": "hidden_size", "intermediate": "intermediate_size",
         "layers": "num_hidden_layers", "heads": "num_attention_heads",
         "kv_heads": "num_key_value_heads", "head_dim": "head_dim"}
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")


def shrink(src, dst, **sizes):
    """Write dst/config.json (src's with the given sizes, e.g. hidden=256) and copy src's other
    small files (tokenizer, generation config); the intermediate size defaults to 3 x hidden.
    Returns the new config."""
    src, dst = Path(src), Path(dst)
    config = json.loads((src / "config.json").read_text())
    unknown = set(sizes) - set(SIZES)
    if unknown:
        raise ValueError(f"unknown sizes {sorted(unknown)}: use {sorted(SIZES)}")
    for key, value in sizes.items():
        if value is not None:
            config[SIZES[key]] = value
    if sizes.get("hidden") is not None and sizes.get("intermediate") is None:
        config["intermediate_size"] = 3 * sizes["hidden"]
    if config["num_attention_heads"] % config["num_key_value_heads"]:
        raise ValueError(f"{config['num_attention_heads']} heads is not a multiple of "
                         f"{config['num_key_value_heads']} kv heads")
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.is_file() and f.name != "config.json" and not f.name.endswith(WEIGHT_SUFFIXES):
            shutil.copy(f, dst / f.name)
    (dst / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return config


def main(argv=None):
    ap = argparse.ArgumentParser(description="Copy a model folder's tokenizer with a shrunk "
                                             "config.json (random-weight benchmarks and dry runs; "
                                             "no weights).")
    ap.add_argument("src", help="folder with config.json and tokenizer files, e.g. Qwen3-0.6B's")
    ap.add_argument("dst", help="folder to write (created; its config.json and tokenizer files "
                                "replaced)")
    for key, field in SIZES.items():
        default = "SRC's, or 3 x --hidden when that is given" if key == "intermediate" else "SRC's"
        ap.add_argument(f"--{key.replace('_', '-')}", type=int, default=None,
                        help=f"new {field} (default: {default})")
    args = vars(ap.parse_args(argv))
    config = shrink(args.pop("src"), args.pop("dst"), **args)
    print(json.dumps({field: config[field] for field in SIZES.values()}))
    return config


if __name__ == "__main__":
    main()
