"""The single-system ASE path: ASE's own integrators with any ASE calculator.

It stays available for single structures and is the baseline every benchmark compares the
batched engine against.
"""

from __future__ import annotations

import time

from ase import Atoms

from common.errors import ConfigError
from common.units import FS, PS


def ase_dynamics(atoms: Atoms, *, ensemble: str = "nvt", timestep_fs: float = 1.0,
                 temperature_K: float = 300.0, friction_per_ps: float = 1.0, seed: int = 0):
    """Build an ASE dynamics object (VelocityVerlet for NVE, Langevin for NVT) on ``atoms``."""
    import numpy as np

    if ensemble == "nve":
        from ase.md.verlet import VelocityVerlet

        return VelocityVerlet(atoms, timestep=timestep_fs * FS)
    if ensemble == "nvt":
        from ase.md.langevin import Langevin

        return Langevin(atoms, timestep=timestep_fs * FS, temperature_K=temperature_K,
                        friction=friction_per_ps / PS, fixcm=False,
                        rng=np.random.default_rng(seed))
    raise ConfigError(f"unknown ensemble {ensemble!r}", where="ensemble", fix="use nve or nvt")


def run_ase_loop(replicas: list[Atoms], calculator_factory, steps: int, **kw) -> dict:
    """Run ``steps`` of ASE MD on each replica in turn (a plain Python loop). Returns timing."""
    t0 = time.perf_counter()
    for k, atoms in enumerate(replicas):
        atoms.calc = calculator_factory()
        ase_dynamics(atoms, seed=k, **kw).run(steps)
    wall = time.perf_counter() - t0
    n = len(replicas) * steps
    return {"replica_steps": n, "wall_s": wall, "replica_steps_per_s": n / wall}
