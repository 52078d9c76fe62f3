"""Absolute free energies of crystals by Frenkel–Ladd thermodynamic integration.

The path runs from an Einstein crystal (λ = 0) to the full potential (λ = 1),
``U(λ) = λ U_pot + (1 − λ) U_Ein``, ``dU/dλ = U_pot − U_Ein``; the integral over λ is done
with Gauss–Legendre points, and every (temperature, λ) pair is one system of a single batched
:func:`common.md.runner.run_md` job (per-system temperature; λ held per system by the
:class:`FrenkelLaddTerm`, which is sliced with each batch).

What is computed
----------------
The classical Helmholtz free energy per atom of the crystal at the given cell, atoms
distinguishable (no N!), kinetic part included (Λ_i = h/√(2π m_i kT)), the centre of mass
(COM) free to move through the cell. For a harmonic crystal this is::

    F = E0 − kT [ ln(V/Λ_M³) + Σ_{a=1}^{3N−3} ln(kT/ħω_a) ],   Λ_M = h/√(2π M kT),

with M the total mass and ω_a the non-zero frequencies of the mass-weighted Hessian; for one
element Λ_M = Λ/√N, i.e. ln(V N^{3/2}/Λ³).

Centre of mass (Polson, Trizac, Pronk & Frenkel, J. Chem. Phys. 112, 5339 (2000))
--------------------------------------------------------------------------------
With Λ_i^{-3} from the momenta, Z = Π_i Λ_i^{-3} ∫ d^{3N}r e^{−βU}. Insert
1 = ∫ dR0 δ(R(r) − R0), R = Σ m_i r_i / M. For a translation-invariant U the inner integral
does not depend on R0, so::

    Z = V · Z_CM,    Z_CM = Π_i Λ_i^{-3} ∫ d^{3N}r δ(R(r) − R0) e^{−βU},           (1)

i.e. F = F_CM − kT ln V: Polson et al.'s correction from the COM-constrained to the free
crystal, for distinguishable atoms (their further ln N! terms belong to identical atoms).
The constrained Frenkel–Ladd result is F_CM = F_CM,Ein + ∫ ⟨U_pot − U_Ein⟩_{λ,CM} dλ.

Polson et al. fix the COM in the simulation. Here the Einstein springs act instead on the
displacements from the instantaneous COM, ``d_i = u_i − Σ_j m_j u_j / M`` (u_i = r_i − r0_i),
so U_Ein, U_pot and every U(λ) are translation invariant: the COM is an exactly free
coordinate (Brownian under the Langevin thermostat) that decouples from the internal ones.
All forces have zero COM component and the BAOAB noise is isotropic in mass-weighted
coordinates, so the internal coordinates follow BAOAB on the constrained manifold and sample
exactly the constrained ensemble of (1): the λ-averages are Polson's constrained averages,
with nothing to remove from the dynamics.

The COM-constrained Einstein crystal: in q_i = √m_i u_i the springs are ½ Σ_i (k_i/m_i) q_i²,
restricted (per Cartesian axis) to the (N−1)-dimensional subspace orthogonal to the COM
direction e_i = √(m_i/M). The δ in (1) contributes M^{3/2}, d^{3N}u = Π m_i^{-3/2} d^{3N}q,
and the determinant of a diagonal D restricted to e⊥ is det D · eᵀD⁻¹e, so per axis::

    Π_{a=1}^{N−1} ω_a² = Π_i (k_i/m_i) · Σ_i m_i² / (M k_i)

and Z_CM,Ein = e^{−βE0} Λ_M^{-3} Π_{3N−3} (kT/ħω_a): the harmonic formula above with these
ω_a (:func:`einstein_free_energy`). With one k/m ratio all 3N−3 modes have ω = √(k/m), and two
Einstein crystals k1, k2 = c·k1 differ by ΔF = (3N−3)/2 · kT ln c.

Einstein springs: by default, per element, the mean over its atoms of the Hessian's diagonal
self-block (the force constant of one atom moved alone; deterministic, no extra MD run, the
same at every temperature). Any positive springs give the same F; closer ones give a flatter
integrand.

Per-temperature lattice: :func:`frenkel_ladd_expanded` runs each temperature at the lattice
that :func:`thermal_expansion` (NPT MD) gives it, positions relaxed at that cell.

Independent check: :mod:`semiconductors.lammps_ti` computes the same quantity for Tersoff
GaN with LAMMPS's own ``fix ti/spring`` (nonequilibrium switching, centre of mass fixed,
different springs); 72 atoms at 600 K agree within 0.67 combined standard errors.

MBAR cross-check: each temperature's result also holds ``mbar`` (:func:`mbar_estimate`,
pymbar over the same windows, from the stored dU/dλ samples) with its own free energy, error
and the TI − MBAR difference in combined standard errors (the two use the same samples, so
this overstates the independent error: a diagnostic, not a test statistic).

Errors: per window, the standard error of ⟨dU/dλ⟩ from block averages (the largest over block
lengths with at least 16 blocks), propagated through the quadrature weights. Diagnostics per
window: the drift between the two halves of the production run (in standard errors), the
statistical inefficiency (Sokal's windowed autocorrelation sum) and the number of independent
samples; the result's ``warnings`` name windows that drift by > 4 standard errors or have < 20
independent samples. ``outdir/dudl_vs_lambda.png`` plots ⟨dU/dλ⟩ against λ per temperature.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from ase import units as ase_units

from common.errors import ConfigError, DataError, SimulationError
from common.fileio import atomic_write_json
from common.md.state import cell_inv
from common.potential.protocol import BatchedPotential, evaluate
from common.units import KB_EV_PER_K

#: reduced Planck constant, eV × ASE time (ASE time = Å √(amu/eV))
HBAR_EV_ASE: float = float(ase_units._hbar * ase_units.J * ase_units.s)
#: Planck constant, eV × ASE time
H_EV_ASE: float = 2.0 * np.pi * HBAR_EV_ASE
#: a window whose two halves differ by more than this many standard errors is flagged
DRIFT_LIMIT_SE = 4.0
MIN_BLOCKS = 16
#: fewer independent samples than this in a window: its block error bar is not trusted
MIN_INDEPENDENT = 20
#: a starting structure with a larger force (eV/Å) is flagged as not relaxed
UNRELAXED_FORCE_EV_A = 0.05

__all__ = ["EinsteinCrystal", "FrenkelLaddTerm", "at_lattice", "einstein_free_energy",
           "einstein_springs", "formation_free_energy", "frenkel_ladd", "frenkel_ladd_expanded",
           "harmonic_free_energy", "hessian", "lambda_grid", "thermal_expansion"]


# -- input checks -------------------------------------------------------------------------
def check_crystal(atoms: Atoms) -> None:
    """Refuse what Frenkel–Ladd cannot treat: not 3D-periodic, < 2 atoms, fixed atoms."""
    if not isinstance(atoms, Atoms):
        raise DataError(f"expected an ASE Atoms, got {type(atoms).__name__}", where="structure",
                        fix="read the structure with ase.io.read")
    if not (atoms.pbc.all() and abs(atoms.cell.volume) > 1e-8):
        raise DataError("Frenkel-Ladd needs a crystal periodic along x, y and z (pbc="
                        f"{atoms.pbc.tolist()})", where="structure",
                        fix="give a bulk cell, periodic along all three axes (a supercell of the "
                            "crystal, with or without the defect)")
    if len(atoms) < 2:
        raise DataError(f"a crystal of {len(atoms)} atom has no vibrations once the centre of "
                        "mass is free", where="structure", fix="use a supercell of >= 2 atoms")
    if any(type(c).__name__ == "FixAtoms" for c in atoms.constraints):
        raise DataError("fixed atoms (FixAtoms) break the free centre of mass",
                        where="structure", fix="remove the constraint (atoms.set_constraint())")


def check_temperatures(temperatures_K) -> np.ndarray:
    """Temperatures as a 1-D float array; each finite and > 0 K."""
    t = np.atleast_1d(np.asarray(temperatures_K, dtype=float))
    if t.ndim != 1 or t.size == 0:
        raise ConfigError("no temperatures given", where="temperatures_K",
                          fix="give one or more temperatures in K, e.g. 300,600,900")
    bad = [float(x) for x in t if not (np.isfinite(x) and x > 0)]
    if bad:
        raise ConfigError(f"temperature must be > 0 K (got {bad[0]:g})", where="temperatures_K",
                          fix="give positive temperatures in K, e.g. 300,600,900")
    return t


def lambda_grid(n_lambda: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre points and weights on λ ∈ [0, 1] (weights sum to 1)."""
    if not isinstance(n_lambda, int | np.integer) or n_lambda < 2:
        raise ConfigError(f"the λ grid needs at least 2 points (got {n_lambda!r})",
                          where="n_lambda", fix="use e.g. n_lambda=8 Gauss-Legendre points")
    x, w = np.polynomial.legendre.leggauss(int(n_lambda))
    return 0.5 * (x + 1.0), 0.5 * w


# -- springs and harmonic free energies ---------------------------------------------------
def per_atom_springs(atoms: Atoms, spring_eV_per_A2) -> np.ndarray:
    """Return the spring constant of each atom, eV/Å².

    From one value, a dict by element symbol, or one value per atom.
    """
    syms = atoms.get_chemical_symbols()
    if isinstance(spring_eV_per_A2, Mapping):
        missing = sorted(set(syms) - set(spring_eV_per_A2))
        if missing:
            raise ConfigError(f"no spring constant for element {missing[0]}",
                              where="spring_eV_per_A2",
                              fix="give one value per element present, e.g. {'Ga': 5, 'N': 8}")
        k = np.array([float(spring_eV_per_A2[s]) for s in syms])
    else:
        k = np.broadcast_to(np.asarray(spring_eV_per_A2, dtype=float), (len(atoms),)).copy() \
            if np.ndim(spring_eV_per_A2) == 0 else np.asarray(spring_eV_per_A2, dtype=float)
    if k.shape != (len(atoms),) or not (np.isfinite(k) & (k > 0)).all():
        raise ConfigError("spring constants must be finite and > 0 eV/Å², one value, one per "
                          "element or one per atom", where="spring_eV_per_A2",
                          fix="give e.g. 5.0 (eV/Å²), or leave it unset to take the Hessian "
                              "diagonal")
    return k


def _free_energy_from_modes(atoms: Atoms, sum_log_omega2: float, temperature_K: float,
                            energy_eV: float) -> float:
    """Return the harmonic free energy per atom, eV, from the mode frequencies.

    E0 − kT[ln(V/Λ_M³) + Σ_a ln(kT/ħω_a)] per atom, eV, over the 3N−3 internal modes
    (``sum_log_omega2``: Σ_a ln ω_a², ω in 1/ASE time).
    """
    kt = KB_EV_PER_K * float(temperature_K)
    mass = float(atoms.get_masses().sum())
    lam_m = H_EV_ASE / np.sqrt(2.0 * np.pi * mass * kt)
    com = np.log(abs(atoms.cell.volume) / lam_m**3)
    modes = (3 * len(atoms) - 3) * np.log(kt / HBAR_EV_ASE) - 0.5 * sum_log_omega2
    return (float(energy_eV) - kt * (com + modes)) / len(atoms)


def einstein_free_energy(atoms: Atoms, spring_eV_per_A2, temperature_K: float,
                         energy_eV: float = 0.0) -> float:
    """Return the free energy per atom (eV) of the Einstein crystal.

    Springs on the displacements from the centre of mass, the centre of mass free (see the
    module docstring).

    Parameters
    ----------
    atoms : the crystal (masses, cell volume)
    spring_eV_per_A2 : one value, a dict by element, or one value per atom, eV/Å²
    temperature_K : K
    energy_eV : the energy of the lattice (E0), eV, added as it is
    """
    check_crystal(atoms)
    t = float(check_temperatures(temperature_K)[0])
    k, m = per_atom_springs(atoms, spring_eV_per_A2), atoms.get_masses()
    per_axis = np.sum(np.log(k / m)) + np.log(np.sum(m * m / k) / m.sum())  # Σ ln ω² per axis
    return _free_energy_from_modes(atoms, 3.0 * per_axis, t, energy_eV)


def harmonic_free_energy(atoms: Atoms, hessian_eV_per_A2: np.ndarray, temperature_K: float,
                         energy_eV: float = 0.0) -> float:
    """Return the free energy per atom (eV) of the harmonic crystal with this Hessian.

    Hessian 3N × 3N, eV/Å²; the centre of mass free: the 3 softest modes of the mass-weighted
    Hessian (the translations) are dropped, the others must be > 0.
    """
    check_crystal(atoms)
    t = float(check_temperatures(temperature_K)[0])
    n3 = 3 * len(atoms)
    h = np.asarray(hessian_eV_per_A2, dtype=float)
    if h.shape != (n3, n3):
        raise ConfigError(f"Hessian has shape {h.shape}, expected ({n3}, {n3})",
                          where="hessian_eV_per_A2", fix="give the 3N x 3N Hessian in eV/Å²")
    inv_sqrt_m = np.repeat(atoms.get_masses() ** -0.5, 3)
    w2 = np.linalg.eigvalsh(0.5 * (h + h.T) * np.outer(inv_sqrt_m, inv_sqrt_m))
    internal = np.sort(w2)[3:]
    if internal[0] <= 0:
        raise DataError(f"the Hessian has {int(np.sum(internal <= 0))} non-positive "
                        "internal mode(s): the structure is not at a minimum", where="structure",
                        fix="relax the structure (positions at fixed cell) first")
    return _free_energy_from_modes(atoms, float(np.sum(np.log(internal))), t, energy_eV)


def hessian(atoms: Atoms, potential: BatchedPotential, delta_A: float = 0.005, *,
            device: str = "cpu", chunk: int = 48) -> np.ndarray:
    """Hessian (3N × 3N, eV/Å²) by central differences of the forces, symmetrised.

    The 6N displaced structures are evaluated in batches of ``chunk``.
    """
    n = len(atoms)
    frames = []
    for i in range(n):
        for a in range(3):
            for sign in (1.0, -1.0):
                f = atoms.copy()
                f.positions[i, a] += sign * delta_A
                frames.append(f)
    forces = []
    for s in range(0, len(frames), chunk):
        out = evaluate(potential, frames[s:s + chunk], device=device, dtype=torch.float64)
        forces.append(out["forces"].detach().cpu().numpy().reshape(-1, n * 3))
    f = np.concatenate(forces).reshape(n * 3, 2, n * 3)
    h = -(f[:, 0] - f[:, 1]) / (2.0 * delta_A)
    return 0.5 * (h + h.T)


def einstein_springs(atoms: Atoms, potential: BatchedPotential, *, device: str = "cpu"
                     ) -> dict[str, float]:
    """Return default Einstein springs, eV/Å², from the Hessian.

    Per element, the mean over its atoms of the Hessian's diagonal self-block (1/3 of its trace)
    — the force constant of one atom moved alone. Temperature independent and deterministic (no
    extra MD run).
    """
    h = hessian(atoms, potential, device=device)
    diag = np.diagonal(h).reshape(-1, 3).mean(1)
    syms = np.array(atoms.get_chemical_symbols())
    springs = {str(s): float(diag[syms == s].mean()) for s in dict.fromkeys(syms)}
    bad = [s for s, k in springs.items() if not k > 0]
    if bad:
        raise DataError(f"the Hessian diagonal of {bad[0]} is {springs[bad[0]]:.3g} eV/Å² (not "
                        "> 0): the structure is not at a minimum", where="structure",
                        fix="relax the structure first, or give spring_eV_per_A2")
    return springs


# -- the Einstein crystal and the λ-mixing term -------------------------------------------
class EinsteinCrystal(BatchedPotential):
    """Springs tying each atom to its lattice site, on displacements from the centre of mass.

    ``E = E0 + ½ Σ_i k_i |u_i − Σ_j m_j u_j / M|²`` (translation invariant), for any batch of
    copies of one (3D-periodic) structure. Displacements are taken relative to atom 0 by the
    minimum image, so neither a drift of the whole crystal nor positions wrapped back into the
    cell change them.

    Parameters
    ----------
    reference_positions : (N, 3) lattice sites, Å
    masses : (N,) amu
    springs_eV_per_A2 : (N,) eV/Å²
    energy_eV : E0, eV
    """

    cutoff = 1.0  # the engine needs a neighbour list; the springs use none

    def __init__(self, reference_positions, masses, springs_eV_per_A2, energy_eV: float = 0.0):
        super().__init__()
        self.reference = torch.as_tensor(np.asarray(reference_positions), dtype=torch.float64)
        self.mass = torch.as_tensor(np.asarray(masses), dtype=torch.float64)
        self.k = torch.as_tensor(np.asarray(springs_eV_per_A2), dtype=torch.float64)
        self.energy_eV = float(energy_eV)

    @classmethod
    def for_atoms(cls, atoms: Atoms, spring_eV_per_A2, energy_eV: float = 0.0
                  ) -> EinsteinCrystal:
        """Build the Einstein crystal of ``atoms`` (sites at its positions)."""
        return cls(atoms.positions, atoms.get_masses(), per_atom_springs(atoms, spring_eV_per_A2),
                   energy_eV)

    def params(self) -> dict:
        """Return the springs and the lattice energy (checkpoints, run.json)."""
        return {"k": self.k.tolist(), "energy_eV": self.energy_eV}

    def springs(self, state) -> tuple[torch.Tensor, torch.Tensor]:
        """Spring energy per system (without E0), eV, and forces, eV/Å, in the state's dtype."""
        n = len(self.k)
        if state.n_atoms != n * state.n_systems or bool((state.atoms_per_system() != n).any()):
            raise DataError(f"the Einstein crystal has {n} sites, a system has another count",
                            where="EinsteinCrystal", fix="use it on copies of its structure")
        key = (state.device, state.dtype)
        if getattr(self, "_cache_key", None) != key:
            self._cache = [t.to(state.device, state.dtype) for t in (self.reference, self.k,
                                                                     self.mass)]
            self._cache_key = key
        ref, k, m = self._cache
        u = state.positions.view(state.n_systems, n, 3) - ref  # systems are contiguous
        u = u - u[:, :1]  # relative to atom 0, minimum image: blind to drift and wrapping
        frac = torch.bmm(u, cell_inv(state.cells))
        u = torch.bmm(frac - torch.round(frac), state.cells)
        com = (m[:, None] * u).sum(1) / m.sum()
        d = u - com[:, None]
        kd = k[:, None] * d
        forces = -kd + (m / m.sum())[:, None] * kd.sum(1)[:, None]
        return 0.5 * (kd * d).sum((1, 2)), forces.reshape(-1, 3)

    def forward(self, state, neighbors=None, compute_stress: bool = False) -> dict:
        """Return E0 + spring energy per system (eV) and the forces (eV/Å)."""
        energy, forces = self.springs(state)
        return {"energy": energy + self.energy_eV, "forces": forces}


class PotentialRecorder:
    """Pass-through wrapper of the potential that keeps its last energy and forces.

    The λ-mixing term so reuses them instead of evaluating the potential a second time. It
    reports no stress (the mixture has none worth logging). Deep copies share it (it holds no
    state of the run).
    """

    has_stress = False

    def __init__(self, potential):
        self.inner = potential
        self.cutoff = float(potential.cutoff)
        self.needs_grad = bool(getattr(potential, "needs_grad", False))
        self._key = None
        self._last: tuple[torch.Tensor, torch.Tensor] | None = None

    def __deepcopy__(self, memo):
        return self

    def params(self) -> dict:
        inner = getattr(self.inner, "params", lambda: {})()
        return {"potential": type(self.inner).__name__, **inner}

    def use_compiled_kernel(self) -> PotentialRecorder:
        if hasattr(self.inner, "use_compiled_kernel"):
            self.inner.use_compiled_kernel()
        return self

    @staticmethod
    def key(state) -> tuple:
        p = state.positions
        return (id(state), p.data_ptr(), p._version, tuple(p.shape))

    def __call__(self, state, neighbors, compute_stress: bool = False) -> dict:
        out = self.inner(state, neighbors, compute_stress=False)
        self._key, self._last = self.key(state), (out["energy"], out["forces"])
        return {"energy": out["energy"], "forces": out["forces"]}

    def last(self, state, neighbors) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (energy, forces) of the potential at ``state``.

        The cached ones if this state was the last one evaluated, else freshly computed.
        """
        if self._last is None or self._key != self.key(state):
            out = self.inner(state, neighbors, compute_stress=False)
            return out["energy"], out["forces"]
        return self._last


class FrenkelLaddTerm:
    """Extra force term turning the engine's potential into a λ-mixture.

    The engine's potential U_pot becomes ``U(λ) = λ U_pot + (1 − λ) U_Ein``: the term adds
    ``(1 − λ)(U_Ein − U_pot)``, one λ per system.

    It records dU/dλ = U_pot − U_Ein (eV, per system) at every production step (after
    ``equilibration_steps``) into a store shared with the terms :meth:`select` makes for each
    batch, so the samples of all batches are in ``samples`` after ``run_md``. Term state (the
    samples) goes into checkpoints.

    Parameters
    ----------
    recorder : the :class:`PotentialRecorder` given to ``run_md`` as the potential
    einstein : the :class:`EinsteinCrystal` (E0 + springs)
    lambdas : one λ per system
    equilibration_steps, production_steps : steps
    """

    cutoff = 0.0

    def __init__(self, recorder: PotentialRecorder, einstein: EinsteinCrystal,
                 lambdas: Sequence[float], equilibration_steps: int, production_steps: int,
                 *, _store: dict | None = None, _systems: list[int] | None = None):
        self.recorder, self.einstein = recorder, einstein
        self.lambdas = np.asarray(lambdas, dtype=float)
        self.equilibration_steps, self.production_steps = int(equilibration_steps), int(
            production_steps)
        self.systems = list(range(len(self.lambdas))) if _systems is None else _systems
        self.store = _store if _store is not None else {
            "samples": np.full((len(self.lambdas), self.production_steps), np.nan)}
        self._dudl: np.ndarray | None = None

    @property
    def samples(self) -> np.ndarray:
        """dU/dλ per system and production step, eV (NaN where not run)."""
        return self.store["samples"]

    def select(self, idx) -> FrenkelLaddTerm:
        """Return the term for the systems ``idx`` only, sharing the sample store."""
        return FrenkelLaddTerm(self.recorder, self.einstein, self.lambdas[list(idx)],
                               self.equilibration_steps, self.production_steps,
                               _store=self.store, _systems=[self.systems[i] for i in idx])

    def params(self) -> dict:
        """Return the λ values, the Einstein crystal and the step counts."""
        return {"lambdas": self.lambdas.tolist(), "einstein": self.einstein.params(),
                "equilibration_steps": self.equilibration_steps,
                "production_steps": self.production_steps}

    def __call__(self, state, neighbors) -> dict:
        """Return (1 − λ)(U_Ein − U_pot) per system and its forces, and record dU/dλ."""
        e_pot, f_pot = self.recorder.last(state, neighbors)
        e_spring, f_spring = self.einstein.springs(state)
        e0 = self.einstein.energy_eV
        if getattr(self, "_w_key", None) != (state.device, state.dtype):
            self._w = torch.as_tensor(1.0 - self.lambdas, dtype=state.dtype, device=state.device)
            self._w_key = (state.device, state.dtype)
        w = self._w
        self._dudl = (e_pot.detach().double() - e0 - e_spring.detach().double()).cpu().numpy()
        return {"energy": w * (e_spring + e0 - e_pot),
                "forces": w[state.system_idx][:, None] * (f_spring - f_pot)}

    def after_step(self, state, out, step: int) -> None:
        """Store this step's dU/dλ of each system once production has begun."""
        j = step - self.equilibration_steps - 1
        if 0 <= j < self.production_steps and self._dudl is not None:
            self.store["samples"][self.systems, j] = self._dudl

    def state_dict(self) -> dict:
        """Return the dU/dλ samples of its systems for a checkpoint."""
        return {"samples": self.store["samples"][self.systems].copy()}

    def load_state_dict(self, d: dict) -> None:
        """Restore the samples saved by :meth:`state_dict`."""
        self.store["samples"][self.systems] = np.asarray(d["samples"])


# -- statistics ---------------------------------------------------------------------------
def block_standard_error(x: np.ndarray, min_blocks: int = MIN_BLOCKS) -> float:
    """Return the standard error of the mean of a correlated series.

    The largest block-average estimate over block lengths 1, 2, 4, ... that leave at least
    ``min_blocks`` blocks.
    """
    x = np.asarray(x, dtype=float)
    best, b = x.std(ddof=1) / np.sqrt(len(x)), 1
    while len(x) // (2 * b) >= min_blocks:
        b *= 2
        m = len(x) // b
        blocks = x[: m * b].reshape(m, b).mean(1)
        best = max(best, blocks.std(ddof=1) / np.sqrt(m))
    return float(best)


def statistical_inefficiency(x: np.ndarray, c: float = 5.0) -> float:
    """Return the statistical inefficiency g of a series.

    g = 1 + 2 Σ_t ρ(t) (samples per independent sample), the sum cut at the first M with M >=
    c·g(M) (Sokal's automatic window); autocorrelation by FFT.
    """
    x = np.asarray(x, dtype=float) - np.mean(x)
    n = len(x)
    if n < 2 or not np.any(x):
        return 1.0
    f = np.fft.rfft(x, 2 * n)
    acf = np.fft.irfft(f * np.conj(f))[:n]
    g = 2.0 * np.cumsum(acf / acf[0]) - 1.0
    ok = np.arange(n) >= c * g
    return float(max(1.0, g[int(np.argmax(ok))] if ok.any() else g[-1]))


def window_statistics(x: np.ndarray) -> dict:
    """Summarise one window's dU/dλ series (eV).

    Mean, block standard error, statistical inefficiency (and so the number of independent samples)
    and the drift between its halves (second − first, in standard errors of the difference).
    """
    se = block_standard_error(x)
    half = len(x) // 2
    a, b = x[:half], x[half:]
    se_diff = np.hypot(block_standard_error(a), block_standard_error(b))
    g = statistical_inefficiency(x)
    return {"dudl_eV": float(x.mean()), "dudl_err_eV": se,
            "drift_se": float((b.mean() - a.mean()) / se_diff) if se_diff > 0 else 0.0,
            "inefficiency": g, "independent_samples": float(len(x) / g)}


# -- the driver ---------------------------------------------------------------------------
def frenkel_ladd(atoms: Atoms, potential: BatchedPotential, temperatures_K: Sequence[float],
                 outdir: str | Path, *, n_lambda: int = 8, steps_per_window: int = 10000,
                 equilibration_steps: int = 2000, spring_eV_per_A2=None,
                 timestep_fs: float = 1.0, friction_per_ps: float = 10.0, seed: int = 0,
                 device: str = "cpu", dtype: torch.dtype | None = None,
                 batch_size: int | str = "auto", checkpoint_every: int = 0,
                 restart: bool = False, progress: bool = False, plot: bool = True,
                 potential_label: str = "") -> dict:
    """Compute the classical Helmholtz free energy per atom of ``atoms`` at its cell.

    By Frenkel–Ladd thermodynamic integration at each temperature (centre of mass free, atoms
    distinguishable; see the module docstring).

    Parameters
    ----------
    atoms : the crystal (3D-periodic; relaxed positions give the smoothest integrand)
    potential : BatchedPotential
    temperatures_K : K, each > 0
    outdir : folder for the MD run (``md/``), ``frenkel_ladd.json`` and the plot
    n_lambda : Gauss–Legendre points on λ ∈ [0, 1], >= 2
    steps_per_window : production steps per (temperature, λ) window
    equilibration_steps : steps discarded at the start of each window
    spring_eV_per_A2 : Einstein springs: one value, a dict by element or one per atom (eV/Å²);
        default (None): per element, the mean Hessian diagonal (:func:`einstein_springs`)
    timestep_fs, friction_per_ps : Langevin BAOAB settings (fs, 1/ps). dU/dλ decorrelates in
        about 1/friction (underdamped), so a friction near the lower phonon frequencies
        (~10/ps) gives the most independent samples per step
    seed : system k = temperature_index * n_lambda + λ_index uses seed + k
    batch_size, checkpoint_every, restart, device, dtype : as for ``run_md``
    progress : progress bar; plot : write ``dudl_vs_lambda.png``; potential_label : the
        potential's name in ``md/run.json``

    Returns
    -------
    dict with ``"results"``: one entry per temperature with ``temperature_K``,
    ``free_energy_eV_per_atom``, ``free_energy_err_eV_per_atom``,
    ``einstein_spring_eV_per_A2`` (mean over atoms), ``n_lambda``, and the parts
    (``lattice_energy_eV_per_atom``, ``einstein_free_energy_eV_per_atom``,
    ``integral_eV_per_atom``), the windows (λ, ⟨dU/dλ⟩ ± error, drift, inefficiency) and
    ``warnings``; plus ``md`` (the run's summary) and ``outdir``.
    """
    from common.md.runner import run_md

    check_crystal(atoms)
    temps = check_temperatures(temperatures_K)
    lambdas, weights = lambda_grid(n_lambda)
    _check_steps(steps_per_window, equilibration_steps)
    outdir = Path(outdir)
    e0, springs, notes = _reference(atoms, potential, spring_eV_per_A2, device)
    einstein = EinsteinCrystal.for_atoms(atoms, springs, e0)
    recorder = PotentialRecorder(potential)
    term = FrenkelLaddTerm(recorder, einstein, np.tile(lambdas, len(temps)),
                           equilibration_steps, steps_per_window)
    start = atoms.copy()
    start.set_momenta(None)
    start.calc = None
    md = run_md([start] * len(temps), recorder, outdir / "md", ensemble="nvt",
                timestep_fs=timestep_fs, temperature_K=temps, friction_per_ps=friction_per_ps,
                steps=equilibration_steps + steps_per_window, replicas=len(lambdas), seed=seed,
                device=device, dtype=dtype, batch_size=batch_size,
                traj_every=max(1, (equilibration_steps + steps_per_window) // 20),
                checkpoint_every=checkpoint_every, restart=restart, terms=[term],
                progress=progress, potential_label=potential_label or type(potential).__name__)
    if np.isnan(term.samples).any():
        bad = int(np.nonzero(np.isnan(term.samples).any(1))[0][0])
        raise SimulationError("a window has no complete dU/dλ record", where=f"system {bad}",
                              fix="rerun in a new folder (the MD run stopped early)")
    results = [_result(atoms, t, lambdas, weights, term.samples[i * len(lambdas):
                                                                (i + 1) * len(lambdas)],
                       springs, e0, notes) for i, t in enumerate(temps)]
    out = {"results": results, "md": md, "outdir": str(outdir)}
    atomic_write_json(outdir / "frenkel_ladd.json", out)
    if plot:
        _plot(results, len(atoms), outdir / "dudl_vs_lambda.png")
    return out


def _reference(atoms: Atoms, potential, spring_eV_per_A2, device: str
               ) -> tuple[float, np.ndarray, list[str]]:
    """Return the lattice energy E0 (eV) and the springs per atom (eV/Å²).

    With a note if the structure is not relaxed.
    """
    lattice = evaluate(potential, [atoms], device=device, dtype=torch.float64)
    fmax = float(lattice["forces"].detach().norm(dim=-1).max())
    notes = [f"the structure is not relaxed (max force {fmax:.3g} eV/Å): the result is still "
             "exact, but the integrand is steeper (relax the positions first)"] \
        if fmax > UNRELAXED_FORCE_EV_A else []
    springs = per_atom_springs(atoms, spring_eV_per_A2 if spring_eV_per_A2 is not None
                               else einstein_springs(atoms, potential, device=device))
    return float(lattice["energy"][0]), springs, notes


def _check_steps(steps_per_window: int, equilibration_steps: int) -> None:
    if steps_per_window < 8 * MIN_BLOCKS:
        raise ConfigError(f"steps_per_window must be >= {8 * MIN_BLOCKS} (got "
                          f"{steps_per_window})", where="steps_per_window",
                          fix="use thousands of steps per window (error bars need blocks)")
    if equilibration_steps < 0:
        raise ConfigError(f"equilibration_steps must be >= 0 (got {equilibration_steps})",
                          where="equilibration_steps", fix="use e.g. 1000-5000 steps")


def _result(atoms: Atoms, temperature_K: float, lambdas: np.ndarray, weights: np.ndarray,
            samples: np.ndarray, springs: np.ndarray, e0: float, notes: list[str]) -> dict:
    """One temperature's entry: quadrature of the windows' ⟨dU/dλ⟩ plus the Einstein part."""
    n = len(atoms)
    windows = [{"lambda": float(lam), **window_statistics(x)}
               for lam, x in zip(lambdas, samples, strict=True)]
    mean = np.array([w["dudl_eV"] for w in windows])
    err = np.array([w["dudl_err_eV"] for w in windows])
    integral, integral_err = float(weights @ mean), float(np.sqrt(np.sum((weights * err) ** 2)))
    f_ein = einstein_free_energy(atoms, springs, temperature_K, e0)
    syms = np.array(atoms.get_chemical_symbols())
    warnings = list(notes) + [f"λ = {w['lambda']:.4f}: the halves of the window differ by "
                f"{w['drift_se']:.1f} standard errors (not equilibrated: run longer)"
                for w in windows if abs(w["drift_se"]) > DRIFT_LIMIT_SE]
    warnings += [f"λ = {w['lambda']:.4f}: only {w['independent_samples']:.0f} independent "
                 f"samples (< {MIN_INDEPENDENT}): the error bar is unreliable (run longer, or "
                 "use a friction near the phonon frequencies)"
                 for w in windows if w["independent_samples"] < MIN_INDEPENDENT]
    mbar = mbar_estimate(lambdas, samples, temperature_K)
    if "delta_F_eV" in mbar:
        f_mbar = f_ein + mbar["delta_F_eV"] / n
        err_mbar = mbar["delta_F_err_eV"] / n
        gap = np.hypot(err_mbar, integral_err / n)
        mbar.update({"free_energy_eV_per_atom": float(f_mbar),
                     "free_energy_err_eV_per_atom": float(err_mbar),
                     "ti_minus_mbar_eV_per_atom": float(f_ein + integral / n - f_mbar),
                     "ti_minus_mbar_sigma": float((integral / n + f_ein - f_mbar) / gap)
                     if gap > 0 else 0.0})
    return {"temperature_K": float(temperature_K),
            "free_energy_eV_per_atom": f_ein + integral / n,
            "free_energy_err_eV_per_atom": integral_err / n,
            "einstein_spring_eV_per_A2": float(springs.mean()),
            "n_lambda": len(lambdas),
            "einstein_springs_eV_per_A2": {str(s): float(springs[syms == s].mean())
                                           for s in dict.fromkeys(syms)},
            "lattice_energy_eV_per_atom": e0 / n,
            "einstein_free_energy_eV_per_atom": f_ein,
            "integral_eV_per_atom": integral / n,
            "windows": windows, "warnings": warnings, "mbar": mbar}


def mbar_estimate(lambdas: np.ndarray, samples: np.ndarray, temperature_K: float) -> dict:
    """MBAR (pymbar) over the same λ windows.

    ΔF from the Einstein crystal (λ = 0) to the potential (λ = 1), eV per cell, as a cross-check of
    the quadrature.

    Only dU/dλ = ΔU is stored per sample, and that is enough: the reduced potential of
    state k at sample n is u_k(x_n) = β[U_Ein(x_n) + E0] + β λ_k ΔU(x_n), and the first term,
    the same for every k, cancels exactly from MBAR's free-energy differences, so
    u_kn = β λ_k ΔU_n is used. λ = 0 and 1 (not sampled by Gauss–Legendre) are added as
    states without samples. Each window is subsampled by its statistical inefficiency
    (pymbar.timeseries) first. Returns ``{"delta_F_eV", "delta_F_err_eV",
    "min_neighbour_overlap", "n_samples"}`` (the smallest overlap-matrix element between
    neighbouring windows: below ~0.03 the MBAR error bar is not trustworthy), or
    ``{"error": ...}`` when pymbar fails.
    """
    from common.frameworks import import_pymbar

    pymbar = import_pymbar()
    from pymbar import timeseries

    beta = 1.0 / (KB_EV_PER_K * float(temperature_K))
    kept = []
    for x in samples:
        g = statistical_inefficiency(x)
        idx = timeseries.subsample_correlated_data(x, g=g)
        kept.append(np.asarray(x)[idx])
    states = np.concatenate([[0.0], np.asarray(lambdas, dtype=float), [1.0]])
    n_k = np.array([0] + [len(k) for k in kept] + [0])
    du = np.concatenate(kept)
    u_kn = beta * states[:, None] * du[None, :]
    import logging

    quiet = logging.getLogger("pymbar")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # its solver's "trying next method" notes
    try:
        mbar = pymbar.MBAR(u_kn, n_k, verbose=False)
        res = mbar.compute_free_energy_differences()
        overlap = np.asarray(mbar.compute_overlap()["matrix"])
    except Exception as exc:  # a cross-check must never cost the TI result
        return {"error": f"pymbar failed: {str(exc).splitlines()[0] if str(exc) else exc!r}"}
    finally:
        quiet.setLevel(level)
    inner = np.arange(1, len(states) - 2)
    neighbour = float(min(overlap[i, i + 1] for i in inner)) if len(inner) else float("nan")
    return {"delta_F_eV": float(res["Delta_f"][0, -1] / beta),
            "delta_F_err_eV": float(res["dDelta_f"][0, -1] / beta),
            "min_neighbour_overlap": neighbour, "n_samples": int(len(du))}


def _plot(results: list[dict], n_atoms: int, path: Path) -> None:
    """⟨dU/dλ⟩ per atom against λ, one line per temperature."""
    from common.plots import pyplot, save_figure

    plt = pyplot()

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for r in results:
        lam = [w["lambda"] for w in r["windows"]]
        y = np.array([w["dudl_eV"] for w in r["windows"]]) / n_atoms
        e = np.array([w["dudl_err_eV"] for w in r["windows"]]) / n_atoms
        ax.errorbar(lam, y, yerr=e, marker="o", capsize=2, label=f"{r['temperature_K']:g} K")
    ax.set_xlabel("λ (0: Einstein crystal, 1: potential)")
    ax.set_ylabel("⟨dU/dλ⟩ per atom (eV)")
    ax.legend(fontsize=8)
    save_figure(fig, path)


# -- formation free energies --------------------------------------------------------------
def formation_free_energy(defective: Atoms, defective_result: dict, perfect: Atoms,
                          perfect_result: dict, chemical_potentials_eV: Mapping | None = None
                          ) -> list[dict]:
    """Return the defect formation free energy per temperature, eV, with its error.

    ``ΔF_f = F_def − F_perf − Σ_s Δn_s μ_s`` (Δn_s: atoms of element s added to the perfect
    cell). ``chemical_potentials_eV`` default: for a one-element crystal, μ = the perfect
    crystal's free energy per atom at that temperature (its error propagated); compounds need
    them given (one per element added or removed, eV per atom, e.g. from the elemental phases'
    own Frenkel–Ladd runs).
    """
    def by_t(res):
        return {r["temperature_K"]: r for r in res["results"]}

    d, p = by_t(defective_result), by_t(perfect_result)
    common_t = sorted(set(d) & set(p))
    if not common_t:
        raise ConfigError("the two runs share no temperature", where="temperatures_K",
                          fix="run the defective and the perfect cell at the same temperatures")
    dn = _composition_change(defective, perfect)
    elemental = len(set(perfect.get_chemical_symbols())) == 1
    if chemical_potentials_eV is None and not elemental and any(dn.values()):
        raise ConfigError("a compound needs the chemical potentials of the elements added or "
                          f"removed ({', '.join(s for s, v in dn.items() if v)})",
                          where="chemical_potentials_eV", fix="give e.g. {'N': -8.3} (eV/atom)")
    out = []
    for t in common_t:
        fd = d[t]["free_energy_eV_per_atom"] * len(defective)
        ed = d[t]["free_energy_err_eV_per_atom"] * len(defective)
        fp = p[t]["free_energy_eV_per_atom"] * len(perfect)
        ep = p[t]["free_energy_err_eV_per_atom"] * len(perfect)
        if chemical_potentials_eV is None:  # elemental: F_def − (N_def / N_perf) F_perf
            ratio = len(defective) / len(perfect)
            value, err = fd - ratio * fp, float(np.hypot(ed, ratio * ep))
        else:
            mu = sum(v * float(chemical_potentials_eV[s]) for s, v in dn.items() if v)
            value, err = fd - fp - mu, float(np.hypot(ed, ep))
        out.append({"temperature_K": t, "formation_free_energy_eV": float(value),
                    "formation_free_energy_err_eV": err})
    return out


def _composition_change(defective: Atoms, perfect: Atoms) -> dict[str, int]:
    from collections import Counter

    cd, cp = Counter(defective.get_chemical_symbols()), Counter(perfect.get_chemical_symbols())
    return {s: cd[s] - cp[s] for s in sorted(set(cd) | set(cp))}



# -- thermal expansion ----------------------------------------------------------------------------
def thermal_expansion(cell: Atoms, potential: BatchedPotential, temperatures_K: Sequence[float],
                      outdir: str | Path, *, repeat: Sequence[int] | None = None,
                      steps: int = 4000, equilibration_steps: int = 1000,
                      pressure_bar: float = 1.0, timestep_fs: float = 1.0,
                      barostat_tau_ps: float = 0.5, barostat: str = "anisotropic",
                      seed: int = 0, device: str = "cpu", progress: bool = False) -> dict:
    """Return lattice constants per temperature from NPT MD.

    One batched run, every temperature a system; stochastic cell rescaling, anisotropic by
    default, at ``pressure_bar``: the mean cell over the frames after ``equilibration_steps``.

    For a hexagonal cell (c along z) repeated ``repeat`` times (default ``cell.info
    ["repeat"]``, else 1,1,1): a = √(|a×b| / (na·nb·√3/2)) from the basal area and c = L_z/nc,
    each with the standard error of the frame mean (frames every steps/40, treated as
    independent -- an underestimate if the cell correlates longer). The potential needs stress
    (``has_stress``). Returns ``{"results": [{temperature_K, a_A, a_err_A, c_A, c_err_A,
    volume_A3, volume_err_A3, n_frames}], "md": summary}`` and writes ``thermal_expansion.json``.
    """
    import ase.io

    from common.md.runner import run_md

    temps = check_temperatures(temperatures_K)
    check_crystal(cell)
    if not getattr(potential, "has_stress", False):
        raise ConfigError("NPT needs a potential with stress", where="potential",
                          fix="use a model that gives the stress (MACE, Tersoff)")
    if steps <= equilibration_steps:
        raise ConfigError("steps must exceed equilibration_steps", where="steps",
                          fix="e.g. 4000 steps, 1000 of them equilibration")
    rep = np.array(repeat if repeat is not None else cell.info.get("repeat", (1, 1, 1)),
                   dtype=float)
    outdir = Path(outdir)
    every = max(1, steps // 40)
    start = cell.copy()
    start.set_momenta(None)
    start.calc = None
    md = run_md([start] * len(temps), potential, outdir / "md", ensemble="npt",
                temperature_K=temps, pressure_bar=pressure_bar, barostat=barostat,
                barostat_tau_ps=barostat_tau_ps, friction_per_ps=5.0, timestep_fs=timestep_fs,
                steps=steps, seed=seed, device=device, traj_every=every,
                checkpoint_every=steps, restart=(outdir / "md" / "run.json").exists(),
                progress=progress, potential_label=type(potential).__name__)
    results = []
    for t, path in zip(temps, md["trajectories"], strict=True):
        frames = [f for f in ase.io.read(path, ":")
                  if int(f.info.get("step", 0)) > equilibration_steps] or ase.io.read(path, "-5:")
        cells = np.array([f.cell.array for f in frames])
        area = np.linalg.norm(np.cross(cells[:, 0], cells[:, 1]), axis=1)
        a = np.sqrt(area / (rep[0] * rep[1] * np.sqrt(3.0) / 2.0))
        c = cells[:, 2, 2] / rep[2]
        vol = np.abs(np.linalg.det(cells))
        n = len(frames)
        results.append({"temperature_K": float(t), "a_A": float(a.mean()),
                        "a_err_A": float(a.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0,
                        "c_A": float(c.mean()),
                        "c_err_A": float(c.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0,
                        "volume_A3": float(vol.mean()),
                        "volume_err_A3": float(vol.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0,
                        "n_frames": n})
    out = {"results": results, "md": md}
    atomic_write_json(outdir / "thermal_expansion.json", out)
    return out


# -- Frenkel–Ladd at the NPT lattice of each temperature -------------------------------------
def at_lattice(atoms: Atoms, a_A: float, c_A: float) -> Atoms:
    """Return ``atoms`` strained to the lattice constants a, c.

    ``atoms`` is a hexagonal cell with c along z, holding its own ``info["a_A"]`` and
    ``info["c_A"]``, as :func:`semiconductors.systems.wurtzite` and ``supercell`` leave them: x
    and y scaled by a/a0, z by c/c0, atoms with the cell; ``info`` updated.
    """
    a0, c0 = atoms.info.get("a_A"), atoms.info.get("c_A")
    if a0 is None or c0 is None:
        raise ConfigError("the structure does not record its lattice constants (info a_A, c_A)",
                          where="structure", fix="build it with semiconductors.systems "
                          "(wurtzite, supercell, make_defect)")
    out = atoms.copy()
    out.set_cell(atoms.cell.array @ np.diag([a_A / a0, a_A / a0, c_A / c0]), scale_atoms=True)
    out.info.update({"a_A": float(a_A), "c_A": float(c_A)})
    return out


def frenkel_ladd_expanded(atoms: Atoms, potential: BatchedPotential, expansion: dict,
                          outdir: str | Path, *, relax_fmax_eV_A: float = 1e-3, **kwargs) -> dict:
    """Frenkel–Ladd with each temperature at its own lattice: the quasi-NPT free energy.

    ``expansion`` is the result of :func:`thermal_expansion` (per temperature ``a_A``, ``c_A``
    from NPT MD of the perfect crystal); for each of its temperatures ``atoms`` (perfect or
    defective) is strained to that lattice (:func:`at_lattice`), its positions relaxed at the
    fixed cell, and :func:`frenkel_ladd` run at that one temperature in ``outdir/T<T>``
    (``kwargs`` as for frenkel_ladd). F(T) at the cell the crystal takes at ~zero pressure
    (the barostat's) rather than at the 0 K cell; F + PV at P ≈ 0 is the Gibbs free energy.

    **Simplification**: the temperatures run one after another (the λ windows of each are
    still one batched job) since the Einstein crystal holds one set of sites; the defective
    cell takes the perfect crystal's lattice (the dilute limit). Each result gains ``a_A``,
    ``c_A``, ``volume_A3``.
    """
    from semiconductors.systems import relax

    rows = sorted(expansion["results"], key=lambda r: r["temperature_K"])
    if not rows:
        raise ConfigError("the thermal expansion holds no temperature", where="expansion",
                          fix="run thermal_expansion first")
    outdir = Path(outdir)
    restart = bool(kwargs.pop("restart", False))  # per temperature: where its run began
    results, runs = [], []
    for row in rows:
        t = float(row["temperature_K"])
        cell = relax(at_lattice(atoms, row["a_A"], row["c_A"]), potential, relax_fmax_eV_A)
        cell.calc = None
        folder = outdir / f"T{t:g}"
        res = frenkel_ladd(cell, potential, [t], folder, **kwargs,
                           restart=restart and (folder / "md" / "run.json").exists())
        r = res["results"][0]
        r.update({"a_A": float(row["a_A"]), "c_A": float(row["c_A"]),
                  "volume_A3": float(abs(cell.cell.volume))})
        results.append(r)
        runs.append(res["md"])
    out = {"results": results, "md": runs, "outdir": str(outdir)}
    atomic_write_json(outdir / "frenkel_ladd.json", out)
    return out
