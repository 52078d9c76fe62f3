"""Folding and unfolding events of a small protein along a trajectory.

* **Order parameter**: the fraction of native contacts Q (Best, Hummer & Eaton, PNAS 110,
  17874 (2013)): native contacts are heavy-atom pairs closer than 4.5 Å in the native
  structure whose residues are more than 3 apart; ``Q(X) = (1/N) Σ 1 / (1 + exp(β (r(X) −
  λ r0)))`` with β = 5 Å⁻¹ and λ = 1.8. Or the RMSD to the native structure after optimal
  superposition (Kabsch). Distances are plain (no periodic images): give a trajectory in
  which the protein is whole.
* **States**: transition-based assignment with two thresholds (folded beyond one, unfolded
  beyond the other, in between the last state is kept) by
  :func:`common.events.hysteresis_states`, then the persistence filter of
  :func:`common.events.persistence_filter_matrix` (a state must last ``min_fs``, turned into
  frames by :func:`common.trajectory.persistence_frames`).
* **Kinetics**: folding and unfolding events, the folded fraction (of frames), and mean
  first-passage times: a folding time is a complete unfolded dwell (from the unfolding event
  to the next folding event), an unfolding time a complete folded dwell; dwells cut by the
  start or the end of the trajectory are censored and left out. Means carry Student-t 95 %
  intervals (:func:`common.events.t_interval`), with the lower end clipped at 0.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from common.errors import ConfigError, DataError

__all__ = [
    "FoldingResult",
    "NativeContacts",
    "analyse_folding",
    "fold_trajectory",
    "folding_states",
    "fraction_native_contacts",
    "kabsch_rmsd_A",
    "native_contacts",
    "plot_folding",
    "residue_ids_from_pdb",
]


# ---------------------------------------------------------------------------------------------
# order parameters


@dataclass(frozen=True)
class NativeContacts:
    """Native contact list: atom index pairs ``i < j`` and their native distance ``r0_A``."""

    i: np.ndarray
    j: np.ndarray
    r0_A: np.ndarray

    def __len__(self) -> int:
        return len(self.i)


def _positions(frames: Sequence[Atoms] | np.ndarray, where: str) -> np.ndarray:
    """``(n_frames, n_atoms, 3)`` positions (Å) from frames or an array."""
    if isinstance(frames, np.ndarray):
        x = np.asarray(frames, dtype=float)
    else:
        x = np.array([np.asarray(a.positions if isinstance(a, Atoms) else a, dtype=float)
                      for a in frames])
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[-1] != 3 or x.shape[0] == 0:
        raise DataError(f"need positions of shape (n_frames, n_atoms, 3), got {x.shape}",
                        where=where, fix="give ASE frames or an (n_frames, n_atoms, 3) array")
    return x


def residue_ids_from_pdb(path: str | os.PathLike) -> np.ndarray:
    """Per-atom residue numbers of a PDB file (ASE's ``residuenumbers``)."""
    import ase.io

    p = Path(path)
    if not p.is_file():
        raise DataError("file not found", where=str(p), fix="give the native structure's PDB")
    atoms = ase.io.read(p, format="proteindatabank")
    if "residuenumbers" not in atoms.arrays:
        raise DataError("no residue numbers", where=str(p),
                        fix="give a PDB with ATOM records (residue sequence numbers)")
    return np.asarray(atoms.arrays["residuenumbers"], dtype=np.int64)


def _residue_ids(native: Atoms, residue_ids: Sequence[int] | None) -> np.ndarray:
    if residue_ids is None:
        if "residuenumbers" not in native.arrays:
            raise ConfigError("no residue ids: the native structure carries no "
                              "'residuenumbers'", where="residue_ids",
                              fix="give residue_ids (one per atom), or read the native "
                                  "structure from a PDB")
        residue_ids = native.arrays["residuenumbers"]
    res = np.asarray(residue_ids)
    if res.shape != (len(native),):
        raise ConfigError(f"need one residue id per atom ({len(native)}), got {res.shape}",
                          where="residue_ids", fix="give an array of length len(native)")
    return res.astype(np.int64)


def native_contacts(native: Atoms, residue_ids: Sequence[int] | None = None,
                    cutoff_A: float = 4.5, min_residue_separation: int = 4) -> NativeContacts:
    """Heavy-atom pairs closer than ``cutoff_A`` in the native structure.

    Parameters
    ----------
    native
        The native (folded) structure.
    residue_ids
        Residue number of each atom; default ``native.arrays["residuenumbers"]`` (set by
        ASE's PDB reader).
    cutoff_A
        Contact distance in Å (4.5 in Best-Hummer-Eaton).
    min_residue_separation
        Pairs need ``|res_i - res_j| >= min_residue_separation`` (4, i.e. more than 3 apart).

    Raises
    ------
    DataError
        No native contact at all (Q would be undefined).
    """
    res = _residue_ids(native, residue_ids)
    heavy = np.flatnonzero(native.numbers > 1)
    x = native.positions[heavy]
    iu, ju = np.triu_indices(len(heavy), k=1)
    d = np.linalg.norm(x[iu] - x[ju], axis=1)
    keep = (d < cutoff_A) & (np.abs(res[heavy][iu] - res[heavy][ju]) >= min_residue_separation)
    if not keep.any():
        raise DataError(f"no native contacts (heavy atoms within {cutoff_A} Å, residues "
                        f">= {min_residue_separation} apart)", where="native",
                        fix="check the native structure and its residue ids")
    return NativeContacts(heavy[iu[keep]], heavy[ju[keep]], d[keep])


def fraction_native_contacts(frames: Sequence[Atoms] | np.ndarray, contacts: NativeContacts,
                             beta_per_A: float = 5.0, lambda_factor: float = 1.8
                             ) -> np.ndarray:
    """Q per frame: ``mean 1 / (1 + exp(β (r − λ r0)))`` over the native contacts.

    ``frames`` are ASE frames or positions ``(n_frames, n_atoms, 3)`` in Å; returns an
    array of length ``n_frames`` with values in [0, 1].
    """
    x = _positions(frames, "frames")
    r = np.linalg.norm(x[:, contacts.i] - x[:, contacts.j], axis=-1)
    z = np.clip(beta_per_A * (r - lambda_factor * contacts.r0_A), -700.0, 700.0)
    return (1.0 / (1.0 + np.exp(z))).mean(axis=1)


def kabsch_rmsd_A(frames: Sequence[Atoms] | np.ndarray, reference: Atoms | np.ndarray,
                  atom_indices: Sequence[int] | None = None) -> np.ndarray:
    """RMSD (Å) of each frame to ``reference`` after optimal rigid superposition (Kabsch).

    Both are centred on their centroids (unweighted), and the proper rotation (det +1)
    minimising the RMSD is found by SVD of the covariance matrix. ``atom_indices`` selects
    the atoms (e.g. C-alpha); default all.
    """
    x = _positions(frames, "frames")
    ref = _positions(reference if isinstance(reference, np.ndarray) else [reference],
                     "reference")[0]
    if ref.shape[0] != x.shape[1]:
        raise DataError(f"frames have {x.shape[1]} atoms, the reference {ref.shape[0]}",
                        where="reference", fix="give the native structure of the same atoms")
    if atom_indices is not None:
        sel = np.asarray(atom_indices, dtype=np.int64)
        x, ref = x[:, sel], ref[sel]
    x = x - x.mean(axis=1, keepdims=True)
    ref = ref - ref.mean(axis=0)
    h = np.einsum("fai,aj->fij", x, ref)
    u, _, vt = np.linalg.svd(h)
    sign = np.sign(np.linalg.det(u @ vt))
    u[:, :, -1] *= sign[:, None]
    rot = u @ vt
    diff = np.einsum("fai,fij->faj", x, rot) - ref
    return np.sqrt((diff * diff).sum(axis=(1, 2)) / x.shape[1])


# ---------------------------------------------------------------------------------------------
# states and kinetics


def _check_series(series: Sequence[float], times_fs: Sequence[float]
                  ) -> tuple[np.ndarray, np.ndarray]:
    s, t = np.asarray(series, dtype=float), np.asarray(times_fs, dtype=float)
    if s.ndim != 1 or s.shape != t.shape or s.size == 0:
        raise DataError(f"need a series and its times of equal length, got shapes {s.shape}, "
                        f"{t.shape}", where="series", fix="give one value and time per frame")
    bad = np.flatnonzero(~np.isfinite(s))
    if bad.size:
        raise DataError(f"value {s[bad[0]]} is not finite", where=f"series frame {bad[0]}",
                        fix="check the trajectory at that frame")
    if np.any(np.diff(t) <= 0):
        raise DataError("times do not increase", where="times_fs",
                        fix="give frame times in fs in increasing order")
    return s, t


def _thresholds(folded: float, unfolded: float) -> tuple[float, float, float]:
    """``(r_on, r_off, sign)`` for :func:`hysteresis_states` on ``sign * series``."""
    f, u = float(folded), float(unfolded)
    if not (math.isfinite(f) and math.isfinite(u)) or f == u:
        raise ConfigError(f"thresholds must differ, got folded={folded}, unfolded={unfolded}",
                          where="folded_threshold, unfolded_threshold",
                          fix="give e.g. Q: folded 0.7, unfolded 0.3; RMSD: 2 and 5 Å")
    return (-f, -u, -1.0) if f > u else (f, u, 1.0)


def folding_states(series: Sequence[float], times_fs: Sequence[float],
                   folded_threshold: float, unfolded_threshold: float, min_fs: float = 0.0,
                   min_frames: int | None = None) -> np.ndarray:
    """Folded (True) / unfolded (False) per frame, with hysteresis and persistence.

    Parameters
    ----------
    series
        Order parameter per frame: Q (folded when high) or RMSD in Å (folded when low).
    times_fs
        Frame times in fs.
    folded_threshold, unfolded_threshold
        A frame becomes folded beyond ``folded_threshold`` and unfolded beyond
        ``unfolded_threshold``; in between it keeps the last state. Their order gives the
        direction: ``folded > unfolded`` for Q, ``folded < unfolded`` for an RMSD. On the
        first frame the midpoint decides.
    min_fs, min_frames
        A change counts only if the new state lasts ``min_fs`` (or ``min_frames`` frames).
    """
    from common.events import hysteresis_states, persistence_filter_matrix
    from common.trajectory import persistence_frames

    s, t = _check_series(series, times_fs)
    r_on, r_off, sign = _thresholds(folded_threshold, unfolded_threshold)
    n = len(s)
    states = hysteresis_states(n, np.arange(n), np.zeros(n, dtype=np.int64), sign * s,
                               np.array([r_on]), np.array([r_off]))
    return persistence_filter_matrix(states, persistence_frames(t, min_fs, min_frames))[:, 0]


def _mean_ci(values: Sequence[float]) -> dict[str, Any]:
    from common.events import t_interval

    mean, (lo, hi) = t_interval(values)
    return {"n": len(values), "mean": mean, "ci95": [None if lo is None else max(0.0, lo), hi]}


@dataclass
class FoldingResult:
    """Folding analysis of one trajectory (times in fs).

    ``events`` are dicts ``{kind: "folding"|"unfolding", frame, time_fs}`` at the first frame
    of the new state; ``folding_times_fs`` / ``unfolding_times_fs`` are the complete unfolded
    / folded dwells (first-passage times).
    """

    observable: str
    times_fs: np.ndarray
    series: np.ndarray
    folded: np.ndarray
    folded_threshold: float
    unfolded_threshold: float
    min_persistence_fs: float
    events: list[dict] = field(default_factory=list)
    folding_times_fs: list[float] = field(default_factory=list)
    unfolding_times_fs: list[float] = field(default_factory=list)

    @property
    def folded_fraction(self) -> float:
        """Fraction of frames in the folded state."""
        return float(np.mean(self.folded))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (``None`` where undefined)."""
        kinds = [e["kind"] for e in self.events]
        return {
            "observable": self.observable, "n_frames": len(self.series),
            "folded_threshold": self.folded_threshold,
            "unfolded_threshold": self.unfolded_threshold,
            "min_persistence_fs": self.min_persistence_fs,
            "n_events": len(self.events), "n_folding": kinds.count("folding"),
            "n_unfolding": kinds.count("unfolding"),
            "folded_fraction": self.folded_fraction,
            "mfpt_folding_fs": _mean_ci(self.folding_times_fs),
            "mfpt_unfolding_fs": _mean_ci(self.unfolding_times_fs),
            "events": list(self.events),
        }


def _dwells(folded: np.ndarray, t: np.ndarray) -> tuple[list[dict], list[float], list[float]]:
    """Events and complete dwells (fs) of a boolean state series."""
    cuts = np.flatnonzero(folded[1:] != folded[:-1]) + 1
    events = [{"kind": "folding" if folded[k] else "unfolding", "frame": int(k),
               "time_fs": float(t[k])} for k in cuts]
    fold_times, unfold_times = [], []
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        (unfold_times if folded[a] else fold_times).append(float(t[b] - t[a]))
    return events, fold_times, unfold_times


def analyse_folding(series: Sequence[float], times_fs: Sequence[float],
                    folded_threshold: float, unfolded_threshold: float, min_fs: float = 0.0,
                    observable: str = "Q") -> FoldingResult:
    """Events, folded fraction and mean first-passage times from an order-parameter series.

    Parameters are those of :func:`folding_states`; ``observable`` names the series
    (``"Q"`` or ``"rmsd_A"``) in the result.
    """
    s, t = _check_series(series, times_fs)
    folded = folding_states(s, t, folded_threshold, unfolded_threshold, min_fs)
    events, fold_times, unfold_times = _dwells(folded, t)
    return FoldingResult(observable, t, s, folded, float(folded_threshold),
                         float(unfolded_threshold), float(min_fs), events, fold_times,
                         unfold_times)


def fold_trajectory(trajectory: str | os.PathLike | Sequence[Atoms],
                    native: str | os.PathLike | Atoms, *, observable: str = "Q",
                    residue_ids: Sequence[int] | None = None,
                    folded_threshold: float | None = None,
                    unfolded_threshold: float | None = None, min_fs: float = 0.0,
                    dt_fs: float | None = None, atom_indices: Sequence[int] | None = None,
                    system: int | None = None) -> FoldingResult:
    """Folding analysis of a trajectory against its native structure.

    Parameters
    ----------
    trajectory
        A trajectory file (read by :func:`common.trajectory.load_trajectory`) or frames.
    native
        The native structure: Atoms or a file (a PDB gives the residue ids).
    observable
        ``"Q"`` (fraction of native contacts) or ``"rmsd"`` (Kabsch RMSD in Å).
    residue_ids
        Residue number per atom for Q; default from the native structure.
    folded_threshold, unfolded_threshold
        Defaults: Q 0.7 / 0.3, RMSD 2.0 / 4.0 Å. Common starting points only: put them at
        the two basins of the order parameter's histogram for the protein at hand.
    min_fs
        Minimum lifetime of a state in fs.
    dt_fs
        Time between frames, when the frames do not carry ``info["time_fs"]``.
    atom_indices
        Atoms for the RMSD (e.g. C-alpha); default all.
    system
        Which system of an HDF5 trajectory holding several.
    """
    import ase.io

    from common.trajectory import frame_times_fs, load_trajectory

    if isinstance(trajectory, str | os.PathLike):
        frames, file_dt = load_trajectory(trajectory, system)
        where = str(trajectory)
    else:
        frames, file_dt, where = list(trajectory), None, "trajectory"
    times = frame_times_fs(frames, dt_fs, file_dt, where=where)
    ref = native if isinstance(native, Atoms) else ase.io.read(native)
    if observable == "Q":
        series = fraction_native_contacts(frames, native_contacts(ref, residue_ids))
        hi, lo = 0.7, 0.3
    elif observable == "rmsd":
        series = kabsch_rmsd_A(frames, ref, atom_indices)
        hi, lo, observable = 2.0, 4.0, "rmsd_A"
    else:
        raise ConfigError(f"unknown observable {observable!r}", where="observable",
                          fix="give 'Q' or 'rmsd'")
    return analyse_folding(series, times, hi if folded_threshold is None else folded_threshold,
                           lo if unfolded_threshold is None else unfolded_threshold, min_fs,
                           observable)


# ---------------------------------------------------------------------------------------------
# plot


def _segments(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[(start, end)]`` frame ranges (end exclusive) where ``mask`` is True."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(int), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def plot_folding(result: FoldingResult, path: str | os.PathLike, title: str = "") -> Path:
    """Plot the order parameter against time with the folded stretches shaded and both thresholds.

    Written atomically (PNG/PDF/SVG by suffix).
    """
    from common.plots import pyplot, save_figure

    plt = pyplot()
    unit, scale = ("ns", 1e6) if result.times_fs[-1] >= 1e6 else ("ps", 1e3)
    t = result.times_fs / scale
    fig, ax = plt.subplots(figsize=(8, 3))
    end = np.append(t, t[-1] + (t[-1] - t[-2] if len(t) > 1 else 0.0))
    for k, (a, b) in enumerate(_segments(result.folded)):
        ax.axvspan(end[a], end[b], color="tab:green", alpha=0.15,
                   label="folded" if k == 0 else None)
    ax.plot(t, result.series, color="k", lw=0.7)
    for y, name in ((result.folded_threshold, "folded"),
                    (result.unfolded_threshold, "unfolded")):
        ax.axhline(y, color="tab:blue" if name == "folded" else "tab:red", ls="--", lw=0.8,
                   label=f"{name} threshold")
    label = "Q" if result.observable == "Q" else "RMSD (Å)"
    ax.set(xlabel=f"time ({unit})", ylabel=label, title=title)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return save_figure(fig, path, dpi=150)
