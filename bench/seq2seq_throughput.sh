#!/usr/bin/env bash
# Training throughput of the seq2seq attention model, C (attn train seq2seq) against PyTorch
# (bench/torch_seq2seq.py) in the same run: the same model (sizes, dropout, label smoothing),
# the same batches (exported by the C trainer), the same optimiser (Adam) and clipping, for a
# fixed number of steps; tokens/s = (source + target tokens, <eos> included) per second of
# training steps, counted the same way on both sides. C and PyTorch alternate, ROUNDS times
# each, and the medians are compared. PyTorch runs in two thread set-ups and the better median
# counts: its own THREADS threads with OpenBLAS single-threaded and OMP_WAIT_POLICY=PASSIVE,
# and one thread with OpenBLAS on THREADS threads. (Its default, OpenMP threads that spin
# while they wait plus OpenBLAS threads of its own, oversubscribes the cores and, on a machine
# shared with other work, runs 10 to 20 times slower than either set-up.)
#
# usage: bench/seq2seq_throughput.sh [path/to/attn]
# environment: DATA (../shared/data/cmn-eng/cmn.txt), STEPS (100), ROUNDS (3), THREADS (2),
#   ATTENTION (bahdanau), MODEL_ARGS (extra model options for both, e.g. "--hidden 512"
#   is not passed to PyTorch: use EMB/HIDDEN), EMB (256), HIDDEN (256), BATCH (64), OUT
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
ATTN=${1:-${ATTN:-$root/build/attn}}
DATA=${DATA:-$root/../shared/data/cmn-eng/cmn.txt}
STEPS=${STEPS:-100}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
ATTENTION=${ATTENTION:-bahdanau}
EMB=${EMB:-256}
HIDDEN=${HIDDEN:-256}
BATCH=${BATCH:-64}
OUT=${OUT:-$(mktemp -d)}
PY=${PYTHON:-/usr/bin/python3}
mkdir -p "$OUT"
common="--attention $ATTENTION --emb $EMB --hidden $HIDDEN --batch $BATCH"

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "seq2seq training throughput: $ATTENTION, emb $EMB, hidden $HIDDEN, batch $BATCH, $STEPS steps, $THREADS threads, $ROUNDS rounds"
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); attn $("$ATTN" --version | cut -d' ' -f2-)"
"$ATTN" train seq2seq --data "$DATA" --split-dir "$OUT/split" --out "$OUT/c" $common --max-steps "$STEPS" \
    --valid-bleu 0 --quiet --threads "$THREADS" --export-batches "$OUT/batches.txt" > /dev/null
: > "$OUT/c.tps"; : > "$OUT/t1.tps"; : > "$OUT/t2.tps"
for r in $(seq "$ROUNDS"); do
    rm -rf "$OUT/c"
    c=$("$ATTN" train seq2seq --train "$OUT/split/train.tsv" --out "$OUT/c" $common --max-steps "$STEPS" \
        --valid-bleu 0 --quiet --threads "$THREADS" | sed -n 's/.* \([0-9.]*\) tokens\/s.*/\1/p')
    t1=$(OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=1 "$PY" "$here/torch_seq2seq.py" --batches "$OUT/batches.txt" --steps "$STEPS" \
        --attention "$ATTENTION" --emb "$EMB" --hidden "$HIDDEN" --threads "$THREADS" 2>/dev/null | sed -n 's/.* \([0-9.]*\) tokens\/s.*/\1/p')
    t2=$(OPENBLAS_NUM_THREADS="$THREADS" "$PY" "$here/torch_seq2seq.py" --batches "$OUT/batches.txt" --steps "$STEPS" \
        --attention "$ATTENTION" --emb "$EMB" --hidden "$HIDDEN" --threads 1 2>/dev/null | sed -n 's/.* \([0-9.]*\) tokens\/s.*/\1/p')
    echo "round $r: C $c tokens/s, PyTorch $t1 tokens/s ($THREADS threads passive, OpenBLAS 1), $t2 tokens/s (1 thread, OpenBLAS $THREADS)"
    echo "$c" >> "$OUT/c.tps"; echo "$t1" >> "$OUT/t1.tps"; echo "$t2" >> "$OUT/t2.tps"
done
mc=$(median < "$OUT/c.tps"); m1=$(median < "$OUT/t1.tps"); m2=$(median < "$OUT/t2.tps")
best=$(printf '%s\n%s\n' "$m1" "$m2" | sort -g | tail -1)
echo "median tokens/s: C $mc, PyTorch $best (set-ups: $m1, $m2); C / PyTorch = $(awk -v a="$mc" -v b="$best" 'BEGIN { printf "%.2f", a / b }')"
