"""common.events: bonds with hysteresis, species naming, events, lifetimes, statistics."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from ase.geometry import get_distances

from common.errors import ConfigError
from common.events import (
    BondCriteria,
    SpeciesLibrary,
    TimelinePanel,
    bond_retention,
    bond_series,
    close_contacts,
    detect_events,
    hill_formula,
    kaplan_meier,
    lifetime_statistics,
    molecule_graph,
    parse_cutoff_overrides,
    persistence_filter,
    plot_timeline,
    populations,
    proportions,
    reaction_network,
    species_in_frame,
    species_instances,
    species_series,
    t_interval,
    wilson_interval,
)

# ----------------------------------------------------------------------------------- bonds


def test_criteria_radius_rule_table_overrides_and_validation():
    c = BondCriteria()
    r_on, r_off = c.cutoffs("N", "N")  # radius rule: 1.2 / 1.45 x (0.71 + 0.71)
    assert r_on == pytest.approx(1.2 * 1.42) and r_off == pytest.approx(1.45 * 1.42)
    assert c.cutoffs("C", "O") == c.cutoffs("O", "C")
    t = BondCriteria(table={"C-C": (1.8, 2.2), ("O", "H"): (1.2, 1.45)})
    assert t.cutoffs("C", "C") == (1.8, 2.2) and t.cutoffs("H", "O") == (1.2, 1.45)
    assert t.cutoffs("N", "N") == c.cutoffs("N", "N")
    c2 = BondCriteria({"C-C": (1.7, 2.0)}, table={"C-C": (1.8, 2.2), "C-O": (1.7, 2.05)})
    assert c2.cutoffs("C", "C") == (1.7, 2.0) and c2.cutoffs("C", "O") == (1.70, 2.05)
    for bad in ({"C-C": (2.0, 1.8)}, {"C-C": (1.8, 1.8)}, {"C-O": (-1.0, 2.0)},
                {"C-Xx": (1.0, 2.0)}, {"CC": (1.0, 2.0)}, {"C-C": (1.0,)}):
        for kw in ({"overrides": bad}, {"table": bad}):
            with pytest.raises(ConfigError) as exc:
                BondCriteria(**kw)
            assert "\n" not in str(exc.value)
    assert parse_cutoff_overrides(["O-C=1.6,2.0"]) == {("C", "O"): (1.6, 2.0)}
    for bad in ("C-C=2", "C-C", "C-C=a,b", "C-C=2.0,1.0"):
        with pytest.raises(ConfigError):
            parse_cutoff_overrides([bad])


@pytest.mark.parametrize(("pair", "bond_A", "next_A"), [
    (("Li", "O"), 2.00, 2.9),   # Li2O / Li+ first solvation shell ~1.95-2.0; RDF minimum ~2.9
    (("P", "F"), 1.60, 2.6),    # PF6-; next: F of a neighbouring anion, or Li-F contacts
    (("N", "H"), 1.01, 1.9),    # NH3; an N···H hydrogen bond starts at ~1.9
    (("Ga", "N"), 1.95, 3.2),   # wurtzite GaN; the next Ga-N shell is at 3.2 Å
])
def test_radius_rule_gives_sensible_cutoffs_beyond_chno(pair, bond_A, next_A):
    r_on, r_off = BondCriteria().cutoffs(*pair)
    assert 1.1 * bond_A < r_on < r_off < next_A


def _count_bonds(atoms, pair):
    """Bonds between elements ``pair`` per atom of ``pair[0]``, and bonds within the anions."""
    bonds = bond_series([atoms])[0]
    sym = atoms.get_chemical_symbols()
    kinds = [tuple(sorted((sym[i], sym[j]))) for i, j in bonds]
    n_first = sym.count(pair[0])
    return kinds.count(tuple(sorted(pair))) / n_first, kinds.count((pair[1], pair[1]))


def test_radius_rule_bonds_in_real_structures():
    from ase.build import bulk

    gan = bulk("GaN", "wurtzite", a=3.189, c=5.185).repeat((3, 3, 2))
    assert _count_bonds(gan, ("Ga", "N")) == (4, 0)
    li2o = bulk("OLi2", "fluorite", a=4.61).repeat(2)
    assert _count_bonds(li2o, ("Li", "O")) == (4, 0)
    assert _count_bonds(molecule("NH3"), ("N", "H")) == (3, 0)
    octahedron = np.vstack([np.eye(3), -np.eye(3)]) * 1.60
    pf6 = Atoms("PF6", positions=np.vstack([np.zeros(3), octahedron]))
    assert _count_bonds(pf6, ("P", "F")) == (6, 0)


def _dimer_frames(distances, symbols="CC", pbc=False):
    return [Atoms(symbols, positions=[[5, 5, 5], [5 + d, 5, 5]], cell=[20, 20, 20], pbc=pbc)
            for d in distances]


def test_hysteresis():
    # C-C: on below 1.80, off above 2.20, band keeps the previous state
    d = [2.5, 2.0, 1.7, 2.0, 2.15, 2.3, 2.0, 1.79, 2.19, 2.21]
    crit = BondCriteria(table={"C-C": (1.80, 2.20)})
    got = [bool(s) for s in bond_series(_dimer_frames(d), criteria=crit)]
    assert got == [False, False, True, True, True, False, False, True, True, False]
    # first frame: no history, the midpoint (2.0 A) decides
    assert bond_series(_dimer_frames([1.95, 2.1]), criteria=crit)[0] == {(0, 1)}
    assert bond_series(_dimer_frames([2.05, 1.9]), criteria=crit)[0] == frozenset()


def test_bond_retention_counts_breaks_and_new_bonds():
    """Two waters; an H leaves the first O at frame 3 and bonds to the second O from frame 4:
    3 of the 4 start bonds kept, the first break at frame 3, one new bond at the end."""
    a = molecule("H2O")
    b = molecule("H2O")
    b.translate([6.0, 0.0, 0.0])
    pair = a + b
    frames = [pair.copy() for _ in range(6)]
    h = 1  # an H of the first water
    frames[3].positions[h] = [3.0, 0.0, 0.0]  # 3 Å from both O: no bond
    for f in frames[4:]:
        f.positions[h] = frames[4][3].position + [-0.96, 0.0, 0.0]  # on the second water's O
    got = bond_retention(frames)
    assert got["n_bonds"] == 4
    assert got["first_break_frame"] == 3
    assert got["kept_final"] == pytest.approx(3 / 4)
    assert got["kept_min"] == pytest.approx(3 / 4)
    assert got["new_bonds_final"] == 1
    intact = bond_retention([pair, pair])
    assert intact["kept_final"] == 1.0 and intact["first_break_frame"] is None
    assert bond_retention([frames[0]], atom_indices=[0])["n_bonds"] == 0


def test_persistence_filter():
    b = frozenset({(0, 1)})
    e = frozenset()
    s = [e, e, b, e, e, e, b, b, b, b, e, b, b, b]  # blip at 2; formed at 6; blip-off at 10
    got = persistence_filter(s, 3)
    assert got == [e] * 6 + [b] * 8
    # a change too close to the end cannot be confirmed
    assert persistence_filter([e, e, e, b, b], 3) == [e] * 5
    # a flicker in the first frames is not an event
    assert persistence_filter([b, e, e, e, e], 3) == [e] * 5
    assert persistence_filter(s, 1) == s
    with pytest.raises(ConfigError):
        persistence_filter(s, 0)


def test_bond_across_periodic_boundary():
    # CO straddling the x boundary of a hexagonal (60 deg) cell, atoms wrapped
    cell = [[10.0, 0, 0], [5.0, 8.66, 0], [0, 0, 20.0]]
    c = np.array([0.03, 0.4, 0.25]) @ np.array(cell)
    co = Atoms("CO", positions=[c, c - [1.15, 0, 0]], cell=cell, pbc=[True, True, False])
    co.wrap()
    assert abs(co.positions[0, 0] - co.positions[1, 0]) > 5.0
    assert bond_series([co])[0] == {(0, 1)}
    co.pbc = False
    assert bond_series([co])[0] == frozenset()


@pytest.mark.parametrize("box", [12.0, 4.0])  # 4 A: narrower than 2 r_max, exact fallback
def test_close_contacts_match_ase_minimum_image(box):
    rng = np.random.default_rng(3)
    cell = np.array([[box, 0, 0], [0.3 * box, box, 0], [0.1, 0.2, box]])
    frames = [Atoms("C6", positions=rng.uniform(0, box, (6, 3)), cell=cell, pbc=True)
              for _ in range(3)]
    f, i, j, d = close_contacts(frames, range(6), r_max=3.0)
    got = {(int(a), int(b), int(c)): x for a, b, c, x in zip(f, i, j, d, strict=True)}
    want = {}
    for k, a in enumerate(frames):
        _, dm = get_distances(a.positions, cell=a.cell, pbc=a.pbc)
        for p in range(6):
            for q in range(p + 1, 6):
                if dm[p, q] <= 3.0:
                    want[(k, p, q)] = dm[p, q]
    assert set(got) == set(want)
    for key, x in want.items():
        assert got[key] == pytest.approx(x)


def test_close_contacts_verlet_skin_exact_for_moving_atoms():
    # random walk (0.4 A steps, wrapped) forces many skin rebuilds; compare with ASE per frame
    rng = np.random.default_rng(5)
    cell = np.array([[9.0, 0, 0], [4.5, 7.8, 0], [0, 0, 9.0]])
    pos = rng.uniform(0, 7, (10, 3))
    frames = []
    for _ in range(40):
        pos = pos + rng.normal(0, 0.4, pos.shape)
        a = Atoms("C10", positions=pos, cell=cell, pbc=[True, True, False])
        a.wrap()
        frames.append(a)
    for skin in (0.3, 1.0):
        f, i, j, d = close_contacts(frames, range(5), range(5, 10), r_max=2.5, skin=skin)
        got = {(int(a), int(b), int(c)): x for a, b, c, x in zip(f, i, j, d, strict=True)}
        want = {}
        for k, a in enumerate(frames):
            _, dm = get_distances(a.positions[:5], a.positions[5:], cell=a.cell, pbc=a.pbc)
            for p, q in zip(*np.nonzero(dm <= 2.5), strict=True):
                want[(k, int(p), int(q) + 5)] = dm[p, q]
        assert set(got) == set(want) and len(want) > 10
        for key, x in want.items():
            assert got[key] == pytest.approx(x)


# --------------------------------------------------------------------------------- species


def _name(elements, bonds, lib=None):
    return (lib or SpeciesLibrary()).name(molecule_graph(elements, bonds))


def test_isomers_get_different_names():
    lib = SpeciesLibrary()
    assert _name(["C", "O", "O", "H"], [(0, 1), (0, 2), (2, 3)], lib) == "COOH"
    assert _name(["O", "H", "C", "O"], [(0, 2), (2, 3), (1, 2)], lib) == "HCOO"
    assert _name(["H", "C", "O"], [(0, 1), (1, 2)], lib) == "CHO"
    assert _name(["C", "O", "H"], [(0, 1), (1, 2)], lib) == "COH"
    assert _name(["O", "C", "C", "O"], [(0, 1), (1, 2), (2, 3)], lib) == "OCCO"
    assert _name(["C", "C", "O", "O"], [(0, 1), (0, 2), (0, 3)], lib).startswith("C2O2#")


def test_unknown_species_names_are_deterministic_and_formula_based():
    a = _name(["O", "O", "C", "C", "H", "H", "O"], [(0, 2), (2, 3), (3, 1), (3, 4), (4, 6),
                                                    (2, 5)])
    b = _name(["C", "C", "O", "O", "O", "H", "H"], [(0, 1), (0, 2), (1, 3), (1, 5), (5, 4),
                                                    (0, 6)])
    assert a.startswith("C2H2O3#") and a == b  # the same molecule, atoms in another order
    assert hill_formula(["O", "H", "H"]) == "H2O" and hill_formula("OCHHC") == "C2H2O"


def test_library_templates_and_errors():
    lib = SpeciesLibrary({"glycolaldehyde-like": (["C", "C", "O"], [(0, 1), (0, 2)])})
    assert _name(["O", "C", "C"], [(1, 2), (1, 0)], lib) == "glycolaldehyde-like"
    assert "CO" in lib.names
    with pytest.raises(ConfigError):
        lib.add("carbon monoxide", ["O", "C"], [(0, 1)])  # same graph as "CO"
    with pytest.raises(ConfigError):
        lib.add("broken", ["C", "O"], [])
    lib.add_atoms("acetaldehyde", molecule("CH3CHO"))
    assert _name(["O", "C", "H", "C", "H", "H", "H"], [(0, 1), (1, 2), (1, 3), (3, 4), (3, 5),
                                                       (3, 6)], lib) == "acetaldehyde"


def test_species_in_frame_with_marks():
    sym = ["C", "O", "H", "O", "H", "H", "H"]
    bonds = {(0, 1), (1, 2), (3, 4)}
    got = species_in_frame(bonds, range(7), sym, marked={0, 6})
    assert got == {("*COH", frozenset({0, 1, 2})), ("OH", frozenset({3, 4})),
                   ("H", frozenset({5})), ("*H", frozenset({6}))}


# ----------------------------------------------------------------------- events, gas phase


def _gas_frames():
    """OH + CH4 -> H2O + CH3 and CO + O -> CO2 at frame 5 (independent); 10 frames."""
    ch4 = molecule("CH4")
    h_idx = 1
    far_o = np.array([3.5, 0.0, 0.0])
    frames = []
    for k in range(10):
        p_ch4 = ch4.positions.copy()
        o = p_ch4[h_idx] + far_o
        oh_h = o + [0.0, 0.97, 0.0]
        if k >= 5:  # abstraction: H of CH4 goes to the O
            p_ch4[h_idx] = o + [-0.97, 0.0, 0.0]
        c2 = np.array([20.0, 0.0, 0.0])
        o2 = c2 + [1.13, 0, 0]
        o3 = c2 + ([-1.16, 0, 0] if k >= 5 else [-3.5, 0, 0])
        pos = np.vstack([p_ch4, o, oh_h, c2, o2, o3])
        frames.append(Atoms("CH4OHCOO", positions=pos))
    return frames


def test_gas_phase_events_grouped_by_shared_atoms():
    frames = _gas_frames()
    bonds = persistence_filter(bond_series(frames), 2)
    sym = frames[0].get_chemical_symbols()
    species = species_series(bonds, range(len(sym)), sym)
    assert {n for n, _ in species[0]} == {"CH4", "OH", "CO", "O"}
    events = detect_events(species, np.arange(10) * 0.01, bonds)
    got = sorted((e.frame, tuple(e.reactants), tuple(e.products)) for e in events)
    assert got == [(5, ("CH4", "OH"), ("CH3", "H2O")), (5, ("CO", "O"), ("CO2",))]
    abst = next(e for e in events if "CH4" in e.reactants)
    assert abst.bonds_broken == [(0, 1)] and abst.bonds_formed == [(1, 5)]
    assert abst.time_ps == pytest.approx(0.05)
    net = reaction_network(events + events[:1])
    assert net[0]["count"] == 2
    pop = populations(species)
    assert list(pop["CH4"]) == [1] * 5 + [0] * 5 and list(pop["H2O"]) == [0] * 5 + [1] * 5


def test_event_result_independent_of_atom_order():
    frames = _gas_frames()
    perm = np.random.default_rng(0).permutation(len(frames[0]))
    out = []
    for fr in (frames, [a[perm] for a in frames]):
        sym = fr[0].get_chemical_symbols()
        b = bond_series(fr)
        ev = detect_events(species_series(b, range(len(sym)), sym), None, b)
        out.append(sorted((e.frame, tuple(e.reactants), tuple(e.products)) for e in ev))
    assert out[0] == out[1]


# ------------------------------------------------------------------- lifetimes and stats


def test_instances_and_lifetimes_with_censoring():
    a, b, c, d = (frozenset({k}) for k in range(4))
    X, Y = "X", "Y"
    f = frozenset
    series = ([f({(X, a)})] * 2 + [f({(X, a), (Y, b)})] * 3 + [f({(X, a), (Y, c)})] * 4
              + [f({(Y, d)})] * 1)
    times = np.arange(10) * 0.5  # ps
    inst = species_instances(series, times)
    by = {(i.name, i.atoms): i for i in inst}
    assert by[(X, a)].left_censored and by[(X, a)].death_frame == 9
    assert by[(Y, b)].birth_frame == 2 and by[(Y, b)].death_frame == 5
    assert by[(Y, b)].duration_ps == pytest.approx(1.5)
    assert by[(Y, c)].duration_ps == pytest.approx(2.0)
    assert by[(Y, d)].death_frame is None and by[(Y, d)].duration_ps == pytest.approx(0.0)
    stats = lifetime_statistics(inst)
    assert set(stats) == {Y}
    s = stats[Y]
    assert s.n == 2 and s.n_censored == 1 and s.mean_ps == pytest.approx(1.75)
    lo, hi = s.ci95_ps  # t interval, 1 dof: 1.75 -+ 12.706 * 0.3536 / sqrt(2)
    assert lo == 0.0  # 1.75 - 3.18 < 0: a lifetime interval is clipped at zero
    assert hi == pytest.approx(1.75 + 12.7062 * 0.25, abs=1e-3)
    assert s.to_dict()["n"] == 2
    assert lifetime_statistics(inst, include_initial=True)[X].n == 1


def test_t_interval_edge_cases():
    assert t_interval([]) == (None, (None, None))
    assert t_interval([2.0]) == (2.0, (None, None))
    assert t_interval([1.0, 1.0, 1.0]) == (1.0, (1.0, 1.0))


def test_wilson_interval_hand_values():
    # p = 0.5, n = 10, z = 1.95996: centre 0.5, half-width 0.26341
    lo, hi = wilson_interval(5, 10)
    assert lo == pytest.approx(0.236593, abs=1e-6) and hi == pytest.approx(0.763407, abs=1e-6)
    lo, hi = wilson_interval(0, 10)  # z^2/n / (1 + z^2/n) = 0.384146 / 1.384146
    assert lo == 0.0 and hi == pytest.approx(0.277533, abs=1e-6)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ConfigError):
        wilson_interval(3, 2)
    p = proportions({"A": 1, "B": 3})
    assert p["B"]["fraction"] == 0.75 and p["B"]["ci95"] == list(wilson_interval(3, 4))
    assert proportions({"A": 0})["A"]["fraction"] is None


def test_kaplan_meier_hand_example():
    # events at 1, 2, 3; censored at 2 (still at risk at 2) and 4
    km = kaplan_meier([1, 2, 2, 3, 4], [True, True, False, True, False])
    assert list(km.times) == [1, 2, 3]
    assert list(km.n_at_risk) == [5, 4, 2]
    assert km.survival == pytest.approx([0.8, 0.6, 0.3])
    assert km([0.5, 1.0, 2.5, 10.0]) == pytest.approx([1.0, 0.8, 0.6, 0.3])
    assert km.median == 3.0


def test_plot_timeline(tmp_path):
    t = np.arange(10) * 0.1
    panel = TimelinePanel(t, {"CO": np.r_[np.ones(5), np.zeros(5)], "CO2": np.r_[np.zeros(5),
                          np.ones(5)]}, [{"time_ps": 0.5, "label": "A"}, {"time_ps": 0.2}],
                          "test")
    out = plot_timeline(tmp_path / "sub" / "t.png", [panel])
    assert out.exists() and out.stat().st_size > 1000


def test_lifetime_interval_is_clipped_at_zero():
    """Two very different lifetimes: the symmetric t interval (mean 0.155 ps, half-width
    12.71 * 0.145 = 1.84 ps) reaches far below zero; a lifetime cannot, so it is clipped."""
    from common.events.reactions import SpeciesInstance

    inst = [SpeciesInstance("X", frozenset({0}), 1, 2, 0.01, 0.02, 1.0, False),
            SpeciesInstance("X", frozenset({1}), 1, 31, 0.01, 0.31, 1.0, False)]
    st = lifetime_statistics(inst)["X"]
    assert st.n == 2
    lo, hi = st.ci95_ps
    assert lo == 0.0 and hi > 1.5
