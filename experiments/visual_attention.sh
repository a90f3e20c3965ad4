#!/usr/bin/env bash
# experiments/visual_attention.sh: where attention began: the Recurrent Attention Model (Mnih,
# Heess, Graves, Kavukcuoglu 2014, "Recurrent Models of Visual Attention") beside the baselines
# of its tables (a fully connected net, a convolutional net) and soft spatial attention (Xu et
# al. 2015), on Fashion-MNIST's versions of the paper's tasks (centred 28x28, cluttered 60x60,
# and where asked translated 60x60 and cluttered 100x100). Trains each (attn train vision),
# scores it on the test images (attn eval --json), draws glimpse paths and heat maps
# (attn classify-image --show-glimpses) and example images (attn vision-examples), and writes
#   experiments/results/visual_attention.md    the table, beside the paper's MNIST figures
#   experiments/results/visual_attention.csv   one row per run
#   experiments/results/visual_attention.svg   test error and multiply-adds per model and task
#   experiments/results/visual_attention/*.png the pictures
#
# usage: experiments/visual_attention.sh [--quick] [ATTN]
#   --quick   a smoke run: 2,000 training images, 1 epoch per run, results in OUT/quick/
#             (a few minutes); the figures mean nothing
#   ATTN      the attn binary (default build/attn)
#
# Needs Fashion-MNIST: tools/install-experiment-deps.sh (Debian's dataset-fashion-mnist).
# Environment (all optional):
#   OUT       working directory (default experiments/out/visual_attention; git-ignored)
#   RESULTS   where the table, plot and pictures go (default experiments/results)
#   RUNS      the runs, "MODEL:TASK[:GLIMPSES[:SCALES]]" separated by spaces (default: fc, cnn,
#             soft on centred28 and cluttered60; ram with 6 glimpses on centred28 (1 scale, the
#             paper's, and 3 scales) and with 4, 6, 8 on cluttered60)
#   TRAIN, VALID, TEST   images (default 55000 2000 10000)
#   EPOCHS    epochs per run (default 10), or fewer when the run reaches TIME seconds of
#             training (default 1800); it is scored with its last weights
#   JOBS      runs at once (default 2, one thread each)
#   FC_OPTS, CNN_OPTS, SOFT_OPTS, RAM_OPTS   more options of attn train vision for that model's
#             runs, after the others (so they win), e.g. RAM_OPTS="--epochs 60 --schedule cosine"
#   KEEP      1: the rows of RESULTS/visual_attention.csv (as it was when the script first ran
#             in OUT) whose configuration is not run now stay in the table, marked as earlier
#             runs with their CPU (default 0)
#   PY        python 3 for the table and the plot (default /usr/bin/python3; standard library)
# A run already done (its directory holds eval.json) is not run again.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
quick=0
if [ "${1:-}" = "--quick" ]; then quick=1; shift; fi
case "${1:-}" in -h|--help) sed -n '2,36p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; -*) echo "$(basename "$0"): unknown option $1 (see --help)" >&2; exit 2 ;; esac
ATTN=${1:-${ATTN:-$root/build/attn}}
OUT=${OUT:-$here/out/visual_attention}
RESULTS=${RESULTS:-$here/results}
RUNS=${RUNS:-fc:centred28 cnn:centred28 soft:centred28 ram:centred28:6 ram:centred28:6:3 fc:cluttered60 cnn:cluttered60 soft:cluttered60 ram:cluttered60:4 ram:cluttered60:6 ram:cluttered60:8}
TRAIN=${TRAIN:-55000} VALID=${VALID:-2000} TEST=${TEST:-10000}
EPOCHS=${EPOCHS:-10}
TIME=${TIME:-1800}
JOBS=${JOBS:-2}
KEEP=${KEEP:-0}
PY=${PY:-/usr/bin/python3}
if [ "$quick" = 1 ]; then
    OUT=$OUT/quick RESULTS=$OUT/results
    TRAIN=2000 VALID=200 TEST=500 EPOCHS=1 TIME=60
fi
[ -x "$ATTN" ] || { echo "$(basename "$0"): no attn binary at $ATTN (build first, or pass its path)" >&2; exit 2; }
mkdir -p "$(dirname "$OUT")" # a fresh checkout has no experiments/out yet
if ! "$ATTN" vision-examples --task centred28 --n 1 --out "$OUT.check.png" > /dev/null 2> "$OUT.check.err"; then
    cat "$OUT.check.err" >&2
    echo "$(basename "$0"): Fashion-MNIST is needed: run tools/install-experiment-deps.sh (Debian's dataset-fashion-mnist)" >&2
    exit 1
fi
rm -f "$OUT.check.png" "$OUT.check.err"
mkdir -p "$OUT" "$RESULTS/visual_attention"
keep=()
if [ "$KEEP" = 1 ]; then
    [ -f "$OUT/previous.csv" ] || cp "$RESULTS/visual_attention.csv" "$OUT/previous.csv" ||
        { echo "$(basename "$0"): KEEP=1 needs $RESULTS/visual_attention.csv" >&2; exit 2; }
    keep=(--keep "$OUT/previous.csv")
fi
cpu=$(grep -m1 '^model name' /proc/cpuinfo 2>/dev/null | sed 's/^[^:]*: *//')
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

# one run: train, then attn eval --json on the test images, then two glimpse pictures
run() {
    local model=$1 task=$2 n=${3:-} k=${4:-} name=$1-$2${3:+-g$3}${4:+-k$4}
    local dir=$OUT/$name
    [ -f "$dir/eval.json" ] && return 0
    rm -rf "$dir"
    mkdir -p "$dir"
    local opts_var=${model^^}_OPTS
    local cmd=("$ATTN" train vision --model "$model" --task "$task" ${n:+--glimpses "$n"} ${k:+--scales "$k"} --train "$TRAIN" --valid "$VALID"
               --test "$TEST" --seed 1 --epochs "$EPOCHS" --time-budget "$TIME" --threads 1 --log-every 100 --log "$dir/log.csv"
               --out "$dir" ${!opts_var:-})
    echo "${cmd[*]}" > "$dir/command"
    echo "${cpu:-unknown CPU}" > "$dir/cpu"
    local t0=$SECONDS
    if "${cmd[@]}" > "$dir/train.out" 2> "$dir/train.log" &&
        "$ATTN" eval --model "$dir" --test "$TEST" --json > "$dir/eval.out"; then
        echo $((SECONDS - t0)) > "$dir/seconds"
        tail -n 1 "$dir/eval.out" > "$dir/eval.json"
        log "$name: $(tail -n 1 "$dir/train.out")"
    else
        log "$name FAILED (see $dir/train.log)"
    fi
}

log "examples of each task in $RESULTS/visual_attention/"
for t in centred28 translated60 cluttered60 cluttered100; do
    "$ATTN" vision-examples --task "$t" --n 8 --out "$RESULTS/visual_attention/examples-$t.png" > /dev/null
done
log "$(echo $RUNS | wc -w) runs, $JOBS at a time, in $OUT"
for r in $RUNS; do
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
    run ${r//:/ } &
done
wait
# Pictures: the glimpse paths of the ram runs and the heat maps of the soft ones, on the
# first test images of their task (8 for ram with 4 or 6 glimpses and soft on cluttered60, 2 else).
for dir in "$OUT"/ram-* "$OUT"/soft-*; do
    [ -f "$dir/eval.json" ] || continue
    case $(basename "$dir") in ram-cluttered60-g4 | ram-cluttered60-g6 | soft-cluttered60) pics="0 1 2 3 4 5 6 7" ;; *) pics="0 1" ;; esac
    for i in $pics; do
        "$ATTN" classify-image --model "$dir" --index $i --show-glimpses "$RESULTS/visual_attention/$(basename "$dir")-$i.png" \
            > "$dir/classify-$i.out" 2>&1 || log "classify-image $dir $i failed"
    done
done
"$PY" "$here/visual_attention.py" "$OUT" "$RESULTS" "${keep[@]}" $([ "$quick" = 1 ] && echo --quick)
log "wrote $RESULTS/visual_attention.{md,csv,svg}"
