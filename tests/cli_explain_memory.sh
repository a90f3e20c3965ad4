#!/usr/bin/env bash
# tests/cli_explain_memory.sh: `attn explain --memory`, attention as a soft key -> value lookup.
#
#   bash tests/cli_explain_memory.sh /path/to/attn
#
# Its numbers (`--json`: scores, weights, soft and hard lookups, d soft / d query and d soft /
# d keys, the sharpening table) are compared with references computed independently in float64
# by PyTorch (tests/data/cli/explain_memory_*.json, written by tools/gen_explain_memory_ref.py):
# every number within rtol 1e-4, atol 1e-4, every other token exactly. The walk-through's key
# sentences and numbers are pinned by grep, and bad options must exit 2 with a clear message.
# Prints "N passed, N failed" last and exits non-zero on any failure.
set -u
[ $# -ge 1 ] || { echo "usage: bash cli_explain_memory.sh /path/to/attn" >&2; exit 2; }
ATTN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
cd "$(dirname "$0")" || exit 2
D=data/cli
T=$(mktemp -d) || exit 2
trap 'rm -rf "$T"' EXIT
npass=0
nfail=0

pass() { npass=$((npass + 1)); }
fail() {
    nfail=$((nfail + 1))
    echo "FAIL: $*"
    [ -s "$T/log" ] && sed 's/^/    /' "$T/log" | head -20
}

# json_close A B: the same tokens once whitespace is dropped, numbers within rtol/atol 1e-4.
json_close() {
    awk -v rtol=1e-4 -v atol=1e-4 '
        function abs(x) { return x < 0 ? -x : x }
        function toks(s, arr,   n) {
            n = 0
            gsub(/[ \t\r]/, "", s)
            while (match(s, /-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?/)) {
                if (RSTART > 1) arr[++n] = "s:" substr(s, 1, RSTART - 1)
                arr[++n] = "n:" substr(s, RSTART, RLENGTH)
                s = substr(s, RSTART + RLENGTH)
            }
            if (s != "") arr[++n] = "s:" s
            return n
        }
        FNR == 1 { f++ }
        { text[f] = text[f] $0 }
        END {
            na = toks(text[1], a)
            nb = toks(text[2], b)
            if (na != nb) { print "different structure: " na " vs " nb " tokens"; exit 1 }
            bad = 0
            for (i = 1; i <= na; i++) {
                if (substr(a[i], 1, 2) == "n:" && substr(b[i], 1, 2) == "n:") {
                    x = substr(a[i], 3) + 0
                    y = substr(b[i], 3) + 0
                    if (abs(x - y) > atol + rtol * abs(y)) { print "token " i ": " x " vs " y; bad++ }
                } else if (a[i] != b[i]) {
                    print "token " i ": " a[i] " vs " b[i]; bad++
                }
            }
            exit (bad > 0)
        }' "$1" "$2"
}

# against NAME ARGS...: attn explain --memory ARGS --json matches the PyTorch reference NAME.
against() {
    local name=$1
    shift
    if ! "$ATTN" explain --memory "$@" --json >"$T/$name.json" 2>"$T/log"; then
        fail "$name: attn explain --memory $* --json exited non-zero"
        return
    fi
    if json_close "$T/$name.json" "$D/explain_memory_$name.json" >"$T/log" 2>&1; then pass; else
        fail "$name: attn explain --memory $* --json differs from $D/explain_memory_$name.json"
    fi
}

# has NAME PATTERN...: every fixed-string PATTERN occurs in $T/out.
has() {
    local name=$1
    shift
    for pat in "$@"; do
        if grep -qF -- "$pat" "$T/out"; then pass; else cp "$T/out" "$T/log"; fail "$name: no '$pat'"; fi
    done
}

# usage_error NAME MESSAGE ARGS...: attn ARGS exits 2 with MESSAGE on stderr and nothing on stdout.
usage_error() {
    local name=$1 msg=$2
    shift 2
    "$ATTN" "$@" >"$T/out" 2>"$T/log"
    local rc=$?
    if [ $rc -eq 2 ] && grep -qF -- "$msg" "$T/log" && [ ! -s "$T/out" ]; then pass; else
        fail "$name: attn $* exited $rc (want 2 and '$msg')"
    fi
}

# ---- The numbers, against PyTorch ----------------------------------------------------------
against default
against lemon_dot --query lemon --score dot --scale 2
against nomatch --query 1,1,0,0
against longer --query 2,0,2,0 --scale 3
against yours_scaled --query 0.5,0.2,1,0.3 --score scaled
# The comparison can fail: two different cases must differ.
if json_close "$T/default.json" "$D/explain_memory_longer.json" >"$T/log" 2>&1; then
    fail "json_close passed two different cases"
else pass; fi

# ---- The walk-through --------------------------------------------------------------------------
if "$ATTN" explain --memory >"$T/out" 2>"$T/log"; then pass; else fail "attn explain --memory exited $?"; fi
has walk "Attention as a memory: soft addressing" "Step 1: similarities, by the cosine" \
    "  strawberry  q·k =  2.00   / (1.41 × 1.41) =  1.000   × 5 =  5.000" \
    "  strawberry   5.000    0.854   ████" \
    "  soft:   c = Σ_j a_j v_j                 37.0         52.3       5.3" \
    "  hard:   argmax_j s_j                    32.0         59.0       4.9   strawberry" \
    "strawberry: found at its exact address" \
    "The soft answer is 85% strawberry and 15% the other fruits" \
    "0.9993     0.0003     0.0000     0.0003   │        32.0   59.0    4.9 │   0.1%   ← within 1% of hard" \
    "From β = 16 on, the soft lookup is within 1% of the hard one" \
    "Ask for a fruit that is sweet and sour, q = (1, 1, 0, 0): the store has none." \
    "hard, exact:   not found" \
    "hard, argmax:  strawberry, but only because it comes first: 4 keys tie at s = 2.500" \
    "weights 0.25 0.25 0.25 0.25, the answer (49.0 kcal, 33.8 mg, 5.8 g)" \
    "2.00 bits of a possible 2.00" "0.77 bits for the query strawberry above" \
    "    kcal                 3.768    1.470   -3.768    9.006" \
    "d kcal / d q_yellow = 9.006 says that raising the query's" "by about +0.90" \
    "    banana               4.560    0.000    9.120   -4.560" \
    "  yellow          9.006               9.007  │              0.000"
# A query that matches no key, with a tie at the top: soft never becomes hard, and a nudge of
# the query makes the hard lookup jump.
if "$ATTN" explain --memory --query 1,1,0.1,0 >"$T/out" 2>"$T/log"; then pass; else fail "--query 1,1,0.1,0 exited $?"; fi
has tie "query q (yours)" "no key equals (1, 1, 0.1, 0)" "Your query (1, 1, 0.1, 0) equals no key" \
    "never becomes hard here: 2 keys tie" "jumps: cranberry → strawberry" "1.99 bits of a possible 2.00"
# Other scores and an exact lookup that misses: 2,0,2,0 points where strawberry does.
if "$ATTN" explain --memory --query 2,0,2,0 --score dot >"$T/out" 2>"$T/log"; then pass; else fail "--score dot exited $?"; fi
has dot "Step 1: similarities, by the dot product" "no key equals (2, 0, 2, 0)" "need only" \
    "hard:   argmax_j s_j                    32.0         59.0       4.9   strawberry"
if "$ATTN" explain --memory --query lemon --score scaled >"$T/out" 2>"$T/log"; then pass; else fail "--score scaled exited $?"; fi
has scaled "Step 1: similarities, by the scaled dot product" "β = 0.5" "lemon: found at its exact address"

# ---- Help -------------------------------------------------------------------------------------
if "$ATTN" explain --memory --help >"$T/out" 2>"$T/log"; then pass; else fail "explain --memory --help exited $?"; fi
has help "usage: attn explain --memory" "--json" "inverse temperature"
"$ATTN" explain --help >"$T/out" 2>&1
has explain-help "--memory"
"$ATTN" --help >"$T/out" 2>&1
has attn-help "--memory: attention as a soft key -> value lookup"

# ---- Errors: exit 2, one clear line ---------------------------------------------------------
usage_error unknown-name "--query takes strawberry, banana, lemon, cranberry or 4 comma-separated numbers" \
    explain --memory --query apple
usage_error short-vector "not '1,0,1'" explain --memory --query 1,0,1
usage_error long-vector "not '1,0,1,0,1'" explain --memory --query 1,0,1,0,1
usage_error bad-number "not '1,x,1,0'" explain --memory --query 1,x,1,0
usage_error scale-zero "--scale must be positive" explain --memory --scale 0
usage_error scale-negative "--scale must be positive" explain --memory --scale -2
usage_error scale-text "--scale" explain --memory --scale hot
usage_error score-general "--memory takes --score cosine, dot or scaled" explain --memory --score general
usage_error json-alone "unknown option '--json'" explain --json

: >"$T/log"
echo "$npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
