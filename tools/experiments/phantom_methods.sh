#!/usr/bin/env bash
# Every method at one labelled share over several training seeds on procedural phantoms, CPU-sized.
# Checkpoints are selected on the split's validation images (best val IoU, as the published code);
# the reported numbers are `mgcc evaluate` of that checkpoint on a separate held-out phantom set.
#
#   tools/experiments/phantom_methods.sh OUT [SHARE] [ITERATIONS] [SEEDS] [METHODS] [BACKBONE]
#
# Defaults: SHARE 0.25, ITERATIONS 1000, SEEDS "41 64 1337", all seven methods, backbone mgcc.
# Setting (stated in docs/methods.md): 300 phantoms (210 train / 90 val), 100 test phantoms,
# 64×64 inputs, width 8, batch 8 (4 + 4), lr 0.03, the consistency ramp over half the run
# stepped every 10 iterations, the mean teacher's start at 1/30 of the run (SSL4MIS: 1000 of
# 30000), each method's published maximum weight C. Rerunning skips finished runs.
set -euo pipefail
OUT=${1:?usage: phantom_methods.sh OUT [SHARE] [ITERATIONS] [SEEDS] [METHODS] [BACKBONE]}
SHARE=${2:-0.25}
ITER=${3:-1000}
SEEDS=${4:-41 64 1337}
METHODS=${5:-supervised mean-teacher ua-mt cct cps urpc mgcc}
BACKBONE=${6:-mgcc}
MGCC=${MGCC:-target/release/mgcc}

mkdir -p "$OUT/runs"
[ -d "$OUT/data" ] || "$MGCC" phantom "$OUT/data" --n 300 --size 128 --seed 0
[ -f "$OUT/data/data_train1.txt" ] || "$MGCC" split "$OUT/data" --splits 1 --seeds 41
[ -d "$OUT/test" ] || "$MGCC" phantom "$OUT/test" --n 100 --size 128 --seed 1
printf '[mean_teacher]\nconsistency_start = %d\n' $((ITER / 30)) > "$OUT/method.toml"

results="$OUT/results.csv"
[ -f "$results" ] || echo "method,backbone,share,iterations,seed,best_val_iou,best_iteration,test_iou,test_dice,test_iou_std,seconds" > "$results"
for seed in $SEEDS; do
  for method in $METHODS; do
    run="$OUT/runs/$BACKBONE-$method-$SHARE-$ITER-$seed"
    if grep -q "^$method,$BACKBONE,$SHARE,$ITER,$seed," "$results"; then continue; fi
    rm -rf "$run"
    start=$(date +%s)
    "$MGCC" train "$OUT/data" --split 1 --out "$run" --method "$method" --backbone "$BACKBONE" \
      --config "$OUT/method.toml" --labeled-fraction "$SHARE" --size 64 --width 8 \
      --iterations "$ITER" --lr 0.03 --rampup $((ITER / 2)) --rampup-step 10 \
      --val-every $((ITER / 20)) --seed "$seed" --no-progress > "$run.log" 2>&1
    secs=$(( $(date +%s) - start ))
    "$MGCC" evaluate "$run" --data "$OUT/test" --out "$run/test" > /dev/null
    python3 - "$run" "$method" "$BACKBONE" "$SHARE" "$ITER" "$seed" "$secs" >> "$results" <<'PY'
import json, sys
run, method, backbone, share, it, seed, secs = sys.argv[1:]
state = json.load(open(f"{run}/checkpoints/best/state.json"))
test = json.load(open(f"{run}/test/summary.json"))
m = test["metrics"]
print(f"{method},{backbone},{share},{it},{seed},{state['best_iou']:.4f},{state['best_iteration']},"
      f"{m['iou']['mean']:.4f},{m['dice']['mean']:.4f},{m['iou']['std']:.4f},{secs}")
PY
    tail -1 "$results"
  done
done
