#!/usr/bin/env bash
# A peer, side by side: the BiGRU-attention and Transformer text classifiers trained by attn
# and by PyTorch (experiments/classifier_torch.py: the same models from torch.nn, the same
# sizes, vocabulary, batch policy, Adam lr 1e-3 and dropout) on SST-2's training texts, in one
# run, alternating the two programs ROUNDS times per model so that both meet the same machine
# load. Throughput in sentences/s and tokens/s over STEPS updates after the first WARM
# (forward + backward + Adam step; attn's trainer times the same, its batch assembly included).
# PyTorch runs with the same threads, OMP_WAIT_POLICY=PASSIVE (its spinning OpenMP threads are
# several times slower on a shared machine) and OPENBLAS_NUM_THREADS=1.
#
# BLAS: Debian's PyTorch does its matrix products through libblas.so.3, which is whatever the
# alternatives system points at. On the reference BLAS (libblas3) PyTorch is about 5 times
# slower than on OpenBLAS, and a comparison against it is meaningless; this script says so
# loudly and marks the table. OPENBLAS_DIR=DIR puts DIR (holding OpenBLAS's libblas.so.3)
# first on PyTorch's library path without installing anything, e.g.
#   apt-get download libopenblas0-pthread && dpkg-deb -x libopenblas0-pthread_*.deb /tmp/ob
#   OPENBLAS_DIR=/tmp/ob/usr/lib/x86_64-linux-gnu/openblas-pthread experiments/classifier_vs_torch.sh
#
# usage: experiments/classifier_vs_torch.sh [path/to/attn]
#   DATA (default ../shared/data/sst2/train.tsv), STEPS (default 100), WARM (default 10),
#   ROUNDS (default 3), THREADS (default 2), MODELS (default "bigru-attn transformer"),
#   PY (default /usr/bin/python3), OUT (default experiments/out/classifier), RESULTS
# outputs: RESULTS/classifier_vs_torch.{csv,md}
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
ATTN=${1:-${ATTN:-$root/build/attn}}
DATA=${DATA:-$root/../shared/data/sst2/train.tsv}
STEPS=${STEPS:-100}
WARM=${WARM:-10}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
MODELS=${MODELS:-bigru-attn transformer}
PY=${PY:-/usr/bin/python3}
OUT=${OUT:-$here/out/classifier}
RESULTS=${RESULTS:-$here/results}
[ -x "$ATTN" ] || { echo "$(basename "$0"): no attn binary at $ATTN (build first, or pass its path)" >&2; exit 2; }
[ -r "$DATA" ] || { echo "$(basename "$0"): cannot read the data $DATA (see ../shared/data/README.md)" >&2; exit 2; }
mkdir -p "$OUT" "$RESULTS"
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

# Which libblas.so.3 PyTorch loads, and whether it is OpenBLAS.
if [ -n "${OPENBLAS_DIR:-}" ]; then
    [ -r "$OPENBLAS_DIR/libblas.so.3" ] || { echo "$(basename "$0"): no libblas.so.3 in OPENBLAS_DIR=$OPENBLAS_DIR" >&2; exit 2; }
    export LD_LIBRARY_PATH="$OPENBLAS_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
torch_lib=$("$PY" -c "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib', 'libtorch_cpu.so'))")
blas=$(ldd "$torch_lib" | awk '$1 == "libblas.so.3" { print $3 }')
blas=$(readlink -f "${blas:-/usr/lib/x86_64-linux-gnu/libblas.so.3}")
if ldd "$blas" 2>/dev/null | grep -q openblas || [[ "$blas" == *openblas* ]]; then
    blas_note="OpenBLAS ($blas)"
else
    blas_note="the REFERENCE BLAS ($blas), NOT OpenBLAS: PyTorch is several times slower than it should be"
    for _ in 1 2 3; do
        echo "WARNING: PyTorch's libblas.so.3 is $blas, the reference BLAS, not OpenBLAS: its numbers are" \
             "meaningless (see the top of $(basename "$0"): OPENBLAS_DIR=...)" >&2
    done
fi
log "PyTorch's BLAS: $blas_note"

raw="$OUT/vs_torch_runs.csv"
echo "model,round,program,sentences_per_s,tokens_per_s" >"$raw"
for m in $MODELS; do
    for r in $(seq 1 "$ROUNDS"); do
        rm -rf "$OUT/ck" && mkdir -p "$OUT/ck"
        "$ATTN" train classifier --model "$m" --train "$DATA" --out "$OUT/ck" --batch 64 --lr 1e-3 --threads "$THREADS" \
            --max-steps $((STEPS + WARM)) --timing-skip "$WARM" --quiet >"$OUT/attn.log" 2>&1 ||
            { cat "$OUT/attn.log" >&2; exit 1; }
        as=$(sed -n 's/.* \([0-9.]*\) sentences\/s, \([0-9]*\) tokens\/s.*/\1/p' "$OUT/attn.log")
        at=$(sed -n 's/.* \([0-9.]*\) sentences\/s, \([0-9]*\) tokens\/s.*/\2/p' "$OUT/attn.log")
        OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=1 "$PY" "$here/classifier_torch.py" --data "$DATA" --model "$m" \
            --batch 64 --threads "$THREADS" --steps "$STEPS" --warmup-steps "$WARM" >"$OUT/torch.log" 2>&1 ||
            { cat "$OUT/torch.log" >&2; exit 1; }
        ts=$(sed -n 's/.* \([0-9.]*\) sentences\/s, \([0-9]*\) tokens\/s.*/\1/p' "$OUT/torch.log")
        tt=$(sed -n 's/.* \([0-9.]*\) sentences\/s, \([0-9]*\) tokens\/s.*/\2/p' "$OUT/torch.log")
        [ -n "$as" ] && [ -n "$ts" ] || { echo "cannot read the throughput:" >&2; cat "$OUT/attn.log" "$OUT/torch.log" >&2; exit 1; }
        log "$m, round $r: attn $as sentences/s ($at tokens/s), torch $ts sentences/s ($tt tokens/s)"
        echo "$m,$r,attn,$as,$at" >>"$raw"
        echo "$m,$r,torch,$ts,$tt" >>"$raw"
    done
done

tv=$("$PY" -c "import torch; print(torch.__version__)")
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)
isa=$(grep -o -w -E 'avx2|avx512f|avx512bw|avx512_bf16|amx_tile|fma' /proc/cpuinfo | sort -u | tr '\n' ' ')
csv="$RESULTS/classifier_vs_torch.csv"
md="$RESULTS/classifier_vs_torch.md"
awk -F, 'NR > 1 { v[$1, $3, $2, 4] = $4; v[$1, $3, $2, 5] = $5; if (!($1 in seen)) { seen[$1] = 1; ms[++n] = $1 }; if ($2 > R) R = $2 }
    function median(m, p, c,   i, j, x, t, k) { k = 0; for (i = 1; i <= R; i++) x[++k] = v[m, p, i, c]
        for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (x[j] + 0 < x[i] + 0) { t = x[i]; x[i] = x[j]; x[j] = t }
        return k % 2 ? x[(k + 1) / 2] : (x[k / 2] + x[k / 2 + 1]) / 2 }
    BEGIN { print "model,attn_sentences_per_s,torch_sentences_per_s,attn_tokens_per_s,torch_tokens_per_s,speedup,speedup_tokens,rounds" }
    END { for (i = 1; i <= n; i++) { as = median(ms[i], "attn", 4); ts = median(ms[i], "torch", 4)
        at = median(ms[i], "attn", 5); tt = median(ms[i], "torch", 5)
        printf "%s,%.1f,%.1f,%.0f,%.0f,%.2f,%.2f,%d\n", ms[i], as, ts, at, tt, as / ts, at / tt, R } }' \
    "$raw" >"$csv"
{
    echo "# Training throughput of the text classifiers: attn and PyTorch"
    echo
    echo "The same models (embed 128, hidden 128; Transformer: 2 post-LN layers, 4 heads, d_ff 256,"
    echo "sinusoidal positions, [CLS] pooling), dropout 0.1, batch 64 padded to its longest sentence,"
    echo "Adam lr 1e-3, on SST-2's training texts ($(basename "$DATA")); $THREADS threads each; $STEPS timed"
    echo "updates after $WARM; median of $ROUNDS rounds alternating attn and PyTorch $tv in one run."
    echo "Speed-up = attn's over PyTorch's, in sentences/s and in tokens/s (the two programs shuffle with"
    echo "different generators, so their timed batches differ in length: both measures are shown)."
    echo "PyTorch's BLAS: $blas_note."
    echo
    echo "Machine: $cpu; flags: $isa; $(nproc) cores. Shared with other processes during the run"
    echo "(both programs alternate, so the load falls on both alike)."
    echo
    echo "| model | attn sentences/s | PyTorch sentences/s | attn tokens/s | PyTorch tokens/s | speed-up (sentences) | speed-up (tokens) |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    awk -F, 'NR > 1 { printf "| %s | %s | %s | %s | %s | %sx | %sx |\n", $1, $2, $3, $4, $5, $6, $7 }' "$csv"
    echo
    echo "Every round (sentences/s): $(awk -F, 'NR > 1 { printf "%s%s %s %s", sep, $1, $3, $4; sep = "; " }' "$raw")."
    echo
    echo "Command: ${OPENBLAS_DIR:+OPENBLAS_DIR=$OPENBLAS_DIR }STEPS=$STEPS WARM=$WARM ROUNDS=$ROUNDS THREADS=$THREADS" \
         "experiments/classifier_vs_torch.sh"
} >"$md"
log "done: $csv, $md"
cat "$md"
