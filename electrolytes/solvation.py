"""Solvation shells of a cation (Li+) in a periodic liquid: RDFs, shells, residence times.

* **RDF** (:func:`rdf`): minimum-image pair distances from :func:`common.events.close_contacts`
  (Verlet-skin contact search), histogrammed and normalised by the ideal-gas count
  ``N_center N_other / V`` per frame; ``n(r)`` is the running coordination number.
  ``r_max`` is kept below half the narrowest cell width (the minimum image is exact there).
* **First-shell cutoff** (:func:`first_shell_cutoff`): the first minimum after the first peak
  of g(r), read on g(r) smoothed by a moving average: the first peak is the first local
  maximum with g >= 1 (denser than the bulk); the minimum is the lowest point after it
  before g rises again by more than 5% of the peak height (the middle of a flat zero stretch
  for an empty gap).
* **Shells**: a molecule is in a cation's first shell when any of its atoms of a ligand
  element (O, F) lies within that element's cutoff. Molecules are the connected components
  of the bond graph of all other atoms, found with :mod:`common.events` (bond cutoffs with
  hysteresis, :func:`~common.events.species_series`), and named by their Hill formula
  through a caller's map (default :data:`DEFAULT_MOLECULE_NAMES`); a shell reads
  ``Li+(EC)3(DEC)1``, names in the map's order, then unnamed formulas alphabetically.
* **Residence times**: for every (cation, molecule) pair the continuous-presence
  autocorrelation ``C(t) = <h(0) H(0,t)> / <h(0)>`` (H = 1 when the molecule stayed in the
  shell without a break from 0 to t; Impey, Madden & McDonald, J. Phys. Chem. 87, 5071
  (1983)), averaged over all pairs of one molecule name and every time origin; the residence
  time is its integral (trapezoid, up to half the run or where C reaches 0), in ps. Brief
  exits can be forgiven with ``min_persistence_fs`` (the persistence filter of
  :mod:`common.events`).
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

from common.errors import ConfigError, DataError

__all__ = [
    "DEFAULT_MOLECULE_NAMES",
    "RDF",
    "SolvationResult",
    "composition_name",
    "continuous_acf",
    "first_shell_cutoff",
    "plot_rdf",
    "rdf",
    "residence_time_ps",
    "solvation_shells",
]

#: Hill formula -> name of the electrolyte's molecules
DEFAULT_MOLECULE_NAMES: dict[str, str] = {
    "C3H4O3": "EC", "C5H10O3": "DEC", "C3H3FO3": "FEC", "F6P": "PF6",
}
_FIX_CELL = "give a trajectory with its periodic box (extxyz Lattice=..., pbc in x, y and z)"


@dataclass
class RDF:
    """A radial distribution function.

    Attributes
    ----------
    pair
        ``"Li-O"``.
    r_A, g, n_r
        Bin centres (Å), g(r), and the running coordination number (mean number of
        ``other`` atoms within the bin's upper edge of a ``center`` atom).
    edges_A
        Bin edges (Å).
    """

    pair: str
    r_A: np.ndarray
    g: np.ndarray
    n_r: np.ndarray
    edges_A: np.ndarray


def _check_cell(frames: Sequence[Atoms], where: str) -> None:
    if len(frames) == 0:
        raise DataError("no frames", where=where, fix="give a trajectory with frames")
    ref = np.asarray(frames[0].numbers)
    for k, a in enumerate(frames):
        if not np.array_equal(np.asarray(a.numbers), ref):
            raise DataError("atoms differ from the first frame (count or elements)",
                            where=f"{where} frame {k}",
                            fix="give a trajectory of one system with a fixed atom order")
        if not (all(a.pbc) and abs(a.cell.volume) > 1e-6):
            raise DataError("no periodic cell: the RDF needs the box and pbc in x, y, z",
                            where=f"{where} frame {k}", fix=_FIX_CELL)


def _half_width(atoms: Atoms) -> float:
    cell = np.asarray(atoms.cell.array)
    vol = abs(np.linalg.det(cell))
    return min(0.5 * vol / np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3]))
               for k in range(3))


def _indices(symbols: Sequence[str], element: str, where: str) -> np.ndarray:
    idx = np.flatnonzero(np.asarray(symbols) == element)
    if len(idx) == 0:
        raise ConfigError(f"species {element} is not in the trajectory", where=where,
                          fix=f"choose among {', '.join(dict.fromkeys(symbols))}")
    return idx


def rdf(frames: Sequence[Atoms], center: str, other: str, r_max_A: float = 6.0,
        bin_A: float = 0.02, where: str = "trajectory") -> RDF:
    """g(r) of ``other`` atoms around ``center`` atoms, averaged over frames.

    Parameters
    ----------
    frames
        Periodic frames (cell and pbc in x, y, z); positions in Å.
    center, other
        Element symbols (may be equal).
    r_max_A, bin_A
        Largest distance and bin width (Å); ``r_max_A`` is lowered to just under half the
        narrowest cell width if larger.

    Raises
    ------
    DataError
        No periodic cell.
    ConfigError
        An element not in the trajectory, or a non-positive ``r_max_A`` / ``bin_A``.
    """
    from common.events import close_contacts

    _check_cell(frames, where)
    if not (r_max_A > 0 and bin_A > 0):
        raise ConfigError(f"r_max_A and bin_A must be > 0, got {r_max_A}, {bin_A}",
                          where="rdf", fix="give e.g. r_max_A=6, bin_A=0.02")
    symbols = frames[0].get_chemical_symbols()
    ci, oi = _indices(symbols, center, where), _indices(symbols, other, where)
    r_max = min(float(r_max_A), 0.999 * min(_half_width(a) for a in frames))
    edges = np.arange(math.floor(r_max / bin_A + 1e-9) + 1) * float(bin_A)
    same = center == other
    _, _, _, d = close_contacts(frames, ci, None if same else oi, edges[-1])
    hist = np.histogram(d, bins=edges)[0].astype(float) * (2.0 if same else 1.0)
    n_o = len(oi) - 1 if same else len(oi)
    ideal = sum(len(ci) * n_o / abs(a.cell.volume) for a in frames)
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    g = hist / (ideal * shell) if ideal > 0 else np.zeros_like(hist)
    n_r = np.cumsum(hist) / (len(frames) * len(ci))
    return RDF(f"{center}-{other}", 0.5 * (edges[1:] + edges[:-1]), g, n_r, edges)


def _smooth(g: np.ndarray, half: int) -> np.ndarray:
    if half <= 0:
        return np.asarray(g, dtype=float)
    kernel = np.ones(2 * half + 1)
    return np.convolve(g, kernel, "same") / np.convolve(np.ones_like(g), kernel, "same")


def first_shell_cutoff(r_A: np.ndarray, g: np.ndarray, smooth_bins: int = 2,
                       rise: float = 0.05) -> tuple[float, float] | None:
    """``(first peak, first minimum)`` positions (Å) of g(r), or ``None`` if there is none.

    Parameters
    ----------
    r_A, g
        Bin centres (Å) and g(r).
    smooth_bins
        Half-width of the moving average applied first (bins).
    rise
        The minimum ends where g rises by more than ``rise`` x the peak height above it.

    Returns
    -------
    tuple or None
        ``None`` when g(r) has no local maximum >= 1 or does not rise again after it. A flat
        top or bottom (a spike widened by the smoothing, an empty gap) gives its middle.
    """
    gs = _smooth(np.asarray(g, dtype=float), smooth_bins)
    above = np.flatnonzero(gs >= 1.0)
    if len(above) == 0:
        return None
    p = int(above[0])
    while p + 1 < len(gs) and gs[p + 1] >= gs[p]:
        p += 1
    top = p
    while top > 0 and gs[top - 1] >= gs[p] * (1.0 - 1e-12):
        top -= 1
    m, k = p, p
    while k + 1 < len(gs):
        k += 1
        if gs[k] < gs[m]:
            m = k
        elif gs[k] > gs[m] + rise * gs[p]:
            break
    else:
        return None
    flat = np.abs(gs - gs[m]) <= 1e-12 * max(1.0, gs[p])
    lo, hi = m, m
    while lo - 1 > p and flat[lo - 1]:
        lo -= 1
    while hi + 1 < k and flat[hi + 1]:
        hi += 1
    return float(0.5 * (r_A[top] + r_A[p])), float(0.5 * (r_A[lo] + r_A[hi]))


def composition_name(counts: Mapping[str, int], center_label: str = "Li+",
                     order: Sequence[str] = tuple(DEFAULT_MOLECULE_NAMES.values())) -> str:
    """``Li+(EC)3(DEC)1``: names in ``order`` first, then the others alphabetically."""
    rank = {n: k for k, n in enumerate(order)}
    names = sorted((n for n, c in counts.items() if c > 0),
                   key=lambda n: (rank.get(n, len(rank)), n))
    return center_label + "".join(f"({n}){counts[n]}" for n in names)


def continuous_acf(presence: np.ndarray) -> np.ndarray:
    """Continuous-presence autocorrelation of boolean series.

    Parameters
    ----------
    presence
        ``(T, P)`` booleans: pair p present at frame t.

    Returns
    -------
    numpy.ndarray
        ``C(k)``, k = 0 .. T-1: among (pair, origin t0 <= T-1-k) with the pair present at t0,
        the fraction present without a break until t0 + k (NaN where no origin exists).
    """
    h = np.asarray(presence, dtype=bool)
    h = h[:, None] if h.ndim == 1 else h
    n_t = h.shape[0]
    padded = np.zeros((n_t + 2, h.shape[1]), dtype=np.int8)
    padded[1:-1] = h
    step = np.diff(padded, axis=0)
    starts, ends = np.nonzero(step.T == 1)[1], np.nonzero(step.T == -1)[1]
    lengths = np.bincount(ends - starts, minlength=n_t + 1).astype(float)
    k = np.arange(n_t)
    tail_n = np.cumsum(lengths[::-1])[::-1]  # runs of length >= L
    tail_l = np.cumsum((lengths * np.arange(n_t + 1))[::-1])[::-1]
    numer = tail_l[k + 1] - k * tail_n[k + 1] if n_t else np.zeros(0)
    denom = np.cumsum(h.sum(axis=1))[n_t - 1 - k]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, numer / np.maximum(denom, 1), np.nan)


def residence_time_ps(acf: np.ndarray, dt_fs: float) -> tuple[float, bool]:
    """Integral of ``C(t)`` (ps) up to half the run or where C first reaches 0.

    Returns ``(tau_ps, decayed)``; ``decayed`` is False when C is still above 1/e at the end
    (then tau is a lower bound: the run is too short).
    """
    c = np.asarray(acf, dtype=float)[: max(2, len(acf) // 2 + 1)]
    c = c[np.isfinite(c)]
    if len(c) < 2:
        return math.nan, False
    zero = np.flatnonzero(c <= 0)
    end = int(zero[0]) + 1 if len(zero) else len(c)
    c = c[:end]
    tau_fs = float(np.sum(0.5 * (c[1:] + c[:-1]))) * dt_fs
    return tau_fs / 1000.0, bool(c[-1] < math.exp(-1))


@dataclass
class SolvationResult:
    """First solvation shells of the cations of a trajectory.

    Attributes
    ----------
    center, center_label
        Cation element and its label in composition strings (``Li`` / ``Li+``).
    rdfs
        ``{ligand element: RDF}``.
    first_peak_A, cutoffs_A
        ``{ligand element: Å}``: g(r)'s first peak and the shell cutoff used.
    coordination
        ``{ligand element: mean number within the cutoff per cation}``.
    compositions
        ``{"Li+(EC)3(DEC)1": fraction of (cation, frame) samples}``, most frequent first.
    mean_shell
        ``{molecule name: mean number per shell}``.
    residence_times_ps, residence_decayed
        ``{molecule name: tau (ps)}`` and whether its C(t) decayed below 1/e in the run.
    acfs
        ``{molecule name: C(k)}`` at lags of ``dt_fs``.
    dt_fs
        Time between frames (fs), or ``None`` when unknown.
    notes
        Warnings for the user.
    """

    center: str
    center_label: str
    rdfs: dict[str, RDF]
    first_peak_A: dict[str, float]
    cutoffs_A: dict[str, float]
    coordination: dict[str, float]
    compositions: dict[str, float]
    mean_shell: dict[str, float]
    residence_times_ps: dict[str, float] = field(default_factory=dict)
    residence_decayed: dict[str, bool] = field(default_factory=dict)
    acfs: dict[str, np.ndarray] = field(default_factory=dict)
    dt_fs: float | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready summary (no curves)."""
        def num(v):
            return float(v) if v is not None and math.isfinite(v) else None
        return {"center": self.center,
                "cutoffs_A": {k: num(v) for k, v in self.cutoffs_A.items()},
                "first_peak_A": {k: num(v) for k, v in self.first_peak_A.items()},
                "coordination": {k: num(v) for k, v in self.coordination.items()},
                "compositions": dict(self.compositions),
                "mean_shell": dict(self.mean_shell),
                "residence_times_ps": {k: num(v) for k, v in self.residence_times_ps.items()},
                "residence_decayed": dict(self.residence_decayed)}


def _ligands(symbols: Sequence[str], ligands: Sequence[str] | None, where: str) -> list[str]:
    present = set(symbols)
    if ligands is None:
        found = [e for e in ("O", "F") if e in present]
        if not found:
            raise ConfigError("no O or F atoms to coordinate the cation", where=where,
                              fix="give the ligand elements, e.g. `ligands` N")
        return found
    for e in ligands:
        _indices(symbols, e, where)
    return list(ligands)


def _cutoffs(rdfs: dict[str, RDF], given: Mapping[str, float] | None, center: str,
             notes: list[str]) -> tuple[dict[str, float], dict[str, float]]:
    for e, c in (given or {}).items():
        if e not in rdfs or not (isinstance(c, int | float) and c > 0):
            raise ConfigError(f"cutoff for {e}: must be a number > 0 Å for a ligand element",
                              where="cutoffs_A", fix=f"give cutoffs for {', '.join(rdfs)}")
    peaks, cuts = {}, {}
    for e, r in rdfs.items():
        found = first_shell_cutoff(r.r_A, r.g)
        peaks[e] = found[0] if found else math.nan
        if given and e in given:
            cuts[e] = float(given[e])
        elif found:
            cuts[e] = found[1]
        else:
            notes.append(f"no first shell in the {center}-{e} RDF below {r.edges_A[-1]:.2f} Å: "
                         f"{e} counts in no shell (give cutoffs_A={{'{e}': r}} to set one)")
    return peaks, cuts


def _molecules(frames: Sequence[Atoms], atoms: np.ndarray, names: Mapping[str, str],
               criteria) -> list[dict[int, tuple[str, frozenset[int]]]]:
    """Per frame: atom -> (molecule name, molecule atoms), from the bond graph of ``atoms``."""
    from common.events import SpeciesLibrary, bond_series, hill_formula, species_series

    symbols = frames[0].get_chemical_symbols()
    bonds = bond_series(frames, atoms, criteria)
    series = species_series(bonds, list(atoms), symbols,
                            SpeciesLibrary({}, include_defaults=False))
    out: list[dict] = []
    prev, cur = None, {}
    for sp in series:
        if sp is not prev:
            cur = {}
            for _, mol in sp:
                formula = hill_formula(symbols[k] for k in mol)
                for k in mol:
                    cur[k] = (names.get(formula, formula), mol)
            prev = sp
        out.append(cur)
    return out


def _shell_pairs(frames: Sequence[Atoms], centers: np.ndarray, cutoffs: dict[str, float]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Contacts ``(frame, cation, ligand atom)`` within each ligand element's cutoff."""
    from common.events import close_contacts

    symbols = np.asarray(frames[0].get_chemical_symbols())
    lig = np.flatnonzero(np.isin(symbols, list(cutoffs)))
    if len(lig) == 0 or not cutoffs:
        e = np.zeros(0, dtype=np.int64)
        return e, e, e
    f, i, j, d = close_contacts(frames, centers, lig, max(cutoffs.values()))
    keep = d <= np.array([cutoffs[s] for s in symbols[j]])
    return f[keep], i[keep], j[keep]


def _times(frames: Sequence[Atoms], dt_fs: float | None, where: str, notes: list[str]
           ) -> float | None:
    from common.trajectory import frame_times_fs
    from electrolytes.transport import uniform_timestep_fs

    if len(frames) < 2:
        return None
    try:
        return uniform_timestep_fs(frame_times_fs(frames, dt_fs, where=where), where)
    except DataError:
        if dt_fs is not None:
            raise
        notes.append("no time between frames known: residence times skipped (give dt_fs, "
                     "--dt-fs)")
        return None


def solvation_shells(frames: Sequence[Atoms], center: str = "Li",
                     ligands: Sequence[str] | None = None,
                     names: Mapping[str, str] | None = None,
                     cutoffs_A: Mapping[str, float] | None = None, *, r_max_A: float = 6.0,
                     bin_A: float = 0.02, dt_fs: float | None = None, bond_criteria=None,
                     min_persistence_fs: float = 0.0, center_label: str | None = None,
                     where: str = "trajectory") -> SolvationResult:
    """RDFs, first-shell cutoffs, coordination, shell compositions and residence times.

    Parameters
    ----------
    frames
        Periodic frames (cell, pbc in x, y, z), positions in Å.
    center
        Cation element (default ``Li``).
    ligands
        Coordinating elements (default: those of O, F present).
    names
        ``{Hill formula: molecule name}`` (default :data:`DEFAULT_MOLECULE_NAMES`).
    cutoffs_A
        ``{ligand element: first-shell cutoff in Å}``; default the first minimum of g(r).
    r_max_A, bin_A
        RDF range and bin width (Å).
    dt_fs
        Time between frames (fs); wins over the frames' ``info["time_fs"]``.
    bond_criteria
        :class:`common.events.BondCriteria` for the molecules (default covalent radii).
    min_persistence_fs
        Shell entries and exits lasting less than this (fs) are ignored for residence times.
    center_label
        Prefix of composition strings (default ``"<center>+"``).

    Raises
    ------
    DataError
        No periodic cell, or frames that change atoms.
    ConfigError
        ``center`` or a ligand not in the trajectory, a bad cutoff, ``dt_fs <= 0``.
    """
    _check_cell(frames, where)
    symbols = frames[0].get_chemical_symbols()
    centers = _indices(symbols, center, where)
    names = dict(DEFAULT_MOLECULE_NAMES if names is None else names)
    notes: list[str] = []
    dt = _times(frames, dt_fs, where, notes)
    rdfs = {e: rdf(frames, center, e, r_max_A, bin_A, where)
            for e in _ligands(symbols, ligands, where)}
    reach = min(r.edges_A[-1] for r in rdfs.values())
    if reach < r_max_A - bin_A:
        notes.append(f"RDF range cut to {reach:.2f} Å (just under half the narrowest cell "
                     "width, where the minimum image is exact)")
    peaks, cuts = _cutoffs(rdfs, cutoffs_A, center, notes)
    others = np.flatnonzero(np.asarray(symbols) != center)
    mols = _molecules(frames, others, names, bond_criteria)
    f, i, j = _shell_pairs(frames, centers, cuts)
    res = SolvationResult(center, center_label or f"{center}+", rdfs, peaks, cuts,
                          _coordination(f, j, symbols, cuts, len(frames) * len(centers)),
                          {}, {}, dt_fs=dt, notes=notes)
    members = _members(f, i, j, mols)
    res.compositions, res.mean_shell = _compositions(members, len(frames), centers,
                                                     res.center_label, list(names.values()))
    if dt is not None:
        _residence(res, members, len(frames), dt, min_persistence_fs)
    return res


def _coordination(f: np.ndarray, j: np.ndarray, symbols: Sequence[str],
                  cuts: dict[str, float], n_samples: int) -> dict[str, float]:
    sym = np.asarray(symbols)[j] if len(j) else np.zeros(0, dtype=str)
    return {e: float(np.sum(sym == e)) / n_samples for e in cuts}


def _members(f: np.ndarray, i: np.ndarray, j: np.ndarray, mols: list[dict]
             ) -> dict[tuple[int, int], set[tuple[str, frozenset[int]]]]:
    """``{(frame, cation): {(name, molecule atoms), ...}}``."""
    out: dict[tuple[int, int], set] = {}
    for ff, ii, jj in zip(f.tolist(), i.tolist(), j.tolist(), strict=True):
        out.setdefault((ff, ii), set()).add(mols[ff][jj])
    return out


def _compositions(members: dict, n_frames: int, centers: np.ndarray, label: str,
                  order: list[str]) -> tuple[dict[str, float], dict[str, float]]:
    hist: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for t in range(n_frames):
        for c in centers.tolist():
            counts = Counter(name for name, _ in members.get((t, c), ()))
            hist[composition_name(counts, label, order)] += 1
            total.update(counts)
    n = n_frames * len(centers)
    comps = {k: v / n for k, v in sorted(hist.items(), key=lambda kv: (-kv[1], kv[0]))}
    return comps, {k: v / n for k, v in sorted(total.items())}


def _residence(res: SolvationResult, members: dict, n_frames: int, dt_fs: float,
               min_persistence_fs: float) -> None:
    """Fill the residence fields of ``res`` from the shell members of every frame."""
    from common.events import persistence_filter_matrix
    from common.trajectory import persistence_frames

    keys: dict[tuple[int, frozenset[int]], int] = {}
    pair_name: list[str] = []
    rows, cols = [], []
    for (t, c), mols in members.items():
        for name, atoms in mols:
            k = keys.setdefault((c, atoms), len(keys))
            if k == len(pair_name):
                pair_name.append(name)
            rows.append(t)
            cols.append(k)
    h = np.zeros((n_frames, len(keys)), dtype=bool)
    h[rows, cols] = True
    n_min = persistence_frames(np.arange(n_frames) * dt_fs, min_persistence_fs)
    h = persistence_filter_matrix(h, n_min)
    pn = np.asarray(pair_name)
    for name in sorted(set(pair_name)):
        acf = continuous_acf(h[:, pn == name])
        res.acfs[name] = acf
        tau, decayed = residence_time_ps(acf, dt_fs)
        res.residence_times_ps[name], res.residence_decayed[name] = tau, decayed
        if not decayed:
            res.notes.append(f"{name} residence: C(t) stays above 1/e within half the run, "
                             f"{tau:.3g} ps is a lower bound (run longer)")


def plot_rdf(result: SolvationResult, path: str | os.PathLike) -> Path:
    """g(r) and n(r) of each ligand element with the shell cutoffs; written atomically."""
    from electrolytes.transport import _pyplot, _save

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    ax2 = ax.twinx()
    for e, r in result.rdfs.items():
        (line,) = ax.plot(r.r_A, r.g, label=f"{r.pair}")
        ax2.plot(r.r_A, r.n_r, "--", color=line.get_color(), lw=0.8)
        if e in result.cutoffs_A:
            ax.axvline(result.cutoffs_A[e], color=line.get_color(), ls=":", lw=0.8)
    ax.set(xlabel="r (Å)", ylabel="g(r)")
    ax2.set_ylabel("n(r) (dashed)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)
