#!/usr/bin/env bash
# The shared library exports the public API only: every defined dynamic symbol is attn_*, and
# none is attn__* (the internal prefix). Usage: exports.sh path/to/libattn.so
set -u
lib=${1:?usage: exports.sh libattn.so}
command -v nm >/dev/null || { echo "SKIP: nm not found"; exit 77; }
syms=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[A-Z]$/ && $2 != "A" { print $3 }') || exit 1
# The check must be able to see the API at all: a known public function is exported.
grep -qx attn_forward <<<"$syms" || { echo "FAIL: attn_forward is not exported by $lib"; exit 1; }
bad=$(grep -v '^attn_' <<<"$syms"; grep '^attn__' <<<"$syms")
# The C runtime's own markers are not ours.
bad=$(grep -vxE '_init|_fini|_edata|_end|__bss_start' <<<"$bad")
if [ -n "$bad" ]; then
    echo "FAIL: $lib exports symbols outside the public API:"
    echo "$bad"
    exit 1
fi
echo "ok: $(wc -l <<<"$syms") symbols, all public attn_*"
