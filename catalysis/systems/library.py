"""The case study's starting structures: :func:`seed_library` (``"tiny"`` or ``"paper"``)."""

from __future__ import annotations

import numpy as np
from ase import Atoms

from catalysis.systems.adsorbates import ADSORBATES
from catalysis.systems.placement import _add, _molecule_at, _names, place
from catalysis.systems.slabs import _substrate_mask, cu111_slab
from catalysis.systems.surface import _Surface
from common.errors import ConfigError

_TINY_SINGLES = (("CO", "top"), ("H", "fcc"), ("COOH", "top"), ("CHO", "top"))
_TINY_PAIRS = (("CO", "CO"), ("CO", "CHO"))
_PAPER_PAIRS = (("CO", "CO"), ("CO", "CHO"), ("CO", "CH2O"), ("CO", "H"), ("CO2", "H"),
                ("COOH", "H"), ("CHO", "H"))


def _pair(slab: Atoms, a: str, b: str, rng: np.random.Generator, min_sep_A: float = 2.0
          ) -> Atoms:
    """Place ``a`` on its preferred site and ``b`` on the nearest preferred site that fits."""
    first = place(slab, a, ADSORBATES[a].sites[0], rotation_deg=float(rng.uniform(0, 360)))
    surf = _Surface(slab)
    ea, eb = ADSORBATES[a], ADSORBATES[b]
    ida = first.arrays["adsorbate_id"]
    pa = first.positions[ida == ida.max()]
    anchor = pa[list(ea.binding), :2].mean(axis=0)
    cand = np.concatenate([surf.sites[k][:, :2] for k in eb.sites])
    d = surf.lateral(anchor[None], cand)[0]
    order = np.lexsort((rng.random(len(cand)), np.round(d, 3)))
    angles = rng.permutation(np.arange(0.0, 360.0, 30.0))
    metal = slab.positions[_substrate_mask(slab)]
    for ci in order:
        if d[ci] < 1.0:
            continue
        best, best_sep = None, -1.0
        for ang in angles:
            pos = _molecule_at(surf, eb, cand[ci], None, float(ang))
            sep = surf.distances(pos, pa).min()
            if sep > best_sep and surf.distances(pos, metal).min() >= 1.0:
                best, best_sep = pos, sep
        if best is not None and best_sep >= min_sep_A:
            out = _add(first, eb, best)
            out.info["adsorbates"] = _names(first, b)
            return out
    raise ConfigError(f"no site for {b} next to {a}", where="seed_library",
                      fix="use a larger slab")


def seed_library(scale: str = "tiny", seed: int = 0, *, include_clean: bool = True
                 ) -> list[Atoms]:
    """Build the case study's starting structures: slab + one or two adsorbates.

    Parameters
    ----------
    scale : {"tiny", "paper"}
        ``"tiny"``: 3x3x3 Cu(111) (27 atoms, 60° cell, bottom layer fixed); the clean slab,
        CO, H, COOH, CHO and the coupling pairs CO+CO and CO+CHO (7 structures).
        ``"paper"``: the seed's 96-atom (4, 6, 4) slab, bottom 2 layers fixed; the clean slab,
        every library species (12 seed species + OCCO, OCCHO, OCCH2O) on each of its preferred
        sites, and the pairs CO+CO, CO+CHO, CO+CH2O (C-C coupling) and CO+H, CO2+H, COOH+H,
        CHO+H (hydrogenation) on neighbouring sites.
    seed : int
        Random seed (adsorbate rotations, ties between equivalent neighbouring sites).
    include_clean : bool
        Put the clean slab first (the reference for adsorption energies).

    Returns
    -------
    list of ase.Atoms
        ``info["name"]`` such as ``"CO@top"`` or ``"CO+CHO"``, ``info["scale"]``.
    """
    if scale not in ("tiny", "paper"):
        raise ConfigError(f"unknown scale {scale!r}", where="seed_library scale",
                          fix="use 'tiny' or 'paper'")
    rng = np.random.default_rng(seed)
    if scale == "tiny":
        slab = cu111_slab((3, 3, 3), fixed_layers=1, orthogonal=False)
        singles: list[tuple[str, str]] = list(_TINY_SINGLES)
        pairs = _TINY_PAIRS
    else:
        slab = cu111_slab((4, 6, 4), fixed_layers=2)
        singles = [(name, k) for name, e in ADSORBATES.items() for k in e.sites[:2]]
        pairs = _PAPER_PAIRS
    out: list[Atoms] = []
    if include_clean:
        clean = slab.copy()
        clean.info["name"] = "clean"
        out.append(clean)
    for name, kind in singles:
        a = place(slab, name, kind, rotation_deg=float(rng.uniform(0, 360)))
        a.info["name"] = f"{name}@{kind}"
        out.append(a)
    for x, y in pairs:
        a = _pair(slab, x, y, rng)
        a.info["name"] = f"{x}+{y}"
        out.append(a)
    for a in out:
        a.info["scale"] = scale
    return out
