#!/usr/bin/env bash
# tests/cli_transformer.sh: `attn train transformer`, and `attn translate` / `attn eval` with
# either model family (the checkpoint says which).
#
#   bash tests/cli_transformer.sh /path/to/attn
#
# A tiny Transformer learns to reverse letter sequences (tests/data/transformer/reverse.tsv,
# written by tools/gen_transformer_refs.py) for a few dozen steps; then its checkpoint is
# translated with, evaluated, resumed and drawn as the HTML explorer page; a tiny seq2seq
# model goes through the same translate and eval commands. Bad options give exit code 2,
# missing files 1. Prints "N passed, N failed" last and exits non-zero on any failure.
set -u
[ $# -ge 1 ] || { echo "usage: bash cli_transformer.sh /path/to/attn" >&2; exit 2; }
ATTN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
cd "$(dirname "$0")" || exit 2
D=data/transformer
T=$(mktemp -d) || exit 2
trap 'rm -rf "$T"' EXIT
npass=0
nfail=0

pass() { npass=$((npass + 1)); }
fail() {
    nfail=$((nfail + 1))
    echo "FAIL: $*"
    [ -s "$T/log" ] && sed 's/^/    /' "$T/log" | tail -20
}
run() { # name, command...: must exit 0
    local name=$1
    shift
    if "$ATTN" "$@" >"$T/log" 2>&1; then pass; else fail "$name: attn $* exited $?"; fi
}
expect_code() { # name, code, command...
    local name=$1 code=$2
    shift 2
    "$ATTN" "$@" >"$T/log" 2>&1
    local rc=$?
    if [ "$rc" = "$code" ]; then pass; else fail "$name: attn $* exited $rc, expected $code"; fi
}
check() { # name, condition (a command)
    local name=$1
    shift
    if "$@"; then pass; else fail "$name"; fi
}

SMALL=(--d-model 32 --heads 2 --ff 64 --layers 1 --warmup 20 --lr 3e-3 --batch 32 --threads 2)

# ---- training ---------------------------------------------------------------------------
run "train" train transformer --train $D/reverse.tsv --valid $D/reverse.tsv --direction plain --out "$T/ck" \
    "${SMALL[@]}" --max-steps 40 --valid-bleu 20 --log "$T/train.csv" --quiet
check "checkpoint files" test -s "$T/ck/config.json" -a -s "$T/ck/model.safetensors" -a -s "$T/ck/src_vocab.txt"
check "config names the kind" grep -q '"kind": "transformer"' "$T/ck/config.json"
check "config records the command" grep -q 'attn train transformer' "$T/ck/config.json"
check "log header" grep -q '^epoch,step,train_s,wall_s,train_loss,valid_loss,valid_bleu,tokens_per_s$' "$T/train.csv"
check "log line" test "$(wc -l <"$T/train.csv")" -ge 2
grep -q "tokens/s" "$T/log" && pass || fail "final line with tokens/s"

# the loss goes down: the last logged epoch's training loss is below the first's
first=$(sed -n 2p "$T/train.csv" | cut -d, -f5)
run "resume" train transformer --train $D/reverse.tsv --valid $D/reverse.tsv --direction plain --out "$T/ck" \
    "${SMALL[@]}" --max-steps 120 --valid-bleu 0 --log "$T/train.csv" --quiet --resume
last=$(tail -n 1 "$T/train.csv" | cut -d, -f5)
check "loss decreases ($first -> $last)" awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a) }'
check "resumed run reaches step 120" grep -q '^[0-9]*,120,' "$T/train.csv"

# every position encoding, pre-LN, grouped heads, GELU, shared tables train
for pos in none learned rope alibi; do
    run "train --pos $pos" train transformer --train $D/reverse.tsv --direction plain --out "$T/ck_$pos" "${SMALL[@]}" \
        --max-steps 5 --valid-bleu 0 --quiet --pos $pos --norm pre --heads 4 --kv-heads 2 --activation gelu --share all
done

# attention dropout (in the fused kernels) and learned ALiBi slopes: each trains (the loss
# falls), is recorded in config.json, and its checkpoint decodes greedily and by beam search
for opt in "--attn-dropout 0.1" "--pos alibi --alibi-learn"; do
    tag=${opt// /_}
    run "train $opt" train transformer --train $D/reverse.tsv --valid $D/reverse.tsv --direction plain --out "$T/ck$tag" \
        "${SMALL[@]}" --max-steps 60 --valid-bleu 0 --log "$T/train$tag.csv" --quiet $opt
    a=$(sed -n 2p "$T/train$tag.csv" | cut -d, -f5) b=$(tail -n 1 "$T/train$tag.csv" | cut -d, -f5)
    check "$opt: loss decreases ($a -> $b)" awk -v a="$a" -v b="$b" 'BEGIN { exit !(b < a) }'
    run "eval $opt, beam 3" eval --model "$T/ck$tag" --data $D/reverse.tsv --limit 20 --beam 3
    check "$opt: eval line" grep -q "BLEU .*exact match" "$T/log"
done
check "config: attn_dropout" grep -q '"attn_dropout": 0.100000001' "$T/ck--attn-dropout_0.1/config.json"
check "config: alibi_learn" grep -q '"alibi_learn": true' "$T/ck--pos_alibi_--alibi-learn/config.json"
check "config: defaults" grep -q '"attn_dropout": 0, "alibi_learn": false' "$T/ck/config.json"
expect_code "--attn-dropout 1.5" 2 train transformer --train $D/reverse.tsv --out "$T/x" --attn-dropout 1.5
check "--attn-dropout 1.5: message" grep -q "attn-dropout must be in \[0, 1)" "$T/log"
expect_code "--attn-dropout x" 2 train transformer --train $D/reverse.tsv --out "$T/x" --attn-dropout x
expect_code "--alibi-learn without alibi" 2 train transformer --train $D/reverse.tsv --out "$T/x" --alibi-learn --pos rope
check "--alibi-learn: message" grep -q "alibi-learn needs --pos alibi" "$T/log"

run "train --schedule noam" train transformer --train $D/reverse.tsv --direction plain --out "$T/ck_noam" "${SMALL[@]}" \
    --max-steps 5 --valid-bleu 0 --quiet --schedule noam --noam-factor 2
expect_code "bad --noam-factor" 2 train transformer --train $D/reverse.tsv --out "$T/x" --schedule noam --noam-factor 0

# ---- translate and eval -------------------------------------------------------------------
run "translate" translate --model "$T/ck" "a b c" "h g"
check "two translations" test "$(wc -l <"$T/log")" -eq 2
printf 'a b c\n\nd e f\n' | "$ATTN" translate --model "$T/ck" --beam 3 >"$T/out" 2>"$T/log"
check "stdin: one line per line" test "$(wc -l <"$T/out")" -eq 3
run "translate --show-attention" translate --model "$T/ck" --show-attention --beam 1 "a b c d"
check "heatmap printed" grep -q "scale:" "$T/log"
run "eval" eval --model "$T/ck" --data $D/reverse.tsv --limit 30 --csv "$T/eval.csv" --buckets 3,4,5
check "eval line" grep -q "BLEU .*exact match" "$T/log"
check "eval label" grep -q "^transformer,all," "$T/eval.csv"
run "translate --attention-html" translate --model "$T/ck" --attention-html "$T/page.html" "a b c" "d e"
check "page holds the data" grep -q 'id="attn-data"' "$T/page.html"
check "page holds every kind" grep -q '"encoder self-attention"' "$T/page.html"
check "page holds both sentences" grep -q 'd e →' "$T/page.html"

# ---- the same commands with a seq2seq checkpoint --------------------------------------------
run "train seq2seq" train seq2seq --train $D/zh_en_tiny.tsv --valid $D/zh_en_tiny.tsv --out "$T/s2s" --emb 16 --hidden 16 \
    --max-steps 5 --valid-bleu 0 --min-count 1 --quiet
run "translate seq2seq" translate --model "$T/s2s" --attention-html "$T/s2s.html" "我爱你。"
check "seq2seq page" grep -q '"cross-attention"' "$T/s2s.html"
run "eval seq2seq" eval --model "$T/s2s" --data $D/zh_en_tiny.tsv --quiet
check "seq2seq eval line" grep -q "BLEU" "$T/log"

# ---- errors ----------------------------------------------------------------------------------
expect_code "no --out" 2 train transformer --train $D/reverse.tsv
expect_code "bad --pos" 2 train transformer --train $D/reverse.tsv --out "$T/x" --pos sideways
expect_code "heads do not divide" 2 train transformer --train $D/reverse.tsv --out "$T/x" --d-model 30 --heads 4
expect_code "unknown option" 2 train transformer --train $D/reverse.tsv --out "$T/x" --frobnicate
expect_code "missing data" 1 train transformer --train "$T/missing.tsv" --out "$T/x"
expect_code "missing model" 1 translate --model "$T/missing" "a"
expect_code "unknown model" 2 train nonsense

echo "$npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
