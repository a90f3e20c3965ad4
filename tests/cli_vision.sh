#!/usr/bin/env bash
# tests/cli_vision.sh: attn train vision, attn eval, attn classify-image and attn
# vision-examples end to end, on tiny runs (a few hundred images, tiny models: seconds).
#
#   bash tests/cli_vision.sh /path/to/attn
#
# Checks, without Fashion-MNIST: a missing data folder, a corrupt IDX file (bad magic) and a
# truncated one are data errors (1) whose message names the file (and, when missing, the
# Debian package); unknown --model, --task, --core, --schedule, --min-lr above --lr and a
# missing --out are usage errors (2).
# With Fashion-MNIST (Debian's dataset-fashion-mnist; else the rest is skipped, exit 77):
# fc, cnn, soft and ram train and write checkpoints of kind "vision"; eval gives training's test
# error (text, and --json's last line with "accuracy" a fraction and "error" a percentage) and
# a confusion matrix whose rows sum to the test images; --schedule/--warmup/--min-lr set the
# learning rate of each update; a stopped run resumes; ram and soft
# draw their glimpses / heat map as PNG and SVG; classify-image reads a PNG of the right size
# and refuses one of the wrong size, a file that is not a PNG, and a task of another size;
# vision-examples writes a PNG. Prints "N passed, N failed".
set -u
[ $# -ge 1 ] || { echo "usage: bash cli_vision.sh /path/to/attn" >&2; exit 2; }
ATTN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
T=$(mktemp -d) || exit 2
trap 'rm -rf "$T"' EXIT
npass=0
nfail=0
ok() { npass=$((npass + 1)); }
bad() { nfail=$((nfail + 1)); echo "FAIL: $*" >&2; }
check() { local n=$1; shift; if "$@"; then ok; else bad "$n"; fi; }
# status NAME RC WORD command...: exits RC with a message on stderr that contains WORD
status() {
    local n=$1 want=$2 word=$3; shift 3
    "$@" >"$T/out" 2>"$T/err"
    local rc=$?
    if [ $rc -eq "$want" ] && grep -q -- "$word" "$T/err"; then ok; else bad "$n (rc $rc, want $want and '$word': $(head -1 "$T/err"))"; fi
}

# ---- Without the data ----
status "missing data" 1 "dataset-fashion-mnist" "$ATTN" train vision --model fc --task centred28 --data "$T/none" --out "$T/x"
mkdir -p "$T/bad" "$T/short"
printf 'this is not an IDX file' > "$T/bad/train-images-idx3-ubyte.gz"
cp "$T/bad/train-images-idx3-ubyte.gz" "$T/bad/train-labels-idx1-ubyte.gz"
status "corrupt IDX" 1 "bad/train-images-idx3-ubyte.gz: bad IDX magic" "$ATTN" train vision --model fc --task centred28 --data "$T/bad" --out "$T/x"
# a plain IDX header promising 60000 28x28 images, then 10 bytes
printf '\x00\x00\x08\x03\x00\x00\xea\x60\x00\x00\x00\x1c\x00\x00\x00\x1c0123456789' > "$T/short/train-images-idx3-ubyte.gz"
status "truncated IDX" 1 "short/train-images-idx3-ubyte.gz: truncated" "$ATTN" train vision --model fc --task centred28 --data "$T/short" --out "$T/x"
status "unknown --model" 2 "unknown --model" "$ATTN" train vision --model rnn --task centred28 --out "$T/x"
status "unknown --task" 2 "unknown --task" "$ATTN" train vision --model ram --task mnist --out "$T/x"
status "unknown --core" 2 "unknown --core" "$ATTN" train vision --model ram --task centred28 --core gru --out "$T/x"
status "no --out" 2 "--out" "$ATTN" train vision --model ram --task centred28
status "unknown --schedule" 2 "unknown --schedule" "$ATTN" train vision --model ram --task centred28 --schedule step --out "$T/x"
status "--min-lr above --lr" 2 "--min-lr must not exceed --lr" "$ATTN" train vision --model cnn --task centred28 --min-lr 1 --out "$T/x"
"$ATTN" train vision --help | grep -q "Recurrent Attention Model"; check "train vision --help" [ $? -eq 0 ]
"$ATTN" classify-image --help | grep -q "show-glimpses"; check "classify-image --help" [ $? -eq 0 ]

if ! "$ATTN" vision-examples --task cluttered60 --n 3 --out "$T/ex.png" >"$T/out" 2>"$T/err"; then
    echo "SKIP: Fashion-MNIST is not installed ($(head -1 "$T/err"))"
    echo "$npass passed, $nfail failed (the rest skipped)"
    [ $nfail -eq 0 ] && exit 77
    exit 1
fi
check "vision-examples writes a PNG" [ "$(head -c 4 "$T/ex.png" | tail -c 3)" = PNG ]

# ---- Training, evaluation, pictures ----
SMALL="--train 400 --valid 100 --test 200 --epochs 1 --batch 32 --log-every 0 --threads 1"
train() { # NAME MODEL TASK [options]
    local name=$1 model=$2 task=$3; shift 3
    "$ATTN" train vision --model "$model" --task "$task" $SMALL "$@" --out "$T/$name" >"$T/$name.out" 2>"$T/$name.err"
    local rc=$?
    check "$name: train exits 0 (rc $rc: $(tail -1 "$T/$name.err"))" [ $rc -eq 0 ]
    check "$name: final line" grep -qE "^trained: [0-9]+ updates .* test error [0-9.]+% \\(200 images\\)" "$T/$name.out"
    check "$name: progress" grep -q "^epoch 1/1: valid loss" "$T/$name.err"
    check "$name: checkpoint" grep -q "\"kind\": \"vision\", \"model\": \"$model\", \"task\": \"$task\"" "$T/$name/config.json"
}
train fc fc centred28 --hidden 16
train cnn cnn centred28 --c1 2 --c2 3
train soft soft translated60 --c1 2 --c2 3
train ram ram cluttered60 --hidden 16 --glimpses 3
for m in fc cnn soft ram; do
    want=$(sed -E 's/.*test error ([0-9.]+)%.*/\1/' "$T/$m.out")
    "$ATTN" eval --model "$T/$m" --test 200 --json >"$T/eval" 2>"$T/err"
    check "$m: eval exits 0" [ $? -eq 0 ]
    check "$m: eval gives training's test error ($want%)" grep -q "test error $want% " "$T/eval"
    check "$m: --json on the last line" /usr/bin/python3 -c "
import json, sys
lines = open(sys.argv[1]).read().splitlines()
d = json.loads(lines[-1])
assert 0 <= d['accuracy'] <= 1 and abs(d['error'] - 100 * (1 - d['accuracy'])) < 1e-3 and abs(d['error'] - $want) < 0.006 and d['test'] == 200
rows = [l for l in lines if l[:1].isdigit() and '%' in l]
assert len(rows) == 10 and sum(sum(int(x) for x in r.split()[-11:-1]) for r in rows) == 200, rows
" "$T/eval"
done
# the learning-rate schedule (the trainer's, any model): 13 updates, a warm-up of 4 (the rate
# printed after update t is the next one's: 2/4 of --lr after the first), then linear decay
# reaching --min-lr at the last update
"$ATTN" train vision --model fc --task centred28 --hidden 8 $SMALL --log-every 1 --schedule linear --warmup 4 --lr 1e-3 \
    --min-lr 1e-5 --out "$T/sched" >"$T/out" 2>"$T/err"
check "--schedule: warm-up" grep -q "^epoch 1/1 step 1/13 .* lr 5.00e-04 " "$T/err"
check "--schedule: lr reaches the peak" grep -q "^epoch 1/1 step 3/13 .* lr 1.00e-03 " "$T/err"
check "--schedule: linear decay to --min-lr" grep -q "^epoch 1/1 step 13/13 .* lr 1.00e-05 " "$T/err"
# resume: a run stopped after 3 updates, continued
"$ATTN" train vision --model ram --task centred28 --hidden 8 $SMALL --max-steps 3 --out "$T/res" >"$T/out" 2>"$T/err"
check "a stopped run says so" grep -q "^stopped: 3 updates" "$T/out"
"$ATTN" train vision --resume $SMALL --out "$T/res" >"$T/out" 2>"$T/err"
check "resume continues (rc $?)" grep -q "^resuming" "$T/err"
check "resume finishes the epoch" grep -qE "^trained: 10 updates" "$T/out"
# pictures
for ext in png svg; do
    "$ATTN" classify-image --model "$T/ram" --index 4 --show-glimpses "$T/g.$ext" >"$T/out" 2>"$T/err"
    check "ram: classify-image --show-glimpses .$ext (rc $?)" [ -s "$T/g.$ext" ]
    "$ATTN" classify-image --model "$T/soft" --index 4 --show-glimpses "$T/s.$ext" >"$T/out2" 2>"$T/err"
    check "soft: heat map .$ext" [ -s "$T/s.$ext" ]
done
check "ram: 3 glimpse lines" [ "$(grep -c '^glimpse [0-9] at' "$T/out")" -eq 3 ]
check "ram: the class and the truth" grep -qE "^test image: .* \\(class [0-9], p = [0-9.]+\\); true class" "$T/out"
check "PNG signature" [ "$(head -c 4 "$T/g.png" | tail -c 3)" = PNG ]
check "SVG: numbered boxes" grep -q ">3</text>" "$T/g.svg"
# a 28x28 PNG (gray, written with the standard library), one of 30x30, and a file that is not a PNG
/usr/bin/python3 - "$T" <<'PY'
import struct, sys, zlib
def png(path, w, h):
    raw = b"".join(b"\0" + bytes((x * 9) % 256 for x in range(w)) for _ in range(h))
    def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) +
                           chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
png(sys.argv[1] + "/i28.png", 28, 28)
png(sys.argv[1] + "/i30.png", 30, 30)
PY
"$ATTN" classify-image --model "$T/fc" --image "$T/i28.png" >"$T/out" 2>"$T/err"
check "classify-image reads a 28x28 PNG (rc $?)" grep -q "i28.png: .* (class [0-9]" "$T/out"
status "an image of the wrong size" 1 "i30.png is 30x30; the model reads 28x28" "$ATTN" classify-image --model "$T/fc" --image "$T/i30.png"
status "not a PNG" 1 "not a PNG" "$ATTN" classify-image --model "$T/fc" --image "$T/bad/train-images-idx3-ubyte.gz"
status "a task of another size" 1 "reads 28x28 images" "$ATTN" eval --model "$T/fc" --task cluttered60
status "one of --image and --index" 2 "--image" "$ATTN" classify-image --model "$T/fc"
"$ATTN" eval --model "$T/ram" --task translated60 --test 50 >"$T/out" 2>"$T/err"
check "eval on another task of the same size (rc $?)" grep -q "^ram on translated60 (trained on cluttered60): test error" "$T/out"

echo "$npass passed, $nfail failed"
[ $nfail -eq 0 ]
