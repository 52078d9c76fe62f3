#!/usr/bin/env bash
# GPU readiness in one command: the gpu-marked tests, the LJ and SchNet MD benchmarks on CUDA in
# float32 and float64, and CUDA forces against CPU forces. Without CUDA it runs its CPU half
# (the same benchmarks on the CPU in both precisions, float32 forces against float64), so the
# script itself is checked on every machine.
#   bash scripts/gpu_check.sh [OUTDIR]      (default: runs/gpu_check/; one log per step)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="${1:-runs/gpu_check}"
mkdir -p "$out"
py=.venv/bin/python
[ -x "$py" ] || bash scripts/install_env.sh
if "$py" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  device=cuda
else
  device=cpu
  echo "no CUDA on this machine: running the CPU half of the GPU check"
fi
"$py" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda,
  torch.cuda.get_device_name(0) if torch.cuda.is_available() else "(no GPU)")' | tee "$out/device.txt"

echo "== gpu-marked tests"
set +e
"$py" -m pytest -q -m gpu -p no:cacheprovider 2>&1 | tee "$out/gpu_tests.log"
rc=${PIPESTATUS[0]}
set -e
# pytest exits 5 when every selected test was skipped (no CUDA): that is the CPU half's answer
[ "$rc" -eq 0 ] || [ "$rc" -eq 5 ] || { echo "gpu tests failed (exit $rc)"; exit "$rc"; }

replicas="${GPU_CHECK_REPLICAS:-1,16,256}"
[ "$device" = cpu ] && replicas="${GPU_CHECK_REPLICAS:-1,16}"
for dtype in float32 float64; do
  echo "== LJ MD benchmark on $device, $dtype"
  "$py" benchmarks/md_throughput.py --device "$device" --dtype "$dtype" --replicas "$replicas" \
    --steps 100 --no-compile 2>&1 | tee "$out/lj_${device}_${dtype}.txt"
  echo "== SchNet MD benchmark on $device, $dtype"
  "$py" benchmarks/schnet_md.py --device "$device" --dtype "$dtype" --replicas 1,10 --steps 10 \
    2>&1 | grep -v '^INFO:' | tee "$out/schnet_${device}_${dtype}.txt"
done

echo "== forces on $device against cpu float64"
"$py" benchmarks/device_forces.py 2>&1 | grep -v '^INFO:' | tee "$out/device_forces.txt"
echo "gpu check done ($device): logs in $out/"
