"""Batched molecular dynamics on CPU or GPU: many systems in one set of tensors.

The front door is :func:`run_md` (structures + a potential -> an output folder with
trajectories, a thermo log, checkpoints and ``summary.json``); :class:`MDEngine` is the
step-by-step engine under it, on a :class:`BatchState`.

>>> from ase.build import bulk
>>> from common.md import run_md
>>> from common.potential import LennardJones
>>> argon = bulk("Ar", "fcc", a=5.26, cubic=True) * (2, 2, 2)
>>> lj = LennardJones(epsilon=0.0104, sigma=3.40, rc=8.5)
>>> summary = run_md([argon], lj, "runs/argon", steps=200, temperature_K=80.0,
...                  replicas=4, progress=False)                      # doctest: +SKIP

Names are imported on first use, so ``import common.md`` is cheap and has no import cycles.
"""

from __future__ import annotations

from common.lazy import lazy_exports

#: public name -> the module that defines it
_EXPORTS = {
    "run_md": "common.md.runner",
    "read_thermo": "common.md.runner",
    "per_system_values": "common.md.runner",
    "MDEngine": "common.md.engine",
    "ENSEMBLES": "common.md.engine",
    "BatchState": "common.md.state",
    "NeighborList": "common.md.neighbors",
    "BlowUpGuard": "common.md.guard",
    "VelocityVerlet": "common.md.integrators",
    "LangevinBAOAB": "common.md.integrators",
    "StochasticCellRescaling": "common.md.barostat",
    "BAROSTATS": "common.md.barostat",
    "BAR_EV_PER_A3": "common.md.barostat",
    "pressure": "common.md.barostat",
    "maxwell_boltzmann": "common.md.noise",
    "thermalize": "common.md.thermalize",
    "Reporter": "common.md.reporters",
    "ThermoLog": "common.md.reporters",
    "ExtxyzTrajectory": "common.md.reporters",
    "HDF5Trajectory": "common.md.reporters",
    "DeviationFlagger": "common.md.reporters",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports("common.md", _EXPORTS, globals())
