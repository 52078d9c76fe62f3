"""Quasi-classical normal-mode sampling (atmospheric.normal_modes) on harmonic spring models
whose frequencies are known in closed form.

Statistical tolerances: a sample mean must lie within 4 of its standard errors of the exact
mean (a false alarm 6e-5 of the time; seeds fixed, so a pass is reproducible).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from ase import Atoms, units

from atmospheric.normal_modes import (
    HBAR_EV_ASE_TIME,
    mode_displacements,
    normal_modes,
    sample_normal_mode_states,
    vibrational_energy_of_modes,
)
from common.errors import ConfigError, DataError
from common.potential.protocol import evaluate

KT = units.kB * 300.0
K_BOND, R0, MASS = 0.8, 2.0, 10.0  # eV/Å^2, Å, amu: hbar omega = kT at 300 K, near enough


def _internal_energies(pot, modes, positions, velocities) -> np.ndarray:
    """V(x) - V(x0) + kinetic energy of each state, measured on the potential (one batched
    call; not the sampler's own numbers)."""
    m = modes.masses
    frames = [Atoms(modes.symbols, positions=p, masses=m) for p in positions]
    e = evaluate(pot, frames)["energy"].numpy()
    vel = np.array(velocities)
    assert np.abs((m[None, :, None] * vel).sum(1)).max() < 1e-12  # no centre-of-mass motion
    return e - modes.energy_eV + 0.5 * (m[None, :, None] * vel**2).sum((1, 2))


@pytest.fixture
def diatomic(pair_model):
    pot = pair_model({("H", "H"): ("harmonic", K_BOND, R0)}, cutoff=5.0)
    mol = Atoms("H2", positions=[[0, 0, 0], [0.1, 0.0, R0 + 0.1]], masses=[MASS, MASS])
    return pot, normal_modes(mol, pot)  # relaxed from a stretched, tilted start


def test_diatomic_quantum_and_per_state_energy_are_exact(diatomic):
    """One mode (linear), hbar omega = hbar sqrt(k / mu); every sampled state carries exactly
    (v + 1/2) hbar omega in its mode, both by projection on the mode and on the potential."""
    pot, modes = diatomic
    hw = HBAR_EV_ASE_TIME * math.sqrt(K_BOND / (MASS / 2))
    assert modes.linear and modes.n_modes == 1
    assert modes.hbar_omega_eV[0] == pytest.approx(hw, rel=1e-6)
    wavenumber = hw * units._e / (units._hplanck * units._c * 100)
    assert modes.frequencies_cm1[0] == pytest.approx(wavenumber, rel=1e-6)
    assert modes.zpe_eV == pytest.approx(hw / 2, rel=1e-6)
    s = sample_normal_mode_states(modes, 300, 300.0, np.random.default_rng(1),
                                  vibration="thermal", rotation=False, potential=pot)
    want = (s["quanta"][:, 0] + 0.5) * modes.hbar_omega_eV[0]
    got = [vibrational_energy_of_modes(modes, p, v)[0]
           for p, v in zip(s["positions"], s["velocities"], strict=True)]
    np.testing.assert_allclose(got, want, rtol=1e-9)
    # on the potential: the minimum is found to 1e-4 eV/Å, so to 1e-6 relative
    np.testing.assert_allclose(_internal_energies(pot, modes, s["positions"], s["velocities"]),
                               want, rtol=1e-6)
    zpe = sample_normal_mode_states(modes, 50, 300.0, np.random.default_rng(2),
                                    vibration="zpe", rotation=False, potential=pot)
    assert (zpe["quanta"] == 0).all()
    np.testing.assert_allclose(zpe["vibrational_eV"], modes.zpe_eV, rtol=1e-6)


def test_diatomic_thermal_internal_energy_has_the_quantum_mean(diatomic):
    """v from the Boltzmann distribution: <v> = 1 / (e^x - 1); internal energy (on the
    potential, rotation included) has the mean (hbar omega / 2) coth(x / 2) + kT (harmonic
    oscillator + classical linear rotor), x = hbar omega / kT."""
    pot, modes = diatomic
    n = 2000
    s = sample_normal_mode_states(modes, n, 300.0, np.random.default_rng(3),
                                  vibration="thermal", rotation=True, potential=pot)
    x = modes.hbar_omega_eV[0] / KT
    v = s["quanta"][:, 0]
    mean_v = 1 / math.expm1(x)
    sd_v = math.sqrt(math.exp(x)) / math.expm1(x)
    assert abs(v.mean() - mean_v) < 4 * sd_v / math.sqrt(n), (v.mean(), mean_v)
    e = _internal_energies(pot, modes, s["positions"], s["velocities"])
    exact = modes.hbar_omega_eV[0] / 2 / math.tanh(x / 2) + KT
    assert abs(e.mean() - exact) < 4 * e.std() / math.sqrt(n), (e.mean(), exact)
    assert modes.mean_thermal_vibrational_energy_eV(300.0) + KT == pytest.approx(exact)
    # the rotational part alone: two classical rotational degrees of freedom, kT
    r = s["rotational_eV"]
    assert abs(r.mean() - KT) < 4 * KT / math.sqrt(n), (r.mean(), KT)
    np.testing.assert_allclose(e, s["vibrational_eV"] + r, rtol=1e-9, atol=1e-12)


def _water_like(pair_model):
    d, theta = 0.96, math.radians(104.5)
    mol = Atoms("OH2", positions=[[0, 0, 0], [d, 0, 0],
                                  [d * math.cos(theta), d * math.sin(theta), 0]])
    hh = float(np.linalg.norm(mol.positions[1] - mol.positions[2]))
    springs = {("O", "H"): (30.0, d), ("H", "H"): (4.0, hh)}
    pot = pair_model({p: ("harmonic", *v) for p, v in springs.items()}, cutoff=3.0)
    return mol, pot, springs


def _spring_frequencies(mol: Atoms, springs: dict) -> np.ndarray:
    """Exact harmonic frequencies of a spring network at rest length: the Hessian is
    sum over springs of k u u^T in the (i, i), (j, j) blocks and -k u u^T in (i, j)."""
    n, sym = len(mol), mol.get_chemical_symbols()
    h = np.zeros((3 * n, 3 * n))
    for i in range(n):
        for j in range(i + 1, n):
            k = springs.get((sym[i], sym[j]), springs.get((sym[j], sym[i])))[0]
            u = mol.positions[j] - mol.positions[i]
            b = k * np.outer(u, u) / (u @ u)
            for a, c, sgn in ((i, i, 1), (j, j, 1), (i, j, -1), (j, i, -1)):
                h[3 * a:3 * a + 3, 3 * c:3 * c + 3] += sgn * b
    im = 1 / np.sqrt(np.repeat(mol.get_masses(), 3))
    lam = np.sort(np.linalg.eigvalsh(h * im[:, None] * im[None, :]))[-3:]
    return np.sqrt(lam)


def test_triatomic_modes_per_mode_energies_and_internal_energy(pair_model):
    """A bent spring triatomic (three modes): finite-difference frequencies equal the exact
    ones; a harmonic state built with energies E_i has E_i in mode i; sampled states carry
    their target on the potential (energy matching) and the internal energy has the mean
    sum_i (hbar omega_i / 2) coth(hbar omega_i / 2kT) + 3/2 kT."""
    mol, pot, springs = _water_like(pair_model)
    modes = normal_modes(mol, pot)
    assert modes.n_modes == 3 and not modes.linear
    # central differences of a pair-spring network: error O(delta^2), 6e-5 here
    np.testing.assert_allclose(modes.omega, _spring_frequencies(mol, springs), rtol=2e-4)
    rng = np.random.default_rng(4)
    for _ in range(20):
        e = rng.uniform(0.01, 0.5, 3)
        dx, dv = mode_displacements(modes, e, rng.uniform(0, 2 * math.pi, 3))
        np.testing.assert_allclose(
            vibrational_energy_of_modes(modes, modes.positions + dx, dv), e, rtol=1e-9)
    n = 1000
    s = sample_normal_mode_states(modes, n, 300.0, rng, vibration="thermal", potential=pot)
    np.testing.assert_allclose(s["vibrational_eV"], s["vibrational_target_eV"], rtol=1e-5)
    np.testing.assert_allclose(s["vibrational_target_eV"],
                               ((s["quanta"] + 0.5) * modes.hbar_omega_eV).sum(1), rtol=1e-12)
    e = _internal_energies(pot, modes, s["positions"], s["velocities"])
    exact = modes.mean_thermal_vibrational_energy_eV(300.0) + 1.5 * KT
    assert abs(e.mean() - exact) < 4 * e.std() / math.sqrt(n), (e.mean(), exact)
    # per mode, on the sampled states (no energy matching): the removal of the spurious
    # angular momentum of a displaced geometry changes a mode's kinetic energy at second order
    # in the amplitude (here up to ~9%), so the states carry (v + 1/2) hbar omega per mode to
    # within that: median deviation below 2%
    raw = sample_normal_mode_states(modes, 200, 300.0, rng, rotation=False)
    dev = [np.abs(vibrational_energy_of_modes(modes, p, v)
                  / ((q + 0.5) * modes.hbar_omega_eV) - 1)
           for p, v, q in zip(raw["positions"], raw["velocities"], raw["quanta"], strict=True)]
    assert np.median(dev) < 0.02 and np.max(dev) < 0.2, (np.median(dev), np.max(dev))


def test_not_a_minimum_and_bad_settings_are_refused(pair_model):
    mol, pot, _ = _water_like(pair_model)
    stretched = mol.copy()
    stretched.positions[1, 0] += 0.3
    # unrelaxed, a stretched spring network still has real modes; an inverted spring does not
    flip = pair_model({("O", "H"): ("harmonic", -30.0, 0.96),
                       ("H", "H"): ("harmonic", 4.0, 1.52)}, cutoff=3.0)
    with pytest.raises(DataError, match="imaginary"):
        normal_modes(mol, flip, relax=False)
    with pytest.raises(ConfigError, match="finite-difference step"):
        normal_modes(mol, pot, delta_A=0.0)
    modes = normal_modes(stretched, pot)
    assert modes.relax_rmsd_A > 0.05
    np.testing.assert_allclose(modes.omega, _spring_frequencies(mol, _water_like(pair_model)[2]),
                               rtol=2e-4)
    with pytest.raises(ConfigError, match="unknown vibrational state"):
        sample_normal_mode_states(modes, 2, 300.0, np.random.default_rng(0), vibration="hot")


def test_qct_with_quasi_classical_states(tmp_path, pair_model):
    """run_qct(internal="qc-zpe") on He + a harmonic H2-like diatomic: every trajectory's
    diatomic starts with exactly its zero-point energy in the vibration (read back from the
    first frame of each trajectory) plus a thermal rotation; the result names the modes."""
    import ase.io

    from atmospheric.qct import run_qct

    pot = pair_model({("H", "H"): ("harmonic", K_BOND, R0)}, cutoff=5.0)
    h2 = Atoms("H2", positions=[[0, 0, 0], [0, 0, R0]], masses=[MASS, MASS])
    res = run_qct(Atoms("He"), h2, pot, 300.0, ["distance:0:1<1.0"], n_trajectories=16,
                  seed=2, outdir=tmp_path / "q", internal="qc-zpe", b_max_A=1.0,
                  converge_b_max=False, timestep_fs=1.0, max_time_fs=4.0, batch_size=16,
                  traj_every=1)
    b = res["internal_states"]["B"]
    assert res["internal"] == "qc-zpe" and res["internal_states"]["A"] == {"n_modes": 0}
    assert b["n_modes"] == 1 and b["zpe_eV"] == pytest.approx(
        HBAR_EV_ASE_TIME * math.sqrt(K_BOND / (MASS / 2)) / 2, rel=1e-6)
    assert b["mean_vibrational_eV"] == pytest.approx(b["zpe_eV"], rel=1e-6)
    for k in range(16):
        first = ase.io.read(tmp_path / "q" / "runs" / "bmax_00" / f"traj_{k:04d}.extxyz", 0)
        x, v = first.positions[1:], first.get_velocities()[1:]
        r = x[1] - x[0]
        u = r / np.linalg.norm(r)
        v_rel = (v[1] - v[0]) @ u
        e_vib = 0.5 * K_BOND * (np.linalg.norm(r) - R0) ** 2 + 0.5 * (MASS / 2) * v_rel**2
        assert e_vib == pytest.approx(b["zpe_eV"], rel=1e-5)
