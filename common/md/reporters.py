"""Writing what an MD run produces: extxyz or HDF5 trajectories and a thermo log.

Every reporter writes through to disk at each report (nothing waits in memory), and can drop
what it wrote after a given step, so a restart from a checkpoint continues the files without
duplicated frames.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from common.md.barostat import BAR_EV_PER_A3, pressure
from common.md.state import BatchState


class Reporter:
    """Base class of the MD engine's reporters.

    ``report`` is called every ``every`` steps; ``system_offset`` is added to the system index in
    file names and columns (a run split into batches keeps global replica numbers).
    """

    every: int = 1
    system_offset: int = 0

    def report(self, step: int, time_fs: float, state: BatchState,
               out: dict[str, torch.Tensor]) -> None:
        """Record the batch at ``step`` (``out``: the potential's energy, forces, ...)."""
        ...

    def truncate_after(self, step: int) -> None:
        """Drop what was written after ``step`` (a restart from a checkpoint at that step)."""
        ...

    def close(self) -> None:
        """Release what the reporter holds open (nothing by default)."""
        ...


class ExtxyzTrajectory(Reporter):
    """Trajectory in one extxyz file per system (``traj_0000.extxyz``, ...).

    Each frame holds positions, velocities, forces and energy, with ``step``, ``time_fs`` and
    ``temperature_K`` in its info.
    """

    def __init__(self, outdir: str | Path, every: int = 10, prefix: str = "traj",
                 system_offset: int = 0, n_systems: int | None = None):
        self.outdir = Path(outdir)
        self.outdir.mkdir(parents=True, exist_ok=True)
        self.every, self.prefix, self.system_offset = int(every), prefix, int(system_offset)
        self.n_systems = n_systems

    def path(self, s: int) -> Path:
        """File of local system ``s``."""
        return self.outdir / f"{self.prefix}_{s + self.system_offset:04d}.extxyz"

    def report(self, step, time_fs, state, out):
        """Append one frame per system to that system's file."""
        import ase.io

        temps = state.temperature_K().tolist()
        for s, at in enumerate(state.to_atoms(out["energy"], out["forces"])):
            at.info.update(step=int(step), time_fs=float(time_fs), temperature_K=temps[s])
            with open(self.path(s), "a") as fh:
                ase.io.write(fh, at, format="extxyz")

    def truncate_after(self, step: int) -> None:
        """Drop the frames after ``step`` from this batch's files."""
        import ase.io

        for p in [self.path(s) for s in range(self.n_systems or 0)]:
            if not p.exists():
                continue
            frames = [f for f in ase.io.read(p, ":") if f.info.get("step", -1) <= step]
            tmp = p.with_suffix(".tmp")
            ase.io.write(tmp, frames, format="extxyz")
            tmp.replace(p)


_FRAME_DATA = ("positions", "velocities", "forces", "energy", "step", "time_fs",
               "temperature_K", "cells")


class HDF5Trajectory(Reporter):
    """Trajectory in one HDF5 file, a group per system.

    Each group has resizable datasets ``positions`` (T, n, 3, Å), ``velocities``, ``forces``,
    ``energy`` (T, eV), ``step``, ``time_fs``, ``temperature_K`` and ``cells`` (T, 3, 3, Å: the
    cell changes under NPT); ``numbers``, ``masses``, ``cell`` (the first frame's) and ``pbc``
    are stored once.
    """

    def __init__(self, path: str | Path, every: int = 10, system_offset: int = 0,
                 n_systems: int | None = None):
        self.path, self.every, self.system_offset = Path(path), int(every), int(system_offset)
        self.n_systems = n_systems
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.outdir = self.path.parent

    def report(self, step, time_fs, state, out):
        """Append one frame per system to that system's group."""
        import h5py

        off = state.offsets().tolist()
        pos = state.positions.detach().cpu().numpy()
        vel = state.velocities.detach().cpu().numpy()
        frc = out["forces"].detach().cpu().numpy()
        en = out["energy"].detach().cpu().numpy()
        temps = state.temperature_K().cpu().numpy()
        cells = state.cells.detach().cpu().numpy()
        with h5py.File(self.path, "a") as h5:
            for s in range(state.n_systems):
                a, b = off[s], off[s + 1]
                g = h5.require_group(f"system_{s + self.system_offset:04d}")
                if "numbers" not in g:
                    g["numbers"] = state.numbers[a:b].cpu().numpy()
                    g["masses"] = state.masses[a:b].cpu().numpy()
                    g["cell"] = state.cells[s].cpu().numpy()
                    g["pbc"] = state.pbc[s].cpu().numpy()
                for name, val in (("positions", pos[a:b]), ("velocities", vel[a:b]),
                                  ("forces", frc[a:b]), ("energy", en[s]), ("step", step),
                                  ("time_fs", time_fs), ("temperature_K", temps[s]),
                                  ("cells", cells[s])):
                    val = np.asarray(val)
                    if name not in g:
                        g.create_dataset(name, shape=(0, *val.shape), maxshape=(None, *val.shape),
                                         dtype=val.dtype, chunks=True)
                    d = g[name]
                    d.resize(d.shape[0] + 1, axis=0)
                    d[-1] = val

    def truncate_after(self, step: int) -> None:
        """Cut this batch's groups back to the frames up to ``step``."""
        import h5py

        if not self.path.exists():
            return
        with h5py.File(self.path, "a") as h5:
            for name, g in h5.items():
                if "step" not in g or not self._mine(name):
                    continue
                keep = int((g["step"][:] <= step).sum())
                for name in _FRAME_DATA:
                    if name in g:
                        g[name].resize(keep, axis=0)

    def _mine(self, group: str) -> bool:
        k = int(group.split("_")[-1]) - self.system_offset
        return 0 <= k < (self.n_systems if self.n_systems is not None else 10**9)


class ThermoLog(Reporter):
    """Thermo log: whitespace-separated text, one line per system per report.

    Columns: ``step time_ps system T_K Epot_eV Ekin_eV Etot_eV P_bar V_A3``. Also kept in memory
    for summaries. ``P_bar`` is the instantaneous pressure (virial + kinetic, bar), NaN when the
    potential gave no stress or the system is not periodic in 3D; ``V_A3`` the cell volume (Å^3),
    NaN without a cell. Read columns by the header's names.
    """

    header = "# step time_ps system T_K Epot_eV Ekin_eV Etot_eV P_bar V_A3\n"
    columns = tuple(header[2:].split())

    def __init__(self, path: str | Path, every: int = 10, system_offset: int = 0,
                 n_systems: int | None = None):
        self.path, self.every, self.system_offset = Path(path), int(every), int(system_offset)
        self.n_systems = n_systems
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.outdir = self.path.parent
        self.rows: list[tuple] = []
        if not self.path.exists():
            self.path.write_text(self.header)

    def report(self, step, time_fs, state, out):
        """Append one line per system to the file and keep the rows in memory."""
        temps = state.temperature_K().tolist()
        epot = out["energy"].detach().tolist()
        ekin = state.kinetic_energy().tolist()
        stress = out.get("stress")
        p_bar = (pressure(state, None if stress is None else stress.detach())
                 / BAR_EV_PER_A3).tolist()
        vol = state.volumes().tolist()
        lines = []
        for s in range(state.n_systems):
            row = (int(step), time_fs / 1000.0, s + self.system_offset, temps[s], epot[s],
                   ekin[s], epot[s] + ekin[s], p_bar[s], vol[s])
            self.rows.append(row)
            lines.append("{:d} {:.6f} {:d} {:.4f} {:.10f} {:.10f} {:.10f} {:.6f} {:.6f}\n"
                         .format(*row))
        with open(self.path, "a") as fh:
            fh.writelines(lines)

    def truncate_after(self, step: int) -> None:
        """Drop this batch's lines and rows after ``step`` (other batches' lines stay)."""
        lines = self.path.read_text().splitlines(keepends=True) if self.path.exists() else []
        lo = self.system_offset
        hi = lo + (self.n_systems if self.n_systems is not None else 10**9)

        def keep(ln: str) -> bool:
            f = ln.split()
            return ln.startswith("#") or int(f[0]) <= step or not lo <= int(f[2]) < hi

        kept = [ln for ln in lines if keep(ln)]
        self.path.write_text("".join(kept) or self.header)
        self.rows = [r for r in self.rows if r[0] <= step]

    def array(self) -> np.ndarray:
        """(n_rows, 9) array of what this run reported, columns as in ``columns``."""
        return np.array(self.rows, dtype=float).reshape(-1, len(self.columns))


class DeviationFlagger(Reporter):
    """Reporter that writes frames with a large ensemble force deviation, for active learning.

    The frames whose ensemble force deviation (``max_force_deviation``, eV/Å, from
    :class:`~common.potential.ensemble.Ensemble`) exceeds ``threshold_eV_A`` go to one extxyz
    file, for relabelling. Checked every ``every`` steps.
    """

    def __init__(self, path: str | Path, threshold_eV_A: float, every: int = 10,
                 system_offset: int = 0, n_systems: int | None = None):
        self.path, self.every = Path(path), int(every)
        self.threshold = float(threshold_eV_A)
        self.system_offset, self.n_systems = int(system_offset), n_systems
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.outdir = self.path.parent
        self.n_flagged = 0

    def report(self, step, time_fs, state, out):
        """Append the frames of the systems above the threshold (none without a deviation)."""
        dev = out.get("max_force_deviation")
        if dev is None:
            return
        hit = torch.nonzero(dev > self.threshold).flatten().tolist()
        if not hit:
            return
        import ase.io

        frames = state.select(hit).to_atoms()
        for s, at in zip(hit, frames, strict=True):
            at.info.update(step=int(step), time_fs=float(time_fs),
                           system=s + self.system_offset,
                           max_force_deviation_eV_A=float(dev[s]))
        with open(self.path, "a") as fh:
            ase.io.write(fh, frames, format="extxyz")
        self.n_flagged += len(hit)

    def truncate_after(self, step: int) -> None:
        """Drop this batch's flagged frames after ``step`` (other batches' frames stay)."""
        import ase.io

        if not self.path.exists():
            return
        lo = self.system_offset
        hi = lo + (self.n_systems if self.n_systems is not None else 10**9)
        frames = [f for f in ase.io.read(self.path, ":")
                  if f.info.get("step", -1) <= step or not lo <= f.info.get("system", -1) < hi]
        tmp = self.path.with_suffix(".tmp")
        ase.io.write(tmp, frames, format="extxyz")
        tmp.replace(self.path)
