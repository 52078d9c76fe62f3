"""Bonds along a trajectory: element-pair cutoffs with hysteresis, periodic images, persistence.

A pair of atoms *forms* a bond when its minimum-image distance drops below ``r_on`` and
*breaks* it when the distance rises above ``r_off`` (``r_on < r_off``); between the two the
previous state is kept, so thermal vibration around one threshold does not flicker. On the
first frame (no history) a pair counts as bonded below the midpoint ``(r_on + r_off) / 2``.
:func:`persistence_filter` then drops changes whose new state does not last ``min_frames``.

Bond cutoffs (Å)
----------------
Every element pair gets ``r_on = on_factor (r_a + r_b)`` and ``r_off = off_factor (r_a + r_b)``
from ASE's covalent radii (Cordero 2008), 1.20 and 1.45 by default. 1.2 x the radius sum is
the usual connectivity rule (it keeps every equilibrium bond, thermally stretched, and no
non-bonded contact such as a hydrogen bond's X···H at 1.6-2.0 Å); 1.45 x lies beyond the bond
length at typical transition states (1.25-1.4 x the equilibrium length), so a bond counts as
broken only once the system has left the transition-state region. Examples: Li-O 2.33 / 2.81
(Li+ solvation shell at 1.9-2.1), P-F 1.97 / 2.38 (PF6- 1.60), N-H 1.22 / 1.48 (1.01),
Ga-N 2.32 / 2.80 (wurtzite 1.95; next Ga-N shell beyond 3.2). The rule knows no charges:
between two metal atoms it is generous (Ga···Ga 3.19 Å in GaN and Li···Li 2.31 Å in Li2O fall
inside it), so leave such atoms out of ``atom_indices`` or give their pairs in a table.

A caller with better values for its chemistry gives them as a ``table`` (its documented
defaults, e.g. the C/H/O table of the catalysis pipeline) and the user's ``overrides`` on top;
both win over the radius rule.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, covalent_radii

from common.errors import ConfigError, DataError

__all__ = [
    "BondCriteria",
    "BondStates",
    "bond_retention",
    "bond_series",
    "bond_states",
    "close_contacts",
    "contact_states",
    "hysteresis_states",
    "parse_cutoff_overrides",
    "persistence_filter",
    "persistence_filter_matrix",
    "states_to_sets",
]

T = TypeVar("T")

_CUTOFF_FIX = "give r_on < r_off, both > 0 Å, e.g. --cutoff C-C=1.8,2.2"


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


def _check_element(symbol: str, where: str) -> None:
    if symbol not in atomic_numbers or symbol == "X":
        raise ConfigError(f"unknown element {symbol!r}", where=where,
                          fix="use element symbols such as C, O, H, Li")


def _parse_key(key: str | tuple[str, str], where: str) -> tuple[str, str]:
    if isinstance(key, str):
        parts = [p.strip() for p in key.split("-")]
    else:
        parts = [str(p).strip() for p in key]
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"cannot read element pair {key!r}", where=where,
                          fix="write the pair as two element symbols, e.g. C-O")
    for p in parts:
        _check_element(p, where)
    return _pair(parts[0], parts[1])


def _check_cutoffs(r_on: float, r_off: float, where: str) -> tuple[float, float]:
    try:
        r_on, r_off = float(r_on), float(r_off)
    except (TypeError, ValueError):
        raise ConfigError(f"cutoffs must be numbers, got {r_on!r}, {r_off!r}", where=where,
                          fix=_CUTOFF_FIX) from None
    if not (math.isfinite(r_on) and math.isfinite(r_off)) or r_on <= 0 or r_off <= 0:
        raise ConfigError(f"cutoffs must be positive, got r_on={r_on}, r_off={r_off} Å",
                          where=where, fix=_CUTOFF_FIX)
    if r_on >= r_off:
        raise ConfigError(f"r_on ({r_on} Å) must be smaller than r_off ({r_off} Å) for "
                          "hysteresis", where=where, fix=_CUTOFF_FIX)
    return r_on, r_off


def _pair_table(values: Mapping[str | tuple[str, str], Sequence[float]] | None, where: str
                ) -> dict[tuple[str, str], tuple[float, float]]:
    """Check cutoffs given by ``"A-B"`` or tuple keys; return ``{(a, b): (r_on, r_off)}``.

    The pairs ``(a, b)`` of the result are sorted.
    """
    out: dict[tuple[str, str], tuple[float, float]] = {}
    for key, val in (values or {}).items():
        k = _parse_key(key, where)
        if len(tuple(val)) != 2:
            raise ConfigError(f"need two cutoffs (r_on, r_off) for {k[0]}-{k[1]}",
                              where=where, fix=_CUTOFF_FIX)
        out[k] = _check_cutoffs(*val, where=f"{where} {k[0]}-{k[1]}")
    return out


class BondCriteria:
    """Element-pair bond cutoffs ``(r_on, r_off)`` in Å, with hysteresis.

    Parameters
    ----------
    overrides
        ``{"C-C": (1.8, 2.0)}`` or ``{("C", "C"): (1.8, 2.0)}``: the user's values; win over all.
    on_factor, off_factor
        The radius rule for pairs in neither: ``r = factor * (r_cov,a + r_cov,b)``.
    table
        The caller's documented cutoffs for the pairs of its chemistry (same form as
        ``overrides``), used before the radius rule; default none.
    where
        Name used in error messages (e.g. the option the values came from).

    Raises
    ------
    ConfigError
        Unknown element, non-positive value or ``r_on >= r_off``.
    """

    def __init__(self, overrides: Mapping[str | tuple[str, str], Sequence[float]] | None = None,
                 *, on_factor: float = 1.20, off_factor: float = 1.45,
                 table: Mapping[str | tuple[str, str], Sequence[float]] | None = None,
                 where: str = "bond criteria"):
        _check_cutoffs(on_factor, off_factor, f"{where} (on_factor, off_factor)")
        self.on_factor = float(on_factor)
        self.off_factor = float(off_factor)
        self.table = _pair_table(table, where)
        self.overrides = _pair_table(overrides, where)
        self._table = {**self.table, **self.overrides}

    def cutoffs(self, a: str, b: str) -> tuple[float, float]:
        """Return ``(r_on, r_off)`` in Å for elements ``a`` and ``b`` (order does not matter)."""
        k = _pair(a, b)
        if k in self._table:
            return self._table[k]
        for s in k:
            _check_element(s, "bond criteria")
        rsum = covalent_radii[atomic_numbers[a]] + covalent_radii[atomic_numbers[b]]
        return self.on_factor * rsum, self.off_factor * rsum

    def max_off(self, elements: Iterable[str], others: Iterable[str] | None = None) -> float:
        """Largest ``r_off`` (Å) among pairs within ``elements`` (or ``elements`` x ``others``)."""
        a = sorted(set(elements))
        b = a if others is None else sorted(set(others))
        vals = [self.cutoffs(x, y)[1] for x in a for y in b]
        return max(vals) if vals else 0.0

    def pair_arrays(self, sym_i: Sequence[str], sym_j: Sequence[str]
                    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-pair ``r_on`` and ``r_off`` arrays (Å) for element lists of equal length."""
        si, sj = list(sym_i), list(sym_j)
        if len(si) != len(sj):
            raise ValueError("element lists differ in length")
        elems = sorted(set(si) | set(sj))
        code = {e: k for k, e in enumerate(elems)}
        on_t, off_t = self.pair_tables(elems)
        a = np.fromiter((code[e] for e in si), dtype=np.int64, count=len(si))
        b = np.fromiter((code[e] for e in sj), dtype=np.int64, count=len(sj))
        return on_t[a, b], off_t[a, b]

    def atom_pair_arrays(self, symbols: Sequence[str], i: np.ndarray, j: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray]:
        """Per-pair ``r_on``, ``r_off`` (Å) for atom index arrays ``i``, ``j`` of one structure."""
        elems = sorted(set(symbols))
        code = {e: k for k, e in enumerate(elems)}
        codes = np.array([code[e] for e in symbols], dtype=np.int64)
        on_t, off_t = self.pair_tables(elems)
        return on_t[codes[i], codes[j]], off_t[codes[i], codes[j]]

    def pair_tables(self, elements: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Return the ``(r_on, r_off)`` matrices (Å) indexed like ``elements``."""
        n = len(elements)
        on_t, off_t = np.zeros((n, n)), np.zeros((n, n))
        for x in range(n):
            for y in range(n):
                on_t[x, y], off_t[x, y] = self.cutoffs(elements[x], elements[y])
        return on_t, off_t

    def __repr__(self) -> str:
        return (f"BondCriteria(overrides={self.overrides!r}, on_factor={self.on_factor}, "
                f"off_factor={self.off_factor}, table={self.table!r})")


def parse_cutoff_overrides(items: Iterable[str], where: str = "--cutoff"
                           ) -> dict[tuple[str, str], tuple[float, float]]:
    """Read ``["C-C=1.8,2.0", "O-H=1.2,1.45"]`` into ``{("C", "C"): (1.8, 2.0), ...}`` (Å)."""
    out: dict[tuple[str, str], tuple[float, float]] = {}
    for item in items:
        text = item.strip()
        if "=" not in text:
            raise ConfigError(f"cannot read cutoff {item!r}", where=where,
                              fix="write PAIR=R_ON,R_OFF in Å, e.g. C-C=1.8,2.2")
        key, _, vals = text.partition("=")
        pair = _parse_key(key, f"{where} {item}")
        try:
            nums = [float(v) for v in vals.split(",")]
        except ValueError:
            nums = []
        if len(nums) != 2:
            raise ConfigError(f"cannot read cutoff {item!r}", where=where,
                              fix="write PAIR=R_ON,R_OFF in Å, e.g. C-C=1.8,2.2")
        out[pair] = _check_cutoffs(nums[0], nums[1], f"{where} {item}")
    return out


# ---------------------------------------------------------------------------------------------
# distances


def _frame_cell(atoms: Atoms) -> np.ndarray:
    from ase.geometry import complete_cell

    cell = np.asarray(atoms.cell.array, dtype=float)
    if abs(np.linalg.det(cell)) < 1e-9:
        cell = complete_cell(cell)
    return cell


def _widths(cell: np.ndarray) -> np.ndarray:
    """Distances between opposite faces of the cell (Å), one per lattice vector."""
    vol = abs(np.linalg.det(cell))
    return np.array([vol / np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3]))
                     for k in range(3)])


def _wrapped_norm(diff: np.ndarray, cell: np.ndarray, inv: np.ndarray, pbc: np.ndarray
                  ) -> np.ndarray:
    """|d| of the image with fractional components in [-1/2, 1/2] along periodic directions."""
    if pbc.any():
        frac = diff @ inv
        frac[..., pbc] -= np.round(frac[..., pbc])
        diff = frac @ cell
    return np.sqrt(np.einsum("...k,...k->...", diff, diff))


def close_contacts(frames: Sequence[Atoms], group_a: Sequence[int],
                   group_b: Sequence[int] | None = None, r_max: float = 3.0,
                   skin: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All atom pairs closer than ``r_max`` (Å, minimum image) in every frame.

    Parameters
    ----------
    frames
        Structures with the same atoms in the same order.
    group_a, group_b
        Atom indices. Without ``group_b``: pairs ``i < j`` within ``group_a``; with it: pairs
        ``(i in a, j in b)``.
    r_max
        Distance cutoff in Å.
    skin
        Verlet skin (Å): all pairs are measured in a reference frame, and only those within
        ``r_max + 2 skin`` are followed until an atom has moved more than ``skin`` (or the
        cell changes); the result is exact, the skin only changes the speed.

    Returns
    -------
    frame, i, j, d
        Arrays of equal length: frame index, atom indices and distance (Å), ``d <= r_max``.
        Periodic directions (``atoms.pbc``) use the minimum image, so a bond across the cell
        boundary is found whatever the wrapping. The image with fractional separation in
        [-1/2, 1/2] is the minimum image for every pair closer than half the narrowest cell
        width; cells narrower than ``2 r_max`` use ASE's neighbour list instead.
    """
    ga = np.asarray(group_a, dtype=np.int64)
    if group_b is None:
        iu, ju = np.triu_indices(len(ga), k=1)
        pi, pj = ga[iu], ga[ju]
    else:
        gb = np.asarray(group_b, dtype=np.int64)
        pi, pj = np.repeat(ga, len(gb)), np.tile(gb, len(ga))
    out: list[tuple[np.ndarray, ...]] = []
    n_frames = len(frames)
    if len(pi) == 0 or n_frames == 0:
        e = np.zeros(0, dtype=np.int64)
        return e, e.copy(), e.copy(), np.zeros(0)
    moving = np.unique(np.concatenate([pi, pj]))
    k = 0
    while k < n_frames:
        ref = frames[k]
        pbc = np.asarray(ref.pbc, dtype=bool)
        raw_cell = np.asarray(ref.cell.array, dtype=float)
        cell = _frame_cell(ref) if pbc.any() else np.eye(3)
        half_width = 0.5 * float(_widths(cell)[pbc].min()) if pbc.any() else np.inf
        if half_width <= r_max:
            f, i, j, d = _contacts_small_cell(ref, pi, pj, r_max)
            out.append((f + k, i, j, d))
            k += 1
            continue
        inv = np.linalg.inv(cell)
        sk = min(skin, 0.999 * 0.5 * (half_width - r_max))
        ref_pos = np.asarray(ref.positions, dtype=float)
        d_ref = _wrapped_norm(ref_pos[pj] - ref_pos[pi], cell, inv, pbc)
        cand = np.flatnonzero(d_ref <= r_max + 2.0 * sk)
        ci, cj = pi[cand], pj[cand]
        # extend the block while no atom moved more than the skin and the cell is the same
        end = k + 1
        while end < n_frames:
            block = frames[end:min(n_frames, end + 256)]
            same = [np.array_equal(a.cell.array, raw_cell) and np.array_equal(a.pbc, pbc)
                    for a in block]
            n_same = same.index(False) if False in same else len(block)
            if n_same:
                pos = np.stack([np.asarray(a.positions[moving], dtype=float)
                                for a in block[:n_same]])
                disp = _wrapped_norm(pos - ref_pos[moving], cell, inv, pbc).max(axis=1)
                over = np.flatnonzero(disp > sk)
                n_ok = int(over[0]) if len(over) else n_same
            else:
                n_ok = 0
            end += n_ok
            if n_ok < len(block):
                break
        if len(cand):
            chunk = max(1, 2_000_000 // len(cand))
            for s in range(k, end, chunk):
                pos = np.stack([np.asarray(a.positions, dtype=float)
                                for a in frames[s:min(end, s + chunk)]])
                dist = _wrapped_norm(pos[:, cj] - pos[:, ci], cell, inv, pbc)
                cf, cp = np.nonzero(dist <= r_max)
                out.append((cf + s, ci[cp], cj[cp], dist[cf, cp]))
        k = end
    if not out:
        e = np.zeros(0, dtype=np.int64)
        return e, e.copy(), e.copy(), np.zeros(0)
    return tuple(np.concatenate([o[c] for o in out]) for c in range(4))  # type: ignore


def _contacts_small_cell(atoms: Atoms, pi: np.ndarray, pj: np.ndarray, r_max: float
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Exact minimum-image contacts for cells narrower than ``2 r_max`` (ASE neighbour list)."""
    from ase.neighborlist import neighbor_list

    ii, jj, dd = neighbor_list("ijd", atoms, r_max, self_interaction=False)
    wanted = {(int(a), int(b)) for a, b in zip(pi, pj, strict=True)}
    best: dict[tuple[int, int], float] = {}
    for a, b, d in zip(ii.tolist(), jj.tolist(), dd.tolist(), strict=True):
        if (a, b) in wanted and d < best.get((a, b), np.inf):
            best[(a, b)] = d
    keys = sorted(best)
    e = np.zeros(len(keys), dtype=np.int64)
    return (e, np.array([k[0] for k in keys], dtype=np.int64),
            np.array([k[1] for k in keys], dtype=np.int64),
            np.array([best[k] for k in keys], dtype=float))


# ---------------------------------------------------------------------------------------------
# hysteresis and persistence


def hysteresis_states(n_frames: int, frame: np.ndarray, pair: np.ndarray, d: np.ndarray,
                      r_on: np.ndarray, r_off: np.ndarray) -> np.ndarray:
    """Bonded/unbonded state per frame and pair from sparse contacts, with hysteresis.

    Parameters
    ----------
    n_frames
        Number of frames.
    frame, pair, d
        Sparse contacts: frame index, pair index (``0 .. n_pairs-1``) and distance (Å). Pairs
        absent in a frame are farther apart than their ``r_off``.
    r_on, r_off
        Per-pair cutoffs (Å), length ``n_pairs``.

    Returns
    -------
    numpy.ndarray
        Boolean ``(n_frames, n_pairs)``: on below ``r_on``, off above ``r_off``, otherwise the
        previous state; on the first frame, on below the midpoint of the two.
    """
    n_pairs = len(r_on)
    out = np.zeros((n_frames, n_pairs), dtype=bool)
    if n_pairs == 0 or n_frames == 0:
        return out
    block = max(1, 4_000_000 // n_frames)
    idx = np.arange(n_frames, dtype=np.int64)[:, None]
    for p0 in range(0, n_pairs, block):
        p1 = min(n_pairs, p0 + block)
        sel = (pair >= p0) & (pair < p1)
        f, p, dd = frame[sel], pair[sel] - p0, d[sel]
        on = np.zeros((n_frames, p1 - p0), dtype=bool)
        near = np.zeros_like(on)
        on[f, p] = dd < r_on[p0:p1][p]
        near[f, p] = dd <= r_off[p0:p1][p]
        off = ~near
        # first frame: no history, split the band at its midpoint
        first = np.zeros(p1 - p0, dtype=bool)
        m0 = f == 0
        mid = 0.5 * (r_on[p0:p1] + r_off[p0:p1])
        first[p[m0]] = dd[m0] < mid[p[m0]]
        on[0], off[0] = first, ~first
        last_on = np.maximum.accumulate(np.where(on, idx, -1), axis=0)
        last_off = np.maximum.accumulate(np.where(off, idx, -1), axis=0)
        out[:, p0:p1] = last_on > last_off
    return out


def persistence_filter_matrix(states: np.ndarray, min_frames: int) -> np.ndarray:
    """Column-wise persistence filter of a boolean ``(n_frames, n_items)`` matrix.

    A change of state is kept only if the new state lasts at least ``min_frames`` frames;
    shorter excursions are replaced by the state before them. The initial state is that of the
    first run lasting ``min_frames`` (so a flicker in the first frames is no event), and a
    change in the last ``min_frames - 1`` frames cannot be confirmed and is dropped.
    """
    states = np.asarray(states, dtype=bool)
    if min_frames < 1:
        raise ConfigError(f"min_frames must be >= 1, got {min_frames}",
                          where="persistence filter", fix="give a positive number of frames")
    if min_frames == 1 or states.shape[0] < 2:
        return states.copy()
    out = states.copy()
    n = states.shape[0]
    changing = np.flatnonzero(np.any(states[1:] != states[:-1], axis=0))
    for col in changing:
        x = states[:, col]
        cuts = np.flatnonzero(x[1:] != x[:-1]) + 1
        starts = np.concatenate([[0], cuts])
        ends = np.concatenate([cuts, [n]])
        long_runs = np.flatnonzero(ends - starts >= min_frames)
        state = bool(x[starts[long_runs[0]]]) if len(long_runs) else bool(x[0])
        y = out[:, col]
        for s, e in zip(starts, ends, strict=True):
            v = bool(x[s])
            if v != state and e - s >= min_frames:
                state = v
            y[s:e] = state
    return out


def states_to_sets(states: np.ndarray, items: Sequence[T]) -> list[frozenset[T]]:
    """Per-frame frozensets of the ``items`` whose column is True.

    Consecutive equal frames share one frozenset object, so long trajectories with rare
    changes cost little memory.
    """
    states = np.asarray(states, dtype=bool)
    n = states.shape[0]
    if n == 0:
        return []
    change = np.concatenate([[True], np.any(states[1:] != states[:-1], axis=1)])
    out: list[frozenset[T]] = []
    cur: frozenset[T] = frozenset()
    for t in range(n):
        if change[t]:
            cur = frozenset(items[k] for k in np.flatnonzero(states[t]))
        out.append(cur)
    return out


def persistence_filter(series: Sequence[frozenset[T]], min_frames: int) -> list[frozenset[T]]:
    """Remove brief changes from a per-frame series of sets (bonds, contacts...).

    Parameters
    ----------
    series
        One set per frame (e.g. the output of :func:`bond_series`).
    min_frames
        A change (an item appearing or vanishing) counts only if the new state lasts at least
        this many frames; shorter excursions are reverted. ``1`` keeps everything.

    Returns
    -------
    list of frozenset
        The filtered series (consecutive equal frames share one object).
    """
    items: dict[T, int] = {}
    prev: object = None
    for s in series:
        if s is prev:
            continue
        for x in s:
            items.setdefault(x, len(items))
        prev = s
    keys = list(items)
    mat = np.zeros((len(series), len(keys)), dtype=bool)
    for t, s in enumerate(series):
        if s:
            mat[t, [items[x] for x in s]] = True
    return states_to_sets(persistence_filter_matrix(mat, min_frames), keys)


@dataclass
class BondStates:
    """Bond states of a trajectory.

    Attributes
    ----------
    pairs
        ``(n_pairs, 2)`` atom indices ``i < j`` of every pair that was ever within ``r_off``.
    states
        ``(n_frames, n_pairs)`` booleans: bonded or not (after hysteresis).
    """

    pairs: np.ndarray
    states: np.ndarray

    def filtered(self, min_frames: int) -> BondStates:
        """Return the same bonds after :func:`persistence_filter_matrix`."""
        return BondStates(self.pairs, persistence_filter_matrix(self.states, min_frames))

    def to_sets(self) -> list[frozenset[tuple[int, int]]]:
        """Per-frame frozensets of bonded pairs ``(i, j)``, ``i < j``."""
        return states_to_sets(self.states, [(int(a), int(b)) for a, b in self.pairs])


def _check_frames(frames: Sequence[Atoms], where: str) -> None:
    if len(frames) == 0:
        raise DataError("no frames", where=where, fix="give a trajectory with at least 1 frame")
    ref = np.asarray(frames[0].numbers)
    for k, a in enumerate(frames):
        if len(a) != len(ref) or not np.array_equal(np.asarray(a.numbers), ref):
            raise DataError("atoms differ from the first frame (count or elements)",
                            where=f"{where} frame {k}",
                            fix="give a trajectory of one system with a fixed atom order")


def contact_states(frames: Sequence[Atoms], group_a: Sequence[int],
                   group_b: Sequence[int] | None, criteria: BondCriteria
                   ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, ...]]:
    """Hysteresis states of every pair (within ``group_a``, or ``a`` x ``b``) ever within r_off.

    Returns ``(pairs (P, 2), states (F, P), contacts)`` where ``contacts`` is the raw
    ``(frame, i, j, d)`` output of :func:`close_contacts`.
    """
    symbols = frames[0].get_chemical_symbols()
    ea = {symbols[i] for i in group_a}
    eb = None if group_b is None else {symbols[i] for i in group_b}
    r_max = criteria.max_off(ea, eb)
    f, i, j, d = close_contacts(frames, group_a, group_b, r_max)
    on, off = criteria.atom_pair_arrays(symbols, i, j)
    keep = d <= off
    f, i, j, d, on, off = f[keep], i[keep], j[keep], d[keep], on[keep], off[keep]
    if group_b is None:
        i, j = np.minimum(i, j), np.maximum(i, j)
    key = i * (len(symbols) + 1) + j
    ukey, first, inv = np.unique(key, return_index=True, return_inverse=True)
    pairs = np.stack([i[first], j[first]], axis=1) if len(ukey) else np.zeros((0, 2), int)
    states = hysteresis_states(len(frames), f, inv, d, on[first], off[first])
    return pairs, states, (f, i, j, d)


def bond_states(frames: Sequence[Atoms], atom_indices: Sequence[int] | None = None,
                criteria: BondCriteria | None = None, where: str = "trajectory") -> BondStates:
    """Bond states (with hysteresis) among ``atom_indices`` for every frame.

    Parameters
    ----------
    frames
        Structures with the same atoms in the same order (``pbc`` and ``cell`` are used).
    atom_indices
        Atoms that may bond (default: all).
    criteria
        Bond cutoffs (default :class:`BondCriteria()`, the covalent-radius rule).
    where
        Name of the trajectory used in error messages.
    """
    _check_frames(frames, where)
    idx = list(range(len(frames[0]))) if atom_indices is None else [int(k) for k in atom_indices]
    pairs, states, _ = contact_states(frames, idx, None, criteria or BondCriteria())
    return BondStates(pairs, states)


def bond_series(frames: Sequence[Atoms], atom_indices: Sequence[int] | None = None,
                criteria: BondCriteria | None = None) -> list[frozenset[tuple[int, int]]]:
    """Per-frame bond sets ``{(i, j), ...}`` (``i < j``, original atom indices) with hysteresis.

    Distances are minimum-image distances (a bond across the periodic boundary is a bond), and
    the result depends only on geometry, not on atom order. See :func:`bond_states` for the
    parameters; apply :func:`persistence_filter` to remove brief recrossings.
    """
    return bond_states(frames, atom_indices, criteria).to_sets()


def bond_retention(frames: Sequence[Atoms], atom_indices: Sequence[int] | None = None,
                   criteria: BondCriteria | None = None, where: str = "trajectory") -> dict:
    """How many of the first frame's bonds a trajectory keeps: a check that molecules held.

    A potential that lets molecules fall apart (or fuse) in MD gives transport and solvation
    numbers of some other liquid; this says whether it did and when it started.

    Parameters
    ----------
    frames, atom_indices, criteria, where
        As :func:`bond_states` (hysteresis applies: a bond is broken once past ``r_off``).

    Returns
    -------
    dict
        ``n_bonds`` (in the first frame), ``kept_final`` and ``kept_min`` (fractions of those
        bonds present in the last frame / in the worst frame), ``first_break_frame`` (first
        frame missing one of them, None if none), ``new_bonds_final`` (bonds of the last frame
        that the first did not have).
    """
    st = bond_states(frames, atom_indices, criteria, where)
    start = st.states[0]
    n = int(start.sum())
    if n == 0:
        return {"n_bonds": 0, "kept_final": None, "kept_min": None, "first_break_frame": None,
                "new_bonds_final": int(st.states[-1].sum())}
    kept = st.states[:, start].sum(axis=1) / n
    broken = np.nonzero(kept < 1.0)[0]
    return {"n_bonds": n, "kept_final": float(kept[-1]), "kept_min": float(kept.min()),
            "first_break_frame": int(broken[0]) if len(broken) else None,
            "new_bonds_final": int((st.states[-1] & ~start).sum())}
