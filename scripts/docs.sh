#!/usr/bin/env bash
# Build the documentation site (mkdocs-material + mkdocstrings) into site/, warnings as errors.
#
#   bash scripts/docs.sh           # build site/ (the test suite runs the same build)
#   bash scripts/docs.sh serve     # live preview on http://127.0.0.1:8000
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/install_env.sh"
venv="${MLP_CASES_VENV:-$root/.venv}"
cd "$root"
export NO_MKDOCS_2_WARNING=1
if [ "${1:-build}" = "serve" ]; then
  exec "$venv/bin/mkdocs" serve --strict
fi
exec "$venv/bin/mkdocs" build --strict --site-dir "${SITE_DIR:-$root/site}"
