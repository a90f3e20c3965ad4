#!/usr/bin/env bash
# experiments/associative_recall.sh: associative recall (Ba et al. 2016, section 4.1), the task
# a soft, learnable address solves. Trains each model of `attn train recall` (a GRU, an LSTM,
# the GRU with a soft key-value memory of its own states, the same with a hard argmax address
# trained straight-through, and the hard address with its own, zero, gradient as a control)
# for K = 4, 8, 16, 32 pairs at a small hidden size, and every model
# at K = 16 with a larger one; scores each on its test split (attn eval --json); writes
#   experiments/results/associative_recall.md    the table (beside Ba et al.'s setup)
#   experiments/results/associative_recall.csv   one row per (model, pairs, hidden)
#   experiments/results/associative_recall.svg   test accuracy vs pairs, one line per model
#
# usage: experiments/associative_recall.sh [--quick] [ATTN]
#   --quick   a smoke run: K = 4 and 8, 1 epoch of 2,000 sequences per model, results in
#             OUT/quick/ (under a minute); the figures mean nothing
#   ATTN      the attn binary (default build/attn)
#
# Environment (all optional):
#   OUT       working directory (default experiments/out/associative_recall; git-ignored)
#   RESULTS   where the table and the plot go (default experiments/results)
#   MODELS    (default: gru lstm gru-attn gru-hard gru-argmax)
#   PAIRS     (default: 4 8 16 32)
#   HIDDEN    the small hidden size, every K (default 32)
#   BIG       the larger hidden size, K = 16 only (default 128; empty: none)
#   TRAIN, VALID, TEST   sequences per split (default 20000 2000 5000; Ba et al.: 100000,
#             10000, 20000)
#   EPOCHS    epochs per run (default 30; no early stopping: a plain RNN can sit on a
#             plateau for epochs before it finds a way to store the pairs), or fewer when
#             the run reaches TIME seconds of training (default 300); it is scored with its
#             last weights
#   JOBS      runs at once (default 2, one thread each)
#   PY        python 3 for the table and the plot (default /usr/bin/python3; standard
#             library only)
# A run already done (its directory holds eval.json) is not run again.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
quick=0
if [ "${1:-}" = "--quick" ]; then quick=1; shift; fi
case "${1:-}" in -h|--help) sed -n '2,33p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; -*) echo "$(basename "$0"): unknown option $1 (see --help)" >&2; exit 2 ;; esac
ATTN=${1:-${ATTN:-$root/build/attn}}
OUT=${OUT:-$here/out/associative_recall}
RESULTS=${RESULTS:-$here/results}
MODELS=${MODELS:-gru lstm gru-attn gru-hard gru-argmax}
PAIRS=${PAIRS:-4 8 16 32}
HIDDEN=${HIDDEN:-32}
BIG=${BIG-128}
TRAIN=${TRAIN:-20000} VALID=${VALID:-2000} TEST=${TEST:-5000}
EPOCHS=${EPOCHS:-30}
TIME=${TIME:-300}
JOBS=${JOBS:-2}
PY=${PY:-/usr/bin/python3}
if [ "$quick" = 1 ]; then
    OUT=$OUT/quick RESULTS=$OUT/results
    PAIRS="4 8" BIG="" TRAIN=2000 VALID=200 TEST=500 EPOCHS=1 TIME=20
fi
[ -x "$ATTN" ] || { echo "$(basename "$0"): no attn binary at $ATTN (build first, or pass its path)" >&2; exit 2; }
mkdir -p "$OUT" "$RESULTS"
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

# one run: train, then attn eval --json of the model on its test split
run() {
    local model=$1 K=$2 H=$3 dir=$OUT/$1-k$2-h$3
    [ -f "$dir/eval.json" ] && return 0
    rm -rf "$dir"
    mkdir -p "$dir"
    local cmd=("$ATTN" train recall --model "$model" --pairs "$K" --hidden "$H" --train "$TRAIN" --valid "$VALID" --test "$TEST"
               --seed 1 --epochs "$EPOCHS" --time-budget "$TIME" --threads 1 --log-every 0 --out "$dir")
    echo "${cmd[*]}" > "$dir/command"
    if "${cmd[@]}" > "$dir/train.out" 2> "$dir/train.log" &&
        "$ATTN" eval --model "$dir" --json > "$dir/eval.json.tmp"; then
        mv "$dir/eval.json.tmp" "$dir/eval.json"
        log "$model K=$K H=$H: $(tail -n 1 "$dir/train.out")"
    else
        log "$model K=$K H=$H FAILED (see $dir/train.log)"
    fi
}

runs=()
for K in $PAIRS; do for m in $MODELS; do runs+=("$m $K $HIDDEN"); done; done
if [ -n "$BIG" ]; then for m in $MODELS; do runs+=("$m 16 $BIG"); done; fi
log "${#runs[@]} runs, $JOBS at a time, in $OUT"
for r in "${runs[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
    run $r &
done
wait
"$PY" "$here/associative_recall.py" "$OUT" "$RESULTS" $([ "$quick" = 1 ] && echo --quick)
log "wrote $RESULTS/associative_recall.{md,csv,svg}"
