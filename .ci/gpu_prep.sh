#!/usr/bin/env bash
# Prepares, on any machine (a CPU is enough), what .ci/gpu_checks.sh would otherwise build on the GPU machine's
# clock. Everything goes to .gpu/ (git-ignored, a few MB), which travels with the working tree to the GPU machine:
#   .gpu/cache/         the tiny preset's warm start (the checks set NANO_FORKRL_CACHE to it: the CUDA tests of
#                       test_fastdecode.py load it instead of training it for minutes on the GPU machine's CPU)
#   .gpu/qwen3-small/   Qwen3-0.6B's config shrunk to hidden 256, 2 layers, head_dim 64 (vLLM's CPU build refuses
#                       16), with the real tokenizer: the model of `gpu_checks.sh --dry-run` on a CPU
#
#   bash .ci/gpu_prep.sh            (QWEN3_DIR: Qwen3-0.6B's config + tokenizer, default: the packaged copy)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
QWEN3_DIR=${QWEN3_DIR:-nano_forkrl/qwen3/Qwen3-0.6B}
export PYTHONUNBUFFERED=1
mkdir -p .gpu/cache
user_cache=${NANO_FORKRL_CACHE:-$HOME/.cache/nano_forkrl}
for built in "$user_cache"/tiny-*; do  # a warm start built before on this machine: the same key, reused
    [ -d "$built" ] && [ ! -e ".gpu/cache/$(basename "$built")" ] && cp -r "$built" .gpu/cache/
done
NANO_FORKRL_CACHE=.gpu/cache "$PY" -c "from nano_forkrl.tasks.tiny import load_tiny; load_tiny()"
"$PY" -m nano_forkrl.tools.shrink_config "$QWEN3_DIR" .gpu/qwen3-small --hidden 256 --layers 2 --heads 4 \
    --kv-heads 2 --head-dim 64 > /dev/null
du -sh .gpu
echo "prepared .gpu/: carry it with the working tree, then run bash .ci/gpu_checks.sh (README, 'GPU checks')"
