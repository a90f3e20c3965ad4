#!/usr/bin/env bash
# A peer, side by side: the same Transformer trained by attn and by PyTorch
# (bench/torch_transformer.py: torch.nn.Transformer with the same sizes, embeddings, tied
# generator, batch, Adam and schedule, label smoothing and clipping) for a fixed number of
# steps on the same data, in one run, alternating the two programs ROUNDS times so that both
# meet the same machine load; tokens per second (source + target tokens, <eos> included) over
# the steps after the first WARM (memory arenas and caches warming up).
# The data is synthetic: random tokens with the lengths of the Chinese-English training split
# and its vocabulary sizes (so batches have the real shapes and output layer), space-split
# by both programs; see bench/torch_transformer.py --write-synthetic.
# PyTorch runs with the same threads and OMP_WAIT_POLICY=PASSIVE (its spinning OpenMP threads
# are several times slower on a shared machine); its dropout also drops attention weights,
# which attn's fused attention does not, so the runs are repeated with dropout 0, where the
# two compute the same function.
#
# usage: experiments/transformer_vs_torch.sh [path/to/attn]     (settings: transformer_common.sh)
#   STEPS (default 60), WARM (default 5), ROUNDS (default 3), DROPOUTS (default "0.1 0")
# outputs: RESULTS/transformer_vs_torch.{csv,md,svg}
source "$(dirname "$0")/transformer_common.sh"
STEPS=${STEPS:-60}
WARM=${WARM:-5}
ROUNDS=${ROUNDS:-3}
DROPOUTS=${DROPOUTS:-0.1 0}
make_split
syn="$OUT/synthetic.tsv"
[ -s "$syn" ] || "$PY" "$root/bench/torch_transformer.py" --write-synthetic "$syn" --like "$OUT/split/train.tsv"
read -r -a A <<<"$TR_ARGS"
# the same sizes for PyTorch: --d-model, --heads, --layers, --ff carry over
raw="$OUT/vs_torch_runs.csv"
echo "round,dropout,program,tokens_per_s" >"$raw"
for d in $DROPOUTS; do
    for r in $(seq 1 "$ROUNDS"); do
        rm -rf "$OUT/vs_torch_ck"
        "$ATTN" train transformer --train "$syn" --direction plain "${A[@]}" --dropout "$d" --batch 64 --threads "$THREADS" \
            --out "$OUT/vs_torch_ck" --max-steps $((STEPS + WARM)) --timing-skip "$WARM" --valid-bleu 0 --quiet >"$OUT/vs_attn.log" 2>&1 ||
            { cat "$OUT/vs_attn.log" >&2; exit 1; }
        a=$(sed -n 's/.* \([0-9]*\) tokens\/s.*/\1/p' "$OUT/vs_attn.log")
        OMP_WAIT_POLICY=PASSIVE "$PY" "$root/bench/torch_transformer.py" --data "$syn" "${A[@]}" --dropout "$d" --batch 64 \
            --threads "$THREADS" --steps "$STEPS" --warmup-steps "$WARM" >"$OUT/vs_torch.log" 2>&1 || { cat "$OUT/vs_torch.log" >&2; exit 1; }
        t=$(sed -n 's/.* \([0-9]*\) tokens\/s.*/\1/p' "$OUT/vs_torch.log")
        log "dropout $d, round $r: attn $a tokens/s, torch $t tokens/s"
        echo "$r,$d,attn,$a" >>"$raw"
        echo "$r,$d,torch,$t" >>"$raw"
    done
done
tv=$("$PY" -c "import torch; print(torch.__version__)")
csv="$RESULTS/transformer_vs_torch.csv"
md="$RESULTS/transformer_vs_torch.md"
awk -F, 'NR > 1 { v[$2, $3, $1] = $4; if (!($2 in seen)) { seen[$2] = 1; ds[++n] = $2 }; if ($1 > R) R = $1 }
    function median(d, p,   i, j, x, t, k) { k = 0; for (i = 1; i <= R; i++) x[++k] = v[d, p, i]
        for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t }
        return k % 2 ? x[(k + 1) / 2] : (x[k / 2] + x[k / 2 + 1]) / 2 }
    BEGIN { print "dropout,attn_tokens_per_s,torch_tokens_per_s,speedup,rounds" }
    END { for (i = 1; i <= n; i++) { a = median(ds[i], "attn"); t = median(ds[i], "torch")
        printf "%s,%.0f,%.0f,%.2f,%d\n", ds[i], a, t, a / t, R } }' "$raw" >"$csv"
{
    echo "Training throughput of the same Transformer ($TR_ARGS, batch 64, Adam) in attn and in PyTorch $tv"
    echo "(torch.nn.Transformer), $THREADS threads each, $STEPS timed steps after $WARM, median of $ROUNDS alternating rounds"
    echo "on the same machine in one run; source + target tokens per second."
    echo
    echo "| dropout | attn tokens/s | PyTorch tokens/s | attn / PyTorch |"
    echo "|---:|---:|---:|---:|"
    awk -F, 'NR > 1 { printf "| %s | %s | %s | %sx |\n", $1, $2, $3, $4 }' "$csv"
    echo
    echo "Every round: $(awk -F, 'NR > 1 { printf "%s%s %s %s", sep, $3, $2, $4; sep = "; " }' "$raw")."
} >"$md"
"$PY" "$here/transformer_plot.py" bars "$csv" "$RESULTS/transformer_vs_torch.svg" --label dropout \
    --values attn_tokens_per_s,torch_tokens_per_s --names "attn,PyTorch $tv" --label-prefix "dropout " \
    --title "Training tokens/s of the same Transformer: attn and PyTorch" --ylabel "tokens/s"
log "done: $csv, $md, $RESULTS/transformer_vs_torch.svg"
cat "$md"
