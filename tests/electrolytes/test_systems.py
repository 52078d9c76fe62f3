"""Liquid cells from compositions: counts that reproduce the composition, geometry that
packmol keeps rigid, periodic images apart, reproducible by seed, one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
from ase.geometry import get_distances

from common.errors import ConfigError
from electrolytes import systems
from electrolytes.systems import Composition, cell_composition, liquid_cell, molecule_counts

EC_DEC = Composition({"EC": 1, "DEC": 1})


@pytest.fixture(scope="module")
def cell():
    return liquid_cell(EC_DEC, n_atoms=80, seed=0)


def test_pf6_is_a_regular_octahedron():
    a = systems.pf6()
    d = a.get_distances(0, range(1, 7))
    assert np.allclose(d, systems.PF_BOND_A)
    angles = [a.get_angle(i, 0, j) for i in range(1, 7) for j in range(i + 1, 7)]
    assert sorted(np.round(angles, 6)) == [90.0] * 12 + [180.0] * 3


def test_molecules_from_smiles_have_their_formula_and_bonds():
    ec = systems.molecule("EC")
    assert ec.get_chemical_formula() == "C3H4O3"
    carbonyl = [i for i in range(len(ec)) if ec[i].symbol == "O"
                and sorted(ec.get_distances(i, range(len(ec))))[1] < 1.25]
    assert len(carbonyl) == 1  # one C=O (1.2 Å), two ring C-O (1.35-1.45 Å)
    assert systems.molecule("CCOC(=O)OCC").get_chemical_formula() == "C5H10O3"  # DEC
    with pytest.raises(ConfigError, match="neither a known molecule"):
        systems.molecule("not-a-smiles((")


def test_counts_reproduce_the_composition_at_large_sizes():
    """At 5000 atoms the rounding error of each count is < 1 molecule, so the actual molarity,
    volume ratio and weight percent agree with the asked ones to within a molecule's share."""
    comp = Composition({"EC": 1, "DEC": 2}, salt_M=1.5, additive_wt_pct=5.0)
    counts = molecule_counts(comp, 5000)
    actual = cell_composition(counts)
    n_atoms = actual["n_atoms"]
    assert abs(n_atoms - 5000) < 40  # rounding of ~250 molecules of <= 18 atoms
    vf = actual["volume_fractions"]
    assert vf["EC"] / (vf["EC"] + vf["DEC"]) == pytest.approx(1 / 3, abs=0.02)
    assert actual["wt_pct"]["FEC"] == pytest.approx(5.0, abs=100 * 106.06 / actual["mass_amu"])
    # molarity in the estimated volume: within one LiPF6 of the asked number
    vol_A3 = actual["mass_amu"] / systems.AVOGADRO / systems.estimate_density(counts) * 1e24
    per_molecule = 1 / systems.AVOGADRO / (vol_A3 * 1e-24) * 1000
    molar = counts["Li"] * per_molecule
    assert molar == pytest.approx(1.5, abs=per_molecule)


def test_mole_ratio_and_no_salt():
    counts = molecule_counts(Composition({"EC": 1, "DEC": 1}, ratio_by="mole", salt_M=0), 560)
    assert counts == {"EC": 20, "DEC": 20}


def test_estimated_density_of_1M_LiPF6_in_EC_DEC():
    """Ideal mixing + 63 cm³/mol for the salt: 1.23 g/cm³ (measured 1.2-1.3)."""
    counts = molecule_counts(EC_DEC, 20000)
    assert systems.estimate_density(counts) == pytest.approx(1.23, abs=0.01)


def test_cell_has_the_composition_density_and_neutral_charge(cell):
    assert cell.info["counts"] == {"EC": 4, "DEC": 2, "Li": 1, "PF6": 1}
    assert len(cell) == 84 and cell.info["charge"] == 0
    assert cell.get_chemical_formula() == "C22H36F6LiO18P"
    mass_g = cell.get_masses().sum() / systems.AVOGADRO
    assert mass_g / (cell.get_volume() * 1e-24) == pytest.approx(cell.info["density_g_cm3"])
    assert np.allclose(cell.cell.angles(), 90) and cell.pbc.all()


def test_packmol_moves_molecules_rigidly_and_keeps_images_apart(cell):
    """Each molecule's internal distances equal its template's (packmol only rotates and
    translates); atoms of different molecules, periodic images included, are >= the 2 Å
    tolerance apart up to packmol's own convergence slack."""
    ids = cell.arrays["mol_id"]
    names = [k for k, n in cell.info["counts"].items() for _ in range(n)]
    for m, name in enumerate(names):
        idx = np.nonzero(ids == m)[0]
        tmpl = systems.molecule(name, seed=0)
        if len(idx) > 1:
            _, d = get_distances(cell.positions[idx])  # molecules are kept whole
            _, d0 = get_distances(tmpl.positions)
            assert np.abs(d - d0).max() < 1e-4
    _, d = get_distances(cell.positions, cell=cell.cell, pbc=True)
    other = ids[:, None] != ids[None, :]
    assert d[other].min() > 1.9


def test_same_seed_same_cell_other_seed_other_cell(cell):
    again = liquid_cell(EC_DEC, n_atoms=80, seed=0)
    assert np.array_equal(again.positions, cell.positions)
    other = liquid_cell(EC_DEC, n_atoms=80, seed=1)
    assert np.abs(other.positions - cell.positions).max() > 1.0


def test_counts_instead_of_a_composition():
    a = liquid_cell(counts={"EC": 3, "Li": 1, "PF6": 1}, density_g_cm3=1.3, seed=2)
    assert a.get_chemical_formula() == "C9H12F6LiO9P"
    assert a.info["density_g_cm3"] == 1.3


@pytest.mark.parametrize("kwargs, needle", [
    ({"composition": EC_DEC, "n_atoms": 60}, "gives zero LiPF6 molecules"),
    ({"composition": Composition({"EC": 1, "DEC": 1}, additive_wt_pct=2), "n_atoms": 90},
     "gives zero FEC molecules"),
    ({"composition": EC_DEC, "n_atoms": 84, "density_g_cm3": 2.0},
     "cannot be packed at 2 g/cm³"),
    ({"counts": {"EC": 0, "DEC": 0}}, "zero molecules"),
    ({"counts": {"EC": 2, "Li": 1}}, r"net charge of \+1"),
    ({"counts": {"EC": 2.5}}, "whole number"),
    ({"composition": EC_DEC}, "atom count"),
    ({"composition": EC_DEC, "n_atoms": 84, "density_g_cm3": -1.0}, "density must be > 0"),
])
def test_impossible_compositions_are_one_line_errors(kwargs, needle):
    with pytest.raises(ConfigError, match=needle) as info:
        liquid_cell(**kwargs)
    assert "\n" not in str(info.value) and "fix:" in str(info.value)


def test_packmol_failure_is_a_config_error():
    """A tolerance packmol cannot meet within its loop budget: a one-line error naming it."""
    with pytest.raises(ConfigError, match="could not place the molecules 4.0 Å apart"):
        liquid_cell(counts={"EC": 8}, density_g_cm3=1.3, tolerance_A=4.0, nloop=3)


@pytest.mark.parametrize("bad, needle", [
    ({"solvents": {}}, "ratios"), ({"solvents": {"EC": -1}}, "ratios"),
    ({"solvents": {"EC": 0}}, "all zero"), ({"solvents": {"EC": 1}, "ratio_by": "mass"},
                                            "ratio basis"),
    ({"solvents": {"EC": 1}, "salt_M": -1}, "molarity"),
    ({"solvents": {"EC": 1}, "additive_wt_pct": 100}, "weight percent"),
    ({"solvents": {"CCO": 1}}, "no liquid density"),
])
def test_bad_compositions(bad, needle):
    with pytest.raises(ConfigError, match=needle):
        Composition(**bad)


def test_parse_composition():
    c = systems.parse_composition("EC:DEC=3:1", salt_M=2.0)
    assert c.solvents == {"EC": 3.0, "DEC": 1.0} and c.salt_M == 2.0
    assert c.label() == "EC:DEC 3:1 (v/v), 2 M LiPF6"
    assert systems.parse_composition("EC:DEC").solvents == {"EC": 1.0, "DEC": 1.0}
    with pytest.raises(ConfigError, match="EC:DEC=1:1"):
        systems.parse_composition("EC:DEC=1")
