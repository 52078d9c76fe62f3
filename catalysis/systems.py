"""Structure builders for CO2 electroreduction on Cu(111): slabs, adsorbates, sites, sampling.

The seed's systems are a 96-atom Cu(111) slab (4 layers of 24 atoms, ``(4, 6, 4)``, orthogonal
cell, bottom two layers fixed) with the adsorbates of the CO2-to-C1/C2 network on top. This
module builds them and the configurations a training set is made of:

- :func:`cu111_slab` -- the slab (``ase.build.fcc111``; tags 1 = top layer ... L = bottom,
  bottom ``fixed_layers`` under :class:`~ase.constraints.FixAtoms`).
- :data:`ADSORBATES` -- the 12 seed species and the C2 intermediates as :class:`Adsorbate`
  entries: geometry in adsorption orientation (binding atom(s) first, at z = 0, the rest above),
  binding atoms, preferred sites and the metal-adsorbate bond length used for the height.
- :func:`sites` -- every top / bridge / fcc / hcp site of the top layer, from the geometry.
- :func:`place`, :func:`place_many`, :func:`water_layer` -- put adsorbates and water on sites.
- :func:`sample_configurations`, :func:`md_snapshots`, :func:`energy_window` -- training
  configurations: rattled copies, Langevin MD frames with labels, and the ±window filter.
- :func:`seed_library` -- the starting structures of the case study (``"tiny"`` or ``"paper"``).

Placed adsorbate atoms get tag 0 (ASE's convention) and an ``adsorbate_id`` per-atom array
(-1 for the slab, 0, 1, ... per placed molecule); ``atoms.info["adsorbates"]`` lists the species
placed ("CO+CHO"). Units: Å, eV, fs, K.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms, units
from ase.build import fcc111
from ase.constraints import FixAtoms

from common.data.dataset import get_labels, with_labels
from common.errors import ConfigError, DataError, SimulationError

__all__ = [
    "ADSORBATES",
    "C2_SPECIES",
    "SEED_SPECIES",
    "SITE_KINDS",
    "Adsorbate",
    "WindowReport",
    "cu111_slab",
    "energy_window",
    "fcc_lattice_constant",
    "md_snapshots",
    "place",
    "place_many",
    "sample_configurations",
    "seed_library",
    "sites",
    "surface_atoms",
    "water_layer",
]

#: site kinds of an fcc(111) surface, in the order :func:`sites` returns them
SITE_KINDS = ("top", "bridge", "fcc", "hcp")
#: Cu lattice constant (experiment, room temperature), Å
CU_A = 3.61

# ------------------------------------------------------------------------------------------
# slab
# ------------------------------------------------------------------------------------------


def cu111_slab(
    size: tuple[int, int, int] = (4, 6, 4),
    vacuum_A: float = 10.0,
    fixed_layers: int = 2,
    a_A: float = CU_A,
    orthogonal: bool = True,
    symbol: str = "Cu",
) -> Atoms:
    """A (111) slab of an fcc metal with the bottom layers fixed.

    Parameters
    ----------
    size : (nx, ny, layers)
        Surface repeats along a and b, and the number of layers. The seed's 96-atom slab is
        ``(4, 6, 4)``: 4 layers of 24 atoms, 10.2 x 13.3 Å for Cu. An orthogonal cell needs an
        even ``ny``; use ``orthogonal=False`` (the 60° cell) for odd ones such as ``(3, 3, 3)``.
    vacuum_A : float
        Vacuum on each side of the slab, Å (the gap between periodic images is twice this).
    fixed_layers : int
        Bottom layers held by :class:`~ase.constraints.FixAtoms` (0 <= fixed_layers < layers).
    a_A : float
        Cubic lattice constant, Å (3.61 for Cu; use :func:`fcc_lattice_constant` to take the
        labeller's own value so the slab is not strained in that labeller).
    orthogonal : bool
        Rectangular cell (True) or the primitive 60° surface cell (False).
    symbol : str
        The metal (Cu by default).

    Returns
    -------
    ase.Atoms
        Tags 1 (top layer) ... ``layers`` (bottom), pbc (True, True, False), the surface in the
        xy plane; ``info["slab"]`` describes it (e.g. ``"Cu(111) 4x6x4"``).
    """
    try:
        nx, ny, nl = (int(s) for s in size)
    except (TypeError, ValueError):
        raise ConfigError(f"size={size!r} is not three integers", where="cu111_slab size",
                          fix="give (nx, ny, layers), e.g. (4, 6, 4)") from None
    if min(nx, ny, nl) < 1:
        raise ConfigError(f"size={size!r} has a repeat < 1", where="cu111_slab size",
                          fix="every repeat and the layer count must be >= 1, e.g. (4, 6, 4)")
    if orthogonal and ny % 2:
        raise ConfigError(f"an orthogonal (111) cell needs an even second repeat, got {ny}",
                          where="cu111_slab size",
                          fix="use an even ny (e.g. (4, 6, 4)) or orthogonal=False")
    if not 0 <= int(fixed_layers) < nl:
        raise ConfigError(f"fixed_layers={fixed_layers} with {nl} layers",
                          where="cu111_slab fixed_layers",
                          fix=f"fix between 0 and {nl - 1} bottom layers (the top must move)")
    if not vacuum_A > 0:
        raise ConfigError(f"vacuum_A={vacuum_A} must be > 0", where="cu111_slab vacuum_A",
                          fix="use about 10 Å (adsorbates and water need room above the slab)")
    if not a_A > 0:
        raise ConfigError(f"a_A={a_A} must be > 0", where="cu111_slab a_A",
                          fix="give the cubic lattice constant in Å (3.61 for Cu)")
    slab = fcc111(symbol, size=(nx, ny, nl), a=float(a_A), vacuum=float(vacuum_A),
                  orthogonal=bool(orthogonal))
    # ASE's add_adsorbate bookkeeping (a dict of arrays) cannot be written to extxyz; place()
    # and sites() replace it
    slab.info.pop("adsorbate_info", None)
    tags = slab.get_tags()
    if fixed_layers:
        slab.set_constraint(FixAtoms(mask=tags > nl - int(fixed_layers)))
    slab.info["slab"] = f"{symbol}(111) {nx}x{ny}x{nl}"
    return slab


def fcc_lattice_constant(calculator: Any, symbol: str = "Cu", guess_A: float = CU_A) -> float:
    """The cubic lattice constant of an fcc metal in ``calculator``, Å (equation-of-state fit).

    Seven volumes within ±3 % of ``guess_A``; use the result as ``cu111_slab(a_A=...)`` so the
    slab is at the labeller's own equilibrium.
    """
    from ase.build import bulk
    from ase.eos import EquationOfState

    calc = _as_calculator(calculator)
    volumes, energies = [], []
    for s in np.linspace(0.97, 1.03, 7):
        b = bulk(symbol, "fcc", a=guess_A * s)
        b.calc = calc
        volumes.append(b.get_volume())
        energies.append(b.get_potential_energy())
    v0, _, _ = EquationOfState(volumes, energies).fit()
    return float((4.0 * v0) ** (1.0 / 3.0))


# ------------------------------------------------------------------------------------------
# adsorbates
# ------------------------------------------------------------------------------------------


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
        """A fresh ``ase.Atoms`` of the molecule (``info["adsorbate"]`` = name)."""
        a = Atoms(self.symbols, positions=np.array(self.positions, dtype=float))
        a.info["adsorbate"] = self.name
        a.info["binding"] = ",".join(str(i) for i in self.binding)
        return a

    @property
    def formula(self) -> str:
        return Atoms(self.symbols).get_chemical_formula(mode="hill")

    @property
    def bidentate(self) -> bool:
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
    """Azimuth between two O-H bonds that both make ``theta_deg`` with the surface normal
    (pointing down) and ``hoh_deg`` with each other."""
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
                          fix=f"use one of {', '.join(ADSORBATES)}, or pass an Adsorbate")
    return entry


# ------------------------------------------------------------------------------------------
# surface geometry and sites
# ------------------------------------------------------------------------------------------


def _substrate_mask(slab: Atoms) -> np.ndarray:
    tags = slab.get_tags()
    if np.any(tags > 0):
        return tags > 0
    return slab.numbers > 10  # no layer tags: take everything heavier than Ne as the metal


def _layers(slab: Atoms, gap_A: float = 0.7) -> list[np.ndarray]:
    """Substrate atom indices per layer, top layer first (layers split where z jumps)."""
    idx = np.flatnonzero(_substrate_mask(slab))
    if len(idx) == 0:
        raise ConfigError("no substrate atoms (no positive tags and no metal atoms)",
                          where="slab", fix="build the slab with cu111_slab or ase.build.fcc111")
    z = slab.positions[idx, 2]
    order = idx[np.argsort(-z, kind="stable")]
    zs = slab.positions[order, 2]
    cuts = np.flatnonzero(zs[:-1] - zs[1:] > gap_A) + 1
    return [np.sort(g) for g in np.split(order, cuts)]


def surface_atoms(slab: Atoms) -> np.ndarray:
    """Indices of the top substrate layer (by z, substrate = tagged atoms or metal atoms)."""
    return _layers(slab)[0]


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
        """For each top-layer atom, the lateral vectors (k, 2) to its in-plane nearest
        neighbours (periodic images included)."""
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


# ------------------------------------------------------------------------------------------
# placing adsorbates
# ------------------------------------------------------------------------------------------


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
    """A copy of ``slab`` with one adsorbate on a site.

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
    """A copy of ``slab`` with H2O molecules on the free surface and above the adsorbates.

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


# ------------------------------------------------------------------------------------------
# training configurations
# ------------------------------------------------------------------------------------------


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
    """``n`` perturbed copies of the base structures (cycled in order), unlabelled.

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


def _as_calculator(calculator: Any) -> Any:
    if isinstance(calculator, str) or type(calculator).__name__ == "LabellerSpec":
        from common.labels import make_calculator

        return make_calculator(calculator)
    if not hasattr(calculator, "get_potential_energy") and not hasattr(calculator,
                                                                       "calculate"):
        raise ConfigError(f"{type(calculator).__name__} is not an ASE calculator",
                          where="calculator",
                          fix="pass an ASE calculator, a LabellerSpec or a preset name ('emt')")
    return calculator


def md_snapshots(
    atoms: Atoms,
    calculator: Any,
    n_frames: int,
    temperature_K: float = 300.0,
    timestep_fs: float = 0.5,
    interval: int = 10,
    seed: int = 0,
    *,
    friction_per_ps: float = 1.0,
    max_force_eV_A: float = 50.0,
) -> list[Atoms]:
    """Labelled frames from Langevin MD (``ase.md.langevin``) with any ASE calculator.

    Parameters
    ----------
    atoms : ase.Atoms
        Start structure (FixAtoms constraints are honoured; not modified).
    calculator : ASE calculator, LabellerSpec or str
        The labeller (``"emt"``, an xtb spec...) or a trained model's calculator.
    n_frames : int
        Frames returned; one every ``interval`` steps (the start is not included).
    temperature_K, timestep_fs, friction_per_ps : float
        Thermostat temperature (K), step (fs; 0.5 with H present) and Langevin friction (1/ps).
    seed : int
        Seeds the Maxwell-Boltzmann velocities and the thermostat noise.
    max_force_eV_A : float
        Blow-up guard: a larger force (or a non-finite energy) stops the run.

    Returns
    -------
    list of ase.Atoms
        Each with energy (eV) and the unconstrained forces (eV/Å) on a SinglePointCalculator;
        ``info``: ``md_step``, ``md_time_fs``, ``md_temperature_K`` (instantaneous) and
        ``temperature_K`` (target).

    Raises
    ------
    SimulationError
        On blow-up; the frames made so far are on the exception's ``frames`` attribute.
    """
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    if int(n_frames) < 1 or int(interval) < 1:
        raise ConfigError(f"n_frames={n_frames}, interval={interval} must be >= 1",
                          where="md_snapshots", fix="ask for at least one frame and step")
    if not (timestep_fs > 0 and temperature_K >= 0 and friction_per_ps > 0):
        raise ConfigError(
            f"timestep_fs={timestep_fs}, temperature_K={temperature_K}, friction_per_ps="
            f"{friction_per_ps}", where="md_snapshots",
            fix="use timestep_fs > 0 (0.5 with H), temperature_K >= 0, friction_per_ps > 0")
    calc = _as_calculator(calculator)
    a = atoms.copy()
    a.calc = calc
    rng = np.random.default_rng(seed)
    MaxwellBoltzmannDistribution(a, temperature_K=float(temperature_K), rng=rng)
    dyn = Langevin(a, float(timestep_fs) * units.fs, temperature_K=float(temperature_K),
                   friction=float(friction_per_ps) / (1000.0 * units.fs),
                   fixcm=not a.constraints, rng=rng)
    frames: list[Atoms] = []
    for k in range(int(n_frames)):
        dyn.run(int(interval))
        energy = float(a.get_potential_energy())
        forces = np.array(a.get_forces(apply_constraint=False), dtype=float)
        step = (k + 1) * int(interval)
        fmax = float(np.linalg.norm(forces, axis=1).max()) if len(forces) else 0.0
        if not (np.isfinite(energy) and np.all(np.isfinite(forces))) or fmax > max_force_eV_A:
            err = SimulationError(
                f"MD blew up (energy {energy:.4g} eV, max force {fmax:.3g} eV/Å)",
                where=f"md_snapshots step {step}",
                fix="lower timestep_fs or temperature_K, or check the start structure")
            err.frames = frames  # type: ignore[attr-defined]
            raise err
        snap = a.copy()
        snap.calc = None
        frame = with_labels(snap, energy=energy, forces=forces)
        frame.info.update(md_step=step, md_time_fs=step * float(timestep_fs),
                          md_temperature_K=float(a.get_temperature()),
                          temperature_K=float(temperature_K), sample="md")
        frames.append(frame)
    return frames


@dataclass
class WindowReport:
    """What :func:`energy_window` kept and dropped.

    Attributes
    ----------
    window_eV : float
        The window above each composition's lowest energy, eV.
    n_in, n_kept, n_dropped : int
        Frame counts.
    compositions : dict
        Hill formula -> ``{"n", "n_kept", "e_min_eV", "ground_state"}`` (index of the lowest).
    dropped : list of dict
        ``{"index", "formula", "delta_eV"}`` for each dropped frame (input order).
    """

    window_eV: float
    n_in: int
    n_kept: int
    n_dropped: int
    compositions: dict[str, dict[str, Any]] = field(default_factory=dict)
    dropped: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"window_eV": self.window_eV, "n_in": self.n_in, "n_kept": self.n_kept,
                "n_dropped": self.n_dropped, "compositions": self.compositions,
                "dropped": self.dropped}


def energy_window(frames: Iterable[Atoms], window_eV: float = 3.0
                  ) -> tuple[list[Atoms], WindowReport]:
    """Keep frames within ``window_eV`` of the lowest energy of the same composition.

    Parameters
    ----------
    frames : iterable of ase.Atoms
        Labelled frames (energy on the calculator, e.g. a SinglePointCalculator).
    window_eV : float
        Total-energy window, eV (the seed keeps frames within ±3 eV of the ground state).

    Returns
    -------
    (list of ase.Atoms, WindowReport)
        The kept frames (input order, same objects) and what was dropped.

    Raises
    ------
    DataError
        A frame has no energy or a non-finite one.
    """
    frames = list(frames)
    if not (math.isfinite(window_eV) and window_eV > 0):
        raise ConfigError(f"window_eV={window_eV} must be > 0", where="energy_window",
                          fix="use e.g. 3.0 eV")
    energies = np.empty(len(frames))
    formulas = []
    for i, a in enumerate(frames):
        e = get_labels(a).get("energy") if isinstance(a, Atoms) else None
        if e is None:
            raise DataError("no energy label", where=f"frame {i}",
                            fix="label the frames first (common.labels.label_structures, or "
                                "md_snapshots), then filter")
        if not math.isfinite(float(e)):
            raise DataError(f"non-finite energy {e}", where=f"frame {i}",
                            fix="drop or relabel the frame")
        energies[i] = float(e)
        formulas.append(a.get_chemical_formula(mode="hill"))
    comps: dict[str, dict[str, Any]] = {}
    for f in dict.fromkeys(formulas):
        idx = [i for i, g in enumerate(formulas) if g == f]
        g = int(idx[int(np.argmin(energies[idx]))])
        comps[f] = {"n": len(idx), "n_kept": 0, "e_min_eV": float(energies[g]),
                    "ground_state": g}
    kept, dropped = [], []
    for i, (a, f) in enumerate(zip(frames, formulas, strict=True)):
        delta = float(energies[i] - comps[f]["e_min_eV"])
        if delta <= window_eV:
            kept.append(a)
            comps[f]["n_kept"] += 1
        else:
            dropped.append({"index": i, "formula": f, "delta_eV": delta})
    report = WindowReport(float(window_eV), len(frames), len(kept), len(dropped), comps,
                          dropped)
    return kept, report


# ------------------------------------------------------------------------------------------
# the case study's starting structures
# ------------------------------------------------------------------------------------------

_TINY_SINGLES = (("CO", "top"), ("H", "fcc"), ("COOH", "top"), ("CHO", "top"))
_TINY_PAIRS = (("CO", "CO"), ("CO", "CHO"))
_PAPER_PAIRS = (("CO", "CO"), ("CO", "CHO"), ("CO", "CH2O"), ("CO", "H"), ("CO2", "H"),
                ("COOH", "H"), ("CHO", "H"))


def _pair(slab: Atoms, a: str, b: str, rng: np.random.Generator, min_sep_A: float = 2.0
          ) -> Atoms:
    """``a`` on its preferred site, ``b`` on the nearest preferred site that fits."""
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
    """The case study's starting structures: slab + one or two adsorbates.

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
