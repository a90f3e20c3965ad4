#!/usr/bin/env bash
# tests/cli_attend_mods.sh: the masks and modifiers of `attn attend` (--doc-lens, --prefix,
# --causal-align, --softcap, --alibi-slopes, --sinks, --dropout/--seed) against the PyTorch
# references of tests/data/attention_mods (tools/gen_attention_mods_refs.py, float64), and a
# clear error for each bad value; `attn bench attention --mods/--doc-lens` runs.
#
#   bash tests/cli_attend_mods.sh /path/to/attn
set -u
[ $# -ge 1 ] || { echo "usage: bash cli_attend_mods.sh /path/to/attn" >&2; exit 2; }
ATTN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
cd "$(dirname "$0")" || exit 2
D=data/attention_mods
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
close() {
    if "$ATTN" npy-diff "$1" "$2" --rtol 2e-4 --atol 2e-5 --quiet >"$T/log" 2>&1; then pass; else fail "$1 vs $2"; fi
}
# mods CASE FLAGS...: output and gradients of the case against its reference.
mods() {
    local c=$1
    shift
    rm -f "$T"/*.npy
    if "$ATTN" attend "$D/$c/q.npy" "$D/$c/k.npy" "$D/$c/v.npy" -o "$T/o.npy" --dout "$D/$c/do.npy" \
        --dq "$T/dq.npy" --dk "$T/dk.npy" --dv "$T/dv.npy" "$@" >"$T/log" 2>&1; then
        pass
        for x in o dq dk dv; do close "$T/$x.npy" "$D/$c/${x}_ref.npy"; done
    else
        fail "$c: attn attend $* exited $?"
    fi
}
# bad MESSAGE FLAGS...: attn attend must fail (non-zero) with MESSAGE on stderr.
bad() {
    local msg=$1
    shift
    if "$ATTN" attend "$D/prefix/q.npy" "$D/prefix/k.npy" "$D/prefix/v.npy" -o "$T/o.npy" "$@" >"$T/log" 2>&1; then
        fail "attn attend $* succeeded"
    elif grep -q -- "$msg" "$T/log"; then
        pass
    else
        fail "attn attend $*: no '$msg' in the message"
    fi
}

# npy1 FILE DESCR N BYTES: a 1-D .npy of N elements of DESCR (<i8, <f4) holding BYTES (printf).
npy1() {
    local h="{'descr': '$2', 'fortran_order': False, 'shape': ($3,), }"
    while [ $(((10 + ${#h} + 1) % 64)) -ne 0 ]; do h="$h "; done
    { printf '\x93NUMPY\x01\x00'; printf "\\x$(printf %02x $((${#h} + 1)))\\x00"; printf '%s\n' "$h"; printf "$4"; } >"$1"
}
mkdir -p "$T/in"
npy1 "$T/in/lens.npy" '<i8' 2 '\x05\0\0\0\0\0\0\0\x07\0\0\0\0\0\0\0'
npy1 "$T/in/sinks3.npy" '<f4' 3 '\0\0\0\0\0\0\0\0\0\0\0\0'

mods docs_causal --causal --doc-lens "$D/docs_causal/doc_lens.npy"
mods docs_bidir_gqa --doc-lens "$D/docs_bidir_gqa/doc_lens.npy"
mods prefix --causal --prefix 11
mods bottom_right --causal --causal-align bottom-right
mods softcap --softcap 2
mods alibi --causal --alibi-slopes "$D/alibi/slopes.npy"
mods sinks --causal --sinks "$D/sinks/sinks.npy"
mods dropout --dropout 0.3 --seed 1234

bad "must be > 0" --softcap 0
bad "must be > 0" --softcap -2
bad "in \[0, 1)" --dropout 1
bad "top-left or bottom-right" --causal-align diagonal
bad "needs --causal" --prefix 3
bad "longer than" --causal --prefix 1000
bad "sum to 12, not N = 53" --doc-lens "$T/in/lens.npy"
bad "int32 or int64" --doc-lens "$D/alibi/slopes.npy"
bad "one per query head" --sinks "$T/in/sinks3.npy"
bad "not both" --alibi --alibi-slopes "$D/alibi/slopes.npy"
bad "need a dot-product score" --score additive --params data/cli/additive_params.safetensors --softcap 2
bad "--ring does not support the masks and modifiers" --ring --softcap 2
bad "--ring does not support the masks and modifiers" --ring --doc-lens "$D/docs_causal/doc_lens.npy"
for f in --softcap --doc-lens --prefix --causal-align --sinks --dropout --seed --alibi-slopes; do
    if "$ATTN" attend --help | grep -q -- "$f"; then pass; else : >"$T/log"; fail "$f is not in --help"; fi
done

# attn bench attention --mods / --doc-lens: runs (timings are not checked) and refuses bad lists.
if "$ATTN" bench attention --n 64 --heads 2 --d 8 --repeat 1 --mods softcap,alibi,t5,sinks,dropout --doc-lens 16 \
    >"$T/log" 2>&1 && grep -q "4 documents" "$T/log" && grep -q "score_mod .*x built-in" "$T/log" &&
    grep -q "score_mod_tile rational" "$T/log"; then pass; else fail "bench --mods --doc-lens"; fi
for args in "--mods foo:unknown modifier" "--doc-lens 0:positive lengths" "--doc-lens 30,30:summing to n"; do
    if "$ATTN" bench attention --n 64 --heads 1 --d 8 --repeat 1 ${args%%:*} >"$T/log" 2>&1; then
        fail "bench ${args%%:*} succeeded"
    elif grep -q "${args#*:}" "$T/log"; then pass; else fail "bench ${args%%:*}: no '${args#*:}'"; fi
done

echo "$npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
