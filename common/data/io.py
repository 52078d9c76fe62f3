"""Reading structures from any ASE-readable file, and the structure hash used as a cache key."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
from ase import Atoms

from common.errors import DataError

_FIX_READ = "check that the file is complete and in a format ASE reads (extxyz, ASE db, traj, ...)"


def read_structures(path: str | os.PathLike, index: str | int = ":", format: str | None = None
                    ) -> list[Atoms]:
    """Read every frame of ``path`` (any ``ase.io`` format, an ASE db, or a deepmd/npy folder).

    Raises :class:`DataError` naming the file (and the frame when ASE says which) if the file
    is missing, empty, truncated or unreadable.
    """
    import ase.io

    p = Path(path)
    if not p.exists():
        raise DataError("file not found", where=str(p), fix="give the path of an existing file")
    if p.is_dir():
        return _read_deepmd_dir(p)
    if p.stat().st_size == 0:
        raise DataError("file is empty", where=str(p), fix=_FIX_READ)
    try:
        frames = ase.io.read(str(p), index=index, format=format)
    except Exception as exc:  # ASE raises many types for a bad file
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        where = str(p)
        n_ok = _count_readable_frames(p, format)
        if n_ok is not None:
            where = f"{p} frame {n_ok}"
        raise DataError(f"cannot read structures ({type(exc).__name__}: {msg})", where=where,
                        fix=_FIX_READ) from exc
    if isinstance(frames, Atoms):
        frames = [frames]
    frames = list(frames)
    if not frames:
        raise DataError("file holds no structures", where=str(p), fix=_FIX_READ)
    return frames


def _count_readable_frames(p: Path, format: str | None) -> int | None:
    """How many frames read cleanly before the failure (to name the bad frame), if knowable."""
    import ase.io

    n = 0
    try:
        for _ in ase.io.iread(str(p), index=":", format=format):
            n += 1
    except Exception:
        return n
    return None


def _read_deepmd_dir(p: Path) -> list[Atoms]:
    """Read a deepmd/npy system folder (type.raw + set.*) with dpdata's own reader."""
    if not (p / "type.raw").exists():
        raise DataError("folder is not a deepmd/npy system (no type.raw)", where=str(p),
                        fix="give a file, or a deepmd system folder with type.raw and set.*/")
    import dpdata

    try:
        system = dpdata.LabeledSystem(str(p), fmt="deepmd/npy")
    except Exception as exc:
        raise DataError(f"cannot read deepmd/npy system ({exc})", where=str(p),
                        fix="check the folder's type.raw, type_map.raw and set.*/ files") from exc
    return list(system.to("ase/structure"))


def structure_hash(atoms: Atoms, extra: str = "", decimals: int = 6) -> str:
    """Return a stable hex digest of a structure (and ``extra``).

    It covers numbers, positions (rounded to ``decimals`` Å), cell, pbc, charge and multiplicity
    (``atoms.info``), and ``extra`` (e.g. the labeller's spec).
    """
    h = hashlib.sha256()
    h.update(np.asarray(atoms.numbers, dtype=np.int64).tobytes())
    pos = np.round(np.asarray(atoms.positions, dtype=np.float64), decimals) + 0.0  # no -0.0
    h.update(pos.tobytes())
    cell = np.round(np.asarray(atoms.cell.array, dtype=np.float64), decimals) + 0.0
    h.update(cell.tobytes())
    h.update(np.asarray(atoms.pbc, dtype=np.bool_).tobytes())
    h.update(f"q={atoms.info.get('charge', 0)};m={atoms.info.get('multiplicity', 1)}".encode())
    h.update(extra.encode())
    return h.hexdigest()[:32]
