"""Ensembles (common.potential.committee): mean prediction and the DP-GEN model deviation,
max_devi_f = max_i sqrt( mean_m |F_m,i - <F_i>_m|^2 ), on cases worked by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from ase.cluster import Icosahedron

from common.md.engine import MDEngine
from common.md.state import BatchState
from common.potential.committee import Committee, force_deviation
from common.potential.pair import LennardJones
from common.potential.protocol import BatchedPotential, evaluate

torch.set_num_threads(1)


class FixedForces(BatchedPotential):
    """Returns the given forces (n_atoms, 3) and energies (n_systems,), whatever the positions."""

    cutoff = 0.1

    def __init__(self, forces, energies):
        super().__init__()
        self.f = torch.as_tensor(forces, dtype=torch.float64)
        self.e = torch.as_tensor(energies, dtype=torch.float64)

    def forward(self, state, neighbors, compute_stress=False):
        return {"energy": self.e.clone(), "forces": self.f.clone()}


def two_systems():
    """System 0: 2 atoms, system 1: 1 atom (far apart, non-periodic)."""
    return [Atoms("H2", positions=[[0, 0, 0], [5, 0, 0]]), Atoms("H", positions=[[0, 0, 0]])]


def test_three_members_by_hand():
    """Atom 0: F = (0,0,0), (3,0,0), (0,3,0): mean (1,1,0); squared deviations 2, 5, 5, mean
    4 -> 2 eV/Å. Atom 1: (1,1,1) from every member -> 0. Atom 2 (system 1): (0,0,0), (0,0,1),
    (0,0,2): mean (0,0,1), squared deviations 1, 0, 1 -> sqrt(2/3).
    Energies of system 0: 1, 2, 6 -> mean 3, population std sqrt(14/3), per atom / 2."""
    f = [
        [[0, 0, 0], [1, 1, 1], [0, 0, 0]],
        [[3, 0, 0], [1, 1, 1], [0, 0, 1]],
        [[0, 3, 0], [1, 1, 1], [0, 0, 2]],
    ]
    e = [[1.0, 0.0], [2.0, 0.0], [6.0, 3.0]]
    ens = Committee([FixedForces(fm, em) for fm, em in zip(f, e, strict=True)])
    out = evaluate(ens, two_systems())
    np.testing.assert_allclose(out["atom_force_deviation"].numpy(), [2.0, 0.0, np.sqrt(2 / 3)],
                               atol=1e-14)
    np.testing.assert_allclose(out["max_force_deviation"].numpy(), [2.0, np.sqrt(2 / 3)],
                               atol=1e-14)
    np.testing.assert_allclose(out["min_force_deviation"].numpy(), [0.0, np.sqrt(2 / 3)],
                               atol=1e-14)
    np.testing.assert_allclose(out["mean_force_deviation"].numpy(), [1.0, np.sqrt(2 / 3)],
                               atol=1e-14)
    np.testing.assert_allclose(out["forces"].numpy(), [[1, 1, 0], [1, 1, 1], [0, 0, 1]],
                               atol=1e-14)
    np.testing.assert_allclose(out["energy"].numpy(), [3.0, 1.0], atol=1e-14)
    np.testing.assert_allclose(out["energy_std_per_atom"].numpy(),
                               [np.sqrt(14 / 3) / 2, np.sqrt(2.0)], atol=1e-14)


def test_two_members_by_hand():
    """Two members: the deviation is half the distance between the two force vectors."""
    fa = [[1.0, 0, 0], [0, 0, 0], [0, 0, 0]]
    fb = [[0, 1.0, 0], [0, 0, 0], [0, 0, -4.0]]
    ens = Committee([FixedForces(fa, [0, 0]), FixedForces(fb, [0, 0])])
    out = evaluate(ens, two_systems())
    np.testing.assert_allclose(out["max_force_deviation"].numpy(), [np.sqrt(2) / 2, 2.0],
                               atol=1e-14)


def test_lj_members_with_different_epsilon():
    """LJ members that differ only in epsilon: F_m = (eps_m / eps) F and E_m = (eps_m / eps) E
    (the shift at rc scales with eps too). Hence dev_i = |F_i| std(eps_m) / eps (population
    std), max_force_deviation = max_i |F_i| std / eps, energy_std_per_atom = |E| std / eps / N,
    and the ensemble mean is the LJ of the mean epsilon."""
    eps = np.array([0.8, 1.0, 1.3]) * 0.0104
    frames = [bulk("Ar", "fcc", a=5.26).repeat((2, 2, 2)),
              Icosahedron("Ar", 2, latticeconstant=5.26)]
    frames[0].rattle(0.1, seed=1)
    frames[1].rattle(0.1, seed=2)
    ens = Committee([LennardJones(e, 3.40, rc=8.5) for e in eps])
    out = evaluate(ens, frames)
    ref = evaluate(LennardJones(1.0, 3.40, rc=8.5), frames)  # per unit epsilon
    fnorm = ref["forces"].norm(dim=-1).numpy()
    std = eps.std()
    np.testing.assert_allclose(out["atom_force_deviation"].numpy(), fnorm * std, rtol=1e-10,
                               atol=1e-16)
    n0 = len(frames[0])
    np.testing.assert_allclose(out["max_force_deviation"].numpy(),
                               [fnorm[:n0].max() * std, fnorm[n0:].max() * std], rtol=1e-10)
    np.testing.assert_allclose(out["forces"].numpy(), ref["forces"].numpy() * eps.mean(),
                               rtol=1e-10, atol=1e-16)
    np.testing.assert_allclose(out["energy_std_per_atom"].numpy(),
                               np.abs(ref["energy"].numpy()) * std / np.array([n0, 13]),
                               rtol=1e-10)
    np.testing.assert_allclose(out["stress"].numpy(), ref["stress"].numpy() * eps.mean(),
                               rtol=1e-10, atol=1e-18)


def test_force_deviation_function_matches_numpy():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(4, 7, 3))
    sidx = torch.tensor([0, 0, 0, 1, 1, 2, 2])
    out = force_deviation(torch.as_tensor(f), sidx, 3)
    dev = np.sqrt(((f - f.mean(0)) ** 2).sum(-1).mean(0))
    np.testing.assert_allclose(out["atom_force_deviation"].numpy(), dev, rtol=1e-12)
    for s, sl in enumerate([slice(0, 3), slice(3, 5), slice(5, 7)]):
        assert out["max_force_deviation"][s].item() == pytest.approx(dev[sl].max(), rel=1e-12)
        assert out["min_force_deviation"][s].item() == pytest.approx(dev[sl].min(), rel=1e-12)
        assert out["mean_force_deviation"][s].item() == pytest.approx(dev[sl].mean(), rel=1e-12)


def test_ensemble_needs_two_members_and_runs_in_md():
    with pytest.raises(ValueError):
        Committee([LennardJones(0.0104, 3.4)])
    ens = Committee([LennardJones(e, 3.40, rc=8.5) for e in (0.0100, 0.0108)])
    at = bulk("Ar", "fcc", a=5.26, cubic=True).repeat((2, 2, 2))
    at.rattle(0.05, seed=3)
    st = BatchState.from_atoms([at, at])
    eng = MDEngine(ens, st, ensemble="nvt", timestep_fs=5.0, temperature_K=40.0)
    eng.run(5)
    assert eng.out["max_force_deviation"].shape == (2,)
    assert bool((eng.out["max_force_deviation"] > 0).all())
