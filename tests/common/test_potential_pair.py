"""Analytic pair potentials (common.potential.pair) against ASE's own calculators and physics.

LennardJones (shifted and smooth) and Morse claim to reproduce ASE's ``LennardJones`` and
``MorsePotential`` exactly. Both sides evaluate the same closed-form expressions in float64, so
the only differences are summation order: with ~10^2 pair terms of magnitude |u| <~ 1 eV per
atom the accumulated rounding is <~ 10^2 * 1e-16 * |E| per atom, so 1e-10 (eV, eV/Å, eV/Å^3,
relative to the largest value) is far above rounding yet far below any formula error (a wrong
shift, cutoff derivative or sign is >= 1e-4 of the value).

Independently of ASE, forces are checked as -dE/dx and the stress as (1/V) dE/d(strain) by
central finite differences: the error is h^2/6 * E''' ~ h^2 * |F|/r^2; with h = 1e-4 Å
and r ~ 2.5 Å that is ~2e-9 |F|, plus rounding 1e-16 * |E| / h ~ 1e-11: tolerance 1e-6 eV/Å.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, fcc111
from ase.cluster import Icosahedron

from common.potential.pair import LennardJones, Morse
from common.potential.protocol import evaluate

torch.set_num_threads(1)

# (potential factory, element, fcc lattice constant near the potential's minimum)
LJ_AR = dict(epsilon=0.0104, sigma=3.40, rc=8.5)
MORSE_CU = dict(epsilon=0.3429, rho0=3.894, r0=2.866, rcut1=1.9, rcut2=2.7)
POTENTIALS = {
    "lj_shifted": (lambda: LennardJones(**LJ_AR), "Ar", 5.26),
    "lj_smooth": (lambda: LennardJones(**LJ_AR, smooth=True), "Ar", 5.26),
    "lj_smooth_ro": (lambda: LennardJones(**LJ_AR, ro=6.0, smooth=True), "Ar", 5.26),
    "morse": (lambda: Morse(**MORSE_CU), "Cu", 3.61),
}


def triclinic(el: str, a: float) -> Atoms:
    """A sheared, rattled fcc cell (cutoff > half the cell: several images of each atom)."""
    at = bulk(el, "fcc", a=a).repeat((2, 2, 2))
    shear = np.array([[1.0, 0.08, 0.0], [0.0, 1.0, 0.05], [0.03, 0.0, 0.97]])
    at.set_cell(at.cell.array @ shear, scale_atoms=True)
    at.rattle(0.08 * a / 5.26, seed=11)
    return at


def slab(el: str, a: float) -> Atoms:
    at = fcc111(el, (2, 2, 3), a=a, vacuum=6.0)
    at.rattle(0.05 * a / 5.26, seed=12)
    return at


def cluster(el: str, a: float) -> Atoms:
    at = Icosahedron(el, 2, latticeconstant=a)
    at.rattle(0.05 * a / 5.26, seed=13)
    return at


def systems(el: str, a: float) -> list[Atoms]:
    return [triclinic(el, a), slab(el, a), cluster(el, a)]


def ase_results(pot, atoms: Atoms) -> dict:
    b = atoms.copy()
    b.calc = pot.calculator()
    res = {"energy": b.get_potential_energy(), "forces": b.get_forces(),
           "energies": b.get_potential_energies()}
    if b.cell.rank == 3:
        res["stress"] = b.get_stress(voigt=False)
    return res


def close(a, b, rel=1e-10):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    scale = max(1.0, float(np.abs(b).max()))
    return np.abs(a - b).max() <= rel * scale


@pytest.mark.parametrize("name", list(POTENTIALS))
@pytest.mark.parametrize("kind", ["triclinic", "slab", "cluster"])
def test_matches_ase_calculator(name, kind):
    make, el, a = POTENTIALS[name]
    pot = make()
    atoms = {"triclinic": triclinic, "slab": slab, "cluster": cluster}[kind](el, a)
    ref = ase_results(pot, atoms)
    out = evaluate(pot, [atoms])
    assert abs(float(out["energy"][0]) - ref["energy"]) <= 1e-10 * max(1, abs(ref["energy"]))
    assert close(out["forces"].numpy(), ref["forces"])
    assert close(out["energies"].numpy(), ref["energies"])
    # the system must really interact (otherwise the comparison is vacuous)
    assert np.abs(ref["forces"]).max() > 1e-3


@pytest.mark.parametrize("name", list(POTENTIALS))
def test_stress_triclinic_matches_ase(name):
    make, el, a = POTENTIALS[name]
    pot = make()
    atoms = triclinic(el, a)
    ref = ase_results(pot, atoms)["stress"]
    out = evaluate(pot, [atoms])["stress"][0].numpy()
    assert np.abs(ref).max() > 1e-5  # a real, non-zero stress
    assert close(out, ref)
    assert close(out, out.T)  # a pair potential's virial is symmetric


@pytest.mark.parametrize("name", list(POTENTIALS))
def test_stress_slab_matches_ase(name):
    """ASE reports the virial / cell volume whenever the cell has rank 3 (slabs included): the
    in-plane stress of a slab is physical (surface stress) and is what ASE's own calculator
    returns, which this potential claims to match exactly."""
    make, el, a = POTENTIALS[name]
    pot = make()
    atoms = slab(el, a)
    ref = ase_results(pot, atoms)["stress"]
    out = evaluate(pot, [atoms])["stress"][0].numpy()
    assert np.abs(ref).max() > 1e-5
    assert close(out, ref)


@pytest.mark.parametrize("name", list(POTENTIALS))
def test_cluster_has_no_stress(name):
    make, el, a = POTENTIALS[name]
    out = evaluate(make(), [cluster(el, a)])
    assert float(out["stress"].abs().max()) == 0.0


@pytest.mark.parametrize("name", list(POTENTIALS))
def test_batched_equals_one_by_one(name):
    """Several different systems (periodic, slab, molecule; different sizes) in one call give
    each system's own result: nothing leaks between systems through the batch."""
    make, el, a = POTENTIALS[name]
    pot = make()
    frames = systems(el, a) + [triclinic(el, a * 1.03)]
    batched = evaluate(pot, frames)
    off = 0
    for k, at in enumerate(frames):
        one = evaluate(pot, [at])
        n = len(at)
        assert abs(float(batched["energy"][k] - one["energy"][0])) <= 1e-12 * max(
            1, abs(float(one["energy"][0])))
        assert close(batched["forces"][off:off + n].numpy(), one["forces"].numpy(), 1e-12)
        assert close(batched["stress"][k].numpy(), one["stress"][0].numpy(), 1e-12)
        off += n
    assert off == batched["forces"].shape[0]


@pytest.mark.parametrize("name", list(POTENTIALS))
def test_forces_are_minus_energy_gradient(name):
    """F = -dE/dx by central differences (tolerance derivation in the module docstring)."""
    make, el, a = POTENTIALS[name]
    pot = make()
    base = triclinic(el, a)
    h = 1e-4
    rng = np.random.default_rng(5)
    picks = [(int(i), int(c)) for i, c in zip(rng.integers(0, len(base), 6),
                                              rng.integers(0, 3, 6), strict=True)]
    frames = []
    for i, c in picks:
        for sgn in (1, -1):
            b = base.copy()
            b.positions[i, c] += sgn * h
            frames.append(b)
    e = evaluate(pot, frames)["energy"].numpy().reshape(-1, 2)
    f = evaluate(pot, [base])["forces"].numpy()
    num = -(e[:, 0] - e[:, 1]) / (2 * h)
    ana = np.array([f[i, c] for i, c in picks])
    np.testing.assert_allclose(ana, num, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", list(POTENTIALS))
def test_stress_is_strain_derivative(name):
    """sigma_ab = (1/V) dE/d eps_ab (symmetric strain, atoms moved affinely)."""
    make, el, a = POTENTIALS[name]
    pot = make()
    base = triclinic(el, a)
    h = 1e-5
    frames = []
    comps = [(0, 0), (1, 1), (2, 2), (0, 1), (1, 2), (0, 2)]
    for p, q in comps:
        for sgn in (1, -1):
            eps = np.zeros((3, 3))
            eps[p, q] += 0.5 * sgn * h
            eps[q, p] += 0.5 * sgn * h
            b = base.copy()
            b.set_cell(base.cell.array @ (np.eye(3) + eps), scale_atoms=True)
            frames.append(b)
    e = evaluate(pot, frames)["energy"].numpy().reshape(-1, 2)
    num = (e[:, 0] - e[:, 1]) / (2 * h) / base.get_volume()
    s = evaluate(pot, [base])["stress"][0].numpy()
    ana = np.array([s[p, q] for p, q in comps])
    # error: h^2 E''' / 6V ~ 1e-10 * |E|/V, rounding 1e-16 |E| / (h V) ~ 1e-11 |E|/V
    np.testing.assert_allclose(ana, num, atol=1e-8, rtol=0)


def test_lj_dimer_closed_form():
    """A dimer against the textbook formula: E = 4e[(s/r)^12 - (s/r)^6] - E(rc),
    F = 24e/r [2(s/r)^12 - (s/r)^6] along the bond; beyond rc nothing."""
    eps, sig, rc = 0.0104, 3.40, 8.5
    pot = LennardJones(eps, sig, rc=rc)
    e0 = 4 * eps * ((sig / rc) ** 12 - (sig / rc) ** 6)
    rs = [3.0, 3.4, 2 ** (1 / 6) * 3.4, 5.0, 8.4, 8.6]
    frames = [Atoms("Ar2", positions=[[0, 0, 0], [r, 0, 0]]) for r in rs]
    out = evaluate(pot, frames)
    f = out["forces"].numpy().reshape(-1, 2, 3)
    for k, r in enumerate(rs):
        x = sig / r
        e_ref = 4 * eps * (x**12 - x**6) - e0 if r < rc else 0.0
        f_ref = 24 * eps / r * (2 * x**12 - x**6) if r < rc else 0.0  # repulsive > 0
        assert abs(float(out["energy"][k]) - e_ref) < 1e-14
        np.testing.assert_allclose(f[k, 1], [f_ref, 0, 0], atol=1e-14)
        np.testing.assert_allclose(f[k, 0], -f[k, 1], atol=1e-15)  # Newton's third law
