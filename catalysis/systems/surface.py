"""The top surface of a slab and its adsorption sites.

It provides :func:`sites`, :data:`SITE_KINDS` and ``_Surface`` (lateral periodic geometry,
minimum-image distances, the site finder).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from ase import Atoms

from catalysis.systems.slabs import _layers
from common.errors import ConfigError

#: site kinds of an fcc(111) surface, in the order :func:`sites` returns them
SITE_KINDS = ("top", "bridge", "fcc", "hcp")


# sites of recently seen surfaces (placing many adsorbates on one slab finds its sites once)
_SITE_CACHE: dict[tuple, dict[str, np.ndarray]] = {}


class _Surface:
    """The top layer of a slab in the xy plane: lateral periodicity, sites, distances."""

    def __init__(self, slab: Atoms):
        cell = np.asarray(slab.cell.array, dtype=float)
        if (not (slab.pbc[0] and slab.pbc[1]) or abs(cell[0, 2]) > 1e-6
                or abs(cell[1, 2]) > 1e-6 or np.abs(cell[2, :2]).max() > 1e-6
                or cell[2, 2] <= 0):
            raise ConfigError(
                "the slab's surface is not the periodic xy plane", where="slab cell",
                fix="use a slab with cell vectors a, b in the xy plane, c along z and "
                    "pbc=(True, True, ...), as cu111_slab / ase.build.fcc111 make it")
        self.slab = slab
        self.B = cell[:2, :2]  # rows: a1, a2 (lateral)
        self.Binv = np.linalg.inv(self.B)
        self.c_z = float(cell[2, 2])
        layers = _layers(slab)
        self.top = layers[0]
        self.second = layers[1] if len(layers) > 1 else np.array([], dtype=int)
        self.z_top = float(slab.positions[self.top, 2].mean())
        self.top_xy = self.fold(slab.positions[self.top, :2])
        self._sites: dict[str, np.ndarray] | None = None
        self.nn_A = self._nn_distance()

    # -- lateral periodic geometry ----------------------------------------------------------

    def fold(self, xy: np.ndarray) -> np.ndarray:
        f = np.asarray(xy, dtype=float) @ self.Binv
        f -= np.floor(f + 1e-9)
        return f @ self.B

    def mic(self, d: np.ndarray) -> np.ndarray:
        """Shortest lateral images of displacement vectors ``d`` (..., 2)."""
        d = np.asarray(d, dtype=float)
        f = d @ self.Binv
        f -= np.round(f)
        base = f @ self.B
        best = base.copy()
        bestn = np.linalg.norm(base, axis=-1)
        for s1 in (-1, 0, 1):
            for s2 in (-1, 0, 1):
                if s1 == s2 == 0:
                    continue
                cand = base + s1 * self.B[0] + s2 * self.B[1]
                n = np.linalg.norm(cand, axis=-1)
                better = n < bestn
                best[better] = cand[better]
                bestn = np.where(better, n, bestn)
        return best

    def lateral(self, p: np.ndarray, q: np.ndarray) -> np.ndarray:
        """Lateral minimum-image distances between point sets (n, 2) and (m, 2), Å."""
        d = np.asarray(q, float)[None, :, :2] - np.asarray(p, float)[:, None, :2]
        return np.linalg.norm(self.mic(d), axis=-1)

    def distances(self, p: np.ndarray, q: np.ndarray) -> np.ndarray:
        """3-D distances (n, m) with lateral minimum image (no periodicity along z), Å."""
        p, q = np.asarray(p, float), np.asarray(q, float)
        d = q[None, :, :] - p[:, None, :]
        lat = self.mic(d[..., :2])
        return np.sqrt((lat**2).sum(-1) + d[..., 2] ** 2)

    def _nn_distance(self) -> float:
        """In-plane nearest-neighbour distance of the top layer (median over atoms), Å."""
        shortest = min(float(np.linalg.norm(s1 * self.B[0] + s2 * self.B[1]))
                       for s1 in (-1, 0, 1) for s2 in (-1, 0, 1) if s1 or s2)
        d = self.lateral(self.top_xy, self.top_xy)
        d[np.arange(len(d)), np.arange(len(d))] = shortest  # an atom's own periodic image
        return float(np.median(d.min(axis=1)))

    def neighbour_vectors(self) -> list[np.ndarray]:
        """Return, for each top-layer atom, the lateral vectors (k, 2) to its nearest neighbours.

        The neighbours are in-plane nearest neighbours, periodic images included.
        """
        cut = 1.25 * self.nn_A
        shifts = np.array([s1 * self.B[0] + s2 * self.B[1]
                           for s1 in (-1, 0, 1) for s2 in (-1, 0, 1)])
        xy = self.top_xy
        v = xy[None, :, None, :] + shifts[None, None, :, :] - xy[:, None, None, :]
        n = np.linalg.norm(v, axis=-1)
        keep = (n > 0.1) & (n < cut)
        return [v[i][keep[i]] for i in range(len(xy))]

    def _unique(self, pts: Sequence[np.ndarray] | np.ndarray, tol: float = 0.3) -> np.ndarray:
        """Points folded into the cell, periodic duplicates removed, sorted by y then x."""
        arr = self.fold(np.asarray(pts, dtype=float).reshape(-1, 2))
        if len(arr):
            d = self.lateral(arr, arr)
            keep = np.ones(len(arr), dtype=bool)
            for i in range(len(arr)):
                if keep[i]:
                    dup = d[i] < tol
                    dup[: i + 1] = False
                    keep[dup] = False
            arr = arr[keep]
        order = np.lexsort((np.round(arr[:, 0], 3), np.round(arr[:, 1], 3)))
        return arr[order]

    @property
    def sites(self) -> dict[str, np.ndarray]:
        if self._sites is None:
            second = self.slab.positions[self.second, :2]
            key = (np.round(self.top_xy, 5).tobytes(), np.round(second, 5).tobytes(),
                   np.round(self.B, 6).tobytes(), round(self.z_top, 5))
            cached = _SITE_CACHE.get(key)
            if cached is None:
                cached = self._find_sites()
                if len(_SITE_CACHE) >= 64:
                    _SITE_CACHE.pop(next(iter(_SITE_CACHE)))
                _SITE_CACHE[key] = cached
            self._sites = cached
        return self._sites

    def _find_sites(self) -> dict[str, np.ndarray]:
        nbrs = self.neighbour_vectors()
        cut = 1.25 * self.nn_A
        bridges, hollows = [], []
        for ri, vecs in zip(self.top_xy, nbrs, strict=True):
            bridges.extend(ri + 0.5 * vecs)
            pair = np.linalg.norm(vecs[:, None, :] - vecs[None, :, :], axis=-1) < cut
            a, b = np.nonzero(np.triu(pair, k=1))
            hollows.extend(ri + (vecs[a] + vecs[b]) / 3.0)
        hol = self._unique(hollows)
        fcc, hcp = hol[:0], hol[:0]
        if len(hol):
            if len(self.second) == 0:
                raise ConfigError("a one-layer slab has no fcc/hcp distinction",
                                  where="sites(slab)",
                                  fix="build the slab with at least 2 layers")
            below = self.slab.positions[self.second, :2]
            d = self.lateral(hol, below).min(axis=1)
            is_hcp = d < 0.5 * self.nn_A / math.sqrt(3.0)
            fcc, hcp = hol[~is_hcp], hol[is_hcp]
        out = {"top": self._unique(list(self.top_xy)), "bridge": self._unique(bridges),
               "fcc": fcc, "hcp": hcp}
        return {k: np.column_stack([v, np.full(len(v), self.z_top)]) for k, v in out.items()}

    def nearest_top(self, xy: np.ndarray, k: int = 2) -> tuple[np.ndarray, np.ndarray]:
        """Lateral distances and vectors from ``xy`` to the ``k`` nearest top-layer atoms."""
        d = self.mic(self.top_xy - np.asarray(xy, float)[None, :2])
        n = np.linalg.norm(d, axis=1)
        order = np.argsort(n, kind="stable")[:k]
        return n[order], d[order]


def sites(slab: Atoms) -> dict[str, np.ndarray]:
    """Every adsorption site of the slab's top layer, from its geometry.

    Top sites sit over the top-layer atoms, bridges at the midpoints of in-plane nearest
    neighbours, hollows at the centroids of nearest-neighbour triangles; a hollow with a
    second-layer atom straight below is hcp, otherwise fcc. Periodic images are folded into the
    cell and duplicates removed, so for an fcc(111) cell with N surface atoms there are N top,
    3N bridge, N fcc and N hcp sites.

    Returns
    -------
    dict
        ``{"top", "bridge", "fcc", "hcp"}`` -> (n, 3) positions in Å: x, y folded into the cell
        and z = the mean height of the top layer. Sorted by y, then x.
    """
    return {k: v.copy() for k, v in _Surface(slab).sites.items()}
