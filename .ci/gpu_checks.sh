#!/usr/bin/env bash
# The README's GPU checks ("GPU checks") as one script; run it from the repository root on a CUDA machine:
#
#   bash .ci/gpu_prep.sh                                  # first, on any machine: .gpu/ (carry it along)
#   bash .ci/gpu_checks.sh [quick|tests|bench|bench17|loop|tiny|all] [--budget S] [--wheels DIR] [--dry-run]
#
# quick (the default) installs vLLM's GPU build from DIR when --wheels is given, then runs its parts in this
# order, each under its own `timeout` cut to what is left of --budget (default 480 s for quick, 570 otherwise,
# counted from the start, install included); a part with less than 20 s left is skipped, so a short budget cuts
# the last parts and keeps the first ones. Every part writes its result to $OUT (default gpu-out/) as it ends,
# and a line (rc, seconds) to $OUT/parts-<mode>.txt:
#   install            pip install from DIR: a wheel folder (install.sh in it is used when present) or the
#                      xz-compressed tar parts p?? of one, unpacked first                      -> install.txt
#   quick-fastdecode   pytest -k cuda tests/engines/test_fastdecode.py: fast decoder == plain path
#   quick-vllm         tests/engines/test_vllm_sampler.py (not the loop and torchrun tests): push, greedy ==
#                      TorchSampler up to bf16 near-ties, sleep frees the KV cache, close() frees the engine
#   quick-loop         one Qwen3-0.6B-shaped loop step with --sampler vllm (sleep, push, wake) -> quick-loop.jsonl
#   quick-rollout      TorchSampler and vLLM tok/s at 256 x 512, 128-token prompts            -> quick-rollout.json
#   quick-update       the update at 8 x 4096: tok/s, peak and saved GB, MFU                   -> quick-update.json
# --dry-run (chosen automatically without CUDA): the same control flow on a CPU with vLLM's CPU build, the
# shrunken model of gpu_prep.sh (.gpu/qwen3-small), small shapes (QUICK_* variables), a subset of the vLLM tests,
# part limits x3 (LIMIT_SCALE) and no install.
# Other modes: tests (pytest -k "cuda or vllm_sampler"), bench (the 0.6B benchmark), bench17 ($QWEN3_17_DIR),
# loop (two steps with each sampler), tiny (the tiny preset on GPU and CPU); `all` runs them in turn.
# The model is random (`--model random:$QWEN3_DIR`, config + tokenizer only; default: the packaged Qwen3-0.6B
# folder). Run folders go to $WORK (default /tmp/nano_forkrl_gpu_runs), never under $OUT; no loop writes a
# checkpoint (--save-every 0 --no-final-save).
set -uo pipefail
cd "$(dirname "$0")/.."
mode=quick budget="" wheels="" dry=0
while [ $# -gt 0 ]; do
    case "$1" in
        --budget) budget=$2; shift 2 ;;
        --wheels) wheels=$2; shift 2 ;;
        --dry-run) dry=1; shift ;;
        quick|tests|bench|bench17|loop|tiny|all) mode=$1; shift ;;
        *) echo "usage: bash .ci/gpu_checks.sh [quick|tests|bench|bench17|loop|tiny|all] [--budget S]" \
                "[--wheels DIR] [--dry-run]" >&2; exit 2 ;;
    esac
done
START=$(date +%s)
DEADLINE=$((START + ${budget:-$([ "$mode" = quick ] && echo 480 || echo 570)}))
[ "$mode" = all ] && [ -z "$budget" ] && DEADLINE=0  # all: no overall limit unless asked
OUT=${OUT:-gpu-out}
WORK=${WORK:-/tmp/nano_forkrl_gpu_runs}
PY=${PYTHON:-python3}
mkdir -p "$OUT" "$WORK"
LOG="$OUT/parts-$mode.txt"
: > "$LOG"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 VLLM_USE_FLASHINFER_SAMPLER=0 VLLM_NO_USAGE_STATS=1
[ -d .gpu/cache ] && export NANO_FORKRL_CACHE=$PWD/.gpu/cache  # gpu_prep.sh's warm start
if [ "$dry" = 0 ] && ! "$PY" -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
    echo "no CUDA device: a dry run on the CPU instead (--dry-run)" | tee -a "$LOG"
    dry=1
fi
if [ "$dry" = 1 ]; then
    QWEN3_DIR=${QWEN3_DIR:-.gpu/qwen3-small}
    [ -f "$QWEN3_DIR/config.json" ] || { echo "no $QWEN3_DIR: run bash .ci/gpu_prep.sh first" >&2; exit 2; }
    : "${QUICK_BATCH:=4}" "${QUICK_PROMPT:=16}" "${QUICK_NEW:=16}" "${QUICK_UPDATE:=2x64}" "${QUICK_PROMPTS:=2}"
    : "${QUICK_GROUP:=2}" "${QUICK_LOOP_NEW:=16}" "${QUICK_VLLM_TESTS:=version or tie_rule or sleeps_after}"
    : "${LIMIT_SCALE:=3}"  # a CPU starts a vLLM engine in about a minute, a GPU in seconds (compiled: ~1 min)
fi
LIMIT_SCALE=${LIMIT_SCALE:-1}  # every part's own limit is multiplied by it
QWEN3_DIR=${QWEN3_DIR:-nano_forkrl/qwen3/Qwen3-0.6B}
export NANO_FORKRL_QWEN3_DIR="$QWEN3_DIR"

# part NAME LIMIT FILE CMD...: CMD under `timeout LIMIT` (cut to what is left before DEADLINE), its output in
# FILE (its last lines also on stdout), one line in $LOG as soon as it ends.
part() {
    local name=$1 limit=$(($2 * LIMIT_SCALE)) file=$3 start rc left
    shift 3
    if [ "$DEADLINE" -gt 0 ]; then
        left=$((DEADLINE - $(date +%s) - 10))  # 10 s: timeout's --kill-after and the copies after a part
        [ "$left" -lt "$limit" ] && limit=$left
        if [ "$limit" -lt 20 ]; then
            echo "$name skipped: out of budget" | tee -a "$LOG"
            return 0
        fi
    fi
    echo "== $name (limit ${limit}s, $(($(date +%s) - START))s since the start)"
    start=$(date +%s)
    timeout --kill-after=5 "$limit" "$@" > "$file" 2>&1
    rc=$?
    tail -n 8 "$file"
    echo "$name rc=$rc seconds=$(($(date +%s) - start)) limit=$limit$([ "$rc" = 124 ] && echo ' TIMED OUT')" \
        | tee -a "$LOG"
}

install_vllm() {  # DIR: a wheel folder, or the xz-compressed tar parts p?? of one (unpacked into DIR first)
    local dir=$1
    if compgen -G "$dir/p??" > /dev/null && [ ! -d "$dir/wheels" ]; then
        cat "$dir"/p?? | xz -dc | tar -C "$dir" -xf - || return 1
    fi
    [ -d "$dir/wheels" ] && dir=$dir/wheels
    if [ -f "$dir/install.sh" ]; then
        PY="$PY" bash "$dir/install.sh"
    else
        "$PY" -m pip install -q --no-index --find-links "$dir" vllm
    fi
}

# loop NAME LIMIT TRAIN-ARGS...: a training run in $WORK/NAME, no checkpoint; its metrics.jsonl becomes
# $OUT/NAME.jsonl (also after a timeout: every finished step is in it), the rest is deleted.
loop() {
    local name=$1 limit=$2 dir="$WORK/$1"
    shift 2
    part "$name" "$limit" "$OUT/$name.log" "$PY" -m nano_forkrl.train "$@" --save-every 0 --no-final-save \
        --overwrite --out-dir "$dir"
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
    part "$name" "$limit" "$OUT/$name.log" "$PY" -m nano_forkrl.bench "$@" --out "$OUT/$name.json"
    rm -f "$OUT/$name.json.tmp"  # left only by a kill in mid-write; the JSON itself is the last complete one
}

if [ -n "$wheels" ] && [ "$dry" = 0 ]; then
    export -f install_vllm
    export PY
    part install 240 "$OUT/install.txt" bash -c 'install_vllm "$1"' install "$wheels"
elif [ -n "$wheels" ]; then
    echo "install skipped: dry run (the installed vLLM, if any, is used)" | tee -a "$LOG"
fi
"$PY" -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__,
      'cuda', torch.cuda.is_available())" | tee -a "$LOG"
has_vllm=$("$PY" -c "import importlib.util; print(int(importlib.util.find_spec('vllm') is not None))")
with_vllm() { [ "$has_vllm" = 1 ] && echo "$1"; }
[ "$has_vllm" = 1 ] || echo "vllm is not installed: its parts are left out" | tee -a "$LOG"

part_quick() {
    local batch=${QUICK_BATCH:-256} prompt=${QUICK_PROMPT:-128} new=${QUICK_NEW:-512}
    local prompts=${QUICK_PROMPTS:-16} group=${QUICK_GROUP:-8} loop_new=${QUICK_LOOP_NEW:-512}
    part quick-fastdecode 60 "$OUT/quick-fastdecode.txt" \
        "$PY" -m pytest -q -p no:cacheprovider -rs tests/engines/test_fastdecode.py -k cuda
    [ "$has_vllm" = 1 ] && part quick-vllm 150 "$OUT/quick-vllm.txt" \
        "$PY" -m pytest -q -p no:cacheprovider -rs tests/engines/test_vllm_sampler.py \
        -k "${QUICK_VLLM_TESTS:-not resume_exactly and not torchrun}"
    loop quick-loop 150 --preset qwen3-0.6b --model "random:$QWEN3_DIR" --train-data gsm8k --steps 1 \
        --eval-every 0 --eval-n 8 --eval-k 1 --prompts-per-step "$prompts" --mini-batch-prompts "$prompts" \
        --group-size "$group" --max-new-tokens "$loop_new" --overlong-buffer $((loop_new / 4)) \
        --no-dynamic-sampling --sampler "$([ "$has_vllm" = 1 ] && echo vllm || echo torch)"
    bench quick-rollout 150 --model "$QWEN3_DIR" --samplers "torch$(with_vllm ,vllm)" --batches "$batch" \
        --prompt-len "$prompt" --new-tokens "$new" --no-update
    bench quick-update 75 --model "$QWEN3_DIR" --samplers none --update-shape "${QUICK_UPDATE:-8x4096}"
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
esac
echo "done in $(($(date +%s) - START))s: $LOG" | tee -a "$LOG"
