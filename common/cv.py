"""Collective variables written as text, one syntax for every command that takes one.

``distance:I:J`` is the distance between the centres of mass of two atom groups; each side is a
0-based atom index, a comma-separated list, or inclusive ranges (``distance:0-9,12:15``).
:func:`parse_cv` checks the syntax and the indices against the system's size (one-line
:class:`~common.errors.ConfigError`); :func:`parse_range` reads a ``LO,HI`` interval of the CV
(basins, states, grids); :func:`cv_values` evaluates the CV on positions (one frame or a batch)
with minimum-image distances when a cell is given. Units are the caller's (nm in OpenMM, Å in
ASE): the parser only handles indices and numbers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from common.errors import ConfigError

__all__ = ["CV_KINDS", "CVSpec", "cv_values", "parse_cv", "parse_range"]

CV_KINDS = ("distance",)
_GROUP_RE = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")


@dataclass(frozen=True)
class CVSpec:
    """A parsed collective variable: its kind and the 0-based atom indices of each group."""

    kind: str
    groups: tuple[tuple[int, ...], ...]
    text: str = ""


def _parse_group(text: str, spec: str, where: str) -> tuple[int, ...]:
    if not _GROUP_RE.match(text):
        raise ConfigError(f"bad atom group {text!r} in CV {spec!r}", where=where,
                          fix="write each side as 0-based indices: 5, 0,1,2 or 0-9,12")
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        first, last = int(lo), int(hi or lo)
        if last < first:
            raise ConfigError(f"range {part!r} runs backwards in CV {spec!r}", where=where,
                              fix=f"write it as {last}-{first}")
        out.extend(range(first, last + 1))
    return tuple(dict.fromkeys(out))


def parse_cv(spec: str, n_atoms: int, where: str = "cv_spec") -> CVSpec:
    """Parse ``distance:I:J`` (0-based indices, comma lists or inclusive ranges per side).

    Raises :class:`ConfigError` (one line, naming ``where``) for bad syntax, an unknown CV kind,
    an index outside ``0..n_atoms-1`` or groups that share atoms.
    """
    parts = str(spec).strip().split(":")
    if len(parts) != 3 or not all(parts):
        raise ConfigError(f"bad CV syntax {spec!r}", where=where,
                          fix="write distance:I:J, e.g. distance:0,1,2:15 (0-based indices)")
    kind = parts[0].lower()
    if kind not in CV_KINDS:
        raise ConfigError(f"unknown CV kind {parts[0]!r} in {spec!r}", where=where,
                          fix=f"use one of: {', '.join(CV_KINDS)}")
    groups = tuple(_parse_group(p.replace(" ", ""), spec, where) for p in parts[1:])
    for g in groups:
        bad = [i for i in g if i >= n_atoms]
        if bad:
            raise ConfigError(f"atom index {bad[0]} in CV {spec!r} is out of range for a "
                              f"system of {n_atoms} atoms", where=where,
                              fix=f"use 0-based indices 0..{n_atoms - 1}")
    shared = sorted(set(groups[0]) & set(groups[1]))
    if shared:
        raise ConfigError(f"atom {shared[0]} is in both groups of CV {spec!r}", where=where,
                          fix="give the two groups disjoint atoms")
    return CVSpec(kind, groups, str(spec))


def parse_range(text: str | Sequence[float], name: str, unit: str) -> tuple[float, float]:
    """Parse ``"LO,HI"`` or a pair into ``(lo, hi)`` with ``0 <= lo < hi``.

    ``name`` is the parameter named in the error, ``unit`` the unit said in it (``"nm"``, ``"A"``).
    """
    try:
        vals = [float(v) for v in (text.split(",") if isinstance(text, str) else text)]
    except (TypeError, ValueError):
        vals = []
    if len(vals) != 2 or not all(math.isfinite(v) for v in vals):
        raise ConfigError(f"bad range {text!r}", where=name,
                          fix=f"give LO,HI in {unit}, e.g. 0.2,0.5")
    lo, hi = vals
    if not 0.0 <= lo < hi:
        raise ConfigError(f"range {lo:g},{hi:g} {unit} is empty or negative", where=name,
                          fix=f"give 0 <= LO < HI ({unit})")
    return lo, hi


def cv_values(cv: CVSpec, positions: np.ndarray, masses: np.ndarray,
              cell: np.ndarray | None = None) -> np.ndarray:
    """Evaluate the CV on ``positions``.

    Positions of shape (n_atoms, 3) give a scalar array, (n_frames, n_atoms, 3) give
    (n_frames,). ``cell`` (3x3, rows are vectors) applies the minimum image to the vector between
    the two centres of mass (each group's centre is taken as given, so keep a group whole).
    """
    pos = np.asarray(positions, dtype=float)
    m = np.asarray(masses, dtype=float)
    single = pos.ndim == 2
    pos = pos[None] if single else pos
    centres = []
    for g in cv.groups:
        idx = list(g)
        w = m[idx] / m[idx].sum()
        centres.append(np.einsum("fai,a->fi", pos[:, idx], w))
    d = centres[1] - centres[0]
    if cell is not None:
        c = np.asarray(cell, dtype=float)
        frac = d @ np.linalg.inv(c)
        d = (frac - np.round(frac)) @ c
    out = np.linalg.norm(d, axis=-1)
    return out[0] if single else out
