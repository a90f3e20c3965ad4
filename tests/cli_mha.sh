#!/usr/bin/env bash
# tests/cli_mha.sh: `attn mha` against torch.nn.MultiheadAttention.
#
#   bash tests/cli_mha.sh /path/to/attn
#
# The references (tests/data/cli/mha_*, written by tools/gen_cli_fixtures.py) come from
# nn.MultiheadAttention(batch_first=True) in float64 on the float32 inputs and weights; the
# weights files are its state_dict under PyTorch's names. Outputs are compared with
# `attn npy-diff` at rtol 1e-4, atol 1e-5. Prints "N passed, N failed" last and exits
# non-zero on any failure.
set -u
[ $# -ge 1 ] || { echo "usage: bash cli_mha.sh /path/to/attn" >&2; exit 2; }
ATTN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
cd "$(dirname "$0")" || exit 2
D=data/cli
T=$(mktemp -d) || exit 2
trap 'rm -rf "$T"' EXIT
npass=0
nfail=0

pass() { npass=$((npass + 1)); }
fail() {
    nfail=$((nfail + 1))
    echo "FAIL: $*"
    [ -s "$T/log" ] && sed 's/^/    /' "$T/log"
}
run() {
    local name=$1
    shift
    if "$ATTN" "$@" >"$T/log" 2>&1; then pass; else fail "$name: attn $* exited $?"; fi
}
close() {
    if "$ATTN" npy-diff "$1" "$2" --rtol 1e-4 --atol 1e-5 --quiet >"$T/log" 2>&1; then pass; else fail "$1 vs $2"; fi
}
same() {
    if cmp -s "$1" "$2"; then pass; else : >"$T/log"; fail "$1 and $2 differ"; fi
}

# Self-attention, causal, with a key padding mask; weights averaged over heads, then per head.
S=(mha --params "$D/mha_self_params.safetensors" --heads 2 "$D/mha_self_x.npy" --causal
    --key-padding-mask "$D/mha_self_kpm.npy")
run self "${S[@]}" -o "$T/out.npy" --weights-out "$T/w.npy"
close "$T/out.npy" "$D/mha_self_out.npy"
close "$T/w.npy" "$D/mha_self_w.npy"
run self-per-head "${S[@]}" -o "$T/out2.npy" --weights-out "$T/wh.npy" --per-head
close "$T/wh.npy" "$D/mha_self_wh.npy"
same "$T/out.npy" "$T/out2.npy"

# Any thread count gives the same bits.
run threads1 "${S[@]}" -o "$T/o1.npy" --threads 1
run threads3 "${S[@]}" -o "$T/o3.npy" --threads 3
same "$T/o1.npy" "$T/o3.npy"

# --causal equals the bool attn_mask triu(ones, 1) (True = NOT allowed), as PyTorch 1.13 takes it.
run bool-mask mha --params "$D/mha_self_params.safetensors" --heads 2 "$D/mha_self_x.npy" \
    --attn-mask "$D/mha_self_causal_mask.npy" --key-padding-mask "$D/mha_self_kpm.npy" -o "$T/out3.npy"
close "$T/out3.npy" "$D/mha_self_out.npy"

# The same layer inside a larger state_dict, found with --prefix.
run prefix mha --params "$D/mha_self_prefixed.safetensors" --prefix encoder.layers.0.self_attn. --heads 2 \
    "$D/mha_self_x.npy" --causal --key-padding-mask "$D/mha_self_kpm.npy" -o "$T/out4.npy"
close "$T/out4.npy" "$D/mha_self_out.npy"

# Cross-attention, unbatched 2-D inputs, kdim != vdim != E (q/k/v_proj_weight), bias=False,
# float attn_mask.
C=(mha --params "$D/mha_cross_params.safetensors" --heads 4 "$D/mha_cross_x.npy" "$D/mha_cross_key.npy"
    "$D/mha_cross_value.npy" --attn-mask "$D/mha_cross_attn_mask.npy")
run cross "${C[@]}" -o "$T/cout.npy" --weights-out "$T/cw.npy"
close "$T/cout.npy" "$D/mha_cross_out.npy"
close "$T/cw.npy" "$D/mha_cross_w.npy"
run cross-per-head "${C[@]}" --weights-out "$T/cwh.npy" --per-head
close "$T/cwh.npy" "$D/mha_cross_wh.npy"

# An infinite weight (the first float of the weights made +inf): the output holds NaN or inf,
# as PyTorch's would, and a warning says so; the bias alone is not passed off as the output.
cp "$D/mha_self_params.safetensors" "$T/inf.safetensors"
hl=$(od -An -tu8 -N8 "$T/inf.safetensors" | tr -d ' ')
printf '\000\000\200\177' | dd of="$T/inf.safetensors" bs=1 seek=$((8 + hl)) conv=notrunc 2>/dev/null
"$ATTN" mha --params "$T/inf.safetensors" --heads 2 "$D/mha_self_x.npy" -o "$T/inf.npy" 2>"$T/log"
if [ $? -eq 0 ] && grep -q "warning: .*inf.npy: [0-9]* of [0-9]* values are NaN or infinite" "$T/log"; then pass; else fail "an infinite weight: no warning"; fi

: >"$T/log"
echo "$npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
