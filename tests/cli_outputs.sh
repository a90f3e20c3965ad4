#!/usr/bin/env bash
# tests/cli_outputs.sh: what an output path may be. A symbolic link stays a link and its target
# gets the new contents (written atomically beside the target); a device (null, full) or a
# FIFO is written directly and stays what it is; a directory is refused; an output that
# is one of the inputs (the same file, also through a link) is refused before anything is
# written; a failed write says why (the system's reason, e.g. ENOSPC on /dev/full).
#
#   bash tests/cli_outputs.sh /path/to/attn
#
# Prints "N passed, N failed" last and exits non-zero on any failure.
set -u
[ $# -ge 1 ] || { echo "usage: bash cli_outputs.sh /path/to/attn" >&2; exit 2; }
ATTN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
cd "$(dirname "$0")" || exit 2
T=$(mktemp -d) || exit 2
trap 'rm -rf "$T"' EXIT
npass=0
nfail=0
ok() { npass=$((npass + 1)); }
bad() { nfail=$((nfail + 1)); echo "FAIL: $*" >&2; }
check() { local n=$1; shift; if "$@"; then ok; else bad "$n"; fi; }

A=data/cli
[ -f $A/dot2d_q.npy ] || { echo "skip: no $A"; exit 77; }
Q=$A/dot2d_q.npy K=$A/dot2d_k.npy V=$A/dot2d_v.npy
"$ATTN" attend $Q $K $V -o "$T/plain.npy" || { echo "FAIL: attend"; exit 1; }

# a symbolic link (relative target): the link stays, the target gets the output
printf 'old' >"$T/target.npy"
ln -s target.npy "$T/link.npy"
"$ATTN" attend $Q $K $V -o "$T/link.npy" 2>"$T/err"
check "symlink: exit 0 ($(cat "$T/err"))" [ $? -eq 0 ]
check "symlink: still a link" [ -L "$T/link.npy" ]
check "symlink: the target holds the output" cmp -s "$T/target.npy" "$T/plain.npy"
check "symlink: no temporary left" [ -z "$(ls "$T" | grep '\.tmp\.')" ]
# a chain of two links to a file in another directory
mkdir "$T/sub" && ln -s sub/real.npy "$T/l2.npy" && ln -s l2.npy "$T/l1.npy"
"$ATTN" attend $Q $K $V -o "$T/l1.npy" 2>"$T/err"
check "two links: the final target written" cmp -s "$T/sub/real.npy" "$T/plain.npy"
check "two links: both still links" [ -L "$T/l1.npy" -a -L "$T/l2.npy" ]

# a FIFO: written directly
mkfifo "$T/fifo"
timeout 20 cat "$T/fifo" >"$T/from-fifo" &
reader=$!
"$ATTN" attend $Q $K $V -o "$T/fifo" 2>"$T/err"
rc=$?
[ -p "$T/fifo" ] || kill $reader 2>/dev/null # replaced by a file: nobody writes the FIFO
wait $reader
check "FIFO: exit 0 ($(cat "$T/err"))" [ $rc -eq 0 ]
check "FIFO: still a FIFO" [ -p "$T/fifo" ]
check "FIFO: the reader got the output" cmp -s "$T/from-fifo" "$T/plain.npy"

# devices: private nodes of /dev/null and /dev/full made here (root only; never the system's
# own, which a faulty build would replace with a file): a null device stays a device; a full
# one says why the write failed
if mknod -m 666 "$T/null" c 1 3 2>/dev/null && mknod -m 666 "$T/full" c 1 7 2>/dev/null; then
    "$ATTN" attend $Q $K $V -o "$T/null" 2>"$T/err"
    check "null device: exit 0 ($(cat "$T/err"))" [ $? -eq 0 ]
    check "null device: still a character device" [ -c "$T/null" ]
    "$ATTN" attend $Q $K $V -o "$T/full" 2>"$T/err"
    check "full device: exit 1" [ $? -eq 1 ]
    check "full device: says why ($(cat "$T/err"))" grep -q "No space left on device" "$T/err"
    check "full device: still a character device" [ -c "$T/full" ]
else
    echo "note: not root: the device checks are skipped"
fi

# a directory is refused
mkdir "$T/dir.npy"
"$ATTN" attend $Q $K $V -o "$T/dir.npy" 2>"$T/err"
check "directory: exit 1" [ $? -eq 1 ]
check "directory: says so ($(cat "$T/err"))" grep -q "is a directory" "$T/err"

# an output that is an input is refused, also through a link, and the input is untouched
cp $Q "$T/q.npy" && ln -s q.npy "$T/qlink.npy"
"$ATTN" attend "$T/q.npy" $K $V -o "$T/q.npy" 2>"$T/err"
check "attend -o = Q: exit 2" [ $? -eq 2 ]
check "attend -o = Q: says so ($(cat "$T/err"))" grep -q "is the input" "$T/err"
"$ATTN" attend "$T/q.npy" $K $V --weights-out "$T/qlink.npy" 2>"$T/err"
check "attend --weights-out = a link to Q: exit 2" [ $? -eq 2 ]
check "attend: Q untouched" cmp -s "$T/q.npy" $Q

TINY="--emb 16 --hidden 16 --batch 8 --min-count 1 --valid-bleu 0 --log-every 0 --warmup 5 --lr 0.01 --threads 1"
cp data/seq2seq/pairs.tsv "$T/pairs.tsv"
"$ATTN" train seq2seq --data "$T/pairs.tsv" --split-dir "$T/split" --out "$T/m" --epochs 1 $TINY >/dev/null 2>&1
for opt in --csv --markdown --hyp-out; do
    "$ATTN" eval --model "$T/m" --data "$T/pairs.tsv" $opt "$T/pairs.tsv" >/dev/null 2>"$T/err"
    check "eval $opt = the data: exit 2" [ $? -eq 2 ]
done
check "eval: the data untouched" cmp -s "$T/pairs.tsv" data/seq2seq/pairs.tsv

echo "$npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
