#!/usr/bin/env bash
# tests/cli_bench.sh: `attn bench` runs, prints what it promises and refuses bad options. Tiny
# shapes and one run each: this checks the tool, never the timings.
#
#   bash tests/cli_bench.sh /path/to/attn
#
# Prints "N passed, N failed" last and exits non-zero on any failure.
set -u
[ $# -ge 1 ] || { echo "usage: bash cli_bench.sh /path/to/attn" >&2; exit 2; }
ATTN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
T=$(mktemp -d) || exit 2
trap 'rm -rf "$T"' EXIT
npass=0
nfail=0
pass() { npass=$((npass + 1)); }
fail() {
    nfail=$((nfail + 1))
    echo "FAIL: $*"
    [ -s "$T/out" ] && sed 's/^/    /' "$T/out"
}

# expect CODE NAME ARGS...: attn bench ARGS exits with CODE.
expect() {
    local code=$1 name=$2
    shift 2
    "$ATTN" bench "$@" >"$T/out" 2>&1
    local rc=$?
    if [ "$rc" -eq "$code" ]; then pass; else fail "$name: attn bench $* exited $rc, expected $code"; fi
}

expect 0 help --help
expect 0 table attention --n 16,40 --d 8 --heads 2 --repeat 1
grep -q "GFLOP/s" "$T/out" && pass || fail "table: no GFLOP/s column"
expect 0 json attention --n 33 --nq 1 --d 16 --heads 4 --kv-heads 2 --causal --backward --threads 2 --repeat 2 --json
for key in '"n": 33' '"nq": 1' '"d": 16' '"heads": 4' '"kv_heads": 2' '"causal": true' '"backward": true' \
    '"threads": 2' '"ms": ' '"gflops": ' '"ref_ms": ' '"speedup": ' '"scratch_mb": '; do
    grep -qF "$key" "$T/out" && pass || fail "json: missing $key"
done
[ "$(wc -l <"$T/out")" -eq 1 ] && pass || fail "json: one line per shape expected"
expect 0 noref attention --n 24 --d 8 --heads 1 --repeat 1 --ref-heads 0 --json
grep -q ref_ms "$T/out" && fail "noref: --ref-heads 0 still timed the reference" || pass
expect 0 mha mha --n 12 --d 8 --heads 2 --repeat 1 --backward
expect 2 unknown-bench nothing
expect 2 missing-bench --n 16
expect 2 bad-list attention --n 16,x
expect 2 bad-heads attention --heads 3 --kv-heads 2
expect 2 bad-option attention --frobnicate
expect 2 mha-kv mha --kv-heads 1

echo "$npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
