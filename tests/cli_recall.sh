#!/usr/bin/env bash
# tests/cli_recall.sh: attn train recall and attn eval of a recall model end to end, on tiny
# runs (a few hundred updates of a hidden size of 8: seconds).
#
#   bash tests/cli_recall.sh /path/to/attn
#
# Checks: each model trains and writes a checkpoint of kind "recall" with its data seed; the
# soft-memory model learns 2 pairs (hidden 16, 12 epochs of 4,000); eval regenerates the test split from the stored seed and
# gives the same accuracy as training's last line (text and --json), --show prints sequences
# with the answer and the address; the same seed gives bitwise the same weights with 1 and 2
# threads, and a stopped and resumed run the weights of an uninterrupted one; bad options
# (unknown --model, --pairs 0 or above the 52 keys, no --out) are usage errors (2) and a
# corrupt model directory a data error (1), each with a message. Prints "N passed, N failed".
set -u
[ $# -ge 1 ] || { echo "usage: bash cli_recall.sh /path/to/attn" >&2; exit 2; }
ATTN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
T=$(mktemp -d) || exit 2
trap 'rm -rf "$T"' EXIT
npass=0
nfail=0
ok() { npass=$((npass + 1)); }
bad() { nfail=$((nfail + 1)); echo "FAIL: $*" >&2; }
check() { local n=$1; shift; if "$@"; then ok; else bad "$n"; fi; }
status() {
    local n=$1 want=$2; shift 2
    "$@" >"$T/out" 2>"$T/err"
    local rc=$?
    if [ $rc -eq "$want" ] && [ -s "$T/err" ]; then ok; else bad "$n (rc $rc, want $want: $(head -1 "$T/err"))"; fi
}

SMALL="--hidden 8 --embed 8 --train 1500 --valid 200 --test 300 --log-every 0"
for m in gru lstm gru-attn gru-hard gru-argmax; do
    "$ATTN" train recall --model $m --pairs 2 $SMALL --epochs 2 --threads 1 --out "$T/$m" >"$T/out" 2>"$T/err"
    rc=$?
    check "$m: train exits 0 (rc $rc: $(tail -1 "$T/err"))" [ $rc -eq 0 ]
    check "$m: final line" grep -qE "^trained: [0-9]+ updates .* test accuracy [0-9.]+% \\(300 sequences\\)" "$T/out"
    check "$m: progress lines" grep -q "^epoch 2/2: valid loss" "$T/err"
    check "$m: checkpoint" grep -q "\"kind\": \"recall\", \"model\": \"$m\", \"pairs\": 2, \"hidden\": 8" "$T/$m/config.json"
    want=$(sed -E 's/.*test accuracy ([0-9.]+)%.*/\1/' "$T/out")
    "$ATTN" eval --model "$T/$m" >"$T/eval" 2>"$T/err"
    check "$m: eval exits 0" [ $? -eq 0 ]
    check "$m: eval gives training's test accuracy ($want%)" grep -q "^$m, 2 pairs, hidden 8: test accuracy $want% on 300 sequences" "$T/eval"
    "$ATTN" eval --model "$T/$m" --json >"$T/json" 2>"$T/err"
    check "$m: eval --json" /usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['model']=='$m' and d['pairs']==2 and d['test']==300 and abs(100*d['accuracy']-$want)<0.006" "$T/json"
done
"$ATTN" train recall --model gru-attn --pairs 2 --hidden 16 --embed 16 --train 4000 --valid 200 --test 300 --epochs 12 --lr 0.01 \
    --log-every 0 --threads 1 --out "$T/learn" >"$T/out" 2>"$T/err"
acc=$(sed -E 's/.*test accuracy ([0-9.]+)%.*/\1/' "$T/out")
check "gru-attn learns 2 pairs (test accuracy $acc% >= 85%)" awk -v a="$acc" 'BEGIN { exit !(a >= 85) }'
"$ATTN" eval --model "$T/gru-attn" --show 2 >"$T/out" 2>"$T/err"
check "eval --show: two sequences with the address" [ "$(grep -cE '^[a-z][0-9][a-z][0-9]\?\?[a-z] -> [0-9] \(answer [0-9]\), address weighs most step [0-9]+' "$T/out")" -eq 2 ]
"$ATTN" eval --model "$T/gru-attn" --show 2 --json >"$T/out" 2>"$T/err"
check "eval --json --show: the JSON alone on stdout" /usr/bin/python3 -c "import json,sys; json.load(open(sys.argv[1]))" "$T/out"
check "eval --json --show: the sequences on stderr" [ "$(grep -c ' -> ' "$T/err")" -eq 2 ]
"$ATTN" eval --model "$T/gru" --show 1 >"$T/out" 2>"$T/err"
check "eval --show: no address for gru" grep -qE '^[a-z0-9?]{7} -> [0-9] \(answer [0-9]\)$' "$T/out"

# ---- reproducibility: threads, resume ----
"$ATTN" train recall --model gru-hard --pairs 3 $SMALL --epochs 1 --threads 2 --out "$T/t2" >/dev/null 2>&1
"$ATTN" train recall --model gru-hard --pairs 3 $SMALL --epochs 1 --threads 1 --out "$T/t1" >/dev/null 2>&1
check "the same weights with 1 and 2 threads" cmp -s "$T/t1/model.safetensors" "$T/t2/model.safetensors"
"$ATTN" train recall --model lstm --pairs 3 $SMALL --epochs 2 --threads 1 --out "$T/full" >/dev/null 2>&1
"$ATTN" train recall --model lstm --pairs 3 $SMALL --epochs 2 --threads 1 --max-steps 30 --out "$T/part" >"$T/out" 2>&1
check "a stopped run says so" grep -q "^stopped: 30 updates.*resume with --resume" "$T/out"
"$ATTN" train recall --resume $SMALL --epochs 2 --threads 1 --out "$T/part" >"$T/out" 2>"$T/err"
check "resume exits 0 ($(tail -1 "$T/err"))" grep -q "^trained:" "$T/out"
check "resumed weights = uninterrupted weights" cmp -s "$T/full/model.safetensors" "$T/part/model.safetensors"

# ---- errors ----
status "unknown --model" 2 "$ATTN" train recall --model rnn --pairs 4 --out "$T/x"
status "--pairs 0" 2 "$ATTN" train recall --model gru --pairs 0 --out "$T/x"
status "--pairs 53 (more than the 52 keys a-z A-Z)" 2 "$ATTN" train recall --model gru --pairs 53 --out "$T/x"
status "no --out" 2 "$ATTN" train recall --model gru --pairs 4
status "no --model" 2 "$ATTN" train recall --pairs 4 --out "$T/x"
status "unknown option" 2 "$ATTN" train recall --model gru --bogus 1 --out "$T/x"
status "eval: unknown option" 2 "$ATTN" eval --model "$T/gru" --bogus
check "train recall --help" "$ATTN" train recall --help >/dev/null
check "train --help lists recall" grep -q recall <("$ATTN" train --help)
cp -r "$T/gru" "$T/corrupt"
printf 'garbage' >"$T/corrupt/model.safetensors"
status "eval: corrupt model.safetensors" 1 "$ATTN" eval --model "$T/corrupt"
grep -q "model.safetensors" "$T/err" && ok || bad "the corrupt file is named: $(cat "$T/err")"
cp -r "$T/gru" "$T/badcfg"
sed -i 's/"pairs": 2/"pairs": 0/' "$T/badcfg/config.json"
status "eval: a config with 0 pairs" 1 "$ATTN" eval --model "$T/badcfg"
cp -r "$T/gru" "$T/hugecfg"
sed -i 's/"hidden": 8/"hidden": 60000/' "$T/hugecfg/config.json"
status "eval: a config far larger than its weights" 1 "$ATTN" eval --model "$T/hugecfg"
grep -q "asks for [0-9]* parameters" "$T/err" && ok || bad "config larger than weights: $(cat "$T/err")"
status "resume of a corrupt checkpoint" 1 "$ATTN" train recall --resume --out "$T/corrupt"

echo "$npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
