#!/usr/bin/env bash
# The README's main job: set up the environment (a no-op when it is up to date), check it, run
# the shared-layer demo and the tiny case study of every pipeline. A rerun resumes: finished
# stages are reused from the output folders.
#   bash scripts/run_main.sh                 everything (outputs under runs/)
#   bash scripts/run_main.sh NAME [NAME ...] one or more pipelines' tiny case studies only:
#                                            catalysis electrolytes drug_binding semiconductors
#                                            atmospheric (or demo)
#   MLP_CASES_OUT=DIR bash scripts/run_main.sh    outputs under DIR instead of runs/
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="${MLP_CASES_OUT:-runs}"
all=(demo catalysis electrolytes drug_binding semiconductors atmospheric)
if [ "$#" -eq 0 ]; then
  set -- "${all[@]}"
  everything=1
else
  everything=0
  for name in "$@"; do
    case " ${all[*]} " in
      *" $name "*) ;;
      *) echo "error: unknown pipeline '$name' -- use one of: ${all[*]}" >&2; exit 2 ;;
    esac
  done
fi
bash scripts/install_env.sh
if [ "$everything" -eq 1 ]; then
  .venv/bin/mlp-cases doctor
fi
# one pipeline that fails does not stop the others; the job fails at the end, naming it
start_all=$(date +%s)
failed=()
for name in "$@"; do
  start=$(date +%s)
  if [ "$name" = demo ]; then
    dir="$out/demo"
    cmd=(.venv/bin/mlp-cases demo --scale tiny --out "$dir")
  else
    dir="$out/${name}_tiny"
    cmd=(".venv/bin/mlp-${name//_/-}" case-study --scale tiny --out "$dir")
  fi
  if "${cmd[@]}"; then
    echo "[run_main] $name done in $(( $(date +%s) - start )) s: $dir/summary.json, $dir/report.md"
  else
    echo "[run_main] $name FAILED after $(( $(date +%s) - start )) s (rerun: ${cmd[*]})" >&2
    failed+=("$name")
  fi
done
echo "[run_main] main job took $(( $(date +%s) - start_all )) s (outputs under $out/)"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "[run_main] failed: ${failed[*]}" >&2
  exit 1
fi
