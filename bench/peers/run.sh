#!/usr/bin/env bash
# attn beside its peers, in one run: attn (build/attn), ONNX Runtime's MultiHeadAttention
# (com.microsoft contrib operator, CPU; the onnxruntime-node npm package, whose CPU library ships
# in it) and PyTorch (Debian's python3-torch: softmax(Q K^T) V as bench/torch_attention.py
# writes it, since 1.13 has no scaled_dot_product_attention), with the fp32 FMA peak of
# `attn bench peak` measured in the same run, so every figure is also a share of the machine.
#
# Shapes: B = 1, H = 8, d = 64 and 128; forward N = 1024 and 4096, causal forward 4096,
# forward+backward 1024 and 4096 (attn and PyTorch; ONNX Runtime has no backward). For each
# shape, interleaved: attn, ONNX Runtime, PyTorch, attn again (medians of --repeat runs each),
# with the load average before it. Before timing, the outputs are checked: attn's against ONNX
# Runtime's and against PyTorch's in float64 (d = 64 and 128, N = 1024, plain and causal; the
# run fails if attn differs from float64 by more than 1e-4, and warns about ONNX Runtime).
#
# A peer that cannot be had is skipped with the reason in the table's notes: node or npm
# missing, the npm registry unreachable (onnxruntime-node is installed into
# bench/peers/.deps, git-ignored, on first use), python3-onnx or python3-torch missing, or
# PyTorch on the reference BLAS (update-alternatives libblas.so.3 must point at OpenBLAS:
# PyTorch on the reference BLAS is ~20x slower, and its figure would say nothing). The exit
# status is non-zero only when attn itself fails.
#
# usage: bench/peers/run.sh [--attn PATH] [--threads N] [--repeat R] [--label TEXT] [--readme]
#                           [--rows FILE] [--quick]
#   --attn PATH   the attn binary (default build/attn, built with cmake if missing)
#   --threads N   threads for all three (default 2)
#   --repeat R    timed runs per figure (default 5)
#   --label TEXT  a note in the table's heading (e.g. "idle machine", "loaded machine")
#   --readme      also write the table into bench/README.md's section (atomically)
#   --rows FILE   keep the run's JSON lines (every figure, its load average) in FILE
#   --quick       d = 64, N = 1024 only, forward and fwd+bwd (a smoke run)
# e.g. bench/peers/run.sh --threads 2 --label "idle machine" --readme
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
attn="$root/build/attn" threads=2 repeat=5 label="" readme=0 quick=0 keep=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --attn) attn=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --repeat) repeat=$2; shift 2 ;;
        --label) label=$2; shift 2 ;;
        --readme) readme=1; shift ;;
        --rows) keep=$2; shift 2 ;;
        --quick) quick=1; shift ;;
        -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
[[ "$threads" =~ ^[0-9]+$ && "$repeat" =~ ^[0-9]+$ ]] || { echo "run.sh: --threads and --repeat take numbers" >&2; exit 2; }
PY=/usr/bin/python3
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
rows="$tmp/rows.jsonl"
note() { echo "run.sh: $*" >&2; printf '{"bench": "note", "note": %s}\n' "$($PY -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$*")" >>"$rows"; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

# ---- attn --------------------------------------------------------------------------------------
if [[ ! -x "$attn" ]]; then
    echo "run.sh: building attn" >&2
    (cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build "$root/build" -j2 >/dev/null) ||
        { echo "run.sh: attn does not build" >&2; exit 1; }
    attn="$root/build/attn"
fi
# Both programs get the allocator settings of bench/run_attention.sh (huge pages, a large mmap
# threshold): PyTorch allocates its (N, N) scores afresh on every call, and page faults are slow
# in these virtual machines; attn barely notices.
export GLIBC_TUNABLES=${GLIBC_TUNABLES:-glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967296:glibc.malloc.top_pad=268435456}
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
printf '{"bench": "meta", "date": "%s", "cpu": "%s", "threads": %d, "repeat": %d, "label": "%s"}\n' \
    "$(date -u '+%Y-%m-%d %H:%M UTC')" "$cpu" "$threads" "$repeat" "$label" >>"$rows"

# ---- The peers: what is there ---------------------------------------------------------------------
have_ort=1 have_torch=1
deps="$here/.deps"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    note "ONNX Runtime skipped: node or npm is missing (apt-get install nodejs npm)"; have_ort=0
elif [[ ! -d "$deps/node_modules/onnxruntime-node" ]]; then
    mkdir -p "$deps"
    if ! (cd "$deps" && timeout 300 npm install --ignore-scripts --no-audit --no-fund onnxruntime-node >"$tmp/npm.log" 2>&1); then
        note "ONNX Runtime skipped: npm install onnxruntime-node failed (registry unreachable?): $(tail -1 "$tmp/npm.log")"; have_ort=0
    fi
fi
if [[ $have_ort == 1 ]] && ! $PY -c 'import onnx' 2>/dev/null; then
    note "ONNX Runtime skipped: python3-onnx is missing (apt-get install python3-onnx), no model can be written"; have_ort=0
fi
export NODE_PATH="$deps/node_modules"
if ! $PY -c 'import torch, numpy' 2>/dev/null; then
    note "PyTorch skipped: /usr/bin/python3 has no torch or numpy (apt-get install python3-torch)"; have_torch=0
else
    blas=$(update-alternatives --display libblas.so.3-x86_64-linux-gnu 2>/dev/null | sed -n 's/.*link currently points to //p')
    if [[ "$blas" != *openblas* ]]; then
        note "PyTorch refused: libblas.so.3 points at '${blas:-unknown}', not OpenBLAS (update-alternatives --config libblas.so.3-x86_64-linux-gnu); on the reference BLAS its figure says nothing"
        have_torch=0
    fi
fi
# PyTorch 1.13's ATen kernels (softmax, the element-wise ops) default to AVX2 on Debian's build.
if [[ $have_torch == 1 ]] && grep -qw avx512f /proc/cpuinfo; then export ATEN_CPU_CAPABILITY=avx512; fi
ort_version=""
[[ $have_ort == 1 ]] && ort_version=$(node -p 'require("onnxruntime-node/package.json").version' 2>/dev/null)
torch_version=""
[[ $have_torch == 1 ]] && torch_version=$($PY -c 'import torch; print(torch.__version__)')
note "versions: attn $("$attn" --version | cut -d' ' -f2-), ONNX Runtime ${ort_version:-none}, PyTorch ${torch_version:-none} (BLAS: ${blas:-?}${ATEN_CPU_CAPABILITY:+, ATEN_CPU_CAPABILITY=$ATEN_CPU_CAPABILITY})"

# ---- The peak, at the start (and again at the end) ---------------------------------------------
peak() { "$attn" bench peak --kinds fp32 --threads "$threads" --seconds 1 --json >>"$rows" || { echo "run.sh: attn bench peak failed" >&2; exit 1; }; }
peak

# ---- The checks ---------------------------------------------------------------------------------
ds="64 128" ns_fwd="1024 4096" ns_bwd="1024 4096" ns_causal="4096"
[[ $quick == 1 ]] && ds="64" ns_fwd="1024" ns_bwd="1024" ns_causal=""
for d in $ds; do
    for causal in 0 1; do
        c=$tmp/check && rm -rf "$c" && mkdir -p "$c"
        cflag=() && [[ $causal == 1 ]] && cflag=(--causal)
        $PY "$here/peers.py" inputs "$c" --n 1024 --heads 8 --d "$d" ||
            { note "check skipped (numpy missing?)"; break 2; }
        "$attn" attend "$c/q.npy" "$c/k.npy" "$c/v.npy" -o "$c/o_attn.npy" "${cflag[@]}" ||
            { echo "run.sh: attn attend failed" >&2; exit 1; }
        if [[ $have_ort == 1 ]]; then
            $PY "$here/mha_model.py" "$c/mha.onnx" --heads 8 "${cflag[@]}" &&
                node "$here/ort_mha.js" "$c/mha.onnx" --n 1024 --heads 8 --d "$d" --threads "$threads" --repeat 1 \
                    "${cflag[@]}" --inputs "$c" >/dev/null || note "ONNX Runtime's output for the check failed"
        fi
        [[ $have_torch == 1 ]] || continue
        $PY "$here/peers.py" compare "$c" "${cflag[@]}" >>"$rows" || { echo "run.sh: the check failed to run" >&2; exit 1; }
        $PY - "$rows" <<'PY' || { echo "run.sh: attn's output differs from float64 by more than 1e-4" >&2; exit 1; }
import json, sys
r = json.loads(open(sys.argv[1]).read().splitlines()[-1])
if r.get("max_abs_attn_vs_ort", 0) > 1e-4:
    print(f"run.sh: warning: attn and ONNX Runtime differ by {r['max_abs_attn_vs_ort']:.2e}", file=sys.stderr)
sys.exit(0 if r["max_abs_attn_vs_torch_f64"] <= 1e-4 else 1)
PY
    done
done

# ---- The timings, interleaved ---------------------------------------------------------------------
# bench_shape D N CAUSAL BACKWARD
bench_shape() {
    local d=$1 n=$2 causal=$3 backward=$4 flags=() l
    [[ $causal == 1 ]] && flags+=(--causal)
    [[ $backward == 1 ]] && flags+=(--backward)
    l=$(load)
    echo "run.sh: d=$d N=$n${flags[*]:+ ${flags[*]}} (load $l)" >&2
    tag() { $PY -c 'import json,sys
for line in sys.stdin:
    if line.strip():
        r = json.loads(line); r["load"] = sys.argv[1]; print(json.dumps(r))' "$l"; }
    "$attn" bench attention --json --n "$n" --d "$d" --heads 8 --threads "$threads" --repeat "$repeat" --ref-heads 0 \
        "${flags[@]}" | tag >>"$rows" || { echo "run.sh: attn bench attention failed" >&2; exit 1; }
    if [[ $have_ort == 1 && $backward == 0 ]]; then
        local m="$tmp/mha_$causal.onnx"
        [[ -f "$m" ]] || $PY "$here/mha_model.py" "$m" --heads 8 ${flags[@]+"${flags[@]}"}
        node "$here/ort_mha.js" "$m" --n "$n" --heads 8 --d "$d" --threads "$threads" --repeat "$repeat" \
            ${flags[@]+"${flags[@]}"} | tag >>"$rows" || note "ONNX Runtime failed on d=$d N=$n"
    fi
    if [[ $have_torch == 1 ]]; then
        $PY "$root/bench/torch_attention.py" --n "$n" --d "$d" --heads 8 --threads "$threads" --repeat "$repeat" \
            "${flags[@]}" | tag >>"$rows" || note "PyTorch failed on d=$d N=$n"
    fi
    "$attn" bench attention --json --n "$n" --d "$d" --heads 8 --threads "$threads" --repeat "$repeat" --ref-heads 0 \
        "${flags[@]}" | tag >>"$rows" || { echo "run.sh: attn bench attention failed" >&2; exit 1; }
}
for d in $ds; do
    for n in $ns_fwd; do bench_shape "$d" "$n" 0 0; done
    for n in $ns_causal; do bench_shape "$d" "$n" 1 0; done
    for n in $ns_bwd; do bench_shape "$d" "$n" 0 1; done
done
peak

readme_arg=()
[[ $readme == 1 ]] && readme_arg=(--readme "$root/bench/README.md")
$PY "$here/peers.py" table "$rows" "${readme_arg[@]}" || exit 1
if [[ -n "$keep" ]]; then cp "$rows" "$keep.tmp" && mv "$keep.tmp" "$keep"; fi
