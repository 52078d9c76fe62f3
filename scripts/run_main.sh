#!/usr/bin/env bash
# The README's main job: set up the environment (a no-op when it is up to date), check it,
# run the shared-layer demo and the tiny case studies of the pipelines that exist so far.
#   bash scripts/run_main.sh [OUTDIR]        (default: runs/)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="${1:-runs}"
bash scripts/install_env.sh
.venv/bin/mlp-cases doctor
.venv/bin/mlp-cases demo --scale tiny --out "$out/demo"
.venv/bin/mlp-catalysis case-study --scale tiny --out "$out/catalysis_tiny"
echo "main job done: $out/demo/summary.json, $out/catalysis_tiny/summary.json"
