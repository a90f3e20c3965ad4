#!/usr/bin/env bash
# tests/layers.sh: the architecture of README.md ("Architecture"), checked: every file under
# src/ includes only headers of its own layer or of the layers below it, public (attn/X.h) or
# internal (src/LAYER/...). The order, bottom to top:
#   core < io < kernels < nn < params < autograd < models < train < dist < viz < cli
# and the command-line tool (src/cli) includes only public headers. The public headers
# (include/attn/) follow the same order among themselves. Prints each inversion and
# "N passed, N failed" last; exits non-zero on any inversion.
#
#   bash tests/layers.sh [REPO_DIR]
set -u
ROOT=${1:-$(dirname "$0")/..}
SRC=$ROOT/src
order=(core io kernels nn params autograd models train dist viz cli)
declare -A rank
for i in "${!order[@]}"; do rank[${order[$i]}]=$i; done
# the layer of each public header
declare -A pub=([core]=core [io]=io [text]=io [clsdata]=io [machine]=kernels [attention]=nn [kvcache]=nn [mha]=nn [posenc]=nn [layers]=nn [params]=params
                [autograd]=autograd [seq2seq]=models [transformer]=models [translator]=models [knnmt]=models [train]=train
                [trainer]=train [tfidf]=models [tfidf_train]=train [classifier]=models [classifier_train]=train
                [recall]=models [recall_train]=train [vision_data]=io [vision]=models [vision_train]=train [viz_image]=viz
                [viz]=viz [viz_html]=viz [dist]=dist [attn]=cli)
npass=0
nfail=0
for f in $(cd "$SRC" && find . -name '*.[ch]' | sed 's|^\./||' | sort); do
    layer=${f%%/*}
    [ -n "${rank[$layer]+x}" ] || { echo "FAIL: $f: folder '$layer' is in no layer"; nfail=$((nfail + 1)); continue; }
    bad=0
    while read -r inc; do
        case $inc in
            attn/*) h=${inc#attn/}; h=${h%.h}; to=${pub[$h]:-}
                    [ -n "$to" ] || { echo "FAIL: $f includes $inc, a public header in no layer"; bad=1; continue; } ;;
            */*) to=${inc%%/*}
                 [ "$layer" = cli ] && { echo "FAIL: $f includes $inc: the CLI uses only public headers"; bad=1; continue; } ;;
            *) continue ;; # a header of the same folder
        esac
        if [ "${rank[$to]:-99}" -gt "${rank[$layer]}" ]; then
            echo "FAIL: $f ($layer) includes $inc ($to, a layer above)"
            bad=1
        fi
    done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$SRC/$f")
    if [ $bad = 0 ]; then npass=$((npass + 1)); else nfail=$((nfail + 1)); fi
done
for f in "$ROOT"/include/attn/*.h; do
    h=$(basename "$f" .h)
    layer=${pub[$h]:-}
    [ -n "$layer" ] || { echo "FAIL: include/attn/$h.h is in no layer (add it to tests/layers.sh)"; nfail=$((nfail + 1)); continue; }
    bad=0
    while read -r inc; do
        i=${inc#attn/}; i=${i%.h}; to=${pub[$i]:-}
        if [ "${rank[$to]:-99}" -gt "${rank[$layer]}" ]; then
            echo "FAIL: include/attn/$h.h ($layer) includes $inc (${to:-no layer}, a layer above)"
            bad=1
        fi
    done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\(attn\/[^"]*\)".*/\1/p' "$f")
    if [ $bad = 0 ]; then npass=$((npass + 1)); else nfail=$((nfail + 1)); fi
done
echo "$npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
