"""catalysis.systems: Cu(111) slabs, adsorbate library, sites, placement, sampling, MD, window.

EMT is used only as fast plumbing (it gives energies and forces for Cu/C/H/O); nothing here is a
chemistry claim.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from ase import Atoms
from ase.build import add_adsorbate, fcc111
from ase.calculators.emt import EMT
from ase.constraints import FixAtoms
from ase.geometry import get_distances

from catalysis.systems import (
    ADSORBATES,
    C2_SPECIES,
    SEED_SPECIES,
    SITE_KINDS,
    cu111_slab,
    energy_window,
    fcc_lattice_constant,
    md_snapshots,
    place,
    place_many,
    sample_configurations,
    seed_library,
    sites,
    surface_atoms,
    water_layer,
)
from common.data import get_labels, with_labels
from common.errors import ConfigError, DataError, SimulationError

A_CU = 3.61
NN = A_CU / math.sqrt(2.0)  # in-plane nearest-neighbour distance of Cu(111), Å


def tiny() -> Atoms:
    return cu111_slab((3, 3, 3), fixed_layers=1, orthogonal=False)


def lateral(slab: Atoms, points: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Lateral minimum-image distances (n_points, n_targets), computed with ASE."""
    p = np.column_stack([points[:, :2], np.zeros(len(points))])
    q = np.column_stack([targets[:, :2], np.zeros(len(targets))])
    _, d = get_distances(p, q, cell=slab.cell, pbc=[True, True, False])
    return d


def adsorbate_atoms(a: Atoms, k: int) -> np.ndarray:
    return np.flatnonzero(a.arrays["adsorbate_id"] == k)


# -- slab ---------------------------------------------------------------------------------------


def test_paper_slab_is_96_atoms_in_4_layers_bottom_two_fixed():
    slab = cu111_slab()  # (4, 6, 4), orthogonal, 2 fixed layers
    assert len(slab) == 96
    assert set(slab.get_chemical_symbols()) == {"Cu"}
    tags = slab.get_tags()
    assert sorted(np.bincount(tags)[1:]) == [24] * 4
    z = slab.positions[:, 2]
    assert z[tags == 1].min() > z[tags == 2].max()  # tag 1 = top layer
    (fix,) = slab.constraints
    assert isinstance(fix, FixAtoms)
    fixed = np.zeros(96, bool)
    fixed[fix.index] = True
    assert fixed.sum() == 48 and set(tags[fixed]) == {3, 4}
    assert z[fixed].max() < z[~fixed].min()
    assert np.allclose(slab.cell.angles(), 90.0)
    assert set(surface_atoms(slab)) == set(np.flatnonzero(tags == 1))
    assert slab.info["slab"] == "Cu(111) 4x6x4"
    assert "adsorbate_info" not in slab.info  # extxyz cannot write ASE's dict of arrays
    # the vacuum: 10 Å on each side of the 3 interlayer spacings
    assert slab.cell[2, 2] == pytest.approx(20.0 + 3 * A_CU / math.sqrt(3.0))


def test_tiny_slab_and_no_fixed_layers():
    slab = tiny()
    assert len(slab) == 27 and len(slab.constraints[0].index) == 9
    assert cu111_slab((2, 2, 2), fixed_layers=0).constraints == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"size": (0, 6, 4)},
        {"size": (4, 6, 0)},
        {"size": (4, 6, 4), "fixed_layers": 4},
        {"size": (4, 6, 4), "fixed_layers": -1},
        {"size": (3, 3, 3)},  # odd ny in an orthogonal cell
        {"vacuum_A": 0.0},
        {"a_A": -3.6},
        {"size": "big"},
    ],
)
def test_slab_rejects_bad_options(kwargs):
    with pytest.raises(ConfigError, match="fix:"):
        cu111_slab(**kwargs)


def test_lattice_constant_from_the_labeller():
    a = fcc_lattice_constant(EMT())
    assert 3.55 < a < 3.65  # EMT Cu: ~3.59 Å
    assert len(cu111_slab((2, 2, 3), a_A=a)) == 12


# -- sites --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size, orthogonal", [((4, 6, 4), True), ((3, 3, 3), False), ((2, 2, 3), True),
                         ((1, 1, 2), False)]
)
def test_site_counts_per_cell(size, orthogonal):
    slab = cu111_slab(size, fixed_layers=1, orthogonal=orthogonal)
    n = size[0] * size[1]
    s = sites(slab)
    assert {k: len(v) for k, v in s.items()} == {"top": n, "bridge": 3 * n, "fcc": n, "hcp": n}
    z_top = slab.positions[slab.get_tags() == 1, 2].mean()
    for v in s.values():
        assert np.allclose(v[:, 2], z_top)
    # all distinct under periodic images
    allp = np.concatenate(list(s.values()))
    d = lateral(slab, allp, allp)
    np.fill_diagonal(d, np.inf)
    assert d.min() > 0.5


@pytest.mark.parametrize("size, orthogonal", [((4, 6, 4), True), ((3, 3, 3), False)])
def test_site_geometry(size, orthogonal):
    slab = cu111_slab(size, fixed_layers=1, orthogonal=orthogonal)
    tags = slab.get_tags()
    top, second, third = (slab.positions[tags == t] for t in (1, 2, 3))
    s = sites(slab)
    d = np.sort(lateral(slab, s["top"], top), axis=1)
    assert np.allclose(d[:, 0], 0.0, atol=1e-6) and np.allclose(d[:, 1], NN)
    # bridge: a/(2*sqrt 2) = nn/2 from exactly two surface atoms
    d = np.sort(lateral(slab, s["bridge"], top), axis=1)
    assert np.allclose(d[:, :2], NN / 2) and np.all(d[:, 2] > NN / 2 + 0.5)
    # hollows: equidistant (nn/sqrt 3) to three surface atoms
    for kind in ("fcc", "hcp"):
        d = np.sort(lateral(slab, s[kind], top), axis=1)
        assert np.allclose(d[:, :3], NN / math.sqrt(3)) and np.all(d[:, 3] > NN)
    # hcp over a second-layer atom, fcc over a third-layer atom (and not over the second)
    assert np.allclose(lateral(slab, s["hcp"], second).min(axis=1), 0.0, atol=1e-6)
    assert np.all(lateral(slab, s["fcc"], second).min(axis=1) > 1.0)
    assert np.allclose(lateral(slab, s["fcc"], third).min(axis=1), 0.0, atol=1e-6)
    # ASE's own single site of each kind (on the same fcc111 slab) is one of ours
    for kind, ase_kind in [("top", "ontop"), ("bridge", "bridge"), ("fcc", "fcc"),
                           ("hcp", "hcp")]:
        ref = fcc111("Cu", size, a=A_CU, vacuum=10.0, orthogonal=orthogonal)
        assert np.allclose(ref.positions, slab.positions)
        add_adsorbate(ref, "H", 1.0, ase_kind)
        assert lateral(slab, ref.positions[-1:], s[kind]).min() < 1e-6


def test_sites_of_a_slab_with_adsorbates_and_rejects_bad_cells():
    slab = place(tiny(), "CO", "top")
    assert {k: len(v) for k, v in sites(slab).items()} == {"top": 9, "bridge": 27, "fcc": 9,
                                                          "hcp": 9}
    molecule = Atoms("CO", positions=[[0, 0, 0], [0, 0, 1.15]])
    with pytest.raises(ConfigError, match="xy plane"):
        sites(molecule)
    with pytest.raises(ConfigError, match="fcc/hcp"):
        sites(cu111_slab((2, 2, 1), fixed_layers=0))


# -- adsorbate library --------------------------------------------------------------------------


BOND_RANGES = {  # Å, bonded pairs (closer than 1.6 Å)
    ("C", "O"): (1.15, 1.45),
    ("H", "O"): (0.95, 0.99),
    ("C", "H"): (1.08, 1.12),
    ("C", "C"): (1.45, 1.55),
}
FORMULAS = {"CO2": "CO2", "CO": "CO", "COOH": "CHO2", "HCOO": "CHO2", "CHO": "CHO",
            "COH": "CHO", "CH2O": "CH2O", "OCH3": "CH3O", "H2O": "H2O", "OH": "HO", "H": "H",
            "O": "O", "OCCO": "C2O2", "OCCHO": "C2HO2", "OCCH2O": "C2H2O2"}


def test_library_species():
    assert len(SEED_SPECIES) == 12 and len(set(SEED_SPECIES)) == 12
    assert set(ADSORBATES) == set(SEED_SPECIES) | set(C2_SPECIES)
    assert {k: e.formula for k, e in ADSORBATES.items()} == FORMULAS


@pytest.mark.parametrize("name", list(ADSORBATES))
def test_molecule_geometry_is_sane(name):
    entry = ADSORBATES[name]
    mol = entry.atoms()
    assert mol.info["adsorbate"] == name
    assert set(entry.sites) <= set(SITE_KINDS) and entry.sites
    assert 1 <= len(entry.binding) <= 2 and entry.binding[0] == 0  # binding atom first
    assert 0.8 < entry.metal_bond_A < 3.5
    pos, sym = mol.positions, mol.get_chemical_symbols()
    # adsorption orientation: binding atom(s) at z = 0, centred on the origin, the rest above
    assert np.allclose(pos[list(entry.binding), 2], 0.0)
    assert np.allclose(pos[list(entry.binding), :2].mean(axis=0), 0.0, atol=1e-6)
    assert pos[:, 2].min() > -1e-6
    if len(mol) > 1:
        d = mol.get_all_distances()
        np.fill_diagonal(d, np.inf)
        assert d.min() > 0.9
        hh = np.logical_and.outer(np.array(sym) == "H", np.array(sym) == "H")
        assert np.all(d[hh] > 1.4)  # no H2 inside a molecule
        bonded = (d < 1.6) & ~hh
        for i, j in zip(*np.nonzero(np.triu(bonded)), strict=True):
            lo, hi = BOND_RANGES[tuple(sorted((sym[i], sym[j])))]
            assert lo <= d[i, j] <= hi, (name, sym[i], sym[j], d[i, j])
        # one connected molecule
        seen, todo = {0}, [0]
        while todo:
            k = todo.pop()
            for m in np.flatnonzero(bonded[k]):
                if m not in seen:
                    seen.add(int(m))
                    todo.append(int(m))
        assert seen == set(range(len(mol)))
    # H2O and the sp3 carbons have sane angles
    if name == "H2O":
        assert mol.get_angle(1, 0, 2) == pytest.approx(104.5, abs=0.1)
    if name == "OCH3":
        assert all(105 < mol.get_angle(h, 1, k) < 114 for h, k in [(2, 3), (3, 4), (2, 4)])


def test_library_is_not_mutable_through_atoms():
    a = ADSORBATES["CO"].atoms()
    a.positions += 5.0
    assert np.allclose(ADSORBATES["CO"].atoms().positions[0], 0.0)


# -- placement ----------------------------------------------------------------------------------


def test_place_on_each_site_kind_at_the_requested_height():
    slab = tiny()
    s = sites(slab)
    z_top = s["top"][0, 2]
    top = slab.positions[slab.get_tags() == 1]
    for kind in SITE_KINDS:
        for i in (0, len(s[kind]) - 1):
            a = place(slab, "H", (kind, i), height_A=1.3)
            h = a.positions[-1]
            assert lateral(slab, h[None], s[kind][i][None])[0, 0] < 1e-6
            assert h[2] == pytest.approx(z_top + 1.3)
    # default height from the metal bond: top = bond; fcc: sqrt(d^2 - (nn/sqrt3)^2)
    co = place(slab, "CO", "top")
    c, o = co.positions[-2], co.positions[-1]
    assert lateral(slab, c[None], top).min() < 1e-6
    assert c[2] - z_top == pytest.approx(ADSORBATES["CO"].metal_bond_A)
    assert o[2] - c[2] == pytest.approx(1.15) and np.allclose(o[:2], c[:2])
    hf = place(slab, "H", "fcc").positions[-1]
    want = math.sqrt(ADSORBATES["H"].metal_bond_A ** 2 - NN**2 / 3)
    assert hf[2] - z_top == pytest.approx(want, abs=1e-6)
    _, d_cu = get_distances(hf, top, cell=slab.cell, pbc=slab.pbc)
    assert np.allclose(np.sort(d_cu[0])[:3], ADSORBATES["H"].metal_bond_A)  # 3 Cu-H bonds
    # an int indexes the top, bridge, fcc, hcp concatenation; (x, y) is a position
    n_top = len(s["top"])
    a = place(slab, "O", n_top + 1)
    assert lateral(slab, a.positions[-1:], s["bridge"][1][None])[0, 0] < 1e-6
    a = place(slab, "O", (1.0, 2.0), height_A=1.5)
    assert np.allclose(a.positions[-1], [1.0, 2.0, z_top + 1.5])


def test_place_bookkeeping_and_bidentate_alignment():
    slab = tiny()
    before = slab.positions.copy()
    a = place(slab, "HCOO", "bridge")
    assert np.array_equal(slab.positions, before) and len(slab) == 27  # input untouched
    assert len(a) == 31 and a.info["adsorbates"] == "HCOO"
    assert list(a.get_tags()[27:]) == [0] * 4
    assert list(a.arrays["adsorbate_id"]) == [-1] * 27 + [0] * 4
    assert list(a.constraints[0].index) == list(slab.constraints[0].index)
    # both O over the Cu-Cu pair of the bridge: same height, each O nearest to its own Cu
    o = a.positions[[27, 29]]
    assert o[0, 2] == pytest.approx(o[1, 2])
    top = slab.positions[slab.get_tags() == 1]
    d = lateral(slab, o, top)
    nearest = d.argmin(axis=1)
    assert nearest[0] != nearest[1] and np.all(d.min(axis=1) < 0.3)
    free_top = sites(a)["top"][lateral(a, sites(a)["top"], o).min(axis=1).argmax()]
    with pytest.raises(ConfigError, match="would be"):
        place(a, "CO", "top")  # the top site nearest the centre is under an O of HCOO
    b = place(a, "CO", free_top, rotation_deg=30.0)
    assert b.info["adsorbates"] == "HCOO+CO" and set(b.arrays["adsorbate_id"][31:]) == {1}


def test_place_errors():
    slab = place(tiny(), "H", ("fcc", 0))
    with pytest.raises(ConfigError, match="would be"):
        place(slab, "H", ("fcc", 0))  # the site is taken
    with pytest.raises(ConfigError, match="unknown adsorbate"):
        place(slab, "CO3", "top")
    with pytest.raises(ConfigError, match="unknown site"):
        place(slab, "CO", "hollow")
    with pytest.raises(ConfigError, match="does not exist"):
        place(slab, "CO", ("top", 9))
    with pytest.raises(ConfigError, match="out of range"):
        place(slab, "CO", 1000)
    with pytest.raises(ConfigError, match="vacuum"):
        place(cu111_slab((3, 3, 3), vacuum_A=2.0, orthogonal=False), "OCH3", "fcc")


def _adsorbate_separation(a: Atoms) -> float:
    ids = a.arrays["adsorbate_id"]
    ads = np.flatnonzero(ids >= 0)
    _, d = get_distances(a.positions[ads], cell=a.cell, pbc=a.pbc)
    same = ids[ads][:, None] == ids[ads][None, :]
    return float(d[~same].min())


def test_place_many_counts_separation_and_seed():
    slab = cu111_slab()
    a = place_many(slab, {"CO": 3, "H": 2, "OH": 1}, seed=1)
    names = a.info["adsorbates"].split("+")
    assert sorted(names) == ["CO", "CO", "CO", "H", "H", "OH"]
    assert len(a) == 96 + 3 * 2 + 2 + 2
    assert _adsorbate_separation(a) >= 2.5
    _, d = get_distances(a.positions[96:], a.positions[:96], cell=a.cell, pbc=a.pbc)
    assert d.min() > 0.9
    assert np.allclose(place_many(slab, {"CO": 3, "H": 2, "OH": 1}, seed=1).positions,
                       a.positions)
    assert not np.allclose(place_many(slab, {"CO": 3, "H": 2, "OH": 1}, seed=2).positions,
                           a.positions)
    # coverage in ML = adsorbates per surface atom, split by weights
    b = place_many(slab, {"CO": 1, "H": 1}, coverage_ML=0.25, seed=0)
    assert b.info["coverage_ML"] == pytest.approx(0.25)
    assert sorted(b.info["adsorbates"].split("+")) == ["CO"] * 3 + ["H"] * 3


def test_place_many_errors():
    slab = tiny()
    with pytest.raises(ConfigError, match="only 18 fcc/hcp sites"):
        place_many(slab, "H", coverage_ML=3.0)
    with pytest.raises(ConfigError, match="could not place"):
        place_many(slab, {"CO": 10}, min_separation_A=2.5, max_tries=3)
    with pytest.raises(ConfigError, match="< 1 adsorbate"):
        place_many(slab, "CO", coverage_ML=0.01)
    with pytest.raises(ConfigError, match="coverage_ML"):
        place_many(slab, ["CO", "H"])
    with pytest.raises(ConfigError, match="integers"):
        place_many(slab, {"CO": 1.5})


def test_water_layer_sits_on_the_surface_and_above_adsorbates():
    slab = place(tiny(), "CO", "top")
    z_top = sites(slab)["top"][0, 2]
    a = water_layer(slab, n_water=3, seed=0)
    assert a.info["n_water"] == 3 and a.info["adsorbates"] == "CO"
    assert a.get_chemical_formula(mode="hill") == "CH6Cu27O4"
    ids = a.arrays["adsorbate_id"]
    assert sorted(set(ids[29:])) == [1, 2, 3]
    o_w = a.positions[29::3]
    assert np.all(o_w[:, 2] >= z_top + 2.3 - 1e-9)
    assert _adsorbate_separation(a) >= 1.6
    _, d_oo = get_distances(o_w, np.vstack([o_w, a.positions[27:29]]), cell=a.cell, pbc=a.pbc)
    d_oo[np.arange(3), np.arange(3)] = np.inf
    assert d_oo.min() >= 2.5
    co_o = a.positions[28]
    near = lateral(a, o_w, co_o[None])[:, 0] < 2.6
    assert np.all(o_w[near, 2] >= co_o[2] + 2.3 - 1e-9)
    assert len(water_layer(tiny(), seed=0)) == 27 + 3 * 4  # default 0.5 ML of 9 sites -> 4
    assert len(water_layer(cu111_slab(), coverage_ML=0.5, seed=1)) == 96 + 3 * 12
    with pytest.raises(ConfigError):
        water_layer(slab, n_water=3, coverage_ML=0.5)
    with pytest.raises(ConfigError, match="could not place"):
        water_layer(tiny(), n_water=30, max_tries=2)


# -- training configurations --------------------------------------------------------------------


def test_sample_configurations_rattle_and_displace():
    base = [place(tiny(), "CO", "top"), place(tiny(), "H", "fcc")]
    frames = sample_configurations(base, 5, rattle_A=(0.05, 0.1), seed=3)
    assert [f.info["source_index"] for f in frames] == [0, 1, 0, 1, 0]
    fixed = base[0].constraints[0].index
    for f in frames:
        src = base[f.info["source_index"]]
        assert f.calc is None and len(f) == len(src)
        assert 0.05 <= f.info["rattle_A"] <= 0.1
        dx = f.positions - src.positions
        assert np.allclose(dx[fixed], 0.0)
        free = np.setdiff1d(np.arange(len(f)), fixed)
        rms = np.sqrt((dx[free] ** 2).mean())
        assert 0.02 < rms < 0.2
    again = sample_configurations(base, 5, rattle_A=(0.05, 0.1), seed=3)
    assert all(np.allclose(a.positions, b.positions) for a, b in zip(frames, again, strict=True))
    moved = sample_configurations(base[0], 3, rattle_A=(0.0, 0.0), seed=0, strategy="displace")
    for f in moved:
        assert np.allclose(f.positions[:27], base[0].positions[:27])
        co = f.positions[27:]
        assert np.linalg.norm(co[1] - co[0]) == pytest.approx(1.15)  # rigid move
    with pytest.raises(ConfigError):
        sample_configurations([], 2)
    with pytest.raises(ConfigError):
        sample_configurations(base, 2, rattle_A=(0.2, 0.1))
    with pytest.raises(ConfigError):
        sample_configurations(base, 2, strategy="anneal")
    with pytest.raises(ConfigError, match="adsorbate_id"):
        sample_configurations(tiny(), 1, strategy="displace")


def _emt_labelled(frames: list[Atoms]) -> list[Atoms]:
    out = []
    for f in frames:
        f = f.copy()
        f.calc = EMT()
        out.append(with_labels(f, energy=f.get_potential_energy(),
                               forces=f.get_forces(apply_constraint=False)))
    return out


def test_energy_window_keeps_frames_near_each_compositions_minimum():
    co = place(tiny(), "CO", "top")
    clean = tiny()
    gentle = sample_configurations(co, 3, rattle_A=(0.02, 0.05), seed=0)
    hot = sample_configurations(co, 2, rattle_A=(0.3, 0.3), seed=1)  # EMT: > 20 eV up
    slab_frames = sample_configurations(clean, 2, rattle_A=(0.02, 0.05), seed=2)
    frames = _emt_labelled(gentle + hot + slab_frames)
    e = np.array([get_labels(f)["energy"] for f in frames])
    kept, report = energy_window(frames, window_eV=3.0)
    assert report.n_in == 7 and report.n_kept == 5 and report.n_dropped == 2
    assert [d["index"] for d in report.dropped] == [3, 4]
    assert kept == [frames[i] for i in (0, 1, 2, 5, 6)]
    comp = report.compositions
    assert set(comp) == {"CCu27O", "Cu27"}
    assert comp["CCu27O"]["e_min_eV"] == pytest.approx(e[:5].min())
    assert comp["Cu27"]["e_min_eV"] == pytest.approx(e[5:].min())
    assert comp["CCu27O"]["n"] == 5 and comp["CCu27O"]["n_kept"] == 3
    for d in report.dropped:
        assert d["delta_eV"] > 3.0
    assert report.to_dict()["n_dropped"] == 2
    # a window wide enough keeps everything
    assert energy_window(frames, window_eV=1e4)[1].n_dropped == 0


def test_energy_window_needs_energies():
    frames = _emt_labelled([tiny()]) + [tiny()]
    with pytest.raises(DataError, match="frame 1: no energy"):
        energy_window(frames)
    bad = with_labels(tiny(), energy=float("nan"))
    with pytest.raises(DataError, match="non-finite"):
        energy_window([bad])
    with pytest.raises(ConfigError):
        energy_window(frames[:1], window_eV=0.0)


def test_md_snapshots_emt_frames_are_labelled():
    start = place(tiny(), "CO", "top")
    frames = md_snapshots(start, EMT(), n_frames=3, temperature_K=300.0, timestep_fs=1.0,
                          interval=2, seed=4)
    assert len(frames) == 3
    assert [f.info["md_step"] for f in frames] == [2, 4, 6]
    assert [f.info["md_time_fs"] for f in frames] == [2.0, 4.0, 6.0]
    fixed = start.constraints[0].index
    for f in frames:
        lab = get_labels(f)
        assert np.isfinite(lab["energy"]) and lab["forces"].shape == (29, 3)
        assert np.abs(lab["forces"][fixed]).max() > 0  # raw labels, not constrained forces
        assert np.allclose(f.positions[fixed], start.positions[fixed])  # bottom layer fixed
        assert f.info["temperature_K"] == 300.0 and f.info["md_temperature_K"] > 0
        # the label is the EMT energy of the frame
        g = f.copy()
        g.calc = EMT()
        assert g.get_potential_energy() == pytest.approx(lab["energy"])
    assert not np.allclose(frames[0].positions, frames[2].positions)
    again = md_snapshots(start, "emt", n_frames=3, temperature_K=300.0, timestep_fs=1.0,
                         interval=2, seed=4)
    assert np.allclose(again[-1].positions, frames[-1].positions)
    assert start.calc is None  # the input is not touched


def test_md_snapshots_guard_and_options():
    start = place(tiny(), "CO", "top")
    with pytest.raises(SimulationError, match="blew up") as err:
        md_snapshots(start, EMT(), n_frames=2, interval=1, max_force_eV_A=1e-6)
    assert err.value.frames == []
    with pytest.raises(ConfigError):
        md_snapshots(start, EMT(), n_frames=0)
    with pytest.raises(ConfigError):
        md_snapshots(start, EMT(), n_frames=1, timestep_fs=0.0)
    with pytest.raises(ConfigError, match="not an ASE calculator"):
        md_snapshots(start, object(), n_frames=1)


# -- the case study's starting structures ------------------------------------------------------


def test_seed_library_tiny():
    lib = seed_library("tiny", seed=0)
    names = [a.info["name"] for a in lib]
    assert names == ["clean", "CO@top", "H@fcc", "COOH@top", "CHO@top", "CO+CO", "CO+CHO"]
    for a in lib:
        assert a.info["scale"] == "tiny"
        assert int((a.get_tags() > 0).sum()) == 27
        _, d = get_distances(a.positions, cell=a.cell, pbc=a.pbc)
        np.fill_diagonal(d, np.inf)
        assert d.min() > 0.9
    for a in lib[-2:]:  # coupling pairs on neighbouring sites: the two C within 3 Å
        ids = a.arrays["adsorbate_id"]
        c0, c1 = a.positions[adsorbate_atoms(a, 0)[0]], a.positions[adsorbate_atoms(a, 1)[0]]
        _, dcc = get_distances(c0, c1, cell=a.cell, pbc=a.pbc)
        assert 2.0 < dcc[0, 0] < 3.0
        assert _adsorbate_separation(a) >= 2.0 and set(ids[ids >= 0]) == {0, 1}
    again = seed_library("tiny", seed=0)
    assert all(np.allclose(a.positions, b.positions) for a, b in zip(lib, again, strict=True))
    with pytest.raises(ConfigError):
        seed_library("huge")


def test_seed_library_paper_uses_the_96_atom_slab_and_every_species():
    lib = seed_library("paper", seed=0, include_clean=False)
    assert all(int((a.get_tags() > 0).sum()) == 96 for a in lib)
    species = {n for a in lib for n in a.info["adsorbates"].split("+")}
    assert species == set(ADSORBATES)
    pairs = [a.info["name"] for a in lib if "+" in a.info["name"]]
    assert {"CO+CO", "CO+CHO", "CO+CH2O"} <= set(pairs)
