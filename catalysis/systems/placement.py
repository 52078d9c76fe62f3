"""Putting adsorbates on a slab.

:func:`place` puts one on a chosen site; :func:`place_many` places several at random,
non-overlapping, by count or coverage.

Placed atoms get tag 0 and their own ``adsorbate_id``; ``info["adsorbates"]`` lists the
species placed ("CO+CHO"). The helpers here (``_molecule_at``, ``_add``...) are shared
with :mod:`~catalysis.systems.water` and :mod:`~catalysis.systems.library`, and ``_rotz``
with :mod:`~catalysis.systems.sampling`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from ase import Atoms

from catalysis.systems.adsorbates import ADSORBATES, Adsorbate, _adsorbate
from catalysis.systems.slabs import _substrate_mask
from catalysis.systems.surface import SITE_KINDS, _Surface
from common.errors import ConfigError


def _rotz(p: np.ndarray, deg: float) -> np.ndarray:
    t = math.radians(deg)
    c, s = math.cos(t), math.sin(t)
    return p @ np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]).T


def _resolve_site(surf: _Surface, site: Any, entry: Adsorbate) -> tuple[str | None, np.ndarray]:
    """(kind or None, lateral xy) of a site given by kind, (kind, i), flat index or (x, y)."""
    all_sites = surf.sites
    if site is None:
        site = entry.sites[0]
    if isinstance(site, str):
        if site not in SITE_KINDS:
            raise ConfigError(f"unknown site {site!r}", where="place site",
                              fix=f"use one of {', '.join(SITE_KINDS)}, (kind, i), an index "
                                  "or (x, y)")
        cand = all_sites[site]
        if len(cand) == 0:
            raise ConfigError(f"the slab has no {site} sites", where="place site",
                              fix="use another site kind")
        centre = 0.5 * (surf.B[0] + surf.B[1])
        d = np.linalg.norm(cand[:, :2] - centre, axis=1)
        return site, cand[int(np.argmin(np.round(d, 6))), :2]
    if (isinstance(site, tuple) and len(site) == 2 and isinstance(site[0], str)):
        kind, i = site
        if kind not in SITE_KINDS:
            raise ConfigError(f"unknown site kind {kind!r}", where="place site",
                              fix=f"use one of {', '.join(SITE_KINDS)}")
        cand = all_sites[kind]
        if not -len(cand) <= int(i) < len(cand):
            raise ConfigError(f"{kind} site {i} does not exist ({len(cand)} {kind} sites)",
                              where="place site", fix=f"give 0 <= i < {len(cand)}")
        return kind, cand[int(i), :2]
    if isinstance(site, int | np.integer):
        flat = [(k, p) for k in SITE_KINDS for p in all_sites[k]]
        if not -len(flat) <= int(site) < len(flat):
            raise ConfigError(f"site index {site} out of range ({len(flat)} sites)",
                              where="place site",
                              fix=f"give 0 <= index < {len(flat)} (top, bridge, fcc, hcp order)")
        kind, p = flat[int(site)]
        return kind, p[:2]
    xy = np.asarray(site, dtype=float).ravel()
    if xy.size not in (2, 3) or not np.all(np.isfinite(xy)):
        raise ConfigError(f"site={site!r} is not a site", where="place site",
                          fix=f"use one of {', '.join(SITE_KINDS)}, (kind, i), an index or "
                              "(x, y) in Å")
    return None, xy[:2]


def _molecule_at(surf: _Surface, entry: Adsorbate, xy: np.ndarray, height_A: float | None,
                 rotation_deg: float) -> np.ndarray:
    """Positions (n, 3) of ``entry`` with its binding centre over ``xy``."""
    p = np.array(entry.positions, dtype=float)
    base = 0.0
    if entry.bidentate:
        # align the binding pair with the Cu-Cu pair nearest the site
        _, vec = surf.nearest_top(xy, 2)
        axis = vec[1] - vec[0]
        if np.linalg.norm(axis) > 1e-6:
            base = math.degrees(math.atan2(axis[1], axis[0]))
    p = _rotz(p, base + float(rotation_deg))
    p[:, :2] += np.asarray(xy, float)[None, :2]
    if height_A is None:
        hs = []
        for b in entry.binding:
            r, _ = surf.nearest_top(p[b, :2], 1)
            hs.append(math.sqrt(max(entry.metal_bond_A**2 - float(r[0]) ** 2, 0.7**2)))
        height_A = float(np.mean(hs))
    p[:, 2] += surf.z_top + float(height_A)
    return p


def _add(slab: Atoms, entry: Adsorbate, pos: np.ndarray) -> Atoms:
    out = slab.copy()
    n = len(out)
    if "adsorbate_id" not in out.arrays:
        out.new_array("adsorbate_id", np.full(n, -1, dtype=int))
    ids = out.arrays["adsorbate_id"]
    new_id = int(ids.max()) + 1 if n else 0
    mol = Atoms(entry.symbols, positions=pos, tags=np.zeros(len(pos), dtype=int))
    mol.new_array("adsorbate_id", np.full(len(pos), max(new_id, 0), dtype=int))
    out.extend(mol)
    return out


def _check_room(surf: _Surface, atoms_pos: np.ndarray, where: str) -> None:
    span = float(atoms_pos[:, 2].max() - atoms_pos[:, 2].min())
    gap = surf.c_z - span
    if gap < 4.0:
        raise ConfigError(f"only {gap:.1f} Å of vacuum left between periodic images",
                          where=where, fix="build the slab with a larger vacuum_A (e.g. 10)")


def _names(atoms: Atoms, name: str) -> str:
    prev = str(atoms.info.get("adsorbates", "") or "")
    return f"{prev}+{name}" if prev else name


def place(
    slab: Atoms,
    species: str | Adsorbate,
    site: str | int | tuple[str, int] | Sequence[float] | None = None,
    height_A: float | None = None,
    rotation_deg: float = 0.0,
    *,
    min_distance_A: float = 1.0,
) -> Atoms:
    """Return a copy of ``slab`` with one adsorbate on a site.

    Parameters
    ----------
    slab : ase.Atoms
        A slab (e.g. :func:`cu111_slab`), possibly with adsorbates already on it.
    species : str or Adsorbate
        A key of :data:`ADSORBATES` or an :class:`Adsorbate`.
    site : str, int, (str, int), (x, y) or None
        ``"top"``, ``"bridge"``, ``"fcc"``, ``"hcp"`` (the site of that kind nearest the cell
        centre), ``(kind, i)`` (the i-th site of that kind in :func:`sites`), an int (index in
        the top, bridge, fcc, hcp concatenation of :func:`sites`), or lateral (x, y) in Å.
        ``None``: the species' first preferred site.
    height_A : float or None
        Height of the binding atom(s) above the mean top-layer plane, Å. ``None``: from the
        species' metal bond and the lateral distance to the nearest surface atom,
        ``sqrt(d_M-X**2 - r**2)`` (e.g. CO on top 1.95 Å, H in an fcc hollow ~0.95 Å).
    rotation_deg : float
        Rotation about the surface normal through the binding centre, degrees. Bidentate
        species are first aligned with the surface-atom pair nearest the site.
    min_distance_A : float
        Closest allowed approach of the new atoms to any atom already there, Å.

    Returns
    -------
    ase.Atoms
        The slab (constraints kept) plus the adsorbate (tag 0, its own ``adsorbate_id``).
    """
    entry = _adsorbate(species)
    surf = _Surface(slab)
    _, xy = _resolve_site(surf, site, entry)
    if height_A is not None and not np.isfinite(height_A):
        raise ConfigError(f"height_A={height_A} is not finite", where="place height_A",
                          fix="give a height in Å above the top layer, or None")
    pos = _molecule_at(surf, entry, xy, height_A, rotation_deg)
    if len(slab):
        d = surf.distances(pos, slab.positions)
        i, j = np.unravel_index(np.argmin(d), d.shape)
        if d[i, j] < min_distance_A:
            raise ConfigError(
                f"{entry.name} atom {i} ({entry.symbols[i]}) would be {d[i, j]:.2f} Å from atom "
                f"{j} ({slab[j].symbol})", where=f"place {entry.name} at {site!r}",
                fix="choose another site, raise height_A, or lower min_distance_A")
    out = _add(slab, entry, pos)
    _check_room(surf, out.positions, f"place {entry.name}")
    out.info["adsorbates"] = _names(slab, entry.name)
    return out


def _counts(species: Any, coverage_ML: float | None, n_surface: int) -> dict[str, int]:
    if isinstance(species, str | Adsorbate):
        species = [species]
    if isinstance(species, Mapping):
        weights = {(_adsorbate(k).name): float(v) for k, v in species.items()}
    else:
        weights = {_adsorbate(k).name: 1.0 for k in species}
        if coverage_ML is None:
            raise ConfigError("a species list without counts needs coverage_ML",
                              where="place_many", fix="give {species: count} or coverage_ML")
    if any(v < 0 or not math.isfinite(v) for v in weights.values()) or not weights:
        raise ConfigError(f"counts {weights} must be >= 0", where="place_many species",
                          fix="give non-negative counts, e.g. {'CO': 2, 'H': 1}")
    if coverage_ML is None:
        if any(v != int(v) for v in weights.values()):
            raise ConfigError("counts must be integers", where="place_many species",
                              fix="give whole numbers, or relative weights with coverage_ML")
        counts = {k: int(v) for k, v in weights.items()}
    else:
        if not (math.isfinite(coverage_ML) and coverage_ML > 0):
            raise ConfigError(f"coverage_ML={coverage_ML} must be > 0",
                              where="place_many coverage_ML",
                              fix="give adsorbates per surface atom, e.g. 0.25")
        total = int(round(coverage_ML * n_surface))
        if total < 1:
            raise ConfigError(
                f"coverage_ML={coverage_ML} on {n_surface} surface atoms is < 1 adsorbate",
                where="place_many coverage_ML",
                fix=f"use coverage_ML >= {0.5 / n_surface:.3g} or a larger slab")
        wsum = sum(weights.values())
        if wsum <= 0:
            raise ConfigError("all weights are 0", where="place_many species",
                              fix="give at least one positive weight")
        raw = {k: total * v / wsum for k, v in weights.items()}
        counts = {k: int(math.floor(v)) for k, v in raw.items()}
        rest = total - sum(counts.values())
        for k in sorted(raw, key=lambda k: counts[k] - raw[k])[:rest]:
            counts[k] += 1
    if sum(counts.values()) < 1:
        raise ConfigError("nothing to place (all counts are 0)", where="place_many species",
                          fix="give at least one adsorbate")
    return counts


def place_many(
    slab: Atoms,
    species: Mapping[str, float] | Sequence[str] | str,
    coverage_ML: float | None = None,
    min_separation_A: float = 2.5,
    seed: int = 0,
    *,
    max_tries: int = 50,
) -> Atoms:
    """Random non-overlapping adsorbates on their preferred sites.

    Parameters
    ----------
    slab : ase.Atoms
        The slab (may already carry adsorbates; they are kept and avoided).
    species : {name: count}, list of names or a name
        How many of each; with ``coverage_ML`` the values are relative weights.
    coverage_ML : float or None
        Total coverage in monolayers (adsorbates per top-layer atom); the number placed is
        ``round(coverage_ML * n_surface)``, split by the weights (largest remainder).
    min_separation_A : float
        Closest allowed approach between atoms of different adsorbates, Å.
    seed : int
        Random seed (site order and rotations); same seed -> same structure.
    max_tries : int
        Random sequential-adsorption restarts before giving up.

    Raises
    ------
    ConfigError
        Not enough sites for the request (fix: fewer adsorbates, lower ``min_separation_A``
        or a larger slab).
    """
    surf = _Surface(slab)
    n_surf = len(surf.top)
    counts = _counts(species, coverage_ML, n_surf)
    if not min_separation_A > 0:
        raise ConfigError(f"min_separation_A={min_separation_A} must be > 0",
                          where="place_many min_separation_A", fix="use about 2.5 Å")
    entries = [_adsorbate(k) for k, c in counts.items() for _ in range(c)]
    entries.sort(key=lambda e: -len(e.symbols))
    for name, c in counts.items():
        kinds = ADSORBATES[name].sites
        avail = sum(len(surf.sites[k]) for k in kinds)
        if c > avail:
            raise ConfigError(
                f"{c} {name} requested but the slab has only {avail} {'/'.join(kinds)} sites",
                where="place_many", fix="place fewer (lower coverage_ML), or use a larger slab")
    rng = np.random.default_rng(seed)
    existing = slab.positions[~_substrate_mask(slab)] if len(slab) else np.zeros((0, 3))
    metal = slab.positions[_substrate_mask(slab)]
    best = 0
    for _ in range(max(1, int(max_tries))):
        placed: list[tuple[Adsorbate, np.ndarray]] = []
        occupied = existing.copy()
        ok = True
        for entry in entries:
            cand = np.concatenate([surf.sites[k][:, :2] for k in entry.sites])
            for ci in rng.permutation(len(cand)):
                pos = _molecule_at(surf, entry, cand[ci], None, float(rng.uniform(0, 360)))
                if len(occupied) and surf.distances(pos, occupied).min() < min_separation_A:
                    continue
                if len(metal) and surf.distances(pos, metal).min() < 1.0:
                    continue
                placed.append((entry, pos))
                occupied = np.vstack([occupied, pos])
                break
            else:
                ok = False
                break
        best = max(best, len(placed))
        if ok:
            out = slab
            for entry, pos in placed:
                out = _add(out, entry, pos)
                out.info["adsorbates"] = _names(out, entry.name)
            _check_room(surf, out.positions, "place_many")
            out.info["coverage_ML"] = len(placed) / n_surf
            return out
    want = ", ".join(f"{c} {k}" for k, c in counts.items())
    raise ConfigError(
        f"could not place {want} with min_separation_A={min_separation_A} "
        f"(best try: {best} of {len(entries)}, {max_tries} tries)", where="place_many",
        fix="lower the coverage or min_separation_A, or use a larger slab")
