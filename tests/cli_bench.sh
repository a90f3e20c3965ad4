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
grep -q "% peak" "$T/out" && pass || fail "table: no % peak column"
grep -qE "fp32 peak [0-9.]+ GFLOP/s" "$T/out" && pass || fail "table: no fp32 peak in the title"
expect 0 json attention --n 33 --nq 1 --d 16 --heads 4 --kv-heads 2 --causal --backward --threads 2 --repeat 2 --json
for key in '"n": 33' '"nq": 1' '"d": 16' '"heads": 4' '"kv_heads": 2' '"causal": true' '"backward": true' \
    '"threads": 2' '"ms": ' '"gflops": ' '"ref_ms": ' '"speedup": ' '"scratch_mb": ' '"peak_gflops": ' '"pct_peak": '; do
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

# attn bench peak: fp32 always runs (a positive figure); bf16 and amx run or say why not.
expect 0 peak-help peak --help
expect 0 peak peak --seconds 0.05 --repeat 3 --threads 2
grep -qE "^fp32 +[0-9]+\.[0-9] " "$T/out" && pass || fail "peak: no fp32 figure"
for k in bf16 amx; do
    grep -qE "^$k +([0-9]+\.[0-9] |- .*not run: .+)" "$T/out" && pass || fail "peak: no $k figure or reason"
done
expect 0 peak-json peak --kinds fp32 --seconds 0.05 --repeat 2 --threads 1 --json
grep -qE '"kind": "fp32", "threads": 1, .*"gflops": [0-9.]+' "$T/out" && pass || fail "peak json: fp32 fields"
[ "$(wc -l <"$T/out")" -eq 1 ] && pass || fail "peak json: one line per kind expected"
ATTN_ISA=ref "$ATTN" bench peak --kinds fp32 --seconds 0.02 --repeat 1 --json >"$T/out" 2>&1
grep -q '"isa": "ref"' "$T/out" && pass || fail "peak: ATTN_ISA=ref not followed"
expect 2 peak-kind peak --kinds fp64
expect 2 peak-seconds peak --seconds 0
expect 2 peak-extra peak fp32

# attn bench bandwidth: small arrays (the format, not the machine's figure).
expect 0 bw-help bandwidth --help
expect 0 bw bandwidth --size 8 --repeat 2 --threads 2
for k in read copy triad; do
    grep -qE "^$k +[0-9]+\.[0-9]+ " "$T/out" && pass || fail "bandwidth: no $k figure"
done
expect 0 bw-json bandwidth --kinds read --size 4 --repeat 1 --json
grep -qE '"kind": "read", .*"gbps": [0-9.]+' "$T/out" && pass || fail "bandwidth json: read fields"
expect 2 bw-kind bandwidth --kinds write
expect 2 bw-size bandwidth --size 0

# attn bench decode: a tiny cache, both regimes and the paged cache.
expect 0 decode-help decode --help
expect 0 decode decode --keys 64,100 --beam 1,3 --d 16 --heads 4 --kv-heads 2 --cold-mib 1 --bw-mib 2 --repeat 2
[ "$(grep -cE '^ +16 +(64|100) +[13] ' "$T/out")" -eq 4 ] && pass || fail "decode: one row per (keys, beam) expected"
grep -qE '^ +16 +64 +1 .*\| +(ref|f32|avx512bf16|amx)$' "$T/out" && pass || fail "decode: no bf16 column (its path last)"
expect 0 decode-json decode --keys 64 --beam 2 --d 8 --heads 2 --kv-heads 1 --cold-mib 1 --bw-mib 2 --repeat 1 --json
for key in '"keys": 64' '"beam": 2' '"cold_ms": ' '"cold_pct_bw": ' '"hot_ms": ' '"bf16_cold_ms": ' '"bf16_cold_pct_bw": ' '"bf16_isa": "' \
    '"paged_cold_ms": ' '"bw_gbps": '; do
    grep -qF "$key" "$T/out" && pass || fail "decode json: missing $key"
done
expect 2 decode-heads decode --heads 6 --kv-heads 4
expect 2 decode-keys decode --keys 0

echo "$npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
