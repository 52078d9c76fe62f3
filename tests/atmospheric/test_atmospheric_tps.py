"""Transition interface sampling (atmospheric.tps) on a Langevin double well against brute-force
MD of the same system with the same engine, and its bad input.

The system: two atoms, the first held by ASE ``FixAtoms``, the second in a radial double well
``V(r) = E_b (((r - 2)/0.5)^2 - 1)^2`` (minima at 1.5 and 2.5 Å). The brute-force rate counts
A -> B transitions per unit time spent with A the last state visited, the quantity TIS returns,
from a step-by-step record of r in long batched Langevin runs; its error is Poisson
(1/sqrt(transitions)). TIS and MD must agree within 3 combined standard errors.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.constraints import FixAtoms

from atmospheric.tps import order_parameter, run_tis
from common.errors import ConfigError
from common.potential.protocol import BatchedPotential

A_RANGE, B_RANGE = "1.0,1.6", "2.4,3.5"


class DoubleWellBond(BatchedPotential):
    """``V(r) = barrier (((r - centre)/half_width)^2 - 1)^2`` between atoms 0 and 1 of every
    two-atom system (eV, Å); no neighbour list needed."""

    cutoff = 0.1

    def __init__(self, barrier: float = 0.1, centre: float = 2.0, half_width: float = 0.5):
        super().__init__()
        self.barrier, self.centre, self.half_width = float(barrier), float(centre), \
            float(half_width)

    def forward(self, state, neighbors, compute_stress=False):
        pos = state.positions.view(-1, 2, 3)
        d = pos[:, 1] - pos[:, 0]
        r = d.norm(dim=-1)
        x = (r - self.centre) / self.half_width
        de = self.barrier * 4 * x * (x * x - 1) / self.half_width
        f1 = -de[:, None] * d / r[:, None]
        return {"energy": self.barrier * (x * x - 1) ** 2,
                "forces": torch.stack([-f1, f1], 1).reshape(-1, 3)}

    def params(self) -> dict:
        return {"barrier": self.barrier, "centre": self.centre, "half_width": self.half_width}


def _molecule(r: float = 1.5) -> Atoms:
    at = Atoms("ArAr", positions=[[0.0, 0.0, 0.0], [r, 0.0, 0.0]], masses=[1000.0, 10.0])
    at.set_constraint(FixAtoms([0]))
    return at


class _Recorder:
    """Stop condition that never stops: records r of every system at every step."""

    def __init__(self):
        self.r = []

    def __call__(self, state, out, step):
        pos = state.positions.view(-1, 2, 3)
        self.r.append((pos[:, 1] - pos[:, 0]).norm(dim=-1).numpy().copy())
        return torch.zeros(pos.shape[0], dtype=torch.bool)


def brute_force_rate(potential, temperature_K, friction_per_ps, timestep_fs, replicas, steps,
                     equilibration, tmp_path, seed=11) -> tuple[float, float, int]:
    """A -> B transitions per ps with A the last state visited, its Poisson error, count."""
    from common.md.runner import run_md

    rec = _Recorder()
    run_md([_molecule()], potential, tmp_path / "brute", ensemble="nvt",
           timestep_fs=timestep_fs, temperature_K=temperature_K,
           friction_per_ps=friction_per_ps, steps=steps, replicas=replicas, seed=seed,
           traj_every=0, stop=rec, batch_size=replicas, progress=False)
    r = np.array(rec.r)  # (steps, replicas)
    a_lo, a_hi = map(float, A_RANGE.split(","))
    b_lo, b_hi = map(float, B_RANGE.split(","))
    last_a = np.ones(replicas, dtype=bool)  # all start in A
    n, t_steps = 0, 0
    for k in range(steps):
        in_a = (r[k] >= a_lo) & (r[k] <= a_hi)
        in_b = (r[k] >= b_lo) & (r[k] <= b_hi)
        if k >= equilibration:
            t_steps += int(last_a.sum())
            n += int((last_a & in_b).sum())
        last_a = np.where(in_a, True, np.where(in_b, False, last_a))
    t_ps = t_steps * timestep_fs / 1000.0
    return n / t_ps, math.sqrt(n) / t_ps, n


def _agree(tis: dict, k_md: float, err_md: float) -> float:
    """z-score of TIS against brute force."""
    return (tis["rate_per_ps"] - k_md) / math.hypot(tis["rate_err_per_ps"], err_md)


def test_tis_matches_brute_force_md_on_a_double_well(tmp_path):
    """E_b = 3.1 kT at 300 K; friction 5/ps, dt 5 fs; two interfaces; 64 chains."""
    pot = DoubleWellBond(barrier=0.08)
    k_md, err_md, n = brute_force_rate(pot, 300.0, 5.0, 5.0, 256, 500, 50, tmp_path)
    assert n > 150
    mol = _molecule()
    res = run_tis(mol, pot, "distance:0:1", A_RANGE, B_RANGE, 300.0, tmp_path / "tis",
                  friction_per_ps=5.0, timestep_fs=5.0, interfaces=[1.6, 1.9],
                  shots=256, chains=64, flux_replicas=32, flux_steps=600, max_path_steps=2000,
                  seed=3)
    z = _agree(res, k_md, err_md)
    assert abs(z) < 3.0, (res["rate_per_ps"], res["rate_err_per_ps"], k_md, err_md)
    # the error bar is an error bar, not a shrug: below 35% of the rate
    assert res["rate_err_per_ps"] < 0.35 * res["rate_per_ps"]
    assert 0 < res["acceptance"] < 1 and res["n_trials"] == 2 * 256
    # the atom held by FixAtoms never moved in any stored path
    import ase.io

    path = ase.io.read(res["files"]["reactive_path"], ":")
    assert all(np.array_equal(f.positions[0], mol.positions[0]) for f in path)
    assert path[0].info["cv_A"] <= 1.6 and path[-1].info["cv_A"] >= 2.4


@pytest.mark.slow
def test_tis_matches_brute_force_md_on_a_higher_barrier_over_seeds(tmp_path):
    """E_b = 4.6 kT (k about 10x smaller), three interfaces; three TIS seeds each within 3
    combined standard errors of brute force, and their spread consistent with their errors."""
    pot = DoubleWellBond(barrier=0.12)
    k_md, err_md, n = brute_force_rate(pot, 300.0, 5.0, 5.0, 512, 3000, 100, tmp_path)
    assert n > 300
    z = []
    for seed in range(3):
        res = run_tis(_molecule(), pot, "distance:0:1", A_RANGE, B_RANGE, 300.0,
                      tmp_path / f"tis{seed}", friction_per_ps=5.0, timestep_fs=5.0,
                      interfaces=[1.6, 1.75, 1.9, 2.05], shots=512, chains=64,
                      flux_replicas=64, flux_steps=1000, max_path_steps=2000, seed=seed)
        z.append(_agree(res, k_md, err_md))
    assert all(abs(x) < 3.0 for x in z), (z, k_md, err_md)
    assert float(np.mean(np.square(z))) < 4.0, z


def test_tis_in_nve_conserves_the_fixed_atom_and_orients_b_below_a(tmp_path):
    """NVE (friction 0) with A at the larger distance: the CV is flipped internally; the
    rate is positive and the result reports the states in the CV's own units."""
    pot = DoubleWellBond(barrier=0.04)
    res = run_tis(_molecule(2.5), pot, "distance:0:1", B_RANGE, A_RANGE, 300.0,
                  tmp_path / "nve", friction_per_ps=0.0, timestep_fs=5.0, n_interfaces=2,
                  shots=64, chains=32, flux_replicas=16, flux_steps=300, max_path_steps=1000)
    assert res["ensemble"] == "nve" and res["rate_per_ps"] > 0
    assert res["interfaces_A"] == [2.4, 2.0] and res["state_a_A"] == [2.4, 3.5]


def _bad(**kw):
    args = dict(cv="distance:0:1", state_a=A_RANGE, state_b=B_RANGE, interfaces=None)
    args.update(kw)
    return order_parameter(_molecule(), args["cv"], args["state_a"], args["state_b"],
                           args["interfaces"])


@pytest.mark.parametrize(("kw", "where", "needle"), [
    ({"state_b": "1.5,3.0"}, "state_b", "overlap"),
    ({"cv": "distance:0:2"}, "cv", "out of range"),
    ({"interfaces": [1.7, 2.5]}, "interfaces", "outside"),
    ({"interfaces": [1.2]}, "interfaces", "outside"),
    ({"interfaces": [1.7, 1.7]}, "interfaces", "repeat"),
    ({"state_a": "2.4,3.0", "state_b": "3.1,3.5"}, "structure", "not in state A"),
])
def test_bad_input_is_refused_by_name(kw, where, needle):
    with pytest.raises(ConfigError) as e:
        _bad(**kw)
    assert e.value.where == where and needle in str(e.value)


# -- the command ---------------------------------------------------------------------------------

TIS_KEYS = {"method", "temperature_K", "rate_per_ps", "rate_err_per_ps", "flux_per_ps",
            "crossing_probability", "crossing_probability_err", "n_trials", "acceptance"}


@pytest.fixture
def user_double_well(tmp_path, monkeypatch):
    """``--potential tis_user_dw:DoubleWellBond``: this file's potential as a user module."""
    import inspect

    src = ("import torch\nfrom common.potential.protocol import BatchedPotential\n\n\n"
           + inspect.getsource(DoubleWellBond))
    (tmp_path / "tis_user_dw.py").write_text(src)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "tis_user_dw:DoubleWellBond"


def test_tps_command_contract(tmp_path, user_double_well, capsys):
    import json

    import ase.io

    from atmospheric.cli import app
    from common.cli.app import run_app

    ase.io.write(tmp_path / "start.traj", _molecule())  # .traj keeps FixAtoms
    out = tmp_path / "tis"
    code = run_app(app, ["tps", str(tmp_path / "start.traj"), "--potential", user_double_well,
                         "--param", "barrier=0.04", "--cv", "distance:0:1", "--state-a",
                         A_RANGE, "--state-b", B_RANGE, "--temperature-K", "300",
                         "--friction-per-ps", "5", "--timestep-fs", "5", "--interfaces",
                         "1.9,1.6", "--shots", "32", "--chains", "16", "--flux-replicas", "8",
                         "--flux-steps", "300", "--seed", "2", "--out", str(out), "--json"])
    cap = capsys.readouterr()
    assert code == 0, cap.err
    res = json.loads(cap.out)
    assert list(res)[:len(TIS_KEYS)] == ["method", "temperature_K", "rate_per_ps",
                                         "rate_err_per_ps", "flux_per_ps",
                                         "crossing_probability", "crossing_probability_err",
                                         "n_trials", "acceptance"]
    assert res["method"] == "TIS" and res["n_trials"] == 64 and res["interfaces_A"] == [1.6, 1.9]
    assert res["rate_per_ps"] > 0 and res["flux_per_ps"] > 0
    assert math.isclose(res["rate_per_ps"], res["flux_per_ps"] * res["crossing_probability"])
    assert json.loads((out / "tis.json").read_text())["rate_per_ps"] == res["rate_per_ps"]
    path = ase.io.read(out / "reactive_path.extxyz", ":")
    assert all(np.allclose(f.positions[0], 0.0) for f in path)  # the fixed atom stayed put
