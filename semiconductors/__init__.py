"""Semiconductors: MACE on wurtzite GaN with point defects, free energies by thermodynamic
integration.

Ready (framework-free, any BatchedPotential):

* :mod:`semiconductors.thermo` -- Frenkel–Ladd thermodynamic integration (Einstein crystal ->
  potential, Gauss–Legendre λ points, all temperatures x λ windows as one batched
  :func:`common.md.runner.run_md` job, centre of mass free as in Polson et al. 2000):
  :func:`frenkel_ladd` returns the classical Helmholtz free energy per atom with error bars
  and convergence diagnostics (the JSON of ``mlp-semiconductors ti``); analytic Einstein and
  harmonic free energies, finite-difference Hessians, defect formation free energies.

Still to come: the MACE adapter (registry name "mace" -> semiconductors.model:MACEAdapter),
defect builders, CLI and case study.
"""

from semiconductors.thermo import (
    EinsteinCrystal,
    FrenkelLaddTerm,
    einstein_free_energy,
    einstein_springs,
    formation_free_energy,
    frenkel_ladd,
    harmonic_free_energy,
    hessian,
    lambda_grid,
)

__all__ = [
    "EinsteinCrystal",
    "FrenkelLaddTerm",
    "einstein_free_energy",
    "einstein_springs",
    "formation_free_energy",
    "frenkel_ladd",
    "harmonic_free_energy",
    "hessian",
    "lambda_grid",
]
