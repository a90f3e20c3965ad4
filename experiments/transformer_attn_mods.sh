#!/usr/bin/env bash
# Attention dropout and learned ALiBi slopes in the Transformer (issue 13): four small
# Transformers trained on the translation split with the SAME settings and seed, differing
# only in the attention's position encoding and dropout:
#   a_sinusoidal   sinusoidal positions, no attention dropout (the baseline)
#   b_attn_drop    sinusoidal + --attn-dropout 0.1 (dropout on the attention weights, inside
#                  the fused kernels, in every attention)
#   c_alibi        --pos alibi: the paper's fixed geometric slopes
#   d_alibi_learn  --pos alibi --alibi-learn: every self-attention's slopes are parameters (one
#                  vector per layer, encoder and decoder; before 2026-12-06 the decoder's only),
#                  trained through the kernels' dSlopes
# then test BLEU of each, greedy and beam 5 (attn eval), and the learned slopes beside their
# initial values. To tell an effect from the spread of training, a and c are trained again with
# --seed 2 (other initial weights, dropout masks and batch order). Two trainings run at a time (nice -n 5, one thread each: the machine is shared).
# Writes RESULTS/transformer_attn_mods.md and .csv. Resumable: a run whose log says it finished
# is kept, and so is an evaluation already made (delete OUT, or its files, to redo them).
#
# usage: experiments/transformer_attn_mods.sh [path/to/attn]
# environment (optional): DATA (default ../shared/data/cmn-eng/cmn.txt beside the repository),
#   OUT (default experiments/out/transformer_attn_mods), RESULTS (default experiments/results),
#   EPOCHS (default 5: what fitted the session that made the table; the usual command of
#   experiments/knn_mt.sh trains 12), PY (python 3 with numpy, for the slopes; default /usr/bin/python3).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
ATTN=${1:-${ATTN:-$root/build/attn}}
DATA=${DATA:-$root/../shared/data/cmn-eng/cmn.txt}
[ -r "$DATA" ] || [ ! -r "$root/../../shared/data/cmn-eng/cmn.txt" ] || DATA=$root/../../shared/data/cmn-eng/cmn.txt # a worktree
OUT=${OUT:-$here/out/transformer_attn_mods}
RESULTS=${RESULTS:-$here/results}
EPOCHS=${EPOCHS:-5}
PY=${PY:-/usr/bin/python3}
[ -x "$ATTN" ] || { echo "transformer_attn_mods: no attn binary at $ATTN (build first, or pass its path)" >&2; exit 2; }
[ -r "$DATA" ] || { echo "transformer_attn_mods: cannot read the data $DATA (see ../shared/data/README.md)" >&2; exit 2; }
mkdir -p "$OUT" "$RESULTS"
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

# The split of models/README.md and experiments/knn_mt.sh (seeded: always the same).
SPLIT=$OUT/split
if [ ! -s "$SPLIT/test.tsv" ]; then
    log "splitting $DATA"
    "$ATTN" train seq2seq --data "$DATA" --split-dir "$SPLIT" --split-only --out "$SPLIT" >&2
fi

NAMES=(a_sinusoidal b_attn_drop c_alibi d_alibi_learn a_sinusoidal_seed2 c_alibi_seed2)
declare -A ARGS=([a_sinusoidal]="--pos sinusoidal" [b_attn_drop]="--pos sinusoidal --attn-dropout 0.1"
                 [c_alibi]="--pos alibi" [d_alibi_learn]="--pos alibi --alibi-learn"
                 [a_sinusoidal_seed2]="--pos sinusoidal --seed 2" [c_alibi_seed2]="--pos alibi --seed 2")
COMMON="--d-model 128 --heads 4 --ff 512 --layers 2 --epochs $EPOCHS --threads 1 --weights-only --valid-bleu 200"

# train NAME: one model into OUT/NAME, its output in OUT/NAME.log (wall seconds last).
train() {
    local name=$1
    if grep -q '^trained: ' "$OUT/$name.log" 2>/dev/null; then log "$name: trained already"; return; fi
    log "$name: training (${ARGS[$name]})"
    # shellcheck disable=SC2086
    /usr/bin/time -f "%e s wall" nice -n 5 "$ATTN" train transformer --train "$SPLIT/train.tsv" --valid "$SPLIT/valid.tsv" \
        --out "$OUT/$name" $COMMON ${ARGS[$name]} --log "$OUT/$name.train.csv" >"$OUT/$name.log" 2>&1 ||
        { tail -n 5 "$OUT/$name.log" >&2; return 1; }
}
# two at a time: the fixed encodings, the new options, the fixed encodings' second seed
for pair in "a_sinusoidal c_alibi" "b_attn_drop d_alibi_learn" "a_sinusoidal_seed2 c_alibi_seed2"; do
    pids=()
    for name in $pair; do train "$name" & pids+=($!); done
    for p in "${pids[@]}"; do wait "$p"; done
done

# test BLEU, greedy and beam 5 (eval's --threads 2: decoding only, not part of the comparison)
for name in "${NAMES[@]}"; do
    for beam in 1 5; do
        f=$OUT/$name.test.beam$beam.txt
        [ -s "$f" ] && [ "$f" -nt "$OUT/$name/model.safetensors" ] && continue
        log "$name: test BLEU, beam $beam"
        "$ATTN" eval --model "$OUT/$name" --data "$SPLIT/test.tsv" --beam $beam --threads 2 --quiet >"$f.tmp"
        mv "$f.tmp" "$f"
    done
done

# the table
bleu() { sed -n 's/.*: BLEU \([0-9.]*\),.*/\1/p' "$1"; }
CSV=$RESULTS/transformer_attn_mods.csv MD=$RESULTS/transformer_attn_mods.md
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)
{
    echo "run,args,epochs,train_s,wall_s,final_valid_loss,valid_bleu_200,test_bleu_greedy,test_bleu_beam5"
    for name in "${NAMES[@]}"; do
        l=$OUT/$name.log
        ts=$(sed -n 's/.*(training \([0-9.]*\) s).*/\1/p' "$l")
        ws=$(sed -n 's/^\([0-9.]*\) s wall$/\1/p' "$l")
        last=$(tail -n 1 "$OUT/$name.train.csv")
        echo "$name,${ARGS[$name]},$EPOCHS,$ts,$ws,$(echo "$last" | cut -d, -f6),$(echo "$last" | cut -d, -f7),$(bleu "$OUT/$name.test.beam1.txt"),$(bleu "$OUT/$name.test.beam5.txt")"
    done
} >"$CSV.tmp"
mv "$CSV.tmp" "$CSV"

# the learned slopes (model.safetensors of d) beside their start, the paper's 2^(-8 (h + 1) / H)
slopes=$("$PY" - "$OUT/d_alibi_learn/model.safetensors" <<'EOF'
import json, struct, sys
import numpy as np
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
head = json.loads(b[8:8 + n])
for k in sorted(k for k in head if k.endswith("alibi_slopes")):
    s, e = head[k]["data_offsets"]
    v = np.frombuffer(b[8 + n + s:8 + n + e], dtype="<f4")
    H = v.size
    init = [2.0 ** (-8.0 * (h + 1) / H) for h in range(H)]
    print("| %s | %s | %s |" % (k, " ".join("%.4f" % x for x in init), " ".join("%.4f" % x for x in v)))
EOF
)

{
    echo "# Attention dropout and learned ALiBi slopes in the Transformer"
    echo
    echo "Generated by experiments/transformer_attn_mods.sh on $(date -u +%Y-%m-%d) ($cpu, $(nproc) cores, shared with"
    echo "other sessions: the times are noisy). Data: the cmn-eng split of experiments/knn_mt.sh"
    echo "($(wc -l <"$SPLIT/train.tsv") train, $(wc -l <"$SPLIT/valid.tsv") valid, $(wc -l <"$SPLIT/test.tsv") test pairs, zh -> en)."
    echo "Every run: \`attn train transformer --train split/train.tsv --valid split/valid.tsv --out DIR $COMMON ARGS\`"
    echo "(seed 1 unless ARGS say --seed 2: the same initial weights, the same batches), $EPOCHS epochs; test BLEU by"
    echo "\`attn eval --model DIR --data split/test.tsv --beam K\` (corpus BLEU-4, sacreBLEU's)."
    echo
    echo "| run | ARGS | train s | wall s | final valid loss | valid BLEU (200) | test BLEU greedy | test BLEU beam 5 |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|"
    tail -n +2 "$CSV" | awk -F, '{ printf "| %s | `%s` | %s | %s | %s | %s | %s | %s |\n", $1, $2, $4, $5, $6, $7, $8, $9 }'
    echo
    echo "Learned ALiBi slopes of d_alibi_learn (one vector per layer, heads 0..3), from the paper's"
    echo "geometric slopes (the encoder's in their symmetric form -slope |j - i|):"
    echo
    echo "| parameter | initial | learned |"
    echo "|---|---|---|"
    echo "$slopes"
} >"$MD.tmp"
mv "$MD.tmp" "$MD"
cat "$MD"
