"""Growth on GaN(0001) (semiconductors.growth): the defect counter finds planted defects
exactly, a tiny deposition through the sweep gives a map, and bad conditions are refused.

The planted cases are exact by construction: a perfect slab has no defect; removing one Ga of
an inner bilayer is one vacancy; an N site given to Ga is one antisite with 4 Ga-Ga wrong
bonds (its 4 former Ga neighbours, now Ga-Ga at 1.95 Å < 2.8 Å); an atom put between sites
is one off-site atom; a free N2 molecule above the surface is one molecule, not a wrong bond
(its two atoms are off-site too).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase import Atoms

from common.errors import ConfigError
from semiconductors import growth as G
from semiconductors import systems as S


@pytest.fixture(scope="module")
def substrate():
    return S.slab_0001(S.wurtzite(3.18092, 5.19445), size=(2, 2), bilayers=4, vacuum_A=15.0)


def test_perfect_slab_has_no_defects(substrate):
    res = G.count_defects(substrate, substrate)
    assert res["total"] == 0 and res["under_coordinated"] == 0 and res["off_site"] == 0
    assert res["growth_front_bilayer"] == 3 and res["film_bilayers"] == 0
    # the lattice continued upward is the same crystal: a 6-bilayer slab's sites match
    taller = S.slab_0001(S.wurtzite(3.18092, 5.19445), size=(2, 2), bilayers=6, vacuum_A=15)
    taller.positions[:, 2] += substrate.positions[:, 2].min() - taller.positions[:, 2].min()
    res = G.count_defects(taller, substrate)
    assert res["total"] == 0 and res["film_bilayers"] == 2


def test_planted_defects_are_counted_back(substrate):
    layer, _ = G._bilayer_index(substrate)
    grown = substrate.copy()
    anti = int(np.nonzero((layer == 2) & (grown.numbers == 7))[0][0])
    grown[anti].symbol = "Ga"
    # an off-site atom: N halfway between two Ga of bilayer 2's plane, 1 Å above it
    ga2 = np.nonzero((layer == 2) & (grown.numbers == 31))[0]
    mid = grown.positions[ga2[:2]].mean(0) + [0.0, 0.0, 1.0]
    grown.append("N")
    grown.positions[-1] = mid
    # an N2 molecule well above the surface
    top = grown.positions[:, 2].max()
    grown += Atoms("N2", positions=[[1.0, 1.0, top + 3.0], [1.0, 1.0, top + 4.1]])
    vac = int(np.nonzero((layer == 1) & (substrate.numbers == 31))[0][0])
    del grown[vac]
    res = G.count_defects(grown, substrate)
    assert res["vacancies"] == 1
    assert res["antisites"] == 1
    assert res["off_site"] == 3  # the interstitial N and the two atoms of N2
    assert res["n2_molecules"] == 1
    assert res["wrong_bonds"] >= 4  # the antisite's 4 Ga-Ga bonds (+ the interstitial's N-N)
    assert res["per_nm2"]["vacancies"] == pytest.approx(1 / res["area_nm2"])


def test_tiny_growth_map_through_the_sweep(substrate, tmp_path):
    res = G.growth_map(substrate, [600.0, 1200.0], [1.0], tmp_path, cluster="serial",
                       n_atoms=2, steps_per_atom=60)
    assert len(res["points"]) == 2
    for p in res["points"]:
        assert p["n_atoms"] <= len(substrate) + 2 and p["total"] >= 0
    best = min(res["points"], key=lambda p: (p["per_nm2"]["total"],
                                             p["per_nm2"]["under_coordinated"]))
    assert res["optimum"]["temperature_K"] == best["temperature_K"]
    assert (tmp_path / "growth_map.png").stat().st_size > 0
    saved = json.loads((tmp_path / "growth_map.json").read_text())
    assert saved["optimum"] == res["optimum"]
    # a rerun finds every point done and computes nothing
    again = G.growth_map(substrate, [600.0, 1200.0], [1.0], tmp_path, cluster="serial",
                         n_atoms=2, steps_per_atom=60)
    assert again["points"] == res["points"]


@pytest.mark.parametrize("t, r, word", [(0.0, 1.0, "> 0 K"), (-5.0, 1.0, "> 0 K"),
                                        (900.0, 0.0, "flux ratio"),
                                        (900.0, -1.0, "flux ratio")])
def test_bad_conditions_are_refused(substrate, tmp_path, t, r, word):
    with pytest.raises(ConfigError, match=word):
        G.growth_map(substrate, [t], [r], tmp_path, cluster="serial")
    assert not (tmp_path / "points").exists()
