"""Well-tempered metadynamics on any OpenMM System, and binding free energies from its profile.

The collective variable (CV) is the distance between the centres of mass of two atom groups,
written ``distance:I:J`` where each side is a 0-based atom index, a comma-separated list, or
inclusive ranges (``distance:0-9,12:15``). OpenMM's own :class:`openmm.app.Metadynamics`
deposits the Gaussian hills and gives the free-energy profile (``getFreeEnergy()``, which is
already the well-tempered ``F(s) = -(gamma/(gamma-1)) V(s)``); an upper wall keeps the CV
inside the bias grid.

Conventions (all energies kJ/mol inside, kcal/mol in the result's ``*_kcal_per_mol`` keys):

* **Profile.** ``F(s) = -kT ln P(s)`` along the CV as sampled. For a distance CV this
  *includes* the volume (Jacobian) term ``-kT ln(4 pi s^2)``: no Jacobian is added or removed.
* **Basin free energy.** ``G(basin) = -kT ln int_basin exp(-F(s)/kT) ds`` (trapezoid rule on the
  profile, linear interpolation at the basin ends); ``delta_G = G(bound) - G(unbound)`` is "from
  the profile as it is", with no standard-state term.
* **Standard state.** With one ligand free in the unbound shell ``LO <= s <= HI`` of volume
  ``V_u = (4/3) pi (HI^3 - LO^3)``, the binding constant is ``K = (P_bound / P_unbound) V_u``
  and ``delta_G_bind = -kT ln(K / V0) = delta_G - kT ln(V_u / V0)``, ``V0 = 1.66054 nm^3``
  (1 mol/L). A shell larger than ``V0`` dilutes the ligand below 1 M, so the correction makes
  binding stronger (more negative). It assumes ``F(s) + kT ln(4 pi s^2)`` is flat in the shell.
* **Funnel.** ``funnel=`` adds a funnel restraint (:mod:`drug_binding.funnel`: a cone over the
  pocket and a cylinder out into the solvent, Limongelli et al. 2013) on the ligand's centre.
  When the funnel's ligand and origin groups are the CV's two groups, ``V_u`` above is the
  funnel's accessible (Boltzmann-weighted) volume of the unbound CV interval instead of the
  whole shell: ``delta_G_bind = delta_G - kT ln(V_u / V0)``, which for a thin cylinder is
  Limongelli's ``-kT ln(pi R_cyl^2 (HI - LO) C0)`` term. The restraint must leave the bound
  pose alone (a cone wide enough over the pocket); that is the user's choice of funnel. With
  other groups no unbound volume is defined and ``delta_G_bind`` is left out.
* **Error.** From the second half of the run. The hills of each of ``n_blocks`` blocks are
  reweighted with the time-dependent bias (Tiwary-Parrinello ``c(t)``) to a ``delta_G`` per
  block; their standard error is the error of the reweighted second-half estimate
  (``delta_G_reweighted_*``). The profile estimate ``delta_G(t)`` (from the bias after each
  hill) also fluctuates around that mean; its standard deviation over the second half adds in
  quadrature: ``delta_G_err = sqrt(reweighted_err^2 + fluct^2)``. On the double-well test
  (24 runs) this gave z-scores with an r.m.s. of 0.6-1.15.

Independent walkers (:func:`run_walkers`): ``n`` runs from the same start with different seeds,
each in ``outdir/walker_<k>/``; ``delta_G`` is the mean of the walkers' values and its error the
standard error over walkers (:func:`combine_walkers`). That spread is how much the walkers
disagree, not a bias they share: for a free particle in a funnel (exact answer by quadrature,
``tests/drug_binding/test_funnel.py``) four 300-ps walkers gave ΔG 0.5 kcal/mol below the exact
value with a standard error of 0.26 kcal/mol, and ten single runs gave -1.45 to -2.71 against
-1.56 kcal/mol, eight of them below it -- the well-tempered transient (the rarely visited
unbound basin is under-filled, so it looks too high); the unbiased MD of the same particle
matches the quadrature.

Files written atomically to ``outdir``: ``HILLS`` and ``COLVAR`` (PLUMED text format, time in ps,
CV in nm, energies kJ/mol; HILLS heights scaled by ``gamma/(gamma-1)`` as PLUMED writes them),
``fes.dat`` (the profile), ``profile.png``, ``convergence.png`` and ``metad.json``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from common.cv import CVSpec, parse_range
from common.cv import parse_cv as _parse_cv
from common.errors import ConfigError, DataError, EnvironmentProblem
from common.fileio import atomic_write_json, atomic_write_text
from common.plots import pyplot, save_figure

__all__ = [
    "CVSpec",
    "STANDARD_VOLUME_NM3",
    "basin_free_energy_kJ",
    "basin_transitions",
    "combine_walkers",
    "cv_value_nm",
    "delta_g_kJ",
    "load_openmm_inputs",
    "parse_cv",
    "parse_range_nm",
    "plot_convergence",
    "plot_profile",
    "plot_walkers",
    "run_metad",
    "run_walkers",
    "shell_volume_nm3",
    "standard_state_correction_kJ",
]

#: molar gas constant, kJ/(mol K)
R_KJ_PER_MOL_K = 0.008314462618
#: kJ per kcal
KJ_PER_KCAL = 4.184
#: the volume per molecule at 1 mol/L, nm^3 (1 / (N_A * 1 mol/L) = 1660.54 A^3)
STANDARD_VOLUME_NM3 = 1.66054

def parse_cv(spec: str, n_atoms: int) -> CVSpec:
    """``distance:I:J`` (0-based indices; see :func:`common.cv.parse_cv`)."""
    return _parse_cv(spec, n_atoms, where="cv_spec")


def parse_range_nm(text: str | Sequence[float], name: str) -> tuple[float, float]:
    """Parse ``"LO,HI"`` (nm) or a pair into ``(lo, hi)`` with ``0 <= lo < hi``.

    ``name`` is the parameter named in the error.
    """
    return parse_range(text, name, "nm")


def load_openmm_inputs(system_xml: str | os.PathLike, pdb: str | os.PathLike):
    """Read a serialized OpenMM System and the coordinates of its atoms.

    Returns ``(system, positions_nm)`` with positions an ``(n_atoms, 3)`` array in nm. A box in
    the PDB (CRYST1) becomes the default box of a periodic system. Raises :class:`DataError`
    (one line) for a missing or unreadable file or an atom-count mismatch.
    """
    import openmm as mm
    from openmm import app, unit

    system_xml, pdb = Path(system_xml), Path(pdb)
    for p, what in ((system_xml, "system XML"), (pdb, "PDB")):
        if not p.is_file():
            raise DataError(f"{what} file not found", where=str(p), fix="check the path")
    try:
        system = mm.XmlSerializer.deserialize(system_xml.read_text())
    except Exception as exc:  # OpenMM raises a bare Exception for bad XML
        raise DataError(f"not a serialized OpenMM System ({_first_line(exc)})",
                        where=str(system_xml),
                        fix="write it with openmm.XmlSerializer.serialize(system)") from None
    if not isinstance(system, mm.System):
        raise DataError(f"holds a serialized {type(system).__name__}, not a System",
                        where=str(system_xml), fix="serialize the System object")
    try:
        pdbfile = app.PDBFile(str(pdb))
    except Exception as exc:
        raise DataError(f"unreadable PDB ({_first_line(exc)})", where=str(pdb),
                        fix="write it with openmm.app.PDBFile.writeFile") from None
    pos = np.asarray(pdbfile.getPositions(asNumpy=True).value_in_unit(unit.nanometer))
    if len(pos) != system.getNumParticles():
        raise DataError(f"{len(pos)} atoms in the PDB but {system.getNumParticles()} particles "
                        f"in the System {system_xml.name}", where=str(pdb),
                        fix="use the coordinates written for this System")
    box = pdbfile.topology.getPeriodicBoxVectors()
    if box is not None and system.usesPeriodicBoundaryConditions():
        system.setDefaultPeriodicBoxVectors(*box)
    return system, pos


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# ---------------------------------------------------------------------------------------------
# free energies from a profile


def _kT(temperature_K: float) -> float:
    return R_KJ_PER_MOL_K * float(temperature_K)


def basin_free_energy_kJ(cv_nm: np.ndarray, free_energy_kJ: np.ndarray,
                         basin_nm: tuple[float, float], temperature_K: float) -> float:
    """``G = -kT ln int_LO^HI exp(-F(s)/kT) ds`` (kJ/mol, up to the profile's constant).

    ``F`` is used as given (for a distance CV it already holds the volume term); the integral
    is the trapezoid rule on the grid points inside the basin plus the interpolated ends.
    """
    s = np.asarray(cv_nm, float)
    f = np.asarray(free_energy_kJ, float)
    lo, hi = basin_nm
    inside = s[(s > lo) & (s < hi)]
    pts = np.concatenate([[lo], inside, [hi]])
    kT = _kT(temperature_K)
    fp = np.interp(pts, s, f)
    shift = fp.min()
    integral = np.trapezoid(np.exp(-(fp - shift) / kT), pts)
    return float(shift - kT * math.log(integral))


def delta_g_kJ(cv_nm: np.ndarray, free_energy_kJ: np.ndarray, bound_nm: tuple[float, float],
               unbound_nm: tuple[float, float], temperature_K: float) -> float:
    """``G(bound) - G(unbound)`` from the profile as it is (kJ/mol, no standard-state term)."""
    gb = basin_free_energy_kJ(cv_nm, free_energy_kJ, bound_nm, temperature_K)
    gu = basin_free_energy_kJ(cv_nm, free_energy_kJ, unbound_nm, temperature_K)
    return gb - gu


def shell_volume_nm3(basin_nm: tuple[float, float]) -> float:
    """Volume of the spherical shell ``LO <= r <= HI`` (nm^3)."""
    lo, hi = basin_nm
    return 4.0 / 3.0 * math.pi * (hi**3 - lo**3)


def standard_state_correction_kJ(unbound_nm: tuple[float, float], temperature_K: float) -> float:
    """``-kT ln(V_u / V0)`` (kJ/mol), to add to ``delta_G``: ``dG_bind = dG - kT ln(V_u/V0)``."""
    return -_kT(temperature_K) * math.log(shell_volume_nm3(unbound_nm) / STANDARD_VOLUME_NM3)


# ---------------------------------------------------------------------------------------------
# the OpenMM side


def _recording_metadynamics():
    """:class:`openmm.app.Metadynamics` that also records every hill it deposits."""
    from openmm import unit
    from openmm.app import Metadynamics

    if not hasattr(Metadynamics, "_addGaussian"):
        raise EnvironmentProblem("this OpenMM's Metadynamics has no _addGaussian hook",
                                 fix="use OpenMM 7.3-8.x")

    class RecordingMetadynamics(Metadynamics):
        def __init__(self, *args, **kwargs):
            self.hills: list[tuple[float, float]] = []  # (CV nm, height kJ/mol)
            super().__init__(*args, **kwargs)

        def _addGaussian(self, position, height, context):
            h = height.value_in_unit(unit.kilojoule_per_mole)
            self.hills.append((float(position[0]), float(h)))
            super()._addGaussian(position, height, context)

    return RecordingMetadynamics


def _group_weights(system, group: Sequence[int]) -> list[float]:
    from openmm import unit

    masses = [system.getParticleMass(i).value_in_unit(unit.dalton) for i in group]
    return masses if sum(masses) > 0 else [1.0] * len(group)  # massless (fixed) atoms


def _centroid_force(system, cv: CVSpec, expression: str, params: dict[str, float]):
    import openmm as mm

    force = mm.CustomCentroidBondForce(2, expression)
    for name in params:
        force.addPerBondParameter(name)
    for g in cv.groups:
        force.addGroup(list(g), _group_weights(system, g))
    force.addBond([0, 1], list(params.values()))
    force.setUsesPeriodicBoundaryConditions(system.usesPeriodicBoundaryConditions())
    return force


def cv_value_nm(system, positions, cv_spec: str) -> float:
    """Return the CV (nm) of ``positions`` (``(n_atoms, 3)`` nm or a Quantity), as the bias sees it.

    It uses mass-weighted centres (equal weights for a group of massless atoms) and is periodic when
    the System is.
    """
    import openmm as mm
    from openmm import unit

    cv = parse_cv(cv_spec, system.getNumParticles())
    probe = mm.System()
    for i in range(system.getNumParticles()):
        probe.addParticle(system.getParticleMass(i))
    probe.setDefaultPeriodicBoxVectors(*system.getDefaultPeriodicBoxVectors())
    probe.addForce(_centroid_force(system, cv, "distance(g1, g2)", {}))
    ctx = mm.Context(probe, mm.VerletIntegrator(0.001), mm.Platform.getPlatformByName("Reference"))
    ctx.setPositions(_positions_nm(positions, system.getNumParticles()) * unit.nanometer)
    energy = ctx.getState(getEnergy=True).getPotentialEnergy()
    return float(energy.value_in_unit(unit.kilojoule_per_mole))


def _platform(name: str):
    import openmm as mm

    try:
        platform = mm.Platform.getPlatformByName(name)
    except Exception:
        names = [mm.Platform.getPlatform(i).getName() for i in range(mm.Platform.getNumPlatforms())]
        raise ConfigError(f"no OpenMM platform {name!r}", where="platform",
                          fix=f"use one of: {', '.join(names)}") from None
    # the project's one-thread-per-process setting (tests, sweeps) reaches OpenMM's CPU platform
    threads = os.environ.get("OPENMM_CPU_THREADS") or os.environ.get("OMP_NUM_THREADS")
    props = {"Threads": threads} if name == "CPU" and threads else {}
    return platform, props


@dataclass
class _Trace:
    """Per-hill record of a run: time, CV, height and bias, running delta_G and c(t)."""

    time_ps: list[float] = field(default_factory=list)
    cv_nm: list[float] = field(default_factory=list)
    height_kJ: list[float] = field(default_factory=list)
    bias_kJ: list[float] = field(default_factory=list)
    c_kJ: list[float] = field(default_factory=list)
    delta_g_kJ: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class _Setup:
    cv: CVSpec
    bound: tuple[float, float]
    unbound: tuple[float, float]
    grid: tuple[float, float]
    wall_nm: float
    wall_k: float
    temperature_K: float
    steps: int
    bias_factor: float
    height: float
    width: float
    pace: int
    timestep_fs: float
    friction_per_ps: float
    seed: int
    platform: str
    n_blocks: int
    funnel: Any = None  # drug_binding.funnel.Funnel
    unbound_volume_nm3: float | None = None  # funnel: accessible volume of the unbound basin
    guard: Any = None  # callable(positions_nm, step), called after every hill


def _grid_nm(meta) -> np.ndarray:
    v = meta.variables[0]
    return np.linspace(v.minValue, v.maxValue, v.gridWidth)


def _c_of_t(free_energy_kJ: np.ndarray, s: np.ndarray, setup: _Setup) -> float:
    """Tiwary-Parrinello ``c(t)`` (kJ/mol) from the current profile ``F = -g/(g-1) V``."""
    g, kT = setup.bias_factor, _kT(setup.temperature_K)
    v = -free_energy_kJ * (g - 1.0) / g
    a, b = g / (g - 1.0) * v / kT, v / ((g - 1.0) * kT)
    ma, mb = a.max(), b.max()
    num = np.trapezoid(np.exp(a - ma), s)
    den = np.trapezoid(np.exp(b - mb), s)
    return float(kT * (ma - mb + math.log(num / den)))


def _build(system, positions_nm: np.ndarray, setup: _Setup):
    import openmm as mm
    from openmm import app, unit

    system = mm.XmlSerializer.clone(system)  # never change the caller's System
    cvf = _centroid_force(system, setup.cv, "distance(g1, g2)", {})
    if setup.wall_k > 0:
        system.addForce(_centroid_force(system, setup.cv, "0.5*k*max(0, distance(g1, g2) - at)^2",
                                        {"k": setup.wall_k, "at": setup.wall_nm}))
    if setup.funnel is not None:
        system.addForce(setup.funnel.openmm_force(system))
    var = app.BiasVariable(cvf, setup.grid[0], setup.grid[1], setup.width)
    meta = _recording_metadynamics()(system, [var], setup.temperature_K * unit.kelvin,
                                     setup.bias_factor, setup.height * unit.kilojoule_per_mole,
                                     setup.pace)
    integrator = mm.LangevinMiddleIntegrator(setup.temperature_K * unit.kelvin,
                                             setup.friction_per_ps / unit.picosecond,
                                             setup.timestep_fs * unit.femtosecond)
    integrator.setRandomNumberSeed(setup.seed)
    platform, props = _platform(setup.platform)
    sim = app.Simulation(None, system, integrator, platform, props)
    sim.context.setPositions(positions_nm * unit.nanometer)
    sim.context.setVelocitiesToTemperature(setup.temperature_K * unit.kelvin, setup.seed)
    return meta, sim


def _drive(meta, sim, setup: _Setup) -> _Trace:
    """Run ``steps`` in strides of ``pace``, recording each hill.

    Each hill is recorded with the bias and ``c(t)`` just before it and the profile's ``delta_G``
    just after it.
    """
    from openmm import unit

    trace, s = _Trace(), _grid_nm(meta)
    kdt = _kT(setup.temperature_K) * (setup.bias_factor - 1.0)
    c_before = 0.0  # no bias yet
    for _ in range(setup.steps // setup.pace):
        meta.step(sim, setup.pace)
        if setup.guard is not None:
            setup.guard(sim.context.getState(getPositions=True).getPositions(asNumpy=True)
                        .value_in_unit(unit.nanometer), sim.currentStep)
        cv, h = meta.hills[-1]
        f = np.asarray(meta.getFreeEnergy().value_in_unit(unit.kilojoule_per_mole), float)
        trace.time_ps.append(sim.currentStep * setup.timestep_fs / 1000.0)
        trace.cv_nm.append(cv)
        trace.height_kJ.append(h)
        trace.bias_kJ.append(max(0.0, -kdt * math.log(h / setup.height)))
        trace.c_kJ.append(c_before)
        trace.delta_g_kJ.append(delta_g_kJ(s, f, setup.bound, setup.unbound,
                                           setup.temperature_K))
        c_before = _c_of_t(f, s, setup)
    if setup.steps % setup.pace:
        meta.step(sim, setup.steps % setup.pace)
    return trace


# ---------------------------------------------------------------------------------------------
# errors: block analysis over the second half


def _reweighted_delta_g(cv: np.ndarray, logw: np.ndarray, setup: _Setup) -> float:
    """``-kT ln(sum_bound w / sum_unbound w)`` (kJ/mol); NaN when a basin has no sample."""
    kT = _kT(setup.temperature_K)
    sums = []
    for lo, hi in (setup.bound, setup.unbound):
        m = (cv >= lo) & (cv <= hi)
        if not m.any():
            return math.nan
        top = logw[m].max()
        sums.append(top + math.log(np.exp(logw[m] - top).sum()))
    return -kT * (sums[0] - sums[1])


def _block_analysis(trace: _Trace, setup: _Setup) -> dict[str, Any]:
    """Error analysis over the second half of the run (kJ/mol).

    The hills of each of ``n_blocks`` blocks are reweighted with ``w = exp((V(s,t) - c(t))/kT)``
    to a ``delta_G`` per block; ``rw_err`` is their standard error (the error of the reweighted
    second-half estimate ``reweighted``). The profile estimate ``delta_G(t)`` also fluctuates
    from hill to hill around that mean: ``fluct`` is its standard deviation over the second
    half. The error of the final profile estimate is ``err = sqrt(rw_err^2 + fluct^2)``.
    """
    half = len(trace.cv_nm) // 2
    cv = np.asarray(trace.cv_nm[half:])
    logw = (np.asarray(trace.bias_kJ[half:]) - np.asarray(trace.c_kJ[half:])) / _kT(
        setup.temperature_K)
    edges = np.linspace(0, len(cv), setup.n_blocks + 1).astype(int)
    blocks = np.array([_reweighted_delta_g(cv[a:b], logw[a:b], setup)
                       for a, b in zip(edges[:-1], edges[1:], strict=True)])
    if np.all(np.isfinite(blocks)):
        rw_err = float(blocks.std(ddof=1) / math.sqrt(len(blocks)))
    else:
        rw_err = math.inf  # a block that never visited a basin: not converged
    fluct = float(np.std(trace.delta_g_kJ[half:], ddof=1))
    mid = half + (edges[:-1] + edges[1:]) // 2
    return {"blocks_kJ": blocks, "rw_err": rw_err, "fluct": fluct,
            "block_time_ps": [trace.time_ps[min(i, len(trace.time_ps) - 1)] for i in mid],
            "err": math.hypot(rw_err, fluct),
            "reweighted": _reweighted_delta_g(cv, logw, setup)}


# ---------------------------------------------------------------------------------------------
# settings


def _positive(name: str, value: float, fix: str) -> float:
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{name}={value:g} must be a positive number", where=name, fix=fix)
    return value


def _check_basins(bound, unbound, grid, wall_nm) -> None:
    if max(bound[0], unbound[0]) < min(bound[1], unbound[1]):
        raise ConfigError(f"bound basin {bound[0]:g},{bound[1]:g} nm overlaps unbound basin "
                          f"{unbound[0]:g},{unbound[1]:g} nm", where="bound_nm/unbound_nm",
                          fix="give basins that do not overlap (they may touch)")
    for name, (lo, hi) in (("bound_nm", bound), ("unbound_nm", unbound)):
        if lo < grid[0] or hi > grid[1]:
            raise ConfigError(f"basin {lo:g},{hi:g} nm is outside the bias grid "
                              f"{grid[0]:g},{grid[1]:g} nm", where=name,
                              fix="widen grid_nm or move the basin inside it")
        if hi > wall_nm:
            raise ConfigError(f"basin {lo:g},{hi:g} nm reaches past the upper wall at "
                              f"{wall_nm:g} nm", where=name, fix="raise upper_wall_nm")
    if wall_nm >= grid[1]:
        raise ConfigError(f"upper wall at {wall_nm:g} nm is not inside the bias grid "
                          f"{grid[0]:g},{grid[1]:g} nm", where="upper_wall_nm",
                          fix="put the wall at least a few hill widths below the grid's end")


def _setup(cv: CVSpec, bound_nm, unbound_nm, temperature_K, steps, kw: dict) -> _Setup:
    bound = parse_range_nm(bound_nm, "bound_nm")
    unbound = parse_range_nm(unbound_nm, "unbound_nm")
    width = _positive("hill_width_nm", kw["hill_width_nm"], "give a width in nm, e.g. 0.05")
    wall = kw["upper_wall_nm"]
    # default: 3 hill widths past the top basin, so that the half-hills piled against the
    # wall (a boundary artefact of metadynamics) fall outside the basin
    wall = max(bound[1], unbound[1]) + 3.0 * width if wall is None else float(wall)
    grid = kw["grid_nm"]
    grid = (0.0, wall + max(0.2, 4.0 * width)) if grid is None else parse_range_nm(grid,
                                                                                    "grid_nm")
    _check_basins(bound, unbound, grid, wall)
    if float(kw["bias_factor"]) <= 1.0:
        raise ConfigError(f"bias_factor={kw['bias_factor']} must be > 1", where="bias_factor",
                          fix="use 5-20 for well-tempered metadynamics")
    pace, n_blocks = int(kw["pace"]), int(kw["n_blocks"])
    if pace < 1 or n_blocks < 2:
        raise ConfigError(f"pace={pace}, n_blocks={n_blocks}", where="pace/n_blocks",
                          fix="use pace >= 1 step and n_blocks >= 2")
    if int(steps) // pace < 4 * n_blocks:
        raise ConfigError(f"steps={steps} gives {int(steps) // pace} hills at pace={pace}; the "
                          f"block analysis needs at least {4 * n_blocks}", where="steps",
                          fix=f"run at least {4 * n_blocks * pace} steps or lower pace")
    return _Setup(
        cv, bound, unbound, grid, wall, float(kw["wall_k_kJ_per_nm2"]),
        _positive("temperature_K", temperature_K, "give the temperature in K"), int(steps),
        float(kw["bias_factor"]),
        _positive("hill_height_kJ", kw["hill_height_kJ"], "give a height in kJ/mol, e.g. 1.2"),
        width, pace, _positive("timestep_fs", kw["timestep_fs"], "e.g. 2 fs"),
        _positive("friction_per_ps", kw["friction_per_ps"], "e.g. 1 /ps"),
        int(kw["seed"]) % 2147483646 + 1,  # OpenMM reads seed 0 as "pick one at random"
        str(kw["platform"]), n_blocks, kw.get("funnel"),
        _funnel_volume(cv, unbound, kw.get("funnel"), temperature_K), kw.get("guard"))


def _funnel_matches_cv(cv: CVSpec, funnel) -> bool:
    """Return whether the funnel's (ligand, origin) are the CV's two groups, in either order."""
    return {frozenset(g) for g in cv.groups} == {frozenset(funnel.ligand),
                                                 frozenset(funnel.origin)}


def _funnel_volume(cv: CVSpec, unbound, funnel, temperature_K) -> float | None:
    """Return the accessible volume of the unbound basin inside the funnel (nm^3), when defined."""
    if funnel is None or not _funnel_matches_cv(cv, funnel):
        return None
    v = funnel.accessible_volume_nm3(unbound, float(temperature_K))
    if not v > 1e-12:
        raise ConfigError(f"the unbound basin {unbound[0]:g},{unbound[1]:g} nm lies outside "
                          "the funnel", where="unbound_nm",
                          fix="put the unbound basin inside the funnel's cylinder")
    return v


def _check_funnel_start(system, pos: np.ndarray, funnel, tol_nm: float = 0.05) -> None:
    """DataError when the ligand's centre starts more than ``tol_nm`` outside the funnel."""
    centres = []
    for g in (funnel.ligand, funnel.origin, funnel.toward):
        w = np.asarray(_group_weights(system, g))
        centres.append(np.average(pos[list(g)], axis=0, weights=w))
    lig, a, b = centres
    if np.linalg.norm(b - a) < 1e-6:
        raise DataError("the funnel's origin and toward groups have the same centre",
                        where="funnel", fix="give a toward group away from the origin")
    z, rho = funnel.axial(lig[None], a, b)
    z, rho = float(z[0]), float(rho[0])
    out = max(rho - float(funnel.radius_at(z)), z - funnel.z_max_nm, funnel.z_min_nm - z)
    if out > tol_nm:
        raise DataError(f"the ligand starts {out:.2f} nm outside the funnel (z = {z:.2f} nm, "
                        f"rho = {rho:.2f} nm, R(z) = {float(funnel.radius_at(z)):.2f} nm)",
                        where="funnel", fix="widen the funnel or start the ligand inside it")


def _positions_nm(positions, n_atoms: int) -> np.ndarray:
    from openmm import unit

    if unit.is_quantity(positions):
        positions = positions.value_in_unit(unit.nanometer)
    pos = np.asarray(positions, float)
    if pos.shape != (n_atoms, 3) or not np.isfinite(pos).all():
        raise DataError(f"positions have shape {pos.shape} (or non-finite values); the System "
                        f"has {n_atoms} particles", where="positions",
                        fix="give an (n_atoms, 3) array in nm")
    return pos


def _check_start(meta, sim, setup: _Setup) -> None:
    s0 = float(meta.getCollectiveVariables(sim)[0])
    if s0 > setup.wall_nm + 0.1 or s0 < setup.grid[0]:
        raise DataError(f"the starting CV is {s0:.3f} nm, outside the upper wall at "
                        f"{setup.wall_nm:g} nm / grid {setup.grid[0]:g},{setup.grid[1]:g} nm",
                        where="positions", fix="start inside the basins or move the wall/grid")


# ---------------------------------------------------------------------------------------------
# the run


def run_metad(system, positions, cv_spec: str, bound_nm, unbound_nm, temperature_K: float,
              steps: int, outdir: str | os.PathLike, *, bias_factor: float = 10.0,
              hill_height_kJ: float = 1.2, hill_width_nm: float = 0.05, pace: int = 500,
              timestep_fs: float = 2.0, friction_per_ps: float = 1.0, seed: int = 0,
              platform: str = "CPU", grid_nm=None, upper_wall_nm: float | None = None,
              wall_k_kJ_per_nm2: float = 5000.0, n_blocks: int = 5, funnel=None,
              guard: Callable[[np.ndarray, int], None] | None = None) -> dict[str, Any]:
    """Well-tempered metadynamics on a CV of an OpenMM System; returns the result dict.

    Parameters
    ----------
    system, positions
        Any OpenMM ``System`` (not changed: a copy gets the bias) and its coordinates, an
        ``(n_atoms, 3)`` array in nm or an OpenMM Quantity.
    cv_spec
        ``distance:I:J`` with 0-based atom indices (see :func:`parse_cv`).
    bound_nm, unbound_nm
        The two basins ``(LO, HI)`` or ``"LO,HI"`` in nm; they must not overlap.
    temperature_K, steps, outdir
        Temperature (K), MD steps, and the folder for the files (written atomically).
    bias_factor, hill_height_kJ, hill_width_nm, pace
        Well-tempered bias factor gamma, initial hill height (kJ/mol), hill width sigma (nm)
        and steps between hills.
    timestep_fs, friction_per_ps, seed, platform
        Langevin (middle) integrator settings, the seed (same seed and platform -> same run)
        and the OpenMM platform; for a handful of atoms "Reference" is faster than "CPU".
    grid_nm, upper_wall_nm, wall_k_kJ_per_nm2
        Bias grid (default ``0`` to the wall plus ``max(0.2, 4 sigma)``), and the harmonic upper
        wall ``0.5 k (s - at)^2`` for ``s > at`` (default 3 hill widths past the top of the
        basins: at the top itself, the hills cut by the wall make the profile too high there
        -- measured on a free particle in a funnel, ΔG off by -0.4 kcal/mol; ``k = 0``
        turns it off).
    n_blocks
        Blocks over the second half for the error.
    funnel
        A :class:`drug_binding.funnel.Funnel` restraint on the ligand's centre (or None); see
        the module docstring for the standard-state correction it implies.
    guard
        Called as ``guard(positions_nm, step)`` after every hill; an exception it raises stops
        the run (e.g. a check that the ligand is still intact). A
        :class:`~common.errors.SimulationError` passes through unchanged.

    Returns
    -------
    dict
        ``cv``, ``temperature_K``, ``profile`` (``cv_nm``, ``free_energy_kcal_per_mol``),
        ``delta_G_kcal_per_mol`` (G(bound) - G(unbound) from the profile as it is),
        ``delta_G_err_kcal_per_mol``, ``delta_G_bind_kcal_per_mol`` (standard state 1 M),
        ``delta_G_reweighted_kcal_per_mol``, ``convergence``, ``settings`` and ``files``.
    """
    t0 = time.perf_counter()
    cv = parse_cv(cv_spec, system.getNumParticles())
    setup = _setup(cv, bound_nm, unbound_nm, temperature_K, steps, {
        "bias_factor": bias_factor, "hill_height_kJ": hill_height_kJ,
        "hill_width_nm": hill_width_nm, "pace": pace, "timestep_fs": timestep_fs,
        "friction_per_ps": friction_per_ps, "seed": seed, "platform": platform,
        "grid_nm": grid_nm, "upper_wall_nm": upper_wall_nm,
        "wall_k_kJ_per_nm2": wall_k_kJ_per_nm2, "n_blocks": n_blocks, "funnel": funnel,
        "guard": guard})
    pos = _positions_nm(positions, system.getNumParticles())
    if funnel is not None:
        _check_funnel_start(system, pos, funnel)
    meta, trace = _simulate(system, pos, setup)
    result = _result(meta, trace, setup)
    result["wall_time_s"] = round(time.perf_counter() - t0, 2)
    result["files"] = _write_outputs(Path(outdir), result, trace, setup)
    atomic_write_json(Path(outdir) / "metad.json", result)
    return result


def _simulate(system, pos: np.ndarray, setup: _Setup):
    from common.errors import SimulationError

    meta, sim = _build(system, pos, setup)
    _check_start(meta, sim, setup)
    try:
        trace = _drive(meta, sim, setup)
    except Exception as exc:  # OpenMM: "Particle coordinate is NaN" and the like
        if isinstance(exc, ConfigError | DataError | SimulationError):
            raise
        raise SimulationError(f"the simulation failed at step {sim.currentStep} "
                              f"({_first_line(exc)})", where="run_metad",
                              fix="lower timestep_fs or hill_height_kJ, or check the System"
                              ) from exc
    return meta, trace


# ---------------------------------------------------------------------------------------------
# independent walkers


def run_walkers(system, positions, cv_spec: str, bound_nm, unbound_nm, temperature_K: float,
                steps: int, outdir: str | os.PathLike, walkers: int = 2, seed: int = 0,
                **kwargs) -> dict[str, Any]:
    """Run ``walkers`` independent :func:`run_metad` runs from the same start and combine them.

    The seeds are ``seed``, ``seed + 1000``, ... and the files go to ``outdir/walker_<k>/``;
    :func:`combine_walkers` combines them into ``outdir/metad.json`` (the keys of
    :func:`run_metad`'s result plus ``walkers``, ``walker_delta_G_kcal_per_mol``, ``n_walkers``,
    ``error_method``) and ``outdir/walkers.png``. A walker that fails stops the whole run (its error
    is raised); keyword arguments go to every :func:`run_metad`.

    The walkers run one after another in this process (a simplification; the case study sends
    them through :mod:`common.sweep` instead).
    """
    t0 = time.perf_counter()
    n = int(walkers)
    if n < 1:
        raise ConfigError(f"walkers={walkers} must be >= 1", where="walkers",
                          fix="give 1 or more walkers")
    outdir = Path(outdir)
    runs = [run_metad(system, positions, cv_spec, bound_nm, unbound_nm, temperature_K, steps,
                      outdir / f"walker_{k}", seed=int(seed) + 1000 * k, **kwargs)
            for k in range(n)]
    combined = combine_walkers(runs)
    first = runs[0]
    result = {key: first[key] for key in ("cv", "cv_spec", "temperature_K", "bound_nm",
                                          "unbound_nm", "profile_includes_jacobian")}
    result.update(combined)
    for key in ("unbound_volume_nm3", "unbound_volume_method", "funnel", "standard_state_note"):
        if key in first:
            result[key] = first[key]
    if result.get("delta_G_bind_kcal_per_mol") is None:
        result.pop("delta_G_bind_kcal_per_mol", None)
    result["settings"] = {**first["settings"], "walkers": n, "seeds": [int(seed) + 1000 * k
                                                                       for k in range(n)]}
    result["walkers"] = [{"walker": k, "seed": int(seed) + 1000 * k,
                          "folder": str(outdir / f"walker_{k}"),
                          **{key: r.get(key) for key in (
                              "delta_G_kcal_per_mol", "delta_G_err_kcal_per_mol",
                              "delta_G_bind_kcal_per_mol", "delta_G_reweighted_kcal_per_mol",
                              "n_hills", "n_basin_transitions", "wall_time_s")}}
                         for k, r in enumerate(runs)]
    result["wall_time_s"] = round(time.perf_counter() - t0, 2)
    files = {"json": str(outdir / "metad.json"), "walkers_plot": str(outdir / "walkers.png")}
    try:
        plot_walkers(runs, combined, outdir / "walkers.png")
    except Exception as exc:  # a figure must never cost the numbers
        files.pop("walkers_plot")
        result["plot_error"] = _first_line(exc)
    result["files"] = files
    atomic_write_json(outdir / "metad.json", result)
    return result


def combine_walkers(walkers: list[dict[str, Any]]) -> dict[str, Any]:
    """Combine independent walkers into the ΔG of one ligand.

    Each walker is a :func:`run_metad` result or a summary with the same keys. ΔG is the mean of the
    walkers' profile ΔG's, its error the standard error over walkers (``sd / sqrt(n)``; one walker
    keeps its own block error), and ΔG_bind = ΔG + the (walker-independent) standard-state
    correction.

    With the walkers' profiles present, ``profile`` is their mean after shifting each so that
    its unbound basin's G is 0 (then the minimum set to 0); its own ``G(bound) - G(unbound)``
    is given as ``delta_G_of_mean_profile_kcal_per_mol`` (it differs from the mean of the
    walkers' ΔG's by terms of order spread^2 / kT).
    """
    n = len(walkers)
    if n == 0:
        raise ValueError("no walkers to combine")
    dg = np.array([w["delta_G_kcal_per_mol"] for w in walkers], float)
    rw = np.array([np.nan if w.get("delta_G_reweighted_kcal_per_mol") is None
                   else w["delta_G_reweighted_kcal_per_mol"] for w in walkers], float)
    corr = walkers[0].get("standard_state_correction_kcal_per_mol")
    mean = float(dg.mean())
    if n >= 2:
        err = float(dg.std(ddof=1) / math.sqrt(n))
        method = (f"{n} independent walkers: mean of their profile ΔG's ± the standard error "
                  "over walkers (sd/sqrt(n))")
    else:
        err = walkers[0]["delta_G_err_kcal_per_mol"]
        method = "one walker: block analysis of its second half (drug_binding.metad)"
    sim_ps = [w["simulated_ps"] if "simulated_ps" in w else
              w["settings"]["steps"] * w["settings"]["timestep_fs"] / 1000.0 for w in walkers]
    out = {
        "delta_G_kcal_per_mol": mean,
        "delta_G_err_kcal_per_mol": err,
        "delta_G_bind_kcal_per_mol": None if corr is None else mean + corr,
        "standard_state_correction_kcal_per_mol": corr,
        "delta_G_reweighted_kcal_per_mol": (float(np.nanmean(rw)) if np.isfinite(rw).any()
                                            else None),
        "n_walkers": n,
        "walker_delta_G_kcal_per_mol": dg.tolist(),
        "walker_basin_transitions": [w["n_basin_transitions"] for w in walkers],
        "n_hills": int(sum(w["n_hills"] for w in walkers)),
        "wall_time_s": round(float(sum(w["wall_time_s"] for w in walkers)), 1),
        "simulated_ps": float(sum(sim_ps)),
        "simulated_ps_per_walker": sim_ps[0],
        "cv_spec": walkers[0]["cv_spec"], "bound_nm": walkers[0]["bound_nm"],
        "unbound_nm": walkers[0]["unbound_nm"],
        "error_method": method,
    }
    if all("profile" in w for w in walkers):
        out["profile"], out["delta_G_of_mean_profile_kcal_per_mol"] = _mean_profile(walkers)
    return out


def _mean_profile(walkers: list[dict[str, Any]]) -> tuple[dict[str, list[float]], float]:
    s = np.asarray(walkers[0]["profile"]["cv_nm"], float)
    t = walkers[0]["temperature_K"]
    shifted = []
    for w in walkers:
        f = np.asarray(w["profile"]["free_energy_kcal_per_mol"], float) * KJ_PER_KCAL
        f = np.interp(s, np.asarray(w["profile"]["cv_nm"], float), f)
        shifted.append(f - basin_free_energy_kJ(s, f, w["unbound_nm"], t))
    f = np.mean(shifted, axis=0)
    f -= f.min()
    dg = delta_g_kJ(s, f, walkers[0]["bound_nm"], walkers[0]["unbound_nm"], t)
    return ({"cv_nm": s.tolist(), "free_energy_kcal_per_mol": (f / KJ_PER_KCAL).tolist()},
            dg / KJ_PER_KCAL)


# ---------------------------------------------------------------------------------------------
# the result


def _kcal(x: float) -> float | None:
    return float(x) / KJ_PER_KCAL if math.isfinite(x) else None


def _final_profile(meta) -> tuple[np.ndarray, np.ndarray]:
    from openmm import unit

    f = np.asarray(meta.getFreeEnergy().value_in_unit(unit.kilojoule_per_mole), float)
    return _grid_nm(meta), f - f.min()


def _convergence(trace: _Trace, max_points: int = 200) -> dict[str, list[float]]:
    n = len(trace.time_ps)
    idx = np.unique(np.linspace(0, n - 1, min(n, max_points)).astype(int))
    return {"time_ps": [trace.time_ps[i] for i in idx],
            "delta_G_kcal_per_mol": [trace.delta_g_kJ[i] / KJ_PER_KCAL for i in idx]}


def _result(meta, trace: _Trace, setup: _Setup) -> dict[str, Any]:
    s, f = _final_profile(meta)
    dg = delta_g_kJ(s, f, setup.bound, setup.unbound, setup.temperature_K)
    blocks = _block_analysis(trace, setup)
    out: dict[str, Any] = {
        "cv": setup.cv.kind, "cv_spec": setup.cv.text, "temperature_K": setup.temperature_K,
        "profile": {"cv_nm": s.tolist(), "free_energy_kcal_per_mol": (f / KJ_PER_KCAL).tolist()},
        "delta_G_kcal_per_mol": _kcal(dg),
        "delta_G_err_kcal_per_mol": _kcal(blocks["err"]),
        "delta_G_reweighted_kcal_per_mol": _kcal(blocks["reweighted"]),
        "delta_G_reweighted_err_kcal_per_mol": _kcal(blocks["rw_err"]),
        "bound_nm": list(setup.bound), "unbound_nm": list(setup.unbound),
        "profile_includes_jacobian": True,
    }
    if setup.funnel is not None:
        out["funnel"] = setup.funnel.to_dict()
    if setup.funnel is not None and setup.unbound_volume_nm3 is None:
        out["standard_state_note"] = (
            "no delta_G_bind: the funnel's ligand/origin groups are not the CV's groups, so the "
            "unbound basin's volume is not defined")
    elif setup.cv.kind == "distance":
        v_u = (shell_volume_nm3(setup.unbound) if setup.funnel is None
               else setup.unbound_volume_nm3)
        corr = -_kT(setup.temperature_K) * math.log(v_u / STANDARD_VOLUME_NM3)
        out["delta_G_bind_kcal_per_mol"] = _kcal(dg + corr)
        out["standard_state_correction_kcal_per_mol"] = _kcal(corr)
        out["unbound_volume_nm3"] = v_u
        out["unbound_volume_method"] = (
            "spherical shell (4/3) pi (HI^3 - LO^3)" if setup.funnel is None else
            "funnel: int exp(-U_funnel/kT) d^3x over the unbound CV interval (quadrature)")
    out["error_analysis"] = {
        "method": "second half of the run: err = sqrt(reweighted_err^2 + profile_fluct^2)",
        "n_blocks": setup.n_blocks,
        "reweighted_err_kcal_per_mol": _kcal(blocks["rw_err"]),
        "profile_fluct_kcal_per_mol": _kcal(blocks["fluct"]),
        "block_time_ps": blocks["block_time_ps"],
        "block_delta_G_kcal_per_mol": [_kcal(x) for x in blocks["blocks_kJ"]]}
    out["convergence"] = _convergence(trace)
    out["n_hills"] = len(trace.cv_nm)
    out["n_basin_transitions"] = basin_transitions(trace.cv_nm, setup.bound, setup.unbound)
    out["settings"] = _settings(setup)
    return out


def basin_transitions(cv_nm: Sequence[float], bound_nm, unbound_nm) -> int:
    """Count the committed crossings between the two basins in a CV series (nm).

    That is the number of times the series enters one basin after having last been in the other
    (time between the basins is not counted as a crossing).
    """
    last, n = None, 0
    for s in cv_nm:
        here = ("b" if bound_nm[0] <= s <= bound_nm[1]
                else "u" if unbound_nm[0] <= s <= unbound_nm[1] else None)
        if here is not None:
            n += last is not None and here != last
            last = here
    return n


def _settings(setup: _Setup) -> dict[str, Any]:
    return {"steps": setup.steps, "bias_factor": setup.bias_factor,
            "hill_height_kJ_per_mol": setup.height, "hill_width_nm": setup.width,
            "pace_steps": setup.pace, "timestep_fs": setup.timestep_fs,
            "friction_per_ps": setup.friction_per_ps, "openmm_seed": setup.seed,
            "platform": setup.platform, "grid_nm": list(setup.grid),
            "upper_wall_nm": setup.wall_nm, "wall_k_kJ_per_nm2": setup.wall_k,
            "funnel": None if setup.funnel is None else setup.funnel.to_dict()}


# ---------------------------------------------------------------------------------------------
# files


def _hills_text(trace: _Trace, setup: _Setup) -> str:
    scale = setup.bias_factor / (setup.bias_factor - 1.0)  # PLUMED stores -F contributions
    lines = ["#! FIELDS time cv sigma_cv height biasf", "#! SET multivariate false",
             "#! SET kerneltype gaussian"]
    lines += [f"{t:14.4f} {s:14.8f} {setup.width:14.8f} {h * scale:14.8f} {setup.bias_factor:g}"
              for t, s, h in zip(trace.time_ps, trace.cv_nm, trace.height_kJ, strict=True)]
    return "\n".join(lines) + "\n"


def _colvar_text(trace: _Trace) -> str:
    lines = ["#! FIELDS time cv metad.bias metad.rbias"]
    lines += [f"{t:14.4f} {s:14.8f} {v:14.6f} {v - c:14.6f}" for t, s, v, c in
              zip(trace.time_ps, trace.cv_nm, trace.bias_kJ, trace.c_kJ, strict=True)]
    return "\n".join(lines) + "\n"


def _fes_text(result: dict, setup: _Setup) -> str:
    s = np.asarray(result["profile"]["cv_nm"])
    f = np.asarray(result["profile"]["free_energy_kcal_per_mol"]) * KJ_PER_KCAL
    lines = ["#! FIELDS cv file.free", f"#! SET min_cv {setup.grid[0]:g}",
             f"#! SET max_cv {setup.grid[1]:g}", f"#! SET nbins_cv {len(s)}",
             "#! SET periodic_cv false"]
    lines += [f"{a:14.8f} {b:14.6f}" for a, b in zip(s, f, strict=True)]
    return "\n".join(lines) + "\n"


def _write_outputs(outdir: Path, result: dict, trace: _Trace, setup: _Setup) -> dict[str, str]:
    """HILLS, COLVAR, fes.dat (kJ/mol, PLUMED text) and the two figures, each atomically."""
    files = {"hills": outdir / "HILLS", "colvar": outdir / "COLVAR", "fes": outdir / "fes.dat",
             "profile_plot": outdir / "profile.png",
             "convergence_plot": outdir / "convergence.png", "json": outdir / "metad.json"}
    atomic_write_text(files["hills"], _hills_text(trace, setup))
    atomic_write_text(files["colvar"], _colvar_text(trace))
    atomic_write_text(files["fes"], _fes_text(result, setup))
    plot_profile(files["profile_plot"], result)
    plot_convergence(files["convergence_plot"], result)
    return {k: str(v) for k, v in files.items()}


def plot_profile(path: str | os.PathLike, result: dict) -> Path:
    """Plot F(s) (kcal/mol) with the basins shaded.

    For a distance CV also F(s) + 2kT ln s (the profile with the volume term removed, flat where the
    ligand is free).
    """
    plt = pyplot()
    s = np.asarray(result["profile"]["cv_nm"])
    f = np.asarray(result["profile"]["free_energy_kcal_per_mol"])
    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    ax.plot(s, f, color="k", label="F(s) (includes the volume term)")
    if result["cv"] == "distance":
        kt = _kT(result["temperature_K"]) / KJ_PER_KCAL
        w = f + 2.0 * kt * np.log(np.maximum(s, 1e-6))
        m = s > 1e-6
        ax.plot(s[m], w[m] - w[m].min(), "--", color="tab:gray", label="F(s) + 2kT ln s")
    for key, color in (("bound_nm", "tab:blue"), ("unbound_nm", "tab:orange")):
        ax.axvspan(*result[key], color=color, alpha=0.15, label=key.replace("_nm", ""))
    dg, err = result["delta_G_kcal_per_mol"], result["delta_G_err_kcal_per_mol"]
    ax.set(xlabel="CV (nm)", ylabel="free energy (kcal/mol)", ylim=(-0.5, min(f.max(), 30) + 1),
           title=f"{result['cv_spec']}: ΔG = {dg:.2f} ± {err if err is not None else math.nan:.2f}"
                 " kcal/mol")
    ax.legend(fontsize=8)
    return save_figure(fig, path, dpi=150)


def plot_convergence(path: str | os.PathLike, result: dict) -> Path:
    """Plot the running ΔG(t) from the profile, the final value ± error, the second half shaded."""
    plt = pyplot()
    conv = result["convergence"]
    t, g = np.asarray(conv["time_ps"]), np.asarray(conv["delta_G_kcal_per_mol"], float)
    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    ax.plot(t, g, color="k", lw=1.0, label="ΔG(t) from the profile")
    dg, err = result["delta_G_kcal_per_mol"], result["delta_G_err_kcal_per_mol"]
    if err is not None:
        ax.axhspan(dg - err, dg + err, color="tab:blue", alpha=0.2, label="final ± error")
    ax.axvspan(t[-1] / 2, t[-1], color="0.92", zorder=0, label="blocks (second half)")
    ea = result["error_analysis"]
    pts = [(x, y) for x, y in zip(ea["block_time_ps"], ea["block_delta_G_kcal_per_mol"],
                                  strict=True) if y is not None]
    if pts:
        ax.plot(*zip(*pts, strict=True), "o", ms=4, color="tab:orange",
                label="reweighted ΔG per block")
    ax.set(xlabel="time (ps)", ylabel="ΔG = G(bound) − G(unbound) (kcal/mol)")
    ax.legend(fontsize=8)
    return save_figure(fig, path, dpi=150)


def plot_walkers(walkers: list[dict[str, Any]], combined: dict[str, Any],
                 path: str | os.PathLike) -> Path:
    """Plot each walker's profile and its running ΔG(t), with the combined ΔG ± error.

    Each profile is shifted so its unbound basin's G is 0: the bound dip reads as ΔG.
    """
    plt = pyplot()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    for k, w in enumerate(walkers):
        s = np.asarray(w["profile"]["cv_nm"])
        f = np.asarray(w["profile"]["free_energy_kcal_per_mol"])
        gu = basin_free_energy_kJ(s, f * KJ_PER_KCAL, w["unbound_nm"], w["temperature_K"])
        a1.plot(s, f - gu / KJ_PER_KCAL, lw=1, label=f"walker {k}")
        c = w["convergence"]
        a2.plot(c["time_ps"], c["delta_G_kcal_per_mol"], lw=1, label=f"walker {k}")
    w0 = walkers[0]
    for ax in (a1,):
        ax.axvspan(*w0["bound_nm"], color="tab:blue", alpha=0.12, label="bound")
        ax.axvspan(*w0["unbound_nm"], color="tab:orange", alpha=0.12, label="unbound")
    dg, err = combined["delta_G_kcal_per_mol"], combined["delta_G_err_kcal_per_mol"]
    if err is not None:
        a2.axhspan(dg - err, dg + err, color="0.8", label="mean ± error")
    a1.set(xlabel="CV (nm)", ylabel="F(s) − G(unbound) (kcal/mol)",
           title="profiles (volume term included)")
    a2.set(xlabel="time (ps)", ylabel="ΔG(t) bound − unbound (kcal/mol)",
           title=f"ΔG = {dg:.2f} ± {err if err is not None else math.nan:.2f} kcal/mol")
    a1.legend(fontsize=7)
    a2.legend(fontsize=7)
    return save_figure(fig, path, dpi=150)
