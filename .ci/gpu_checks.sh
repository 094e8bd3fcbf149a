#!/usr/bin/env bash
# The GPU checks of the README ("GPU checks"), as one script: run it from the repository root on a CUDA machine.
#
#   QWEN3_DIR=DIR bash .ci/gpu_checks.sh [tests|bench|loop|tiny|all]      (default: all)
#
# DIR holds Qwen3-0.6B's config.json and tokenizer files (no weights: the models are random, for speed and memory
# only); QWEN3_17_DIR, if set, adds the Qwen3-1.7B rollout benchmark. Results go to $OUT (default gpu-out/):
#   tests  pytest -k cuda: fast decoder == plain path, vLLM == TorchSampler before/after a weight push, tiny loop
#   bench  bench.json per model: rollout tok/s (hf, torch, vllm), weight push, update tok/s, MFU, peak and saved GB
#   loop   two steps of the Qwen3-0.6B-shaped loop with each sampler: seconds per phase in <dir>/metrics.jsonl
#   tiny   ten steps of the tiny preset on the GPU and on the CPU: step times in <dir>/metrics.jsonl
# Each part fits one 10-minute call of the project's device tool; vLLM parts are skipped if vllm is not installed.
set -uo pipefail
cd "$(dirname "$0")/.."
: "${QWEN3_DIR:?set QWEN3_DIR to a folder with Qwen3-0.6B config.json and tokenizer files}"
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 VLLM_USE_FLASHINFER_SAMPLER=0 VLLM_NO_USAGE_STATS=1
has_vllm=$(python -c "import importlib.util; print(int(importlib.util.find_spec('vllm') is not None))")
samplers="hf,torch,torch-plain$([ "$has_vllm" = 1 ] && echo ,vllm)"

part_tests() {
    NANO_FORKRL_QWEN3_DIR="$QWEN3_DIR" python -m pytest -q tests -k cuda -rs 2>&1 | tee "$OUT/pytest_cuda.txt"
}

part_bench() {
    python -m nano_forkrl.bench --model "$QWEN3_DIR" --samplers "$samplers" --batches 64,256 --prompt-len 128 \
        --new-tokens 512 --update-shape 8x4096 --naive-update --out "$OUT/bench-0.6b.json" 2>&1 | tail -20
    if [ -n "${QWEN3_17_DIR:-}" ]; then
        python -m nano_forkrl.bench --model "$QWEN3_17_DIR" --samplers "${samplers#hf,}" --batches 64,256 \
            --prompt-len 128 --new-tokens 512 --update-shape 8x4096 --out "$OUT/bench-1.7b.json" 2>&1 | tail -20
    fi
}

part_loop() {
    for sampler in torch $([ "$has_vllm" = 1 ] && echo vllm); do
        python -m nano_forkrl.train --preset qwen3-0.6b --model "random:$QWEN3_DIR" --train-data gsm8k \
            --steps 2 --eval-every 0 --eval-n 8 --eval-k 1 --prompts-per-step 16 --group-size 8 \
            --max-new-tokens 512 --overlong-buffer 128 --no-dynamic-sampling --save-every 0 \
            --sampler "$sampler" --out-dir "$OUT/loop-$sampler" 2>&1 | tail -5
    done
}

part_tiny() {
    for device in cuda cpu; do
        python -m nano_forkrl.train --steps 10 --eval-every 0 --eval-n 20 --save-every 0 --sampler torch \
            --device "$device" --out-dir "$OUT/tiny-$device" 2>&1 | tail -3
    done
}

case "${1:-all}" in
    tests) part_tests ;;
    bench) part_bench ;;
    loop) part_loop ;;
    tiny) part_tiny ;;
    all) part_tests; part_bench; part_loop; part_tiny ;;
    *) echo "usage: QWEN3_DIR=DIR bash .ci/gpu_checks.sh [tests|bench|loop|tiny|all]" >&2; exit 2 ;;
esac
