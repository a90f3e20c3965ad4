#!/usr/bin/env bash
# tests/cli_translate.sh: attn train seq2seq, attn translate and attn eval end to end, on a tiny
# model trained here in a second from tests/data/seq2seq/pairs.tsv (pairs written for the tests,
# with malformed lines among them).
#
#   bash tests/cli_translate.sh /path/to/attn
#
# Checks: malformed data lines are reported and skipped; training writes a checkpoint and the
# split; translate prints one line per sentence (an empty line for an empty one), reads stdin,
# marks unknown characters, draws the alignment as text and SVG; eval prints BLEU and writes
# CSV; a stopped and resumed run gives the same weights as an uninterrupted one; a truncated,
# corrupted or missing checkpoint, a data file without a valid pair, the distracted model asked
# for a picture and bad options each give a clear error and the right exit status.
# Prints "N passed, N failed" last and exits non-zero on any failure.
set -u
[ $# -ge 1 ] || { echo "usage: bash cli_translate.sh /path/to/attn" >&2; exit 2; }
ATTN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
cd "$(dirname "$0")" || exit 2
DATA=data/seq2seq/pairs.tsv
T=$(mktemp -d) || exit 2
trap 'rm -rf "$T"' EXIT
npass=0
nfail=0
ok() { npass=$((npass + 1)); }
bad() { nfail=$((nfail + 1)); echo "FAIL: $*" >&2; }
# check NAME COMMAND...: the command succeeds
check() { local n=$1; shift; if "$@"; then ok; else bad "$n"; fi; }

TINY="--emb 16 --hidden 16 --batch 8 --min-count 1 --valid-bleu 0 --log-every 0 --warmup 5 --lr 0.01 --threads 1"

# ---- training ------------------------------------------------------------------------------
"$ATTN" train seq2seq --data "$DATA" --split-dir "$T/split" --out "$T/m" --epochs 20 $TINY >"$T/out" 2>"$T/err"
rc=$?
check "train exits 0 (rc $rc: $(tail -1 "$T/err"))" [ $rc -eq 0 ]
check "malformed lines reported" grep -q "4 malformed lines skipped (line 23: no tab; line 24: empty side; line 25: empty side; line 32: invalid UTF-8)" "$T/err"
check "checkpoint written" [ -s "$T/m/config.json" -a -s "$T/m/model.safetensors" -a -s "$T/m/src_vocab.txt" -a -s "$T/m/tgt_vocab.txt" ]
check "split written" [ -s "$T/split/train.tsv" -a -s "$T/split/valid.tsv" -a -s "$T/split/test.tsv" ]
check "command recorded" grep -q '"command": "attn train seq2seq --data' "$T/m/config.json"
check "final line" grep -q "^trained: 60 updates" "$T/out"

# a run that fails before its first checkpoint leaves no directory behind; --epochs 0 writes
# the initialised model, as it says
"$ATTN" train seq2seq --data "$DATA" --out "$T/none-left" --max-len 1 $TINY >"$T/out" 2>"$T/err"
check "no usable pair: exit 1" [ $? -eq 1 ]
check "no usable pair: nothing left behind" [ ! -e "$T/none-left" ]
"$ATTN" train seq2seq --data "$DATA" --out "$T/e0" --epochs 0 $TINY >"$T/out" 2>"$T/err"
check "--epochs 0: the checkpoint it reports" [ -s "$T/e0/config.json" -a -s "$T/e0/model.safetensors" ]

# a diverging run (--lr 1e30) stops with an error after its first update; skip-batch goes on
"$ATTN" train seq2seq --data "$DATA" --out "$T/div" --epochs 2 --optim sgd $TINY --lr 1e30 >"$T/out" 2>"$T/err"
check "divergence: exit 1" [ $? -eq 1 ]
check "divergence: says so" grep -q "step 2: loss .*training diverged" "$T/err"
"$ATTN" train seq2seq --data "$DATA" --out "$T/div2" --epochs 2 --optim sgd $TINY --lr 1e30 --on-divergence skip-batch >"$T/out" 2>"$T/err"
check "divergence, skip-batch: exit 0" [ $? -eq 0 ]
check "divergence, skip-batch: updates skipped" grep -q "diverging, update skipped" "$T/err"
"$ATTN" train seq2seq --data "$DATA" --out "$T/div3" --on-divergence maybe >"$T/out" 2>"$T/err"
check "--on-divergence maybe: exit 2" [ $? -eq 2 ]

# ---- translate -----------------------------------------------------------------------------
out=$("$ATTN" translate --model "$T/m" "我爱你。" 2>"$T/err")
check "translate exits 0" [ $? -eq 0 ]
check "one line of English" [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 -a -n "$out" ]
printf '我爱你。\n\n他喜欢猫。\n' | "$ATTN" translate --model "$T/m" --beam 1 >"$T/out" 2>"$T/err"
check "stdin: exit 0" [ $? -eq 0 ]
check "stdin: three lines out, the empty one empty" [ "$(wc -l <"$T/out")" -eq 3 -a -z "$(sed -n 2p "$T/out")" -a -n "$(sed -n 3p "$T/out")" ]
# a bad line in the middle of a stream: reported with its number, an empty output line, the
# stream goes on, and the exit status says that a line failed
{ printf '我爱你。\nbad\0nul\n'; for i in $(seq 1 20); do printf '他喜欢猫。\n'; done; } |
    "$ATTN" translate --model "$T/m" --beam 1 >"$T/out" 2>"$T/err"
check "stream with a NUL line: exit 1" [ $? -eq 1 ]
check "stream with a NUL line: 22 lines out, the bad one empty" [ "$(wc -l <"$T/out")" -eq 22 -a -z "$(sed -n 2p "$T/out")" -a -n "$(sed -n 22p "$T/out")" ]
check "stream with a NUL line: the line is named" grep -q "stdin line 2: holds a NUL byte" "$T/err"
check "stream with a NUL line: the count" grep -q "1 of 22 sentences failed" "$T/err"
"$ATTN" translate --model "$T/m" "𠀀我爱你😀" >"$T/out" 2>"$T/err"
check "unknown characters: exit 0" [ $? -eq 0 ]
check "unknown characters: noted" grep -q "2 source tokens not in the vocabulary, read as <unk>: 𠀀 😀" "$T/err"
printf 'bad \377 bytes\n' | "$ATTN" translate --model "$T/m" >"$T/out" 2>"$T/err"
check "invalid UTF-8 on stdin: exit 0" [ $? -eq 0 -a "$(wc -l <"$T/out")" -eq 1 ]
"$ATTN" translate --model "$T/m" --show-attention "我爱你。" >"$T/out" 2>"$T/err"
check "--show-attention: heatmap" grep -q "<eos>" "$T/out"
check "--show-attention: source row" grep -q "我 *爱 *你 *。" "$T/out"
"$ATTN" translate --model "$T/m" --attention-svg "$T/a.svg" "我爱你。" >/dev/null 2>"$T/err"
check "--attention-svg" grep -q "<svg" "$T/a.svg"
check "--attention-svg: Chinese labels" grep -q "爱" "$T/a.svg"
"$ATTN" translate --model "$T/m" --attention-svg "$T/b.svg" "我爱你。" "你好。" >/dev/null 2>"$T/err"
check "--attention-svg, two sentences" [ -s "$T/b-1.svg" -a -s "$T/b-2.svg" ]

# ---- eval ----------------------------------------------------------------------------------
"$ATTN" eval --model "$T/m" --data "$DATA" --buckets 3,5 --csv "$T/e.csv" --markdown "$T/e.md" >"$T/out" 2>"$T/err"
check "eval exits 0" [ $? -eq 0 ]
check "eval: BLEU line" grep -Eq "BLEU [0-9]+\.[0-9]+, exact match [0-9.]+%, 28 sentences" "$T/out"
check "eval: malformed lines reported" grep -q "4 malformed lines skipped" "$T/err"
check "eval: CSV" [ "$(grep -c '^bahdanau,' "$T/e.csv")" -eq 4 ]
# a source over 1000 tokens is skipped as too long, not reported as empty
{ head -3 "$DATA"; printf 'I love you.\t%s\n' "$(printf '我%.0s' $(seq 1 1001))"; } >"$T/long.tsv"
"$ATTN" eval --model "$T/m" --data "$T/long.tsv" >"$T/out" 2>"$T/err"
check "eval: a source over 1000 tokens is named as such" grep -q "1 pairs skipped: 0 with an empty source, 1 with a source over 1000 tokens" "$T/err"

# ---- stopped and resumed == uninterrupted ----------------------------------------------------
R="--train $T/split/train.tsv --valid $T/split/valid.tsv --epochs 3 --dropout 0.3 $TINY"
"$ATTN" train seq2seq $R --out "$T/full" >/dev/null 2>&1
"$ATTN" train seq2seq $R --out "$T/half" --max-steps 4 >"$T/out" 2>&1
check "stopped at 4" grep -q "^stopped: 4 updates" "$T/out"
"$ATTN" train seq2seq $R --out "$T/half" --resume >"$T/out" 2>&1
check "resumed: exit 0" [ $? -eq 0 ]
check "resumed == uninterrupted (weights)" cmp -s "$T/full/model.safetensors" "$T/half/model.safetensors"
check "resumed == uninterrupted (optimiser)" cmp -s "$T/full/optim.safetensors" "$T/half/optim.safetensors"

# ---- early stopping, and a stop by SIGINT ----------------------------------------------------
# With --patience 1 and no BLEU, the run stops the first epoch whose validation loss is not
# better than the best so far: long before 400 epochs on 22 training pairs.
"$ATTN" train seq2seq $R --epochs 400 --patience 1 --valid-bleu 0 --log "$T/es.csv" --out "$T/es" >"$T/out" 2>&1
check "early stop: exit 0" [ $? -eq 0 ]
check "early stop: final line" grep -q "^early-stopped: " "$T/out"
check "early stop: fewer than 400 epochs logged" [ "$(wc -l <"$T/es.csv")" -lt 400 ]
check "early stop: checkpoint" [ -s "$T/es/model.safetensors" ]
check "early stop: the best epoch's model" [ -s "$T/es/best/model.safetensors" ]
"$ATTN" translate --model "$T/es/best" "我爱你。" >"$T/out" 2>&1
check "early stop: the best model translates" [ $? -eq 0 ]
# SIGINT once the first checkpoint is written: the run saves, says how to resume, exits 0;
# --resume then goes on from there.
"$ATTN" train seq2seq $R --epochs 100000 --out "$T/int" >"$T/int.out" 2>&1 &
pid=$!
for _ in $(seq 1 200); do [ -s "$T/int/config.json" ] && break; sleep 0.05; done
kill -INT $pid
for _ in $(seq 1 200); do kill -0 $pid 2>/dev/null || break; sleep 0.05; done
kill -0 $pid 2>/dev/null && { kill -KILL $pid; bad "SIGINT: still running 10 s later"; }
wait $pid
check "SIGINT: exit 0" [ $? -eq 0 ]
check "SIGINT: stopped, resume hint" grep -q "^stopped: .*(resume with --resume)" "$T/int.out"
step=$(sed -n 's/.*"step": \([0-9]*\).*/\1/p' "$T/int/config.json")
check "SIGINT: checkpoint at the stop" [ -n "$step" ] && [ "$step" -gt 0 ]
"$ATTN" train seq2seq $R --epochs 100000 --max-steps $((step + 3)) --out "$T/int" --resume >"$T/out" 2>&1
check "SIGINT: resumed for 3 more updates" grep -q "^stopped: 3 updates" "$T/out"

# ---- errors --------------------------------------------------------------------------------
# err CODE PATTERN ARGS...: exits CODE with a stderr line matching PATTERN
err() {
    local code=$1 pat=$2
    shift 2
    "$ATTN" "$@" >"$T/out" 2>"$T/err" </dev/null
    local rc=$?
    if [ $rc -ne "$code" ]; then bad "attn $* -> exit $rc, expected $code ($(head -1 "$T/err"))"
    elif ! grep -Eq -- "$pat" "$T/err"; then bad "attn $*: stderr '$(head -1 "$T/err")' does not match /$pat/"
    else ok; fi
}
mkdir "$T/broken"
cp "$T/m/"* "$T/broken/" 2>/dev/null
head -c 100 "$T/m/model.safetensors" >"$T/broken/model.safetensors"
err 1 "model.safetensors" translate --model "$T/broken" "我爱你。"
err 1 "model.safetensors" eval --model "$T/broken" --data "$DATA"
cp "$T/m/model.safetensors" "$T/broken/"
printf 'x' | dd of="$T/broken/model.safetensors" bs=1 seek=200 conv=notrunc 2>/dev/null
err 1 "checksum|model.safetensors" translate --model "$T/broken" "我爱你。"
cp "$T/m/model.safetensors" "$T/broken/"
echo '{"format": "attn-checkpoint", "version": 1,' >"$T/broken/config.json"
err 1 "config.json" translate --model "$T/broken" "我爱你。"
# a config.json that asks for far more parameters than model.safetensors holds is refused
# before anything that size is allocated (the fuzzer found 100 GB asked of malloc)
cp -r "$T/m" "$T/huge"
sed -i 's/"hidden": 16/"hidden": 65536/' "$T/huge/config.json"
err 1 "asks for [0-9]* parameters .* but the weights file holds" translate --model "$T/huge" "我爱你。"
err 1 "nothing" translate --model "$T/nothing" "我爱你。"
printf 'no tab here\n\t\n' >"$T/empty.tsv"
err 1 "no valid pair|malformed" train seq2seq --data "$T/empty.tsv" --out "$T/x"
err 1 "empty.tsv" eval --model "$T/m" --data "$T/empty.tsv"
"$ATTN" train seq2seq --train "$T/split/train.tsv" --attention none --epochs 1 --out "$T/none" $TINY >/dev/null 2>&1
check "none model trains" [ -s "$T/none/model.safetensors" ]
err 1 "no attention" translate --model "$T/none" --attention-svg "$T/n.svg" "我爱你。"
check "none: no picture left" [ ! -e "$T/n.svg" ]
err 2 "unknown --attention" train seq2seq --data "$DATA" --attention magic --out "$T/x"
err 2 "--out" train seq2seq --data "$DATA"
err 2 "--model" translate "我爱你。"
err 2 "unknown model" train nonsense
err 2 "--buckets" eval --model "$T/m" --data "$DATA" --buckets 5,3

echo "cli_translate: $npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
