#!/usr/bin/env bash
# Data-parallel training (issue 16): the Transformer trained by one process, by 2 processes
# (mpirun -np 2) and by 4 processes stopped half-way and resumed by 2, all with the same global
# batch, seed and data; the per-step training losses side by side, and the largest difference
# of the final weights. Dropout is 0: each process draws its own dropout masks, so only without
# dropout is the P-process run the one-process run (up to the rounding of the gradient sum).
#
#   experiments/dp_loss_curve.sh [attn binary]
# Writes experiments/results/dp_loss_curve.{csv,svg,md}. Environment as transformer_common.sh,
# and DP_ARGS (the model: default d_model 128, 4 heads, 2+2 layers, d_ff 256), STEPS (default
# 300), BATCH (default 64).
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/transformer_common.sh"
DP_ARGS=${DP_ARGS:---d-model 128 --heads 4 --layers 2 --ff 256}
STEPS=${STEPS:-300}; BATCH=${BATCH:-64}
command -v mpirun >/dev/null || { echo "$(basename "$0"): mpirun not found (openmpi-bin)" >&2; exit 2; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
make_split
common=(--train "$OUT/split/train.tsv" --valid "$OUT/split/valid.tsv" $DP_ARGS --dropout 0 --batch "$BATCH" --epochs 1
        --valid-bleu 0 --log-every 1)
rm -rf "$OUT"/dp1 "$OUT"/dp2 "$OUT"/dp42
log "one process, 2 threads"
"$ATTN" train transformer "${common[@]}" --max-steps "$STEPS" --threads 2 --out "$OUT/dp1" 2> "$OUT/dp1.log"
log "mpirun -np 2, 1 thread each"
mpirun --oversubscribe -np 2 "$ATTN" train transformer "${common[@]}" --max-steps "$STEPS" --threads 1 --out "$OUT/dp2" 2> "$OUT/dp2.log"
log "mpirun -np 4 for $((STEPS / 2)) steps, then resumed by mpirun -np 2"
mpirun --oversubscribe -np 4 "$ATTN" train transformer "${common[@]}" --max-steps $((STEPS / 2)) --threads 1 --out "$OUT/dp42" 2> "$OUT/dp42.log"
mpirun --oversubscribe -np 2 "$ATTN" train transformer "${common[@]}" --max-steps "$STEPS" --threads 1 --out "$OUT/dp42" --resume 2>> "$OUT/dp42.log"
grep -h "updates in" "$OUT"/dp*.log >&2 || true
"$PY" - "$OUT" "$RESULTS" "$STEPS" "$BATCH" "$DP_ARGS" <<'PY'
import json, re, struct, sys
from array import array
out, res, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
def losses(path):
    d = {}
    for line in open(path):
        m = re.match(r"epoch \d+/\d+ step (\d+)/\d+ loss ([0-9.]+)", line)
        if m: d[int(m.group(1))] = float(m.group(2))
    return d
def weights(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n)); body = f.read()
    w = {}
    for k, v in head.items():
        if k == "__metadata__": continue
        a = array("f"); a.frombytes(body[v["data_offsets"][0]:v["data_offsets"][1]]); w[k] = a
    return w
runs = [("one process", "dp1"), ("2 processes", "dp2"), ("4 then 2 processes (resumed)", "dp42")]
L = {name: losses(f"{out}/{d}.log") for name, d in runs}
with open(f"{res}/dp_loss_curve.csv", "w") as f:
    f.write("step,run,train_loss\n")
    for name, _ in runs:
        for s in sorted(L[name]): f.write(f"{s},{name},{L[name][s]:.4f}\n")
base = weights(f"{out}/dp1/model.safetensors")
md = [f"Transformer ({sys.argv[5]}, dropout 0), {steps} steps of global batch {sys.argv[4]} on the cmn-eng split: one process vs "
      "data-parallel (experiments/dp_loss_curve.sh). Weights compared after the last step.", "",
      "| run | steps | the same loss (4 decimals) up to step | max abs loss difference | max abs weight difference | max weight |",
      "|---|---|---|---|---|---|"]
for name, d in runs[1:]:
    common = [s for s in L[name] if s in L["one process"]]
    dl = max(abs(L[name][s] - L["one process"][s]) for s in common)
    same = next((s - 1 for s in common if L[name][s] != L["one process"][s]), common[-1])
    w = weights(f"{out}/{d}/model.safetensors")
    dw = max(max(abs(x - y) for x, y in zip(w[k], base[k])) for k in base)
    big = max(max(abs(y) for y in base[k]) for k in base)
    md.append(f"| {name} | {len(common)} | {same} | {dl:.4f} | {dw:.3g} | {big:.3g} |")
open(f"{res}/dp_loss_curve.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
PY
"$PY" "$here/transformer_plot.py" lines "$RESULTS/dp_loss_curve.csv" "$RESULTS/dp_loss_curve.svg" --x step --y train_loss --group run \
    --title "Transformer training loss: one process vs mpirun -np 2 (same global batch)" --xlabel step --ylabel "training loss"
log "wrote $RESULTS/dp_loss_curve.{csv,svg,md}"
