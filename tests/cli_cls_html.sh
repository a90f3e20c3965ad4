#!/usr/bin/env bash
# tests/cli_cls_html.sh: the page of `attn classify --attention-html`, for a TF-IDF model
# (NB-SVM: each word's share of the n-gram contributions) and a neural one (attention pooling:
# the pooling weights), in a real browser: Debian's chromium, headless.
#
#   bash tests/cli_cls_html.sh /path/to/attn
#
# Both models are trained in a second on tests/data/cls/reviews.tsv; the same three texts (one
# of them an attempt at HTML injection: a <script> element, quotes, an <img onerror>) are
# classified into one page per model, and chromium checks that each page
#   - loads and runs its script without an error (the page's own #selftest, read back with
#     --dump-dom), with the coloured tokens present: as many as --show-attention prints lines
#     for the same texts, the same tokens in the same order on both pages;
#   - shows the label and number that attn classify prints, and a legend;
#   - carries the injected text as text: no element, attribute or script of it in the DOM.
# Also: TF-IDF colours are signed (for and against), the attention weights of a text sum to 1,
# and a page that cannot be written leaves no file behind. Without chromium the test prints
# "skipped: chromium not found" and exits 77, which ctest reports as skipped.
set -u
[ $# -ge 1 ] || { echo "usage: bash cli_cls_html.sh /path/to/attn" >&2; exit 2; }
ATTN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
cd "$(dirname "$0")" || exit 2
. ./chromium.sh
npass=0
nfail=0
check() { local n=$1; shift; if "$@"; then npass=$((npass + 1)); else nfail=$((nfail + 1)); echo "FAIL: $n"; fi; }

DATA=data/cls/reviews.tsv
"$ATTN" train classifier --model nbsvm --data "$DATA" --out "$T/nbsvm" --epochs 20 --batch 8 --lr 0.05 --log-every 0 \
    --threads 1 --quiet >"$T/log" 2>&1 || { cat "$T/log"; exit 1; }
"$ATTN" train classifier --model attn-pool --data "$DATA" --out "$T/attn-pool" --epochs 30 --batch 8 --lr 0.01 --log-every 0 \
    --threads 1 --embed 16 --hidden 16 --min-count 1 --quiet >"$T/log" 2>&1 || { cat "$T/log"; exit 1; }
INJECT='<script>document.title="pwned"</script> "quoted" & <img src=x onerror="document.body.id=1"> good'
TEXTS=("a wonderful and charming film , really" "the plot was dull and tedious" "$INJECT")
# The tokens as the models read them: one line each after each verdict of --show-attention.
"$ATTN" classify --model "$T/attn-pool" --show-attention "${TEXTS[@]}" | grep -v '	' | awk '{ print $NF }' >"$T/tokens"
want=$(wc -l <"$T/tokens")

for m in nbsvm attn-pool; do
    "$ATTN" classify --model "$T/$m" --attention-html "$T/$m.html" "${TEXTS[@]}" >"$T/$m.out" 2>"$T/err"
    check "$m: classify --attention-html exits 0 ($(head -1 "$T/err"))" [ $? -eq 0 ]
    check "$m: the verdicts still printed" [ "$(wc -l <"$T/$m.out")" -eq 3 ]
    browse --dump-dom "file://$T/$m.html#selftest" >"$T/$m.dom"
    check "$m: the page's script runs without an error ($(grep -o 'selftest: [^<]*' "$T/$m.dom"))" \
        grep -q "selftest: ok, $want tokens in 3 texts" "$T/$m.dom"
    # each token's text, in order, from the DOM
    grep -o '<span class="tok"[^>]*>[^<]*</span>' "$T/$m.dom" | sed 's/<[^>]*>//g; s/&lt;/</g; s/&gt;/>/g; s/&quot;/"/g; s/&amp;/\&/g' >"$T/$m.tok"
    check "$m: $want coloured tokens, as --show-attention reads the texts" cmp -s "$T/tokens" "$T/$m.tok"
    check "$m: every token coloured" [ "$(grep -o '<span class="tok" style="background:#[0-9a-f]\{6\}' "$T/$m.dom" | wc -l)" -eq "$want" ]
    label=$(head -1 "$T/$m.out" | cut -f1) num=$(head -1 "$T/$m.out" | cut -f2)
    check "$m: label and number of the first text" grep -q "1\\. <b>$label</b> [a-zA-Z ]* $num</div>" "$T/$m.dom"
    check "$m: a legend" grep -q '<div id="legend">Each [a-z]*.s ' "$T/$m.dom"
    check "$m: the injected text as text" grep -qF '&lt;script&gt;document.title="pwned"&lt;/script&gt; "quoted" &amp; &lt;img' "$T/$m.dom"
    check "$m: no injected element or script ran" [ "$(grep -c '<script' "$T/$m.dom")" -eq 2 ] && ! grep -q '<img\|<title>pwned\|<body id=' "$T/$m.dom"
done
check "both pages: the same tokens, in the same order" cmp -s "$T/nbsvm.tok" "$T/attn-pool.tok"
w() { grep -o '<span class="tok"[^>]*' "$1" | sed 's/.*data-w="\([^"]*\)".*/\1/'; }
check "nbsvm: signed shares, for and against" [ "$(w "$T/nbsvm.dom" | grep -c '^-')" -gt 0 -a "$(w "$T/nbsvm.dom" | grep -vc '^-')" -gt 0 ]
check "nbsvm: the top n-grams listed" grep -q '<ol class="terms"' "$T/nbsvm.dom"
check "attn-pool: the weights of a text sum to 1" awk 'NR <= 7 { s += $1; if ($1 < 0) bad = 1 } END { exit !(!bad && s > 0.998 && s < 1.002) }' <(w "$T/attn-pool.dom")
"$ATTN" classify --model "$T/nbsvm" --attention-html "$T/none/page.html" "good" >/dev/null 2>"$T/err"
check "a page that cannot be written: exit 1 with a message" [ $? -eq 1 -a -s "$T/err" ]
check "a page that cannot be written: no file left" [ ! -e "$T/none" ]
printf 'good fun\n\nawful\n' | "$ATTN" classify --model "$T/nbsvm" --attention-html "$T/stdin.html" >/dev/null 2>&1
check "stdin: a blank line skipped, the page has the other two" [ $? -eq 1 ] && [ "$(grep -o '<div class="text"' "$T/stdin.html" | wc -l)" -eq 2 ]
ls "$T" | grep -q '\.tmp\.' && check "no temporary file left" false

echo "$npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
