#!/usr/bin/env bash
# tests/mpi_attend.sh: `mpirun -np P attn attend ... --ring` (P = 2 and 4, both layouts, with and
# without --causal, forward and backward) against PyTorch's float64 results
# (tests/data/ring, tools/gen_ring_refs.py) and against `attn attend` in one process;
# `attn bench attention --ring` under mpirun; bad uses are errors with messages, not hangs.
# Skips (77) when mpirun is missing.
#
#   bash tests/mpi_attend.sh /path/to/attn
set -u
[ $# -ge 1 ] || { echo "usage: bash mpi_attend.sh /path/to/attn" >&2; exit 2; }
ATTN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
cd "$(dirname "$0")" || exit 2
. ./mpienv.sh
export ATTN_DIST_TIMEOUT=60
D=data/ring
T=$(mktemp -d) || exit 2
trap 'rm -rf "$T"' EXIT
npass=0
nfail=0
mpi() { local np=$1; shift; timeout 120 mpirun --oversubscribe -np "$np" "$ATTN" "$@"; }
ok() { if "$@" >"$T/log" 2>&1; then npass=$((npass + 1)); else nfail=$((nfail + 1)); echo "FAIL: $*"; tail -15 "$T/log"; fi; }
# close: the ring's file against PyTorch's (float32 against float64: 1e-5 relative, as test_attention_ref)
close() { ok "$ATTN" npy-diff "$1" "$2" --rtol 1e-5 --atol 2e-6; }

for np in 2 4; do
    for layout in contiguous zigzag; do
        for causal in "" --causal; do
            sfx=${causal:+_causal}
            out=$T/r$np$layout$sfx
            ok mpi "$np" attend $D/q.npy $D/k.npy $D/v.npy -o "$out.o.npy" --dout $D/do.npy --dq "$out.dq.npy" --dk "$out.dk.npy" \
                --dv "$out.dv.npy" --ring --ring-layout $layout $causal --threads 1
            for t in o dq dk dv; do close "$out.$t.npy" "$D/$t$sfx.npy"; done
        done
    done
done
# the same files as one process writes (the default layout of --causal: zig-zag)
ok "$ATTN" attend $D/q.npy $D/k.npy $D/v.npy -o "$T/one.npy" --causal
ok mpi 4 attend $D/q.npy $D/k.npy $D/v.npy -o "$T/ring.npy" --causal --ring
ok "$ATTN" npy-diff "$T/ring.npy" "$T/one.npy" --rtol 1e-6 --atol 1e-7
# without mpirun, --ring is one rank: the same result
ok "$ATTN" attend $D/q.npy $D/k.npy $D/v.npy -o "$T/ring1.npy" --causal --ring
ok "$ATTN" npy-diff "$T/ring1.npy" "$T/one.npy" --rtol 1e-6 --atol 1e-7

# bad uses: a usage error (2) on every rank; a length that does not split (1), said by rank 0
expect() { # code, message, command...
    local code=$1 msg=$2
    shift 2
    "$@" >"$T/log" 2>&1
    local rc=$?
    if [ "$rc" = "$code" ] && grep -q -- "$msg" "$T/log"; then npass=$((npass + 1)); else
        nfail=$((nfail + 1)); echo "FAIL: $* exited $rc (expected $code with '$msg')"; tail -5 "$T/log"; fi
}
expect 2 "does not support --weights-out" mpi 2 attend $D/q.npy $D/k.npy $D/v.npy -o "$T/x.npy" --weights-out "$T/p.npy" --ring
expect 2 "unknown --ring-layout" mpi 2 attend $D/q.npy $D/k.npy $D/v.npy -o "$T/x.npy" --ring --ring-layout spiral
expect 1 "must be a multiple of 10" mpi 5 attend $D/q.npy $D/k.npy $D/v.npy -o "$T/x.npy" --ring --causal
expect 1 "cannot" mpi 2 attend $D/q.npy $D/missing.npy $D/v.npy -o "$T/x.npy" --ring
[ ! -e "$T/x.npy" ] && npass=$((npass + 1)) || { nfail=$((nfail + 1)); echo "FAIL: a refused run wrote its output"; }

# the benchmark under mpirun: one line per shape, from rank 0
ok mpi 2 bench attention --ring --n 256 --heads 2 --d 16 --repeat 1 --backward --threads 1
grep -q "ring" "$T/log" && npass=$((npass + 1)) || { nfail=$((nfail + 1)); echo "FAIL: bench --ring printed no ring line"; cat "$T/log"; }

echo "$npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
