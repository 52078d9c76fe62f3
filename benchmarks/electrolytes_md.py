"""Batched DeePMD MD vs ASE MD with deepmd-kit's own ``DP`` calculator, same model, same
replicas, measured in the same run.

Workload (electrolytes issue): N independent Langevin trajectories (300 K, 0.5 fs) of an
84-atom EC/DEC/LiPF6 cell (4 EC, 2 DEC, 1 LiPF6, packed by packmol) driven by a DeePMD model
of the tiny (default: se_atten without attention + deepmd's ZBL pair table) or paper
architecture. Weights are random (speed does not depend on
them); ``sel`` is what deepmd's automatic rule gives on this cell. The engine measures and
picks its batch size and says which; the baseline is ASE's Langevin with
``deepmd.calculator.DP``, one trajectory after the other.

    .venv/bin/python benchmarks/electrolytes_md.py [--replicas 1,8] [--steps 20]
        [--config tiny] [--device cpu|cuda]

Report the ratio of one run only: absolute rates depend on the machine's load.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
import torch
from ase.neighborlist import neighbor_list


def cell_sel(cell, rcut: float, type_map: list[str], margin: float = 1.1) -> list[int]:
    """deepmd's automatic sel on one cell: most neighbours of each element within rcut."""
    from electrolytes.model import sel_from_stat

    i, j = neighbor_list("ij", cell, rcut)
    syms = np.array(cell.get_chemical_symbols())
    most = []
    for el in type_map:
        counts = np.bincount(i[syms[j] == el], minlength=len(cell))
        most.append(int(counts.max()))
    return sel_from_stat(most, margin)


def main() -> None:
    from common.md.ase_baseline import run_ase_loop
    from common.md.runner import run_md
    from electrolytes.model import DeepMDAdapter, load_config
    from electrolytes.systems import Composition, liquid_cell

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicas", default="1,8")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--config", default="tiny")
    ap.add_argument("--device", default="cpu", help="engine device: cpu or cuda")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    cfg = load_config(args.config)
    cell = liquid_cell(Composition({"EC": 1, "DEC": 1}), n_atoms=84, seed=0)
    type_map = sorted(set(cell.get_chemical_symbols()),
                      key=lambda s: cell.numbers[cell.get_chemical_symbols().index(s)])
    sel = cell_sel(cell, cfg["rcut_A"], type_map, cfg["sel_margin"])
    tmp = tempfile.mkdtemp(prefix="deepmd_bench_")
    model = DeepMDAdapter.untrained(tmp, type_map, config=cfg, sel=sel)
    engine = DeepMDAdapter.load(tmp, device=args.device).batched()
    zbl = " + ZBL" if cfg["zbl"] else ""
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; DeePMD "
          f"{args.config} {cfg['descriptor']}{zbl}, sel {sel}; {len(cell)} atoms; engine on "
          f"{args.device}, ASE (deepmd's DP calculator) on deepmd's device")
    print(f"{'replicas':>8} {'engine rs/s':>12} {'batch':>6} {'ASE rs/s':>10} {'ratio':>7}")
    rows = []
    for n in [int(x) for x in args.replicas.split(",")]:
        t0 = time.perf_counter()
        s = run_md([cell], engine, f"{tmp}/md_{n}", ensemble="nvt", device=args.device,
                   temperature_K=300.0, timestep_fs=0.5, steps=args.steps, replicas=n,
                   traj_every=max(1, args.steps), progress=False)
        total = time.perf_counter() - t0
        ase = run_ase_loop([cell.copy() for _ in range(n)], model.calculator,
                           max(5, args.steps // 2), ensemble="nvt", timestep_fs=0.5,
                           temperature_K=300.0)
        row = {"replicas": n, "engine_replica_steps_per_s": s["replica_steps_per_s"],
               "engine_total_s_including_batch_choice": total, "batch_size": s["batch_size"],
               "ase_replica_steps_per_s": ase["replica_steps_per_s"],
               "ratio": s["replica_steps_per_s"] / ase["replica_steps_per_s"],
               "device": args.device}
        rows.append(row)
        print(f"{n:>8} {row['engine_replica_steps_per_s']:>12.1f} {row['batch_size']:>6} "
              f"{row['ase_replica_steps_per_s']:>10.1f} {row['ratio']:>7.2f}", flush=True)
    if args.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
