#!/usr/bin/env bash
# tests/mpi_cli_train.sh: `mpirun -np 2 attn train transformer` on a tiny task: the log and the
# checkpoint are rank 0's, the loss curve is the one-process run's (dropout 0; the printed
# losses, 4 decimals, equal), and a run checkpointed by 2 ranks resumes in 1 process. Then a
# rank that hangs (SIGSTOP, as a dead machine looks to the others): the other rank gives up
# after ATTN_DIST_TIMEOUT seconds with a clear message, mpirun ends with an error instead of
# hanging, and the checkpoint on disk stays valid (a one-process run resumes from it).
# Skips (77) when mpirun is missing.
#
#   bash tests/mpi_cli_train.sh /path/to/attn
set -u
[ $# -ge 1 ] || { echo "usage: bash mpi_cli_train.sh /path/to/attn" >&2; exit 2; }
ATTN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
cd "$(dirname "$0")" || exit 2
. ./mpienv.sh
D=data/transformer
T=$(mktemp -d) || exit 2
victim=""
trap '[ -n "$victim" ] && kill -KILL $victim 2>/dev/null; rm -rf "$T"' EXIT
npass=0
nfail=0
pass() { npass=$((npass + 1)); }
fail() { nfail=$((nfail + 1)); echo "FAIL: $*"; [ -s "$T/log" ] && tail -15 "$T/log"; }
check() { local name=$1; shift; if "$@"; then pass; else fail "$name"; fi; }
COMMON=(train transformer --train $D/reverse.tsv --valid $D/reverse.tsv --direction plain --d-model 32 --heads 2 --ff 64 --layers 1
        --warmup 20 --lr 3e-3 --batch 32 --threads 1 --dropout 0 --valid-bleu 0 --log-every 1)

# ---- one process and 2 ranks: the same printed losses ----------------------------------------
"$ATTN" "${COMMON[@]}" --out "$T/one" --max-steps 30 --log "$T/one.csv" >"$T/log" 2>&1 || fail "one-process run"
grep -o 'step [0-9]*/[0-9]* loss [0-9.]*' "$T/log" > "$T/one.loss"
timeout 120 mpirun --oversubscribe -np 2 "$ATTN" "${COMMON[@]}" --out "$T/two" --max-steps 30 --log "$T/two.csv" >"$T/log" 2>&1 ||
    fail "mpirun -np 2 run"
grep -o 'step [0-9]*/[0-9]* loss [0-9.]*' "$T/log" > "$T/two.loss"
check "30 losses logged" test "$(wc -l < "$T/one.loss")" = 30
check "each step's loss printed once (rank 0 alone prints)" test "$(wc -l < "$T/two.loss")" = 30
check "the same losses as one process" cmp -s "$T/one.loss" "$T/two.loss"
check "one final line" test "$(grep -c 'updates in' "$T/log")" = 1
check "checkpoint" test -s "$T/two/model.safetensors" -a -s "$T/two/config.json"
check "one log, one header" test "$(grep -c '^epoch,' "$T/two.csv")" = 1
# resumed by one process (a different number of ranks)
"$ATTN" "${COMMON[@]}" --out "$T/two" --max-steps 35 --log "$T/two.csv" --resume >"$T/log" 2>&1
check "2-rank checkpoint resumed by one process" grep -q "^stopped: 5 updates" "$T/log"

# ---- a rank that hangs ------------------------------------------------------------------------
ATTN_DIST_TIMEOUT=3 timeout 120 mpirun --oversubscribe -np 2 -x ATTN_DIST_TIMEOUT "$ATTN" "${COMMON[@]}" --out "$T/dead" \
    --epochs 1000 --save-every 5 --log-every 0 >"$T/dead.log" 2>&1 &
mpipid=$!
for _ in $(seq 600); do [ -s "$T/dead/model.safetensors" ] && break; sleep 0.1; done
# rank 1: the attn process whose environment says so
for p in $(pgrep -f "$ATTN train transformer"); do
    tr '\0' '\n' < /proc/$p/environ 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1' && victim=$p
done
if [ -z "$victim" ]; then
    fail "no rank 1 process found"
    kill $mpipid 2>/dev/null
else
    kill -STOP "$victim"
    t0=$(date +%s)
    wait $mpipid
    rc=$?
    took=$(( $(date +%s) - t0 ))
    cp "$T/dead.log" "$T/log"
    check "mpirun ends with an error (exit $rc) instead of hanging" test "$rc" != 0 -a "$rc" != 124
    check "within the timeout and a margin ($took s)" test "$took" -lt 60
    check "rank 0 says a rank died or hangs" grep -q "rank 0 of 2: .*no answer from the other ranks for 3 s: a rank died or hangs" "$T/dead.log"
    kill -KILL "$victim" 2>/dev/null
    victim=""
    "$ATTN" "${COMMON[@]}" --out "$T/dead" --max-steps 1000 --epochs 1000 --resume --time-budget 1 >"$T/log" 2>&1
    check "the checkpoint left behind resumes" grep -q "^stopped: " "$T/log"
fi
echo "$npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
