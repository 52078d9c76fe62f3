"""Liquid electrolyte cells: EC/DEC (+ FEC) with LiPF6, from a composition to a packed box.

A composition (:class:`Composition`) is what a chemist writes: solvents in a ratio by volume or
by mole (EC:DEC 1:1 v/v), the salt's molarity (mol per litre of solution), an additive's
weight percent of the whole electrolyte (FEC 2 wt%). :func:`molecule_counts` turns it into
whole molecules for a cell of about ``n_atoms`` atoms; :func:`liquid_cell` packs them with
packmol (the PyPI ``packmol`` wheel ships the binary) into a periodic cube whose edge follows
from the target density, reproducibly for a given ``seed``.

Molecules come from SMILES through RDKit (ETKDG conformer, MMFF-relaxed, ``randomSeed=seed``).
PF6- is built geometrically, an octahedron with P-F = 1.60 Å (crystal LiPF6: 1.58-1.61 Å):
RDKit's force fields distort hypervalent P (measured with UFF: GFN1 forces ~22 eV/Å before
relaxing); on this octahedron GFN1-xTB's largest force is 1.7 eV/Å (its own minimum is at
1.66 Å, 0.1 eV/Å). Li+ is a single atom. The cell is neutral (one Li+ per
PF6-), so its reference calculation runs with total charge 0.

Simplifications, named:

* Solvent densities are those of the pure liquids at 25 °C (EC, a solid below 36 °C, at
  40 °C) and the volumes are ideal-mixing; LiPF6 adds an apparent molar volume of 63 cm³/mol
  (the order measured for LiPF6 in carbonates). This gives 1.23 g/cm³ for 1 M LiPF6 in
  EC:DEC 1:1 v/v, close to the measured 1.2-1.3; give ``density_g_cm3`` to override, or
  equilibrate with NPT.
* A cell of a few dozen atoms holds whole molecules, so its molarity, ratio and weight percent
  are the nearest the integer counts allow; :func:`cell_composition` reports the actual ones.
"""

from __future__ import annotations

import functools
import math
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms

from common.errors import ConfigError, EnvironmentProblem

__all__ = [
    "MOLECULES",
    "SALT",
    "Composition",
    "cell_composition",
    "estimate_density",
    "liquid_cell",
    "molecule",
    "molecule_counts",
    "pf6",
    "parse_composition",
]

AVOGADRO = 6.02214076e23
#: Å^3 per cm^3
A3_PER_CM3 = 1e24


@dataclass(frozen=True)
class Species:
    """A molecule of the electrolyte: its SMILES, charge and liquid density.

    SMILES None: built geometrically; charge in e; liquid density in g/cm^3 (None for ions).
    """

    name: str
    smiles: str | None
    charge: int = 0
    density_g_cm3: float | None = None


#: solvents, additives and ions known by name (any other name is read as a SMILES string)
MOLECULES: dict[str, Species] = {
    "EC": Species("EC", "O=C1OCCO1", 0, 1.321),     # ethylene carbonate (liquid, 40 °C)
    "DEC": Species("DEC", "CCOC(=O)OCC", 0, 0.975),  # diethyl carbonate
    "FEC": Species("FEC", "O=C1OCC(F)O1", 0, 1.454),  # fluoroethylene carbonate
    "DMC": Species("DMC", "COC(=O)OC", 0, 1.069),   # dimethyl carbonate
    "EMC": Species("EMC", "CCOC(=O)OC", 0, 1.006),  # ethyl methyl carbonate
    "PC": Species("PC", "CC1COC(=O)O1", 0, 1.204),  # propylene carbonate
    "Li": Species("Li", None, +1),
    "PF6": Species("PF6", None, -1),
}
#: the salt: its ions and the apparent molar volume used for the density estimate
SALT = {"name": "LiPF6", "ions": ("Li", "PF6"), "molar_volume_cm3": 63.0}
#: P-F bond length of the octahedral PF6- (Å)
PF_BOND_A = 1.60


# -- molecules ----------------------------------------------------------------------------------


def pf6(bond_A: float = PF_BOND_A) -> Atoms:
    """PF6-: P at the origin, six F on the Cartesian axes at ``bond_A`` (Å)."""
    axes = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]])
    return Atoms("PF6", positions=np.vstack([np.zeros(3), bond_A * axes]),
                 info={"name": "PF6", "charge": -1})


def molecule(name: str, seed: int = 0, relax: str | None = None) -> Atoms:
    """Build a known molecule or any SMILES as an RDKit ETKDG conformer relaxed with MMFF.

    Known molecules are those of :data:`MOLECULES` (EC, DEC, FEC, ..., Li, PF6); ``seed`` seeds the
    embedding; ``relax`` (an xtb method, e.g. ``"GFN1-xTB"``) then relaxes it in vacuum with that
    method (tblite, BFGS to 0.05 eV/Å), so a cell packed from it starts near the labeller's own bond
    lengths (measured, GFN1: MMFF's EC has an RMS force of 0.84 eV/Å, the ideal PF6- 0.91).
    """
    sp = MOLECULES.get(name)
    if sp is not None and sp.smiles is None:
        if name != "PF6":
            return Atoms("Li", info={"name": "Li", "charge": 1})
        a = pf6()
    else:
        symbols, pos, charge = _embedded(sp.smiles if sp else name, int(seed))
        a = Atoms(symbols, positions=pos, info={"name": name, "charge": charge})
    if relax is not None and len(a) > 1:
        a.positions = _relaxed(name, int(seed), str(relax), tuple(a.get_chemical_symbols()),
                               a.positions.tobytes(), int(a.info["charge"]))
    return a


@functools.lru_cache(maxsize=64)
def _relaxed(name: str, seed: int, method: str, symbols: tuple[str, ...], pos: bytes,
             charge: int) -> np.ndarray:
    """Vacuum relaxation of one molecule with tblite (cached per process)."""
    from ase.optimize import BFGS
    from tblite.ase import TBLite

    a = Atoms(symbols, positions=np.frombuffer(pos).reshape(-1, 3).copy())
    a.calc = TBLite(method=method, charge=charge, verbosity=0)
    BFGS(a, logfile=None).run(fmax=0.05, steps=200)
    return a.positions.copy()


@functools.lru_cache(maxsize=64)
def _embedded(smiles: str, seed: int) -> tuple[tuple[str, ...], np.ndarray, int]:
    from rdkit import Chem, RDLogger
    from rdkit.Chem import AllChem

    RDLogger.DisableLog("rdApp.*")
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise ConfigError(f"{smiles!r} is neither a known molecule "
                          f"({', '.join(MOLECULES)}) nor a SMILES string RDKit can read",
                          where="composition", fix="give a name such as EC or a valid SMILES")
    mol = Chem.AddHs(mol)
    params = AllChem.ETKDGv3()
    params.randomSeed = seed
    if AllChem.EmbedMolecule(mol, params) != 0:
        raise ConfigError(f"RDKit could not embed {smiles!r} in 3D", where="composition",
                          fix="check the SMILES string")
    if AllChem.MMFFHasAllMoleculeParams(mol):
        AllChem.MMFFOptimizeMolecule(mol, maxIters=2000)
    else:
        AllChem.UFFOptimizeMolecule(mol, maxIters=2000)
    symbols = tuple(a.GetSymbol() for a in mol.GetAtoms())
    return symbols, mol.GetConformer().GetPositions(), Chem.GetFormalCharge(mol)


def _mass(name: str) -> float:
    """Molar mass, g/mol."""
    return float(molecule(name).get_masses().sum())


def _n_atoms(name: str) -> int:
    return len(molecule(name))


@functools.lru_cache(maxsize=64)
def _vdw_volume_A3(name: str) -> float:
    """Return the van der Waals volume of one molecule (Å^3).

    It is RDKit's grid volume of the union of Bondi spheres.
    """
    from rdkit import Chem
    from rdkit.Chem import AllChem

    a = molecule(name)
    if len(a) == 1:
        r = Chem.GetPeriodicTable().GetRvdw(int(a.numbers[0]))
        return 4.0 / 3.0 * math.pi * r**3
    block = "\n".join([str(len(a)), ""] + [f"{s} {x:.6f} {y:.6f} {z:.6f}" for s, (x, y, z)
                                             in zip(a.get_chemical_symbols(), a.positions,
                                                    strict=True)])
    mol = Chem.MolFromXYZBlock(block)
    return float(AllChem.ComputeMolVolume(mol, gridSpacing=0.2))


# -- compositions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Composition:
    """An electrolyte as a chemist writes it.

    Parameters
    ----------
    solvents
        ``{name: ratio}``, e.g. ``{"EC": 1, "DEC": 1}`` (names of :data:`MOLECULES` or SMILES).
    ratio_by
        ``"volume"`` (of the pure liquids) or ``"mole"``.
    salt_M
        LiPF6 molarity, mol per litre of solution (0: no salt).
    additive, additive_wt_pct
        Additive molecule (default FEC) and its weight percent of the whole electrolyte.
    """

    solvents: Mapping[str, float]
    ratio_by: str = "volume"
    salt_M: float = 1.0
    additive: str = "FEC"
    additive_wt_pct: float = 0.0

    def __post_init__(self):
        """Check the fields; a bad value is a one-line :class:`ConfigError`."""
        where = "composition"
        if not self.solvents or any(not (math.isfinite(v) and v >= 0)
                                    for v in self.solvents.values()):
            raise ConfigError(f"solvent ratios must be numbers >= 0 (got {dict(self.solvents)})",
                              where=where, fix="write e.g. EC:DEC=1:1")
        if sum(self.solvents.values()) <= 0:
            raise ConfigError("the solvent ratios are all zero", where=where,
                              fix="give at least one solvent a positive share, e.g. EC:DEC=1:1")
        if self.ratio_by not in ("volume", "mole"):
            raise ConfigError(f"unknown ratio basis {self.ratio_by!r}", where=where,
                              fix="use volume or mole")
        if not (math.isfinite(self.salt_M) and self.salt_M >= 0):
            raise ConfigError(f"salt molarity must be >= 0 mol/L (got {self.salt_M})",
                              where=where, fix="give e.g. 1.0")
        if not (math.isfinite(self.additive_wt_pct) and 0 <= self.additive_wt_pct < 100):
            raise ConfigError(f"additive weight percent must be in [0, 100) (got "
                              f"{self.additive_wt_pct})", where=where, fix="give e.g. 2")
        if self.ratio_by == "volume":
            for name in self.solvents:
                if _density(name) is None:
                    raise ConfigError(f"no liquid density known for {name!r}, so a volume "
                                      "ratio cannot be converted", where=where,
                                      fix="give the ratio by mole (ratio_by='mole')")

    def label(self) -> str:
        """Return a readable label, e.g. ``EC:DEC 1:1 (v/v), 1 M LiPF6, 2 wt% FEC``."""
        names = ":".join(self.solvents)
        ratio = ":".join(f"{v:g}" for v in self.solvents.values())
        text = f"{names} {ratio} ({'v/v' if self.ratio_by == 'volume' else 'mol/mol'}), " \
               f"{self.salt_M:g} M {SALT['name']}"
        if self.additive_wt_pct:
            text += f", {self.additive_wt_pct:g} wt% {self.additive}"
        return text

    def to_dict(self) -> dict:
        """Return the composition as a plain, JSON-ready dict."""
        return {"solvents": dict(self.solvents), "ratio_by": self.ratio_by,
                "salt_M": self.salt_M, "additive": self.additive,
                "additive_wt_pct": self.additive_wt_pct}


def _density(name: str) -> float | None:
    sp = MOLECULES.get(name)
    return sp.density_g_cm3 if sp else None


def parse_composition(text: str, ratio_by: str = "volume", salt_M: float = 1.0,
                      additive_wt_pct: float = 0.0, additive: str = "FEC") -> Composition:
    """``"EC:DEC=1:2"`` (or ``"EC:DEC"``, equal parts) -> :class:`Composition`."""
    names, _, ratios = text.partition("=")
    parts = [n.strip() for n in names.split(":")]
    try:
        vals = [float(v) for v in ratios.split(":")] if ratios else [1.0] * len(parts)
    except ValueError:
        vals = []
    if not all(parts) or len(vals) != len(parts):
        raise ConfigError(f"cannot read the solvents {text!r}", where="composition",
                          fix="write NAMES=RATIOS, e.g. EC:DEC=1:1")
    return Composition(dict(zip(parts, vals, strict=True)), ratio_by, salt_M, additive,
                       additive_wt_pct)


def _per_mole_of_solvent(comp: Composition) -> dict[str, float]:
    """Return moles of each species per mole of the solvent mixture (excluding the additive).

    Solvents come from the ratio, then salt and additive from molarity and weight percent (the two
    are coupled: the additive adds volume, the salt adds mass).
    """
    w = np.array(list(comp.solvents.values()), dtype=float)
    names = list(comp.solvents)
    if comp.ratio_by == "volume":
        w = w * np.array([_density(n) / _mass(n) for n in names])
    x = w / w.sum()
    v_solv = float(sum(xi * _mass(n) / _density(n) for xi, n in zip(x, names, strict=True)))
    m_solv = float(sum(xi * _mass(n) for xi, n in zip(x, names, strict=True)))
    salt_mass = _mass("Li") + _mass("PF6")
    wf = comp.additive_wt_pct / 100.0
    add_v = (_mass(comp.additive) / _density(comp.additive)
             if wf > 0 and _density(comp.additive) else 0.0)
    add_m = _mass(comp.additive) if wf > 0 else 0.0
    c = comp.salt_M / 1000.0  # mol per cm^3
    # n_salt = c (v_solv + n_salt Vm + n_add add_v);  n_add add_m = wf/(1-wf) (m_solv + n_salt M)
    a = np.array([[1.0 - c * SALT["molar_volume_cm3"], -c * add_v],
                  [-wf / (1 - wf) * salt_mass, add_m if wf > 0 else 1.0]])
    b = np.array([c * v_solv, wf / (1 - wf) * m_solv])
    n_salt, n_add = np.linalg.solve(a, b)
    if n_salt < 0 or 1.0 - c * SALT["molar_volume_cm3"] <= 0:
        raise ConfigError(f"{comp.salt_M:g} M {SALT['name']} leaves no room for solvent "
                          f"(the salt alone takes {SALT['molar_volume_cm3']:g} cm³/mol)",
                          where="composition", fix="give a molarity below ~10 M")
    out = {n: float(xi) for n, xi in zip(names, x, strict=True)}
    if wf > 0:
        out[comp.additive] = out.get(comp.additive, 0.0) + float(n_add)
    if n_salt > 0:
        out["Li"] = out["PF6"] = float(n_salt)
    return out


def molecule_counts(comp: Composition, n_atoms: int) -> dict[str, int]:
    """Return whole molecules for a cell of about ``n_atoms`` atoms.

    Keys are in the composition's order (solvents, additive, Li, PF6).

    Raises
    ------
    ConfigError
        When a component asked for (a solvent with a positive share, the salt, the additive)
        rounds to zero molecules: the message gives the atom count that would hold one.
    """
    if int(n_atoms) < 1:
        raise ConfigError(f"atom count must be >= 1 (got {n_atoms})", where="n_atoms",
                          fix="give e.g. 80 for a tiny cell, 500-1000 for production")
    per = _per_mole_of_solvent(comp)
    atoms_per = sum(v * _n_atoms(k) for k, v in per.items())
    scale = n_atoms / atoms_per
    counts = {k: int(round(v * scale)) for k, v in per.items()}
    if "Li" in counts:
        counts["Li"] = counts["PF6"] = max(counts["Li"], counts["PF6"])
    for k, v in per.items():
        if v > 0 and counts[k] == 0:
            need = int(math.ceil(0.5 / v * atoms_per))
            what = SALT["name"] if k in SALT["ions"] else k
            raise ConfigError(f"{comp.label()} in {n_atoms} atoms gives zero {what} "
                              f"molecules", where="n_atoms",
                              fix=f"use at least {need} atoms, or give the molecule counts")
    return counts


def cell_composition(counts: Mapping[str, int], volume_A3: float | None = None) -> dict:
    """Return what integer molecule ``counts`` actually are as a composition.

    Mole fractions of the solvents, volume ratio, molarity (mol/L, needs the cell volume), additive
    weight percent, atoms, mass (amu).
    """
    mass = {k: n * _mass(k) for k, n in counts.items()}
    total = sum(mass.values())
    solvents = {k: n for k, n in counts.items() if k not in SALT["ions"]}
    n_solv = sum(solvents.values())
    n_salt = min(counts.get("Li", 0), counts.get("PF6", 0))
    out = {"counts": dict(counts), "n_atoms": sum(n * _n_atoms(k) for k, n in counts.items()),
           "mass_amu": total,
           "mole_fractions": {k: n / n_solv for k, n in solvents.items()} if n_solv else {},
           "wt_pct": {k: 100.0 * m / total for k, m in mass.items()} if total else {}}
    vols = {k: n * _mass(k) / _density(k) for k, n in solvents.items() if _density(k)}
    if vols and sum(vols.values()) > 0:
        out["volume_fractions"] = {k: v / sum(vols.values()) for k, v in vols.items()}
    if volume_A3:
        out["salt_M"] = n_salt / AVOGADRO / (volume_A3 / A3_PER_CM3) * 1000.0
        out["density_g_cm3"] = total / AVOGADRO / (volume_A3 / A3_PER_CM3)
    return out


def estimate_density(counts: Mapping[str, int]) -> float:
    """Estimate the ideal-mixing density (g/cm^3) of a cell of ``counts``.

    It adds the pure-liquid volumes of the neutral molecules and the salt's apparent molar volume
    (module docstring).
    """
    vol = 0.0
    for k, n in counts.items():
        if k in SALT["ions"]:
            continue
        d = _density(k)
        if d is None:
            raise ConfigError(f"no liquid density known for {k!r}", where="density",
                              fix="give the target density (g/cm³)")
        vol += n * _mass(k) / d
    vol += min(counts.get("Li", 0), counts.get("PF6", 0)) * SALT["molar_volume_cm3"]
    mass = sum(n * _mass(k) for k, n in counts.items())
    if vol <= 0:
        raise ConfigError("no molecules to pack", where="composition",
                          fix="give at least one molecule")
    return mass / vol


# -- packing ----------------------------------------------------------------------------------

#: van der Waals volume over cell volume above which a liquid cannot exist (close packing of
#: spheres fills 0.74; liquid carbonates fill ~0.5-0.6)
MAX_PACKING_FRACTION = 0.74


def _packmol_binary() -> str:
    exe = shutil.which("packmol")
    if exe is None:
        try:
            from packmol.cli import get_binary_path

            exe = str(get_binary_path())
        except (ImportError, FileNotFoundError):
            exe = None
    if exe is None:
        raise EnvironmentProblem("packmol is not installed", where="packing",
                                 fix="pip install packmol (the PyPI wheel ships the binary)")
    return exe


def liquid_cell(composition: Composition | None = None, *, n_atoms: int | None = None,
                counts: Mapping[str, int] | None = None, density_g_cm3: float | None = None,
                seed: int = 0, tolerance_A: float = 2.0, nloop: int = 100,
                relax_molecules: str | None = None) -> Atoms:
    """Pack a periodic cube of the electrolyte with packmol.

    Give either ``composition`` with ``n_atoms`` (counts from :func:`molecule_counts`) or the
    molecule ``counts`` themselves (``{"EC": 4, "DEC": 2, "Li": 1, "PF6": 1}``). The cube's
    edge gives ``density_g_cm3`` (default :func:`estimate_density`). packmol places every
    molecule at random orientations with periodic images at least ``tolerance_A`` apart,
    seeded by ``seed`` (same seed, same cell); ``nloop`` bounds its optimisation;
    ``relax_molecules`` (an xtb method) relaxes each molecule in vacuum first
    (:func:`molecule`).

    ``info`` of the result: ``composition`` (the one asked for, if any), ``counts``,
    ``density_g_cm3``, ``salt_M`` (actual), ``seed``, ``charge`` 0; ``arrays["mol_id"]``
    numbers the molecules.

    Raises
    ------
    ConfigError
        No or negative counts, an impossible density (the molecules' van der Waals volume
        would fill more than 74 % of the box, or packmol cannot place them
        ``tolerance_A`` apart), zero molecules of a component asked for.
    """
    counts = _resolve_counts(composition, n_atoms, counts)
    density = estimate_density(counts) if density_g_cm3 is None else float(density_g_cm3)
    if not (math.isfinite(density) and density > 0):
        raise ConfigError(f"density must be > 0 g/cm³ (got {density_g_cm3})",
                          where="density_g_cm3", fix="give e.g. 1.2")
    mass = sum(n * _mass(k) for k, n in counts.items())
    volume = mass / AVOGADRO / density * A3_PER_CM3
    edge = volume ** (1.0 / 3.0)
    vdw = sum(n * _vdw_volume_A3(k) for k, n in counts.items())
    label = composition.label() if composition else _counts_label(counts)
    if vdw / volume > MAX_PACKING_FRACTION:
        dmax = density * MAX_PACKING_FRACTION * volume / vdw
        raise ConfigError(f"{label} cannot be packed at {density:g} g/cm³: its molecules' van "
                          f"der Waals volume would fill {100 * vdw / volume:.0f} % of the "
                          f"box (close packing: 74 %)", where="density_g_cm3",
                          fix=f"give a density below {dmax:.2f} g/cm³ (liquid carbonates: "
                              "1.0-1.4)")
    if edge < 2.0 * tolerance_A:
        raise ConfigError(f"the cell would be {edge:.1f} Å wide, narrower than twice the "
                          f"packing tolerance ({tolerance_A} Å)", where="n_atoms",
                          fix="use more molecules")
    atoms = _packmol(counts, edge, seed, tolerance_A, nloop, label, density, relax_molecules)
    atoms.info.update({"counts": dict(counts), "density_g_cm3": density, "seed": int(seed),
                       "charge": sum(n * _charge(k) for k, n in counts.items()),
                       "salt_M": float(cell_composition(counts, volume)["salt_M"])})
    if composition is not None:
        atoms.info["composition"] = composition.label()
    return atoms


def _charge(name: str) -> int:
    sp = MOLECULES.get(name)
    return sp.charge if sp else int(molecule(name).info.get("charge", 0))


def _counts_label(counts: Mapping[str, int]) -> str:
    return " + ".join(f"{n} {k}" for k, n in counts.items())


def _resolve_counts(composition, n_atoms, counts) -> dict[str, int]:
    if (counts is None) == (composition is None):
        raise ConfigError("give either a composition (with an atom count) or molecule counts",
                          where="composition/counts",
                          fix="e.g. composition EC:DEC=1:1 with 80 atoms, or counts "
                              "EC=4,DEC=2,Li=1,PF6=1")
    if composition is not None:
        if n_atoms is None:
            raise ConfigError("a composition needs the cell's atom count", where="n_atoms",
                              fix="give e.g. 80 atoms (tiny) or 500-1000 (production)")
        return molecule_counts(composition, n_atoms)
    out = {}
    for k, n in counts.items():
        if int(n) != n or n < 0:
            raise ConfigError(f"molecule count of {k} must be a whole number >= 0 (got {n})",
                              where="counts", fix="e.g. EC=4,DEC=2,Li=1,PF6=1")
        if n:
            molecule(k)  # an unknown name fails here, by name
            out[str(k)] = int(n)
    if not out:
        raise ConfigError("the counts give zero molecules", where="counts",
                          fix="give at least one molecule, e.g. EC=4,DEC=2,Li=1,PF6=1")
    charge = sum(n * _charge(k) for k, n in out.items())
    if charge != 0:
        raise ConfigError(f"the cell would carry a net charge of {charge:+d} e", where="counts",
                          fix="give as many Li as PF6")
    return out


def _packmol(counts: Mapping[str, int], edge: float, seed: int, tolerance_A: float,
             nloop: int, label: str, density: float, relax: str | None = None) -> Atoms:
    """Run packmol in a temporary folder; the molecules in ``counts`` order."""
    import ase.io

    exe = _packmol_binary()
    mols = {k: molecule(k, seed=seed, relax=relax) for k in counts}
    with tempfile.TemporaryDirectory(prefix="packmol-") as tmp:
        tmp = Path(tmp)
        lines = [f"tolerance {tolerance_A}", "filetype xyz", "output packed.xyz",
                 f"seed {int(seed) + 1}", f"nloop {int(nloop)}",
                 f"pbc 0. 0. 0. {edge:.6f} {edge:.6f} {edge:.6f}"]
        for k, n in counts.items():
            ase.io.write(tmp / f"m{len(lines)}.xyz", mols[k], format="xyz")
            lines += [f"structure m{len(lines)}.xyz", f"  number {n}", "end structure"]
        (tmp / "input.inp").write_text("\n".join(lines) + "\n")
        with open(tmp / "input.inp") as stdin:
            proc = subprocess.run([exe], stdin=stdin, cwd=tmp, capture_output=True, text=True,
                                  env={**os.environ, "OMP_NUM_THREADS": "1"}, check=False)
        if proc.returncode != 0 or not (tmp / "packed.xyz").exists():
            why = ("packmol could not place the molecules " f"{tolerance_A} Å apart"
                   if "PERFECT PACKING" in proc.stdout else
                   f"packmol failed (exit {proc.returncode})")
            raise ConfigError(f"{label} cannot be packed at {density:g} g/cm³: {why}",
                              where="density_g_cm3",
                              fix="give a lower density, more atoms, or a smaller tolerance")
        packed = ase.io.read(tmp / "packed.xyz", format="xyz")
    mol_id = np.concatenate([np.full(len(mols[k]), m) for m, k in enumerate(
        k for k, n in counts.items() for _ in range(n))])
    expected = [s for k, n in counts.items() for _ in range(n)
                for s in mols[k].get_chemical_symbols()]
    if packed.get_chemical_symbols() != expected:  # packmol keeps the input order
        raise EnvironmentProblem("packmol returned the atoms in an unexpected order",
                                 where="packing", fix="check the packmol installation")
    atoms = Atoms(packed.get_chemical_symbols(), positions=packed.positions,
                  cell=[edge] * 3, pbc=True)
    atoms.set_array("mol_id", mol_id.astype(int))
    return atoms
