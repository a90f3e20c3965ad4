#!/usr/bin/env bash
# The seed's claim about parallelism, measured: "no step depends on the previous one, so the
# Transformer computes in parallel". The Transformer and the recurrent attention model
# (Bahdanau, GRU) of about the same parameter count (3.97M and 3.85M) are trained on the same
# Chinese-English split with the same batch, optimiser family and number of epochs, one epoch
# at a time; after each epoch we record the training time so far, the training speed (source
# + target tokens per second) and the greedy BLEU on 500 validation pairs. Then:
#   - time per epoch and tokens/s of each model;
#   - BLEU against training time, one curve per model (the plot);
#   - test BLEU (beam 5) of each final model, and of the Transformer after the last epoch
#     that ended within the recurrent model's whole training time (the same wall-clock budget).
#
# usage: experiments/transformer_parallel.sh [path/to/attn]     (settings: transformer_common.sh)
# outputs: RESULTS/transformer_parallel.{csv,md,svg}; working files in OUT (git-ignored).
# Takes about an hour on two cores.
source "$(dirname "$0")/transformer_common.sh"
make_split

# 1. training, epoch by epoch; the recurrent model with attn train seq2seq's defaults
KEEP_EPOCHS=1 train_by_epoch transformer transformer $TR_ARGS
KEEP_EPOCHS=1 train_by_epoch bahdanau seq2seq --attention bahdanau

# 1b. speed measured side by side: the two models alternate SPEED_ROUNDS short runs of
# SPEED_STEPS updates (fresh models, same data), so that both meet the same machine load; at
# the experiments' batch of 64 sentences, and at small batches, where a recurrent layer's
# step-by-step products are small and the Transformer's whole-sentence products are not
SPEED_ROUNDS=${SPEED_ROUNDS:-3}
SPEED_STEPS=${SPEED_STEPS:-100}
SPEED_BATCHES=${SPEED_BATCHES:-64 16 4}
speed="$OUT/speed.csv"
if [ ! -s "$speed" ]; then
    echo "round,batch,model,tokens_per_s" >"$speed.tmp"
    for b in $SPEED_BATCHES; do
        for r in $(seq 1 "$SPEED_ROUNDS"); do
            for m in transformer bahdanau; do
                rm -rf "$OUT/speed_ck"
                if [ $m = transformer ]; then
                    # shellcheck disable=SC2086
                    "$ATTN" train transformer --train "$OUT/split/train.tsv" $TR_ARGS --out "$OUT/speed_ck" --batch "$b" \
                        --max-steps "$SPEED_STEPS" --valid-bleu 0 --threads "$THREADS" --quiet >"$OUT/speed.log" 2>&1
                else
                    "$ATTN" train seq2seq --train "$OUT/split/train.tsv" --attention bahdanau --out "$OUT/speed_ck" --batch "$b" \
                        --max-steps "$SPEED_STEPS" --valid-bleu 0 --threads "$THREADS" --quiet >"$OUT/speed.log" 2>&1
                fi || { cat "$OUT/speed.log" >&2; exit 1; }
                t=$(sed -n 's/.* \([0-9]*\) tokens\/s.*/\1/p' "$OUT/speed.log")
                log "speed, batch $b, round $r: $m $t tokens/s"
                echo "$r,$b,$m,$t" >>"$speed.tmp"
            done
        done
    done
    mv "$speed.tmp" "$speed"
    rm -rf "$OUT/speed_ck"
fi
med() { awk -F, -v b="$1" -v m="$2" '$2 == b && $3 == m { x[++n] = $4 } END { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t }
    print (n % 2 ? x[(n + 1) / 2] : (x[n / 2] + x[n / 2 + 1]) / 2) }' "$speed"; }

# 2. the Transformer epoch that fits in the recurrent model's budget
budget=$(tail -n 1 "$OUT/bahdanau.epochs.csv" | cut -d, -f2)
ep=$(awk -F, -v b="$budget" 'NR > 1 && $2 <= b { e = $1 } END { print e + 0 }' "$OUT/transformer.epochs.csv")
log "recurrent budget: $budget s of training; the Transformer's last epoch within it: $ep"

# 3. test BLEU
evaluate transformer "$OUT/transformer"
evaluate bahdanau "$OUT/bahdanau"
if [ "$ep" -ge 1 ]; then evaluate transformer_budget "$OUT/transformer.ep/$ep"; fi

# 4. the table
csv="$RESULTS/transformer_parallel.csv"
md="$RESULTS/transformer_parallel.md"
params() { sed -n 's/.* \([0-9]*\) parameters.*/\1/p' "$OUT/$1.probe" | head -n 1; }
row() { # name, label, epochs-csv, eval name, epochs used
    local e=$5
    awk -F, -v name="$2" -v e="$e" -v p="$(params "$1")" -v bleu="$(test_bleu "$4")" '
        NR > 1 && $1 <= e { t = $2; s += $3; n++; vb = $4 }
        END { printf "%s,%d,%d,%.1f,%.1f,%.0f,%.2f,%s\n", name, p, e, t, t / e, s / n, vb, bleu }' "$3"
}
{
    echo "model,parameters,epochs,train_s,s_per_epoch,tokens_per_s,valid_bleu_greedy,test_bleu_beam$BEAM"
    row transformer "transformer ($EPOCHS epochs)" "$OUT/transformer.epochs.csv" transformer "$EPOCHS"
    row bahdanau "recurrent bahdanau ($EPOCHS epochs)" "$OUT/bahdanau.epochs.csv" bahdanau "$EPOCHS"
    [ "$ep" -ge 1 ] && row transformer "transformer (same budget: $ep epochs)" "$OUT/transformer.epochs.csv" transformer_budget "$ep"
} >"$csv"
{
    echo "Transformer against the recurrent attention model (Bahdanau, GRU) of the same size on Tatoeba zh-en:"
    echo "training time and speed (2 threads, this machine), greedy BLEU on 500 validation pairs, BLEU-4 of the"
    echo "test split with beam $BEAM. \"Same budget\": the Transformer after its last epoch that ended within the"
    echo "recurrent model's whole training time."
    echo
    echo "| model | parameters | epochs | training s | s / epoch | tokens/s | valid BLEU | test BLEU |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    awk -F, 'NR > 1 { printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8 }' "$csv"
    echo
    echo "Training speed side by side (fresh models alternating $SPEED_ROUNDS times, $SPEED_STEPS updates each, median"
    echo "tokens/s), by batch size:"
    echo
    echo "| sentences per batch | transformer | recurrent (bahdanau) | transformer / recurrent |"
    echo "|---:|---:|---:|---:|"
    for b in $SPEED_BATCHES; do
        awk -v b="$b" -v t="$(med "$b" transformer)" -v r="$(med "$b" bahdanau)" 'BEGIN { printf "| %s | %s | %s | %.2f |\n", b, t, r, t / r }'
    done
} >"$md"
cp "$speed" "$RESULTS/transformer_parallel_speed.csv"

# 5. BLEU against training time
{
    echo "model,train_s,valid_bleu"
    awk -F, 'NR > 1 { print "transformer," $2 "," $4 }' "$OUT/transformer.epochs.csv"
    awk -F, 'NR > 1 { print "recurrent (bahdanau)," $2 "," $4 }' "$OUT/bahdanau.epochs.csv"
} >"$OUT/curves.csv"
cp "$OUT/curves.csv" "$RESULTS/transformer_parallel_curves.csv"
"$PY" "$here/transformer_plot.py" lines "$OUT/curves.csv" "$RESULTS/transformer_parallel.svg" --x train_s --y valid_bleu \
    --group model --title "Greedy BLEU (500 valid pairs) against training time, same size, 2 threads" \
    --xlabel "training time (s)" --ylabel "BLEU"
log "done: $csv, $md, $RESULTS/transformer_parallel.svg"
cat "$md"
