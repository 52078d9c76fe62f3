#!/usr/bin/env bash
# Rewrite env/constraints.txt from the current .venv (run after verifying an upgrade).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="${MLP_CASES_VENV:-$root/.venv}/bin/python"
{
  echo "# Exact versions verified together (pip freeze of a working environment, $(date +%F)); used as"
  echo "# constraints by scripts/install_env.sh. Regenerate with scripts/freeze_env.sh after a verified upgrade."
  "$py" -m pip freeze --exclude-editable \
    | grep -viE '^(torch|mlp-cases|deepmd-kit|schnetpack|mace-torch|nvidia-.*|triton)==' | grep -v '^-e'
} > "$root/env/constraints.txt"
echo "wrote $root/env/constraints.txt"
