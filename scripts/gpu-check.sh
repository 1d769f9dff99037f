#!/usr/bin/env bash
# The GPU check of docs/gpu.md, in one call that fits 10 minutes, on a machine with a GPU and
# the Vulkan loader (NVIDIA: the driver's Vulkan ICD; AMD/Intel: Mesa's). It writes everything
# to one folder ($OUT, default ./gpu-check):
#   facts.txt            nvidia-smi, vulkaninfo --summary, the binaries' versions
#   gpu-tests.txt        the GPU test target (crates/mgcc/tests/gpu.rs) on the real card
#   mgcc-bench.jsonl     mgcc bench --device wgpu at the paper's configuration (w64, 256², batch 8)
#   mgcc-ldm-bench.jsonl mgcc ldm bench --device wgpu at Medfusion's sizes (small batches)
#   torch-bench.jsonl    ../shared/bench/torch_mgcc.py --device cuda at the same settings
#   summary.txt          the ratios mgcc / PyTorch
# Each part has its own time limit and a failure does not stop the others.
#
# Binaries: built here when cargo is available, else taken from $MGCC_BIN and $GPU_TEST_BIN
# (carried from a build machine: `scripts/gpu-pack.sh` builds and compresses both).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-check}
mkdir -p "$OUT"
DEVICE=${MGCC_GPU_DEVICE:-wgpu}
log() { echo "[gpu-check $(date +%T)] $*" | tee -a "$OUT/summary.txt"; }

unpack() { # a carried .xz binary → an executable next to it
  local f=$1
  if [[ $f == *.xz ]]; then xz -dkf "$f" && f=${f%.xz}; fi
  chmod +x "$f" 2>/dev/null
  echo "$f"
}

MGCC_BIN=${MGCC_BIN:-}
GPU_TEST_BIN=${GPU_TEST_BIN:-}
if [[ -z $MGCC_BIN ]] && command -v cargo > /dev/null; then
  log "building (cargo build --release --features wgpu)"
  cargo build --release --features wgpu -p mgcc >> "$OUT/build.txt" 2>&1 || log "build failed (build.txt)"
  MGCC_BIN=target/release/mgcc
  GPU_TEST_BIN=$(cargo test --release --features mgcc/wgpu -p mgcc --test gpu --no-run --message-format=json 2>> "$OUT/build.txt" \
    | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
fi
[[ -n $MGCC_BIN ]] && MGCC_BIN=$(unpack "$MGCC_BIN")
[[ -n $GPU_TEST_BIN ]] && GPU_TEST_BIN=$(unpack "$GPU_TEST_BIN")

{
  date -u
  nvidia-smi 2>&1 | head -20 || true
  vulkaninfo --summary 2>&1 | head -40 || echo "vulkaninfo not installed"
  ls /usr/share/vulkan/icd.d /etc/vulkan/icd.d 2>&1
  echo "mgcc: $MGCC_BIN"; echo "gpu tests: $GPU_TEST_BIN"
} > "$OUT/facts.txt" 2>&1

# 1. The GPU tests on the real card (their CLI test runs $MGCC_BIN).
if [[ -x ${GPU_TEST_BIN:-/nonexistent} ]]; then
  MGCC_BIN=$(realpath "$MGCC_BIN") MGCC_TEST_GPU=$DEVICE MGCC_REQUIRE_GPU=1 \
    timeout 200 "$GPU_TEST_BIN" --test-threads 1 --nocapture > "$OUT/gpu-tests.txt" 2>&1
  log "GPU tests: exit $? ($(grep -E '^test result' "$OUT/gpu-tests.txt" | tail -1))"
else
  log "GPU tests: no test binary"
fi

# 2. mgcc at the paper's configuration, then PyTorch at the same settings.
if [[ -x ${MGCC_BIN:-/nonexistent} ]]; then
  timeout 150 "$MGCC_BIN" bench --device "$DEVICE" --width 64 --size 256 --batch 8 --steps 5 --infer-runs 10 \
    > "$OUT/mgcc-bench.jsonl" 2> "$OUT/mgcc-bench.err"
  log "mgcc bench: exit $?"
  timeout 120 "$MGCC_BIN" ldm bench --device "$DEVICE" --vae-batch 4 --unet-batch 8 --sample-batch 4 --steps 3 \
    > "$OUT/mgcc-ldm-bench.jsonl" 2> "$OUT/mgcc-ldm-bench.err"
  log "mgcc ldm bench: exit $?"
else
  log "mgcc bench: no mgcc binary"
fi
PY=${PYTHON:-python3}
if $PY -c 'import torch; assert torch.cuda.is_available()' 2> /dev/null; then
  timeout 120 $PY ../shared/bench/torch_mgcc.py --device cuda --width 64 --size 256 --batch 8 --steps 5 --infer-runs 10 \
    > "$OUT/torch-bench.jsonl" 2> "$OUT/torch-bench.err"
  log "torch bench: exit $?"
else
  log "torch bench: no PyTorch with CUDA here ($PY)"
fi

# 3. Ratios.
$PY - "$OUT" << 'EOF' 2>&1 | tee -a "$OUT/summary.txt" || true
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
def last(name):
    try:
        lines = [l for l in (out / name).read_text().splitlines() if l.startswith("{")]
        return json.loads(lines[-1])
    except Exception as e:
        return None
m, t = last("mgcc-bench.jsonl"), last("torch-bench.jsonl")
print("mgcc:", m)
print("torch:", t)
if m and t:
    for k in ["train_step_median_s", "infer_median_s"]:
        if m.get(k) and t.get(k):
            print(f"{k}: mgcc/torch = {m[k] / t[k]:.2f}")
    if m.get("gpu_reserved_mib") and t.get("peak_gpu_mib"):
        print(f"memory: mgcc reserved {m['gpu_reserved_mib']} MiB / torch max allocated {t['peak_gpu_mib']} MiB = {m['gpu_reserved_mib'] / t['peak_gpu_mib']:.2f}")
EOF
