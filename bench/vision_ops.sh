#!/usr/bin/env bash
# Training-step throughput of the vision operations (conv2d, max_pool2d, relu, linear,
# cross-entropy on the tape) against PyTorch on the same CNN and batch: bench/vision_ops.c
# (compiled here against build/libattn.a) and bench/torch_vision_ops.py, alternating ROUNDS
# times per image size; medians compared. PyTorch runs in two thread set-ups and the better
# median counts: THREADS threads with OMP_WAIT_POLICY=PASSIVE (OpenBLAS single-threaded), and
# one thread (see seq2seq_throughput.sh for why its default set-up is not used). Each side also
# reports images per second of its CPU time (the speed when the cores are ours: on a busy
# machine the wall clock measures the neighbours). This times the operations only; the
# models' own benchmark is the issue's bench script.
#
# usage: bench/vision_ops.sh [build dir]
# environment: SIZES (28 60 100), BATCH (64), C1 (16), C2 (32), STEPS (8), ROUNDS (3), THREADS (2)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
BUILD=${1:-$root/build}
SIZES=${SIZES:-28 60 100}
BATCH=${BATCH:-64}; C1=${C1:-16}; C2=${C2:-32}; STEPS=${STEPS:-8}; ROUNDS=${ROUNDS:-3}; THREADS=${THREADS:-2}
PY=${PYTHON:-/usr/bin/python3}
# Both sides with glibc huge pages and a high mmap threshold, as run_attention.sh: without them
# PyTorch pays a page fault per 4 KiB of each fresh activation, and varies 2-3x run to run.
export GLIBC_TUNABLES=${GLIBC_TUNABLES:-glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967296:glibc.malloc.top_pad=268435456}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -O2 -I"$root/include" "$here/vision_ops.c" "$BUILD/libattn.a" -lm -lpthread -o "$tmp/vision_ops"
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
run() { "$@" | sed -n 's/^\([0-9.]*\) images\/s, \([0-9.]*\) images per CPU second/\1 \2/p'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo "CNN training step (conv 5x5 $C1, pool, conv 5x5 $C2, pool, linear), batch $BATCH, $THREADS threads, $ROUNDS rounds"
echo "machine: $(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p')), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| image | attn images/s | PyTorch images/s | attn / PyTorch | attn per CPU s | PyTorch per CPU s | attn / PyTorch (CPU) |"
echo "|---|---|---|---|---|---|---|"
for S in $SIZES; do
    : > "$tmp/c"; : > "$tmp/t1"; : > "$tmp/t2"
    for r in $(seq "$ROUNDS"); do
        run "$tmp/vision_ops" "$S" "$BATCH" "$C1" "$C2" "$STEPS" "$THREADS" >> "$tmp/c"
        OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=1 run "$PY" "$here/torch_vision_ops.py" "$S" "$BATCH" "$C1" "$C2" "$STEPS" "$THREADS" >> "$tmp/t1"
        OPENBLAS_NUM_THREADS=1 run "$PY" "$here/torch_vision_ops.py" "$S" "$BATCH" "$C1" "$C2" "$STEPS" 1 >> "$tmp/t2"
    done
    mc=$(cut -d' ' -f1 "$tmp/c" | median); m1=$(cut -d' ' -f1 "$tmp/t1" | median); m2=$(cut -d' ' -f1 "$tmp/t2" | median)
    cc_=$(cut -d' ' -f2 "$tmp/c" | median); c1=$(cut -d' ' -f2 "$tmp/t1" | median); c2=$(cut -d' ' -f2 "$tmp/t2" | median)
    best=$(printf '%s\n%s\n' "$m1" "$m2" | sort -g | tail -1); cbest=$(printf '%s\n%s\n' "$c1" "$c2" | sort -g | tail -1)
    echo "| ${S}x${S} | $mc | $best ($m1 / $m2) | $(ratio "$mc" "$best") | $cc_ | $cbest ($c1 / $c2) | $(ratio "$cc_" "$cbest") |"
done
echo
echo "(PyTorch: the better median of $THREADS threads passive / 1 thread. Per CPU s: images per second of the"
echo " process's CPU time, the speed when the cores are ours on a shared machine. Load after: $(cut -d' ' -f1-3 /proc/loadavg))"
