"""GaN structures (semiconductors.systems): wurtzite at the potential's lattice, the wurtzite
check, point defects, interstitial sites, the (0001) slab, the interstitial search and the
training configurations across temperatures.

Reference numbers: Tersoff GaN (Nord 2003) has wurtzite at a = 3.18092 Å, c = 5.19445 Å with
the ideal u = 3/8 (measured before, see test_reference.py); tolerances 1e-4 Å cover the
rounding of those numbers.
"""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.geometry import find_mic

from common.errors import ConfigError, DataError
from semiconductors import systems as S
from semiconductors.reference import TersoffBatched, TersoffGaN


@pytest.fixture(scope="module")
def host():
    return S.supercell(S.wurtzite(3.18092, 5.19445), (3, 3, 2))


def test_relaxed_lattice_of_tersoff_is_ideal_wurtzite():
    lat = S.relaxed_lattice(TersoffGaN())
    assert lat["a_A"] == pytest.approx(3.18092, abs=1e-4)
    assert lat["c_A"] == pytest.approx(5.19445, abs=1e-4)
    assert lat["u"] == pytest.approx(0.375, abs=1e-4)
    assert lat["energy_eV_per_formula"] == pytest.approx(-2 * 4.527805, abs=1e-5)


def test_wurtzite_passes_and_other_structures_are_refused(host):
    S.check_wurtzite(host)
    S.check_wurtzite(S.wurtzite())  # the seed's lattice (non-ideal c/a)
    zincblende = bulk("GaN", "zincblende", a=4.50).repeat(2)  # 4-fold, Ga:N 1:1, cubic
    with pytest.raises(DataError, match=r"P6_3mc"):
        S.check_wurtzite(zincblende)
    rocksalt = bulk("GaN", "rocksalt", a=4.2)
    with pytest.raises(DataError, match="neighbours"):
        S.check_wurtzite(rocksalt)
    with pytest.raises(DataError, match="not GaN"):
        S.check_wurtzite(host[1:])
    vacancy = S.make_defect(host, "V_N")
    with pytest.raises(DataError, match="not GaN|not wurtzite"):
        S.make_defect(vacancy, "V_Ga")  # a defective host is not perfect wurtzite


def test_point_defects_change_the_right_site(host):
    centre = host.cell.array.sum(0) / 2
    for kind, formula, el in (("V_Ga", "Ga35N36", "Ga"), ("V_N", "Ga36N35", "N"),
                              ("Ga_N", "Ga37N35", "N"), ("N_Ga", "Ga35N37", "Ga"),
                              ("Ga_i", "Ga37N36", None), ("N_i", "Ga36N37", None),
                              ("V_Ga+V_N", "Ga35N35", "Ga")):
        d = S.make_defect(host, kind)
        assert d.get_chemical_formula() == formula, kind
        assert d.info["defect"] == kind and d.info["host_atoms"] == 72
        site = np.array(d.info["defect_site_A"])
        if el is not None:  # the host atom of that element nearest the centre
            idx = np.nonzero(np.array(host.get_chemical_symbols()) == el)[0]
            dist = np.linalg.norm(find_mic(host.positions[idx] - centre, host.cell)[0], axis=1)
            assert np.linalg.norm(find_mic(site - centre, host.cell)[0]) == pytest.approx(
                dist.min())
    # a given index and a given interstitial position are used as they are
    d = S.make_defect(host, "V_N", index=1)
    assert np.allclose(d.info["defect_site_A"], host.positions[1])
    d = S.make_defect(host, "N_i", position=(1.0, 2.0, 3.0))
    assert np.allclose(d.positions[-1], (1.0, 2.0, 3.0)) and d[-1].symbol == "N"


def test_complexes_antisite_pair_and_frenkel_pair(host):
    """Ga_N+N_Ga swaps the Ga nearest the centre with its nearest N (a 1.95 Å bond); V_Ga+Ga_i
    removes that Ga and puts it in the largest void >= FRENKEL_SEPARATION_A away. Both keep
    the composition."""
    centre = host.cell.array.sum(0) / 2
    k = S._nearest_of(host, "Ga", centre)
    pair = S.make_defect(host, "Ga_N+N_Ga")
    changed = np.nonzero(pair.numbers != host.numbers)[0]
    assert pair.get_chemical_formula() == host.get_chemical_formula() and len(changed) == 2
    assert k in changed and pair[k].symbol == "N"
    j = int(changed[changed != k][0])
    assert host[j].symbol == "N" and pair[j].symbol == "Ga"
    assert host.get_distance(k, j, mic=True) == pytest.approx(1.95, abs=0.02)
    frenkel = S.make_defect(host, "V_Ga+Ga_i")
    assert frenkel.get_chemical_formula() == host.get_chemical_formula()
    gap = np.linalg.norm(find_mic(frenkel.positions[-1] - host.positions[k], host.cell)[0])
    assert S.FRENKEL_SEPARATION_A <= gap < S.FRENKEL_SEPARATION_A + 3.0
    nearest = np.linalg.norm(find_mic(frenkel.positions[:-1] - frenkel.positions[-1],
                                      frenkel.cell)[0], axis=1).min()
    assert nearest > 1.8  # in a void, not on top of an atom
    with pytest.raises(DataError, match="larger supercell"):
        S.make_defect(S.supercell(S.wurtzite(3.18092, 5.19445), (1, 1, 1)), "V_Ga+Ga_i")


def test_defect_site_outside_the_cell_and_other_bad_input(host):
    with pytest.raises(DataError, match="outside the cell"):
        S.make_defect(host, "Ga_i", position=(0.0, 0.0, 50.0))
    with pytest.raises(DataError, match="outside the cell"):
        S.make_defect(host, "V_Ga", position=(-1.0, 0.0, 0.0))
    with pytest.raises(DataError, match="outside the cell"):
        S.make_defect(host, "V_Ga", index=500)
    with pytest.raises(DataError, match="not Ga"):
        S.make_defect(host, "V_Ga", index=1)  # atom 1 is N
    with pytest.raises(ConfigError, match="unknown defect"):
        S.make_defect(host, "V_O")


def test_void_sites_are_the_largest_empty_spheres(host):
    """Each void's radius is its distance to the nearest atom, and no point of the cell is
    farther from every atom than the largest void (5,000 random points), and a local search
    from the best of them finds no void that is not listed."""
    cands = S.interstitial_candidates(host, "N")
    voids = [c for c in cands if c["void_radius_A"] > 0]
    assert len(voids) >= 2 and [c["label"].startswith("split") for c in cands].count(True) == 2
    for c in voids:
        d = find_mic(host.positions - c["position_A"], host.cell)[0]
        assert np.linalg.norm(d, axis=1).min() == pytest.approx(c["void_radius_A"], abs=1e-3)
    pts = np.random.default_rng(0).random((5000, 3)) @ host.cell.array
    shifts = (np.array(list(np.ndindex(3, 3, 3))) - 1) @ host.cell.array
    images = (host.positions[None] + shifts[:, None]).reshape(-1, 3)
    nearest = np.sqrt(((pts[:, None] - images[None]) ** 2).sum(-1).min(1))
    assert nearest.max() <= voids[0]["void_radius_A"] + 1e-6
    # and none is missed: hill-climbing from the 8 best random points ends in listed voids
    from scipy.optimize import minimize

    radii = [c["void_radius_A"] for c in voids]
    for p in pts[np.argsort(nearest)[-8:]]:
        res = minimize(lambda x: -np.sqrt(((images - x) ** 2).sum(1).min()), p,
                       method="Nelder-Mead", options={"xatol": 1e-5, "fatol": 1e-8})
        assert min(abs(-res.fun - r) for r in radii) < 0.01


def test_slab_0001_layers_coordination_and_constraints():
    slab = S.slab_0001(S.wurtzite(3.18092, 5.19445), size=(2, 2), bilayers=4, vacuum_A=10.0,
                       fixed_bilayers=1)
    assert slab.get_chemical_formula() == "Ga16N16" and slab.pbc.tolist() == [1, 1, 0]
    z = slab.positions[:, 2]
    assert slab.cell[2, 2] - z.max() == pytest.approx(10.0)
    assert slab[int(np.argmax(z))].symbol == "N" and slab[int(np.argmin(z))].symbol == "Ga"
    coord, wrong = S.coordination(slab)
    top, bottom = z > z.max() - 0.1, z < z.min() + 0.1
    assert (coord[top] == 3).all() and (coord[bottom] == 3).all()  # one dangling bond
    assert (coord[~top & ~bottom] == 4).all() and not wrong.any()
    fixed = slab.constraints[0].get_indices()
    assert len(fixed) == 8 and z[fixed].max() < z.min() + 1.0


def test_interstitial_search_reports_lowest_and_spread_and_resumes(tmp_path):
    host = S.supercell(S.wurtzite(3.18092, 5.19445), (2, 2, 2))
    pot = TersoffBatched()
    res = S.interstitial_search(host, "N", pot, tmp_path, temperature_K=900.0,
                                anneal_steps=60, replicas=1, seed=1,
                                fmax_eV_A=0.05)
    quench = [r["quench_energy_eV"] for r in res["starts"]]
    every = quench + [e for r in res["starts"] for e in r["anneal_energies_eV"]]
    assert len(res["starts"]) == len(S.interstitial_candidates(host, "N"))
    assert res["lowest_energy_eV"] == pytest.approx(min(every))
    assert res["spread_quench_eV"] == pytest.approx(max(quench) - min(quench))
    assert res["improved_by_anneal_eV"] >= 0
    lowest = res["lowest"].copy()
    lowest.calc = TersoffGaN()
    assert lowest.get_potential_energy() == pytest.approx(res["lowest_energy_eV"], abs=1e-8)
    assert np.linalg.norm(lowest.get_forces(), axis=1).max() < 0.051
    again = S.interstitial_search(host, "N", pot, tmp_path, temperature_K=900.0,
                                  anneal_steps=60, replicas=1, seed=1,
                                  fmax_eV_A=0.05)
    assert again["lowest_energy_eV"] == pytest.approx(res["lowest_energy_eV"], abs=1e-9)
    with pytest.raises(ConfigError, match="> 0 K"):
        S.interstitial_search(host, "N", pot, tmp_path / "x", temperature_K=0.0)


def test_training_configurations_are_hotter_at_higher_temperature(tmp_path):
    """Mean-square displacement from the lattice grows with T (∝ T for a harmonic crystal):
    the 1200 K frames must be > 2x the 300 K ones."""
    cell = S.supercell(S.wurtzite(3.18092, 5.19445), (2, 2, 1))
    frames = S.training_configurations([cell], TersoffBatched(), [300.0, 1200.0], tmp_path,
                                       frames_per_cell=3, md_steps=200, strain=0.0, seed=0)
    assert len(frames) == 6 and {f.info["temperature_K"] for f in frames} == {300.0, 1200.0}
    msd = {}
    for f in frames:
        d = find_mic(f.positions - cell.positions, cell.cell)[0]
        d -= d.mean(0)
        msd.setdefault(f.info["temperature_K"], []).append((d**2).sum(1).mean())
    assert np.mean(msd[1200.0]) > 2.0 * np.mean(msd[300.0])
    assert all(f.calc is None and "momenta" not in f.arrays for f in frames)
    with pytest.raises(ConfigError, match="> 0 K"):
        S.training_configurations([cell], TersoffBatched(), [300.0, -1.0], tmp_path / "y")
