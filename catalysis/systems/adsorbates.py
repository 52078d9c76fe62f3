"""The adsorbate library.

It holds :class:`Adsorbate`, :data:`ADSORBATES`, :data:`SEED_SPECIES`, :data:`C2_SPECIES`.

Each entry's geometry is built from a Z-matrix in adsorption orientation (binding atom(s)
first, at z = 0, the rest above; a bidentate pair along x around the origin).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

from common.errors import ConfigError


@dataclass(frozen=True, eq=False)
class Adsorbate:
    """One adsorbate of the library.

    Attributes
    ----------
    name : str
        Key in :data:`ADSORBATES` (``"CO"``, ``"OCCHO"``...).
    symbols : tuple of str
        Elements, binding atom(s) first.
    positions : numpy.ndarray
        (n, 3) positions in Å in adsorption orientation: binding atom(s) at z = 0 (a bidentate
        pair along x, centred on the origin), the rest of the molecule above (z > 0).
    binding : tuple of int
        Indices of the atoms bound to the surface (one, or two for bidentate species).
    sites : tuple of str
        Preferred sites, best first (``"top"``, ``"bridge"``, ``"fcc"``, ``"hcp"``).
    metal_bond_A : float
        Binding-atom to surface-atom distance, Å, from which the default height is computed for
        any site (top: the bond itself; bridge and hollows: lower, by Pythagoras).
    note : str
        Where the geometry comes from / why the species is in the library.
    """

    name: str
    symbols: tuple[str, ...]
    positions: np.ndarray = field(repr=False)
    binding: tuple[int, ...]
    sites: tuple[str, ...]
    metal_bond_A: float
    note: str = ""

    def atoms(self) -> Atoms:
        """Return a fresh ``ase.Atoms`` of the molecule (``info["adsorbate"]`` = name)."""
        a = Atoms(self.symbols, positions=np.array(self.positions, dtype=float))
        a.info["adsorbate"] = self.name
        a.info["binding"] = ",".join(str(i) for i in self.binding)
        return a

    @property
    def formula(self) -> str:
        """Chemical formula in Hill order."""
        return Atoms(self.symbols).get_chemical_formula(mode="hill")

    @property
    def bidentate(self) -> bool:
        """Whether the molecule binds to the surface through two atoms."""
        return len(self.binding) == 2


def _zmatrix(rows: Sequence[tuple]) -> tuple[tuple[str, ...], np.ndarray]:
    """Cartesian positions from a Z-matrix with two fixed dummy atoms below the first atom.

    ``rows[0]`` is the first symbol (placed at the origin); every further row is
    ``(symbol, i_bond, r_A, i_angle, angle_deg, i_dihedral, dihedral_deg)``. Indices refer to
    earlier atoms (0, 1, ...) or to the dummies -1 = (0, 0, -1) (the surface, straight below
    atom 0) and -2 = (1, 0, -1). Standard NeRF placement.
    """
    dummies = {-1: np.array([0.0, 0.0, -1.0]), -2: np.array([1.0, 0.0, -1.0])}
    symbols = [rows[0]]
    pos = [np.zeros(3)]

    def get(i: int) -> np.ndarray:
        return dummies[i] if i < 0 else pos[i]

    for sym, ib, r, ia, theta, idh, phi in rows[1:]:
        a, b, c = get(idh), get(ia), get(ib)
        bc = (c - b) / np.linalg.norm(c - b)
        n = np.cross(b - a, bc)
        n /= np.linalg.norm(n)
        m = np.cross(n, bc)
        t, p = math.radians(theta), math.radians(phi)
        d = np.array([-r * math.cos(t), r * math.sin(t) * math.cos(p),
                      r * math.sin(t) * math.sin(p)])
        pos.append(c + d[0] * bc + d[1] * m + d[2] * n)
        symbols.append(sym)
    return tuple(symbols), np.array(pos)


def _bidentate_frame(pos: np.ndarray, binding: tuple[int, int]) -> np.ndarray:
    """Rotate/shift so the two binding atoms lie on the x axis around the origin, rest above."""
    p = pos - pos[binding[0]]
    v = p[binding[1]]
    rz = -math.atan2(v[1], v[0])
    cz, sz = math.cos(rz), math.sin(rz)
    p = p @ np.array([[cz, -sz, 0.0], [sz, cz, 0.0], [0.0, 0.0, 1.0]]).T
    v = p[binding[1]]
    ry = math.atan2(v[2], v[0])
    cy, sy = math.cos(ry), math.sin(ry)
    p = p @ np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]]).T
    p -= 0.5 * (p[binding[0]] + p[binding[1]])
    others = [i for i in range(len(p)) if i not in binding]
    if others and p[others, 2].mean() < 0:
        p[:, 1:] *= -1.0  # 180° about x
    p[list(binding), 2] = 0.0
    return p


def _h2o_phi(hoh_deg: float = 104.5, theta_deg: float = 100.0) -> float:
    """Return the azimuth, degrees, between two O-H bonds tilted ``theta_deg`` from the normal.

    Both bonds make ``theta_deg`` with the surface normal (pointing down) and ``hoh_deg`` with
    each other.
    """
    t, h = math.radians(theta_deg), math.radians(hoh_deg)
    c = (math.cos(h) - math.cos(t) ** 2) / math.sin(t) ** 2
    return math.degrees(math.acos(c))


def _entry(name: str, rows: Sequence[tuple], binding: tuple[int, ...], sites: tuple[str, ...],
           metal_bond_A: float, note: str) -> Adsorbate:
    symbols, pos = _zmatrix(rows)
    if len(binding) == 2:
        pos = _bidentate_frame(pos, (binding[0], binding[1]))
    pos = np.round(pos, 6)
    pos.setflags(write=False)
    return Adsorbate(name, symbols, pos, binding, sites, float(metal_bond_A), note)


def _library() -> dict[str, Adsorbate]:
    w = _h2o_phi()
    e = [
        _entry("CO2", ["C", ("O", 0, 1.17, -1, 90, -2, 0), ("O", 0, 1.17, 1, 180, -1, 0)],
               (0,), ("top",), 3.0,
               "reactant; linear, physisorbed flat ~3 Å above a Cu atom (C-O 1.17)"),
        _entry("CO", ["C", ("O", 0, 1.15, -1, 180, -2, 0)], (0,), ("top", "fcc", "hcp"), 1.95,
               "key C1 intermediate and C-C coupling partner; C-down, upright"),
        _entry("COOH", ["C", ("O", 0, 1.22, -1, 120, -2, 0), ("O", 0, 1.35, -1, 120, -2, 180),
                        ("H", 2, 0.97, 0, 107, 1, 0)],
               (0,), ("top", "bridge"), 1.95,
               "carboxyl, first PCET product on the CO route; C-bound, planar, syn O-H"),
        _entry("HCOO", ["O", ("C", 0, 1.27, -1, 116, -2, 0), ("O", 1, 1.27, 0, 128, -1, 0),
                        ("H", 1, 1.10, 0, 116, -1, 180)],
               (0, 2), ("bridge",), 2.0,
               "formate, first product on the HCOOH route; bidentate O,O over a Cu-Cu bridge"),
        _entry("CHO", ["C", ("O", 0, 1.20, -1, 120, -2, 0), ("H", 0, 1.11, -1, 120, -2, 180)],
               (0,), ("top", "bridge"), 1.95,
               "formyl, *CO + H on the CH4/C2 route; C-bound, planar sp2"),
        _entry("COH", ["C", ("O", 0, 1.33, -1, 180, -2, 0), ("H", 1, 0.97, 0, 110, -2, 0)],
               (0,), ("fcc", "hcp"), 1.95,
               "hydroxymethylidyne, the competing *CO + H product; C in a hollow"),
        _entry("CH2O", ["C", ("O", 0, 1.30, -1, 90, -2, 0), ("H", 0, 1.10, 1, 114, -1, 118),
                        ("H", 0, 1.10, 1, 114, -1, -118)],
               (0, 1), ("bridge",), 2.05,
               "formaldehyde, CHO + H; eta2(C,O) over a bridge, C-O stretched to 1.30"),
        _entry("OCH3", ["O", ("C", 0, 1.42, -1, 180, -2, 0), ("H", 1, 1.10, 0, 110, -2, 0),
                        ("H", 1, 1.10, 0, 110, -2, 120), ("H", 1, 1.10, 0, 110, -2, 240)],
               (0,), ("fcc", "hcp"), 2.0,
               "methoxy, last intermediate before CH4 + *O; O in a hollow, upright"),
        _entry("H2O", ["O", ("H", 0, 0.97, -1, 100, -2, 0), ("H", 0, 0.97, -1, 100, -2, w)],
               (0,), ("top",), 2.3,
               "solvent and proton donor; O-down on a Cu atom, nearly flat (HOH 104.5°)"),
        _entry("OH", ["O", ("H", 0, 0.97, -1, 180, -2, 0)], (0,), ("fcc", "hcp"), 2.0,
               "hydroxyl, from water dissociation and C-OH scission; O in a hollow"),
        _entry("H", ["H"], (0,), ("fcc", "hcp"), 1.75,
               "hydrogen, the HER competitor and the hydrogenation source"),
        _entry("O", ["O"], (0,), ("fcc", "hcp"), 1.90,
               "oxygen, from C-O scission (OCH3 -> CH4 + O); fcc hollow"),
        _entry("OCCO", ["C", ("C", 0, 1.50, -1, 90, -2, 0), ("O", 0, 1.22, 1, 125, -1, 180),
                        ("O", 1, 1.22, 0, 125, 2, 0)],
               (0, 1), ("bridge",), 2.0,
               "CO dimer (first C-C coupling product); bidentate C,C over a bridge, cis O"),
        _entry("OCCHO", ["C", ("C", 0, 1.50, -1, 90, -2, 0), ("O", 0, 1.22, 1, 125, -1, 180),
                         ("O", 1, 1.25, 0, 112, 2, 60), ("H", 1, 1.10, 0, 110, 2, -60)],
               (0, 1), ("bridge",), 2.0,
               "CO + CHO coupling product; bidentate C,C, sp3 CHO carbon"),
        _entry("OCCH2O", ["C", ("C", 0, 1.52, -1, 123.5, -2, 0), ("O", 1, 1.40, 0, 110, -1, 0),
                          ("O", 0, 1.20, 1, 125, 2, 180), ("H", 1, 1.10, 0, 109.5, 2, 120),
                          ("H", 1, 1.10, 0, 109.5, 2, -120)],
               (0, 2), ("bridge",), 2.0,
               "CO + CH2O coupling product; bidentate C (of CO) and O (of CH2O)"),
    ]
    return {a.name: a for a in e}


#: the adsorbate library: name -> :class:`Adsorbate`
ADSORBATES: dict[str, Adsorbate] = _library()
#: the seed's 12 species: reactant, C1 intermediates of the CO/HCOOH/CH4 routes, H/O/OH, water
SEED_SPECIES = ("CO2", "CO", "COOH", "HCOO", "CHO", "COH", "CH2O", "OCH3", "H2O", "OH", "H",
                "O")
#: C2 intermediates of the C-C coupling routes
C2_SPECIES = ("OCCO", "OCCHO", "OCCH2O")


def _adsorbate(species: str | Adsorbate) -> Adsorbate:
    if isinstance(species, Adsorbate):
        return species
    entry = ADSORBATES.get(str(species))
    if entry is None:
        raise ConfigError(f"unknown adsorbate {species!r}", where="species",
                          fix=f"use one of {', '.join(ADSORBATES)} "
                              "(or an Adsorbate object, in Python)")
    return entry
