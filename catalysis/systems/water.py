"""A random water layer on a slab, over the free surface and the adsorbates.

It is built by :func:`water_layer`.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from catalysis.systems.adsorbates import ADSORBATES
from catalysis.systems.placement import _add, _check_room, _molecule_at
from catalysis.systems.slabs import _substrate_mask
from catalysis.systems.surface import SITE_KINDS, _Surface
from common.errors import ConfigError


def water_layer(
    slab: Atoms,
    n_water: int | None = None,
    coverage_ML: float | None = None,
    seed: int = 0,
    *,
    min_separation_A: float = 1.6,
    min_oo_A: float = 2.5,
    max_tries: int = 50,
) -> Atoms:
    """Return a copy of ``slab`` with H2O on the free surface and above the adsorbates.

    Each water sits O-down over a site (with a little random lateral jitter and a random
    rotation): 2.3 Å above the top layer where the surface is free, or 2.3 Å above the
    highest adsorbate atom within 2.6 Å laterally, so the water forms a layer over the
    adsorbates rather than in them; where a molecule does not fit it is tried 0.9 Å higher
    (the buckled upper half of a water bilayer). A random start, not an ice structure: relax
    or equilibrate it before use.

    Parameters
    ----------
    n_water : int or None
        Number of molecules; or give ``coverage_ML`` (per top-layer atom). Neither: 0.5 ML
        (random packing rarely reaches the 2/3 ML of an ordered ice bilayer).
    min_separation_A : float
        Closest allowed approach of a water atom to any non-substrate atom, Å (1.6: an
        O···H hydrogen bond is ~1.8 Å).
    min_oo_A : float
        Closest allowed approach of a water O to any non-H adsorbate or water atom, Å.
    seed : int
        Random seed.
    """
    surf = _Surface(slab)
    n_surf = len(surf.top)
    if n_water is not None and coverage_ML is not None:
        raise ConfigError("both n_water and coverage_ML given", where="water_layer",
                          fix="give one of them")
    if n_water is None:
        cov = 0.5 if coverage_ML is None else float(coverage_ML)
        if not cov > 0:
            raise ConfigError(f"coverage_ML={coverage_ML} must be > 0",
                              where="water_layer coverage_ML", fix="use e.g. 0.67")
        n_water = max(1, int(round(cov * n_surf)))
    if int(n_water) < 1:
        raise ConfigError(f"n_water={n_water} must be >= 1", where="water_layer n_water",
                          fix="give a positive number of molecules")
    n_water = int(n_water)
    entry = ADSORBATES["H2O"]
    mask = _substrate_mask(slab)
    existing = slab.positions[~mask]
    metal = slab.positions[mask]
    cand_all = np.concatenate([surf.sites[k][:, :2] for k in SITE_KINDS])
    heavy_existing = existing[slab.numbers[~mask] > 1]
    rng = np.random.default_rng(seed)
    best = 0
    for _ in range(max(1, int(max_tries))):
        placed: list[np.ndarray] = []
        occupied, heavy = existing.copy(), heavy_existing.copy()
        for ci in rng.permutation(len(cand_all)):
            if len(placed) == n_water:
                break
            xy = cand_all[ci] + rng.uniform(-0.3, 0.3, 2)
            lift = 0.0
            if len(existing):
                near = surf.lateral(xy[None], existing[:, :2])[0] < 2.6
                if near.any():
                    lift = max(0.0, float(existing[near, 2].max()) + 2.3 - (surf.z_top + 2.3))
            for level, rot in [(lv, float(rng.uniform(0, 360))) for lv in (0.0, 0.9)
                               for _ in range(4)]:
                pos = _molecule_at(surf, entry, xy, 2.3 + lift + level, rot)
                if len(heavy) and surf.distances(pos[:1], heavy).min() < min_oo_A:
                    continue
                if len(occupied) and surf.distances(pos, occupied).min() < min_separation_A:
                    continue
                if surf.distances(pos, metal).min() < 1.8:
                    continue
                placed.append(pos)
                occupied = np.vstack([occupied, pos])
                heavy = np.vstack([heavy, pos[:1]])
                break
        best = max(best, len(placed))
        if len(placed) == n_water:
            out = slab
            for pos in placed:
                out = _add(out, entry, pos)
            out.info["n_water"] = int(slab.info.get("n_water", 0)) + n_water
            if "adsorbates" in slab.info:
                out.info["adsorbates"] = slab.info["adsorbates"]
            _check_room(surf, out.positions, "water_layer")
            return out
    raise ConfigError(
        f"could not place {n_water} H2O (best try: {best}) with min_separation_A="
        f"{min_separation_A}, min_oo_A={min_oo_A}", where="water_layer",
        fix="use fewer molecules (lower coverage_ML) or a larger slab")
