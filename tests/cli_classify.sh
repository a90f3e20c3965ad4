#!/usr/bin/env bash
# tests/cli_classify.sh: attn train classifier, attn classify and attn eval (classifier branch)
# end to end on the small data sets of tests/data/cls (reviews.tsv: 48 English texts written for
# the tests, two labels told apart by sentiment words; three.csv: Chinese, with a category
# column; malformed.csv: bad rows), each TF-IDF model trained for a few epochs in well under a
# second.
#
#   bash tests/cli_classify.sh /path/to/attn
#
# Checks: each model trains, writes the split and the label names; classify prints LABEL<TAB>
# NUMBER per text (arguments and stdin, a bad line reported and skipped), --explain lists
# n-grams; the neural models (bow, attn-pool, bigru-attn, transformer, cnn) train, classify with
# probabilities, show each token's pooling weight (--show-attention), cut long texts, evaluate
# and resume exactly; eval prints accuracy, macro-F1 and the confusion matrix and writes CSV; a stopped and
# resumed run gives the weights of an uninterrupted one; --label-column; every bad input
# (missing file, unknown model, unknown label column, corrupt checkpoint, bad options) gives
# a clear error and the right exit status; the robustness list of issue 9 (bad rows, empty
# files and texts, all-unknown words, a 100,000-word text, every kind of corrupt checkpoint for
# a TF-IDF and a neural model, in classify and eval). Prints "N passed, N failed" last.
set -u
[ $# -ge 1 ] || { echo "usage: bash cli_classify.sh /path/to/attn" >&2; exit 2; }
ATTN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
cd "$(dirname "$0")" || exit 2
DATA=data/cls/reviews.tsv
T=$(mktemp -d) || exit 2
trap 'rm -rf "$T"' EXIT
npass=0
nfail=0
ok() { npass=$((npass + 1)); }
bad() { nfail=$((nfail + 1)); echo "FAIL: $*" >&2; }
check() { local n=$1; shift; if "$@"; then ok; else bad "$n"; fi; }
# status NAME WANT COMMAND...: the command exits with WANT and says something on stderr
status() {
    local n=$1 want=$2; shift 2
    "$@" >"$T/out" 2>"$T/err"
    local rc=$?
    if [ $rc -eq "$want" ] && [ -s "$T/err" ]; then ok; else bad "$n (rc $rc, want $want: $(head -1 "$T/err"))"; fi
}

FAST="--epochs 20 --batch 8 --lr 0.05 --log-every 0 --threads 1"

# ---- training, each model ------------------------------------------------------------------
for m in tfidf-lr tfidf-svm nbsvm; do
    "$ATTN" train classifier --model $m --data "$DATA" --out "$T/$m" $FAST >"$T/out" 2>"$T/err"
    rc=$?
    check "$m: train exits 0 (rc $rc: $(tail -1 "$T/err"))" [ $rc -eq 0 ]
    check "$m: final line" grep -q "^trained: .* valid accuracy 100.00%" "$T/out"
    check "$m: checkpoint with label names" grep -q "\"kind\": \"$m\".*\"labels\": \\[\"0\", \"1\"\\]" "$T/$m/config.json"
    check "$m: split written" [ -s "$T/$m/split/train.tsv" -a -s "$T/$m/split/valid.tsv" -a -s "$T/$m/split/test.tsv" ]
    out=$("$ATTN" classify --model "$T/$m" "a wonderful and charming film" "the plot was dull and tedious" 2>"$T/err")
    check "$m: classify two arguments" [ "$out" = "$(printf '1\t%s\n0\t%s' "$(sed -n 1p <<<"$out" | cut -f2)" "$(sed -n 2p <<<"$out" | cut -f2)")" ]
    check "$m: a number per line" [ "$(cut -f2 <<<"$out" | grep -cE '^-?[0-9]+\.[0-9]{4}$')" -eq 2 ]
    "$ATTN" eval --model "$T/$m" --data "$T/$m/split/test.tsv" --csv "$T/$m.csv" >"$T/out" 2>"$T/err"
    check "$m: eval exits 0" [ $? -eq 0 ]
    check "$m: eval accuracy and macro-F1" grep -qE "accuracy [0-9.]+%, macro-F1 [0-9.]+, 4 texts \\($m" "$T/out"
    check "$m: eval CSV" grep -qE "^all,4,,,[01]\.[0-9]{4}$" "$T/$m.csv"
done
check "split is stratified (2 and 2 of 24 and 24 in test)" [ "$(cut -f1 "$T/nbsvm/split/test.tsv" | sort | uniq -c | tr -s ' ' | tr '\n' ' ')" = " 2 0  2 1  1 label " ]
check "the same split for every model" cmp -s "$T/nbsvm/split/test.tsv" "$T/tfidf-lr/split/test.tsv"
"$ATTN" eval --model "$T/tfidf-lr" --data "$DATA" >"$T/out" 2>"$T/err"
check "eval: confusion matrix with label names" grep -qE "^1 +0 +24$" "$T/out"
check "eval: accuracy from the matrix" grep -q "accuracy $(awk '/^0 +[0-9]+ +[0-9]+$/ { a = $2 } END { printf "%.2f", 100 * (a + 24) / 48 }' "$T/out")%" "$T/out"

# ---- classify: probabilities, stdin, explanations ------------------------------------------
p=$("$ATTN" classify --model "$T/tfidf-lr" "great great great" | cut -f2)
check "LR: a probability in (0.5, 1]" awk -v p="$p" 'BEGIN { exit !(p > 0.5 && p <= 1) }'
printf 'wonderful and charming fun\n\nbad \377 bytes\nawful and tedious\n' | "$ATTN" classify --model "$T/nbsvm" >"$T/out" 2>"$T/err"
rc=$?
check "stdin: bad lines make exit 1" [ $rc -eq 1 ]
check "stdin: two lines out" [ "$(cut -f1 "$T/out" | tr '\n' ' ')" = "1 0 " ]
check "stdin: blank line reported" grep -q "line 2: an empty text, skipped" "$T/err"
check "stdin: invalid UTF-8 reported" grep -q "line 3: invalid UTF-8, skipped" "$T/err"
"$ATTN" classify --model "$T/nbsvm" --explain 2 "a great movie , really boring" >"$T/out" 2>"$T/err"
check "explain: exit 0" [ $? -eq 0 ]
check "explain: header" grep -q "n-gram contributions to s(.) - s(.) = " "$T/out"
check "explain: two n-grams with contributions" [ "$(sed -n '3,4p' "$T/out" | grep -cE '^  [-+][0-9]+\.[0-9]{4}  [a-z]')" -eq 2 -a "$(wc -l <"$T/out")" -eq 4 ]
check "explain: the strongest first" awk 'NR == 3 { a = $1 < 0 ? -$1 : $1 } NR == 4 { b = $1 < 0 ? -$1 : $1 } END { exit !(a >= b && a > 0) }' "$T/out"
check "explain: boring weighs most" [ "$(sed -n 3p "$T/out" | awk '{print $2}')" = boring ]
out=$("$ATTN" classify --model "$T/tfidf-svm" --explain 3 "zzz unknown words" 2>&1)
check "explain: unknown words only" grep -q "no n-gram of this text was seen in training" <<<"$out"

# ---- resume --------------------------------------------------------------------------------
R="--train $T/nbsvm/split/train.tsv --valid $T/nbsvm/split/valid.tsv --batch 8 --lr 0.05 --log-every 0 --threads 1 --quiet"
# a diverging run (--lr 1e30) stops with an error; --on-divergence skip-batch goes on
"$ATTN" train classifier --model attn-pool --data "$DATA" --out "$T/div" $FAST --lr 1e30 --optim sgd >"$T/out" 2>"$T/err"
check "divergence: exit 1" [ $? -eq 1 ]
check "divergence: says so" grep -q "training diverged" "$T/err"
"$ATTN" train classifier --model attn-pool --data "$DATA" --out "$T/div2" $FAST --lr 1e30 --optim sgd --on-divergence skip-batch >"$T/out" 2>"$T/err"
check "divergence, skip-batch: exit 0" [ $? -eq 0 ]
"$ATTN" train classifier --model nbsvm $R --epochs 4 --out "$T/full" >/dev/null 2>"$T/err"
check "uninterrupted run" [ $? -eq 0 ]
"$ATTN" train classifier --model nbsvm $R --epochs 4 --max-steps 7 --out "$T/part" >"$T/out" 2>"$T/err"
check "stopped run" grep -q "^stopped: 7 updates.*(resume with --resume)" "$T/out"
"$ATTN" train classifier --model nbsvm $R --epochs 4 --out "$T/part" --resume >"$T/out" 2>"$T/err"
check "resumed run: exit 0" [ $? -eq 0 ]
check "resumed = uninterrupted weights" cmp -s "$T/full/model.safetensors" "$T/part/model.safetensors"
status "resume with another model" 1 "$ATTN" train classifier --model tfidf-lr $R --epochs 4 --out "$T/part" --resume

# ---- neural models: train, classify, attention, eval, resume --------------------------------
NN="--epochs 30 --batch 8 --lr 0.01 --log-every 0 --threads 1 --embed 16 --hidden 16 --heads 2 --layers 1 --d-ff 32 --min-count 1"
for m in bow attn-pool bigru-attn transformer; do
    "$ATTN" train classifier --model $m --data "$DATA" --out "$T/$m" $NN >"$T/out" 2>"$T/err"
    rc=$?
    check "$m: train exits 0 (rc $rc: $(tail -1 "$T/err"))" [ $rc -eq 0 ]
    check "$m: final line" grep -q "^trained: 150 updates .* valid accuracy 100.00%" "$T/out"
    check "$m: model line" grep -q "^model: $m, 2 classes, vocabulary [0-9]* (words), [0-9]* parameters; training on 40 texts" "$T/err"
    check "$m: checkpoint with vocabulary and labels" [ "$(cat "$T/$m/labels.txt" | tr '\n' ' ')" = "0 1 " -a "$(sed -n 2p "$T/$m/vocab.txt")" = "<unk>" ]
    out=$("$ATTN" classify --model "$T/$m" "a wonderful and charming film" "the plot was dull and tedious" 2>"$T/err")
    check "$m: classify two arguments" [ "$(cut -f1 <<<"$out" | tr '\n' ' ')" = "1 0 " ]
    check "$m: a probability in (0.5, 1] per line" [ "$(cut -f2 <<<"$out" | grep -E '^[01]\.[0-9]{4}$' | awk '$1 > 0.5 && $1 <= 1' | wc -l)" -eq 2 ]
    "$ATTN" classify --model "$T/$m" --show-attention "a wonderful film zzzunseen" >"$T/out" 2>"$T/err"
    check "$m: --show-attention exits 0" [ $? -eq 0 ]
    check "$m: a line per token, with a weight and a bar" [ "$(sed -n '2,5p' "$T/out" | grep -cE '^  [01]\.[0-9]{4}  .{20}  [a-z]+$')" -eq 4 -a "$(wc -l <"$T/out")" -eq 5 ]
    check "$m: tokens in order, the unknown word kept" [ "$(sed -n '2,5p' "$T/out" | awk '{print $NF}' | tr '\n' ' ')" = "a wonderful film zzzunseen " ]
    check "$m: weights in [0, 1] that sum to at most 1" awk 'NR > 1 { s += $1; if ($1 < 0 || $1 > 1) bad = 1 } END { exit !(!bad && s <= 1.0005 && s > 0) }' "$T/out"
    check "$m: the largest weight has the full bar" grep -qE '^  [01]\.[0-9]{4}  ████████████████████  ' "$T/out"
    "$ATTN" eval --model "$T/$m" --data "$T/$m/split/test.tsv" >"$T/out" 2>"$T/err"
    check "$m: eval" grep -qE "accuracy [0-9.]+%, macro-F1 [0-9.]+, 4 texts \($m" "$T/out"
done
check "bow: every word weighs 1/n" [ "$("$ATTN" classify --model "$T/bow" --show-attention "a wonderful film zzzunseen" | sed -n '2,5p' | cut -c3-8 | sort -u)" = "0.2500" ]
check "attn-pool: the weights differ" [ "$("$ATTN" classify --model "$T/attn-pool" --show-attention "a wonderful film" | sed -n '2,4p' | cut -c3-8 | sort -u | wc -l)" -gt 1 ]

# ---- the order analyses: a negation subset, shuffled words -----------------------------------
printf 'label\tsentence\n0\tnot a wonderful film\n1\ta wonderful film\n0\tdull but long\n1\tcharming and fun\n' >"$T/neg.tsv"
"$ATTN" eval --model "$T/bow" --data "$T/neg.tsv" --subset negation >"$T/out" 2>"$T/err"
check "eval --subset negation: 2 of 4 texts" grep -q "2 of 4 texts hold a negation" "$T/err"
check "eval --subset negation: scored on 2" grep -qE "accuracy [0-9.]+%, macro-F1 [0-9.]+, 2 texts" "$T/out"
for m in bow attn-pool; do # bags of words: the same predictions whatever the order, bit for bit
    "$ATTN" eval --model "$T/$m" --data "$DATA" | head -1 | sed 's/ ([^)]*)//' >"$T/a"
    "$ATTN" eval --model "$T/$m" --data "$DATA" --shuffle-words 7 | head -1 | sed 's/ ([^)]*)//' >"$T/b"
    check "$m: shuffled words, the same accuracy" cmp -s "$T/a" "$T/b"
done
"$ATTN" eval --model "$T/bow" --data "$T/neg.tsv" --subset nothing >/dev/null 2>&1
check "eval: unknown --subset is a usage error" [ $? -eq 2 ]
status "--show-attention on a TF-IDF model: a note" 0 "$ATTN" classify --model "$T/nbsvm" --show-attention "good"
check "--show-attention on a TF-IDF model: the note says so" grep -q "no attention to show" "$T/err"
out=$(printf 'wonderful charming\n' | "$ATTN" classify --model "$T/attn-pool" --show-attention)
check "--show-attention reads stdin" [ "$(wc -l <<<"$out")" -eq 3 ]
"$ATTN" train classifier --model bigru-attn --data "$DATA" --out "$T/long" $NN --epochs 1 --max-len 3 >"$T/out" 2>"$T/err"
check "--max-len: texts cut, counted once" [ "$(grep -c "texts longer than 3 tokens cut to 3" "$T/err")" -eq 1 ]
"$ATTN" classify --model "$T/long" --show-attention "a b c d e" >"$T/out" 2>"$T/err"
check "classify cuts a long text to the model's length" [ "$(wc -l <"$T/out")" -eq 4 ]
check "classify says so once" grep -q "^attn classify: 1 texts longer than the model's 3 tokens" "$T/err"
for m in attn-pool transformer; do
    R="--train $T/$m/split/train.tsv --valid $T/$m/split/valid.tsv $NN --epochs 3 --quiet"
    "$ATTN" train classifier --model $m $R --out "$T/$m-full" >/dev/null 2>"$T/err"
    check "$m: uninterrupted run" [ $? -eq 0 ]
    "$ATTN" train classifier --model $m $R --max-steps 7 --out "$T/$m-part" >"$T/out" 2>"$T/err"
    check "$m: stopped run" grep -q "^stopped: 7 updates.*(resume with --resume)" "$T/out"
    "$ATTN" train classifier --model $m $R --out "$T/$m-part" --resume >"$T/out" 2>"$T/err"
    check "$m: resumed run: exit 0" [ $? -eq 0 ]
    check "$m: resumed = uninterrupted weights" cmp -s "$T/$m-full/model.safetensors" "$T/$m-part/model.safetensors"
done
status "neural: resume with another model" 1 "$ATTN" train classifier --model bow $R --out "$T/transformer-part" --resume
# ---- cnn: filter widths, short texts, resume, bad --widths --------------------------------------
"$ATTN" train classifier --model cnn --data "$DATA" --out "$T/cnn" $NN --maps 8 --widths 2,5 >"$T/out" 2>"$T/err"
rc=$?
check "cnn: train exits 0 (rc $rc: $(tail -1 "$T/err"))" [ $rc -eq 0 ]
check "cnn: final line" grep -q "^trained: 150 updates .* valid accuracy 100.00%" "$T/out"
check "cnn: maps and widths in config.json" grep -q '"maps": 8, "widths": \[2, 5\]' "$T/cnn/config.json"
check "cnn: parameters E x (2 + 5) x 8 + 2 x 8 + 2 x 16 + 2 + 16 V" grep -q "^model: cnn, 2 classes, vocabulary $(($(wc -l <"$T/cnn/vocab.txt"))) (words), $((16 * 7 * 8 + 16 + 2 * 16 + 2 + 16 * $(wc -l <"$T/cnn/vocab.txt"))) parameters" "$T/err"
out=$("$ATTN" classify --model "$T/cnn" "a wonderful and charming film" "the plot was dull and tedious" "dull" 2>"$T/err")
check "cnn: classify, a text shorter than the widest filter too" [ "$(cut -f1 <<<"$out" | tr '\n' ' ')" = "1 0 0 " ]
"$ATTN" classify --model "$T/cnn" --show-attention "a wonderful film zzzunseen" >"$T/out" 2>"$T/err"
check "cnn: --show-attention, a line per token" [ "$(sed -n '2,5p' "$T/out" | grep -cE '^  [01]\.[0-9]{4}  .{20}  [a-z]+$')" -eq 4 -a "$(wc -l <"$T/out")" -eq 5 ]
check "cnn: the shares of the maps sum to 1" awk 'NR > 1 { s += $1; if ($1 < 0 || $1 > 1) bad = 1 } END { exit !(!bad && s > 0.999 && s < 1.001) }' "$T/out"
check "cnn: one word has every share" [ "$("$ATTN" classify --model "$T/cnn" --show-attention "wonderful" | sed -n 2p | cut -c3-8)" = "1.0000" ]
"$ATTN" eval --model "$T/cnn" --data "$T/cnn/split/test.tsv" >"$T/out" 2>"$T/err"
check "cnn: eval" grep -qE "accuracy [0-9.]+%, macro-F1 [0-9.]+, 4 texts \(cnn" "$T/out"
R="--train $T/cnn/split/train.tsv --valid $T/cnn/split/valid.tsv $NN --maps 8 --widths 2,5 --dropout 0.5 --epochs 3 --quiet"
"$ATTN" train classifier --model cnn $R --out "$T/cnn-full" >/dev/null 2>"$T/err"
check "cnn: uninterrupted run" [ $? -eq 0 ]
"$ATTN" train classifier --model cnn $R --max-steps 7 --out "$T/cnn-part" >"$T/out" 2>"$T/err"
check "cnn: stopped run" grep -q "^stopped: 7 updates.*(resume with --resume)" "$T/out"
"$ATTN" train classifier --model cnn $R --out "$T/cnn-part" --resume >"$T/out" 2>"$T/err"
check "cnn: resumed run: exit 0" [ $? -eq 0 ]
check "cnn: resumed = uninterrupted weights" cmp -s "$T/cnn-full/model.safetensors" "$T/cnn-part/model.safetensors"
for w in "" "3,,4" "0" "65" "1,2,3,4,5,6,7,8,9" "3x" "3," "-3"; do
    status "cnn: bad --widths '$w'" 2 "$ATTN" train classifier --model cnn --data "$DATA" --widths "$w" --out "$T/x"
    check "cnn: bad --widths '$w' says why" grep -q -- "--widths" "$T/err"
done
status "cnn: --maps 0" 2 "$ATTN" train classifier --model cnn --data "$DATA" --maps 0 --out "$T/x"
"$ATTN" train classifier --model attn-pool --train data/cls/three.csv --label-column cat --out "$T/zh" $NN >"$T/out" 2>"$T/err"
check "attn-pool on Chinese: characters, Chinese labels" grep -q "vocabulary [0-9]* (characters)" "$T/err"
check "attn-pool on Chinese: one character a token" [ "$("$ATTN" classify --model "$T/zh" --show-attention "好书" | sed -n '2,3p' | awk '{print $NF}' | tr '\n' ' ')" = "好 书 " ]
status "neural: bad --pos" 2 "$ATTN" train classifier --model transformer --data "$DATA" --pos spiral --out "$T/x"
status "neural: bad --pool" 2 "$ATTN" train classifier --model transformer --data "$DATA" --pool max --out "$T/x"
status "neural: bad --score" 2 "$ATTN" train classifier --model attn-pool --data "$DATA" --score cosine --out "$T/x"
status "neural: bad --dropout" 2 "$ATTN" train classifier --model bow --data "$DATA" --dropout 1 --out "$T/x"
status "neural: --embed not a multiple of --heads" 2 "$ATTN" train classifier --model transformer --data "$DATA" --embed 10 --heads 4 --out "$T/x"
status "neural: --max-len 0" 2 "$ATTN" train classifier --model bow --data "$DATA" --max-len 0 --out "$T/x"
status "neural: a TF-IDF option" 2 "$ATTN" train classifier --model bow --data "$DATA" --ngram 1-2 --out "$T/x"
cp -r "$T/attn-pool" "$T/corrupt-nn" && printf 'x' >>"$T/corrupt-nn/model.safetensors"
status "neural: corrupt checkpoint" 1 "$ATTN" classify --model "$T/corrupt-nn" "good"

# ---- label column, Chinese -----------------------------------------------------------------
"$ATTN" train classifier --model tfidf-lr --train data/cls/three.csv --label-column cat --out "$T/cat" $FAST >"$T/out" 2>"$T/err"
check "--label-column cat: exit 0" [ $? -eq 0 ]
check "--label-column cat: Chinese label names kept" grep -q '"labels": \["书籍", "手机", "水果"\]' "$T/cat/config.json"
check "--tok auto: characters for Chinese" grep -q "(characters)" "$T/err"
check "classify prints a Chinese label" grep -qE "^(书籍|手机|水果)	" <("$ATTN" classify --model "$T/cat" "好书")
"$ATTN" train classifier --model tfidf-lr --train data/cls/malformed.csv --out "$T/mal" $FAST >"$T/out" 2>"$T/err"
check "malformed rows: counted on stderr" grep -q "malformed rows skipped (line 3: empty text" "$T/err"

# ---- bad inputs ----------------------------------------------------------------------------
status "missing data file" 1 "$ATTN" train classifier --model nbsvm --train "$T/none.tsv" --out "$T/x"
status "unknown model" 2 "$ATTN" train classifier --model cnn9 --data "$DATA" --out "$T/x"
status "no model" 2 "$ATTN" train classifier --data "$DATA" --out "$T/x"
status "unknown label column" 1 "$ATTN" train classifier --model nbsvm --data "$DATA" --label-column stars --out "$T/x"
status "unknown --tok" 2 "$ATTN" train classifier --model nbsvm --data "$DATA" --tok klingon --out "$T/x"
status "bad --ngram" 2 "$ATTN" train classifier --model nbsvm --data "$DATA" --ngram 3-1 --out "$T/x"
status "an option of another family" 2 "$ATTN" train classifier --model nbsvm --data "$DATA" --hidden 8 --out "$T/x"
status "one label only" 1 "$ATTN" train classifier --model nbsvm --train <(printf 'label\ttext\n1\ta\n1\tb\n') --out "$T/x"
cp -r "$T/nbsvm" "$T/corrupt" && printf 'x' >>"$T/corrupt/tfidf.tsv"
status "corrupt checkpoint: classify" 1 "$ATTN" classify --model "$T/corrupt" "good"
check "corrupt checkpoint: names the file" grep -q "tfidf.tsv" "$T/err"
status "corrupt checkpoint: eval" 1 "$ATTN" eval --model "$T/corrupt" --data "$DATA"
status "missing checkpoint" 1 "$ATTN" classify --model "$T/none" "good"
status "classify without --model" 2 "$ATTN" classify "good"
status "eval: missing data" 1 "$ATTN" eval --model "$T/nbsvm" --data "$T/none.tsv"
status "eval: unknown labels only" 1 "$ATTN" eval --model "$T/nbsvm" --data data/cls/three.csv --label-column cat
# ---- robustness: bad rows, empty inputs, unknown words, a very long text, corrupt models ----
# (issue 9's list; each for a TF-IDF and a neural model where both apply)
for m in nbsvm attn-pool; do
    "$ATTN" eval --model "$T/$m" --data data/cls/malformed.csv >"$T/out" 2>"$T/err"
    check "$m: eval of bad rows (empty text, BOM, bad bytes): exit 0" [ $? -eq 0 ]
    check "$m: eval of bad rows: counted with line numbers" grep -q "9 malformed rows skipped (line 3: empty text; line 4: empty label" "$T/err"
    status "$m: eval of an unbalanced quote" 1 "$ATTN" eval --model "$T/$m" --data data/cls/unbalanced.csv
    check "$m: unbalanced quote: the line named" grep -q "line 3: a quoted field has no closing quote" "$T/err"
    : >"$T/empty.tsv"
    status "$m: eval of an empty file" 1 "$ATTN" eval --model "$T/$m" --data "$T/empty.tsv"
    check "$m: empty file: says so" grep -q "the file is empty" "$T/err"
    status "$m: classify an empty argument" 1 "$ATTN" classify --model "$T/$m" ""
    check "$m: empty argument: says so" grep -q "argument 1: an empty text" "$T/err"
    printf '\n   \n' | "$ATTN" classify --model "$T/$m" >"$T/out" 2>"$T/err"
    check "$m: stdin of blank lines: exit 1, nothing out, each line reported" [ $? -eq 1 -a ! -s "$T/out" -a "$(grep -c 'an empty text, skipped' "$T/err")" -eq 2 ]
    "$ATTN" classify --model "$T/$m" </dev/null >"$T/out" 2>"$T/err"
    check "$m: empty stdin: exit 0, nothing out" [ $? -eq 0 -a ! -s "$T/out" ]
    a=$("$ATTN" classify --model "$T/$m" "zzz qqq" 2>"$T/err") && b=$("$ATTN" classify --model "$T/$m" "xxx yyy vvv" 2>>"$T/err")
    check "$m: all-unknown texts classify, alike (every word <unk>: '$a', '$b')" [ -n "$a" -a "$a" = "$b" ]
done
status "train on an empty file" 1 "$ATTN" train classifier --model nbsvm --data "$T/empty.tsv" --out "$T/x"
awk 'BEGIN { for (i = 0; i < 100000; i++) printf "%s%s", i ? " " : "", i % 2 ? "wonderful" : "dull"; print "" }' >"$T/long.txt"
"$ATTN" classify --model "$T/nbsvm" --explain 2 <"$T/long.txt" >"$T/out" 2>"$T/err"
check "TF-IDF: a 100,000-word text classifies ($(head -1 "$T/err"))" [ $? -eq 0 -a "$(wc -l <"$T/out")" -eq 4 ]
"$ATTN" classify --model "$T/attn-pool" <"$T/long.txt" >"$T/out" 2>"$T/err"
check "neural: a 100,000-word text classifies" [ $? -eq 0 -a "$(wc -l <"$T/out")" -eq 1 ]
check "neural: ... cut to max-len, with a note" grep -q "1 texts longer than the model's 512 tokens were cut" "$T/err"
fnv() { # FNV-1a 64 of a file, as config.json's checksums
    local h=-3750763034362895579 b
    for b in $(od -An -v -tu1 "$1"); do h=$(((h ^ b) * 1099511628211)); done
    printf '%016x' "$h"
}
# corrupt NAME MODEL EDIT: a copy of MODEL's checkpoint, EDIT run inside it, fails classify and eval
corrupt() {
    rm -rf "$T/bad" && cp -r "$T/$2" "$T/bad" && (cd "$T/bad" && eval "$3")
    status "$1: classify" 1 "$ATTN" classify --model "$T/bad" "good"
    status "$1: eval" 1 "$ATTN" eval --model "$T/bad" --data "$DATA"
}
for m in nbsvm attn-pool; do
    corrupt "$m: truncated model.safetensors" $m 'truncate -s 100 model.safetensors'
    check "$m: truncated: says the file changed" grep -q "model.safetensors has 100 bytes" "$T/err"
    corrupt "$m: config.json of garbage" $m 'echo "garbage{" >config.json'
    check "$m: garbage: names config.json" grep -q "config.json: unexpected character" "$T/err"
done
corrupt "nbsvm: tfidf.tsv missing" nbsvm 'rm tfidf.tsv'
corrupt "nbsvm: three labels for two classes" nbsvm "sed -i 's/\"labels\": \\[\"0\", \"1\"\\]/\"labels\": [\"0\", \"1\", \"2\"]/' config.json"
check "nbsvm: three labels: says so" grep -q '"labels" is not an array of one name per class' "$T/err"
corrupt "attn-pool: vocab.txt missing" attn-pool 'rm vocab.txt'
check "attn-pool: vocab.txt missing: named" grep -q "vocab.txt: cannot open" "$T/err"
corrupt "attn-pool: labels.txt missing" attn-pool 'rm labels.txt'
# three label lines for two classes, with a correct size and checksum: the loader's own check
corrupt "attn-pool: three labels for two classes" attn-pool 'printf "0\n1\n2\n" >labels.txt &&
    sed -i "s/\"labels.txt\": {\"bytes\": 4, \"fnv1a64\": \"[0-9a-f]*\"}/\"labels.txt\": {\"bytes\": 6, \"fnv1a64\": \"$(fnv labels.txt)\"}/" config.json'
check "attn-pool: three labels: says so" grep -q "expected 2 label lines" "$T/err"

"$ATTN" train classifier --help >"$T/out"
check "help teaches TF-IDF and names the models" grep -q "idf = ln" "$T/out"
check "help has the SST-2 example" grep -q "shared/data/sst2/train.tsv" "$T/out"
check "help teaches the neural models" grep -q "attn-pool    attention pooling" "$T/out"
check "help teaches the cnn" grep -q "cnn          a convolutional network (Kim 2014)" "$T/out"

echo "$npass passed, $nfail failed"
[ $nfail -eq 0 ]
