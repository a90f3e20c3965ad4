#!/usr/bin/env bash
# tests/cli_memory.sh: the translation memory (kNN-MT, attn/knnmt.h) end to end: `attn memory
# build / tune / info` and `--memory` in `attn translate` / `attn eval`, with the shipped
# zh-en-small model (GRU + Bahdanau) on the 32 pairs of data/seq2seq/pairs.tsv, and a tiny
# Transformer trained here in a second (the other family).
#
#   bash tests/cli_memory.sh /path/to/attn
#
# Checks: building is deterministic (the same bytes twice) and atomic (no temporary file
# left); info reads the header; lambda 0 reproduces the model's own translations exactly (both
# families, translate and eval); a memory built from the very pairs translated helps on them;
# tune writes its settings into the header, --memory alone then uses them and options
# override them; a corrupt, truncated or foreign file, and a store built for another model (of
# other sizes, or of the same sizes with other weights) get a clear error and exit 1; bad
# options exit 2. Prints "N passed, N failed" last.
set -u
[ $# -ge 1 ] || { echo "usage: bash cli_memory.sh /path/to/attn" >&2; exit 2; }
ATTN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
cd "$(dirname "$0")" || exit 2
MODEL=../models/zh-en-small
DATA=data/seq2seq/pairs.tsv
[ -f "$MODEL/model.safetensors" ] || { echo "skip: no $MODEL"; exit 77; }
T=$(mktemp -d) || exit 2
trap 'rm -rf "$T"' EXIT
npass=0
nfail=0
ok() { npass=$((npass + 1)); }
bad() { nfail=$((nfail + 1)); echo "FAIL: $*" >&2; }
check() { local n=$1; shift; if "$@"; then ok; else bad "$n"; fi; }
run() { local n=$1; shift; if "$ATTN" "$@" >"$T/out" 2>"$T/err"; then ok; else bad "$n: exit $? ($(head -2 "$T/err"))"; fi; }
# status NAME WANT PATTERN COMMAND...: exits with WANT and stderr says PATTERN
status() {
    local n=$1 want=$2 pat=$3; shift 3
    "$ATTN" "$@" >"$T/out" 2>"$T/err"
    local rc=$?
    if [ $rc -eq "$want" ] && grep -qi -- "$pat" "$T/err"; then ok; else bad "$n (rc $rc, want $want, /$pat/: $(head -1 "$T/err"))"; fi
}

# ---- build: deterministic, atomic ----------------------------------------------------------
run "build" memory build --model $MODEL --data $DATA --out "$T/a.knn" --threads 2
run "build again" memory build --model $MODEL --data $DATA --out "$T/b.knn" --threads 1 --quiet
check "same bytes for the same inputs" cmp -s "$T/a.knn" "$T/b.knn"
check "no temporary file left" test -z "$(ls "$T" | grep '\.tmp\.')"
run "info" memory info "$T/a.knn"
check "info: entries, size, defaults" grep -q "entries, state size 128, target vocabulary 3932.*(defaults)" "$T/out"
# one entry per target token plus <eos>: the file is 64 + 4 N (128 + 1) bytes
n=$(sed -n 's/.*: \([0-9]*\) entries.*/\1/p' "$T/out")
check "file size agrees with the entries" test "$(stat -c %s "$T/a.knn")" = $((64 + 4 * n * 129))

# ---- lambda 0 is the model alone; the memory of the very pairs helps on them -----------------
cut -f2 $DATA >"$T/src.txt"
"$ATTN" translate --model $MODEL <"$T/src.txt" >"$T/plain.txt" 2>/dev/null
"$ATTN" translate --model $MODEL --memory "$T/a.knn" --lambda 0 <"$T/src.txt" >"$T/l0.txt" 2>/dev/null
check "lambda 0 = the model's own translations (beam 5)" cmp -s "$T/plain.txt" "$T/l0.txt"
"$ATTN" translate --model $MODEL --beam 1 <"$T/src.txt" >"$T/plain1.txt" 2>/dev/null
"$ATTN" translate --model $MODEL --beam 1 --memory "$T/a.knn" --lambda 0 <"$T/src.txt" >"$T/l01.txt" 2>/dev/null
check "lambda 0 = the model's own translations (greedy)" cmp -s "$T/plain1.txt" "$T/l01.txt"
bleu() { sed -n 's/.*BLEU \([0-9.]*\),.*/\1/p' "$T/out" | head -1; }
run "eval alone" eval --model $MODEL --data $DATA --quiet
b0=$(bleu)
run "eval lambda 0" eval --model $MODEL --data $DATA --quiet --memory "$T/a.knn" --lambda 0
check "eval: lambda 0 gives the same BLEU ($b0, $(bleu))" test "$b0" = "$(bleu)"
run "eval with memory" eval --model $MODEL --data $DATA --quiet --memory "$T/a.knn" --lambda 0.6 --k 4 --temperature 1
b1=$(bleu)
check "eval prints tokens/s" grep -q "tokens/s (with the memory)" "$T/out"
check "memory of the test pairs helps ($b0 -> $b1)" awk -v a="$b0" -v b="$b1" 'BEGIN { exit !(b > a) }'

run "eval with an approximate index" eval --model $MODEL --data $DATA --memory "$T/a.knn" --nprobe 2 --nlist 8
check "it says so" grep -q "index of 8 lists" "$T/err"
status "--nlist without --nprobe" 2 "nprobe" eval --model $MODEL --data $DATA --memory "$T/a.knn" --nlist 8
status "--nprobe without --memory" 2 "need --memory" translate --model $MODEL --nprobe 4 "我爱你。"

# ---- tune: settings into the header, used by --memory alone, overridden by options ----------
cp "$T/a.knn" "$T/t.knn"
run "tune" memory tune --model $MODEL --memory "$T/t.knn" --data $DATA --k-grid 4 --t-grid 0.5 --lambda-grid 0.5,0.7 --csv "$T/tune.csv"
check "tune's csv" test "$(head -1 "$T/tune.csv")" = "k,temperature,lambda,bleu"
run "info after tune" memory info "$T/t.knn"
check "header says tuned, k 4 or 8, lambda 0.5 or 0.7" grep -Eq "k [48], temperature [0-9.e+-]+, lambda 0\.[57] \(tuned\)" "$T/out"
run "translate with the tuned store" translate --model $MODEL --memory "$T/t.knn" "我爱你。"
run "eval with the tuned store" eval --model $MODEL --data $DATA --memory "$T/t.knn"
check "eval reports the tuned settings" grep -Eq "k [48], .*lambda 0\.[57] \(tuned, from the store\)" "$T/err"
run "eval with an override" eval --model $MODEL --data $DATA --memory "$T/t.knn" --k 2
check "eval reports the override" grep -q "k 2, .*(options)" "$T/err"

# ---- damaged and foreign files ----------------------------------------------------------------
size=$(stat -c %s "$T/a.knn")
head -c $((size - 10)) "$T/a.knn" >"$T/trunc.knn"
status "truncated store" 1 "truncated" eval --model $MODEL --data $DATA --memory "$T/trunc.knn"
head -c 30 "$T/a.knn" >"$T/short.knn"
status "store shorter than its header" 1 "header" translate --model $MODEL --memory "$T/short.knn" "我爱你。"
cp "$T/a.knn" "$T/flip.knn"
printf '\x55' | dd of="$T/flip.knn" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
status "corrupt payload" 1 "checksum" translate --model $MODEL --memory "$T/flip.knn" "我爱你。"
cp "$T/a.knn" "$T/ver.knn"
printf '\x07' | dd of="$T/ver.knn" bs=1 seek=8 conv=notrunc 2>/dev/null
status "unknown version" 1 "version" memory info "$T/ver.knn"
status "not a store" 1 "magic" translate --model $MODEL --memory $DATA "我爱你。"
status "missing store" 1 "nope.knn" translate --model $MODEL --memory "$T/nope.knn" "我爱你。"
# another model: a tiny GRU model of other sizes, and one of the same sizes with other weights
for seed in 1 2; do
    "$ATTN" train seq2seq --train $DATA --valid $DATA --out "$T/tiny$seed" --emb 8 --hidden 16 --epochs 1 --seed $seed \
        --threads 1 --quiet >/dev/null 2>&1 || bad "train tiny model $seed"
done
status "store of another model (other sizes)" 1 "another model" translate --model "$T/tiny1" --memory "$T/a.knn" "我爱你。"
run "build for tiny1" memory build --model "$T/tiny1" --data $DATA --out "$T/tiny1.knn" --quiet
status "store of another model (same sizes, other weights)" 1 "another model" \
    eval --model "$T/tiny2" --data $DATA --memory "$T/tiny1.knn"
status "tune refuses it too" 1 "another model" memory tune --model "$T/tiny2" --memory "$T/tiny1.knn" --data $DATA

# ---- the Transformer family ---------------------------------------------------------------------
"$ATTN" train transformer --train $DATA --valid $DATA --out "$T/tr" --d-model 16 --heads 2 --ff 32 --layers 1 --epochs 2 \
    --threads 1 --valid-bleu 0 --quiet >/dev/null 2>&1 || bad "train a tiny transformer"
run "transformer: build" memory build --model "$T/tr" --data $DATA --out "$T/tr.knn" --quiet
run "transformer: info" memory info "$T/tr.knn"
check "transformer: state size is d_model" grep -q "state size 16," "$T/out"
"$ATTN" translate --model "$T/tr" <"$T/src.txt" >"$T/tplain.txt" 2>/dev/null
"$ATTN" translate --model "$T/tr" --memory "$T/tr.knn" --lambda 0 <"$T/src.txt" >"$T/tl0.txt" 2>/dev/null
check "transformer: lambda 0 = the model's own translations" cmp -s "$T/tplain.txt" "$T/tl0.txt"
run "transformer: eval alone" eval --model "$T/tr" --data $DATA --quiet --beam 1
b0=$(bleu)
run "transformer: eval with memory" eval --model "$T/tr" --data $DATA --quiet --beam 1 --memory "$T/tr.knn" --lambda 0.7 --k 4 --temperature 1
check "transformer: memory of the test pairs helps ($b0 -> $(bleu))" awk -v a="$b0" -v b="$(bleu)" 'BEGIN { exit !(b > a) }'
status "a GRU store for the transformer" 1 "another model" translate --model "$T/tr" --memory "$T/a.knn" "我爱你。"

# ---- usage errors ---------------------------------------------------------------------------------
status "lambda 1" 2 "lambda" translate --model $MODEL --memory "$T/a.knn" --lambda 1 "我爱你。"
status "temperature 0" 2 "temperature" eval --model $MODEL --data $DATA --memory "$T/a.knn" --temperature 0
status "k 0" 2 "k" translate --model $MODEL --memory "$T/a.knn" --k 0 "我爱你。"
status "--lambda without --memory" 2 "need --memory" translate --model $MODEL --lambda 0.5 "我爱你。"
status "build without --out" 2 "required" memory build --model $MODEL --data $DATA
status "unknown subcommand" 2 "unknown subcommand" memory fly
status "bad grid" 2 "grid" memory tune --model $MODEL --memory "$T/a.knn" --data $DATA --lambda-grid 0.5,x
run "help" memory --help
check "help teaches" grep -q "Khandelwal" "$T/out"

echo "cli_memory: $npass passed, $nfail failed"
[ $nfail -eq 0 ]
