#!/usr/bin/env bash
# The attention benchmark beside PyTorch, in one run: for each shape, `attn bench attention`
# (the fast path and the portable reference path) and then bench/torch_attention.py
# (PyTorch's softmax(Q K^T) V and its autograd backward) on the same shape and thread count,
# alternating so that both see the same machine load; then one table with the ratios.
#
# usage: bench/run_attention.sh [ATTN_BINARY] [options of attn bench attention]
#   e.g. bench/run_attention.sh build/attn --n 1024,4096 --threads 2 --repeat 10
#        bench/run_attention.sh build/attn --n 1024,4096 --backward
# Options understood by both: --n --nq --d --heads --kv-heads --batch --causal --backward
# --threads --repeat; --ref-heads goes to attn only. Needs /usr/bin/python3 with torch.
#
# Memory note: PyTorch allocates the (N, N) score matrices afresh on every call. Where page
# faults are expensive (in this project's VMs about 12 us per 4 KiB page) that alone makes it
# several times slower, so both programs run with glibc's transparent huge pages and a large
# mmap threshold (GLIBC_TUNABLES below), which gives PyTorch its best time; attn itself
# allocates only O(N d) scratch and barely notices.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
attn=${1:-}
if [[ -z "$attn" || "$attn" == --* ]]; then
    attn="$here/../build/attn"
else
    shift
fi
[[ -x "$attn" ]] || { echo "run_attention.sh: $attn is not an executable (build first)" >&2; exit 2; }
export GLIBC_TUNABLES=${GLIBC_TUNABLES:-glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967296:glibc.malloc.top_pad=268435456}

# Split off --n (one shape at a time) and the attn-only options.
ns="256,1024,4096"
common=() attn_only=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --n) ns="$2"; shift 2 ;;
        --n=*) ns="${1#--n=}"; shift ;;
        --ref-heads) attn_only+=("$1" "$2"); shift 2 ;;
        --ref-heads=*) attn_only+=("$1"); shift ;;
        --causal|--backward) common+=("$1"); shift ;;
        --*=*) common+=("$1"); shift ;;
        --*) common+=("$1" "$2"); shift 2 ;;
        *) echo "run_attention.sh: unexpected argument '$1'" >&2; exit 2 ;;
    esac
done
threads_set=0
for a in "${common[@]}"; do [[ "$a" == --threads* ]] && threads_set=1; done
[[ $threads_set == 1 ]] || common+=(--threads 2)

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
IFS=, read -ra nlist <<<"$ns"
for n in "${nlist[@]}"; do
    "$attn" bench attention --json --n "$n" "${common[@]}" "${attn_only[@]}" >>"$tmp"
    /usr/bin/python3 "$here/torch_attention.py" --n "$n" "${common[@]}" >>"$tmp"
done

/usr/bin/python3 - "$tmp" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
key = lambda r: (r["n"], r["nq"], r["d"], r["heads"], r["kv_heads"], r["batch"], r["causal"], r["backward"])
torch = {key(r): r for r in rows if r["bench"] == "torch"}
a0 = next(r for r in rows if r["bench"] == "attention")
print("attention %s, B=%d H=%d Hkv=%d d=%d%s, %d threads, attn path %s, PyTorch %s, medians of %d runs" % (
    "forward+backward" if a0["backward"] else "forward", a0["batch"], a0["heads"], a0["kv_heads"], a0["d"],
    " causal" if a0["causal"] else "", a0["threads"], a0["isa"],
    next((r["torch"] for r in rows if r["bench"] == "torch"), "?"), a0["repeat"]))
print("| n | nq | attn ms | attn GFLOP/s | (by CPU time) | reference ms | vs reference | PyTorch ms | PyTorch GFLOP/s | vs PyTorch |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in rows:
    if r["bench"] != "attention":
        continue
    t = torch.get(key(r))
    ref = ("%.1f%s" % (r["ref_ms"], "*" if r.get("ref_heads_timed", r["heads"]) < r["heads"] else "")) if "ref_ms" in r else "-"
    vs_ref = ("%.1fx" % r["speedup"]) if "speedup" in r else "-"
    print("| %d | %d | %.2f | %.1f | %s | %s | %s | %s | %s | %s |" % (
        r["n"], r["nq"], r["ms"], r["gflops"], "%.0f" % r["cpu_gflops"] if "cpu_gflops" in r else "-", ref, vs_ref,
        "%.2f" % t["ms"] if t else "-", "%.1f" % t["gflops"] if t else "-",
        "%.2fx" % (t["ms"] / r["ms"]) if t else "-"))
if any("ref_ms" in r and r.get("ref_heads_timed", r["heads"]) < r["heads"] for r in rows if r["bench"] == "attention"):
    print("(* reference path timed on fewer heads and scaled to all of them)")
print("(times: wall-clock medians; \"by CPU time\": FLOPs / (attn's process CPU time / threads), its speed")
print(" when it has the cores, which differs from the wall clock only where other work shares the machine)")
PY
