"""Rate constants of activated steps by transition interface sampling (TIS), on any potential.

Method (van Erp, Moroni & Bolhuis, J. Chem. Phys. 118, 7762 (2003); van Erp & Bolhuis,
J. Comput. Phys. 205, 157 (2005)):

* order parameter ``lambda``: a CV of :mod:`common.cv` (``distance:I:J``, each side an atom or
  the centre of mass of a group), in Å; states A and B are ``LO,HI`` ranges of it; when A lies
  above B the CV is negated internally, so that paths always go "up" from A to B;
* interfaces ``lambda_0 < lambda_1 < ... < lambda_{n-1}`` between A's edge and B's edge
  (``lambda_0`` may be A's edge itself); ``lambda_n`` is B's edge;
* flux ``Phi_A0`` through ``lambda_0``: effective positive crossings (the first frame beyond
  ``lambda_0`` after a visit to A) per unit time with A the last state visited, from batched
  MD replicas started in A (a replica that enters B stops there); error from blocks;
* per interface ``i``, the path ensemble of paths that start in A, end in A or B and cross
  ``lambda_i``, sampled by two-way shooting: a frame chosen uniformly among the old path's
  interior frames, new momenta ``sqrt(1 - a^2) p + a xi`` (``xi`` Maxwell-Boltzmann at T, so
  ``a = 1`` redraws them; the mixing leaves the Maxwell-Boltzmann distribution invariant),
  backward and forward segments integrated with the same dynamics (the backward one from the
  reversed momenta) until A or B; a trial is rejected when the backward segment ends in B,
  when the path is longer than ``max_path_steps``, when it does not cross ``lambda_i``, or by
  the Metropolis test ``min(1, N_old / N_new)`` on the numbers of interior frames. All chains'
  trials of a round (backward and forward segments together) are one batch of
  :func:`common.md.runner.run_md` whose stop condition ends each segment in A or B;
* crossing probability ``P(lambda_{i+1} | lambda_i)``: the fraction of paths of ensemble ``i``
  that go beyond ``lambda_{i+1}`` (for the last interface: that end in B); independent chains
  per interface give its standard error (chain means; blocks when there are fewer than four
  chains); ``k_AB = Phi_A0 prod_i P(lambda_{i+1} | lambda_i)``, relative errors added in
  quadrature (the interfaces' estimates taken as independent).

Dynamics: Langevin BAOAB at ``temperature_K`` with ``friction_per_ps``, or NVE
(``friction_per_ps = 0``; initial momenta still from Maxwell-Boltzmann at T, so the ensemble of
shooting points is canonical). Atoms fixed with ASE ``FixAtoms`` keep their positions and zero
velocities throughout (the engine's fixed mask; momenta are never drawn for them).

Initial paths: ensemble 0 starts from two-way shots (momenta kept) from the flux run's crossing
points; ensemble ``i > 0`` from the accepted paths of ensemble ``i - 1`` that crossed
``lambda_i``. The first ``discard`` trials of each chain are left out of the averages.

Simplifications, named: crossing probabilities are joined as a plain product, not by WHAM
over the interfaces' overlapping crossing-probability curves; interface positions are used as
given (or evenly spaced), not optimised for equal crossing probabilities.
"""

from __future__ import annotations

import csv
import io
import math
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from ase import units as ase_units

from common.cv import CVSpec, cv_values, parse_cv, parse_range
from common.errors import ConfigError, SimulationError
from common.fileio import atomic_write_atoms, atomic_write_json, atomic_write_text

__all__ = ["OrderParameter", "TISMonitor", "order_parameter", "run_tis"]

KB_EV = float(ase_units.kB)
_SEED_STREAM = 10_000  # systems per run_md call are seeded seed*1e9 + stream*1e4 + k


# ---------------------------------------------------------------------------------------------
# order parameter, states, interfaces


@dataclass(frozen=True)
class OrderParameter:
    """The CV oriented from A to B, the two states and the interfaces (oriented values).

    ``sign`` is +1 when A lies below B in the CV, -1 when above (then every value is negated
    internally); ``a`` and ``b`` are the oriented ranges; ``interfaces`` are oriented and
    increasing; ``lambda_b`` is B's edge (the last interface).
    """

    cv: CVSpec
    masses: np.ndarray
    cell: np.ndarray | None
    sign: float
    a: tuple[float, float]
    b: tuple[float, float]
    interfaces: tuple[float, ...]

    @property
    def lambda_a(self) -> float:
        """Upper edge of state A, oriented."""
        return self.a[1]

    @property
    def lambda_b(self) -> float:
        """Lower edge of state B, oriented."""
        return self.b[0]

    def __call__(self, positions: np.ndarray) -> np.ndarray:
        """Oriented order parameter of positions (n_atoms, 3) or (n_frames, n_atoms, 3)."""
        return self.sign * cv_values(self.cv, positions, self.masses, self.cell)

    def in_a(self, lam):
        """Tell whether oriented value(s) ``lam`` lie in state A."""
        return (lam >= self.a[0]) & (lam <= self.a[1])

    def in_b(self, lam):
        """Tell whether oriented value(s) ``lam`` lie in state B."""
        return (lam >= self.b[0]) & (lam <= self.b[1])

    def plain(self, lam: float) -> float:
        """Return an oriented value back in the CV's own units and sign, Å."""
        return float(self.sign * lam)


def order_parameter(structure: Atoms, cv: str | CVSpec, state_a, state_b,
                    interfaces: Sequence[float] | str | None = None,
                    n_interfaces: int = 4) -> OrderParameter:
    """Check the CV, states and interfaces against each other and the structure.

    Raises :class:`ConfigError` (naming ``cv``, ``state_a``, ``state_b``, ``interfaces`` or
    ``structure``) for a CV on missing atoms, overlapping states, interfaces outside the
    stretch between the states, duplicated interfaces, or a structure that does not start
    in A.
    """
    spec = cv if isinstance(cv, CVSpec) else parse_cv(cv, len(structure), where="cv")
    a = parse_range(state_a, "state_a", "Å")
    b = parse_range(state_b, "state_b", "Å")
    if a[0] <= b[1] and b[0] <= a[1]:
        raise ConfigError(f"states A ({a[0]:g}-{a[1]:g} Å) and B ({b[0]:g}-{b[1]:g} Å) "
                          "overlap", where="state_b",
                          fix="give two disjoint ranges of the CV, e.g. A 1.0,1.6 and B 2.4,3.0")
    sign = 1.0 if a[1] < b[0] else -1.0
    oa = tuple(sorted((sign * a[0], sign * a[1])))
    ob = tuple(sorted((sign * b[0], sign * b[1])))
    edge_a, edge_b = oa[1], ob[0]
    if interfaces is None or (isinstance(interfaces, str) and not interfaces.strip()):
        if n_interfaces < 1:
            raise ConfigError(f"need at least one interface (got {n_interfaces})",
                              where="n_interfaces", fix="give e.g. 4")
        lam = tuple(edge_a + k * (edge_b - edge_a) / n_interfaces for k in range(n_interfaces))
    else:
        lam = _read_interfaces(interfaces, sign, edge_a, edge_b)
    cell = structure.cell.array if structure.pbc.any() else None
    op = OrderParameter(spec, structure.get_masses(), cell, sign, oa, ob, lam)
    x = float(op(structure.positions))
    if not op.in_a(x):
        raise ConfigError(f"the structure is not in state A: its CV is {op.plain(x):.4g} Å, A "
                          f"is {a[0]:g}-{a[1]:g} Å", where="structure",
                          fix="start from a structure in A (the flux is measured from MD in A)")
    return op


def _read_interfaces(text, sign: float, edge_a: float, edge_b: float) -> tuple[float, ...]:
    try:
        vals = [float(v) for v in (text.split(",") if isinstance(text, str) else text)]
    except (TypeError, ValueError):
        vals = []
    if not vals or not all(math.isfinite(v) for v in vals):
        raise ConfigError(f"cannot read interfaces {text!r}", where="interfaces",
                          fix="give comma-separated CV values in Å, e.g. 1.6,1.8,2.0,2.2")
    lo, hi = sorted((sign * edge_a, sign * edge_b))
    for v in vals:
        o = sign * v
        if not edge_a <= o < edge_b:
            raise ConfigError(
                f"interface {v:g} Å lies outside the stretch between the states ({lo:g} to "
                f"{hi:g} Å)", where="interfaces",
                fix=f"give values from A's edge ({sign * edge_a:g} Å) towards B's edge "
                    f"({sign * edge_b:g} Å), B's edge itself excluded")
    oriented = sorted(sign * v for v in vals)
    if len(set(oriented)) != len(oriented):
        raise ConfigError(f"interfaces {text!r} repeat a value", where="interfaces",
                          fix="give each interface once")
    return tuple(oriented)


# ---------------------------------------------------------------------------------------------
# the stop condition that watches lambda


class TISMonitor:
    """Stop condition for :func:`common.md.runner.run_md` that records what TIS needs.

    It evaluates the order parameter at every step of every system; ``record`` is shared with the
    per-batch slices from :meth:`select`.

    ``mode`` "flux": never stops a system in A; counts effective positive crossings of
    ``lambda_0`` after ``equilibration`` steps and the steps with A the last state visited;
    stops a system when it enters B. Record per system: ``crossings`` (steps), ``points``
    (positions, velocities at up to ``max_points`` crossings), ``time_steps``, ``entered_b``.

    ``mode`` "segment": systems come in pairs (backward, forward) of one shooting trial;
    each stops when it enters A or B, or at ``max_steps``; a forward segment also stops when
    its backward partner ended in B or when the two together exceed ``max_steps``. Record
    per system: ``lam``, ``positions``, ``velocities`` (every step from step 1) and ``end``
    ("A", "B" or "max").
    """

    def __init__(self, op: OrderParameter, mode: str, *, max_steps: int, equilibration: int = 0,
                 max_points: int = 64, systems: Sequence[int] | None = None,
                 record: dict | None = None):
        self.op, self.mode = op, mode
        self.max_steps, self.equilibration = int(max_steps), int(equilibration)
        self.max_points = int(max_points)
        self.systems = None if systems is None else list(systems)
        self.record = {} if record is None else record
        self._done: np.ndarray | None = None

    def select(self, idx: Sequence[int]) -> TISMonitor:
        """Return the monitor for systems ``idx`` of this one (records go to the same dict)."""
        mine = list(range(max(idx) + 1)) if self.systems is None else self.systems
        return TISMonitor(self.op, self.mode, max_steps=self.max_steps,
                          equilibration=self.equilibration, max_points=self.max_points,
                          systems=[mine[i] for i in idx], record=self.record)

    def params(self) -> dict:
        """Return the monitor's settings as a JSON-able dict."""
        return {"mode": self.mode, "max_steps": self.max_steps,
                "equilibration": self.equilibration, "cv": self.op.cv.text,
                "a": list(self.op.a), "b": list(self.op.b),
                "interfaces": list(self.op.interfaces)}

    def _key(self, s: int) -> int:
        return s if self.systems is None else self.systems[s]

    def __call__(self, state, out: dict, step: int) -> torch.Tensor:
        """Record the order parameter at ``step``; return the stop mask of the batch."""
        n = len(self.op.masses)
        pos = state.positions.detach().view(-1, n, 3).cpu().numpy()
        lam = self.op(pos)
        if self._done is None:
            self._done = np.zeros(len(lam), dtype=bool)
        if self.mode == "flux":
            hit = self._flux(state, pos, lam, step)
        else:
            hit = self._segment(state, pos, lam, step)
        self._done |= hit
        return torch.as_tensor(hit, device=state.positions.device)

    def _flux(self, state, pos, lam, step) -> np.ndarray:
        op = self.op
        in_a, in_b = op.in_a(lam), op.in_b(lam)
        beyond = lam > op.interfaces[0]
        vel = None
        for s in np.nonzero(~self._done)[0]:
            r = self.record.setdefault(self._key(s), {"armed": True, "crossings": [],
                                                      "points": [], "time_steps": 0,
                                                      "entered_b": None})
            if in_b[s]:
                r["entered_b"] = step
                continue
            if step > self.equilibration:
                r["time_steps"] += 1
                if r["armed"] and beyond[s]:
                    r["crossings"].append(step)
                    if len(r["points"]) < self.max_points:
                        if vel is None:
                            vel = state.velocities.detach().view(pos.shape).cpu().numpy()
                        r["points"].append((pos[s].copy(), vel[s].copy(), step))
            if in_a[s]:
                r["armed"] = True
            elif beyond[s]:
                r["armed"] = False
        return in_b & ~self._done

    def _segment(self, state, pos, lam, step) -> np.ndarray:
        op = self.op
        vel = state.velocities.detach().view(pos.shape).cpu().numpy()
        hit = np.zeros(len(lam), dtype=bool)
        for s in np.nonzero(~self._done)[0]:
            key = self._key(s)
            r = self.record.setdefault(key, {"lam": [], "positions": [], "velocities": [],
                                             "end": None})
            r["lam"].append(float(lam[s]))
            r["positions"].append(pos[s].copy())
            r["velocities"].append(vel[s].copy())
            end = "A" if op.in_a(lam[s]) else "B" if op.in_b(lam[s]) else None
            partner = self.record.get(key - 1) if key % 2 else None  # forward: its backward
            if end is None and partner is not None and partner["end"] is not None:
                if partner["end"] != "A" or len(partner["lam"]) + step >= self.max_steps:
                    end = "abandoned"
            if end is None and step >= self.max_steps:
                end = "max"
            if end is not None:
                r["end"] = end
                hit[s] = True
        return hit


# ---------------------------------------------------------------------------------------------
# paths


@dataclass
class _Path:
    """One path: oriented lambda, positions and velocities of every frame."""

    lam: np.ndarray
    pos: np.ndarray
    vel: np.ndarray

    @property
    def n_interior(self) -> int:
        return len(self.lam) - 2

    def max_lam(self) -> float:
        return float(self.lam.max())


@dataclass
class _Chain:
    path: _Path
    samples: list = field(default_factory=list)  # (max_lam, ends_in_B, length, accepted)


def _assemble(back: dict, fwd: dict, x0: np.ndarray, v0: np.ndarray, lam0: float) -> _Path:
    """Assemble a path from a backward segment, the shooting point and the forward segment.

    The backward segment is reversed in time, its velocities negated.
    """
    lam = np.concatenate([np.asarray(back["lam"][::-1]), [lam0], np.asarray(fwd["lam"])])
    pos = np.concatenate([np.asarray(back["positions"][::-1]), x0[None],
                          np.asarray(fwd["positions"])])
    vel = np.concatenate([-np.asarray(back["velocities"][::-1]), v0[None],
                          np.asarray(fwd["velocities"])])
    return _Path(lam, pos, vel)


# ---------------------------------------------------------------------------------------------
# the run


@dataclass
class _Setup:
    structure: Atoms
    potential: object
    op: OrderParameter
    temperature_K: float
    friction_per_ps: float
    timestep_fs: float
    max_path_steps: int
    mixing: float
    seed: int
    md: dict
    runs: Path
    fixed: np.ndarray
    streams: int = 0

    @property
    def ensemble(self) -> str:
        return "nve" if self.friction_per_ps == 0 else "nvt"

    def run(self, frames: list[Atoms], stop: TISMonitor, steps: int, name: str) -> dict:
        from common.md.runner import run_md

        self.streams += 1
        batch = self.md["batch_size"]
        summary = run_md(
            frames, self.potential, self.runs / name, ensemble=self.ensemble,
            timestep_fs=self.timestep_fs, temperature_K=self.temperature_K,
            friction_per_ps=self.friction_per_ps if self.friction_per_ps > 0 else 1.0,
            steps=steps, seed=self.seed * 10**9 + self.streams * _SEED_STREAM, traj_every=0,
            stop=stop, on_blowup="stop_system", progress=False,
            batch_size=len(frames) if batch == "auto" else batch, device=self.md["device"],
            dtype=self.md["dtype"], skin=self.md["skin"],
            potential_label=self.md["potential_label"])
        if not self.md["keep_runs"]:
            shutil.rmtree(self.runs / name, ignore_errors=True)
        return summary

    def frame(self, x: np.ndarray, v: np.ndarray) -> Atoms:
        at = self.structure.copy()
        at.positions = x
        at.set_velocities(np.where(self.fixed[:, None], 0.0, v))
        return at

    def new_momenta(self, v: np.ndarray, rng: np.random.Generator, mixing: float) -> np.ndarray:
        """``sqrt(1 - a^2) v + a xi``, xi Maxwell-Boltzmann at T; fixed atoms stay at rest."""
        if mixing == 0:
            return v.copy()
        m = self.op.masses
        xi = rng.standard_normal(v.shape) * np.sqrt(KB_EV * self.temperature_K / m)[:, None]
        out = math.sqrt(1.0 - mixing**2) * v + mixing * xi
        out[self.fixed] = 0.0
        return out


def _flux(setup: _Setup, replicas: int, steps: int, equilibration: int, n_blocks: int = 4
          ) -> tuple[dict, list]:
    """Measure the flux through lambda_0 from ``replicas`` MD runs in A.

    Returns (result, crossing points as (positions, velocities)).
    """
    mon = TISMonitor(setup.op, "flux", max_steps=steps, equilibration=equilibration)
    start = setup.structure.copy()
    if start.has("momenta"):
        del start.arrays["momenta"]
    summary = setup.run([start] * replicas, mon, steps, "flux")
    dt_ps = setup.timestep_fs / 1000.0
    counts, times, points = [], [], []
    failed = {int(k) for k in summary["failed"]}
    for s in range(replicas):
        r = mon.record.get(s)
        if r is None or s in failed:
            continue
        end = r["entered_b"] or steps
        edges = np.linspace(equilibration, end, n_blocks + 1)
        cross = np.asarray(r["crossings"])
        for lo, hi in zip(edges[:-1], edges[1:], strict=True):
            counts.append(int(((cross > lo) & (cross <= hi)).sum()))
            times.append((hi - lo) * dt_ps)
        points += [(x, v) for x, v, _ in r["points"]]
    counts, times = np.asarray(counts, float), np.asarray(times, float)
    total_t = float(times.sum())
    if total_t <= 0:
        raise SimulationError("no time was spent in A after equilibration in the flux run",
                              where="flux_steps",
                              fix="raise flux_steps, or check that A is stable at T")
    phi = float(counts.sum() / total_t)
    k = len(counts)
    err = float(np.sqrt(((counts - phi * times) ** 2).sum() / (k * (k - 1))) / times.mean()) \
        if k > 1 else float("nan")
    n_b = sum(1 for s in range(replicas) if (mon.record.get(s) or {}).get("entered_b"))
    return ({"flux_per_ps": phi, "flux_err_per_ps": err, "n_crossings": int(counts.sum()),
             "time_ps": total_t, "replicas": replicas, "steps": steps,
             "equilibration_steps": equilibration, "replicas_entered_b": n_b,
             "replicas_failed": len(failed)}, points)


def _shoot(setup: _Setup, starts: list[tuple[np.ndarray, np.ndarray]], name: str
           ) -> list[_Path | str]:
    """Shoot two-way from ``starts`` (positions, new velocities).

    Returns a path for each, or why none ("backward ended in B", "too long", "blew up", ...).
    """
    frames = []
    for x, v in starts:
        frames += [setup.frame(x, -v), setup.frame(x, v)]
    mon = TISMonitor(setup.op, "segment", max_steps=setup.max_path_steps)
    summary = setup.run(frames, mon, setup.max_path_steps, name)
    failed = {int(k) for k in summary["failed"]}
    out = []
    for c, (x, v) in enumerate(starts):
        back, fwd = mon.record.get(2 * c), mon.record.get(2 * c + 1)
        if 2 * c in failed or 2 * c + 1 in failed:
            out.append("blew up")
        elif back is None or fwd is None:  # the shooting point is itself in A or B
            out.append("shooting point in a state")
        elif back["end"] != "A":
            out.append("backward segment did not end in A")
        elif fwd["end"] not in ("A", "B"):
            out.append("too long")
        else:
            path = _assemble(back, fwd, x, v, float(setup.op(x)))
            out.append(path if len(path.lam) <= setup.max_path_steps + 1 else "too long")
    return out


def _ends_in_b(op: OrderParameter, path: _Path) -> bool:
    return bool(op.in_b(path.lam[-1]))


def _reached(op: OrderParameter, path: _Path, i: int) -> bool:
    """Whether a path of ensemble ``i`` reaches the next interface (B for the last)."""
    if i + 1 >= len(op.interfaces):
        return _ends_in_b(op, path)
    return path.max_lam() > op.interfaces[i + 1]


def _initial_paths(setup: _Setup, candidates: list, i: int, n_chains: int,
                   rng: np.random.Generator) -> list[_Path]:
    """Find starting paths for ensemble ``i``'s chains.

    Ensemble 0 by shots (momenta kept) from the flux run's crossing points, others from the previous
    ensemble's paths that crossed lambda_i (used in turn).
    """
    op = setup.op
    if i > 0:
        pool = [p for p in candidates if p.max_lam() > op.interfaces[i]]
        return [pool[k % len(pool)] for k in range(n_chains)] if pool else []
    paths: list[_Path] = []
    order = list(rng.permutation(len(candidates)))
    attempt = 0
    while len(paths) < n_chains and order:
        take = [candidates[k] for k in order[:n_chains - len(paths)]]
        order = order[len(take):]
        shots = _shoot(setup, take, f"i00_initial_{attempt:02d}")
        attempt += 1
        paths += [p for p in shots if isinstance(p, _Path)
                  and p.max_lam() > op.interfaces[0]]
    return [paths[k % len(paths)] for k in range(n_chains)] if paths else []


def _sample_interface(setup: _Setup, i: int, chains: list[_Chain], rounds: int,
                      rng: np.random.Generator, progress) -> dict:
    """Run ``rounds`` two-way shooting trials per chain, all chains' trials of a round in one batch.

    Returns the rejections by reason and the accepted paths that crossed the next interface (the
    next ensemble's starting paths).
    """
    op = setup.op
    why: dict[str, int] = {}
    nxt = op.interfaces[i + 1] if i + 1 < len(op.interfaces) else math.inf
    pool: list[_Path] = []
    for rnd in range(rounds):
        starts, picks = [], []
        for ch in chains:
            j = int(rng.integers(1, len(ch.path.lam) - 1))
            v = setup.new_momenta(ch.path.vel[j], rng, setup.mixing)
            starts.append((ch.path.pos[j].copy(), v))
            picks.append(j)
        trials = _shoot(setup, starts, f"i{i:02d}_r{rnd:04d}")
        for ch, new in zip(chains, trials, strict=True):
            ok = isinstance(new, _Path)
            if ok and not new.max_lam() > op.interfaces[i]:
                new, ok = "no crossing of the interface", False
            if ok and rng.random() >= min(1.0, ch.path.n_interior / max(new.n_interior, 1)):
                new, ok = "path length (Metropolis)", False
            if ok:
                ch.path = new
                if new.max_lam() > nxt:
                    pool = (pool + [new])[-4 * len(chains):]
            else:
                why[new] = why.get(new, 0) + 1
            ch.samples.append((ch.path.max_lam(), _ends_in_b(op, ch.path), len(ch.path.lam),
                               ok))
        if progress is not None:
            progress(i, rnd + 1, rounds)
    return why, pool


def _probability(chains: list[_Chain], op: OrderParameter, i: int, discard: int
                 ) -> tuple[float, float, int]:
    """Estimate the crossing probability of ensemble ``i`` (mean over kept samples).

    Returns it, its standard error (from chain means, or from 4 blocks per chain with fewer than 4
    chains) and the samples used.
    """
    nxt = op.interfaces[i + 1] if i + 1 < len(op.interfaces) else None
    units = []
    for ch in chains:
        kept = ch.samples[discard:]
        hits = [float(b) if nxt is None else float(m > nxt) for m, b, _, _ in kept]
        if not hits:
            continue
        if len(chains) >= 4:
            units.append(hits)
        else:
            units += [list(block) for block in np.array_split(hits, min(4, len(hits)))]
    flat = [h for u in units for h in u]
    if not flat:
        return float("nan"), float("nan"), 0
    p = float(np.mean(flat))
    means = np.array([np.mean(u) for u in units if len(u)])
    err = float(np.std(means, ddof=1) / np.sqrt(len(means))) if len(means) > 1 else float("nan")
    return p, err, len(flat)


def _fresh_dir(outdir: str | Path) -> Path:
    outdir = Path(outdir)
    if outdir.exists() and (not outdir.is_dir() or any(outdir.iterdir())):
        raise ConfigError("output folder exists and is not empty", where=str(outdir),
                          fix="give a new folder for the TIS run")
    outdir.mkdir(parents=True, exist_ok=True)
    return outdir


def _check(temperature_K, friction_per_ps, timestep_fs, shots, n_chains, flux_replicas,
           flux_steps, max_path_steps, mixing, discard) -> None:
    def need(ok, what, where, fix):
        if not ok:
            raise ConfigError(what, where=where, fix=fix)

    need(temperature_K > 0, f"temperature must be > 0 K (got {temperature_K})",
         "temperature_K", "give e.g. 300")
    need(friction_per_ps >= 0, f"friction must be >= 0 /ps (got {friction_per_ps})",
         "friction_per_ps", "give e.g. 1.0, or 0 for NVE")
    need(timestep_fs > 0, f"timestep must be > 0 fs (got {timestep_fs})", "timestep_fs",
         "use e.g. 0.5 fs with hydrogen")
    need(shots >= 1 and n_chains >= 1, f"need shots >= 1 and chains >= 1 (got {shots}, "
         f"{n_chains})", "shots", "give e.g. 200 shots in 16 chains")
    need(flux_replicas >= 1 and flux_steps >= 2, "need flux_replicas >= 1 and flux_steps >= 2",
         "flux_steps", "give e.g. 16 replicas x 5000 steps")
    need(max_path_steps >= 3, f"max_path_steps must be >= 3 (got {max_path_steps})",
         "max_path_steps", "give e.g. 5000")
    need(0 <= mixing <= 1, f"momentum mixing must lie in [0, 1] (got {mixing})", "mixing",
         "use 1 (redraw) or e.g. 0.3 (perturb)")
    need(discard >= 0, f"discard must be >= 0 (got {discard})", "discard", "give e.g. 1")


def run_tis(structure: Atoms, potential, cv: str, state_a, state_b, temperature_K: float,
            outdir: str | Path = "tis", *, friction_per_ps: float = 1.0,
            timestep_fs: float = 1.0, interfaces: Sequence[float] | str | None = None,
            n_interfaces: int = 4, shots: int = 200, chains: int = 16, seed: int = 0,
            flux_replicas: int = 16, flux_steps: int = 5000,
            flux_equilibration_steps: int | None = None, max_path_steps: int = 5000,
            mixing: float = 1.0, discard: int = 1, device: str = "cpu",
            dtype: torch.dtype | None = None, batch_size: int | str = "auto",
            skin: float = 0.5, keep_runs: bool = False, progress=None,
            potential_label: str = "") -> dict:
    """Rate constant k_AB of one structure's A -> B transition by TIS.

    Parameters
    ----------
    structure
        Starting structure, in A (ASE ``FixAtoms`` constraints are kept: those atoms never
        move).
    potential
        A :class:`~common.potential.protocol.BatchedPotential`.
    cv, state_a, state_b
        ``distance:I:J`` (:func:`common.cv.parse_cv`; Å) and the states as ``"LO,HI"`` (Å).
    temperature_K, friction_per_ps, timestep_fs
        Langevin BAOAB dynamics (``friction_per_ps=0``: NVE) and the momenta's temperature.
    interfaces, n_interfaces
        Interface CV values (Å; any order; from A's edge, included, towards B's edge,
        excluded), or ``n_interfaces`` evenly spaced from A's edge when not given.
    shots, chains
        Shooting trials per interface, spread over ``chains`` independent chains run as one
        batch per round (``ceil(shots / chains)`` rounds).
    flux_replicas, flux_steps, flux_equilibration_steps
        The flux run: replicas x steps of MD from the structure (velocities from
        Maxwell-Boltzmann at T), the first steps (default 10%) not counted.
    max_path_steps
        Longest path (frames - 1); longer trials are rejected.
    mixing, discard
        Momentum mixing ``a`` of the shooting move (1 redraws), trials left out at the start
        of each chain.
    device, dtype, batch_size, skin, potential_label
        Passed to :func:`common.md.runner.run_md` (``batch_size="auto"``: one batch per round).
    keep_runs
        Keep each run_md folder under ``outdir/runs`` (default: removed once read).
    progress
        Optional callable ``(interface, round, rounds)``.

    Returns
    -------
    dict
        ``method`` ("TIS"), ``temperature_K``, ``rate_per_ps``, ``rate_err_per_ps``,
        ``flux_per_ps``, ``crossing_probability``, ``crossing_probability_err``, ``n_trials``,
        ``acceptance`` (the contract), then ``interfaces`` (per interface: CV value,
        probability, error, trials, acceptance, rejections), ``flux`` details, ``warnings``,
        ``files``. Also written to ``outdir/tis.json``.
    """
    n_chains = min(int(chains), int(shots))
    _check(temperature_K, friction_per_ps, timestep_fs, shots, n_chains, flux_replicas,
           flux_steps, max_path_steps, mixing, discard)
    op = order_parameter(structure, cv, state_a, state_b, interfaces, n_interfaces)
    from common.md.runner import check_structures

    check_structures([structure])
    outdir = _fresh_dir(outdir)
    fixed = np.zeros(len(structure), dtype=bool)
    for c in structure.constraints:
        if type(c).__name__ == "FixAtoms":
            fixed[c.get_indices()] = True
    setup = _Setup(structure.copy(), potential, op, float(temperature_K), float(friction_per_ps),
                   float(timestep_fs), int(max_path_steps), float(mixing), int(seed),
                   {"device": device, "dtype": dtype, "batch_size": batch_size, "skin": skin,
                    "potential_label": potential_label, "keep_runs": keep_runs},
                   outdir / "runs", fixed)
    rng = np.random.default_rng([int(seed), 7])
    equil = flux_steps // 10 if flux_equilibration_steps is None else int(
        flux_equilibration_steps)
    flux, points = _flux(setup, int(flux_replicas), int(flux_steps), equil)
    rounds = math.ceil(shots / n_chains)
    rows, candidates, warnings, stopped_at = [], points, [], None
    example = None
    for i, lam_i in enumerate(op.interfaces):
        starts = _initial_paths(setup, candidates, i, n_chains, rng)
        if not starts:
            stopped_at = i
            warnings.append(_no_start_warning(op, i, flux))
            break
        ch = [_Chain(p) for p in starts]
        why, pool = _sample_interface(setup, i, ch, rounds, rng, progress)
        p, err, n_used = _probability(ch, op, i, discard)
        n_acc = sum(s[3] for c in ch for s in c.samples)
        n_tr = sum(len(c.samples) for c in ch)
        rows.append({"interface": i, "lambda_A": op.plain(lam_i),
                     "next_A": op.plain(op.interfaces[i + 1]) if i + 1 < len(op.interfaces)
                     else "B", "crossing_probability": p, "crossing_probability_err": err,
                     "n_trials": n_tr, "n_samples_used": n_used, "n_accepted": n_acc,
                     "acceptance": n_acc / n_tr, "rejected": why,
                     "mean_path_frames": float(np.mean([s[2] for c in ch for s in c.samples]))})
        candidates = pool
        if example is None:
            example = next((c.path for c in ch if _ends_in_b(op, c.path)), None)
        if not p > 0:
            stopped_at = i
            if i + 1 < len(op.interfaces):
                warnings.append(f"no path of interface {i} ({op.plain(lam_i):g} Å) reached "
                                f"the next one: the crossing probability is estimated as 0; "
                                "add interfaces between them or raise shots")
            break
    result = _result(setup, flux, rows, stopped_at, warnings)
    return _write(outdir, result, rows, example, setup)


def _no_start_warning(op: OrderParameter, i: int, flux: dict) -> str:
    if i == 0:
        return (f"the flux run found {flux['n_crossings']} crossings of the first interface "
                f"({op.plain(op.interfaces[0]):g} Å) and no valid path from them: raise "
                "flux_steps, or move the first interface towards A")
    return f"no path reached interface {i} ({op.plain(op.interfaces[i]):g} Å)"


def _result(setup: _Setup, flux: dict, rows: list[dict], stopped_at, warnings) -> dict:
    complete = stopped_at is None and len(rows) == len(setup.op.interfaces)
    probs = [r["crossing_probability"] for r in rows]
    p_tot = float(np.prod(probs)) if complete else 0.0
    rel2 = sum((r["crossing_probability_err"] / r["crossing_probability"]) ** 2
               for r in rows if r["crossing_probability"] > 0)
    p_err = p_tot * math.sqrt(rel2) if complete else float("nan")
    k = flux["flux_per_ps"] * p_tot
    rel_flux = flux["flux_err_per_ps"] / flux["flux_per_ps"] if flux["flux_per_ps"] > 0 else 0
    k_err = k * math.sqrt(rel2 + rel_flux**2) if complete else float("nan")
    n_tr = sum(r["n_trials"] for r in rows)
    acc = sum(r["n_accepted"] for r in rows) / n_tr if n_tr else 0.0
    if flux["replicas_entered_b"]:
        warnings.append(f"{flux['replicas_entered_b']} flux replicas reached B on their own: "
                        "the barrier is low enough for plain MD (TIS still applies)")
    if any(not math.isfinite(r["crossing_probability_err"]) for r in rows):
        warnings.append("an error could not be estimated (too few chains or shots)")
    op = setup.op
    return {
        "method": "TIS", "temperature_K": setup.temperature_K, "rate_per_ps": k,
        "rate_err_per_ps": _num(k_err), "flux_per_ps": flux["flux_per_ps"],
        "crossing_probability": p_tot, "crossing_probability_err": _num(p_err),
        "n_trials": n_tr, "acceptance": acc,
        "flux_err_per_ps": _num(flux["flux_err_per_ps"]), "complete": complete,
        "cv": op.cv.text, "state_a_A": [op.plain(x) for x in sorted(op.a, key=op.plain)],
        "state_b_A": [op.plain(x) for x in sorted(op.b, key=op.plain)],
        "interfaces_A": [op.plain(x) for x in op.interfaces],
        "interfaces": rows, "flux": flux, "friction_per_ps": setup.friction_per_ps,
        "ensemble": setup.ensemble, "timestep_fs": setup.timestep_fs,
        "max_path_steps": setup.max_path_steps, "mixing": setup.mixing, "seed": setup.seed,
        "warnings": warnings,
    }


def _num(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _write(outdir: Path, result: dict, rows: list[dict], example: _Path | None,
           setup: _Setup) -> dict:
    buf = io.StringIO()
    w = csv.writer(buf)
    cols = ("interface", "lambda_A", "next_A", "crossing_probability",
            "crossing_probability_err", "n_trials", "n_accepted", "acceptance",
            "mean_path_frames")
    w.writerow(cols)
    for r in rows:
        w.writerow([r[c] for c in cols])
    files = {"result_json": str(outdir / "tis.json"),
             "interfaces_csv": str(atomic_write_text(outdir / "interfaces.csv", buf.getvalue()))}
    if example is not None:
        frames = []
        for k in range(len(example.lam)):
            at = setup.frame(example.pos[k], example.vel[k])
            at.info.update(frame=k, cv_A=setup.op.plain(example.lam[k]))
            frames.append(at)
        files["reactive_path"] = str(atomic_write_atoms(outdir / "reactive_path.extxyz",
                                                        frames))
    result["files"] = files
    atomic_write_json(outdir / "tis.json", result)
    return result
