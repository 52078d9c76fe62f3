"""ML/MM OpenMM Systems: the ligand's internal energy from our ANI model, the rest from MM.

Our model is registered with openmmml as the potential ``"mlp-cases-ani"``
(:func:`register`, through ``MLPotential.registerImplFactory``), so the standard openmmml calls
build the Systems:

* :func:`mlmm_system` -- ``MLPotential.createMixedSystem`` with openmmml's mechanical
  embedding: bonded terms and nonbonded pairs *within* the ligand are removed from the MM
  System (its constraints too) and replaced by the ANI energy; ligand-environment
  interactions stay MM (Coulomb with the AM1-BCC charges + Lennard-Jones); the implicit-solvent
  GBn2 term is kept whole, so the ligand's solvation is MM (ANI is a gas-phase potential).
* :func:`ml_system` -- ``MLPotential.createSystem``: a lone ligand entirely on ANI (pure ML).

The ANI energy is evaluated by ``openmm.PythonForce`` (OpenMM 8.6) on the ligand's particles
only (``setParticles``), with torch on the CPU: openmm-torch's TorchForce is not in this CPU
environment. The force's computation, :class:`ANICompute`, holds the model folder and
loads the model on first use (TorchScript-compiled: 3.7 vs 11 ms per call for a 16-atom
ligand with torchani's eager model, 1 thread), so a System with it serializes to XML
(pickled function) and runs through ``mlp-drug-binding metad`` like any other System.

Threads are set on purpose: torch gets ``threads`` (default 1) inside the computation and the
OpenMM CPU platform ``Threads`` the same number (:func:`simulation`). Measured on 2 cores
(issue #10): torch and OpenMM each taking 2 threads made one ANI call swing from 12 ms to 1.7 s.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from common.errors import ConfigError, DataError

#: the name our ANI model is registered under with openmmml
POTENTIAL_NAME = "mlp-cases-ani"
#: kJ/mol per Hartree (CODATA 2018, as torchani's units.hartree2kjoulemol)
HARTREE_KJ_PER_MOL = 2625.4996394798254

__all__ = [
    "ANICompute",
    "POTENTIAL_NAME",
    "ml_system",
    "mlmm_system",
    "register",
    "relax_start",
    "simulation",
]


def _energy_only_class():
    import torch

    class EnergyOnly(torch.nn.Module):
        """Return the model's total energy as a tensor.

        Scripted, the per-call ``SpeciesEnergies`` namedtuple (built anew by TorchScript's Python
        side on every call, ~1 ms) is gone.
        """

        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, species: torch.Tensor, pos: torch.Tensor,
                    cell: torch.Tensor | None = None,
                    pbc: torch.Tensor | None = None) -> torch.Tensor:
            return self.model((species, pos), cell, pbc).energies.sum()

    return EnergyOnly


def _EnergyOnly(model):  # noqa: N802 - a class factory (torch is imported lazily)
    return _energy_only_class()(model)


class ANICompute:
    """Computation for a ``PythonForce``: ANI energy and forces of the force's particles.

    Energy in kJ/mol, forces in kJ/mol/nm. Picklable (holds the model folder, not the model).
    """

    def __init__(self, model_dir: str | os.PathLike, numbers: list[int], threads: int = 1,
                 periodic: bool = False):
        self.model_dir = str(Path(model_dir).resolve())
        self.numbers = [int(z) for z in numbers]
        self.threads = int(threads)
        self.periodic = bool(periodic)
        self._model = None

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_model"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._model = None

    def _load(self):
        import torch

        from drug_binding.model import ANIAdapter

        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        adapter = ANIAdapter.load(self.model_dir)
        model = _EnergyOnly(adapter.model.to(torch.float64).eval().requires_grad_(False))
        try:  # TorchScript, returning a tensor: 5.1 vs 7.1 ms per energy + forces call for a
            model = torch.jit.script(model)  # 15-atom ligand (eager), 1 thread
        except Exception:  # noqa: BLE001 - eager works the same, only slower
            pass
        self._species = torch.tensor([self.numbers], dtype=torch.long)
        self._model = model
        return model

    def __call__(self, state):
        """Return the ANI energy (kJ/mol) and forces (kJ/mol/nm) for an OpenMM state."""
        import torch
        from openmm import unit

        model = self._model or self._load()
        pos = torch.tensor(state.getPositions(asNumpy=True).value_in_unit(unit.angstrom),
                           dtype=torch.float64).unsqueeze(0).requires_grad_(True)
        cell = pbc = None
        if self.periodic:
            cell = torch.tensor(state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(
                unit.angstrom), dtype=torch.float64)
            pbc = torch.tensor([True, True, True])
        energy = model(self._species, pos, cell, pbc)
        (grad,) = torch.autograd.grad(energy, pos)
        # Hartree -> kJ/mol; Hartree/Å -> kJ/mol/nm (x10)
        return (float(energy.detach()) * HARTREE_KJ_PER_MOL,
                -grad[0].numpy() * (HARTREE_KJ_PER_MOL * 10.0))


def _impl_classes():
    from openmmml.mlpotential import MLPotentialImpl, MLPotentialImplFactory

    class ANIImpl(MLPotentialImpl):
        """Provide our ANI model as an openmmml implementation.

        Keyword ``model``: the model folder; ``threads``: torch threads.
        """

        def __init__(self, name: str):
            self.name = name

        def addForces(self, topology, system, atoms, forceGroup, model=None, threads=1,
                      **args):
            import openmm

            if model is None:
                raise ConfigError("no ANI model folder given", where="model",
                                  fix="pass model=FOLDER (a folder written by ANIAdapter)")
            included = list(topology.atoms())
            if atoms is not None:
                included = [included[i] for i in atoms]
            numbers = [a.element.atomic_number for a in included]
            _check_model_elements(model, numbers)
            periodic = (topology.getPeriodicBoxVectors() is not None
                        or system.usesPeriodicBoundaryConditions())
            force = openmm.PythonForce(ANICompute(model, numbers, threads, periodic))
            force.setForceGroup(forceGroup)
            force.setUsesPeriodicBoundaryConditions(periodic)
            if atoms is not None:
                force.setParticles(list(atoms))
            system.addForce(force)

        def getMLLongRange(self) -> bool:
            return False  # ANI is short-ranged (5.1 Å)

    class ANIImplFactory(MLPotentialImplFactory):
        def createImpl(self, name: str, **args) -> MLPotentialImpl:
            return ANIImpl(name)

    return ANIImplFactory


def register() -> None:
    """Register our ANI model with openmmml as ``"mlp-cases-ani"`` (idempotent)."""
    from openmmml import MLPotential

    if POTENTIAL_NAME not in MLPotential._implFactories:
        MLPotential.registerImplFactory(POTENTIAL_NAME, _impl_classes()())


def _check_model_elements(model_dir, numbers: list[int]) -> None:
    from ase.data import chemical_symbols

    from common.potential.model_folder import read_model_meta

    meta = read_model_meta(Path(model_dir), "ani", "ANI")
    known = set(meta.get("elements") or ())
    missing = sorted({chemical_symbols[z] for z in numbers} - known)
    if missing:
        raise DataError(f"the ML atoms hold element(s) {', '.join(missing)} the ANI model does "
                        f"not know ({' '.join(sorted(known))})", where=str(model_dir),
                        fix="train the model on these elements, or choose other ML atoms")


def _potential():
    from openmmml import MLPotential

    register()
    return MLPotential(POTENTIAL_NAME)


def mlmm_system(system, topology, ml_atoms, model_dir: str | os.PathLike, threads: int = 1):
    """Return a copy of the MM ``system`` with the atoms ``ml_atoms`` on the ANI model.

    The atoms ``ml_atoms`` (0-based, e.g. the ligand) interact among themselves through the ANI
    model in ``model_dir`` and with everything else through the MM force field (mechanical
    embedding). Constraints within the ML atoms are removed (use a ~1 fs time step).
    """
    atoms = sorted({int(i) for i in ml_atoms})
    n = system.getNumParticles()
    if not atoms or atoms[0] < 0 or atoms[-1] >= n:
        raise DataError(f"ML atom indices must be in 0..{n - 1} (got {len(atoms)} atoms, "
                        f"range {atoms[:1]}..{atoms[-1:]})", where="ml_atoms",
                        fix="give the ligand's 0-based atom indices")
    return _potential().createMixedSystem(topology, system, atoms, model=str(model_dir),
                                          threads=threads)


def ml_system(topology, model_dir: str | os.PathLike, threads: int = 1,
              remove_cm_motion: bool = True):
    """Build a System for ``topology`` (a lone molecule) entirely on the ANI model (pure ML)."""
    return _potential().createSystem(topology, removeCMMotion=remove_cm_motion,
                                     model=str(model_dir), threads=threads)


def simulation(system, topology, positions_nm: np.ndarray, temperature_K: float = 300.0,
               timestep_fs: float = 1.0, friction_per_ps: float = 1.0, seed: int = 0,
               platform: str = "CPU", threads: int = 1):
    """Build an OpenMM ``Simulation`` (Langevin middle integrator) on the CPU platform.

    The platform runs on ``threads`` threads (the same number torch gets in :class:`ANICompute`).
    """
    import openmm as mm
    from openmm import app, unit

    integ = mm.LangevinMiddleIntegrator(temperature_K * unit.kelvin,
                                        friction_per_ps / unit.picosecond,
                                        timestep_fs * unit.femtosecond)
    integ.setRandomNumberSeed(int(seed) % 2147483646 + 1)
    plat = mm.Platform.getPlatformByName(platform)
    props = {"Threads": str(threads)} if platform == "CPU" else {}
    sim = app.Simulation(topology, system, integ, plat, props)
    sim.context.setPositions(np.asarray(positions_nm) * unit.nanometer)
    return sim


#: what :func:`relax_start` minimises on
START_MINIMIZATION = ("mlmm", "mm")


def relax_start(sim, mm_system, max_iterations: int = 200, on: str = "mlmm",
                tolerance_kJ_per_nm: float = 10.0, threads: int = 1) -> None:
    """Minimise the start of an ML/MM simulation ``sim`` in place.

    ``on="mlmm"``: L-BFGS on the ML/MM energy itself. ``on="mm"``: on the MM System ``mm_system``
    (the ligand on GAFF2 as well; same particles) without its implicit-solvent term, and the
    minimised coordinates become ``sim``'s. The MM route is for ML models trained on little data:
    such a model has holes (a stretched bond that lowers its energy) that a minimiser on its surface
    walks straight into -- measured on the MCL1 complex of the JACS set, a tiny ANI trained on 77
    frames let 200 ML/MM L-BFGS iterations pull one C-H bond of ligand 53 to 3.2 Å -- while GAFF2
    relaxes the pose's clashes safely. Simplification: the implicit-solvent force is left out of
    this relaxation (it is clash relief before MD in solvent, not a solvated minimum) since it is
    most of the cost: for the 2,461-atom MCL1 complex one OBC2 force evaluation takes 0.23 s and
    200 L-BFGS iterations ~200 s on one thread, against ~0.03 s per evaluation without it.
    """
    import openmm as mm

    if on not in START_MINIMIZATION:
        raise ConfigError(f"start minimisation on {on!r}", where="start_minimization",
                          fix="give mlmm (the ML/MM energy) or mm (the MM force field)")
    if not max_iterations:
        return
    if on == "mlmm":
        mm.LocalEnergyMinimizer.minimize(sim.context, tolerance_kJ_per_nm, max_iterations)
        return
    gas = mm.XmlSerializer.clone(mm_system)
    for k in reversed(range(gas.getNumForces())):
        if isinstance(gas.getForce(k), mm.GBSAOBCForce | mm.CustomGBForce):
            gas.removeForce(k)
    plat = mm.Platform.getPlatformByName("CPU")
    ctx = mm.Context(gas, mm.VerletIntegrator(0.001), plat, {"Threads": str(threads)})
    ctx.setPositions(sim.context.getState(getPositions=True).getPositions())
    mm.LocalEnergyMinimizer.minimize(ctx, tolerance_kJ_per_nm, max_iterations)
    sim.context.setPositions(ctx.getState(getPositions=True).getPositions())
