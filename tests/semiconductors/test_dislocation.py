"""The c-axis screw dislocation (semiconductors.dislocation) in Tersoff GaN.

* A Burgers circuit through the Ga columns around the core gives b = c (5.194 Å) before and
  after relaxation, a circuit that does not enclose the core and the same cylinder without
  the dislocation give 0 (to rounding): the relaxed core keeps its topology.
* The fixed shell is held, the inside relaxes to small forces, and the dislocation costs
  energy (E(with) − E(without) > 0 for the same atoms).
"""

from __future__ import annotations

import numpy as np
import pytest

from common.errors import ConfigError
from semiconductors.dislocation import burgers_circuit, screw_dislocation
from semiconductors.reference import TersoffBatched, TersoffGaN
from semiconductors.systems import relax, relaxed_lattice, wurtzite


@pytest.fixture(scope="module")
def prim():
    lat = relaxed_lattice(TersoffGaN())
    return wurtzite(lat["a_A"], lat["c_A"], lat["u"])


def test_burgers_circuit_recovers_c_after_relaxation(prim):
    c = float(prim.cell[2, 2])
    d = screw_dislocation(prim, 8.0)
    assert d.info["burgers_A"] == pytest.approx(c) and d.pbc.tolist() == [False, False, True]
    assert burgers_circuit(d, c) == pytest.approx(c, abs=1e-9)
    pot = TersoffBatched()
    r = relax(d, pot, 0.01, 2000)
    assert r.info["converged"]
    fixed = d.constraints[0].get_indices()
    assert len(fixed) == d.info["n_fixed"] > 0
    assert np.abs(r.positions[fixed] - d.positions[fixed]).max() == 0.0
    moved = np.setdiff1d(np.arange(len(d)), fixed)
    assert np.abs(r.positions[moved] - d.positions[moved]).max() > 0.01
    for lo, hi in ((3.0, 6.0), (5.0, 8.0)):
        assert burgers_circuit(r, c, r_min_A=lo, r_max_A=hi) == pytest.approx(c, abs=1e-6)
    off_core = np.array(d.info["core_A"]) + [5.5, 0.0]
    assert abs(burgers_circuit(r, c, centre_A=off_core, r_min_A=1.0, r_max_A=4.0)) < 1e-6
    perfect = relax(screw_dislocation(prim, 8.0, perfect=True), pot, 0.01, 2000)
    assert abs(burgers_circuit(perfect, c)) < 1e-9
    assert r.info["energy_eV"] - perfect.info["energy_eV"] > 1.0


def test_bad_dislocation_input(prim):
    with pytest.raises(ConfigError, match="radius"):
        screw_dislocation(prim, -1.0)
    with pytest.raises(ConfigError, match="n_c"):
        screw_dislocation(prim, 8.0, n_c=0)
    with pytest.raises(ConfigError, match="annulus"):
        burgers_circuit(screw_dislocation(prim, 8.0), 5.19, r_min_A=30.0, r_max_A=31.0)


@pytest.mark.slow
def test_energy_grows_as_ln_r_with_the_elastic_prefactor(prim):
    """E/L = K ln R_out + const with K = C44 b²/4π of the same potential: measured 1.06 vs
    1.10 eV/Å (R = 10-30 Å); tolerance 10 % (the free outer surface and the core's
    non-linear region bias the fit at these sizes; a wrong prefactor -- e.g. C66 or b = a --
    misses by far more)."""
    from semiconductors.dislocation import dislocation_energies

    res = dislocation_energies(prim, TersoffBatched(), [10.0, 15.0, 22.0], n_c=1)
    print(res)
    assert all(r["converged"] for r in res["rows"])
    assert all(r["burgers_circuit_A"] == pytest.approx(res["burgers_A"], abs=1e-6)
               for r in res["rows"])
    e = [r["energy_eV_per_A"] for r in res["rows"]]
    assert e[0] < e[1] < e[2]
    assert res["c44_GPa"] == pytest.approx(82.2, abs=0.5)
    assert res["fit_K_eV_per_A"] == pytest.approx(res["elastic_K_eV_per_A"], rel=0.10)
