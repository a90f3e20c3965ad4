#!/usr/bin/env bash
# The long-range claim, measured: in self-attention every position meets every other at
# distance one, where a recurrent encoder must carry a word through every step in between;
# so how do the Transformer and the recurrent models do as sentences get longer? BLEU on the
# test split by source length, in the buckets of experiments/attention_vs_length.sh, for
#   - the Transformer (experiments/transformer_parallel.sh's, trained if missing),
#   - the recurrent model with attention (Bahdanau) and the distracted one (none): those of
#     attention_vs_length.sh when it has run (same split, same options), else trained here.
#
# usage: experiments/transformer_length.sh [path/to/attn]     (settings: transformer_common.sh)
#   RNN_DIR  where trained recurrent checkpoints are looked for (default
#            experiments/out/attention_vs_length)
# outputs: RESULTS/transformer_length.{csv,md,svg}, and RESULTS/transformer_heads.html: every
# head of the Transformer on a few test sentences (the explorer page of attn translate)
source "$(dirname "$0")/transformer_common.sh"
RNN_DIR=${RNN_DIR:-$here/out/attention_vs_length}
make_split

train_by_epoch transformer transformer $TR_ARGS
evaluate transformer "$OUT/transformer"
for m in bahdanau none; do
    dir="$OUT/$m"
    if [ -f "$RNN_DIR/$m/.done" ] && cmp -s "$RNN_DIR/split/test.tsv" "$OUT/split/test.tsv"; then
        dir="$RNN_DIR/$m"
        log "$m: using $dir"
    else
        train_by_epoch "$m" seq2seq --attention "$m"
    fi
    evaluate "$m" "$dir"
done

MODELS="transformer bahdanau none"
csv="$RESULTS/transformer_length.csv"
md="$RESULTS/transformer_length.md"
awk -F, -v models="$MODELS" '
    BEGIN { n = split(models, M, " ") }
    FNR == 1 { next }
    { key = $2; if (!(key in seen)) { seen[key] = 1; order[++nk] = key; cnt[key] = $5 }
      bleu[$1, key] = $6 }
    END {
        printf "source_length,sentences"; for (i = 1; i <= n; i++) printf ",%s", M[i]; printf "\n"
        for (k = 1; k <= nk; k++) { key = order[k]; printf "%s,%s", key, cnt[key]
            for (i = 1; i <= n; i++) printf ",%s", bleu[M[i], key]; printf "\n" }
    }' $(for m in $MODELS; do echo "$OUT/$m.eval.csv"; done) >"$csv"
{
    echo "BLEU-4 on the Tatoeba zh-en test split by source length (Chinese characters), beam $BEAM: the Transformer"
    echo "(3.97M parameters), the recurrent model with attention (Bahdanau, 3.85M) and the distracted one (none);"
    echo "$EPOCHS epochs each, the same split and vocabularies."
    echo
    echo "| source length | sentences | transformer | bahdanau | none |"
    echo "|---|---:|---:|---:|---:|"
    awk -F, 'NR > 1 { printf "| %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5 }' "$csv"
} >"$md"
# the plot: BLEU by bucket, one line per model (the bucket index as x, labelled in the table)
awk -F, 'NR == 1 { next } $1 != "all" { k++; printf "transformer,%d,%s\nbahdanau,%d,%s\nnone,%d,%s\n", k, $3, k, $4, k, $5 }
    BEGIN { print "model,bucket,bleu" }' "$csv" >"$OUT/length_curves.csv"
labels=$(awk -F, 'NR > 1 && $1 != "all" { printf "%s%s", sep, $1; sep = "," }' "$csv")
"$PY" "$here/transformer_plot.py" lines "$OUT/length_curves.csv" "$RESULTS/transformer_length.svg" --x bucket --y bleu \
    --group model --xticks "$labels" --title "BLEU-4 by source length, Tatoeba zh-en test (beam $BEAM)" \
    --xlabel "source length (Chinese characters)" --ylabel "BLEU"
# every head of the Transformer on a few test sentences of growing length: one explorer page
sents=("我爱你。")
for len in 6 10 16; do
    s=$(awk -F'\t' -v n="$len" '{ s = $2; gsub(/[ \t]/, "", s); gsub(/[\200-\277]/, "", s); if (length(s) == n) { print $2; exit } }' \
        "$OUT/split/test.tsv" || true)
    [ -n "$s" ] && sents+=("$s")
done
"$ATTN" translate --model "$OUT/transformer" --beam "$BEAM" --attention-html "$RESULTS/transformer_heads.html" "${sents[@]}" \
    >"$OUT/heads.txt"
log "done: $csv, $md, $RESULTS/transformer_length.svg, $RESULTS/transformer_heads.html"
cat "$md"
