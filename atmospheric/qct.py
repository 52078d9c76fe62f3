"""Bimolecular rate constants by quasi-classical trajectories (QCT), for capture channels.

Method (Truhlar & Muckerman, in *Atom-Molecule Collision Theory*, ed. Bernstein, 1979,
ch. 16; Karplus, Porter & Sharma, J. Chem. Phys. 43, 3259 (1965)):

* relative translational energy from the flux-weighted thermal distribution
  ``p(E) = E exp(-E/kT) / (kT)^2`` (Maxwell-Boltzmann speeds weighted by the speed, so that
  ``k = <v_rel> <sigma>`` with ``<v_rel> = sqrt(8 kT / (pi mu))``);
* impact parameter uniform in ``b^2`` up to ``b_max``; ``b_max`` grown until the outermost
  ring of ``b^2`` shows (almost) no reactions, or until the geometric bound past which the
  reactants never come within the potential's cutoff;
* uniform random rotations of each reactant about its centre of mass; internal states
  ``internal``: "mb" classical thermal velocities (Maxwell-Boltzmann at T, centre-of-mass
  motion removed; no zero-point energy), "none", "given" (pre-sampled states), or the
  quasi-classical normal-mode sampling of :mod:`atmospheric.normal_modes` -- the QCT
  standard: each reactant relaxed on the same potential, harmonic modes from its
  finite-difference Hessian, every mode given ``(v + 1/2) hbar omega`` with ``v = 0``
  ("qc-zpe") or ``v`` from the thermal Boltzmann distribution ("qc-thermal"), random phases,
  energy matched on the actual potential, plus a classical thermal rotation;
* centres of mass ``d0`` apart, ``d0`` beyond ``b_max`` and beyond the interaction range
  (no orientation or rotation can bring an atom pair within reach there: exact);
  optionally (``start_at_reach``, an approximation, off by default) each trajectory is moved
  in along its straight line until the closest A-B pair of its *frozen* starting geometry
  is 0.5 Å beyond the reach, which saves the flight in from ``d0``. It is exact only for
  reactants that neither rotate nor vibrate during that flight: a rotating reactant can
  touch earlier, or touch on a line that the frozen geometry misses (such a trajectory
  starts at its closest point and separates at once), so k at large b is underestimated;
* NVE batches through :func:`common.md.runner.run_md` with a :class:`QCTStop` condition: a
  trajectory ends when a reaction criterion holds, when the fragments fly apart beyond ``d0``
  (non-reactive unless the bond graph changed), or at ``max_time_fs`` (undecided); optionally
  cut into segments after which only the unfinished trajectories go on (``segment_fs``);
* energy conservation checked at every step: the largest ``|E(t) - E(0)|`` of each
  trajectory is reported, and with ``energy_tolerance_eV`` a trajectory that passes it is
  stopped and left out of the statistics (``n_nonconserving``) rather than counted -- a
  trajectory that does not conserve energy is not a sample of the NVE dynamics. Leaving them
  out biases k if they are mostly reactive (or mostly not); their number is reported so a
  reader can judge;
* ``k(T) = <v_rel> pi b_max^2 P_r`` with the binomial standard error
  ``<v_rel> pi b_max^2 sqrt(P_r (1 - P_r) / N)``; channels from the criteria that fired and
  from the products of the final frame's bond graph (:mod:`common.events`), products that
  match no named channel reported as new channels with their formula and graph.

Reaction criteria (:func:`parse_criterion`) read ``[NAME=]distance:I:J<R`` (or ``>R``; atoms
I, J 0-based counting through A's atoms, then B's; R in Å), checked at every step, or
``[NAME=]products:S1+S2`` (the final frame holds species S1 and S2, by library name or
formula), checked at the end.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from ase import units as ase_units

from common.errors import ConfigError, DataError
from common.events import molecule_graph
from common.fileio import atomic_write_atoms, atomic_write_json, atomic_write_text
from common.md.guard import BlowUpGuard

__all__ = [
    "Criterion",
    "QCTStop",
    "mean_relative_speed_m_per_s",
    "parse_criteria",
    "parse_criterion",
    "random_rotations",
    "reduced_mass_amu",
    "run_qct",
    "sample_internal_states",
]

#: Boltzmann constant, eV/K
KB_EV = float(ase_units.kB)
_SEPARATION_TOL_A = 1e-3
_D0_MARGIN_A = 0.5
#: with batch_size "auto", trajectories with up to this many atoms in all run as one batch
_ALL_AT_ONCE_ATOMS = 20_000
_CRITERION_FIX = ("write [NAME=]distance:I:J<R (or >R; atoms I, J 0-based, A's atoms then B's; "
                  "R in Å), e.g. abstraction=distance:0:5<1.2, or [NAME=]products:H2O+C5H7")


# ---------------------------------------------------------------------------------------------
# criteria


@dataclass(frozen=True)
class Criterion:
    """One reaction criterion of a channel.

    ``kind`` "distance": atoms ``i``, ``j`` (0-based over A then B) closer (``op`` "<") or
    farther (">") than ``threshold_A``, checked every step; "products": the final frame's
    species include every name or formula in ``species``.
    """

    text: str
    channel: str
    kind: str
    i: int = -1
    j: int = -1
    op: str = "<"
    threshold_A: float = 0.0
    species: tuple[str, ...] = ()

    def holds(self, positions: np.ndarray) -> bool:
        """Whether a distance criterion holds for one structure's positions (Å)."""
        d = float(np.linalg.norm(positions[self.i] - positions[self.j]))
        return d < self.threshold_A if self.op == "<" else d > self.threshold_A


_CRIT_RE = re.compile(r"\s*(?:([A-Za-z_][\w.\-]*)\s*=\s*)?(distance|products)\s*:\s*(.*?)\s*")
_DIST_RE = re.compile(r"(\d+)\s*:\s*(\d+)\s*([<>])\s*(\d*\.?\d+(?:[eE][-+]?\d+)?)")
_SPECIES_RE = re.compile(r"[A-Za-z0-9_#()*]+")


def parse_criterion(text: str, n_atoms_a: int | None = None, n_atoms_b: int | None = None,
                    where: str = "criteria") -> Criterion:
    """Read one criterion, ``[NAME=]distance:I:J<R`` or ``[NAME=]products:S1+S2``.

    Parameters
    ----------
    text
        The criterion; without ``NAME=`` the channel is named by the text itself.
    n_atoms_a, n_atoms_b
        Atom counts of reactants A and B: atom indices are checked against them when given.
    where
        Name used in error messages (the CLI passes its flag, ``--react``).

    Raises
    ------
    ConfigError
        Unreadable text, an index beyond the reactants' atoms, I == J, or R == 0.
    """
    m = _CRIT_RE.fullmatch(str(text))
    if m is None:
        raise ConfigError(f"cannot read reaction criterion {text!r}", where=where,
                          fix=_CRITERION_FIX)
    name, kind, body = m.groups()
    if kind == "products":
        species = tuple(s.strip() for s in body.split("+"))
        if not species or not all(_SPECIES_RE.fullmatch(s) for s in species):
            raise ConfigError(f"cannot read reaction criterion {text!r}", where=where,
                              fix=_CRITERION_FIX)
        return Criterion(str(text).strip(), name or f"products:{'+'.join(species)}", kind,
                         species=species)
    d = _DIST_RE.fullmatch(body)
    if d is None:
        raise ConfigError(f"cannot read reaction criterion {text!r}", where=where,
                          fix=_CRITERION_FIX)
    i, j, op, r = int(d.group(1)), int(d.group(2)), d.group(3), float(d.group(4))
    if i == j or r <= 0:
        raise ConfigError(f"criterion {text!r} needs two different atoms and R > 0 Å",
                          where=where, fix=_CRITERION_FIX)
    _check_atoms(text, (i, j), n_atoms_a, n_atoms_b, where)
    return Criterion(str(text).strip(), name or f"distance:{i}:{j}{op}{r:g}", kind, i, j, op,
                     r)


def _check_atoms(text: str, idx: tuple[int, int], n_a: int | None, n_b: int | None,
                 where: str) -> None:
    if n_a is None:
        return
    n = n_a + (n_b or 0)
    for k in idx:
        if k >= n:
            parts = f"A: 0-{n_a - 1}" + (f", B: {n_a}-{n - 1}" if n_b else "")
            raise ConfigError(f"criterion {text!r} names atom {k}, but the reactants have {n} "
                              f"atoms ({parts})", where=where,
                              fix=f"use atom indices 0-{n - 1}, counting through A's atoms, "
                                  "then B's")


def parse_criteria(texts: Sequence[str | Criterion], n_atoms_a: int, n_atoms_b: int,
                   where: str = "criteria") -> list[Criterion]:
    """:func:`parse_criterion` for each text (a :class:`Criterion` passes through, checked)."""
    out = []
    for t in texts:
        c = t if isinstance(t, Criterion) else parse_criterion(t, n_atoms_a, n_atoms_b, where)
        if c.kind == "distance":
            _check_atoms(c.text, (c.i, c.j), n_atoms_a, n_atoms_b, where)
        out.append(c)
    return out


# ---------------------------------------------------------------------------------------------
# sampling


def reduced_mass_amu(a: Atoms, b: Atoms) -> float:
    """Reduced mass of the two reactants, amu."""
    ma, mb = float(a.get_masses().sum()), float(b.get_masses().sum())
    return ma * mb / (ma + mb)


def mean_relative_speed_m_per_s(temperature_K: float, reduced_mass: float) -> float:
    """Thermal mean relative speed ``sqrt(8 kT / (pi mu))``, m/s (``reduced_mass`` in amu)."""
    return math.sqrt(8 * ase_units._k * temperature_K / (math.pi * reduced_mass * ase_units._amu))


def random_rotations(rng: np.random.Generator, n: int) -> np.ndarray:
    """Draw ``n`` uniformly distributed rotation matrices, (n, 3, 3).

    They come from normalised Gaussian quaternions (Shoemake 1992).
    """
    q = rng.standard_normal((n, 4))
    w, x, y, z = (q / np.linalg.norm(q, axis=1, keepdims=True)).T
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], 1)


def _centred(atoms: Atoms) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions about the centre of mass, velocities without COM motion, masses."""
    m = atoms.get_masses()
    pos = atoms.get_positions() - atoms.get_center_of_mass()
    vel = atoms.get_velocities() if atoms.has("momenta") else np.zeros_like(pos)
    vel = vel - (m[:, None] * vel).sum(0) / m.sum()
    return pos, vel, m


def _internal_velocities(masses: np.ndarray, given: np.ndarray, internal: str,
                         temperature_K: float, rng: np.random.Generator) -> np.ndarray:
    if internal == "none" or len(masses) == 1:
        return np.zeros_like(given)
    if internal == "given":
        return given
    v = rng.standard_normal(given.shape) * np.sqrt(KB_EV * temperature_K / masses)[:, None]
    return v - (masses[:, None] * v).sum(0) / masses.sum()


@dataclass
class _Reactant:
    """The states of one reactant (same atoms), centred."""

    atoms: list[Atoms]
    pos: list[np.ndarray] = field(default_factory=list)
    vel: list[np.ndarray] = field(default_factory=list)

    def __post_init__(self):
        self.modes = None  # NormalModes, for the quasi-classical internal states
        for a in self.atoms:
            p, v, _ = _centred(a)
            self.pos.append(p)
            self.vel.append(v)
        self.masses = self.atoms[0].get_masses()
        self.radius_A = max(float(np.linalg.norm(p, axis=1).max()) for p in self.pos)

    @property
    def n_atoms(self) -> int:
        return len(self.atoms[0])


def _reactant(x: Atoms | Sequence[Atoms], name: str) -> _Reactant:
    states = [x] if isinstance(x, Atoms) else list(x)
    if not states or len(states[0]) == 0:
        raise DataError(f"reactant {name} has no atoms", where=name,
                        fix="give a structure with at least one atom")
    ref = states[0]
    for k, s in enumerate(states):
        if not np.array_equal(s.numbers, ref.numbers):
            raise DataError(f"state {k} of reactant {name} has other atoms than state 0",
                            where=name, fix="give states of one molecule, same atom order")
        if s.pbc.any():
            raise DataError(f"reactant {name} is periodic; QCT needs isolated molecules",
                            where=name, fix="give the molecule as a non-periodic structure")
    from common.md.runner import check_structures

    check_structures(states)
    return _Reactant(states)


@dataclass
class _Samples:
    """Initial conditions of a set of trajectories.

    ``start_A`` is each one's starting centre-of-mass distance.
    """

    b_A: np.ndarray
    energy_eV: np.ndarray
    state_a: np.ndarray
    state_b: np.ndarray
    frames: list[Atoms]
    start_A: np.ndarray | None = None


def _closest_start(xa: np.ndarray, xb: np.ndarray, b_A: float, z0_A: float, gap_A: float
                   ) -> float:
    """Return the smallest z <= z0 on the approach line at which no A-B pair is within ``gap_A``.

    B is at (b, 0, -z) from A, moving in +z; no A-B atom pair (A at ``xa``, B at ``xb``, both
    about their centres) is closer than ``gap_A``: for a pair, ``(z - dz)^2 >= gap^2 - (b + dx)^2
    - dy^2`` before contact.
    """
    d = xb[None, :, :] - xa[:, None, :]
    c = gap_A**2 - (b_A + d[..., 0]) ** 2 - d[..., 1] ** 2
    need = np.where(c > 0, d[..., 2] + np.sqrt(np.clip(c, 0, None)), -np.inf)
    return float(min(z0_A, max(0.0, need.max())))


def _sample(ra: _Reactant, rb: _Reactant, temperature_K: float, b_max_A: float, d0_A: float,
            n: int, rng: np.random.Generator, internal: str, draw=None,
            start_gap_A: float | None = None) -> _Samples:
    """Sample ``n`` initial conditions.

    Thermal E (flux-weighted), b uniform in b^2, random orientations, internal velocities; the
    overall centre of mass at rest at the origin. ``draw(reactant, n, rng) -> (positions,
    velocities)`` gives quasi-classical states (lists of centred arrays) for the "qc-*" modes. With
    ``start_gap_A`` each trajectory starts where its closest A-B pair is that far apart
    (:func:`_closest_start`), not at ``d0_A``.
    """
    mu = reduced_mass_amu(ra.atoms[0], rb.atoms[0])
    energy = rng.gamma(2.0, KB_EV * temperature_K, n)
    b = b_max_A * np.sqrt(rng.random(n))
    ia, ib = rng.integers(len(ra.atoms), size=n), rng.integers(len(rb.atoms), size=n)
    rot_a, rot_b = random_rotations(rng, n), random_rotations(rng, n)
    ma, mb = ra.masses.sum(), rb.masses.sum()
    qc = internal.startswith("qc-")
    if qc:
        (pa, qa), (pb, qb) = draw(ra, n, rng), draw(rb, n, rng)
    frames, start = [], np.full(n, float(d0_A))
    for k in range(n):
        z = math.sqrt(d0_A**2 - b[k] ** 2)
        v_rel = np.array([0.0, 0.0, math.sqrt(2 * energy[k] / mu)])  # Å / ASE time
        if qc:
            xa, va, xb, vb = pa[k], qa[k], pb[k], qb[k]
        else:
            xa, xb = ra.pos[ia[k]], rb.pos[ib[k]]
            va = _internal_velocities(ra.masses, ra.vel[ia[k]], internal, temperature_K, rng)
            vb = _internal_velocities(rb.masses, rb.vel[ib[k]], internal, temperature_K, rng)
        xa, xb = xa @ rot_a[k].T, xb @ rot_b[k].T
        if start_gap_A is not None:
            z = _closest_start(xa, xb, float(b[k]), z, start_gap_A)
            start[k] = math.hypot(float(b[k]), z)
        sep = np.array([b[k], 0.0, -z])
        pos = np.vstack([xa - mb / (ma + mb) * sep, xb + ma / (ma + mb) * sep])
        vel = np.vstack([va @ rot_a[k].T - mb / (ma + mb) * v_rel,
                         vb @ rot_b[k].T + ma / (ma + mb) * v_rel])
        at = Atoms(numbers=np.concatenate([ra.atoms[0].numbers, rb.atoms[0].numbers]),
                   positions=pos, masses=np.concatenate([ra.masses, rb.masses]), pbc=False)
        at.set_velocities(vel)
        frames.append(at)
    return _Samples(b, energy, ia, ib, frames, start)


def _check_start(samples: _Samples, n_a: int, cutoff_A: float, criteria: list[Criterion],
                 d0_A: float, d0_needed_A: float) -> None:
    """Refuse starts with the reactants within the potential's range, or a criterion true."""
    for k, at in enumerate(samples.frames):
        pos = at.positions
        d = np.linalg.norm(pos[:n_a, None] - pos[None, n_a:], axis=-1)
        if d.min() < cutoff_A:
            i, j = np.unravel_index(int(np.argmin(d)), d.shape)
            raise ConfigError(
                f"reactants overlap at the start: atom {i} of A and atom {j} of B are "
                f"{d.min():.2f} Å apart, within the potential's cutoff ({cutoff_A:g} Å), at "
                f"d0 = {d0_A:g} Å (trajectory {k})", where="d0_A",
                fix=f"use d0_A >= {d0_needed_A:.2f} Å, or leave d0_A unset to choose it")
        for c in criteria:
            if c.kind == "distance" and c.holds(pos):
                raise ConfigError(f"criterion {c.text!r} already holds at the start "
                                  f"(trajectory {k}, d0 = {d0_A:g} Å)", where="criteria",
                                  fix="use a criterion that only a reaction makes true")


def sample_internal_states(molecule: Atoms, potential, temperature_K: float, n_states: int,
                           outdir: str | Path, *, seed: int = 0, steps: int = 2000,
                           timestep_fs: float = 0.5, friction_per_ps: float = 5.0,
                           device: str = "cpu") -> list[Atoms]:
    """Sample thermal internal states of one reactant.

    ``n_states`` Langevin NVT replicas at ``temperature_K`` for ``steps`` steps (``run_md`` in
    ``outdir``); the final frame of each, positions and velocities, for ``run_qct(...,
    internal="given")``.
    """
    import ase.io

    from common.md.runner import run_md

    if n_states < 1 or steps < 1:
        raise ConfigError(f"need n_states >= 1 and steps >= 1 (got {n_states}, {steps})",
                          where="n_states", fix="give positive numbers")
    mol = molecule.copy()
    mol.pbc = False
    summary = run_md([mol], potential, outdir, ensemble="nvt", timestep_fs=timestep_fs,
                     temperature_K=temperature_K, friction_per_ps=friction_per_ps, steps=steps,
                     replicas=n_states, seed=seed, device=device, traj_every=steps,
                     batch_size=n_states, progress=False)
    return [ase.io.read(p, index=-1) for p in summary["trajectories"]]


# ---------------------------------------------------------------------------------------------
# stop condition


class QCTStop:
    """Stop condition for :func:`common.md.runner.run_md` of QCT trajectories.

    A trajectory ends when a distance criterion holds, when the centres of mass of A and B are
    farther apart than ``d0_A``, at step ``max_steps``, or (with ``energy_tolerance_eV``) as
    soon as its total energy has moved more than that from its start. Each stop is recorded in
    ``record`` (shared by the per-batch slices from :meth:`select`): ``{system: {"outcome",
    "criterion", "step", "positions", "velocities", "energy_error_eV",
    "max_abs_energy_error_eV"}}``, outcome "criterion", "separated", "timeout" or
    "nonconserving".

    With ``out_of_range_A``, a trajectory also counts as separated as soon as the centres of
    mass move apart while no A-B atom pair is closer than that (an approximation: a fragment's
    rotation could still swing an atom back within range while the centres are nearer than
    the sum of the radii plus the cutoff; with ``out_of_range_A`` above the cutoff by a margin
    the chance is small, and the default None keeps the exact ``d0`` test).

    Segments (a long run cut into pieces so that finished trajectories leave the batch):
    ``step_offset`` is added to the engine's step, ``segment_steps`` is the engine's last step
    (systems still running then are recorded as "pending"), ``e0``/``max_dev`` carry each
    system's starting energy and largest |E - E0| so far (keyed like ``record``).
    """

    def __init__(self, n_atoms_a: int, masses: np.ndarray, criteria: Sequence[Criterion],
                 d0_A: float, max_steps: int, systems: Sequence[int] | None = None,
                 record: dict | None = None, *, energy_tolerance_eV: float | None = None,
                 step_offset: int = 0, segment_steps: int | None = None,
                 e0: dict | None = None, max_dev: dict | None = None,
                 out_of_range_A: float | None = None):
        self.n_a, self.masses = int(n_atoms_a), np.asarray(masses, dtype=float)
        self.criteria = [c for c in criteria if c.kind == "distance"]
        self.d0_A, self.max_steps = float(d0_A), int(max_steps)
        self.systems = None if systems is None else list(systems)
        self.record = {} if record is None else record
        self.energy_tolerance_eV = energy_tolerance_eV
        self.step_offset, self.segment_steps = int(step_offset), segment_steps
        self.e0 = {} if e0 is None else e0
        self.max_dev = {} if max_dev is None else max_dev
        self.out_of_range_A = out_of_range_A
        self._done: torch.Tensor | None = None
        self._e0: torch.Tensor | None = None

    def select(self, idx: Sequence[int]) -> QCTStop:
        """Return the condition for systems ``idx`` of this one (records go to the same dict)."""
        mine = list(range(max(idx) + 1)) if self.systems is None else self.systems
        return QCTStop(self.n_a, self.masses, self.criteria, self.d0_A, self.max_steps,
                       [mine[i] for i in idx], self.record,
                       energy_tolerance_eV=self.energy_tolerance_eV,
                       step_offset=self.step_offset, segment_steps=self.segment_steps,
                       e0=self.e0, max_dev=self.max_dev, out_of_range_A=self.out_of_range_A)

    def params(self) -> dict:
        """Return the condition's settings as a JSON-able dict."""
        return {"criteria": [c.text for c in self.criteria], "d0_A": self.d0_A,
                "max_steps": self.max_steps, "energy_tolerance_eV": self.energy_tolerance_eV,
                "step_offset": self.step_offset, "out_of_range_A": self.out_of_range_A}

    def _keys(self, n: int) -> list[int]:
        return list(range(n)) if self.systems is None else self.systems

    def __call__(self, state, out: dict, step: int) -> torch.Tensor:
        """Record the trajectories that stop at ``step``; return the stop mask of the batch."""
        n = len(self.masses)
        pos = state.positions.view(-1, n, 3)
        e_tot = out["energy"].detach() + state.kinetic_energy()
        if self._done is None:
            self._setup(state, out, pos, e_tot)
        step = step + self.step_offset
        w = self._weights
        sep = (pos * w[:, None]).sum(1)  # COM(B) - COM(A)
        separated = (sep * sep).sum(-1) > (self.d0_A + _SEPARATION_TOL_A) ** 2
        if self.out_of_range_A is not None:
            separated |= self._receding_out_of_range(state, pos, sep)
        crit = self._criteria_hits(pos)
        self._dev = torch.maximum(self._dev, (e_tot - self._e0).abs())
        drift = (self._dev > self.energy_tolerance_eV if self.energy_tolerance_eV is not None
                 else torch.zeros_like(separated))
        hit = crit.any(1) | separated | drift | (step >= self.max_steps)
        new = hit & ~self._done
        if bool(new.any()):
            self._record(state, pos, crit, separated, drift, new, e_tot, step)
        self._done |= hit
        if self.segment_steps is not None and step - self.step_offset >= self.segment_steps:
            self._record(state, pos, crit, separated, drift, ~self._done, e_tot, step,
                         pending=True)
        return hit

    def _setup(self, state, out: dict, pos: torch.Tensor, e_tot: torch.Tensor) -> None:
        """Make the per-batch tensors, once.

        They are COM weights, criterion indices, the first energy (or the one carried over from an
        earlier segment).
        """
        dev, dt = pos.device, pos.dtype
        self._done = torch.zeros(pos.shape[0], dtype=torch.bool, device=dev)
        keys = self._keys(pos.shape[0])
        e_start = e_tot.detach().cpu().tolist()
        self._e0 = torch.tensor([self.e0.setdefault(k, e) for k, e in zip(keys, e_start,
                                                                           strict=True)],
                                dtype=e_tot.dtype, device=dev)
        self._dev = torch.tensor([self.max_dev.get(k, 0.0) for k in keys], dtype=e_tot.dtype,
                                 device=dev)
        m = torch.as_tensor(self.masses, dtype=dt, device=dev)
        self._weights = torch.cat([-m[:self.n_a] / m[:self.n_a].sum(),
                                   m[self.n_a:] / m[self.n_a:].sum()])
        c = self.criteria
        self._ci = torch.tensor([x.i for x in c], dtype=torch.long, device=dev)
        self._cj = torch.tensor([x.j for x in c], dtype=torch.long, device=dev)
        self._cr2 = torch.tensor([x.threshold_A**2 for x in c], dtype=dt, device=dev)
        self._less = torch.tensor([x.op == "<" for x in c], dtype=torch.bool, device=dev)

    def _receding_out_of_range(self, state, pos: torch.Tensor, sep: torch.Tensor
                               ) -> torch.Tensor:
        """Centres of mass moving apart and no A-B atom pair within ``out_of_range_A``."""
        vel = state.velocities.view(pos.shape)
        receding = ((vel * self._weights[:, None]).sum(1) * sep).sum(-1) > 0
        d = pos[:, :self.n_a, None] - pos[:, None, self.n_a:]
        apart = (d * d).sum(-1).flatten(1).min(1).values > self.out_of_range_A ** 2
        return receding & apart

    def _criteria_hits(self, pos: torch.Tensor) -> torch.Tensor:
        if not self.criteria:
            return torch.zeros(pos.shape[0], 0, dtype=torch.bool, device=pos.device)
        d = pos[:, self._ci] - pos[:, self._cj]
        d2 = (d * d).sum(-1)
        return torch.where(self._less, d2 < self._cr2, d2 > self._cr2)

    def _record(self, state, pos, crit, separated, drift, new, e_tot, step,
                pending: bool = False) -> None:
        vel = state.velocities.view(pos.shape)
        keys = self._keys(pos.shape[0])
        for s in torch.nonzero(new).flatten().tolist():
            fired = torch.nonzero(crit[s]).flatten().tolist()
            if pending:
                outcome = "pending"
            elif bool(drift[s]):
                outcome = "nonconserving"
            else:
                outcome = "criterion" if fired else ("separated" if bool(separated[s])
                                                     else "timeout")
            key = keys[s]
            self.max_dev[key] = float(self._dev[s])
            self.record[key] = {
                "outcome": outcome, "criterion": fired[0] if fired and not pending else None,
                "step": step, "positions": pos[s].detach().cpu().numpy().copy(),
                "velocities": vel[s].detach().cpu().numpy().copy(),
                "energy_error_eV": float(e_tot[s] - self._e0[s]),
                "max_abs_energy_error_eV": float(self._dev[s])}


# ---------------------------------------------------------------------------------------------
# products


class _Products:
    """Species of a frame from its bond graph (:mod:`common.events`), and of the reactants."""

    def __init__(self, ra: _Reactant, rb: _Reactant, bond_criteria=None, library=None):
        import copy

        from common.events import BondCriteria, SpeciesLibrary

        self.crit = bond_criteria or BondCriteria()
        self.lib = copy.deepcopy(library) if library is not None else SpeciesLibrary()
        self.symbols = ra.atoms[0].get_chemical_symbols() + rb.atoms[0].get_chemical_symbols()
        self._cache: dict = {}
        self._name_atoms_and_reactants(ra, rb)
        self._ref_a = [self.analyse(a.positions, 0)[0] for a in ra.atoms]
        self._ref_b = [self.analyse(b.positions, ra.n_atoms)[0] for b in rb.atoms]

    def _name_atoms_and_reactants(self, ra: _Reactant, rb: _Reactant) -> None:
        """Name single atoms and the reactants' own species where the library has none.

        Library names for single atoms (their symbol) and for the reactants' own species (their
        formula), instead of ``<formula>#<hash>``.
        """
        for sym in sorted(set(self.symbols)):
            if "#" in self.lib.name(molecule_graph([sym], [])):
                self.lib.add(sym, [sym], [])
        for offset, atoms in ((0, ra.atoms[0]), (ra.n_atoms, rb.atoms[0])):
            species, bonds = self.analyse(atoms.positions, offset)
            for name, idx in species:
                formula = self.formula(idx)
                if "#" in name and formula not in self.lib.names:
                    local = {k: n for n, k in enumerate(sorted(idx))}
                    self.lib.add(formula, [self.symbols[k] for k in sorted(idx)],
                                 [(local[i], local[j]) for i, j in bonds if i in local])
        self._cache.clear()

    def analyse(self, positions: np.ndarray, offset: int = 0) -> tuple[frozenset, frozenset]:
        """(species, bonds) of atoms ``offset, offset + 1, ...`` at ``positions`` (Å)."""
        from common.events import bond_series, species_in_frame

        n = len(positions)
        at = Atoms(symbols=self.symbols[offset:offset + n], positions=positions, pbc=False)
        bonds = frozenset((i + offset, j + offset)
                          for i, j in bond_series([at], None, self.crit)[0])
        species = species_in_frame(bonds, range(offset, offset + n), self.symbols, self.lib,
                                   _cache=self._cache)
        return species, bonds

    def reactants(self, ia: int, ib: int) -> frozenset:
        return self._ref_a[ia] | self._ref_b[ib]

    def formula(self, atoms: frozenset[int]) -> str:
        from common.events import hill_formula

        return hill_formula(self.symbols[k] for k in atoms)

    def describe(self, species: frozenset, bonds: frozenset) -> list[dict]:
        """Name, formula, elements and bonds (indices into ``elements``) of each species."""
        out = []
        for name, atoms in sorted(species, key=lambda s: (s[0], sorted(s[1]))):
            idx = sorted(atoms)
            local = {k: n for n, k in enumerate(idx)}
            out.append({"name": name, "formula": self.formula(atoms),
                        "elements": [self.symbols[k] for k in idx],
                        "bonds": sorted([local[i], local[j]] for i, j in bonds if i in local)})
        return out

    def matches(self, c: Criterion, species: frozenset) -> bool:
        """Whether ``species`` holds every species a products criterion asks for."""
        pool = [(name, self.formula(atoms)) for name, atoms in species]
        for want, k in Counter(c.species).items():
            if sum(want in pair for pair in pool) < k:
                return False
        return True


def _label(species: frozenset) -> str:
    return " + ".join(sorted(name for name, _ in species))


# ---------------------------------------------------------------------------------------------
# trajectories


@dataclass
class _Setup:
    """Everything a batch of trajectories needs (settings checked by :func:`run_qct`)."""

    ra: _Reactant
    rb: _Reactant
    potential: object
    temperature_K: float
    criteria: list[Criterion]
    internal: str
    timestep_fs: float
    max_time_fs: float | None
    d0_A: float | None
    products: _Products
    md: dict
    guard: object = None
    energy_tolerance_eV: float | None = None
    segment_steps: int | None = None
    separation_margin_A: float | None = None
    internal_log: dict = field(default_factory=dict)
    start_at_reach: bool = False

    def draw_states(self, reactant: _Reactant, n: int, rng: np.random.Generator
                    ) -> tuple[list, list]:
        """Draw ``n`` quasi-classical states of ``reactant``.

        Normal-mode sampling on the potential (a single atom has none); their energies are logged
        in ``internal_log``.
        """
        from atmospheric.normal_modes import sample_normal_mode_states

        if reactant.modes is None:
            return [reactant.pos[0]] * n, [np.zeros_like(reactant.pos[0])] * n
        s = sample_normal_mode_states(reactant.modes, n, self.temperature_K, rng,
                                      vibration=self.internal.removeprefix("qc-"),
                                      potential=self.potential, device=self.md["device"])
        log = self.internal_log.setdefault(id(reactant), {"vib": [], "target": [], "rot": []})
        log["vib"] += s["vibrational_eV"].tolist()
        log["target"] += s["vibrational_target_eV"].tolist()
        log["rot"] += s["rotational_eV"].tolist()
        return s["positions"], s["velocities"]

    def out_of_range_A(self) -> float | None:
        """Atom distance beyond which receding reactants count as separated (or None)."""
        m = self.separation_margin_A
        return None if m is None else self.reach_A() + m

    @property
    def cutoff_A(self) -> float:
        return float(getattr(self.potential, "cutoff", 0.0))

    def reach_A(self) -> float:
        """Largest A-B distance at which anything can happen: the cutoff, or a criterion's R."""
        n_a = self.ra.n_atoms
        r = [c.threshold_A for c in self.criteria if c.kind == "distance" and c.op == "<"
             and (c.i < n_a) != (c.j < n_a)]
        return max([self.cutoff_A, *r])

    def b_limit_A(self) -> float:
        """Beyond this impact parameter the reactants never come within ``reach_A``."""
        return self.ra.radius_A + self.rb.radius_A + self.reach_A()

    def start_distance_A(self, b_max_A: float) -> float:
        if self.d0_A is not None:
            if self.d0_A <= b_max_A:
                raise ConfigError(f"d0 ({self.d0_A:g} Å) must exceed b_max ({b_max_A:.3g} Å)",
                                  where="d0_A", fix="increase d0_A or leave it unset")
            return self.d0_A
        return max(self.b_limit_A(), b_max_A) + _D0_MARGIN_A

    def max_steps(self, d0_A: float) -> int:
        mu = reduced_mass_amu(self.ra.atoms[0], self.rb.atoms[0])
        v = mean_relative_speed_m_per_s(self.temperature_K, mu) * 1e-5  # Å/fs
        t = self.max_time_fs if self.max_time_fs is not None else 6.0 * d0_A / v
        return max(1, math.ceil(t / self.timestep_fs))


def _run_batch(setup: _Setup, b_max_A: float, n: int, rng: np.random.Generator,
               outdir: Path) -> list[dict]:
    """Run ``n`` trajectories at ``b_max_A`` through run_md; return one row per trajectory.

    With ``setup.segment_steps`` the run is cut into segments of that many steps: after each,
    the trajectories still running go on (positions, velocities, starting energy and largest
    energy error carried over) in a new run_md batch of only those, so finished ones cost
    nothing more. Velocity Verlet restarted from (x, v) continues the same trajectory.
    """
    from common.md.runner import run_md

    d0 = setup.start_distance_A(b_max_A)
    gap = setup.reach_A() + _D0_MARGIN_A if setup.start_at_reach and setup.d0_A is None \
        else None
    samples = _sample(setup.ra, setup.rb, setup.temperature_K, b_max_A, d0, n, rng,
                      setup.internal, setup.draw_states, gap)
    _check_start(samples, setup.ra.n_atoms, setup.cutoff_A, setup.criteria, d0,
                 setup.b_limit_A() + _D0_MARGIN_A)
    steps = setup.max_steps(d0)
    seg = min(steps, setup.segment_steps or steps)
    masses = np.concatenate([setup.ra.masses, setup.rb.masses])
    record, e0, max_dev, failed = {}, {}, {}, {}
    running, frames, offset = list(range(n)), samples.frames, 0
    for part in range(math.ceil(steps / seg)):
        length = min(seg, steps - offset)
        stop = QCTStop(setup.ra.n_atoms, masses, setup.criteria, d0, steps, running, record,
                       energy_tolerance_eV=setup.energy_tolerance_eV, step_offset=offset,
                       out_of_range_A=setup.out_of_range_A(),
                       segment_steps=length, e0=e0, max_dev=max_dev)
        md = dict(setup.md)
        traj_every = md.pop("traj_every") or (length if part == 0 else 0)
        if md["batch_size"] == "auto" and len(running) * len(masses) <= _ALL_AT_ONCE_ATOMS:
            md["batch_size"] = len(running)  # small systems: one batch, no trial runs
        folder = outdir if seg == steps else outdir / f"segment_{part:03d}"
        summary = run_md(frames, setup.potential, folder, ensemble="nve",
                         timestep_fs=setup.timestep_fs, temperature_K=setup.temperature_K,
                         steps=length, traj_every=traj_every, stop=stop,
                         on_blowup="stop_system", guard=setup.guard, **md)
        failed.update({running[int(k)]: why for k, why in summary["failed"].items()})
        offset += length
        running = [k for k in running if k not in failed
                   and record.get(k, {}).get("outcome") == "pending"]
        if not running:
            break
        frames = [_frame(setup, masses, record[k]) for k in running]
    return [_classify(setup, record, samples, k, d0, failed.get(k)) for k in range(n)]


def _frame(setup: _Setup, masses: np.ndarray, rec: dict) -> Atoms:
    """Return a trajectory's state at the end of a segment, to go on from."""
    at = Atoms(symbols=setup.products.symbols, positions=rec["positions"], masses=masses,
               pbc=False)
    at.set_velocities(rec["velocities"])
    return at


def _classify(setup: _Setup, record: dict, samples: _Samples, k: int, d0_A: float,
              failed: str | None) -> dict:
    """Outcome, channel and products of trajectory ``k`` (``failed``: why it blew up)."""
    row = {"b_A": float(samples.b_A[k]), "collision_energy_eV": float(samples.energy_eV[k]),
           "d0_A": d0_A, "start_distance_A": float(samples.start_A[k]), "outcome": "failed",
           "channel": None, "new": False, "products": None,
           "step": None, "time_fs": None, "energy_error_eV": None,
           "max_abs_energy_error_eV": None, "failure": failed}
    rec = record.get(k)
    if failed or rec is None:
        return row
    species, bonds = setup.products.analyse(rec["positions"])
    reactants = setup.products.reactants(int(samples.state_a[k]), int(samples.state_b[k]))
    row.update(outcome=rec["outcome"], step=rec["step"],
               time_fs=rec["step"] * setup.timestep_fs, products=_label(species),
               energy_error_eV=rec["energy_error_eV"],
               max_abs_energy_error_eV=rec["max_abs_energy_error_eV"], positions=rec["positions"],
               velocities=rec["velocities"], species=species, bonds=bonds)
    if rec["outcome"] == "nonconserving":
        return row
    if rec["outcome"] == "criterion":
        row["channel"] = [c for c in setup.criteria if c.kind == "distance"][
            rec["criterion"]].channel
    elif species != reactants:
        by_products = [c for c in setup.criteria if c.kind == "products"
                       and setup.products.matches(c, species)]
        row["channel"] = by_products[0].channel if by_products else _label(species)
        row["new"] = not by_products
        if row["new"] and row["channel"] == _label(reactants):
            row["channel"] += " (atom exchange)"
    return row


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), *stream])


def _usable(row: dict) -> bool:
    """Tell whether a trajectory counts: it neither blew up nor broke energy conservation."""
    return row["outcome"] not in ("failed", "nonconserving")


def _outer_ring(rows: list[dict], b_max_A: float, ring_fraction: float) -> dict:
    """Trajectories in the outermost ``ring_fraction`` of b^2 and how many reacted there."""
    lo = math.sqrt(1.0 - ring_fraction) * b_max_A
    ring = [r for r in rows if _usable(r) and r["b_A"] >= lo]
    n_r = sum(r["channel"] is not None for r in ring)
    return {"b_from_A": lo, "b_to_A": b_max_A, "n": len(ring), "n_reactive": n_r,
            "probability": n_r / len(ring) if ring else None}


def _b_max_status(rows: list[dict], b_max_A: float, limit_A: float, opts: dict) -> str | None:
    """Say why ``b_max_A`` is large enough, or return None.

    "geometric bound": no A-B contact beyond it; "outer ring": its outer ring reacts with
    probability <= tolerance.
    """
    if b_max_A >= limit_A * (1 - 1e-12):
        return "geometric bound"
    ring = _outer_ring(rows, b_max_A, opts["ring_fraction"])
    if ring["n"] > 0 and ring["n_reactive"] <= opts["tolerance"] * ring["n"]:
        return "outer ring"
    return None


def _converge(setup: _Setup, b_start_A: float, fixed: bool, n_pilot: int, opts: dict,
              seed: int, outdir: Path) -> tuple[float, list[dict], list[dict]]:
    """Grow b_max (x ``growth``, up to the geometric bound) until a pilot's outer ring is quiet.

    Growth stops when the outer ring of a pilot run has a reaction probability <= ``tolerance``;
    returns (b_max, rows at it, history).
    """
    b, history, limit = b_start_A, [], setup.b_limit_A()
    for stage in range(opts["max_stages"]):
        rows = _run_batch(setup, b, n_pilot, _rng(seed, stage), outdir / f"bmax_{stage:02d}")
        status = _b_max_status(rows, b, limit, opts)
        history.append({"b_max_A": b, "n": n_pilot,
                        "n_reactive": sum(r["channel"] is not None for r in rows),
                        "outer_ring": _outer_ring(rows, b, opts["ring_fraction"]),
                        "status": status})
        if fixed or status is not None:
            break
        b = min(b * opts["growth"], limit)
    return b, rows, history


# ---------------------------------------------------------------------------------------------
# statistics


def _stats(n_c: int, n: int, v_cm_s: float, area_cm2: float) -> tuple[float, float]:
    """Rate and binomial standard error, cm^3 molecule^-1 s^-1, for n_c of n reactive."""
    p = n_c / n
    return v_cm_s * area_cm2 * p, v_cm_s * area_cm2 * math.sqrt(p * (1 - p) / n)


def _channels(used: list[dict], criteria: list[Criterion], setup: _Setup, v_cm_s: float,
              area_cm2: float) -> dict:
    """Return ``{name: {n, fraction, rate, rate_err, new, products, ...}}``.

    Every named channel (those of the criteria, even if never seen) and every new one.
    """
    reactive = [r for r in used if r["channel"] is not None]
    names = list(dict.fromkeys([c.channel for c in criteria]
                               + [r["channel"] for r in reactive]))
    out = {}
    for name in names:
        mine = [r for r in reactive if r["channel"] == name]
        k, err = _stats(len(mine), len(used), v_cm_s, area_cm2)
        ch = {"n": len(mine), "fraction": len(mine) / len(reactive) if reactive else None,
              "rate_cm3_per_molecule_s": k, "rate_err_cm3_per_molecule_s": err,
              "new": bool(mine and mine[0]["new"]),
              "products": dict(Counter(r["products"] for r in mine).most_common())}
        if ch["new"]:
            ch["species"] = setup.products.describe(mine[0]["species"], mine[0]["bonds"])
            ch["example_trajectory"] = mine[0]["trajectory"]
        out[name] = ch
    return out


def _opacity(used: list[dict], b_max_A: float, n_rings: int) -> list[dict]:
    """Reaction probability in ``n_rings`` equal-width rings of b (the opacity function)."""
    edges = np.linspace(0.0, b_max_A, n_rings + 1)
    out = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        ring = [r for r in used if lo <= r["b_A"] < hi or (hi == b_max_A and r["b_A"] == hi)]
        n_r = sum(r["channel"] is not None for r in ring)
        p = n_r / len(ring) if ring else None
        out.append({"b_from_A": float(lo), "b_to_A": float(hi), "n": len(ring),
                    "n_reactive": n_r, "probability": p,
                    "probability_err": math.sqrt(p * (1 - p) / len(ring)) if ring else None})
    return out


def _summary(setup: _Setup, rows: list[dict], b_max_A: float, seed: int, n_rings: int) -> dict:
    """Build the result dict (the JSON contract first, then diagnostics)."""
    from common.errors import SimulationError
    from common.events import wilson_interval

    used = [r for r in rows if _usable(r)]
    if not used:
        raise SimulationError(f"every trajectory blew up or broke energy conservation "
                              f"(first: {rows[0]['failure'] or rows[0]['outcome']})",
                              where=f"b_max = {b_max_A:.3g} Å",
                              fix="reduce timestep_fs, or check the potential at short range")
    mu = reduced_mass_amu(setup.ra.atoms[0], setup.rb.atoms[0])
    v_cm_s = mean_relative_speed_m_per_s(setup.temperature_K, mu) * 100.0
    area = math.pi * (b_max_A * 1e-8) ** 2
    n_r = sum(r["channel"] is not None for r in used)
    k, err = _stats(n_r, len(used), v_cm_s, area)
    ci = wilson_interval(n_r, len(used))
    opacity = _opacity(used, b_max_A, n_rings)
    k_op = v_cm_s * sum(math.pi * ((o["b_to_A"] * 1e-8) ** 2 - (o["b_from_A"] * 1e-8) ** 2)
                        * o["probability"] for o in opacity if o["n"])
    outcomes = Counter(r["outcome"] for r in rows)
    energy_err = [r["max_abs_energy_error_eV"] for r in used]
    all_err = [r["max_abs_energy_error_eV"] for r in rows if r["outcome"] != "failed"]
    return {
        "method": "QCT", "temperature_K": setup.temperature_K,
        "rate_cm3_per_molecule_s": k, "rate_err_cm3_per_molecule_s": err,
        "b_max_A": b_max_A, "n_trajectories": len(rows), "n_reactive": n_r,
        "n_used": len(used),
        "channels": _channels(used, setup.criteria, setup, v_cm_s, area),
        "reaction_probability": n_r / len(used),
        "reaction_probability_err": math.sqrt(n_r / len(used) * (1 - n_r / len(used))
                                              / len(used)),
        "rate_ci95_cm3_per_molecule_s": [v_cm_s * area * ci[0], v_cm_s * area * ci[1]],
        "rate_from_opacity_cm3_per_molecule_s": k_op, "opacity": opacity,
        "mean_relative_speed_m_per_s": v_cm_s / 100.0, "reduced_mass_amu": mu,
        "reactants": _label(setup.products.reactants(0, 0)),
        "criteria": [c.text for c in setup.criteria], "d0_A": used[0]["d0_A"],
        "timestep_fs": setup.timestep_fs, "seed": seed,
        "n_criterion": outcomes["criterion"], "n_separated": outcomes["separated"],
        "n_timeout": outcomes["timeout"], "n_failed": outcomes["failed"],
        "n_nonconserving": outcomes["nonconserving"],
        "energy_tolerance_eV": setup.energy_tolerance_eV,
        "max_abs_energy_error_eV": max(energy_err),
        "median_abs_energy_error_eV": float(np.median(energy_err)),
        "max_abs_energy_error_all_eV": max(all_err),
    }


def _warnings(result: dict, converged: bool, temperature_K: float) -> list[str]:
    out = []
    ring = result["outer_ring"]
    if not converged:
        out.append(f"the outer ring of b (b > {ring['b_from_A']:.3g} Å) still reacts at b_max = "
                   f"{result['b_max_A']:.3g} Å ({ring['n_reactive']} of {ring['n']}): k may be "
                   "underestimated; raise b_max_A (or max_b_max_stages when converging)")
    n = result["n_trajectories"]
    if result["n_timeout"] > 0.01 * n:
        out.append(f"{result['n_timeout']} of {n} trajectories reached max_time_fs undecided "
                   "(counted as non-reactive unless their bonds changed); raise max_time_fs")
    if result["n_failed"]:
        out.append(f"{result['n_failed']} trajectories blew up and were left out")
    if result["n_nonconserving"]:
        out.append(f"{result['n_nonconserving']} of {n} trajectories broke energy conservation "
                   f"(|E - E0| > {result['energy_tolerance_eV']:g} eV) and were left out: "
                   "the potential is rough where they went, or the step is too long")
    if result["max_abs_energy_error_eV"] > 0.5 * KB_EV * temperature_K:
        out.append(f"total energy changed by up to {result['max_abs_energy_error_eV']:.3g} eV "
                   "(> kT/2) along a trajectory: reduce timestep_fs")
    return out


# ---------------------------------------------------------------------------------------------
# files

_CSV_COLUMNS = ("trajectory", "b_A", "collision_energy_eV", "start_distance_A", "outcome",
                "channel", "new", "products", "step", "time_fs", "energy_error_eV",
                "max_abs_energy_error_eV")


def _write_outputs(outdir: Path, result: dict, rows: list[dict], setup: _Setup) -> dict:
    """trajectories.csv, final_frames.extxyz and qct.json in ``outdir``, each atomically."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(_CSV_COLUMNS)
    for r in rows:
        w.writerow(["" if r.get(c) is None else r.get(c) for c in _CSV_COLUMNS])
    result["files"] = {
        "result_json": str(outdir / "qct.json"),
        "trajectories_csv": str(atomic_write_text(outdir / "trajectories.csv", buf.getvalue())),
        "final_frames": str(atomic_write_atoms(outdir / "final_frames.extxyz", [
            _final_frame(setup, r) for r in rows if r["outcome"] != "failed"]))}
    atomic_write_json(outdir / "qct.json", result)
    return result


def _final_frame(setup: _Setup, r: dict) -> Atoms:
    at = Atoms(symbols=setup.products.symbols, positions=r["positions"], pbc=False,
               masses=np.concatenate([setup.ra.masses, setup.rb.masses]))
    at.set_velocities(r["velocities"])
    at.info.update(trajectory=r["trajectory"], b_A=r["b_A"], outcome=r["outcome"],
                   channel=str(r["channel"]), products=str(r["products"]), step=r["step"])
    return at


# ---------------------------------------------------------------------------------------------
# the run

INTERNAL = ("mb", "none", "given", "qc-zpe", "qc-thermal")


def _check_settings(temperature_K: float, n_trajectories: int, timestep_fs: float,
                    internal: str, b_max_A: float | None, opts: dict) -> None:
    def need(ok: bool, what: str, where: str, fix: str) -> None:
        if not ok:
            raise ConfigError(what, where=where, fix=fix)

    need(temperature_K > 0, f"temperature must be > 0 K (got {temperature_K})",
         "temperature_K", "give a positive temperature, e.g. 298")
    need(n_trajectories >= 1, f"need at least 1 trajectory (got {n_trajectories})",
         "n_trajectories", "give e.g. 1000 (the error falls as 1/sqrt(N))")
    need(timestep_fs > 0, f"timestep must be > 0 fs (got {timestep_fs})", "timestep_fs",
         "use e.g. 0.25-0.5 fs with hydrogen")
    need(internal in INTERNAL, f"unknown internal-state mode {internal!r}", "internal",
         f"use one of {', '.join(INTERNAL)}")
    need(b_max_A is None or b_max_A > 0, f"b_max must be > 0 Å (got {b_max_A})", "b_max_A",
         "give a positive value or leave it unset")
    need(0 < opts["ring_fraction"] < 1, "ring fraction must lie in (0, 1)", "ring_fraction",
         "use e.g. 0.2 (the outer 20% of b^2)")
    need(opts["growth"] > 1, "b_max growth factor must be > 1", "b_max_growth",
         "use e.g. 1.25")


def _fresh_dir(outdir: str | Path) -> Path:
    outdir = Path(outdir)
    if outdir.exists() and (not outdir.is_dir() or any(outdir.iterdir())):
        raise ConfigError("output folder exists and is not empty", where=str(outdir),
                          fix="give a new folder for the QCT run")
    outdir.mkdir(parents=True, exist_ok=True)
    return outdir


def run_qct(a: Atoms | Sequence[Atoms], b: Atoms | Sequence[Atoms], potential,
            temperature_K: float, criteria: Sequence[str | Criterion],
            n_trajectories: int = 1000, seed: int = 0, outdir: str | Path = "qct", *,
            b_max_A: float | None = None, converge_b_max: bool = True,
            d0_A: float | None = None, internal: str = "mb", timestep_fs: float = 0.5,
            max_time_fs: float | None = None, n_pilot: int | None = None,
            ring_fraction: float = 0.2, ring_tolerance: float = 0.02,
            b_max_growth: float = 1.25, max_b_max_stages: int = 8, n_rings: int = 10,
            bond_criteria=None, species_library=None, device: str = "cpu",
            dtype: torch.dtype | None = None, batch_size: int | str = "auto",
            skin: float = 1.0, traj_every: int | None = None, progress: bool = False,
            potential_label: str = "", guard=None, energy_tolerance_eV: float | None = None,
            segment_fs: float | None = None, separation_margin_A: float | None = None,
            start_at_reach: bool = False) -> dict:
    """Thermal rate constant of A + B by quasi-classical trajectories.

    Parameters
    ----------
    a, b
        The reactants (ASE Atoms, isolated), or lists of pre-sampled states of each (same
        atoms; each trajectory draws one; with ``internal="given"`` their velocities are used).
    potential
        A :class:`~common.potential.protocol.BatchedPotential` (its ``cutoff`` in Å is the
        interaction range).
    temperature_K
        Temperature of the relative motion and the internal states, K.
    criteria
        Reaction criteria (:func:`parse_criterion`); may be empty: reactions are then found
        from the bond graph alone.
    n_trajectories, seed
        Trajectories at the final ``b_max``; seed of every random draw (same seed, same
        numbers on CPU).
    outdir
        A new folder: ``qct.json``, ``trajectories.csv``, ``final_frames.extxyz`` and the
        run_md folders under ``runs/``.
    b_max_A, converge_b_max
        Starting ``b_max`` (Å; default half the geometric bound; one beyond the bound is cut
        to it, since no trajectory beyond it comes within reach); with ``converge_b_max`` it is
        multiplied by ``b_max_growth`` until the outer ``ring_fraction`` of ``b^2`` of an
        ``n_pilot``-trajectory run reacts with probability <= ``ring_tolerance`` (or the bound,
        radius A + radius B + reach, is met); without, it is used as it is.
    d0_A
        Initial centre-of-mass distance, Å (default: the bound + 0.5 Å, beyond the cutoff);
        a trajectory whose centres move beyond it has separated.
    start_at_reach
        Start each trajectory on its own line where the closest A-B pair of its frozen
        starting geometry is reach + 0.5 Å apart, not at ``d0_A``: faster, but an
        approximation that ignores rotation and vibration during the flight in (see the
        module docstring). Ignored when ``d0_A`` is given.
    internal
        "mb" (classical: Maxwell-Boltzmann velocities at T, centre-of-mass motion removed, no
        zero-point energy), "none" (no internal motion), "given" (the velocities of the
        states passed), or quasi-classical normal-mode sampling on ``potential``
        (:mod:`atmospheric.normal_modes`; each reactant relaxed from its first state):
        "qc-zpe" (every mode in v = 0) or "qc-thermal" (v from the harmonic Boltzmann
        distribution at T), both with random phases, the vibrational energy matched on the
        potential and a classical thermal rotation. The result's ``internal_states`` gives
        each reactant's frequencies, ZPE and the mean sampled energies.
    timestep_fs, max_time_fs
        NVE time step, fs; a trajectory still undecided at ``max_time_fs`` (default 6 d0 /
        <v_rel>) stops there and counts as non-reactive unless its bonds changed.
    n_rings
        Rings of b for the opacity function P(b).
    bond_criteria, species_library
        Bond cutoffs and species names for product identification (:mod:`common.events`).
    device, dtype, batch_size, skin, traj_every, progress, potential_label
        Passed to :func:`common.md.runner.run_md` (``traj_every`` default: the first and last
        frame of the first segment only).
    guard
        A :class:`~common.md.guard.BlowUpGuard`; default: forces up to 100 eV/Å and no
        temperature limit below 10^6 K (a few hot atoms after an exothermic step are no
        blow-up). A trajectory that trips it is left out (``n_failed``) and the rest go on.
    energy_tolerance_eV
        NVE check: a trajectory whose total energy moves more than this from its start (at
        any step) is stopped and left out (``n_nonconserving``), not counted as reactive or
        not; None keeps every trajectory (the largest error is reported either way).
    segment_fs
        Cut the run into segments of this length; after each, only the trajectories still
        running go on (finished ones cost nothing more). None: one segment.
    separation_margin_A
        Also end a trajectory as separated as soon as the reactants' centres move apart with
        no A-B atom pair within the interaction reach (cutoff) + this margin (Å): saves the
        flight out to ``d0``; an approximation (see :class:`QCTStop`). None: only ``d0``.

    Returns
    -------
    dict
        ``method``, ``temperature_K``, ``rate_cm3_per_molecule_s``,
        ``rate_err_cm3_per_molecule_s`` (binomial standard error), ``b_max_A``,
        ``n_trajectories`` (run), ``n_reactive``, ``channels`` (``{name: {n, fraction, rate..., new,
        products, species}}``; ``fraction`` of the reactive trajectories) and diagnostics:
        ``n_used`` (trajectories that count), ``n_nonconserving``,
        ``max_abs_energy_error_eV`` (largest |E - E0| along any counted trajectory),
        ``opacity``, ``b_max_history``, ``outer_ring``, outcome counts, ``warnings``, ``files``.
    """
    opts = {"ring_fraction": ring_fraction, "tolerance": ring_tolerance,
            "growth": b_max_growth, "max_stages": max(1, int(max_b_max_stages))}
    _check_settings(temperature_K, n_trajectories, timestep_fs, internal, b_max_A, opts)
    if energy_tolerance_eV is not None and not energy_tolerance_eV > 0:
        raise ConfigError(f"energy tolerance must be > 0 eV (got {energy_tolerance_eV})",
                          where="energy_tolerance_eV", fix="give e.g. 0.1, or leave it unset")
    if segment_fs is not None and not segment_fs >= timestep_fs:
        raise ConfigError(f"segment length must be at least one step (got {segment_fs} fs)",
                          where="segment_fs", fix="give e.g. 100, or leave it unset")
    if separation_margin_A is not None and not separation_margin_A >= 0:
        raise ConfigError(f"separation margin must be >= 0 Å (got {separation_margin_A})",
                          where="separation_margin_A", fix="give e.g. 1.0, or leave it unset")
    ra, rb = _reactant(a, "A"), _reactant(b, "B")
    crit = parse_criteria(criteria, ra.n_atoms, rb.n_atoms)
    if internal.startswith("qc-"):
        for r in (ra, rb):
            _add_modes(r, potential, float(temperature_K), seed, device)
    outdir = _fresh_dir(outdir)
    md = {"seed": seed, "device": device, "dtype": dtype, "batch_size": batch_size,
          "skin": skin, "traj_every": traj_every, "progress": progress,
          "potential_label": potential_label}
    setup = _Setup(ra, rb, potential, float(temperature_K), crit, internal, timestep_fs,
                   max_time_fs, d0_A, _Products(ra, rb, bond_criteria, species_library), md,
                   guard or BlowUpGuard(max_force_eV_A=100.0, max_temperature_K=1e6),
                   energy_tolerance_eV,
                   None if segment_fs is None else max(1, round(segment_fs / timestep_fs)),
                   separation_margin_A, start_at_reach=start_at_reach)
    fixed = not converge_b_max
    start = b_max_A if b_max_A is not None else 0.5 * setup.b_limit_A()
    start = min(start, setup.b_limit_A())  # beyond the bound the reactants never meet
    pilot = n_trajectories if fixed else min(n_trajectories,
                                             n_pilot or max(100, n_trajectories // 4))
    b_fin, rows, history = _converge(setup, start, fixed, pilot, opts, seed, outdir / "runs")
    if len(rows) < n_trajectories:
        rows += _run_batch(setup, b_fin, n_trajectories - len(rows), _rng(seed, 10_000),
                           outdir / "runs" / "production")
    for k, r in enumerate(rows):
        r["trajectory"] = k
    result = _summary(setup, rows, b_fin, seed, n_rings)
    status = _b_max_status(rows, b_fin, setup.b_limit_A(), opts)
    result.update(b_max_converged=status is not None, b_max_converged_by=status,
                  b_max_bound_A=setup.b_limit_A(), b_max_history=history,
                  outer_ring=_outer_ring(rows, b_fin, ring_fraction),
                  max_time_fs=setup.max_steps(result["d0_A"]) * timestep_fs)
    result["internal"] = internal
    if internal.startswith("qc-"):
        result["internal_states"] = _internal_summary(setup)
    result["warnings"] = _warnings(result, status is not None, temperature_K)
    return _write_outputs(outdir, result, rows, setup)


def _add_modes(r: _Reactant, potential, temperature_K: float, seed: int, device: str) -> None:
    """Add a reactant's normal modes on the potential (from its first state) and widen its radius.

    The radius is widened to cover the vibrating states (a pilot of 256 harmonic states).
    """
    from atmospheric.normal_modes import normal_modes, sample_normal_mode_states

    if r.n_atoms == 1:
        return
    r.modes = normal_modes(r.atoms[0], potential, device=device)
    pilot = sample_normal_mode_states(r.modes, 256, temperature_K, _rng(seed, 99),
                                      rotation=False)
    reach = max(float(np.linalg.norm(p, axis=1).max()) for p in pilot["positions"])
    r.radius_A = max(r.radius_A, reach + 0.1)


def _mean(x: list) -> float | None:
    return float(np.mean(x)) if x else None


def _internal_summary(setup: _Setup) -> dict:
    """Each reactant's modes and the mean sampled internal energies (eV).

    Vibrational on the potential, its harmonic target, rotational.
    """
    out = {}
    for name, r in (("A", setup.ra), ("B", setup.rb)):
        if r.modes is None:
            out[name] = {"n_modes": 0}
            continue
        log = setup.internal_log.get(id(r), {"vib": [], "target": [], "rot": []})
        out[name] = {**r.modes.summary(),
                     "mean_thermal_harmonic_vibrational_eV":
                         r.modes.mean_thermal_vibrational_energy_eV(setup.temperature_K),
                     "mean_vibrational_eV": _mean(log["vib"]),
                     "mean_vibrational_target_eV": _mean(log["target"]),
                     "mean_rotational_eV": _mean(log["rot"]), "n_sampled": len(log["vib"])}
    return out
