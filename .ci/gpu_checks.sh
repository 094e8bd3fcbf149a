#!/usr/bin/env bash
# The README's GPU checks ("GPU checks") as one script; run it from the repository root on a CUDA machine:
#
#   QWEN3_DIR=DIR bash .ci/gpu_checks.sh [quick|tests|bench|bench17|loop|tiny|all]      (default: all)
#
# DIR holds Qwen3-0.6B's config.json and tokenizer files (no weights: the models are random, for speed and
# memory only). Results go to $OUT (default gpu-out/), small files only, each complete when its part ends (a
# bench JSON is rewritten after every measurement). Run folders (a loop's final checkpoint is GBs) go to $WORK
# (default /tmp/nano_forkrl_gpu_runs), never under $OUT: only their metrics.jsonl is copied, then they are
# deleted. Every part runs under its own `timeout`; $OUT/parts-<mode>.txt gets a line per part (rc, seconds).
#   quick   one call of at most $QUICK_BUDGET s (default 450; later parts get what is left), 6 files:
#           quick-fastdecode.txt  pytest -k cuda of test_fastdecode.py: fast decoder == plain path
#           quick-vllm.txt        test_vllm_sampler.py: weight push, greedy == TorchSampler (no loop test)
#           quick-rollout.json    tok/s of torch and vllm at 256 x 512 (128-token prompts), start-up, push
#           quick-update.json     the update at 8 x 4096: tok/s, peak GB, saved GB, MFU
#           quick-loop.jsonl      one Qwen3-0.6B-shaped loop step with --sampler vllm: seconds per phase
#           parts-quick.txt
#           A dry run on a CPU shrinks the shapes: QUICK_BATCH, QUICK_PROMPT, QUICK_NEW (rollout),
#           QUICK_UPDATE (BxT), QUICK_PROMPTS, QUICK_GROUP, QUICK_LOOP_NEW (loop), with a QWEN3_DIR from
#           python -m nano_forkrl.tools.shrink_config (head_dim 64: vLLM's CPU build refuses 16).
#   tests   pytest -k cuda + test_vllm_sampler.py: fast decoder == plain path, vLLM == TorchSampler before and
#           after a weight push, loop + exact resume on vLLM, tiny loop          -> pytest_cuda.txt
#   bench   Qwen3-0.6B shape: rollout tok/s (hf, torch, torch-plain, vllm) at 64 and 256 x 512, weight push,
#           update and naive update at 8 x 4096 (tok/s, MFU, peak and saved GB) -> bench-0.6b.json
#   bench17 the same rollouts and update for $QWEN3_17_DIR (Qwen3-1.7B files), when set -> bench-1.7b.json
#   loop    two steps of the Qwen3-0.6B-shaped loop with each sampler            -> loop-torch/vllm.jsonl
#   tiny    ten steps of the tiny preset on the GPU and on the CPU               -> tiny-cuda/cpu.jsonl
# Each mode but `all` fits one 10-minute call; without vllm installed the vLLM parts are left out.
set -uo pipefail
cd "$(dirname "$0")/.."
: "${QWEN3_DIR:?set QWEN3_DIR to a folder with Qwen3-0.6B config.json and tokenizer files}"
OUT=${OUT:-gpu-out}
WORK=${WORK:-/tmp/nano_forkrl_gpu_runs}
PY=${PYTHON:-python3}
mode=${1:-all}
mkdir -p "$OUT" "$WORK"
export HF_HUB_OFFLINE=1 VLLM_USE_FLASHINFER_SAMPLER=0 VLLM_NO_USAGE_STATS=1 NANO_FORKRL_QWEN3_DIR="$QWEN3_DIR"
has_vllm=$("$PY" -c "import importlib.util; print(int(importlib.util.find_spec('vllm') is not None))")
with_vllm() { [ "$has_vllm" = 1 ] && echo "$1"; }
LOG="$OUT/parts-$mode.txt"
: > "$LOG"
DEADLINE=0  # epoch seconds by which every part must have ended (quick); 0: none

# part NAME LIMIT FILE CMD...: CMD under `timeout LIMIT` (cut to what is left before DEADLINE), its output in
# FILE (its last lines also on stdout), one line in $LOG.
part() {
    local name=$1 limit=$2 file=$3 start rc left
    shift 3
    if [ "$DEADLINE" -gt 0 ]; then
        left=$((DEADLINE - $(date +%s) - 10))  # 10 s: timeout's --kill-after and the copies after a part
        [ "$left" -lt "$limit" ] && limit=$left
        if [ "$limit" -lt 20 ]; then
            echo "$name skipped: out of time" | tee -a "$LOG"
            return 0
        fi
    fi
    echo "== $name (limit ${limit}s)"
    start=$(date +%s)
    timeout --kill-after=5 "$limit" "$@" > "$file" 2>&1
    rc=$?
    tail -n 8 "$file"
    echo "$name rc=$rc seconds=$(($(date +%s) - start)) limit=$limit$([ "$rc" = 124 ] && echo ' TIMED OUT')" \
        | tee -a "$LOG"
}

# loop NAME LIMIT TRAIN-ARGS...: a training run in $WORK/NAME; its metrics.jsonl becomes $OUT/NAME.jsonl (also
# after a timeout: every finished step is in it), the rest (checkpoint, log) is deleted.
loop() {
    local name=$1 limit=$2 dir="$WORK/$1"
    shift 2
    part "$name" "$limit" "$WORK/$name.log" "$PY" -m nano_forkrl.train "$@" --save-every 0 --overwrite \
        --out-dir "$dir"
    if [ -f "$dir/metrics.jsonl" ]; then
        cp "$dir/metrics.jsonl" "$OUT/$name.jsonl"
        "$PY" -c "import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if 'time' in r:
        print('step', r['step'], {k: round(v, 2) for k, v in r['time'].items()})" "$OUT/$name.jsonl"
    fi
    rm -rf "$dir"
}

bench() {  # bench NAME LIMIT BENCH-ARGS...: $OUT/NAME.json, rewritten after every measurement
    local name=$1 limit=$2
    shift 2
    part "$name" "$limit" "$WORK/$name.log" "$PY" -m nano_forkrl.bench "$@" --out "$OUT/$name.json"
    rm -f "$OUT/$name.json.tmp"  # left only by a kill in mid-write; the JSON itself is the last complete one
}

part_quick() {
    local batch=${QUICK_BATCH:-256} prompt=${QUICK_PROMPT:-128} new=${QUICK_NEW:-512}
    local prompts=${QUICK_PROMPTS:-16} group=${QUICK_GROUP:-8} loop_new=${QUICK_LOOP_NEW:-512}
    DEADLINE=$(($(date +%s) + ${QUICK_BUDGET:-450}))
    part quick-fastdecode 75 "$OUT/quick-fastdecode.txt" \
        "$PY" -m pytest -q -p no:cacheprovider -rs tests/engines/test_fastdecode.py -k cuda
    [ "$has_vllm" = 1 ] && part quick-vllm 120 "$OUT/quick-vllm.txt" \
        "$PY" -m pytest -q -p no:cacheprovider -rs tests/engines/test_vllm_sampler.py -k "not resume_exactly"
    bench quick-rollout 150 --model "$QWEN3_DIR" --samplers "torch$(with_vllm ,vllm)" --batches "$batch" \
        --prompt-len "$prompt" --new-tokens "$new" --no-update
    bench quick-update 75 --model "$QWEN3_DIR" --samplers none --update-shape "${QUICK_UPDATE:-8x4096}"
    loop quick-loop 150 --preset qwen3-0.6b --model "random:$QWEN3_DIR" --train-data gsm8k --steps 1 \
        --eval-every 0 --eval-n 8 --eval-k 1 --prompts-per-step "$prompts" --mini-batch-prompts "$prompts" \
        --group-size "$group" --max-new-tokens "$loop_new" --overlong-buffer $((loop_new / 4)) \
        --no-dynamic-sampling --sampler "$([ "$has_vllm" = 1 ] && echo vllm || echo torch)"
}

part_tests() {
    part tests 570 "$OUT/pytest_cuda.txt" \
        "$PY" -m pytest -q -p no:cacheprovider -rs tests -k "cuda or vllm_sampler"
}

part_bench() {
    bench bench-0.6b 570 --model "$QWEN3_DIR" --samplers "hf,torch,torch-plain$(with_vllm ,vllm)" \
        --batches 64,256 --prompt-len 128 --new-tokens 512 --update-shape 8x4096 --naive-update
}

part_bench17() {
    if [ -z "${QWEN3_17_DIR:-}" ]; then
        echo "bench17 skipped: QWEN3_17_DIR is not set" | tee -a "$LOG"
        return 0
    fi
    bench bench-1.7b 570 --model "$QWEN3_17_DIR" --samplers "torch,torch-plain$(with_vllm ,vllm)" \
        --batches 64,256 --prompt-len 128 --new-tokens 512 --update-shape 8x4096
}

part_loop() {
    for sampler in torch $(with_vllm vllm); do
        loop "loop-$sampler" 280 --preset qwen3-0.6b --model "random:$QWEN3_DIR" --train-data gsm8k \
            --steps 2 --eval-every 0 --eval-n 8 --eval-k 1 --prompts-per-step 16 --group-size 8 \
            --max-new-tokens 512 --overlong-buffer 128 --no-dynamic-sampling --sampler "$sampler"
    done
}

part_tiny() {
    for device in cuda cpu; do
        loop "tiny-$device" 280 --steps 10 --eval-every 0 --eval-n 20 --sampler torch --device "$device"
    done
}

case "$mode" in
    quick) part_quick ;;
    tests) part_tests ;;
    bench) part_bench ;;
    bench17) part_bench17 ;;
    loop) part_loop ;;
    tiny) part_tiny ;;
    all) part_tests; part_bench; part_bench17; part_loop; part_tiny ;;
    *)
        echo "usage: QWEN3_DIR=DIR bash .ci/gpu_checks.sh [quick|tests|bench|bench17|loop|tiny|all]" >&2
        exit 2 ;;
esac
