"""LAMMPS's own ``fix ti/spring`` (semiconductors.lammps_ti) as an independent check of the
pipeline's Frenkel–Ladd free energy of Tersoff GaN.

* No MD: the fixed-centroid Einstein formula (true Ga and N masses, one spring) equals
  thermo.harmonic_free_energy of the translation-invariant crystal with springs on the
  displacements from the centroid -- the same configurational integral, through the
  mass-weighted eigenvalue route and Λ of the total mass: checks the centre-of-mass algebra.
* Fast: 32-atom wurtzite at 20 K, forward + backward switching: the harmonic free energy
  (Hessian by finite differences) within 4 standard errors over cycles plus a bound on the
  anharmonic free energy (measured −5.1 meV/atom at 600 K by both TIs; ∝ T² to leading order
  for a classical crystal: bounded by 8 meV × (T/600 K)², < 0.01 meV at 20 K). Dropping the
  (3/2) ln N of the fixed centroid or the ln V of the free centre moves F by 0.28 or 0.35 meV
  here, > 7 of these standard errors.
* Slow: 72 atoms at 600 K, LAMMPS against ``frenkel_ladd`` with ``TersoffBatched`` (different
  springs, centre-of-mass treatment, path and MD engine): equal within 4 combined standard
  errors.
"""

from __future__ import annotations

import numpy as np
import pytest

from common.errors import ConfigError
from semiconductors.lammps_ti import einstein_free_energy_fixed_centroid, lammps_frenkel_ladd
from semiconductors.reference import TersoffBatched, TersoffGaN
from semiconductors.systems import relaxed_lattice, supercell, wurtzite
from semiconductors.thermo import frenkel_ladd, harmonic_free_energy, hessian

#: |F_anharmonic| per atom at 600 K is below this (measured: −5.1 meV, 72 atoms)
ANHARMONIC_600K_BOUND_EV = 8e-3


@pytest.fixture(scope="module")
def prim():
    lat = relaxed_lattice(TersoffGaN())
    return wurtzite(lat["a_A"], lat["c_A"], lat["u"])


def test_fixed_centroid_einstein_equals_harmonic_formula_with_two_masses(prim):
    atoms = supercell(prim, (2, 1, 1))  # 8 atoms: 4 Ga, 4 N
    n, k = len(atoms), 9.0
    h = k * np.kron(np.eye(n) - np.full((n, n), 1.0 / n), np.eye(3))  # ½kΣ|u_i − ū|²
    for t in (50.0, 900.0):
        assert einstein_free_energy_fixed_centroid(atoms, k, t) == pytest.approx(
            harmonic_free_energy(atoms, h, t), abs=1e-12)


def test_ti_spring_at_low_temperature_is_the_harmonic_free_energy(prim, tmp_path):
    atoms = supercell(prim, (2, 2, 2))
    h = hessian(atoms, TersoffBatched())
    calc_atoms = atoms.copy()
    calc_atoms.calc = TersoffGaN()
    e0 = calc_atoms.get_potential_energy()
    t = 20.0
    res = lammps_frenkel_ladd(atoms, t, n_cycles=4, switch_steps=3000, equilibration_steps=500,
                              seed=3, workdir=tmp_path)
    exact = harmonic_free_energy(atoms, h, t, e0)
    anharmonic = ANHARMONIC_600K_BOUND_EV * (t / 600.0) ** 2
    err = res["free_energy_err_eV_per_atom"]
    print(f"F(ti/spring) − F(harmonic) = {1e3 * (res['free_energy_eV_per_atom'] - exact):.4f}"
          f" ± {1e3 * err:.4f} meV/atom, dissipation {1e3 * res['dissipation_eV_per_atom']:.3f}"
          f" meV/atom, k = {res['spring_eV_per_A2']:.2f} eV/Å²")
    assert 0 < err < 1e-4
    assert abs(res["free_energy_eV_per_atom"] - exact) < 4 * err + anharmonic
    assert res["lattice_energy_eV_per_atom"] == pytest.approx(e0 / len(atoms), abs=1e-9)
    for c in res["cycles"]:  # full switches, and no work gained on a closed cycle on average
        assert c["lambda_end_forward"] == 1.0 and c["lambda_end_backward"] == 0.0
    assert res["dissipation_eV_per_atom"] > -2 * err
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "cycle0.dat", "cycle1.dat", "cycle2.dat", "cycle3.dat", "msd.dat"]


@pytest.mark.parametrize("change,word", [({"temperature_K": 0.0}, "temperature"),
                                         ({"n_cycles": 0}, "n_cycles"),
                                         ({"spring_eV_per_A2": -1.0}, "spring"),
                                         ({"switch_steps": 5}, "switch_steps")])
def test_bad_input_is_a_config_error(prim, change, word):
    kw = {"temperature_K": 300.0, **change}
    with pytest.raises(ConfigError, match=word):
        lammps_frenkel_ladd(supercell(prim, (2, 1, 1)), **kw)


@pytest.mark.slow
def test_ti_spring_agrees_with_the_pipelines_frenkel_ladd_at_600_K(prim, tmp_path):
    """72 atoms, 600 K. Measured (2 cores under load, 500 s): pipeline −4.54915 ± 0.00040,
    LAMMPS −4.54962 ± 0.00058 eV/atom, +0.67 σ; the harmonic value is −4.54452."""
    atoms = supercell(prim, (3, 3, 2))
    t = 600.0
    lam = lammps_frenkel_ladd(atoms, t, n_cycles=8, switch_steps=10000,
                              equilibration_steps=2000, seed=5)
    ours = frenkel_ladd(atoms, TersoffBatched(), [t], tmp_path / "fl", n_lambda=8,
                        steps_per_window=6000, equilibration_steps=1000, timestep_fs=1.0,
                        plot=False)["results"][0]
    diff = ours["free_energy_eV_per_atom"] - lam["free_energy_eV_per_atom"]
    sigma = np.hypot(ours["free_energy_err_eV_per_atom"], lam["free_energy_err_eV_per_atom"])
    print(f"pipeline {ours['free_energy_eV_per_atom']:.5f} ± "
          f"{ours['free_energy_err_eV_per_atom']:.5f}, LAMMPS {lam['free_energy_eV_per_atom']:.5f}"
          f" ± {lam['free_energy_err_eV_per_atom']:.5f} eV/atom: {diff / sigma:+.2f} σ")
    assert sigma < 1e-3
    assert abs(diff) < 4 * sigma
