#!/usr/bin/env bash
# tests/cli_errors.sh: how the attn command fails, and its help.
#
#   bash tests/cli_errors.sh /path/to/attn
#
# Every bad input must give exit status 2 (a usage error) or 1 (a data or runtime error), exactly
# one line on stderr that starts with "attn <command>: " and says what and which file, nothing
# on stdout, and no output file (nor a temporary one) left behind. Every --help must exit 0 with
# its text on stdout. Broken files are made here from the committed fixtures (tests/data/cli/).
# Prints "N passed, N failed" last and exits non-zero on any failure.
set -u
[ $# -ge 1 ] || { echo "usage: bash cli_errors.sh /path/to/attn" >&2; exit 2; }
ATTN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
cd "$(dirname "$0")" || exit 2
D=data/cli
T=$(mktemp -d) || exit 2
trap 'rm -rf "$T"' EXIT
I=$T/in  # broken inputs
O=$T/out # where outputs are asked for: must stay empty
mkdir "$I"
npass=0
nfail=0

# err CODE PATTERN ARGS...: attn ARGS fails as described above; PATTERN is an extended regex the
# stderr line must match.
err() {
    local code=$1 pat=$2
    shift 2
    rm -rf "$O"
    mkdir "$O"
    "$ATTN" "$@" >"$T/stdout" 2>"$T/stderr"
    local rc=$? why=
    if [ $rc -ne "$code" ]; then why="exit $rc, expected $code"
    elif [ "$(wc -l <"$T/stderr")" -ne 1 ]; then why="stderr is not one line"
    elif ! grep -Eq -- "$pat" "$T/stderr"; then why="stderr does not match /$pat/"
    elif [ -s "$T/stdout" ]; then why="something on stdout"
    elif [ -n "$(ls -A "$O")" ]; then why="left behind: $(ls -A "$O" | tr '\n' ' ')"
    fi
    if [ -z "$why" ]; then
        npass=$((npass + 1))
    else
        nfail=$((nfail + 1))
        echo "FAIL: attn $*: $why"
        sed 's/^/    stderr: /' "$T/stderr"
    fi
}

# help ARGS...: exits 0, prints a usage line on stdout, nothing on stderr.
help() {
    if "$ATTN" "$@" >"$T/stdout" 2>"$T/stderr" && grep -q "usage:" "$T/stdout" && [ ! -s "$T/stderr" ]; then
        npass=$((npass + 1))
    else
        nfail=$((nfail + 1))
        echo "FAIL: attn $* (help)"
    fi
}

# ---- Broken files ---------------------------------------------------------------------------
head -c 100 "$D/gqa_q.npy" >"$I/truncated.npy"         # header whole, data cut
head -c 30 "$D/gqa_q.npy" >"$I/truncheader.npy"         # header cut
printf 'this is not a numpy file\n' >"$I/garbage.npy"
: >"$I/empty.npy"
head -c 200 "$D/general_params.safetensors" >"$I/truncated.safetensors"
printf '\x10\x00\x00\x00\x00\x00\x00\x00{"W": nonsense}' >"$I/garbage.safetensors"
Q=$D/gqa_q.npy K=$D/gqa_k.npy V=$D/gqa_v.npy
q=$D/ok_q.npy k=$D/ok_k.npy v=$D/ok_v.npy # (3, 4), (5, 4), (5, 2)

# ---- The dispatcher -------------------------------------------------------------------------
err 2 '^usage: attn'
err 2 "^attn: unknown command 'frobnicate'" frobnicate
err 2 "^attn: unknown option '--frob'" --frob
help --help
help -h
help help attend
if "$ATTN" --version >"$T/stdout" 2>&1 && grep -Eq '^attn [0-9]+\.[0-9]+\.[0-9]+ \(isa: [a-z0-9]+' "$T/stdout"; then
    npass=$((npass + 1))
else
    nfail=$((nfail + 1))
    echo "FAIL: attn --version"
fi
for c in attend mha explain npy-diff; do
    help $c --help
    help $c -h
    grep -Eq "^  $c " <("$ATTN" --help) && npass=$((npass + 1)) || { nfail=$((nfail + 1)); echo "FAIL: $c not in attn --help"; }
done

# ---- attend: usage errors (exit 2) ------------------------------------------------------------
err 2 '^attn attend: missing the inputs Q.npy K.npy V.npy' attend
err 2 '^attn attend: missing the inputs Q.npy K.npy V.npy' attend "$q" "$k" -o "$O/o.npy"
err 2 "^attn attend: unexpected argument 'extra.npy'" attend "$q" "$k" "$v" extra.npy -o "$O/o.npy"
err 2 "^attn attend: unknown option '--bogus'" attend "$q" "$k" "$v" -o "$O/o.npy" --bogus
err 2 "^attn attend: unknown option '--bogus'" attend "$q" "$k" "$v" -o "$O/o.npy" --bogus=3
err 2 '^attn attend: option -o needs a value' attend "$q" "$k" "$v" -o
err 2 '^attn attend: option -o needs a value' attend "$q" "$k" "$v" -o --causal
err 2 '^attn attend: option --window expects an integer' attend "$q" "$k" "$v" -o "$O/o.npy" --window abc
err 2 '^attn attend: option --window expects an integer' attend "$q" "$k" "$v" -o "$O/o.npy" --window -1
err 2 '^attn attend: option --scale expects a finite number' attend "$q" "$k" "$v" -o "$O/o.npy" --scale nan
err 2 '^attn attend: option --scale expects a finite number' attend "$q" "$k" "$v" -o "$O/o.npy" --scale 1e99
err 2 '^attn attend: --scale 0' attend "$q" "$k" "$v" -o "$O/o.npy" --scale 0
err 2 '^attn attend: option --threads expects an integer' attend "$q" "$k" "$v" -o "$O/o.npy" --threads 0
err 2 '^attn attend: option --causal takes no value' attend "$q" "$k" "$v" -o "$O/o.npy" --causal=1
err 2 "^attn attend: unknown score 'softmax'" attend "$q" "$k" "$v" -o "$O/o.npy" --score softmax
err 2 '^attn attend: --score general needs its parameters' attend "$q" "$k" "$v" -o "$O/o.npy" --score general
err 2 '^attn attend: --params is used only by' attend "$q" "$k" "$v" -o "$O/o.npy" --params "$D/general_params.safetensors"
err 2 '^attn attend: --scale has no effect on the additive' attend "$q" "$k" "$v" -o "$O/o.npy" --score additive \
    --params "$D/additive_params.safetensors" --scale 2
err 2 '^attn attend: --dq, --dk and --dv need' attend "$q" "$k" "$v" -o "$O/o.npy" --dq "$O/dq.npy"
err 2 '^attn attend: --dout needs at least one' attend "$q" "$k" "$v" -o "$O/o.npy" --dout "$D/dot2d_o.npy"
err 2 '^attn attend: nothing to write' attend "$q" "$k" "$v"
err 2 '^attn attend: two outputs would be written to the same file' attend "$q" "$k" "$v" -o "$O/o.npy" \
    --weights-out "$O/o.npy"

# ---- attend: data errors (exit 1) -------------------------------------------------------------
err 1 "^attn attend: .*nope\.npy" attend nope.npy "$k" "$v" -o "$O/o.npy"
err 1 "^attn attend: .*bad_i32\.npy: queries Q must be float32 or float64, not i32" attend "$D/bad_i32.npy" "$k" "$v" -o "$O/o.npy"
err 1 "^attn attend: .*truncated\.npy" attend "$q" "$I/truncated.npy" "$v" -o "$O/o.npy"
err 1 "^attn attend: .*truncheader\.npy" attend "$q" "$k" "$I/truncheader.npy" -o "$O/o.npy"
err 1 "^attn attend: .*garbage\.npy" attend "$I/garbage.npy" "$k" "$v" -o "$O/o.npy"
err 1 "^attn attend: .*empty\.npy" attend "$q" "$k" "$I/empty.npy" -o "$O/o.npy"
err 1 "^attn attend: .*cos3d_lens\.npy: queries Q must be float32" attend "$D/cos3d_lens.npy" "$k" "$v" -o "$O/o.npy"
err 1 "^attn attend: keys .*ok_k\.npy \(5, 4\) and values .*gqa_v\.npy \(2, 2, 7, 6\) must agree" attend "$q" "$k" "$V" -o "$O/o.npy"
err 1 "^attn attend: queries .*gqa_q\.npy .* and keys .*general_k\.npy .* different batch sizes" \
    attend "$Q" "$D/general_k.npy" "$D/general_v.npy" -o "$O/o.npy"
err 1 "^attn attend: queries .*gqa_q\.npy have 4 heads and keys .*bad_k3\.npy 3" attend "$Q" "$D/bad_k3.npy" "$D/bad_v3.npy" -o "$O/o.npy"
err 1 "^attn attend: queries .*ok_q\.npy have size 4 and keys .*dot2d_k\.npy size 6" \
    attend "$q" "$D/dot2d_k.npy" "$D/dot2d_v.npy" -o "$O/o.npy"
err 1 "^attn attend: .*dot2d_mask\.npy: mask of shape \(4, 5\) does not broadcast to \(B, H, Nq, Nk\) = \(2, 4, 5, 7\)" \
    attend "$Q" "$K" "$V" -o "$O/o.npy" --mask "$D/dot2d_mask.npy"
err 1 "^attn attend: .*bad_i32\.npy: a mask must be bool" attend "$D/dot2d_q.npy" "$D/dot2d_k.npy" "$D/dot2d_v.npy" \
    -o "$O/o.npy" --mask "$D/bad_i32.npy"
err 1 "^attn attend: .*ok_q\.npy: key lengths must be int32 or int64, not f32" attend "$q" "$k" "$v" -o "$O/o.npy" --key-lengths "$q"
err 1 "^attn attend: .*cos3d_lens\.npy: key lengths have shape \(2,\), expected \(1,\)" attend "$q" "$k" "$v" -o "$O/o.npy" \
    --key-lengths "$D/cos3d_lens.npy"
err 1 "^attn attend: .*bad_lens\.npy: key length 9 of batch 0 is outside \[0, 5\]" attend "$q" "$k" "$v" -o "$O/o.npy" \
    --key-lengths "$D/bad_lens.npy"
err 1 "^attn attend: .*ok_q\.npy: the output's gradient has shape \(3, 4\), expected .* \(2, 4, 5, 6\)" \
    attend "$Q" "$K" "$V" -o "$O/o.npy" --dout "$q" --dq "$O/dq.npy"
err 1 "^attn attend: .*missing\.safetensors" attend "$q" "$k" "$v" -o "$O/o.npy" --score general --params missing.safetensors
err 1 "^attn attend: .*truncated\.safetensors" attend "$q" "$k" "$v" -o "$O/o.npy" --score general --params "$I/truncated.safetensors"
err 1 "^attn attend: .*garbage\.safetensors" attend "$q" "$k" "$v" -o "$O/o.npy" --score general --params "$I/garbage.safetensors"
err 1 "^attn attend: tensor 'W' not found in .*additive_params\.safetensors" attend "$q" "$k" "$v" -o "$O/o.npy" --score general \
    --params "$D/additive_params.safetensors"
err 1 "^attn attend: .*general_params\.safetensors: tensor 'W' has shape \(4, 6\), expected \(4, 4\)" attend "$q" "$k" "$v" \
    -o "$O/o.npy" --score general --params "$D/general_params.safetensors"
err 1 "^attn attend: .*additive_params\.safetensors: tensor 'Ua.weight' has shape \(6, 5\), expected \(6, 4\)" \
    attend "$q" "$k" "$v" -o "$O/o.npy" --score additive --params "$D/additive_params.safetensors"
err 1 "^attn attend: tensor 'Wa.weight' not found in .*general_params\.safetensors" attend "$q" "$k" "$v" -o "$O/o.npy" --score additive \
    --params "$D/general_params.safetensors"
# A write that fails: into a missing folder; and the second of two outputs, so the first is removed.
err 1 "^attn attend: .*no/such/dir/o\.npy" attend "$q" "$k" "$v" -o "$O/no/such/dir/o.npy"
err 1 "^attn attend: .*no/such/dir/p\.npy" attend "$q" "$k" "$v" -o "$O/o.npy" --weights-out "$O/no/such/dir/p.npy"
err 1 "^attn attend: .*no/such/dir/dv\.npy" attend "$Q" "$K" "$V" -o "$O/o.npy" --dout "$D/gqa_do.npy" --dq "$O/dq.npy" \
    --dv "$O/no/such/dir/dv.npy"

# ---- mha ------------------------------------------------------------------------------------
P=$D/mha_self_params.safetensors X=$D/mha_self_x.npy
err 2 '^attn mha: missing the input X.npy' mha --params "$P" --heads 2 -o "$O/o.npy"
err 2 '^attn mha: missing the weights' mha --heads 2 "$X" -o "$O/o.npy"
err 2 '^attn mha: missing the number of heads' mha --params "$P" "$X" -o "$O/o.npy"
err 2 '^attn mha: cross-attention needs both' mha --params "$P" --heads 2 "$X" "$X" -o "$O/o.npy"
err 2 '^attn mha: --per-head needs --weights-out' mha --params "$P" --heads 2 "$X" -o "$O/o.npy" --per-head
err 2 "^attn mha: unknown option '--need-weights'" mha --params "$P" --heads 2 "$X" -o "$O/o.npy" --need-weights
err 2 '^attn mha: option --heads expects an integer' mha --params "$P" --heads two "$X" -o "$O/o.npy"
err 2 '^attn mha: nothing to write' mha --params "$P" --heads 2 "$X"
err 1 '^attn mha: --heads 3: .*divisible' mha --params "$P" --heads 3 "$X" -o "$O/o.npy"
err 1 "^attn mha: .*mha_self_params\.safetensors: 'out_proj.weight' has shape \(8, 8\), but X .*ok_q\.npy has E = 4" \
    mha --params "$P" --heads 2 "$q" -o "$O/o.npy"
err 1 "^attn mha: .*general_params\.safetensors: no tensor 'out_proj.weight'" mha --params "$D/general_params.safetensors" \
    --heads 2 "$X" -o "$O/o.npy"
err 1 "^attn mha: .*mha_self_prefixed\.safetensors: no tensor 'out_proj.weight'; the file has .*: try --prefix 'encoder.layers.0.self_attn.'" \
    mha --params "$D/mha_self_prefixed.safetensors" --heads 2 "$X" -o "$O/o.npy"
err 1 "^attn mha: .*mha_cross_params\.safetensors.*proj_weight" mha --params "$D/mha_cross_params.safetensors" --heads 2 \
    "$D/mha_cross_x.npy" -o "$O/o.npy"
err 1 "^attn mha: .*truncated\.safetensors" mha --params "$I/truncated.safetensors" --heads 2 "$X" -o "$O/o.npy"
err 1 "^attn mha: .*truncated\.npy" mha --params "$P" --heads 2 "$I/truncated.npy" -o "$O/o.npy"
err 1 "^attn mha: .*bad_i32\.npy: the input X must be float32" mha --params "$P" --heads 2 "$D/bad_i32.npy" -o "$O/o.npy"
err 1 "^attn mha: .*mha_self_x\.npy.*must all be batched" mha --params "$D/mha_cross_params.safetensors" --heads 2 \
    "$X" "$D/mha_cross_key.npy" "$D/mha_cross_value.npy" -o "$O/o.npy"
err 1 "^attn mha: .*mha_self_x\.npy: a key padding mask must be bool \(True = padding\), not f32" \
    mha --params "$P" --heads 2 "$X" -o "$O/o.npy" --key-padding-mask "$X"
err 1 "^attn mha: .*mha_self_causal_mask\.npy: the key padding mask has shape \(5, 5\), expected \(2, 5\)" \
    mha --params "$P" --heads 2 "$X" -o "$O/o.npy" --key-padding-mask "$D/mha_self_causal_mask.npy"
err 1 "^attn mha: .*mha_self_kpm\.npy: the attention mask has shape \(2, 5\), expected \(Nq, Nk\) = \(5, 5\)" \
    mha --params "$P" --heads 2 "$X" -o "$O/o.npy" --attn-mask "$D/mha_self_kpm.npy"
err 1 "^attn mha: .*bad_i32\.npy: an attention mask must be bool" mha --params "$P" --heads 2 "$X" -o "$O/o.npy" \
    --attn-mask "$D/bad_i32.npy"
err 1 "^attn mha: .*no/dir/w\.npy" mha --params "$P" --heads 2 "$X" -o "$O/o.npy" --weights-out "$O/no/dir/w.npy"

# ---- explain, npy-diff ----------------------------------------------------------------------
err 2 "^attn explain: unknown score 'tfidf'" explain --score tfidf
err 2 "^attn explain: --query takes I, love, you or 4 comma-separated numbers" explain --query 1,2
err 2 "^attn explain: --query takes" explain --query hello
err 2 "^attn explain: --scale 0" explain --scale 0
err 2 "^attn explain: unexpected argument 'now'" explain now
err 2 '^attn npy-diff: missing the two arrays A.npy B.npy' npy-diff "$q"
err 2 '^attn npy-diff: tolerances must be >= 0' npy-diff "$q" "$q" --rtol -1
err 1 "^attn npy-diff: .*nope\.npy" npy-diff "$q" nope.npy
err 1 "^attn npy-diff: .*garbage\.npy" npy-diff "$I/garbage.npy" "$q"

# invalid environment settings are usage errors, not silently ignored
ATTN_THREADS=abc err 2 "^attn: ATTN_THREADS='abc' is not a number" --version
ATTN_THREADS=0 err 2 "^attn: ATTN_THREADS='0'" attend "$q" "$q" "$q" -o "$O/o.npy"
ATTN_ISA=sse9 err 2 "^attn: ATTN_ISA='sse9'" attend "$q" "$q" "$q" -o "$O/o.npy"

echo "$npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
