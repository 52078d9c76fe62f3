"""Reading MD trajectories with their times, from any code.

:func:`load_trajectory` reads every frame of a trajectory: any ASE format (extxyz, ASE
``.traj``, LAMMPS dump, ...) or the HDF5 file that :class:`common.md.reporters.HDF5Trajectory`
writes (one group per system). :func:`frame_times_fs` gives each frame's time in fs (from the
frames' ``info["time_fs"]``, the file's time step or the caller's), and
:func:`persistence_frames` turns a minimum lifetime in fs into a number of frames, which is
what the persistence filters of :mod:`common.events` count in.

Frames keep their cell and ``pbc``, so analyses that need the box (minimum image, unwrapping,
transport) read it from the frames.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms

from common.errors import ConfigError, DataError

__all__ = [
    "HDF5_SUFFIXES",
    "frame_times_fs",
    "load_trajectory",
    "persistence_frames",
    "trajectory_systems",
]

#: file suffixes read as :class:`common.md.reporters.HDF5Trajectory` files
HDF5_SUFFIXES = (".h5", ".hdf5")
_GROUP = "system_"


def _is_hdf5(path: Path) -> bool:
    return path.suffix.lower() in HDF5_SUFFIXES


def trajectory_systems(path: str | os.PathLike) -> list[int]:
    """Return the indices of the systems (replicas) a trajectory file holds.

    An HDF5 file from :class:`common.md.reporters.HDF5Trajectory` holds one group per system
    (``system_0003`` is system 3); every other file holds one trajectory, system ``0``.
    """
    p = Path(path)
    if not _is_hdf5(p):
        return [0]
    with _open_hdf5(p) as h5:
        return sorted(int(name.removeprefix(_GROUP)) for name in h5
                      if name.startswith(_GROUP))


def load_trajectory(path: str | os.PathLike, system: int | None = None
                    ) -> tuple[list[Atoms], float | None]:
    """Frames of a trajectory and, when the file says it, the time between frames (fs).

    Parameters
    ----------
    path
        Any ASE-readable file (extxyz frames carry ``info["time_fs"]`` and ``info["step"]``
        when :mod:`common.md` wrote them), or an HDF5 trajectory (``.h5`` / ``.hdf5``) of
        :class:`common.md.reporters.HDF5Trajectory`.
    system
        Which system of an HDF5 file holding several (see :func:`trajectory_systems`); may be
        left out when it holds one. Other files hold one trajectory: give ``None`` or ``0``.

    Returns
    -------
    frames, file_dt_fs
        The frames (with cell and pbc; HDF5 frames also carry ``info["time_fs"]``,
        ``info["step"]``, ``info["temperature_K"]``, velocities and energy/forces on a
        SinglePointCalculator) and, for an ASE ``.traj`` written by ASE's MD, ``timestep x
        interval`` in fs (``None`` when the file does not say; give it to
        :func:`frame_times_fs`).

    Raises
    ------
    DataError
        A missing, empty or unreadable file.
    ConfigError
        ``system`` not in the file, or not given for an HDF5 file holding several.
    """
    p = Path(path)
    if _is_hdf5(p):
        return _load_hdf5(p, system), None
    if system not in (None, 0):
        raise ConfigError(f"system {system} asked for, but the file holds one trajectory",
                          where=str(p), fix="leave system out (or give 0)")
    from common.data.io import read_structures

    return read_structures(p), _ase_traj_dt_fs(p)


def _ase_traj_dt_fs(path: Path) -> float | None:
    """Return ``timestep x interval`` (fs) from an ASE MD ``.traj``'s description, else ``None``."""
    if path.suffix != ".traj":
        return None
    try:
        from ase import units
        from ase.io.trajectory import Trajectory

        with Trajectory(str(path)) as tr:
            desc = dict(tr.description or {})
        if "timestep" in desc:
            return float(desc["timestep"]) * float(desc.get("interval", 1)) / units.fs
    except Exception:  # a description we cannot read is the same as none
        return None
    return None


def _open_hdf5(path: Path):
    import h5py

    if not path.exists():
        raise DataError("file not found", where=str(path), fix="give the path of an existing file")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"cannot read HDF5 file ({exc})", where=str(path),
                        fix="give a complete HDF5 trajectory written by common.md") from exc


def _load_hdf5(path: Path, system: int | None) -> list[Atoms]:
    """Frames of one system of an :class:`~common.md.reporters.HDF5Trajectory` file."""
    systems = trajectory_systems(path)
    if not systems:
        raise DataError("HDF5 file holds no trajectory (no system_NNNN group)", where=str(path),
                        fix="give an HDF5 trajectory written by common.md")
    if system is None and len(systems) > 1:
        raise ConfigError(f"the file holds {len(systems)} systems; say which", where=str(path),
                          fix=f"give system= one of {systems}")
    k = systems[0] if system is None else int(system)
    if k not in systems:
        raise ConfigError(f"no system {k} in the file", where=str(path),
                          fix=f"give system= one of {systems}")
    with _open_hdf5(path) as h5:
        g = h5[f"{_GROUP}{k:04d}"]
        data = {name: g[name][()] for name in g}
    return _hdf5_frames(data)


def _hdf5_frames(g: dict[str, np.ndarray]) -> list[Atoms]:
    """Atoms per stored frame of one HDF5 system group (read into ``g``)."""
    from ase.calculators.singlepoint import SinglePointCalculator

    frames = []
    for t in range(len(g["positions"])):
        at = Atoms(numbers=g["numbers"], positions=g["positions"][t], cell=g["cell"],
                   pbc=g["pbc"], masses=g["masses"])
        if "velocities" in g:
            at.set_velocities(g["velocities"][t])
        at.info.update(step=int(g["step"][t]), time_fs=float(g["time_fs"][t]))
        if "temperature_K" in g:
            at.info["temperature_K"] = float(g["temperature_K"][t])
        if "energy" in g or "forces" in g:
            at.calc = SinglePointCalculator(
                at, energy=float(g["energy"][t]) if "energy" in g else None,
                forces=g["forces"][t] if "forces" in g else None)
        frames.append(at)
    return frames


def frame_times_fs(frames: Sequence[Atoms], dt_fs: float | None = None,
                   file_dt_fs: float | None = None, where: str = "trajectory") -> np.ndarray:
    """Time of each frame in fs.

    Order of precedence: ``dt_fs`` (given by the caller), the frames' ``info["time_fs"]`` or
    ``info["time"]`` (taken as fs, as written by common.md, CP2K and i-PI), ``file_dt_fs``
    (from :func:`load_trajectory`, e.g. an ASE MD ``.traj``).

    Raises
    ------
    ConfigError
        ``dt_fs <= 0``.
    DataError
        No time known, or file times that do not increase.
    """
    n = len(frames)
    if dt_fs is not None:
        if not (math.isfinite(dt_fs) and dt_fs > 0):
            raise ConfigError(f"time step must be > 0 fs, got {dt_fs}", where="dt_fs",
                              fix="give the time between saved frames in fs: dt_fs=10")
        return np.arange(n, dtype=float) * float(dt_fs)
    for key in ("time_fs", "time"):
        t = _info_times(frames, key, where)
        if t is not None:
            return t
    if file_dt_fs is not None and file_dt_fs > 0:
        return np.arange(n, dtype=float) * float(file_dt_fs)
    raise DataError("no time step known: frames carry no info['time_fs'] or info['time']",
                    where=where, fix="give the time between saved frames in fs: dt_fs=10")


def _info_times(frames: Sequence[Atoms], key: str, where: str) -> np.ndarray | None:
    """Return ``info[key]`` of every frame as increasing times, or ``None`` if a frame lacks it."""
    if not all(key in a.info for a in frames):
        return None
    try:
        t = np.array([float(a.info[key]) for a in frames])
    except (TypeError, ValueError):
        return None
    bad = np.flatnonzero(np.diff(t) <= 0)
    if len(bad):
        raise DataError(f"info[{key!r}] does not increase ({t[bad[0]]} then {t[bad[0] + 1]} fs)",
                        where=f"{where} frame {bad[0] + 1}",
                        fix="give one continuous trajectory, or `dt_fs` to ignore "
                            "the file's times")
    return t


def persistence_frames(times_fs: np.ndarray, min_fs: float,
                       min_frames: int | None = None) -> int:
    """Return the number of frames a change must last to count, from a minimum lifetime in fs.

    Parameters
    ----------
    times_fs
        Frame times (fs), e.g. from :func:`frame_times_fs`; the median spacing is used.
    min_fs
        Minimum lifetime in fs (``0`` = no filtering).
    min_frames
        A number of frames given directly; wins over ``min_fs``.

    Returns
    -------
    int
        ``ceil(min_fs / dt)``, at least 1 (1 keeps every change).

    Raises
    ------
    ConfigError
        ``min_frames`` not an integer >= 1, or ``min_fs`` negative or not finite.
    """
    if min_frames is not None:
        if int(min_frames) != min_frames or min_frames < 1:
            raise ConfigError(f"min_persistence_frames must be an integer >= 1, got "
                              f"{min_frames}", where="min_persistence_frames",
                              fix="give e.g. 5 (1 = no filtering)")
        return int(min_frames)
    fs = float(min_fs)
    if not (math.isfinite(fs) and fs >= 0):
        raise ConfigError(f"minimum persistence must be >= 0 fs, got {fs}",
                          where="min_persistence_fs", fix="give e.g. 50 (0 = no filtering)")
    if len(times_fs) < 2 or fs == 0:
        return 1
    dt = float(np.median(np.diff(times_fs)))
    return max(1, math.ceil(fs / dt - 1e-9))
