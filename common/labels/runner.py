"""Label many structures with a reference calculator, cached by structure hash, on Dask.

Every frame is checked first (:func:`check_supported`), so a bad element, charge or
multiplicity stops the run before anything is computed. Each unique structure becomes one sweep
task keyed by ``structure_hash(atoms, extra=spec.key())``; the :class:`LabelDB` is the sweep's
store, so finished labels are written the moment they arrive and a rerun (after a crash or
``kill -9``) labels only what is missing. The same structure twice in one input is labelled once.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms

from common.data.io import structure_hash
from common.errors import DataError, MlpCasesError
from common.labels.calculators import (
    LabellerSpec,
    check_supported,
    configure_for_frame,
    make_calculator,
    make_spec,
)
from common.labels.store import LabelDB

__all__ = ["LabelReport", "label_structures", "labelled_frames"]


@dataclass
class LabelReport:
    """What :func:`label_structures` did (counts are input frames, duplicates included).

    Attributes
    ----------
    n_total : int
        Frames given.
    n_unique : int
        Distinct structures among them.
    n_cached : int
        Frames whose label was already in the database.
    n_labelled : int
        Frames labelled in this run.
    n_failed : int
        Frames whose calculation failed (not stored; a rerun retries them).
    failures : dict[int, str]
        Frame index (first occurrence) -> one-line message.
    db : str
        The database path or URL.
    labeller : str
        The labeller's canonical spec (:meth:`LabellerSpec.key`).
    """

    n_total: int
    n_unique: int
    n_cached: int
    n_labelled: int
    n_failed: int
    failures: dict[int, str] = field(default_factory=dict)
    db: str = ""
    labeller: str = ""

    @property
    def ok(self) -> bool:
        """Whether no structure failed."""
        return self.n_failed == 0

    def to_dict(self) -> dict[str, Any]:
        """Return the report as a plain, JSON-ready dict."""
        return {
            "n_total": self.n_total,
            "n_unique": self.n_unique,
            "n_cached": self.n_cached,
            "n_labelled": self.n_labelled,
            "n_failed": self.n_failed,
            "failures": {str(k): v for k, v in self.failures.items()},
            "db": self.db,
            "labeller": self.labeller,
        }


def _where(source: str | None, index: int) -> str:
    return f"{source} frame {index}" if source else f"frame {index}"


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, bool | int | str):
        return v
    if isinstance(v, float) and math.isfinite(v):
        return v
    return None


def _payload(atoms: Atoms) -> dict[str, Any]:
    """Return the frame as plain picklable data (what a worker needs, nothing else)."""
    info = {k: _plain(v) for k, v in atoms.info.items() if isinstance(k, str)}
    return {
        "numbers": np.asarray(atoms.numbers, dtype=np.int64),
        "positions": np.asarray(atoms.positions, dtype=np.float64),
        "cell": np.asarray(atoms.cell.array, dtype=np.float64),
        "pbc": np.asarray(atoms.pbc, dtype=bool),
        "info": {k: v for k, v in info.items() if v is not None},
    }


# one calculator per worker process per labeller (building some is not free)
_CALCULATORS: dict[str, Any] = {}


def _calculator(spec: LabellerSpec) -> Any:
    key = spec.key()
    calc = _CALCULATORS.get(key)
    if calc is None:
        calc = make_calculator(spec)
        _CALCULATORS[key] = calc
    return calc


def _not_converged_fix(spec: LabellerSpec) -> str:
    p = spec.normalized().params
    if spec.normalized().name == "xtb":
        t = float(p.get("electronic_temperature_K", 300.0))
        parts = []
        if p.get("method") == "GFN2-xTB":
            parts.append("use --method GFN1-xTB (more robust for metals and slabs)")
        parts.append(f"raise --electronic-temperature-K (now {t:g}; 1000-5000 helps metals)")
        parts.append(f"raise max_iterations (now {p.get('max_iterations')})")
        return ", or ".join(parts) + "; then rerun (finished frames are kept)"
    return (
        "raise the SCF iteration limit, check the geometry, charge and multiplicity; "
        "then rerun (finished frames are kept)"
    )


def _label_one(frame: dict[str, Any], spec: LabellerSpec, index: int, where: str) -> dict[str, Any]:
    """Label one frame in a worker; returns plain data for :meth:`LabelDB.save`."""
    atoms = Atoms(
        numbers=frame["numbers"], positions=frame["positions"], cell=frame["cell"], pbc=frame["pbc"]
    )
    atoms.info.update(frame.get("info", {}))
    calc = _calculator(spec)
    try:
        if hasattr(calc, "reset"):
            calc.reset()
        configure_for_frame(calc, spec, atoms)
        atoms.calc = calc
        energy = float(atoms.get_potential_energy())
        forces = np.array(atoms.get_forces(), dtype=np.float64)
        stress = None
        if atoms.pbc.all() and "stress" in getattr(calc, "implemented_properties", ()):
            stress = np.array(atoms.get_stress(voigt=True), dtype=np.float64)
    except MlpCasesError as exc:
        _CALCULATORS.pop(spec.key(), None)
        raise MlpCasesError(exc.what, where=where, fix=exc.fix) from None
    except Exception as exc:
        _CALCULATORS.pop(spec.key(), None)
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "not converged" in msg.lower() or "convergence" in msg.lower():
            raise MlpCasesError(
                f"{spec.label()} {msg}", where=where, fix=_not_converged_fix(spec)
            ) from None
        raise MlpCasesError(
            f"{spec.label()} failed ({type(exc).__name__}: {msg})",
            where=where,
            fix="check the geometry (overlapping atoms?), charge and multiplicity; rerun to "
            "retry only the failed frames",
        ) from None
    if not np.isfinite(energy) or not np.all(np.isfinite(forces)):
        raise MlpCasesError(
            f"{spec.label()} returned non-finite energy or forces",
            where=where,
            fix="check the geometry; drop the frame if it is broken",
        )
    return {
        "energy": energy,
        "forces": forces,
        "stress": stress,
        "numbers": frame["numbers"],
        "positions": frame["positions"],
        "cell": frame["cell"],
        "pbc": frame["pbc"],
        "info": dict(frame.get("info", {})),
        "index": int(index),
        "labeller": spec.key(),
    }


def _as_spec(spec: LabellerSpec | str) -> LabellerSpec:
    if isinstance(spec, LabellerSpec):
        return make_spec(spec)
    return make_spec(str(spec))


def label_structures(
    frames: Iterable[Atoms],
    spec: LabellerSpec | str,
    db: LabelDB | str | os.PathLike,
    *,
    cluster: Any = None,
    n_workers: int | None = None,
    progress: bool = True,
    source: str | None = None,
) -> LabelReport:
    """Label ``frames`` with ``spec`` into ``db``, skipping structures already labelled there.

    Parameters
    ----------
    frames : iterable of Atoms
        Structures (Å); ``atoms.info`` may carry ``charge`` and ``multiplicity``.
    spec : LabellerSpec or str
        The labeller (``LabellerSpec("xtb", {"method": "GFN1-xTB"})``, or a name).
    db : LabelDB, path or URL
        The cache (SQLite file or ``postgresql://`` URL).
    cluster, n_workers, progress
        As in :func:`common.sweep.run_tasks` (one thread per worker).
    source : str, optional
        File the frames came from, used in error messages ("<source> frame <i>").

    Returns
    -------
    LabelReport

    Raises
    ------
    ConfigError
        Before any compute, if any frame cannot be labelled with ``spec``, or if the database
        cannot be written.
    """
    from common.sweep import run_tasks

    spec = _as_spec(spec)
    frames = list(frames)
    if not frames:
        raise DataError(
            "no structures to label",
            where=source or "input",
            fix="give a file with at least one structure",
        )
    for i, atoms in enumerate(frames):
        check_supported(atoms, spec, where=_where(source, i))
    store = db if isinstance(db, LabelDB) else LabelDB(db)
    store.check_writable()

    extra = spec.key()
    keys = [structure_hash(a, extra=extra) for a in frames]
    first: dict[str, int] = {}
    for i, k in enumerate(keys):
        first.setdefault(k, i)
    cached = store.done_keys() & set(first)
    tasks = {
        k: (
            _label_one,
            {"frame": _payload(frames[i]), "spec": spec, "index": i, "where": _where(source, i)},
        )
        for k, i in first.items()
    }
    sweep = run_tasks(
        tasks,
        store,
        cluster=cluster,
        n_workers=n_workers,
        threads_per_worker=1,
        progress=progress,
        description=f"labelling with {spec.label()}",
    )
    failed = set(sweep.failures)
    n_cached = sum(1 for k in keys if k in cached)
    n_failed = sum(1 for k in keys if k in failed and k not in cached)
    return LabelReport(
        n_total=len(frames),
        n_unique=len(first),
        n_cached=n_cached,
        n_labelled=len(frames) - n_cached - n_failed,
        n_failed=n_failed,
        failures={
            first[k]: msg for k, msg in sorted(sweep.failures.items(), key=lambda kv: first[kv[0]])
        },
        db=store.url,
        labeller=spec.key(),
    )


def labelled_frames(
    frames: Iterable[Atoms], spec: LabellerSpec | str, db: LabelDB | str | os.PathLike
) -> list[Atoms | None]:
    """Return the labelled copies of ``frames`` from ``db``, in input order (None if missing).

    Duplicated input structures each get their own copy of the one stored label.
    """
    spec = _as_spec(spec)
    frames = list(frames)
    store = db if isinstance(db, LabelDB) else LabelDB(db)
    extra = spec.key()
    out = store.frames_for([structure_hash(a, extra=extra) for a in frames])
    for a, src in zip(out, frames, strict=False):
        if a is not None:
            for k in ("charge", "multiplicity"):
                if k in src.info:
                    a.info[k] = src.info[k]
    return out
