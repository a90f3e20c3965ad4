#!/usr/bin/env bash
# tests/cli_crash.sh: a training run killed (SIGKILL) at every rename and every fsync of its
# checkpoints in turn, by strace's fault injection, then resumed, ends with the same weights
# and optimiser state, byte for byte, as an uninterrupted run.
#
#   bash tests/cli_crash.sh /path/to/attn
#
# A kill before the first checkpoint is committed leaves nothing to resume (--resume says so,
# and the test starts over); a kill at any later point must leave a checkpoint that --resume
# (and, on every other kill, 'attn translate' first) accepts. No temporary file or staging
# directory may remain once the run has finished. Skipped (77) without a working strace
# (absent, or ptrace not permitted). Prints "N passed, N failed" last.
set -u
[ $# -ge 1 ] || { echo "usage: bash cli_crash.sh /path/to/attn" >&2; exit 2; }
ATTN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
cd "$(dirname "$0")" || exit 2
command -v strace >/dev/null && strace -o /dev/null true 2>/dev/null || { echo "skip: no working strace"; exit 77; }
T=$(mktemp -d) || exit 2
trap 'rm -rf "$T"' EXIT
npass=0
nfail=0
ok() { npass=$((npass + 1)); }
bad() { nfail=$((nfail + 1)); echo "FAIL: $*" >&2; }
check() { local n=$1; shift; if "$@"; then ok; else bad "$n"; fi; }

TINY="--emb 16 --hidden 16 --batch 8 --min-count 1 --valid-bleu 0 --log-every 0 --warmup 5 --lr 0.01 --threads 1"
"$ATTN" train seq2seq --data data/seq2seq/pairs.tsv --split-only --split-dir "$T/split" >/dev/null 2>&1 || { echo "FAIL: split"; exit 1; }
# 3 updates: checkpoints after update 2 (--save-every 2, mid-epoch) and at the epoch's end
R="--train $T/split/train.tsv --valid $T/split/valid.tsv --epochs 1 --save-every 2 $TINY"

# the uninterrupted run, traced: how many renames and fsyncs, and which rename commits first
strace -f -o "$T/trace" -e trace=rename,renameat,renameat2,fsync "$ATTN" train seq2seq $R --out "$T/full" >/dev/null 2>&1
check "uninterrupted run" [ -s "$T/full/model.safetensors" -a -s "$T/full/optim.safetensors" ]
n_rename=$(grep -c 'rename' "$T/trace")
n_fsync=$(grep -c 'fsync(' "$T/trace")
first_commit=$(grep 'rename' "$T/trace" | grep -n '\.ck-commit")' | head -1 | cut -d: -f1)
first_commit=${first_commit:-0}
check "the trace shows the writes ($n_rename renames, $n_fsync fsyncs, the first commit at rename $first_commit)" \
    [ "$n_rename" -ge 10 -a "$n_fsync" -ge 10 -a "$first_commit" -gt 0 ]
sys=$(grep -o '^[0-9]* *rename[a-z0-9]*' "$T/trace" | head -1 | awk '{print $2}')

# killrun CALL K COMMITTED: kill at the K-th CALL, then finish the run and compare
killrun() {
    local call=$1 k=$2 committed=$3 d="$T/k-$1-$2"
    (strace -f -o /dev/null -e trace="$call" -e inject="$call":signal=KILL:when="$k" \
        "$ATTN" train seq2seq $R --out "$d" >/dev/null 2>&1; :) 2>/dev/null
    if [ $((k % 2)) -eq 1 ] && [ "$committed" = 1 ]; then
        "$ATTN" translate --model "$d" "我爱你。" >/dev/null 2>"$T/err" || bad "$call #$k: translate after the kill: $(cat "$T/err")"
    fi
    if "$ATTN" train seq2seq $R --out "$d" --resume >/dev/null 2>"$T/err"; then
        :
    elif [ "$committed" = 1 ]; then
        bad "$call #$k: a committed checkpoint does not resume: $(tail -1 "$T/err")"; return
    else
        "$ATTN" train seq2seq $R --out "$d" >/dev/null 2>"$T/err" || { bad "$call #$k: fresh start: $(tail -1 "$T/err")"; return; }
    fi
    if cmp -s "$T/full/model.safetensors" "$d/model.safetensors" && cmp -s "$T/full/optim.safetensors" "$d/optim.safetensors"; then
        ok
    else
        bad "$call #$k: the resumed run's weights differ from the uninterrupted run's"
    fi
    left=$(cd "$d" && ls -A | grep -E '\.tmp\.|^\.ck-')
    check "$call #$k: nothing left behind ($left)" [ -z "$left" ]
}
for k in $(seq 1 "$n_rename"); do killrun "$sys" "$k" $([ "$k" -gt "$first_commit" ] && echo 1 || echo 0); done
# a kill at an fsync is past the first commit when that fsync comes after the commit's rename
commit_line=$(grep -n '\.ck-commit")' "$T/trace" | head -1 | cut -d: -f1)
commit_line=${commit_line:-0}
for k in $(seq 1 "$n_fsync"); do
    line=$(grep -n 'fsync(' "$T/trace" | sed -n "${k}p" | cut -d: -f1)
    killrun fsync "$k" $([ "$line" -gt "$commit_line" ] && echo 1 || echo 0)
done

echo "$npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
