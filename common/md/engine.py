"""The batched MD engine: one loop over time, all systems of a batch advanced together.

Per step: integrator (VV or BAOAB; NPT adds a stochastic-cell-rescaling step in the middle of
BAOAB) -> neighbour-list check (rebuild only the systems that moved more than skin/2; under NPT
the lists follow the cell) -> potential + extra force terms -> blow-up guard -> stop conditions
-> reporters -> checkpoint. Everything stays in torch tensors on the chosen device.

Stress: always computed under NPT; in NVE/NVT only at steps a reporter reports (for the thermo
log's pressure column), and only when the potential has a stress and some system has a cell.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from common.errors import ConfigError, SimulationError
from common.md.barostat import (
    BAR_EV_PER_A3,
    BAROSTATS,
    MAX_EXPANSION_UNDER_TENSION,
    MAX_SHAPE_CHANGE,
    StochasticCellRescaling,
)
from common.md.guard import BlowUpGuard
from common.md.integrators import LangevinBAOAB, VelocityVerlet
from common.md.neighbors import NeighborList
from common.md.noise import NoiseStreams
from common.md.reporters import Reporter
from common.md.state import BatchState, cell_det, cell_inv
from common.units import PS, fs_to_ase, per_ps_to_ase

ENSEMBLES = ("nve", "nvt", "npt")
StopCondition = Callable[[BatchState, dict, int], torch.Tensor]


def _per_system(value, n: int, name: str, dtype, device) -> torch.Tensor:
    arr = np.broadcast_to(np.asarray(value, dtype=float), (n,)) if np.ndim(value) == 0 \
        else np.asarray(value, dtype=float)
    if arr.shape != (n,):
        raise ConfigError(f"{name} has {arr.size} values for {n} systems",
                          where=name, fix="give one value, or one per system")
    return torch.as_tensor(arr.copy(), dtype=dtype, device=device)


class MDEngine:
    """Batched molecular dynamics of independent systems.

    Parameters
    ----------
    potential : BatchedPotential
    state : BatchState (modified in place)
    ensemble : "nve" (velocity Verlet) or "nvt" (Langevin BAOAB)
    timestep_fs : time step, fs
    temperature_K : NVT target, one value or one per system, K
    friction_per_ps : Langevin friction, one value or one per system, 1/ps
    seeds : one integer per system (Langevin noise streams); default 0..n-1
    skin : neighbour-list skin, Å
    terms : extra force terms (same interface as a BatchedPotential), e.g. bias potentials;
        a term may define ``after_step(state, out, step)`` (metadynamics deposits hills there)
    stop : callable(state, out, step) -> bool tensor (n_systems,); a system that returns True
        is frozen from then on, and the run ends when all are frozen
    on_blowup : "raise" (stop everything with a SimulationError) or "stop_system" (freeze
        only the system that blew up, record it in ``failed``, go on with the others)
    pressure_bar : NPT target pressure, one value or one per system, bar (a negative value is
        a tension: fine for a dense liquid or solid; a system that cavitates under it, volume
        x4, stops the run with a ConfigError)
    barostat : "isotropic" (liquids, gases: the cell keeps its shape), "anisotropic" (solids:
        the full cell shape relaxes, rotations excluded) or "orthorhombic" (axis lengths only)
        -- stochastic cell rescaling, see :mod:`common.md.barostat`
    barostat_tau_ps : barostat relaxation time, ps
    compressibility_per_bar : the compressibility the barostat assumes, 1/bar (default 4.5e-5,
        water; solids ~1e-6, argon liquid ~2e-4, an ideal gas 1/P). With ``barostat_tau_ps`` it
        sets how fast the volume relaxes, not the distribution sampled: too small a value only
        slows the relaxation, too large a value makes the volume jitter
    """

    def __init__(self, potential, state: BatchState, *, ensemble: str = "nvt",
                 timestep_fs: float = 1.0, temperature_K=300.0, friction_per_ps=1.0,
                 seeds: Sequence[int] | None = None, skin: float = 0.5,
                 terms: Sequence = (), stop: StopCondition | None = None,
                 guard: BlowUpGuard | None = None, reporters: Sequence[Reporter] = (),
                 checkpoint_path: str | Path | None = None, checkpoint_every: int = 0,
                 noise_block_steps: int = 64, on_blowup: str = "raise",
                 pressure_bar=1.0, barostat: str = "isotropic", barostat_tau_ps: float = 1.0,
                 compressibility_per_bar: float = 4.5e-5, system_offset: int = 0):
        self.system_offset = int(system_offset)
        if ensemble not in ENSEMBLES:
            raise ConfigError(f"unknown ensemble {ensemble!r}", where="ensemble",
                              fix=f"use one of {', '.join(ENSEMBLES)}")
        if not timestep_fs > 0:
            raise ConfigError(f"timestep must be > 0 fs (got {timestep_fs})", where="timestep",
                              fix="use e.g. 1.0 fs for molecules with H, 2-5 fs for heavy atoms")
        n = state.n_systems
        self.potential, self.state, self.ensemble = potential, state, ensemble
        self.timestep_fs = float(timestep_fs)
        self.temperature_K = _per_system(temperature_K, n, "temperature_K", state.dtype,
                                         state.device)
        self.friction_per_ps = _per_system(friction_per_ps, n, "friction_per_ps", state.dtype,
                                           state.device)
        if ensemble in ("nvt", "npt"):
            if not bool((self.temperature_K > 0).all()):
                raise ConfigError(f"temperature must be > 0 K for {ensemble.upper()}",
                                  where="temperature_K",
                                  fix="give a positive temperature, e.g. 300")
            if not bool((self.friction_per_ps > 0).all()):
                raise ConfigError("Langevin friction must be > 0 /ps", where="friction_per_ps",
                                  fix="use e.g. 1.0 /ps (or --ensemble nve for no thermostat)")
        self.seeds = list(range(n)) if seeds is None else [int(s) for s in seeds]
        if len(self.seeds) != n:
            raise ConfigError(f"{len(self.seeds)} seeds for {n} systems", where="seeds",
                              fix="give one seed per system")
        self.terms = list(terms)
        if on_blowup not in ("raise", "stop_system"):
            raise ConfigError(f"unknown on_blowup {on_blowup!r}", where="on_blowup",
                              fix="use raise or stop_system")
        self.stop, self.guard, self.on_blowup = stop, guard or BlowUpGuard(), on_blowup
        self.failed: dict[int, str] = {}
        self.reporters = list(reporters)
        for r in self.reporters:  # a reporter truncates/ names files for this batch's systems
            if getattr(r, "n_systems", 0) is None:
                r.n_systems = n
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.checkpoint_every = int(checkpoint_every)
        self.npt = ensemble == "npt"
        self.barostat = self._make_barostat(pressure_bar, barostat, barostat_tau_ps,
                                            compressibility_per_bar, noise_block_steps) \
            if self.npt else None
        cutoff = max([potential.cutoff] + [getattr(t, "cutoff", 0.0) for t in self.terms])
        self.neighbors = NeighborList(cutoff, skin=skin, follow_cell=self.npt)
        dt = fs_to_ase(self.timestep_fs)
        if ensemble == "nve":
            self.integrator = VelocityVerlet(dt)
        else:
            noise = NoiseStreams(self.seeds, state.atoms_per_system().tolist(),
                                 block_steps=noise_block_steps, device=state.device,
                                 dtype=state.dtype)
            self.integrator = LangevinBAOAB(
                dt, self.temperature_K, self.friction_per_ps * per_ps_to_ase(1.0), noise,
                middle=self._barostat_step if self.npt else None)
        periodic = state.pbc.any(-1) & (torch.linalg.det(state.cells).abs() > 0)
        self._stress_possible = bool(getattr(potential, "has_stress", False)) \
            and bool(periodic.any())
        self._want_stress = self.npt or self._stress_possible
        self._initial_positions = state.positions.detach().cpu().clone()
        self._initial_cells = state.cells.detach().cpu().clone()
        self.step = 0
        self._last_reported: int | None = None
        self.active = torch.ones(n, dtype=torch.bool, device=state.device)
        self.stopped_at = [None] * n
        self.out: dict[str, torch.Tensor] = {}
        with torch.no_grad():
            self.forces = self._compute(state)
        self._check_guard(at_start=True)

    # -- NPT -----------------------------------------------------------------------------
    def _make_barostat(self, pressure_bar, mode: str, tau_ps: float, compressibility: float,
                       block_steps: int) -> StochasticCellRescaling:
        st = self.state
        if mode not in BAROSTATS:
            raise ConfigError(f"unknown barostat {mode!r}", where="barostat",
                              fix=f"use one of {', '.join(BAROSTATS)}")
        if not tau_ps > 0:
            raise ConfigError(f"barostat time constant must be > 0 ps (got {tau_ps})",
                              where="barostat_tau_ps", fix="use e.g. 1.0 ps (0.1-10 ps)")
        if not compressibility > 0:
            raise ConfigError(f"compressibility must be > 0 /bar (got {compressibility})",
                              where="compressibility_per_bar",
                              fix="use e.g. 4.5e-5 (water), 1e-6 (a stiff solid)")
        self.pressure_bar = _per_system(pressure_bar, st.n_systems, "pressure_bar", st.dtype,
                                        st.device)
        if not bool(torch.isfinite(self.pressure_bar).all()):
            raise ConfigError("pressure must be a finite number of bar", where="pressure_bar",
                              fix="give e.g. 1.0 (bar)")
        _check_npt_input(self.potential, st)
        self.barostat_mode, self.barostat_tau_ps = mode, float(tau_ps)
        self.compressibility_per_bar = float(compressibility)
        self._initial_volumes = torch.linalg.det(st.cells).abs()
        return StochasticCellRescaling(
            mode, self.pressure_bar * BAR_EV_PER_A3, self.temperature_K,
            compressibility / BAR_EV_PER_A3, tau_ps * PS, fs_to_ase(self.timestep_fs),
            self.seeds, block_steps=block_steps)

    def _barostat_step(self, state: BatchState) -> None:
        self.barostat.step(state, self.out["stress"], self.active)

    def _check_cells(self) -> None:
        """Stop with a ConfigError when a cell has cavitated or lost its shape.

        A system under tension has cavitated when its volume grew 4-fold; a flexible cell drifts
        out of shape when the system has no shear stiffness (a liquid or a gas).
        """
        st = self.state
        if bool((self.pressure_bar < 0).any()):
            grown = cell_det(st.cells).abs() / self._initial_volumes
            bad = self.active & (self.pressure_bar < 0) & (grown > MAX_EXPANSION_UNDER_TENSION)
            if bool(bad.any()):
                s = int(torch.nonzero(bad)[0])
                raise ConfigError(
                    f"the barostat cannot hold {float(self.pressure_bar[s]):g} bar: the cell "
                    f"grew {float(grown[s]):.1f}-fold (the system cavitated or evaporated under "
                    "tension)", where=f"system {s}, step {self.step}",
                    fix="use a pressure >= 0 bar, or a smaller tension on a dense liquid or solid")
        if self.barostat_mode == "isotropic" or self.step % 10:
            return
        sv = torch.linalg.svdvals(cell_inv(self._initial_cells.to(st.device, st.dtype))
                                  @ st.cells)
        ratio = sv[:, 0] / sv[:, -1]
        bad = self.active & ~(ratio <= MAX_SHAPE_CHANGE)
        if bool(bad.any()):
            s = int(torch.nonzero(bad)[0])
            raise ConfigError(
                f"the cell lost its shape under the {self.barostat_mode} barostat (stretched "
                f"{float(ratio[s]):.2g}-fold in one direction against another): the system "
                "resists no shear, as a liquid or gas", where=f"system {s}, step {self.step}",
                fix="use barostat='isotropic' for liquids and gases (anisotropic is for solids)")

    # -- forces --------------------------------------------------------------------------
    def _compute(self, state: BatchState) -> torch.Tensor:
        self.neighbors.update(state)
        want = self._want_stress
        out = dict(self.potential(state, self.neighbors, compute_stress=want))
        for term in self.terms:
            t = term(state, self.neighbors)
            out["energy"] = out["energy"] + t["energy"]
            out["forces"] = out["forces"] + t["forces"]
            if want and "stress" in t and "stress" in out:
                out["stress"] = out["stress"] + t["stress"]
        self.out = out
        return out["forces"]

    def _reports_at(self, step: int) -> bool:
        return any(step % r.every == 0 for r in self.reporters)

    def _mobile(self) -> torch.Tensor:
        m = (~self.state.fixed) & self.active[self.state.system_idx]
        return m.to(self.state.dtype).unsqueeze(-1)

    # -- the loop ------------------------------------------------------------------------
    def run(self, n_steps: int, progress: bool = False, description: str = "MD") -> dict:
        """Advance ``n_steps`` steps (fewer if every system stops). Returns timing info."""
        if n_steps < 0:
            raise ConfigError(f"steps must be >= 0 (got {n_steps})", where="steps",
                              fix="give a non-negative number of steps")
        state = self.state
        mobile = self._mobile()
        if self.step == 0:
            self._report()
        bar = _progress(progress, n_steps, description)
        t0 = time.perf_counter()
        done_steps, replica_steps = 0, 0
        with torch.no_grad():
            for _ in range(n_steps):
                n_active = self._n_active()
                if n_active == 0:
                    break
                self._want_stress = self.npt or (self._stress_possible
                                                 and self._reports_at(self.step + 1))
                self.forces = self.integrator.step(state, self.forces, mobile, self._compute)
                self.step += 1
                done_steps += 1
                replica_steps += n_active
                if self.npt:
                    self._check_cells()
                if self._check_guard():
                    mobile = self._mobile()
                for term in self.terms:
                    if hasattr(term, "after_step"):
                        term.after_step(state, self.out, self.step)
                if self.stop is not None and self._apply_stop():
                    mobile = self._mobile()
                self._report()
                if self.checkpoint_every and self.step % self.checkpoint_every == 0:
                    self.save_checkpoint()
                if bar is not None:
                    bar.advance()
        wall = time.perf_counter() - t0
        if bar is not None:
            bar.close()
        return {"steps": done_steps, "replica_steps": replica_steps, "wall_s": wall,
                "replica_steps_per_s": replica_steps / wall if wall > 0 else float("nan"),
                "neighbor_rebuilds": self.neighbors.n_builds}

    def _n_active(self) -> int:
        """Systems still running (recounted only when ``active`` changed: a sync per step less)."""
        key = (self.active, self.active._version)
        cached = getattr(self, "_active_key", None)
        if cached is None or cached[0] is not key[0] or cached[1] != key[1]:
            self._active_count = int(self.active.sum())
            self._active_key = key
        return self._active_count

    def _apply_stop(self) -> bool:
        hit = self.stop(self.state, self.out, self.step).to(torch.bool) & self.active
        if not bool(hit.any()):
            return False
        for s in torch.nonzero(hit).flatten().tolist():
            self.stopped_at[s] = self.step
        self.active &= ~hit
        return True

    def _report(self) -> None:
        if self._last_reported == self.step:
            return
        self._last_reported = self.step
        for r in self.reporters:
            if self.step % r.every == 0:
                r.report(self.step, self.step * self.timestep_fs, self.state, self.out)

    def _check_guard(self, at_start: bool = False) -> bool:
        """Raise on a blow-up, or (on_blowup="stop_system") freeze the systems that blew up.

        Return True if systems were frozen.
        """
        frozen = False
        while True:
            bad = self.guard.check(self.state, self.out["forces"], self.out["energy"],
                                   self.active)
            if bad is None:
                return frozen
            s, what = bad
            t_ps = self.step * self.timestep_fs / 1000
            where = f"system {s + self.system_offset}, step {self.step} (t = {t_ps:.4f} ps)"
            kept = None if at_start else self._dump_blowup(s)
            if self.on_blowup == "raise" or at_start:
                raise SimulationError(
                    (f"simulation blew up at the start: {what}" if at_start else
                     f"simulation blew up: {what}"
                     + (f"; trajectory up to here kept, last frame in {kept}" if kept else "")),
                    where=where,
                    fix="reduce the timestep, check the starting structure (overlaps), or check "
                        "the model on this configuration (it may be outside the training data)")
            self.failed[s] = f"{where}: {what}"
            self.stopped_at[s] = self.step
            self.active[s] = False
            sel = self.state.system_idx == s
            self.state.velocities[sel] = 0.0  # frozen: no NaN can creep into its positions
            frozen = True

    def _dump_blowup(self, s: int) -> Path | None:
        outdir = None
        for r in self.reporters:
            if getattr(r, "outdir", None) is not None:
                outdir = Path(r.outdir)
                break
            if isinstance(getattr(r, "path", None), str | Path):
                outdir = Path(r.path).parent
                break
        if outdir is None:
            return None
        import ase.io

        path = outdir / f"blowup_system_{s + self.system_offset:04d}_step_{self.step}.extxyz"
        at = self.state.select([s]).to_atoms()[0]
        ase.io.write(path, at, format="extxyz")
        return path

    # -- checkpoints ---------------------------------------------------------------------
    def fingerprint(self) -> str:
        """Return a hash that identifies the run: structures, settings and potential.

        A checkpoint only restores into an engine with the same fingerprint.
        """
        h = hashlib.sha256()
        st = self.state
        for t in (st.numbers, st.masses, st.fixed, self._initial_cells, st.pbc, st.system_idx,
                  self.temperature_K, self.friction_per_ps, self._initial_positions):
            h.update(t.detach().cpu().numpy().tobytes())
        params = getattr(self.potential, "params", lambda: {})()
        h.update(repr((self.ensemble, self.timestep_fs, self.seeds, type(self.potential).__name__,
                       sorted(params.items()), self.neighbors.skin)).encode())
        if self.npt:
            h.update(self.pressure_bar.detach().cpu().numpy().tobytes())
            h.update(repr((self.barostat_mode, self.barostat_tau_ps,
                           self.compressibility_per_bar)).encode())
        return h.hexdigest()[:24]

    def save_checkpoint(self, path: str | Path | None = None) -> Path:
        """Write the run's state to ``path`` (default ``checkpoint_path``) atomically; return it."""
        path = Path(path or self.checkpoint_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        st = self.state
        data = {
            "format": "mlp-cases-md-checkpoint/1", "fingerprint": self.fingerprint(),
            "step": self.step, "positions": st.positions.cpu(), "velocities": st.velocities.cpu(),
            "cells": st.cells.cpu(), "forces": self.forces.cpu(),
            "out": {k: v.detach().cpu() for k, v in self.out.items()},
            "active": self.active.cpu(), "stopped_at": self.stopped_at, "failed": self.failed,
            "neighbors": self.neighbors.state_dict(),
            "noise": self.integrator.noise.state_dict() if self.ensemble != "nve" else None,
            "barostat": self.barostat.state_dict() if self.npt else None,
            "terms": [t.state_dict() if hasattr(t, "state_dict") else None for t in self.terms],
        }
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save(data, tmp)
        tmp.replace(path)
        return path

    def load_checkpoint(self, path: str | Path) -> None:
        """Continue from a checkpoint of this same run (bit-exact on CPU).

        Reporters drop what they wrote after the checkpoint's step.
        """
        path = Path(path)
        fix = "give the checkpoint written by this run (same structures, potential and settings)"
        if not path.exists():
            raise ConfigError("checkpoint not found", where=str(path), fix=fix)
        try:
            data = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:
            raise ConfigError(f"not a readable checkpoint ({type(exc).__name__})",
                              where=str(path), fix=fix) from exc
        if not isinstance(data, dict) or data.get("format") != "mlp-cases-md-checkpoint/1":
            raise ConfigError("not an mlp-cases MD checkpoint", where=str(path), fix=fix)
        if data["fingerprint"] != self.fingerprint():
            raise ConfigError("checkpoint is from another run (structures, potential or "
                              "settings differ)", where=str(path), fix=fix)
        dev, dt = self.state.device, self.state.dtype
        self.step = int(data["step"])
        self.state.positions.copy_(data["positions"].to(dev, dt))
        self.state.velocities.copy_(data["velocities"].to(dev, dt))
        if "cells" in data:
            self.state.cells.copy_(data["cells"].to(dev, dt))
        self.forces = data["forces"].to(dev, dt)
        self.out = {k: v.to(dev) for k, v in data["out"].items()}
        self.active = data["active"].to(dev)
        self.stopped_at = list(data["stopped_at"])
        self.failed = {int(k): v for k, v in data.get("failed", {}).items()}
        self.neighbors.load_state_dict(data["neighbors"], self.state)
        if data["noise"] is not None:
            self.integrator.noise.load_state_dict(data["noise"])
        if data.get("barostat") is not None:
            self.barostat.load_state_dict(data["barostat"])
        for t, sd in zip(self.terms, data["terms"], strict=False):
            if sd is not None:
                t.load_state_dict(sd)
        for r in self.reporters:
            r.truncate_after(self.step)
        self._last_reported = self.step


def _check_npt_input(potential, state: BatchState) -> None:
    """NPT needs a stress from the potential, a cell periodic in 3D and no fixed atoms."""
    if not getattr(potential, "has_stress", False):
        raise ConfigError(f"the potential ({type(potential).__name__}) gives no stress, which "
                          "constant pressure needs", where="ensemble=npt",
                          fix="use a model with stress (the adapters' strain derivative, "
                              "common.potential.stress) or run NVT")
    vol = torch.linalg.det(state.cells).abs()
    for s in range(state.n_systems):
        if not bool(state.pbc[s].all()) or not float(vol[s]) > 0:
            raise ConfigError("NPT needs a cell periodic along x, y and z"
                              + ("" if bool(state.pbc[s].any()) else " (this one has no cell)"),
                              where=f"system {s}",
                              fix="give the structure a 3D-periodic cell, or run it in NVT")
    if bool(state.fixed.any()):
        s = int(state.system_idx[torch.nonzero(state.fixed)[0]])
        raise ConfigError("NPT rescales every atom with the cell, fixed atoms included",
                          where=f"system {s}", fix="remove the FixAtoms constraint, or run NVT")


class _Bar:
    def __init__(self, total: int, description: str):
        from rich.console import Console
        from rich.progress import Progress

        # stderr: stdout is for results and --json
        self.p = Progress(transient=False, console=Console(stderr=True))
        self.p.start()
        self.task = self.p.add_task(description, total=total)
        self.every = max(1, total // 200)
        self.n = 0

    def advance(self):
        self.n += 1
        if self.n % self.every == 0:
            self.p.update(self.task, completed=self.n)

    def close(self):
        self.p.update(self.task, completed=self.n)
        self.p.stop()


def _progress(enabled: bool, total: int, description: str) -> _Bar | None:
    return _Bar(total, description) if enabled and total > 0 else None
