#!/usr/bin/env bash
# The seed's claim about order, measured: "attention alone is a refined bag of words; it cannot
# see word order; position embeddings fix that". The same Transformer is trained with each
# position encoding (--pos none, sinusoidal, learned, rope, alibi) on
#   - two synthetic tasks (experiments/transformer_tasks.py): reversing a sequence of letters,
#     which needs the order of the input, and sorting it, which does not (the output depends
#     only on the bag of letters); scored by exact match (whole sequence right) on 1000 test
#     sequences never seen in training;
#   - the Chinese-English translation split, scored by test BLEU (beam 5).
# Without positions the encoder is permutation-invariant (tests/test_transformer.c checks it
# exactly), so reversing should fail while sorting still works; translation should lose BLEU.
#
# usage: experiments/transformer_order.sh [path/to/attn]     (settings: transformer_common.sh)
#   TASK_STEPS  updates of each synthetic run (default 3000); TASK_ARGS the small model's sizes
#   ORDER_TRANSLATION=0 skips the translation runs (5 x EPOCHS epochs: the long part)
# outputs: RESULTS/transformer_order.{csv,md,svg}
source "$(dirname "$0")/transformer_common.sh"
TASK_STEPS=${TASK_STEPS:-3000}
TASK_ARGS=${TASK_ARGS:---d-model 128 --heads 4 --layers 2 --ff 256 --dropout 0.1 --lr 1e-3 --warmup 300}
ORDER_TRANSLATION=${ORDER_TRANSLATION:-1}
POS_KINDS="none sinusoidal learned rope alibi"

# 1. synthetic tasks
if [ ! -s "$OUT/tasks/sort/test.tsv" ]; then "$PY" "$here/transformer_tasks.py" "$OUT/tasks"; fi
for task in reverse sort; do
    for pos in $POS_KINDS; do
        name="task_${task}_$pos"
        dir="$OUT/$name"
        if [ ! -f "$dir/.done" ]; then
            log "$task with --pos $pos ($TASK_STEPS updates)"
            # shellcheck disable=SC2086
            "$ATTN" train transformer --train "$OUT/tasks/$task/train.tsv" --valid "$OUT/tasks/$task/valid.tsv" --direction plain \
                --out "$dir" --pos "$pos" $TASK_ARGS --epochs 1000 --max-steps "$TASK_STEPS" --valid-bleu 0 --min-count 1 \
                --threads "$THREADS" --quiet >"$dir.log" 2>&1 || { cat "$dir.log" >&2; exit 1; }
            touch "$dir/.done"
        fi
        if [ ! -s "$OUT/$name.eval.csv" ]; then
            "$ATTN" eval --model "$dir" --data "$OUT/tasks/$task/test.tsv" --beam 1 --buckets 6,9 --label "$name" \
                --threads "$THREADS" --csv "$OUT/$name.eval.csv" --quiet >"$OUT/$name.eval.txt"
        fi
    done
done

# 2. translation, the same model sizes as the other experiments
if [ "$ORDER_TRANSLATION" = 1 ]; then
    make_split
    for pos in $POS_KINDS; do
        name=transformer
        [ "$pos" != sinusoidal ] && name="transformer_pos_$pos" # sinusoidal is the default: shared
        train_by_epoch "$name" transformer $TR_ARGS --pos "$pos"
        evaluate "$name" "$OUT/$name"
    done
fi

# 3. the table: exact match per task, test BLEU of the translation, by position encoding
csv="$RESULTS/transformer_order.csv"
md="$RESULTS/transformer_order.md"
em() { awk -F, '$2 == "all" { print $7 }' "$OUT/task_$1_$2.eval.csv"; }
{
    echo "pos,reverse_exact_match,sort_exact_match,translation_test_bleu"
    for pos in $POS_KINDS; do
        name=transformer
        [ "$pos" != sinusoidal ] && name="transformer_pos_$pos"
        b=""
        [ -s "$OUT/$name.eval.csv" ] && b=$(test_bleu "$name")
        echo "$pos,$(em reverse "$pos"),$(em sort "$pos"),$b"
    done
} >"$csv"
{
    echo "The same Transformer with each position encoding. Reverse and sort: exact match (%) on 1000 unseen"
    echo "sequences of 4-12 letters, $TASK_STEPS updates, greedy decoding. Translation: BLEU-4 on the Tatoeba zh-en"
    echo "test split after $EPOCHS epochs, beam $BEAM. Without positions the encoder sees a bag of tokens."
    echo
    echo "| position encoding | reverse (needs order) | sort (a bag task) | translation BLEU |"
    echo "|---|---:|---:|---:|"
    awk -F, 'NR > 1 { printf "| %s | %s%% | %s%% | %s |\n", $1, $2, $3, ($4 == "" ? "-" : $4) }' "$csv"
} >"$md"
"$PY" "$here/transformer_plot.py" bars "$csv" "$RESULTS/transformer_order.svg" --label pos \
    --values reverse_exact_match,sort_exact_match,translation_test_bleu \
    --names "reverse: exact match %,sort: exact match %,translation: test BLEU" \
    --title "Order: exact match (%) on reverse and sort, translation BLEU, by position encoding" --ylabel "% / BLEU"
log "done: $csv, $md, $RESULTS/transformer_order.svg"
cat "$md"
