"""Quasi-classical internal states of a reactant: normal-mode sampling with zero-point energy.

The QCT standard (Hase, in *Encyclopedia of Computational Chemistry*, 1998, "Classical
trajectory simulations: initial conditions"; Chapman & Bunker, J. Chem. Phys. 62, 2890
(1975); the VENUS code's normal-mode sampling):

1. the molecule is relaxed on the same potential that drives the trajectories (ASE BFGS);
2. harmonic modes from a central finite-difference Hessian of that potential (forces at
   +-``delta_A`` along every Cartesian coordinate, all in one batched call), mass-weighted,
   with translations and rotations projected out (3N - 6 modes, 3N - 5 for a linear molecule);
3. each mode gets the energy ``E_i = (v_i + 1/2) hbar omega_i`` -- ``v_i = 0`` ("zpe": the
   vibrational ground state) or ``v_i`` drawn from the thermal Boltzmann distribution of a
   harmonic oscillator, ``P(v) = (1 - x) x^v`` with ``x = exp(-hbar omega / kT)``
   ("thermal") -- and a uniformly random phase: ``Q_i = sqrt(2 E_i) / omega_i cos(phi)``,
   ``P_i = sqrt(2 E_i) sin(phi)`` (mass-weighted normal coordinate and momentum);
4. to Cartesian positions and velocities; the spurious angular momentum that a displaced
   geometry gives is removed (``omega = I^-1 L``);
5. optionally (``match_energy``, the default when a potential is given) the displacements and
   velocities are scaled together until the vibrational energy on the *actual* (anharmonic)
   potential, ``V(x) - V(x0) + KE``, equals the harmonic target ``sum_i E_i``;
6. a thermal rotation: angular momentum about each principal axis from the classical
   Boltzmann distribution, ``J_a ~ N(0, I_a kT)`` (mean rotational energy 3/2 kT, or kT for
   a linear molecule); since the vibrational angular momentum is zero, the kinetic energy is
   the sum of the vibrational and the rotational parts.

Simplifications, named: rotation is classical and thermal (not quantised J, K states) and is
added to a vibrating, not a rigid, molecule; the modes are those of one minimum (no hindered
rotors or conformers); the classical dynamics afterwards lets zero-point energy flow between
modes ("ZPE leakage", a known limit of QCT: no ZPE constraint is applied).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms
from ase import units as ase_units

from common.errors import ConfigError, DataError

__all__ = ["HBAR_EV_ASE_TIME", "NormalModes", "mode_displacements", "normal_modes",
           "sample_normal_mode_states", "vibrational_energy_of_modes"]

#: Boltzmann constant, eV/K
KB_EV = float(ase_units.kB)
#: reduced Planck constant in eV x ASE time units (omega in 1/ASE time -> hbar omega in eV)
HBAR_EV_ASE_TIME = ase_units._hbar * ase_units.J * ase_units.s
#: 1/ASE time -> wavenumber, cm^-1
_OMEGA_TO_CM1 = 1.0 / (2 * math.pi * ase_units._c * 100.0 / ase_units.s)
VIBRATIONS = ("zpe", "thermal")


@dataclass
class NormalModes:
    """Harmonic normal modes of one molecule at a minimum of a potential.

    ``positions`` (Å, centred at the centre of mass), ``masses`` (amu), ``energy_eV`` (the
    potential at the minimum), ``omega`` (angular frequencies, 1/ASE time, ascending) and
    ``vectors`` (n_modes x 3N, orthonormal, mass-weighted: Cartesian displacement =
    ``M^-1/2 vectors.T Q``); ``linear``; ``projected_out`` the 6 (5) eigenvalues of the
    unprojected Hessian nearest zero, for diagnostics (eV/(Å^2 amu)).
    """

    symbols: list[str]
    positions: np.ndarray
    masses: np.ndarray
    energy_eV: float
    omega: np.ndarray
    vectors: np.ndarray
    linear: bool
    relax_rmsd_A: float = 0.0
    projected_out: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def n_modes(self) -> int:
        """Number of vibrational modes."""
        return len(self.omega)

    @property
    def hbar_omega_eV(self) -> np.ndarray:
        """Quantum of each mode, eV."""
        return HBAR_EV_ASE_TIME * self.omega

    @property
    def frequencies_cm1(self) -> np.ndarray:
        """Harmonic wavenumbers, cm^-1."""
        return self.omega * _OMEGA_TO_CM1

    @property
    def zpe_eV(self) -> float:
        """Harmonic zero-point energy, eV."""
        return 0.5 * float(self.hbar_omega_eV.sum())

    def mean_thermal_vibrational_energy_eV(self, temperature_K: float) -> float:
        """Mean harmonic vibrational energy at T (ZPE included).

        Sum of (hbar omega / 2) coth(hbar omega / 2kT), eV.
        """
        x = self.hbar_omega_eV / (2 * KB_EV * temperature_K)
        return float((self.hbar_omega_eV / 2 / np.tanh(x)).sum())

    def summary(self) -> dict:
        """Return the modes' JSON summary (count, linearity, frequencies, ZPE, relaxation RMSD)."""
        return {"n_modes": self.n_modes, "linear": self.linear,
                "frequencies_cm1": [round(float(f), 1) for f in self.frequencies_cm1],
                "zpe_eV": self.zpe_eV, "relax_rmsd_A": self.relax_rmsd_A}


def _atoms(symbols, positions, masses) -> Atoms:
    return Atoms(symbols=symbols, positions=positions, masses=masses, pbc=False)


def _energies_forces(potential, frames: list[Atoms], device: str = "cpu", chunk: int = 128
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Energies (n,) and forces (n, N, 3) of frames of one molecule, one batched call."""
    from common.potential.protocol import evaluate

    es, fs = [], []
    for k in range(0, len(frames), chunk):  # chunks keep the neighbour search small
        out = evaluate(potential, frames[k:k + chunk], device=device)
        es.append(out["energy"].detach().cpu().double().numpy())
        fs.append(out["forces"].detach().cpu().double().numpy().reshape(len(es[-1]), -1, 3))
    return np.concatenate(es), np.concatenate(fs)


def _rigid_basis(pos: np.ndarray, masses: np.ndarray) -> np.ndarray:
    """Orthonormal mass-weighted translation + rotation vectors (k x 3N), k = 6 or 5."""
    sm = np.sqrt(masses)
    n = len(masses)
    vecs = []
    for a in range(3):
        t = np.zeros((n, 3))
        t[:, a] = sm
        vecs.append(t.ravel())
    for a in range(3):
        e = np.zeros(3)
        e[a] = 1.0
        vecs.append((np.cross(e, pos) * sm[:, None]).ravel())
    u, s, _ = np.linalg.svd(np.array(vecs).T, full_matrices=False)
    return u[:, s > 1e-6 * s.max()].T


def normal_modes(molecule: Atoms, potential, *, relax: bool = True, fmax_eV_A: float = 1e-4,
                 max_relax_steps: int = 2000, delta_A: float = 0.005,
                 device: str = "cpu") -> NormalModes:
    """Harmonic normal modes of ``molecule`` on ``potential`` (a BatchedPotential).

    Parameters
    ----------
    molecule
        The molecule (non-periodic); with ``relax`` its geometry is first relaxed on the
        potential (BFGS to ``fmax_eV_A``), since normal modes belong to a minimum.
    delta_A
        Finite-difference step of the Hessian, Å.

    Raises
    ------
    DataError
        An imaginary frequency (not a minimum): relax, or give a minimum.
    """
    if delta_A <= 0:
        raise ConfigError(f"finite-difference step must be > 0 Å (got {delta_A})",
                          where="delta_A", fix="use e.g. 0.005")
    symbols, masses = molecule.get_chemical_symbols(), molecule.get_masses()
    start = molecule.positions - molecule.get_center_of_mass()
    pos = start.copy()
    n = len(masses)
    if relax and n > 1:
        pos = _relax(symbols, pos, masses, potential, fmax_eV_A, max_relax_steps, device)
    pos = pos - (masses[:, None] * pos).sum(0) / masses.sum()
    rmsd = float(np.sqrt(((pos - start) ** 2).sum(1).mean())) if n > 1 else 0.0
    e0 = float(_energies_forces(potential, [_atoms(symbols, pos, masses)], device)[0][0])
    if n == 1:
        return NormalModes(symbols, pos, masses, e0, np.zeros(0), np.zeros((0, 3)), False)
    frames = []
    for k in range(3 * n):
        for sign in (1.0, -1.0):
            p = pos.copy().ravel()
            p[k] += sign * delta_A
            frames.append(_atoms(symbols, p.reshape(n, 3), masses))
    _, f = _energies_forces(potential, frames, device)
    f = f.reshape(3 * n, 2, 3 * n)
    hess = -(f[:, 0] - f[:, 1]) / (2 * delta_A)  # row k: d(-F)/dx_k
    hess = 0.5 * (hess + hess.T)
    im = 1.0 / np.sqrt(np.repeat(masses, 3))
    hmw = hess * im[:, None] * im[None, :]
    rigid = _rigid_basis(pos, masses)
    # the complement of the rigid motions: an orthonormal basis of the internal space
    proj = np.eye(3 * n) - rigid.T @ rigid
    w, u = np.linalg.eigh(proj)
    internal = u[:, w > 0.5]
    lam, vec = np.linalg.eigh(internal.T @ hmw @ internal)
    vectors = (internal @ vec).T
    full = np.linalg.eigvalsh(hmw)
    near_zero = full[np.argsort(np.abs(full))[:len(rigid)]]
    scale = max(float(np.abs(lam).max()), 1e-12)
    if lam.min() < -1e-6 * scale:
        k = int(np.argmin(lam))
        wn = math.sqrt(-lam[k]) * _OMEGA_TO_CM1
        raise DataError(f"mode {k} of {molecule.get_chemical_formula()} is imaginary "
                        f"({wn:.0f}i cm^-1): the geometry is not a minimum of the potential",
                        where="normal modes",
                        fix="relax the molecule on the potential first (relax=True), or check "
                            "that the potential binds it")
    omega = np.sqrt(np.clip(lam, 0.0, None))
    return NormalModes(symbols, pos, masses, e0, omega, vectors, len(rigid) == 5, rmsd,
                       near_zero)


def _relax(symbols, pos, masses, potential, fmax, steps, device) -> np.ndarray:
    from ase.optimize import BFGS

    from common.potential.calculator import BatchedPotentialCalculator

    at = _atoms(symbols, pos, masses)
    at.calc = BatchedPotentialCalculator(potential, device=device)
    opt = BFGS(at, logfile=None)
    if not opt.run(fmax=fmax, steps=steps):
        f = float(np.linalg.norm(at.get_forces(), axis=1).max())
        raise DataError(f"{at.get_chemical_formula()} did not relax on the potential within "
                        f"{steps} BFGS steps (max force {f:.2g} eV/Å)",
                        where="normal modes", fix="check that the potential binds the molecule")
    return at.positions.copy()


def vibrational_energy_of_modes(modes: NormalModes, positions: np.ndarray,
                                velocities: np.ndarray) -> np.ndarray:
    """Harmonic energy in each mode, ``(P_i^2 + omega_i^2 Q_i^2) / 2`` (eV), of a state.

    Positions (Å, about the centre of mass) and velocities projected on the modes.
    """
    sm = np.sqrt(np.repeat(modes.masses, 3))
    q = modes.vectors @ ((positions - modes.positions).ravel() * sm)
    p = modes.vectors @ (velocities.ravel() * sm)
    return 0.5 * (p * p + modes.omega**2 * q * q)


def _inertia(pos: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Inertia tensor(s) about the origin: pos (..., N, 3) -> (..., 3, 3)."""
    r2 = (pos * pos).sum(-1)
    return (np.eye(3) * (m * r2).sum(-1)[..., None, None]
            - np.einsum("i,...ij,...ik->...jk", m, pos, pos))


def _remove_angular_momentum(pos: np.ndarray, vel: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Remove centre-of-mass motion and angular momentum from velocities (n, N, 3).

    The angular momentum is taken about the centre of mass of the positions (n, N, 3).
    """
    mw = m[None, :, None]
    vel = vel - (mw * vel).sum(1, keepdims=True) / m.sum()
    r = pos - (mw * pos).sum(1, keepdims=True) / m.sum()
    ang = (mw * np.cross(r, vel)).sum(1)
    w = np.einsum("nij,nj->ni", np.linalg.pinv(_inertia(r, m), rcond=1e-8), ang)
    return vel - np.cross(w[:, None, :], r)


def _thermal_rotation(pos: np.ndarray, m: np.ndarray, temperature_K: float,
                      rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Velocities of a classical thermal rotation about the principal axes, and its energy."""
    r = pos - (m[:, None] * pos).sum(0) / m.sum()
    moments, axes = np.linalg.eigh(_inertia(r, m))
    w = np.zeros(3)
    e_rot = 0.0
    for a in range(3):
        if moments[a] > 1e-8 * max(moments.max(), 1e-30):
            j = rng.normal(0.0, math.sqrt(moments[a] * KB_EV * temperature_K))
            w += j / moments[a] * axes[:, a]
            e_rot += 0.5 * j * j / moments[a]
    return np.cross(w, r), e_rot


def mode_displacements(modes: NormalModes, energies_eV: np.ndarray, phases: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Return a pure harmonic state: Cartesian displacements and velocities.

    Displacements (Å) and velocities (Å/ASE time) with energy ``energies_eV[i]`` and phase
    ``phases[i]`` in mode i (both (n_modes,)).
    """
    q = np.sqrt(2 * energies_eV) / modes.omega * np.cos(phases)
    p = np.sqrt(2 * energies_eV) * np.sin(phases)
    im = 1.0 / np.sqrt(np.repeat(modes.masses, 3))
    dx = (modes.vectors.T @ q) * im
    dv = (modes.vectors.T @ p) * im
    return dx.reshape(-1, 3), dv.reshape(-1, 3)


def sample_normal_mode_states(modes: NormalModes, n: int, temperature_K: float,
                              rng: np.random.Generator, *, vibration: str = "thermal",
                              rotation: bool = True, potential=None,
                              match_energy: bool = True, device: str = "cpu",
                              max_iterations: int = 20, rtol: float = 1e-6) -> dict:
    """``n`` quasi-classical states of the molecule (see the module docstring).

    Parameters
    ----------
    vibration
        "zpe" (every mode in v = 0) or "thermal" (v from the harmonic Boltzmann distribution
        at ``temperature_K``, zero-point energy included).
    rotation
        Add a classical thermal rotation at ``temperature_K``.
    potential, match_energy
        With a potential and ``match_energy``, scale displacements and velocities until
        ``V(x) - V(x0) + KE_vib`` equals ``sum_i (v_i + 1/2) hbar omega_i`` to ``rtol``.

    Returns
    -------
    dict
        ``positions`` and ``velocities`` (lists of (N, 3) arrays, positions about the centre of
        mass), ``quanta`` (n x n_modes), ``vibrational_target_eV``, ``vibrational_eV`` (on the
        potential, when given; else the harmonic target), ``rotational_eV`` (each (n,)).
    """
    if vibration not in VIBRATIONS:
        raise ConfigError(f"unknown vibrational state {vibration!r}", where="vibration",
                          fix=f"use one of {', '.join(VIBRATIONS)}")
    if temperature_K <= 0 and (rotation or vibration == "thermal"):
        raise ConfigError(f"temperature must be > 0 K (got {temperature_K})",
                          where="temperature_K", fix="give a positive temperature")
    m, x0 = modes.masses, modes.positions
    hw = modes.hbar_omega_eV
    if vibration == "thermal" and modes.n_modes:
        x = np.exp(-hw / (KB_EV * temperature_K))
        quanta = rng.geometric(1.0 - x, size=(n, modes.n_modes)) - 1
    else:
        quanta = np.zeros((n, modes.n_modes), dtype=int)
    target = ((quanta + 0.5) * hw).sum(1) if modes.n_modes else np.zeros(n)
    phases = rng.uniform(0.0, 2 * math.pi, size=(n, modes.n_modes))
    dx, dv = np.zeros((n, *x0.shape)), np.zeros((n, *x0.shape))
    for k in range(n if modes.n_modes else 0):
        dx[k], dv[k] = mode_displacements(modes, (quanta[k] + 0.5) * hw, phases[k])
    scale = np.ones(n)
    use_pot = potential is not None and match_energy and modes.n_modes > 0
    pos = x0 + dx
    vel = _remove_angular_momentum(pos, dv, m)
    e_vib = target.copy()
    todo = np.arange(n) if use_pot else np.arange(0)
    prev_s, prev_e = np.full(n, np.nan), np.full(n, np.nan)
    for _ in range(max_iterations):
        if not len(todo):
            break
        pos[todo] = x0 + scale[todo, None, None] * dx[todo]
        vel[todo] = _remove_angular_momentum(pos[todo], scale[todo, None, None] * dv[todo], m)
        e_pot, _ = _energies_forces(potential, [_atoms(modes.symbols, p, m) for p in pos[todo]],
                                    device)
        kin = 0.5 * (m[None, :, None] * vel[todo] ** 2).sum((1, 2))
        e_vib[todo] = e_pot - modes.energy_eV + kin
        e_now = np.clip(e_vib[todo], 1e-3 * target[todo], None)
        done = np.abs(e_now / target[todo] - 1) < rtol
        # secant on log E vs log s (the local power; 2 for a harmonic well) for the next s
        power = np.full(len(todo), 2.0)
        seen = ~np.isnan(prev_s[todo]) & (np.abs(np.log(scale[todo] / prev_s[todo])) > 1e-12)
        if seen.any():
            t = todo[seen]
            power[seen] = np.clip(np.log(e_now[seen] / prev_e[t]) / np.log(scale[t] / prev_s[t]),
                                  0.5, 8.0)
        prev_s[todo], prev_e[todo] = scale[todo], e_now
        scale[todo] *= np.where(done, 1.0, (target[todo] / e_now) ** (1.0 / power))
        todo = todo[~done]
    if len(todo):
        bad = int(todo[np.argmax(np.abs(e_vib[todo] / target[todo] - 1))])
        raise DataError(f"the vibrational energy of state {bad} on the potential did not "
                        f"converge to its harmonic target ({e_vib[bad]:.4g} vs "
                        f"{target[bad]:.4g} eV) in {max_iterations} scalings",
                        where="normal-mode sampling",
                        fix="use match_energy=False, or check the potential near the minimum")
    e_rot = np.zeros(n)
    if rotation and len(m) > 1:
        for k in range(n):
            v_rot, e_rot[k] = _thermal_rotation(pos[k], m, temperature_K, rng)
            vel[k] = vel[k] + v_rot
    return {"positions": list(pos), "velocities": list(vel), "quanta": quanta,
            "vibrational_target_eV": target, "vibrational_eV": e_vib, "rotational_eV": e_rot}
