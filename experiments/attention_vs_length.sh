#!/usr/bin/env bash
# The seed's claim as an experiment: the "distracted" encoder-decoder, which squeezes the source
# into one vector C, against the encoder-decoder with attention, which builds a new C_i for
# every target word; trained with the same budget on the same Chinese-English data, scored on
# the same held-out test sentences by source length. The shape to reproduce is Bahdanau et al.
# 2014, Figure 2: without attention BLEU falls as sentences get longer; with attention it holds
# up, so attention's advantage grows with length.
#
# usage: experiments/attention_vs_length.sh [path/to/attn]
# environment (all optional):
#   DATA     the pairs (default ../shared/data/cmn-eng/cmn.txt beside the repository)
#   OUT      working directory (default experiments/out/attention_vs_length; git-ignored)
#   RESULTS  where the tables and pictures go (default experiments/results)
#   EPOCHS   training epochs of each model (default 10); TRAIN_ARGS extra training options
#   BUCKETS  source-length bucket edges (default 6,8,10,12,15,19); BEAM (default 5)
#   MODELS   the models compared (default "none bahdanau"; also luong-dot, luong-general)
# Steps: the split is made once (seeded) and written to OUT/split; each model is trained with
# identical options but --attention (a model already trained is reused; one interrupted is
# resumed); each is evaluated on OUT/split/test.tsv; the per-bucket tables are merged into
# RESULTS/attention_vs_length.{csv,md,svg}; the attention model draws the alignments of a few
# test sentences (RESULTS/align_*.svg and .png).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
ATTN=${1:-${ATTN:-$root/build/attn}}
DATA=${DATA:-$root/../shared/data/cmn-eng/cmn.txt}
OUT=${OUT:-$here/out/attention_vs_length}
RESULTS=${RESULTS:-$here/results}
EPOCHS=${EPOCHS:-10}
BUCKETS=${BUCKETS:-6,8,10,12,15,19}
BEAM=${BEAM:-5}
MODELS=${MODELS:-none bahdanau}
TRAIN_ARGS=${TRAIN_ARGS:-}

[ -x "$ATTN" ] || { echo "attention_vs_length: no attn binary at $ATTN (build first, or pass its path)" >&2; exit 2; }
[ -r "$DATA" ] || { echo "attention_vs_length: cannot read the data $DATA (see ../shared/data/README.md)" >&2; exit 2; }
mkdir -p "$OUT" "$RESULTS"
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

# 1. The split, made once by a seeded shuffle, shared by every model.
if [ ! -s "$OUT/split/test.tsv" ]; then
    log "splitting $DATA"
    "$ATTN" train seq2seq --data "$DATA" --split-dir "$OUT/split" --split-only --out "$OUT/split"
fi

# 2. Training: the same options and budget for every model, only --attention differs.
for m in $MODELS; do
    dir="$OUT/$m"
    if [ -f "$dir/.done" ]; then log "$m: trained already ($dir)"; continue; fi
    resume=""
    [ -f "$dir/config.json" ] && resume="--resume"
    log "training $m ($EPOCHS epochs) -> $dir (log: $dir.log)"
    # shellcheck disable=SC2086
    "$ATTN" train seq2seq --train "$OUT/split/train.tsv" --valid "$OUT/split/valid.tsv" --attention "$m" \
        --epochs "$EPOCHS" --out "$dir" $resume $TRAIN_ARGS 2>>"$dir.log" | tee -a "$dir.log"
    touch "$dir/.done"
done

# 3. Evaluation on the held-out test split, by source-length bucket.
for m in $MODELS; do
    log "evaluating $m on $OUT/split/test.tsv (beam $BEAM)"
    "$ATTN" eval --model "$OUT/$m" --data "$OUT/split/test.tsv" --beam "$BEAM" --buckets "$BUCKETS" --label "$m" \
        --csv "$OUT/$m.eval.csv" --markdown "$OUT/$m.eval.md" --hyp-out "$OUT/$m.test.tsv" --quiet | tee "$OUT/$m.eval.txt"
done

# 4. One table: a row per bucket, a BLEU column per model, and the gap to the first model.
csv="$RESULTS/attention_vs_length.csv"
md="$RESULTS/attention_vs_length.md"
awk -F, -v models="$MODELS" '
    BEGIN { n = split(models, M, " ") }
    FNR == 1 { next }
    { key = $2; if (!(key in seen)) { seen[key] = 1; order[++nk] = key; cnt[key] = $5 }
      bleu[$1, key] = $6; em[$1, key] = $7 }
    END {
        printf "source_length,sentences"; for (i = 1; i <= n; i++) printf ",bleu_%s", M[i]
        for (i = 2; i <= n; i++) printf ",gain_%s", M[i]
        for (i = 2; i <= n; i++) printf ",ratio_%s", M[i]
        for (i = 1; i <= n; i++) printf ",exact_%s", M[i]; printf "\n"
        for (k = 1; k <= nk; k++) { key = order[k]; printf "%s,%s", key, cnt[key]
            for (i = 1; i <= n; i++) printf ",%s", bleu[M[i], key]
            for (i = 2; i <= n; i++) printf ",%.2f", bleu[M[i], key] - bleu[M[1], key]
            for (i = 2; i <= n; i++) printf(",%.2f", (bleu[M[1], key] > 0) ? bleu[M[i], key] / bleu[M[1], key] : 0)
            for (i = 1; i <= n; i++) printf ",%s", em[M[i], key]; printf "\n" }
    }' $(for m in $MODELS; do echo "$OUT/$m.eval.csv"; done) > "$csv"
{
    echo "BLEU-4 (sacreBLEU-style, 13a) on the held-out test split of Tatoeba cmn-eng, by source length in"
    echo "Chinese characters; same data, vocabulary, sizes, optimiser and $EPOCHS epochs for every model; beam $BEAM."
    echo
    awk -F, -v models="$MODELS" 'BEGIN { n = split(models, M, " ") }
        NR == 1 { printf "| source length | sentences |"; for (i = 1; i <= n; i++) printf " BLEU %s |", M[i]
                  for (i = 2; i <= n; i++) printf " %s - %s |", M[i], M[1]
                  for (i = 2; i <= n; i++) printf " %s / %s |", M[i], M[1]; printf "\n|---|---:|"
                  for (i = 1; i < 3 * n - 1; i++) printf "---:|"; printf "\n"; next }
        { printf "| %s | %s |", $1, $2; for (i = 3; i < 3 + 3 * n - 2; i++) printf " %s |", $i; printf "\n" }' "$csv"
} > "$md"

# 5. The plot: BLEU against source length, one line per model (SVG, drawn here with awk).
awk -F, -v models="$MODELS" -v title="BLEU by source length: attention vs the distracted model (Tatoeba zh-en test)" '
    BEGIN { n = split(models, M, " "); W = 720; H = 440; L = 70; R = 170; T = 50; B = 70
            col[1] = "#d62728"; col[2] = "#1f77b4"; col[3] = "#2ca02c"; col[4] = "#9467bd" }
    NR == 1 { next }
    $1 == "all" { for (i = 1; i <= n; i++) all[i] = $(2 + i); next }
    { nb++; lab[nb] = $1; cnt[nb] = $2; for (i = 1; i <= n; i++) { v[nb, i] = $(2 + i); if ($(2 + i) > ymax) ymax = $(2 + i) } }
    END {
        ymax = (int(ymax / 10) + 1) * 10
        pw = W - L - R; ph = H - T - B
        printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"13\">\n", W, H
        printf "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
        printf "<text x=\"%d\" y=\"26\" font-size=\"15\" font-weight=\"bold\">%s</text>\n", L, title
        for (y = 0; y <= ymax; y += 10) { py = T + ph - ph * y / ymax
            printf "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", L, py, L + pw, py
            printf "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%d</text>\n", L - 8, py + 4, y }
        for (k = 1; k <= nb; k++) { px[k] = L + pw * (k - 0.5) / nb
            printf "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", px[k], T + ph + 20, lab[k]
            printf "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" fill=\"#777\" font-size=\"11\">n=%s</text>\n", px[k], T + ph + 36, cnt[k] }
        printf "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", L, T + ph, L + pw, T + ph
        printf "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", L, T, L, T + ph
        printf "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">source sentence length (Chinese characters)</text>\n", L + pw / 2, H - 12
        printf "<text x=\"18\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 18 %.1f)\">BLEU-4</text>\n", T + ph / 2, T + ph / 2
        for (i = 1; i <= n; i++) {
            pts = ""; for (k = 1; k <= nb; k++) pts = pts sprintf("%.1f,%.1f ", px[k], T + ph - ph * v[k, i] / ymax)
            printf "<polyline points=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2.5\"/>\n", pts, col[i]
            for (k = 1; k <= nb; k++) printf "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"><title>%s %s: %s</title></circle>\n", px[k], T + ph - ph * v[k, i] / ymax, col[i], M[i], lab[k], v[k, i]
            ly = T + 20 + 24 * (i - 1)
            printf "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2.5\"/>\n", L + pw + 15, ly, L + pw + 40, ly, col[i]
            printf "<text x=\"%d\" y=\"%d\">%s (all: %s)</text>\n", L + pw + 46, ly + 4, M[i], all[i] }
        printf "</svg>\n"
    }' "$csv" > "$RESULTS/attention_vs_length.svg"

# 6. Alignments of a few test sentences of growing length, drawn by the attention model.
att=""
for m in $MODELS; do [ "$m" != none ] && { att=$m; break; }; done
if [ -n "$att" ]; then
    i=0
    for len in 4 8 12 18; do
        # the first test source with exactly $len characters (none: skip that length)
        # (characters counted as UTF-8 lead bytes, whatever awk this is)
        src=$(awk -F'\t' -v n="$len" '{ s = $2; gsub(/[ \t]/, "", s); gsub(/[\200-\277]/, "", s); if (length(s) == n) { print $2; exit } }' "$OUT/split/test.tsv" || true)
        [ -z "$src" ] && continue
        i=$((i + 1))
        log "alignment $i: $src"
        "$ATTN" translate --model "$OUT/$att" --beam "$BEAM" --attention-svg "$RESULTS/align_$i.svg" \
            --attention-png "$RESULTS/align_$i.png" "$src" > /dev/null 2>>"$OUT/align.log" ||
            "$ATTN" translate --model "$OUT/$att" --beam "$BEAM" --attention-svg "$RESULTS/align_$i.svg" "$src" > /dev/null
    done
    "$ATTN" translate --model "$OUT/$att" --beam "$BEAM" --attention-svg "$RESULTS/align_woaini.svg" \
        --attention-png "$RESULTS/align_woaini.png" "我爱你。" > /dev/null 2>>"$OUT/align.log" || true
fi
log "done: $csv, $md, $RESULTS/attention_vs_length.svg"
cat "$md"
