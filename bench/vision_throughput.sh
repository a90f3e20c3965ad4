#!/usr/bin/env bash
# Training throughput (images/s) of the visual-attention models, C (attn train vision) against
# PyTorch (bench/torch_vision.py: the same CNN and RAM, same sizes, loss, Adam and clipping) in
# the same run, for a fixed number of steps of BATCH images on TASK (default cluttered60:
# 60x60). attn trains on Fashion-MNIST (its training time alone: the final line's images/s);
# PyTorch on random images of the same size (the speed does not depend on the pixels). C and
# PyTorch alternate, ROUNDS times each, and the medians are compared. PyTorch runs with
# OMP_WAIT_POLICY=PASSIVE and THREADS threads, with the system BLAS and, where one is
# unpacked under /tmp/ob (OPENBLAS_DIR), with OpenBLAS; the better median counts.
#
# usage: bench/vision_throughput.sh [path/to/attn]
# environment: STEPS (20), ROUNDS (3), THREADS (1), BATCH (64), TASK (cluttered60),
#   MODELS ("cnn ram"), GLIMPSES (6), OPENBLAS_DIR (/tmp/ob/root/usr/lib/x86_64-linux-gnu/openblas-pthread)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
ATTN=${1:-${ATTN:-$root/build/attn}}
STEPS=${STEPS:-20}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-1}
BATCH=${BATCH:-64}
TASK=${TASK:-cluttered60}
MODELS=${MODELS:-cnn ram}
GLIMPSES=${GLIMPSES:-6}
OPENBLAS_DIR=${OPENBLAS_DIR:-/tmp/ob/root/usr/lib/x86_64-linux-gnu/openblas-pthread}
PY=${PYTHON:-/usr/bin/python3}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
case $TASK in centred28) S=28 ;; cluttered100) S=100 ;; *) S=60 ;; esac
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || echo unknown)
echo "vision training throughput: $TASK (${S}x$S), batch $BATCH, $STEPS steps, $THREADS thread(s), $ROUNDS rounds"
echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "system BLAS: $blas$(case $blas in */blas/libblas.so*) echo ' (the reference BLAS)' ;; esac)"
[ -d "$OPENBLAS_DIR" ] && echo "OpenBLAS for PyTorch too: $OPENBLAS_DIR" || OPENBLAS_DIR=""
for model in $MODELS; do
    cfg=$("$ATTN" train vision --model "$model" --task "$TASK" --glimpses "$GLIMPSES" --train 64 --valid 0 --test 1 --max-steps 1 \
        --out "$OUT/cfg-$model" 2>&1 >/dev/null | grep '^model:' || true)
    # RAM's settings as attn chose them (patch, scales, core), for PyTorch
    args=""
    if [ "$model" = ram ]; then
        j=$OUT/cfg-$model/config.json
        get() { grep -o "\"$1\": [0-9]*" "$j" | head -1 | grep -o "[0-9]*$"; }
        args="$(get glimpses) $(get patch) $(get scales) $(get hidden) $(get lstm)"
    fi
    : > "$OUT/c"; : > "$OUT/t"; : > "$OUT/o"
    for r in $(seq "$ROUNDS"); do
        "$ATTN" train vision --model "$model" --task "$TASK" --glimpses "$GLIMPSES" --train $((STEPS * BATCH)) --valid 0 --test 1 \
            --epochs 1 --batch "$BATCH" --threads "$THREADS" --log-every 0 --out "$OUT/run" > "$OUT/line" 2>/dev/null
        sed -E 's/.* ([0-9.]+) images\/s.*/\1/' "$OUT/line" >> "$OUT/c"
        OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=$THREADS "$PY" "$here/torch_vision.py" "$model" "$S" "$STEPS" "$BATCH" "$THREADS" $args |
            awk '{ print $2 }' >> "$OUT/t"
        if [ -n "$OPENBLAS_DIR" ]; then
            LD_LIBRARY_PATH=$OPENBLAS_DIR OPENBLAS_NUM_THREADS=$THREADS OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=$THREADS \
                "$PY" "$here/torch_vision.py" "$model" "$S" "$STEPS" "$BATCH" "$THREADS" $args | awk '{ print $2 }' >> "$OUT/o"
        fi
    done
    c=$(median < "$OUT/c") t=$(median < "$OUT/t")
    o=$([ -s "$OUT/o" ] && median < "$OUT/o" || echo 0)
    best=$(awk -v a="$t" -v b="$o" 'BEGIN { print (a > b ? a : b) }')
    echo "$model: ${cfg#model: }"
    printf '  attn %8.1f images/s   pytorch %8.1f (system BLAS) %8.1f (OpenBLAS)   attn / best pytorch = %.2fx\n' \
        "$c" "$t" "$o" "$(awk -v a="$c" -v b="$best" 'BEGIN { print a / b }')"
    echo "  rounds: attn $(tr '\n' ' ' < "$OUT/c")| pytorch $(tr '\n' ' ' < "$OUT/t")| openblas $(tr '\n' ' ' < "$OUT/o")"
done
