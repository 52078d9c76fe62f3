"""CI-NEB barriers on a case with a known answer: a Au adatom hopping between neighbouring
hollow sites of Al(100) with ASE's EMT (the ASE NEB tutorial system, barrier ~0.37 eV)."""

from __future__ import annotations

import pytest
from ase.build import add_adsorbate, fcc100
from ase.calculators.emt import EMT
from ase.constraints import FixAtoms

from catalysis.barriers import event_barriers, neb_barrier
from common.errors import ConfigError


def _states():
    slab = fcc100("Al", size=(2, 2, 3))
    add_adsorbate(slab, "Au", 1.7, "hollow")
    slab.center(axis=2, vacuum=4.0)
    slab.set_constraint(FixAtoms(mask=[a.tag > 1 for a in slab]))
    final = slab.copy()
    final[-1].x += final.get_cell()[0, 0] / 2  # the next hollow site
    return slab, final


def test_au_on_al100_hop_barrier():
    ini, fin = _states()
    bar = neb_barrier(ini, fin, EMT, n_images=3, fmax_eV_A=0.05, steps=400)
    assert bar.neb_converged
    # symmetric hop: the two hollow sites are equivalent
    assert abs(bar.reaction_energy_eV) < 0.01
    # ASE's tutorial gives about 0.37 eV for this hop with EMT
    assert 0.30 < bar.barrier_eV < 0.45, bar.barrier_eV
    assert max(bar.energies_eV) > bar.energies_eV[0]


def test_event_barriers_keeps_going_after_a_failure():
    ini, fin = _states()
    frames = {"t": [ini, ini, fin, fin, fin]}
    events = [{"trajectory": "t", "frame": 2, "pathway": "A"},
              {"trajectory": "t", "frame": 2, "pathway": "B"}]
    res = event_barriers(frames, events, EMT, window_frames=2, n_images=3, fmax_eV_A=0.1,
                         steps=200)
    assert res["n"] == 2 and res["mean_eV"] == pytest.approx(res["barriers_eV"][0])
    bad = {"t": [ini, ini[:-1]]}  # different atoms: one failed NEB must not lose the others
    res = event_barriers({**frames, **{"u": bad["t"]}},
                         events[:1] + [{"trajectory": "u", "frame": 0, "pathway": "C"}], EMT,
                         window_frames=1, n_images=3, fmax_eV_A=0.1, steps=200)
    assert res["n"] == 1 and "error" in res["events"][1]


def test_neb_refuses_states_with_different_atoms():
    ini, fin = _states()
    with pytest.raises(ConfigError):
        neb_barrier(ini, fin[:-1], EMT)
