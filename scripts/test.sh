#!/usr/bin/env bash
# The README's test command: set up the environment (a no-op when it is up to date), then run
# the tests that are not marked slow. Extra arguments go to pytest.
#   scripts/test.sh            default suite (CI runs this)
#   scripts/test.sh -m slow    the slow tests only
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/install_env.sh
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"  # see tests/conftest.py
if [ "$#" -eq 0 ]; then
  set -- -m "not slow"
fi
exec .venv/bin/python -m pytest -q --durations=15 "$@"
