#!/usr/bin/env bash
# experiments/tfidf_vs_attention.sh: the seed's question, measured. Trains every text
# classifier of attn (TF-IDF with logistic regression, a linear SVM and NB-SVM; the bag of
# embeddings, attention pooling, BiGRU + attention, the Transformer encoder, the CNN) on every
# classification data set of ../shared/data, scores each on its test split, and writes
#   experiments/results/tfidf_vs_attention.md    the tables (beside the published rows)
#   experiments/results/tfidf_vs_attention.csv   one row per (data set, model)
#   experiments/results/tfidf_vs_attention.svg   test accuracy, grouped by data set
# with, for every model: test accuracy and macro-F1, parameters, FLOPs per sentence (of the
# test set's mean length), training time, classification speed (texts/s), the best epoch;
# on SST-2 also the order analyses (negation/contrast subset, shuffled words) and the
# Transformer's position encodings (none, sinusoidal, learned, rope, alibi).
#
# usage: experiments/tfidf_vs_attention.sh [--quick] [ATTN]
#   --quick   a smoke run: 20 updates per model, results in OUT/quick/ (a minute or two);
#             the figures mean nothing, the point is that every step runs
#   ATTN      the attn binary (default build/attn)
#
# Environment (all optional):
#   DATA      the data directory (default ../shared/data beside the repository)
#   OUT       working directory (default experiments/out/tfidf_vs_attention; git-ignored)
#   RESULTS   where the tables and the plot go (default experiments/results)
#   DATASETS  which data sets (default: sst2 chnsenticorp waimai shopping shopping-cat)
#   MODELS    which models (default: tfidf-lr tfidf-svm nbsvm bow attn-pool bigru-attn
#             transformer cnn)
#   EPOCHS    at most this many epochs per neural model (default 8); every model stops early when
#             the validation accuracy has not improved for 2 epochs (--patience 2) and is
#             scored with the best epoch's weights (OUT/.../best): epochs are chosen on the
#             validation split only, never on the test split
#   EPOCHS_FAST  the same for the cheap models, TF-IDF, NB-SVM and the bag of embeddings
#             (default 40: an epoch takes them seconds, and on the small Chinese sets they
#             are still improving after 10)
#   SLOW_ON_SHOPPING  1: also train BiGRU + attention and the Transformer on online_shopping
#             (62,774 long reviews: hours on 2 cores; default 0, they are left out there)
#   THREADS   threads of every run (default 2)
#   PY        python 3 for the tables and the plot (default /usr/bin/python3; the standard
#             library only)
#
# A model already trained (its directory holds .done) is not trained again: delete its
# directory to redo it. The Chinese data sets have no official split: each is split once
# 80/10/10 (seeded, stratified) by the first model trained on it, and every model meets the
# same split.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
quick=0
if [ "${1:-}" = "--quick" ]; then quick=1; shift; fi
case "${1:-}" in -h|--help) sed -n '2,42p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; -*) echo "$(basename "$0"): unknown option $1 (see --help)" >&2; exit 2 ;; esac
ATTN=${1:-${ATTN:-$root/build/attn}}
DATA=${DATA:-$root/../shared/data}
OUT=${OUT:-$here/out/tfidf_vs_attention}
RESULTS=${RESULTS:-$here/results}
DATASETS=${DATASETS:-sst2 chnsenticorp waimai shopping shopping-cat}
MODELS=${MODELS:-tfidf-lr tfidf-svm nbsvm bow attn-pool bigru-attn transformer cnn}
EPOCHS=${EPOCHS:-8}
SLOW_ON_SHOPPING=${SLOW_ON_SHOPPING:-0}
EPOCHS_FAST=${EPOCHS_FAST:-40}
THREADS=${THREADS:-2}
PY=${PY:-/usr/bin/python3}
if [ "$quick" = 1 ]; then
    OUT=$OUT/quick
    RESULTS=$OUT/results
fi
[ -x "$ATTN" ] || { echo "$(basename "$0"): no attn binary at $ATTN (build first, or pass its path)" >&2; exit 2; }
mkdir -p "$OUT" "$RESULTS"
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

# dataset NAME: sets FILE (all texts, to split) or TRAIN/VALID/TEST, and EXTRA (options)
dataset() {
    FILE= TRAIN= VALID= TEST= EXTRA=() LABEL=()
    case "$1" in
        sst2) TRAIN=$DATA/sst2/train.tsv VALID=$DATA/sst2/dev.tsv TEST=$DATA/sst2/test.tsv ;;
        chnsenticorp) FILE=$DATA/zh-cls/ChnSentiCorp_htl_all.csv ;;
        waimai) FILE=$DATA/zh-cls/waimai_10k.csv ;;
        shopping) FILE=$DATA/zh-cls/online_shopping_10_cats.csv ;;
        # the split keeps the chosen label in its column "label": --label-column only for --data
        shopping-cat) FILE=$DATA/zh-cls/online_shopping_10_cats.csv LABEL=(--label-column cat) ;;
        *) echo "$(basename "$0"): unknown data set $1 (sst2, chnsenticorp, waimai, shopping, shopping-cat)" >&2; exit 2 ;;
    esac
    if [ -n "$FILE" ]; then
        [ -r "$FILE" ] || { echo "$(basename "$0"): cannot read $FILE (see ../shared/data/README.md)" >&2; exit 2; }
        # the Chinese reviews are long: 95% of ChnSentiCorp's are under 383 characters
        EXTRA+=(--max-len 256)
    else
        [ -r "$TRAIN" ] || { echo "$(basename "$0"): cannot read $TRAIN (see ../shared/data/README.md)" >&2; exit 2; }
    fi
}

# model_args MODEL: the model's options (the same on every data set)
model_args() {
    case "$1" in
        tfidf-lr|tfidf-svm) echo "--ngram 1-3" ;;
        nbsvm) echo "--ngram 1-3" ;;
        bow|attn-pool|bigru-attn|cnn) echo "--dropout 0.5" ;;
        transformer) echo "--dropout 0.3" ;;
        transformer-*)
            local pos=${1#transformer-}
            if [ "$pos" = attnpool-none ]; then echo "--dropout 0.3 --pos none --pool attention"
            else echo "--dropout 0.3 --pos $pos"; fi ;;
        *) echo "$(basename "$0"): unknown model $1" >&2; exit 2 ;;
    esac
}

# run DATASET MODEL: trains OUT/DATASET/MODEL (the log beside it) and scores its best epoch
run() {
    local ds=$1 name=$2 kind=$2
    case "$name" in transformer-*) kind=transformer ;; esac
    dataset "$ds"
    local dir="$OUT/$ds/$name" split="$OUT/$ds/split"
    mkdir -p "$OUT/$ds"
    if [ ! -f "$dir/.done" ]; then
        local data_args
        if [ -n "$FILE" ]; then
            if [ -s "$split/test.tsv" ]; then data_args=(--train "$split/train.tsv" --valid "$split/valid.tsv")
            else data_args=(--data "$FILE" "${LABEL[@]}" --split-dir "$split"); fi
        else
            data_args=(--train "$TRAIN" --valid "$VALID")
        fi
        local extra=("${EXTRA[@]}")
        case "$kind" in tfidf-*|nbsvm) extra=() ;; esac # --max-len is the neural models' option
        local epochs=$EPOCHS
        case "$kind" in tfidf-*|nbsvm|bow) epochs=$EPOCHS_FAST ;; esac
        local stop=(--epochs "$epochs" --patience 2)
        [ "$quick" = 1 ] && stop=(--epochs 1 --max-steps 20)
        log "$ds: training $name"
        rm -rf "$dir"
        # shellcheck disable=SC2046
        "$ATTN" train classifier --model "$kind" "${data_args[@]}" "${extra[@]}" $(model_args "$name") \
            "${stop[@]}" --threads "$THREADS" --log-every 1000 --out "$dir" >"$dir.train.log" 2>&1 ||
            { tail -20 "$dir.train.log" >&2; echo "$(basename "$0"): training $ds/$name failed (log: $dir.train.log)" >&2; exit 1; }
        touch "$dir/.done"
    fi
    [ -n "$FILE" ] && TEST=$split/test.tsv
    echo "$TEST" >"$dir.testfile"
    local best=$dir/best
    [ -f "$best/model.safetensors" ] || best=$dir
    "$ATTN" eval --model "$best" --data "$TEST" --threads "$THREADS" >"$dir.eval.txt" 2>&1 ||
        { cat "$dir.eval.txt" >&2; exit 1; }
    if [ "$ds" = sst2 ]; then
        "$ATTN" eval --model "$best" --data "$TEST" --subset negation --quiet --threads "$THREADS" >"$dir.eval-neg.txt" 2>&1
        "$ATTN" eval --model "$best" --data "$TEST" --shuffle-words 1 --quiet --threads "$THREADS" >"$dir.eval-shuf.txt" 2>&1
        "$ATTN" eval --model "$best" --data "$TEST" --subset negation --shuffle-words 1 --quiet --threads "$THREADS" >"$dir.eval-negshuf.txt" 2>&1
        # every test sentence's predicted label, for the examples each model gets wrong
        tail -n +2 "$TEST" | cut -f2 | "$ATTN" classify --model "$best" --threads "$THREADS" >"$dir.pred" 2>/dev/null
    fi
    grep -m1 'accuracy' "$dir.eval.txt" | sed "s|^|  $ds/$name: |" >&2
}

for ds in $DATASETS; do
    for m in $MODELS; do
        case "$ds:$m:$SLOW_ON_SHOPPING" in shopping*:bigru-attn:0|shopping*:transformer:0) continue ;; esac
        run "$ds" "$m"
    done
    if [ "$ds" = sst2 ] && [[ " $MODELS " == *" transformer "* ]]; then
        for v in none learned rope alibi attnpool-none; do run sst2 "transformer-$v"; done
    fi
done

EPOCHS=$EPOCHS EPOCHS_FAST=$EPOCHS_FAST QUICK=$quick "$PY" "$here/tfidf_vs_attention.py" "$OUT" "$RESULTS" $DATASETS
log "wrote $RESULTS/tfidf_vs_attention.md, .csv and .svg"
