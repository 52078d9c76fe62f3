#!/usr/bin/env bash
# The README's main job: set up the environment (a no-op when it is up to date), check it,
# and run the end-to-end demo of the shared layer at tiny scale.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/install_env.sh
.venv/bin/mlp-cases doctor
.venv/bin/mlp-cases demo --scale tiny --out "${1:-runs/demo}"
