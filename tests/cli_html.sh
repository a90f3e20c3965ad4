#!/usr/bin/env bash
# tests/cli_html.sh: the attention explorer page of `attn translate --attention-html`, in a
# real browser: Debian's chromium, headless.
#
#   bash tests/cli_html.sh /path/to/attn
#
# A tiny Transformer (2 layers, 4 heads) is trained for a few steps on reverse.tsv, two
# sentences are translated into one page, and chromium checks that
#   - the page loads and runs its script (no network, no other file): the tokens are in the
#     table it draws;
#   - switching the head, the kind and the layer through the controls' change events redraws
#     the picture (the page's own #selftest, read back with --dump-dom);
#   - two states reached through the address (#s=..&kind=..&layer=..&head=..) give two
#     different screenshots.
# Without chromium the test prints "skipped: chromium not found" and exits 77, which ctest
# reports as skipped.
# (Named cli_*.sh so that CMake registers it with the other shell tests.)
set -u
[ $# -ge 1 ] || { echo "usage: bash cli_html.sh /path/to/attn" >&2; exit 2; }
ATTN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
cd "$(dirname "$0")" || exit 2
. ./chromium.sh
npass=0
nfail=0
pass() { npass=$((npass + 1)); }
fail() {
    nfail=$((nfail + 1))
    echo "FAIL: $*"
}

"$ATTN" train transformer --train data/transformer/reverse.tsv --direction plain --out "$T/ck" --d-model 32 --heads 4 \
    --ff 64 --layers 2 --max-steps 30 --valid-bleu 0 --quiet --threads 2 >"$T/log" 2>&1 || { cat "$T/log"; exit 1; }
"$ATTN" translate --model "$T/ck" --attention-html "$T/page.html" "a b c d" "h g f" >"$T/log" 2>&1 || { cat "$T/log"; exit 1; }
PAGE="file://$T/page.html"

# 1. loads, draws the tokens, and its controls redraw the picture
browse --dump-dom "$PAGE#selftest" >"$T/dom.html"
if grep -q "selftest: ok" "$T/dom.html"; then pass; else
    fail "selftest: $(grep -A5 'id="selftest"' "$T/dom.html" | head -6)"
fi
for tok in '&lt;eos&gt;' '>a<' '>d<'; do
    if grep -q "<table class=\"map\"" "$T/dom.html" && grep -q "$tok" "$T/dom.html"; then pass; else fail "token $tok not drawn"; fi
done
for check in "head switch changes the picture: true" "kind switch changes the picture: true" "layer switch changes the picture: true"; do
    if grep -q "$check" "$T/dom.html"; then pass; else fail "$check"; fi
done

# 2. two heads reached through the address give two pictures
browse --window-size=800,600 --screenshot="$T/h0.png" "$PAGE#s=0&kind=encoder%20self-attention&layer=1&head=0" >/dev/null
browse --window-size=800,600 --screenshot="$T/h1.png" "$PAGE#s=0&kind=encoder%20self-attention&layer=1&head=1" >/dev/null
if [ -s "$T/h0.png" ] && [ -s "$T/h1.png" ]; then
    pass
    if cmp -s "$T/h0.png" "$T/h1.png"; then fail "head 1 and head 2 look the same"; else pass; fi
else
    fail "no screenshot ($(tail -2 "$T/chrome.log"))"
fi

echo "$npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
