#!/usr/bin/env bash
# Create (or bring up to date) the one environment that holds all five MLP frameworks.
#
#   scripts/install_env.sh            -> .venv in the checkout (or $MLP_CASES_VENV)
#
# pip alone cannot resolve this set (schnetpack pins sympy<=1.12, mace-torch pins e3nn==0.4.4,
# deepmd-kit's wheel carries C++ ops built for another torch), so the steps are:
#   1. torch first (kept if already there: a CUDA torch on a GPU machine stays);
#   2. a constraints file that pins every later pip call to the installed torch, so no call can
#      pull a multi-GB torch of another version;
#   3. the pinned requirements (env/requirements.txt);
#   4. schnetpack and mace-torch with --no-deps (their dependencies are in the requirements);
#   5. deepmd-kit built from its sdist against the installed torch, PyTorch backend only; the built
#      wheel is cached under .cache/wheels/torch-<version>/ so a torch change forces a rebuild;
#   6. the project itself, editable.
# A stamp file records the inputs; a rerun with the same inputs does nothing.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${MLP_CASES_VENV:-$root/.venv}"
python="${PYTHON:-python3.11}"
torch_spec="${MLP_CASES_TORCH:-torch==2.13.0}"
schnetpack_spec="schnetpack==2.1.1"
mace_spec="mace-torch==0.3.16"
deepmd_version="3.2.0"

stamp="$venv/.mlp-cases-env"
inputs_hash="$(cat "$root/scripts/install_env.sh" "$root/env/requirements.txt" "$root/env/constraints.txt" \
  "$root/pyproject.toml" \
  | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$inputs_hash" ] && [ -x "$venv/bin/python" ]; then
  echo "mlp-cases environment is up to date ($venv)"
  exit 0
fi

start=$(date +%s)
log() { printf '[install_env %3ds] %s\n' "$(( $(date +%s) - start ))" "$*"; }

if [ ! -x "$venv/bin/python" ]; then
  command -v "$python" >/dev/null || { echo "error: $python not found; set PYTHON=/path/to/python3.11" >&2; exit 1; }
  log "creating virtual environment $venv"
  "$python" -m venv "$venv"
fi
py="$venv/bin/python"
pip=("$py" -m pip --disable-pip-version-check)
"${pip[@]}" install -q --upgrade "pip>=24" wheel "setuptools>=70"

if "$py" -c "import torch" 2>/dev/null; then
  log "keeping installed torch $("$py" -c 'import torch; print(torch.__version__)')"
else
  log "installing $torch_spec"
  "${pip[@]}" install -q -c "$root/env/constraints.txt" "$torch_spec" numpy
fi
torch_version="$("$py" -c 'import torch; print(torch.__version__)')"
constraints="$venv/torch-constraints.txt"
echo "torch==$torch_version" > "$constraints"

log "installing the pinned requirements (constrained to torch $torch_version)"
"${pip[@]}" install -q -c "$constraints" -c "$root/env/constraints.txt" -r "$root/env/requirements.txt"

log "installing $schnetpack_spec and $mace_spec without their conflicting pins"
"${pip[@]}" install -q --no-deps "$schnetpack_spec" "$mace_spec"

if "$py" -c "import deepmd.pt" 2>/dev/null \
   && [ "$("$py" -c 'import deepmd; print(deepmd.__version__)')" = "$deepmd_version" ]; then
  log "deepmd-kit $deepmd_version already importable against torch $torch_version"
else
  wheels="$root/.cache/wheels/torch-$torch_version"
  mkdir -p "$wheels"
  if ! ls "$wheels"/deepmd_kit-"$deepmd_version"-*.whl >/dev/null 2>&1; then
    log "building deepmd-kit $deepmd_version from source against torch $torch_version (about a minute)"
    DP_ENABLE_TENSORFLOW=0 DP_ENABLE_PYTORCH=1 DP_VARIANT="${DP_VARIANT:-cpu}" \
      "${pip[@]}" wheel -q "deepmd-kit==$deepmd_version" --no-deps --no-binary deepmd-kit \
      --no-build-isolation --no-cache-dir -w "$wheels"
  fi
  "${pip[@]}" install -q --no-deps --force-reinstall "$wheels"/deepmd_kit-"$deepmd_version"-*.whl
fi

log "installing mlp-cases (editable)"
"${pip[@]}" install -q --no-deps -e "$root"

log "checking the environment"
"$py" -m common.envcheck --pip-check

echo "$inputs_hash" > "$stamp"
log "done: $(du -sh "$venv" | cut -f1) in $venv"
