#!/usr/bin/env bash
# packaging/gen-man.sh: the man pages, made by help2man from the attn command's own --help so
# that they cannot drift from it:
#   attn(1)              attn --help
#   attn-CMD(1)          attn CMD --help, for every command that attn --help lists
#   attn-CMD-MODEL(1)    attn CMD MODEL --help, for every model that attn CMD --help lists
#                        under "models:" (attn train seq2seq, ...)
# Pages are written gzipped into OUTDIR (man1/), attn.1.gz last (the build's stamp).
#
#   bash packaging/gen-man.sh path/to/attn OUTDIR [help2man]
set -eu
# _attn_list, the reading of a help text's lists, is the bash completion's.
. "$(dirname "$0")/attn.bash"
attn=$1
out=$2
help2man=${3:-help2man}
version=$("$attn" --version | awk '{print $2}')
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"
rm -f "$out"/attn*.1.gz

# page NAME SUMMARY SEEALSO ARGS...: NAME.1.gz from `attn ARGS --help`.
page() {
    name=$1 summary=$2 seealso=$3
    shift 3
    printf '#!/bin/sh\nexec "%s" %s "$@"\n' "$attn" "$*" >"$tmp/$name"
    chmod +x "$tmp/$name"
    printf '[SEE ALSO]\n%s\n' "$seealso" >"$tmp/$name.h2m"
    "$help2man" --locale=C.UTF-8 --no-info --section=1 --version-string="$version" --source="attn $version" \
        --name="$summary" --include="$tmp/$name.h2m" --output="$tmp/$name.1" "$tmp/$name"
    gzip -9n <"$tmp/$name.1" >"$out/$name.1.gz"
}

# The command must run here before any page is made from it. Where it does not (a crash, a
# signal, an error), the build fails saying why, not on an empty list further down.
set +e
"$attn" --help >"$tmp/help" 2>"$tmp/help.err"
status=$?
set -e
_attn_list 'commands|utilities' <"$tmp/help" >"$tmp/commands"
if [ "$status" -ne 0 ] || [ ! -s "$tmp/commands" ]; then
    {
        echo "gen-man: '$attn --help' exited with status $status$( [ "$status" -gt 128 ] && echo " (signal $((status - 128)): $(kill -l $((status - 128)) 2>/dev/null))") and listed $(wc -l <"$tmp/commands") commands"
        echo "gen-man: its stderr: $(head -c 2000 "$tmp/help.err")"
        echo "gen-man: its first lines: $(head -n 5 "$tmp/help")"
        echo "gen-man: CPU: $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null)"
    } >&2
    exit 1
fi
while IFS=$'\t' read -r cmd summary; do
    page "attn-$cmd" "$summary" ".BR attn (1)" "$cmd"
    printf '.BR attn\\-%s (1),\n' "$cmd" >>"$tmp/see"
    "$attn" "$cmd" --help | _attn_list models >"$tmp/models"
    while IFS=$'\t' read -r model msummary; do
        page "attn-$cmd-$model" "$msummary" ".BR attn\\-$cmd (1)" "$cmd" "$model"
    done <"$tmp/models"
done <"$tmp/commands"

# attn(1) itself, last: it names every other page, and says where the installed files are.
cat >"$tmp/files" <<'TXT'
[FILES]
.TP
.I share/attn/models/zh\-en\-small
(under the installation prefix: /usr for the Debian package) a small Chinese to English
translator with additive attention, e.g.
.B attn translate \-\-model /usr/share/attn/models/zh\-en\-small \(dq我爱你。\(dq
.TP
.I lib/pkgconfig/attn.pc, lib/cmake/attn/
the library for C programs: pkg\-config \-\-cflags \-\-libs attn, or find_package(attn) and
the target attn::attn in CMake
TXT
printf '#!/bin/sh\nexec "%s" "$@"\n' "$attn" >"$tmp/attn"
chmod +x "$tmp/attn"
{ echo '[SEE ALSO]'; sed '$s/,$//' "$tmp/see"; cat "$tmp/files"; } >"$tmp/attn.h2m"
"$help2man" --locale=C.UTF-8 --no-info --section=1 --version-string="$version" --source="attn $version" \
    --name="the attention mechanism in C" --include="$tmp/attn.h2m" --output="$tmp/attn.1" "$tmp/attn"
gzip -9n <"$tmp/attn.1" >"$out/attn.1.gz"
