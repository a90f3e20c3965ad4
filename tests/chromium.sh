# tests/chromium.sh: what the browser tests (cli_html.sh, cli_cls_html.sh) share, sourced after
# they cd into tests/: CHROME, the first of Debian's or Google's browsers found (without one:
# "skipped: chromium not found" and exit 77, which ctest reports as skipped), T a temporary
# directory removed at exit, and browse ARGS... running it headless with its log in
# $T/chrome.log.
CHROME=""
for c in chromium chromium-browser google-chrome; do
    command -v "$c" >/dev/null 2>&1 && { CHROME=$c; break; }
done
if [ -z "$CHROME" ]; then
    echo "skipped: chromium not found (Debian: apt-get install chromium)"
    exit 77
fi
T=$(mktemp -d) || exit 2
trap 'rm -rf "$T"' EXIT
browse() { # extra chromium arguments...
    timeout 90 "$CHROME" --headless --no-sandbox --disable-gpu --no-first-run --disable-extensions \
        --user-data-dir="$T/profile" "$@" 2>"$T/chrome.log"
}
