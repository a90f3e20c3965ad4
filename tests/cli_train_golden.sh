#!/usr/bin/env bash
# tests/cli_train_golden.sh: the trainer redesign changed no bit of what training computes.
#
#   bash tests/cli_train_golden.sh /path/to/attn
#
# Short runs of `attn train seq2seq` (three model variants) and `attn train transformer` (two)
# on the tests' small data, on the portable path (ATTN_ISA=ref, one thread), with dropout,
# warm-up, clipping, a checkpoint mid-run and a resume. The SHA-256 of each run's
# model.safetensors must equal the value recorded from commit 7aaaedb (before the training
# loop moved from the CLI into src/train/trainer.c). A change that alters the arithmetic of
# training (an op, the order of a sum, the data order, the RNG stream) fails here; re-record
# only for a deliberate change, and say so in the commit.
#
# Prints "N passed, N failed" last; exits non-zero on any failure.
set -u
[ $# -ge 1 ] || { echo "usage: bash cli_train_golden.sh /path/to/attn" >&2; exit 2; }
ATTN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
cd "$(dirname "$0")" || exit 2
T=$(mktemp -d) || exit 2
trap 'rm -rf "$T"' EXIT
# Recorded from commit 7aaaedb, per instruction-set path (ATTN_ISA): GOLDEN_ISA picks one
# (default ref; the fast paths' values hold only on a CPU that runs them).
GOLDEN_ISA=${GOLDEN_ISA:-ref}
case $GOLDEN_ISA in
  ref)
    H_s2s_bahdanau_gru=5cb8df13b9bc1e0508b49f7be5c66d65dff266afadbf1a702c599eef31e35c85
    H_s2s_none_lstm_bi=1c422f20e2cf7a717f29cc01648d90d44983eabb9d327011ba076b38589705c0
    H_s2s_general_resume=dfe90400848e4df980bc316b58c97da3d065393e537018c46bdb77a88d74684e
    H_tr_sin_post=f98e02727c79ca22878ee30e1cfea28cccd619512479bfa4f4e3c342d6c57d6d
    H_tr_rope_pre_resume=aeec4912d092353924e2e3b60dd13c926b687733e22967d6253cc6e953f08474
    ;;
  avx2)
    H_s2s_bahdanau_gru=2ea205852f795e69a6e5b1d33bfd2f49739e09f99763e9a7f964de88f535119a
    H_s2s_none_lstm_bi=bd105053492df62db8fffd9cdc407a9219fdf78c209e8315e1a1c20b0f3b670d
    H_s2s_general_resume=850decdb43b6d5f934c1ccd94dc7bd4f8feeba2510486f920953394aea59cce5
    H_tr_sin_post=64fe710599ad624a38371c5d3631ff6d571a98a2cbe223b4017e3f8be5b6358e
    H_tr_rope_pre_resume=16cea288b878d4755be931a034ee0ddfe6045aa1d8ff7c3e459badc0534ee946
    ;;
  avx512)
    H_s2s_bahdanau_gru=2ea205852f795e69a6e5b1d33bfd2f49739e09f99763e9a7f964de88f535119a
    H_s2s_none_lstm_bi=bd105053492df62db8fffd9cdc407a9219fdf78c209e8315e1a1c20b0f3b670d
    H_s2s_general_resume=bf6bdf6d55772dbbdd3244b3a5903e502cf8874b38dc77d31f43b08e6f9aacc5
    H_tr_sin_post=79f412cf69654109a1e544bf706bbe77dc219abb60d85e3fd96eb10724931244
    H_tr_rope_pre_resume=ff07305e654d4eeb4ba4c68ff6d6d22857dfe230cf5aa6a40465c58dabc7bbb5
    ;;
  *) echo "unknown GOLDEN_ISA $GOLDEN_ISA (ref, avx2, avx512)" >&2; exit 2 ;;
esac
export ATTN_ISA=$GOLDEN_ISA
npass=0
nfail=0

S2S="--data data/seq2seq/pairs.tsv --min-count 1 --valid-bleu 0 --log-every 0 --warmup 5 --lr 0.01 --threads 1 --quiet --batch 8 --emb 16 --hidden 16"
TR="--train data/transformer/reverse.tsv --valid data/transformer/reverse.tsv --direction plain --d-model 32 --heads 2 --ff 64 --layers 1 --warmup 20 --lr 3e-3 --batch 32 --threads 1 --valid-bleu 0 --log-every 0 --quiet"

# name, expected sha256, attn arguments...
golden() {
    local name=$1 want=$2
    shift 2
    if ! "$ATTN" "$@" --out "$T/$name" >"$T/log" 2>&1; then
        nfail=$((nfail + 1)); echo "FAIL: $name: attn $* exited non-zero"; sed 's/^/    /' "$T/log" | tail -5
        return
    fi
    local got
    got=$(sha256sum "$T/$name/model.safetensors" | cut -d' ' -f1)
    if [ "$got" = "$want" ]; then npass=$((npass + 1)); else
        nfail=$((nfail + 1)); echo "FAIL: $name: model.safetensors sha256 $got, recorded $want"
    fi
}
# name, expected sha256, first run's arguments, --, the resumed run's arguments
golden_resume() {
    local name=$1 want=$2
    shift 2
    local a=() b=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do a+=("$1"); shift; done
    shift
    b=("$@")
    if ! "$ATTN" "${a[@]}" --out "$T/$name" >"$T/log" 2>&1; then
        nfail=$((nfail + 1)); echo "FAIL: $name (first part) exited non-zero"; sed 's/^/    /' "$T/log" | tail -5; return
    fi
    golden "$name" "$want" "${b[@]}" --resume
}

golden s2s_bahdanau_gru "$H_s2s_bahdanau_gru" train seq2seq $S2S --split-dir "$T/split" --epochs 4 --dropout 0.2
golden s2s_none_lstm_bi "$H_s2s_none_lstm_bi" train seq2seq $S2S --split-dir "$T/split" --epochs 3 --attention none --rnn lstm --bidirectional --optim adamw --weight-decay 0.01 --schedule linear
golden_resume s2s_general_resume "$H_s2s_general_resume" train seq2seq $S2S --split-dir "$T/split" --epochs 3 --attention luong-general --max-steps 5 --save-every 2 -- \
    train seq2seq $S2S --split-dir "$T/split" --epochs 3 --attention luong-general --save-every 2
golden tr_sin_post "$H_tr_sin_post" train transformer $TR --max-steps 12
golden_resume tr_rope_pre_resume "$H_tr_rope_pre_resume" train transformer $TR --pos rope --norm pre --activation gelu --share none --max-steps 7 -- \
    train transformer $TR --pos rope --norm pre --activation gelu --share none --max-steps 14 --schedule noam

echo "$npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
