# experiments/transformer_common.sh: settings and helpers shared by the Transformer
# experiments (sourced, not run): transformer_parallel.sh, transformer_order.sh,
# transformer_length.sh, transformer_vs_torch.sh.
#
# Environment (all optional):
#   ATTN      the attn binary (default build/attn; or the first argument of each script)
#   DATA      the pairs (default ../shared/data/cmn-eng/cmn.txt beside the repository)
#   OUT       working directory (default experiments/out/transformer; git-ignored)
#   RESULTS   where tables and plots go (default experiments/results)
#   EPOCHS    training epochs of each translation model (default 10, as attention_vs_length.sh)
#   TR_ARGS   the Transformer's sizes (default: d_model 256, 4 heads, 2+2 layers, d_ff 384:
#             3.97M parameters, the size of the default recurrent attention model, 3.85M)
#   BUCKETS   source-length buckets (default 6,8,10,12,15,19, as attention_vs_length.sh)
#   BEAM      beam width of the test evaluations (default 5)
#   THREADS   threads of every run (default 2)
#   PY        python 3 with PyTorch, for transformer_vs_torch.sh (default /usr/bin/python3)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
ATTN=${1:-${ATTN:-$root/build/attn}}
DATA=${DATA:-$root/../shared/data/cmn-eng/cmn.txt}
OUT=${OUT:-$here/out/transformer}
RESULTS=${RESULTS:-$here/results}
EPOCHS=${EPOCHS:-10}
TR_ARGS=${TR_ARGS:---d-model 256 --heads 4 --layers 2 --ff 384}
BUCKETS=${BUCKETS:-6,8,10,12,15,19}
BEAM=${BEAM:-5}
THREADS=${THREADS:-2}
PY=${PY:-/usr/bin/python3}
[ -x "$ATTN" ] || { echo "$(basename "$0"): no attn binary at $ATTN (build first, or pass its path)" >&2; exit 2; }
mkdir -p "$OUT" "$RESULTS"
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

# The split of the translation data, made once by the seeded shuffle every experiment uses.
make_split() {
    [ -r "$DATA" ] || { echo "$(basename "$0"): cannot read the data $DATA (see ../shared/data/README.md)" >&2; exit 2; }
    if [ ! -s "$OUT/split/test.tsv" ]; then
        log "splitting $DATA"
        "$ATTN" train seq2seq --data "$DATA" --split-dir "$OUT/split" --split-only --out "$OUT/split" >&2
    fi
}

# train_by_epoch NAME FAMILY ARGS...: trains OUT/NAME one epoch per invocation (the schedule is
# that of EPOCHS epochs throughout: --max-steps stops each invocation at an epoch boundary),
# keeping a copy of the checkpoint after every epoch (OUT/NAME.ep/K) when KEEP_EPOCHS=1, and
# appending to
# OUT/NAME.epochs.csv: epoch, cumulative training seconds, tokens/s, greedy BLEU on the first
# 500 validation pairs. A model already trained is reused; an interrupted one resumes.
train_by_epoch() {
    local name=$1 family=$2
    shift 2
    local dir="$OUT/$name" csv="$OUT/$name.epochs.csv"
    if [ -f "$dir/.done" ]; then log "$name: trained already ($dir)"; return; fi
    local common=(--train "$OUT/split/train.tsv" --valid "$OUT/split/valid.tsv" --epochs "$EPOCHS" --threads "$THREADS"
                  --valid-bleu 0 --out "$dir")
    local per_epoch k=1 cum=0
    if [ ! -f "$dir/config.json" ]; then
        # one update to learn the number of batches per epoch; it counts as training time
        "$ATTN" train "$family" "${common[@]}" "$@" --max-steps 1 >"$dir.probe" 2>&1 || { cat "$dir.probe" >&2; exit 1; }
        echo "epoch,train_s,tokens_per_s,valid_bleu" >"$csv"
        cum=$(sed -n 's/.*(training \([0-9.]*\) s).*/\1/p' "$dir.probe")
    else
        k=$(($(wc -l <"$csv")))
        cum=$(tail -n 1 "$csv" | cut -d, -f2)
        [ "$k" -le 1 ] && cum=$(sed -n 's/.*(training \([0-9.]*\) s).*/\1/p' "$dir.probe")
    fi
    per_epoch=$(sed -n 's/^\([0-9]*\) batches of up to.*/\1/p' "$dir.probe")
    [ -n "$per_epoch" ] || { echo "cannot read the batches per epoch from $dir.probe" >&2; exit 1; }
    for ((; k <= EPOCHS; k++)); do
        log "$name: epoch $k/$EPOCHS"
        "$ATTN" train "$family" "${common[@]}" "$@" --resume --max-steps $((k * per_epoch)) --quiet >"$dir.last" 2>&1 ||
            { cat "$dir.last" >&2; exit 1; }
        local t tps bleu
        t=$(sed -n 's/.*(training \([0-9.]*\) s).*/\1/p' "$dir.last")
        tps=$(sed -n 's/.* \([0-9]*\) tokens\/s.*/\1/p' "$dir.last")
        cum=$(awk -v a="$cum" -v b="$t" 'BEGIN { printf "%.1f", a + b }')
        if [ "${KEEP_EPOCHS:-0}" = 1 ]; then # a whole copy: config.json checks every file it lists
            mkdir -p "$dir.ep/$k"
            cp "$dir"/config.json "$dir"/*.safetensors "$dir"/*.txt "$dir.ep/$k/"
        fi
        bleu=$("$ATTN" eval --model "$dir" --data "$OUT/split/valid.tsv" --limit 500 --beam 1 --threads "$THREADS" --quiet |
               sed -n 's/.*: BLEU \([0-9.]*\),.*/\1/p')
        echo "$k,$cum,$tps,$bleu" >>"$csv"
        log "$name: epoch $k: $cum s of training, $tps tokens/s, valid BLEU $bleu"
    done
    touch "$dir/.done"
}

# evaluate NAME DIR: BLEU on the test split by source-length bucket -> OUT/NAME.eval.{csv,txt}
evaluate() {
    local name=$1 dir=$2
    if [ -s "$OUT/$name.eval.csv" ] && [ "$OUT/$name.eval.csv" -nt "$dir/model.safetensors" ]; then return; fi
    log "evaluating $name on the test split (beam $BEAM)"
    "$ATTN" eval --model "$dir" --data "$OUT/split/test.tsv" --beam "$BEAM" --buckets "$BUCKETS" --label "$name" \
        --threads "$THREADS" --csv "$OUT/$name.eval.csv" --hyp-out "$OUT/$name.test.tsv" --quiet >"$OUT/$name.eval.txt"
    cat "$OUT/$name.eval.txt" >&2
}

# the overall test BLEU of an evaluated model
test_bleu() { awk -F, '$2 == "all" { print $6 }' "$OUT/$1.eval.csv"; }
