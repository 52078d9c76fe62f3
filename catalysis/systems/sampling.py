"""Perturbed training configurations: rattled or rigidly displaced copies of base structures.

:func:`sample_configurations` makes them (unlabelled).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
from ase import Atoms
from ase.constraints import FixAtoms

from catalysis.systems.placement import _rotz
from common.errors import ConfigError, DataError


def _fixed_mask(atoms: Atoms) -> np.ndarray:
    mask = np.zeros(len(atoms), dtype=bool)
    for c in atoms.constraints:
        if isinstance(c, FixAtoms):
            mask[c.index] = True
    return mask


def _min_pair_distance(atoms: Atoms) -> float:
    if len(atoms) < 2:
        return np.inf
    d = atoms.get_all_distances(mic=bool(atoms.pbc.any()))
    d[np.arange(len(atoms)), np.arange(len(atoms))] = np.inf
    return float(d.min())


def _as_frames(base_structures: Atoms | Iterable[Atoms], where: str) -> list[Atoms]:
    frames = [base_structures] if isinstance(base_structures, Atoms) else list(base_structures)
    if not frames:
        raise ConfigError("no structures given", where=where,
                          fix="pass an ase.Atoms or a non-empty list of them")
    for i, a in enumerate(frames):
        if not isinstance(a, Atoms):
            raise ConfigError(f"item {i} is a {type(a).__name__}, not an ase.Atoms",
                              where=where, fix="pass ase.Atoms objects")
    return frames


def sample_configurations(
    base_structures: Atoms | Iterable[Atoms],
    n: int,
    rattle_A: tuple[float, float] = (0.02, 0.15),
    seed: int = 0,
    strategy: str = "rattle",
    *,
    min_distance_A: float = 0.7,
) -> list[Atoms]:
    """Make ``n`` perturbed copies of the base structures (cycled in order), unlabelled.

    Parameters
    ----------
    rattle_A : (low, high)
        Per frame, a Gaussian width sigma is drawn uniformly in [low, high] Å and every free
        atom moves by N(0, sigma) per Cartesian component; FixAtoms atoms stay put.
    strategy : {"rattle", "displace"}
        ``"rattle"``: as above. ``"displace"``: each adsorbate (``adsorbate_id`` >= 0) is first
        moved rigidly -- up to 1 Å laterally and a random rotation about the normal through
        its first (binding) atom -- then the rattle; samples site hopping and orientations.
    min_distance_A : float
        Frames with two atoms closer than this are redrawn (up to 20 times).

    Returns
    -------
    list of ase.Atoms
        Copies without calculators; ``info`` gets ``source_index``, ``rattle_A`` (the sigma)
        and ``sample`` (the strategy).
    """
    frames = _as_frames(base_structures, "sample_configurations")
    if int(n) < 1:
        raise ConfigError(f"n={n} must be >= 1", where="sample_configurations n",
                          fix="ask for at least one configuration")
    lo, hi = (float(x) for x in rattle_A)
    if not 0 <= lo <= hi:
        raise ConfigError(f"rattle_A={rattle_A} is not 0 <= low <= high",
                          where="sample_configurations rattle_A", fix="use e.g. (0.02, 0.15) Å")
    if strategy not in ("rattle", "displace"):
        raise ConfigError(f"unknown strategy {strategy!r}",
                          where="sample_configurations strategy", fix="use rattle or displace")
    rng = np.random.default_rng(seed)
    out = []
    for k in range(int(n)):
        src = k % len(frames)
        base = frames[src]
        if strategy == "displace" and "adsorbate_id" not in base.arrays:
            raise ConfigError("strategy 'displace' needs the adsorbate_id array",
                              where=f"sample_configurations structure {src}",
                              fix="build structures with place/place_many, or use 'rattle'")
        free = ~_fixed_mask(base)
        for _attempt in range(20):
            a = base.copy()
            a.calc = None
            pos = a.positions.copy()
            if strategy == "displace":
                ids = a.arrays["adsorbate_id"]
                for aid in np.unique(ids[ids >= 0]):
                    sel = np.flatnonzero(ids == aid)
                    pivot = pos[sel[0]].copy()
                    rel = _rotz(pos[sel] - pivot, float(rng.uniform(0, 360)))
                    r, t = 1.0 * math.sqrt(rng.uniform()), rng.uniform(0, 2 * math.pi)
                    pos[sel] = pivot + rel + np.array([r * math.cos(t), r * math.sin(t), 0.0])
            sigma = float(rng.uniform(lo, hi))
            pos[free] += rng.normal(0.0, sigma, size=(int(free.sum()), 3))
            a.positions = pos
            if _min_pair_distance(a) >= min_distance_A:
                break
        else:
            raise DataError(f"20 draws all put atoms closer than {min_distance_A} Å",
                            where=f"sample_configurations structure {src}",
                            fix="lower rattle_A, or check the base structure for overlaps")
        a.info.update(source_index=src, rattle_A=sigma, sample=strategy)
        out.append(a)
    return out
