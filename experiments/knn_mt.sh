#!/usr/bin/env bash
# kNN-MT (Khandelwal et al. 2021, "Nearest neighbor machine translation"; issue 11 part 3): a
# translation memory read by soft addressing makes trained translators better without
# retraining them. For each family (the shipped GRU + Bahdanau model models/zh-en-small, and a
# small Transformer trained here on the same split):
#   1. build a memory of the training pairs (attn memory build: teacher-forced decoder states
#      as keys, the next target token as values);
#   2. tune k, T, lambda on the validation split only (attn memory tune, greedy, the first
#      TUNE_LIMIT pairs), written into the store's header;
#   3. evaluate the test split with and without the memory (beam 5, and greedy; and beam 5
#      with the approximate index, --nprobe 8 of 256 lists), by source
#      length, and (greedy, for speed) on the test pairs whose references hold words rare in
#      training, and on those whose source and reference are in no training pair;
#   4. domain adaptation: a memory of the validation pairs (never trained on) and of train +
#      valid, on the test pairs near a validation pair (char-bigram Dice >= 0.5 of the
#      sources) and on the others (greedy), with the settings tuned for the training memory.
#      No test pair is in any memory.
# Writes RESULTS/knn_mt.md and RESULTS/knn_mt.csv (every attn eval: family, run, data, BLEU,
# tokens/s and its command line). Resumable: a store already built and tuned, and an evaluation
# already in OUT/runs.csv, are kept (delete them, or OUT, to redo them).
#
# usage: experiments/knn_mt.sh [--quick] [path/to/attn]
#   --quick  a smoke run: 200 test pairs, 100 validation pairs, a 3-setting grid, and the
#            Transformer only if one was trained already (results say "quick")
# environment (optional): DATA (default ../shared/data/cmn-eng/cmn.txt beside the repository),
#   OUT (default experiments/out/knn_mt), RESULTS (default experiments/results), THREADS
#   (default 2), TUNE_LIMIT (default 1000), FAMILIES (default "gru transformer").
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
QUICK=0
if [ "${1:-}" = "--quick" ]; then QUICK=1; shift; fi
ATTN=${1:-${ATTN:-$root/build/attn}}
DATA=${DATA:-$root/../shared/data/cmn-eng/cmn.txt}
[ -r "$DATA" ] || [ ! -r "$root/../../shared/data/cmn-eng/cmn.txt" ] || DATA=$root/../../shared/data/cmn-eng/cmn.txt # a worktree
OUT=${OUT:-$here/out/knn_mt}
RESULTS=${RESULTS:-$here/results}
THREADS=${THREADS:-2}
TUNE_LIMIT=${TUNE_LIMIT:-1000}
FAMILIES=${FAMILIES:-gru transformer}
PY=/usr/bin/python3
[ -x "$ATTN" ] || { echo "knn_mt: no attn binary at $ATTN (build first, or pass its path)" >&2; exit 2; }
[ -r "$DATA" ] || { echo "knn_mt: cannot read the data $DATA (see ../shared/data/README.md)" >&2; exit 2; }
mkdir -p "$OUT" "$RESULTS"
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
LIMIT=()
TUNE=(--limit "$TUNE_LIMIT" --lambda-grid 0.2,0.3,0.4,0.5,0.6,0.7)
if [ $QUICK = 1 ]; then
    LIMIT=(--limit 200)
    TUNE=(--limit 100 --k-grid 8 --t-grid 1 --lambda-grid 0.2,0.4)
fi

# 1. The split of models/README.md (seeded: the same as the shipped model's).
SPLIT=$OUT/split
if [ ! -s "$SPLIT/test.tsv" ]; then
    log "splitting $DATA"
    "$ATTN" train seq2seq --data "$DATA" --split-dir "$SPLIT" --split-only --out "$SPLIT"
fi
$PY "$here/knn_mt.py" subsets "$SPLIT" "$OUT" 5 0.5 >"$OUT/subsets.txt"
log "test subsets: $(cat "$OUT/subsets.txt")"

# 2. The Transformer: small, on the same split (about 13 minutes on one core).
TR=$OUT/transformer
if [[ " $FAMILIES " == *" transformer "* ]] && [ ! -s "$TR/config.json" ] && [ $QUICK = 0 ]; then
    log "training the Transformer ($TR)"
    "$ATTN" train transformer --train "$SPLIT/train.tsv" --valid "$SPLIT/valid.tsv" --out "$TR" --d-model 128 --heads 4 \
        --ff 512 --layers 2 --epochs 12 --threads 1 --weights-only --valid-bleu 200 --log "$OUT/transformer_train.csv" --quiet
fi

RUNS=$OUT/runs.csv
[ -s "$RUNS" ] || echo "family,run,data,sentences,bleu,exact,seconds,tokens,tokens_per_s,command" >"$RUNS"
# record FAMILY RUN DATA attn-eval-args...: one attn eval, its figures into RUNS
record() {
    local fam=$1 run=$2 data=$3
    shift 3
    if grep -q "^$fam,$run,$data," "$RUNS"; then log "$fam $run $data: done already"; return; fi
    local cmd=("$ATTN" eval "$@" --threads "$THREADS" --quiet)
    log "$fam $run $data: ${cmd[*]#$root/}"
    "${cmd[@]}" >"$OUT/eval.log" 2>"$OUT/eval.err" || { cat "$OUT/eval.err" >&2; exit 1; }
    cat "$OUT/eval.log" >&2
    local line speed
    line=$(grep ': BLEU ' "$OUT/eval.log")
    speed=$(grep '^decoding: ' "$OUT/eval.log")
    local bleu exact n sec tok tps
    bleu=$(sed -n 's/.*: BLEU \([0-9.]*\),.*/\1/p' <<<"$line")
    exact=$(sed -n 's/.*exact match \([0-9.]*\)%.*/\1/p' <<<"$line")
    n=$(sed -n 's/.*%, \([0-9]*\) sentences.*/\1/p' <<<"$line")
    tok=$(sed -n 's/^decoding: \([0-9]*\) target tokens in \([0-9.]*\) s, \([0-9]*\) tokens.*/\1/p' <<<"$speed")
    sec=$(sed -n 's/^decoding: \([0-9]*\) target tokens in \([0-9.]*\) s, \([0-9]*\) tokens.*/\2/p' <<<"$speed")
    tps=$(sed -n 's/^decoding: \([0-9]*\) target tokens in \([0-9.]*\) s, \([0-9]*\) tokens.*/\3/p' <<<"$speed")
    local shown="attn eval ${*}"
    shown=${shown//$root\//}
    echo "$fam,$run,$data,$n,$bleu,$exact,$sec,$tok,$tps,\"$shown --threads $THREADS\"" >>"$RUNS"
}

for fam in $FAMILIES; do
    if [ "$fam" = gru ]; then M=$root/models/zh-en-small; else M=$TR; fi
    if [ ! -s "$M/config.json" ]; then log "$fam: no model at $M, skipped"; continue; fi
    # 3. The memory of the training pairs, tuned on validation.
    STORE=$OUT/$fam-train.knn
    if "$ATTN" memory info "$STORE" 2>/dev/null | grep -q "(tuned)"; then
        log "$fam: $STORE built and tuned already"
    else
        "$ATTN" memory build --model "$M" --data "$SPLIT/train.tsv" --out "$STORE" --threads "$THREADS" --quiet |
            sed "s|$root/||g" | tee "$OUT/$fam-build.txt"
        "$ATTN" memory tune --model "$M" --memory "$STORE" --data "$SPLIT/valid.tsv" "${TUNE[@]}" --csv "$OUT/$fam-tune.csv" \
            --threads "$THREADS" | sed "s|$root/||g" | tee "$OUT/$fam-tune.txt"
    fi
    info=$("$ATTN" memory info "$STORE")
    k=$(sed -n 's/.*; k \([0-9]*\), .*/\1/p' <<<"$info")
    temp=$(sed -n 's/.*, temperature \([0-9.e+-]*\), .*/\1/p' <<<"$info")
    lam=$(sed -n 's/.*, lambda \([0-9.e+-]*\) (.*/\1/p' <<<"$info")
    TUNED=(--k "$k" --temperature "$temp" --lambda "$lam")
    log "$fam: tuned k $k, T $temp, lambda $lam"
    # 4. Test, with and without; by length (the eval's buckets), greedy for speed.
    record $fam alone test --model "$M" --data "$SPLIT/test.tsv" "${LIMIT[@]}" --csv "$OUT/$fam-alone.csv"
    record $fam memory test --model "$M" --data "$SPLIT/test.tsv" "${LIMIT[@]}" --memory "$STORE" --csv "$OUT/$fam-memory.csv"
    record $fam alone-greedy test --model "$M" --data "$SPLIT/test.tsv" "${LIMIT[@]}" --beam 1
    record $fam memory-greedy test --model "$M" --data "$SPLIT/test.tsv" "${LIMIT[@]}" --beam 1 --memory "$STORE"
    # the approximate index (256 lists by k-means, 8 scanned per query: about 3% of the store)
    record $fam memory-ivf test --model "$M" --data "$SPLIT/test.tsv" "${LIMIT[@]}" --memory "$STORE" --nprobe 8
    # 5. Rare words and domain adaptation (subsets of the test split).
    # (greedy: a beam of one sentence asks the store 5 queries a step, a greedy batch 64)
    for sub in rare near far unseen; do
        record $fam alone $sub --model "$M" --data "$OUT/$sub.tsv" "${LIMIT[@]}" --beam 1
        record $fam memory $sub --model "$M" --data "$OUT/$sub.tsv" "${LIMIT[@]}" --beam 1 --memory "$STORE"
    done
    [ -s "$OUT/$fam-valid.knn" ] ||
        "$ATTN" memory build --model "$M" --data "$SPLIT/valid.tsv" --out "$OUT/$fam-valid.knn" --threads "$THREADS" --quiet
    [ -s "$OUT/$fam-trainvalid.knn" ] || "$ATTN" memory build --model "$M" --data "$SPLIT/train.tsv" --data "$SPLIT/valid.tsv" \
        --out "$OUT/$fam-trainvalid.knn" --threads "$THREADS" --quiet
    for sub in near far; do
        record $fam da-valid $sub --model "$M" --data "$OUT/$sub.tsv" "${LIMIT[@]}" --beam 1 --memory "$OUT/$fam-valid.knn" "${TUNED[@]}"
        record $fam da-train+valid $sub --model "$M" --data "$OUT/$sub.tsv" "${LIMIT[@]}" --beam 1 --memory "$OUT/$fam-trainvalid.knn" \
            "${TUNED[@]}"
    done
done

# 6. The tables.
cp "$RUNS" "$RESULTS/knn_mt.csv"
MD=$RESULTS/knn_mt.md
{
    echo "# kNN-MT: a translation memory read by soft addressing"
    echo
    [ $QUICK = 1 ] && { echo "**QUICK MODE (smoke run: 200 test pairs, 100 validation pairs, 3 settings): not the real figures.**"; echo; }
    echo "Generated by \`experiments/knn_mt.sh$([ $QUICK = 1 ] && echo " --quick")\` on $(lscpu | sed -n 's/^Model name: *//p' | head -1)," \
        "$THREADS threads, $(date -u +%Y-%m-%d). Split: the seeded split of models/README.md" \
        "($(wc -l <"$SPLIT/train.tsv") train, $(wc -l <"$SPLIT/valid.tsv") valid, $(wc -l <"$SPLIT/test.tsv") test pairs)." \
        "Test subsets: $(cat "$OUT/subsets.txt") (rare: the reference holds an English word seen 1-5 times in the training" \
        "references; near: the source's Chinese character bigrams have a Dice coefficient >= 0.5 with some validation source)."
    echo
    o=${OUT#$root/}
    for fam in $FAMILIES; do
        if [ "$fam" = gru ]; then m=models/zh-en-small; else m=${TR#$root/}; fi
        [ -s "$OUT/$fam-build.txt" ] || continue
        echo "- $fam memory: $(cat "$OUT/$fam-build.txt")"
        echo "  (\`attn memory build --model $m --data $o/split/train.tsv --out $o/$fam-train.knn --threads $THREADS --quiet\`;"
        echo "  the domain-adaptation memories: the same with \`--data $o/split/valid.tsv --out $o/$fam-valid.knn\` and with"
        echo "  \`--data $o/split/train.tsv --data $o/split/valid.tsv --out $o/$fam-trainvalid.knn\`)"
        echo "- $fam tuning: $(tail -1 "$OUT/$fam-tune.txt")"
        echo "  (\`attn memory tune --model $m --memory $o/$fam-train.knn --data $o/split/valid.tsv ${TUNE[*]} --csv $o/$fam-tune.csv --threads $THREADS\`)"
    done
    [ -s "$OUT/transformer_train.csv" ] && echo "- the Transformer: \`attn train transformer --train $o/split/train.tsv --valid $o/split/valid.tsv --out $o/transformer --d-model 128 --heads 4 --ff 512 --layers 2 --epochs 12 --threads 1 --weights-only --valid-bleu 200\` (12 epochs, $(tail -1 "$OUT/transformer_train.csv" | cut -d, -f3 | cut -d. -f1) s of training on one core)"
    echo "- the split: \`attn train seq2seq --data ../shared/data/cmn-eng/cmn.txt --split-dir $o/split --split-only --out $o/split\`"
    echo
} >"$MD"
$PY "$here/knn_mt.py" report "$RUNS" "$OUT" "$OUT" "$MD"
log "wrote $MD and $RESULTS/knn_mt.csv"
