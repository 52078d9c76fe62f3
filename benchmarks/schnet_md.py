"""Batched SchNet MD vs ASE MD with schnetpack's own calculator, same model, same run.

Workload (catalysis issue): N independent Langevin trajectories (300 K, 1 fs) of a Cu(111)
3x3x3 slab with two CO (31 atoms) driven by a SchNet model of the tiny (default) or paper
architecture. Weights are random: speed does not depend on them. The engine measures and
picks its batch size (1, 2, 4, ... N) and says which; the baseline is ASE's Langevin with
``schnetpack.interfaces.SpkCalculator``, one trajectory after the other.

    .venv/bin/python benchmarks/schnet_md.py [--replicas 1,10] [--steps 20] [--config tiny]
        [--device cpu|cuda] [--dtype float64|float32]

The ASE baseline always runs schnetpack's calculator on the CPU in float64.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch
from ase.build import add_adsorbate, fcc111, molecule

from catalysis.model import SchNetAdapter, load_config
from common.md.ase_baseline import run_ase_loop
from common.md.runner import run_md


def slab_with_two_co():
    slab = fcc111("Cu", size=(3, 3, 3), vacuum=8.0, orthogonal=False)
    for pos in ((0.0, 0.0), (2.55, 0.0)):
        add_adsorbate(slab, molecule("CO"), height=1.9, position=pos, mol_index=0)
    return slab


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicas", default="1,10")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--config", default="tiny")
    ap.add_argument("--device", default="cpu", help="engine device: cpu or cuda")
    ap.add_argument("--dtype", default="float64", choices=("float64", "float32"))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    dtype = getattr(torch, args.dtype)
    tmp = tempfile.mkdtemp(prefix="schnet_bench_")
    model = SchNetAdapter.untrained(tmp, load_config(args.config))
    engine_model = SchNetAdapter.load(tmp, device=args.device)
    slab = slab_with_two_co()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; SchNet "
          f"{args.config}: {model.meta['config']['n_interactions']} interactions, "
          f"{model.meta['config']['n_atom_basis']} features; {len(slab)} atoms; engine on "
          f"{args.device} in {args.dtype}, ASE on cpu float64")
    print(f"{'replicas':>8} {'engine rs/s':>12} {'batch':>6} {'ASE rs/s':>10} {'ratio':>7}")
    rows = []
    for n in [int(x) for x in args.replicas.split(",")]:
        t0 = time.perf_counter()
        s = run_md([slab], engine_model.batched(dtype=dtype), f"{tmp}/md_{n}", ensemble="nvt",
                   device=args.device, dtype=dtype,
                   temperature_K=300.0, timestep_fs=1.0, steps=args.steps, replicas=n,
                   traj_every=max(1, args.steps), progress=False, compile=False)
        total = time.perf_counter() - t0
        ase = run_ase_loop([slab.copy() for _ in range(n)], model.calculator,
                           max(5, args.steps // 2), ensemble="nvt", timestep_fs=1.0,
                           temperature_K=300.0)
        row = {"replicas": n, "engine_replica_steps_per_s": s["replica_steps_per_s"],
               "engine_total_s_including_batch_choice": total, "batch_size": s["batch_size"],
               "batch_table": s["batch_table"],
               "ase_replica_steps_per_s": ase["replica_steps_per_s"],
               "ratio": s["replica_steps_per_s"] / ase["replica_steps_per_s"],
               "device": args.device, "dtype": args.dtype}
        rows.append(row)
        print(f"{n:>8} {row['engine_replica_steps_per_s']:>12.1f} {row['batch_size']:>6} "
              f"{row['ase_replica_steps_per_s']:>10.1f} {row['ratio']:>7.2f}", flush=True)
    if args.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
