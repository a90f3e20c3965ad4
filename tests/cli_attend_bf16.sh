#!/usr/bin/env bash
# tests/cli_attend_bf16.sh: `attn attend --compute bf16` against PyTorch in float64 computed from
# the SAME bf16-rounded inputs (torch's own rounding, x.bfloat16().double()), forward and
# backward, causal with grouped heads; and its refusals. The tolerance, atol 0.02, is twice the
# bound of P's rounding to bf16 (2^-9 max|v|, |v| < 5 here) with room for dS's. Skipped (77)
# without /usr/bin/python3 and torch.
#
#   bash tests/cli_attend_bf16.sh /path/to/attn
set -u
[ $# -ge 1 ] || { echo "usage: bash cli_attend_bf16.sh /path/to/attn" >&2; exit 2; }
ATTN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
PY=/usr/bin/python3
$PY -c 'import torch, numpy' 2>/dev/null || { echo "no python3 with torch and numpy: skipped"; exit 77; }
T=$(mktemp -d) || exit 2
trap 'rm -rf "$T"' EXIT
npass=0
nfail=0
pass() { npass=$((npass + 1)); }
fail() { nfail=$((nfail + 1)); echo "FAIL: $*"; [ -s "$T/log" ] && sed 's/^/    /' "$T/log"; }

$PY - "$T" <<'PY' || { echo "FAIL: the PyTorch reference"; exit 1; }
import sys, numpy as np, torch
t = sys.argv[1]
g = torch.Generator().manual_seed(7)
B, H, Hkv, N, d = 2, 4, 2, 37, 24
x = {n: torch.randn(s, generator=g) for n, s in
     [("q", (B, H, N, d)), ("k", (B, Hkv, N, d)), ("v", (B, Hkv, N, d)), ("do", (B, H, N, d))]}
for n, a in x.items():
    np.save(f"{t}/{n}.npy", a.numpy())
r = {n: a.bfloat16().double().requires_grad_(n != "do") for n, a in x.items()}
k = r["k"].repeat_interleave(H // Hkv, 1)
v = r["v"].repeat_interleave(H // Hkv, 1)
s = r["q"] @ k.transpose(-1, -2) / d ** 0.5
s = s.masked_fill(torch.ones(N, N, dtype=torch.bool).triu(1), float("-inf"))
o = torch.softmax(s, -1) @ v
o.backward(r["do"])
np.save(f"{t}/o_ref.npy", o.detach().float().numpy())
for n in "qkv":
    np.save(f"{t}/d{n}_ref.npy", r[n].grad.float().numpy())
PY

if "$ATTN" attend "$T/q.npy" "$T/k.npy" "$T/v.npy" -o "$T/o.npy" --causal --compute bf16 --dout "$T/do.npy" \
    --dq "$T/dq.npy" --dk "$T/dk.npy" --dv "$T/dv.npy" >"$T/log" 2>&1; then
    pass
    for n in o dq dk dv; do
        if "$ATTN" npy-diff "$T/$n.npy" "$T/${n}_ref.npy" --rtol 0 --atol 0.02 --quiet >"$T/log" 2>&1; then pass; else fail "$n"; fi
    done
    # and it is not the fp32 result: bf16 differs from it by more than fp32's rounding
    "$ATTN" attend "$T/q.npy" "$T/k.npy" "$T/v.npy" -o "$T/o32.npy" --causal >/dev/null 2>&1
    if ! "$ATTN" npy-diff "$T/o.npy" "$T/o32.npy" --rtol 1e-5 --atol 1e-6 --quiet >/dev/null 2>&1; then pass; else : >"$T/log"; fail "bf16 equals fp32"; fi
else
    fail "attend --compute bf16 exited non-zero"
fi
# refusals: a clear message, a non-zero exit, no output file
for args in "--compute bf17" "--compute bf16 --alibi" "--compute bf16 --score cosine" "--compute bf16 --weights-out $T/p.npy"; do
    # shellcheck disable=SC2086
    if "$ATTN" attend "$T/q.npy" "$T/k.npy" "$T/v.npy" -o "$T/bad.npy" $args >"$T/log" 2>&1 || [ -e "$T/bad.npy" ]; then
        fail "attend $args was accepted"
    elif grep -q "bf16\|bf17" "$T/log"; then pass; else fail "attend $args: no clear message"; fi
done
echo "cli_attend_bf16: $npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
