#!/usr/bin/env bash
# tests/cli_attend.sh: `attn attend` against PyTorch references, `attn npy-diff`, `attn explain`.
#
#   bash tests/cli_attend.sh /path/to/attn
#
# The references (tests/data/cli/, written by tools/gen_cli_fixtures.py) are computed in float64
# by plain torch ops from the float32 inputs; outputs are compared with `attn npy-diff` at
# rtol 1e-4, atol 1e-5. Prints "N passed, N failed" last and exits non-zero on any failure.
set -u
[ $# -ge 1 ] || { echo "usage: bash cli_attend.sh /path/to/attn" >&2; exit 2; }
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
# run NAME ARGS...: attn ARGS must exit 0.
run() {
    local name=$1
    shift
    if "$ATTN" "$@" >"$T/log" 2>&1; then pass; else fail "$name: attn $* exited $?"; fi
}
# close GOT WANT: the arrays agree within rtol 1e-4, atol 1e-5 (same shape).
close() {
    if "$ATTN" npy-diff "$1" "$2" --rtol 1e-4 --atol 1e-5 --quiet >"$T/log" 2>&1; then pass; else fail "$1 vs $2"; fi
}
# same A B: bitwise equal.
same() {
    if cmp -s "$1" "$2"; then pass; else : >"$T/log"; fail "$1 and $2 differ"; fi
}
absent() {
    if [ ! -e "$1" ]; then pass; else : >"$T/log"; fail "$1 should not have been written"; fi
}

# attend CASE ARGS...: runs the case with every output, then compares each with its reference.
attend() {
    local c=$1
    shift
    rm -f "$T"/*.npy
    local grads=()
    [ -e "$D/${c}_do.npy" ] && grads=(--dout "$D/${c}_do.npy" --dq "$T/dq.npy" --dk "$T/dk.npy" --dv "$T/dv.npy")
    run "$c" attend "$D/${c}_q.npy" "$D/${c}_k.npy" "$D/${c}_v.npy" -o "$T/o.npy" --weights-out "$T/p.npy" \
        "${grads[@]}" "$@"
    for x in o p dq dk dv; do
        [ -e "$D/${c}_$x.npy" ] && close "$T/$x.npy" "$D/${c}_$x.npy"
    done
}

# ---- attend against PyTorch --------------------------------------------------------------------
attend gqa --causal                                                   # scaled, grouped heads, 4-D
attend dot2d --score dot --mask "$D/dot2d_mask.npy"                    # float64 2-D input, bool mask
attend cos3d --score cosine --scale 5 --mask "$D/cos3d_mask.npy" --key-lengths "$D/cos3d_lens.npy"
attend general --score general --params "$D/general_params.safetensors" --window 2
attend additive --score additive --params "$D/additive_params.safetensors" --key-lengths "$D/additive_lens.npy"

# The same numbers on the portable reference path and for any thread count (bitwise).
rm -f "$T"/*.npy
G=(attend "$D/gqa_q.npy" "$D/gqa_k.npy" "$D/gqa_v.npy" --causal --dout "$D/gqa_do.npy")
run threads1 "${G[@]}" -o "$T/o1.npy" --dq "$T/dq1.npy" --threads 1
run threads3 "${G[@]}" -o "$T/o3.npy" --dq "$T/dq3.npy" --threads 3
same "$T/o1.npy" "$T/o3.npy"
same "$T/dq1.npy" "$T/dq3.npy"
if ATTN_ISA=ref "$ATTN" "${G[@]}" -o "$T/oref.npy" --dq "$T/dqref.npy" >"$T/log" 2>&1; then pass; else fail "ATTN_ISA=ref"; fi
close "$T/oref.npy" "$D/gqa_o.npy"
close "$T/dqref.npy" "$D/gqa_dq.npy"

# Only some outputs: the weights alone, one gradient alone.
rm -f "$T"/*.npy
run weights-only attend "$D/gqa_q.npy" "$D/gqa_k.npy" "$D/gqa_v.npy" --causal --weights-out "$T/p.npy"
close "$T/p.npy" "$D/gqa_p.npy"
absent "$T/o.npy"
run dk-only attend "$D/gqa_q.npy" "$D/gqa_k.npy" "$D/gqa_v.npy" --causal --dout "$D/gqa_do.npy" --dk "$T/dk.npy"
close "$T/dk.npy" "$D/gqa_dk.npy"
absent "$T/dq.npy"
absent "$T/dv.npy"
# Options may come before the inputs, and as --name=value.
run option-order attend --score=cosine --scale=5 --mask="$D/cos3d_mask.npy" -o "$T/o.npy" \
    --key-lengths "$D/cos3d_lens.npy" "$D/cos3d_q.npy" "$D/cos3d_k.npy" "$D/cos3d_v.npy"
close "$T/o.npy" "$D/cos3d_o.npy"

# ---- npy-diff -------------------------------------------------------------------------------
run diff-same npy-diff "$D/gqa_o.npy" "$D/gqa_o.npy" --rtol 0 --atol 0
if "$ATTN" npy-diff "$D/gqa_o.npy" "$D/gqa_dq.npy" >"$T/log" 2>&1; then fail "npy-diff of two shapes passed"; else
    [ $? -eq 1 ] && grep -q "shapes differ" "$T/log" && pass || fail "npy-diff shapes: wrong exit or message"
fi
if "$ATTN" npy-diff "$D/cos3d_dq.npy" "$D/cos3d_q.npy" >"$T/log" 2>&1; then fail "npy-diff of different arrays passed"; else
    [ $? -eq 1 ] && grep -q "elements differ" "$T/log" && pass || fail "npy-diff values: wrong exit or message"
fi
run diff-atol npy-diff "$D/cos3d_dq.npy" "$D/cos3d_q.npy" --atol 100
run diff-f64 npy-diff "$D/dot2d_q.npy" "$D/dot2d_q.npy" --quiet

# ---- explain --------------------------------------------------------------------------------
for s in dot scaled cosine general additive; do
    for q in I love you; do
        case $q in I) w=我 ;; love) w=爱 ;; you) w=你 ;; esac
        if "$ATTN" explain --score $s --query $q >"$T/log" 2>&1 && grep -q "c is mostly $w" "$T/log" &&
            grep -q "right alignment" "$T/log"; then pass; else fail "explain --score $s --query $q"; fi
    done
done
if "$ATTN" explain >"$T/log" 2>&1 && grep -q "Step 3" "$T/log" && grep -q "█" "$T/log"; then pass; else fail "explain"; fi
if "$ATTN" explain --query 1,0,1,0 --scale 2 >"$T/log" 2>&1 && grep -q "No word wins" "$T/log"; then pass; else
    fail "explain --query 1,0,1,0"
fi

: >"$T/log"
echo "$npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
