"""QCT rate constants (atmospheric.qct) against models with known answers.

Tolerances come from the statistics: a QCT rate is a binomial estimate, so it must lie within
3 of its own standard errors of the exact value (a false alarm 0.3% of the time; the seeds are
fixed, so a pass is reproducible, and the measured z is in the assertion message).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from ase import Atoms, units
from scipy import stats

from atmospheric.qct import (
    QCTStop,
    mean_relative_speed_m_per_s,
    parse_criteria,
    parse_criterion,
    random_rotations,
    run_qct,
)
from common.errors import ConfigError
from common.events import BondCriteria
from common.md.state import BatchState

C6 = 20.0  # eV Å^6
T = 300.0  # K


def _z(res: dict, exact: float) -> float:
    return (res["rate_cm3_per_molecule_s"] - exact) / res["rate_err_cm3_per_molecule_s"]


def _capture_opacity(b_A: np.ndarray, c6: float, temperature_K: float) -> np.ndarray:
    """P(b) for -C6/r^6 capture: the flux-weighted fraction of E below 27 C6 / (4 b^6)."""
    x = 27.0 * c6 / (4.0 * b_A**6 * units.kB * temperature_K)
    return 1.0 - (1.0 + x) * np.exp(-x)


def test_capture_rate_matches_the_exact_c6_result(tmp_path, pair_model, c6_capture_rate):
    """Two atoms under -C6/r^6: QCT against the exact thermal capture rate constant.

    For V = -C6/r^6 the centrifugal barrier at impact parameter b and energy E is
    (2/3) E b^2 / r*^2 with r*^4 = 3 C6 / (E b^2), so capture happens for b^6 < 27 C6 / (4 E):
    sigma(E) = 3 pi (C6 / 4E)^(1/3). Averaging v sigma over Maxwell-Boltzmann,
    k(T) = <v> 3 pi (C6/4kT)^(1/3) Gamma(5/3) = Gamma(2/3) pi (2 C6/kT)^(1/3) sqrt(8kT/(pi mu))
    (the two forms are equal since Gamma(5/3) = (2/3) Gamma(2/3)); Gorin, Acta Physicochim.
    URSS 9, 681 (1938); Georgievskii & Klippenstein, J. Chem. Phys. 122, 194103 (2005)
    (numerically k = 8.55 C6^(1/3) mu^(-1/2) (kT)^(1/6)). "Capture" is reaching 2 Å, inside
    every barrier that matters (r* = 0.82 b_max(E) > 2 Å for all E < 24 kT); the potential is
    shifted to zero at its 8 Å cutoff (C6/8^6 = 0.003 kT: a 0.15% bias, far below the
    statistical error).
    b_max is fixed at 6.5 Å, where the exact P(b) is 0.002 (the part of k beyond it, 0.1%);
    the growth of b_max is tested on the straight-line model, where it is cheap.
    """
    pot = pair_model({("Ar", "Ar"): ("c6", C6, 1.0)}, cutoff=8.0)
    atom = Atoms("Ar", masses=[2.0])  # mu = 1 amu: short trajectories
    res = run_qct(atom, atom, pot, T, ["capture=distance:0:1<2.0"], n_trajectories=500,
                  seed=7, outdir=tmp_path / "qct", b_max_A=6.5, converge_b_max=False,
                  timestep_fs=2.0, batch_size=512, skin=3.0)
    exact = c6_capture_rate(C6, T, res["mean_relative_speed_m_per_s"])
    assert res["outer_ring"]["n_reactive"] <= 1 and res["b_max_converged_by"] == "outer ring"
    assert res["n_timeout"] <= 2 and res["n_failed"] == 0
    assert abs(_z(res, exact)) < 3, (res["rate_cm3_per_molecule_s"], exact, _z(res, exact))
    # the opacity function P(b) against the exact one, ring by ring (chi-square)
    chi2, dof = 0.0, 0
    for ring in res["opacity"]:
        b2 = np.linspace(ring["b_from_A"] ** 2, ring["b_to_A"] ** 2, 400)[1:]
        p = float(_capture_opacity(np.sqrt(b2), C6, T).mean())
        if ring["n"] and 0 < p < 1:
            chi2 += (ring["n_reactive"] - ring["n"] * p) ** 2 / (ring["n"] * p * (1 - p))
            dof += 1
    assert chi2 < stats.chi2.ppf(0.999, dof), (chi2, dof)
    assert res["channels"]["capture"]["n"] == res["n_reactive"]
    assert res["channels"]["capture"]["fraction"] == 1.0
    lo, hi = res["rate_ci95_cm3_per_molecule_s"]
    assert lo < exact < hi
    # the JSON contract of `mlp-atmospheric qct --json`, plain JSON, as written to qct.json
    assert json.loads(json.dumps(res)) == json.loads((tmp_path / "qct" / "qct.json").read_text())
    for key in ("method", "temperature_K", "rate_cm3_per_molecule_s",
                "rate_err_cm3_per_molecule_s", "b_max_A", "n_trajectories", "n_reactive"):
        assert key in res
    assert res["method"] == "QCT" and res["n_trajectories"] == 500
    assert set(res["channels"]["capture"]) >= {"n", "fraction"}


def test_straight_line_capture_gives_v_pi_r2(tmp_path, pair_model):
    """No forces: a trajectory comes within R exactly when b < R, so k = <v> pi R^2."""
    pot = pair_model({}, cutoff=1.0)
    a, b = Atoms("He", masses=[1.0]), Atoms("Ne", masses=[1.0])
    crit = ["distance:0:1<2.0"]
    # reach 3 Å (the cutoff of a force-free model), so b_max = 3 Å is within the geometric
    # bound and rings beyond R = 2 Å are sampled
    res = run_qct(a, b, pair_model({}, cutoff=3.0), T, crit, n_trajectories=400, seed=1,
                  outdir=tmp_path / "fixed", b_max_A=3.0, converge_b_max=False,
                  timestep_fs=2.0, batch_size=512)
    v = mean_relative_speed_m_per_s(T, 0.5)
    exact = v * 100 * math.pi * (2.0e-8) ** 2
    assert res["b_max_A"] == 3.0 and res["n_trajectories"] == 400
    assert abs(_z(res, exact)) < 3, (res["rate_cm3_per_molecule_s"], exact, _z(res, exact))
    assert res["max_abs_energy_error_eV"] < 1e-12
    # every ring of b is all-or-nothing: P = 1 inside R, 0 outside
    for ring in res["opacity"]:
        if ring["b_to_A"] <= 2.0:
            assert ring["probability"] == 1.0
        elif ring["b_from_A"] >= 2.0:
            assert ring["probability"] == 0.0
    # a b_max beyond the geometric bound (here R) is cut to it: nothing beyond can react
    cut = run_qct(a, b, pot, T, crit, n_trajectories=20, seed=1, outdir=tmp_path / "cut",
                  b_max_A=3.0, converge_b_max=False, timestep_fs=2.0, batch_size=512)
    assert cut["b_max_A"] == pytest.approx(2.0) and cut["b_max_converged_by"] == "geometric bound"
    # b_max grown from 1.5 Å stops at the geometric bound (R): every trajectory reacts, exactly
    conv = run_qct(a, b, pot, T, crit, n_trajectories=40, seed=1, outdir=tmp_path / "conv",
                   b_max_A=1.5, timestep_fs=2.0, batch_size=512)
    assert conv["b_max_A"] == pytest.approx(2.0) and conv["b_max_converged"]
    assert [h["b_max_A"] for h in conv["b_max_history"]] == pytest.approx([1.5, 1.875, 2.0])
    assert [h["status"] for h in conv["b_max_history"]] == [None, None, "geometric bound"]
    assert conv["b_max_converged_by"] == "geometric bound" and conv["reaction_probability"] == 1
    assert conv["rate_cm3_per_molecule_s"] == pytest.approx(exact, rel=1e-12)
    # same seed, same trajectories (whatever the batch size)
    again = run_qct(a, b, pot, T, crit, n_trajectories=40, seed=1, outdir=tmp_path / "again",
                    b_max_A=1.5, timestep_fs=2.0, batch_size=16)
    assert (tmp_path / "conv" / "trajectories.csv").read_text() \
        == (tmp_path / "again" / "trajectories.csv").read_text()
    assert again["rate_cm3_per_molecule_s"] == conv["rate_cm3_per_molecule_s"]


def test_three_equivalent_sites_split_one_third_each(tmp_path, pair_model):
    """An atom captured by a triangle of three identical atoms: by symmetry each site takes
    1/3 of the reactive trajectories (multinomial chi-square at p > 0.001, and each fraction
    within 3.5 binomial sigma: two-sided 0.05% per channel)."""
    s = 3.0
    tri = Atoms("Ar3", positions=[[0, 0, 0], [s, 0, 0], [s / 2, s * math.sqrt(3) / 2, 0]],
                masses=[4.0, 4.0, 4.0])
    atom = Atoms("Kr", masses=[1.0])
    pot = pair_model({("Kr", "Ar"): ("c6", 2.0, 0.6), ("Ar", "Ar"): ("harmonic", 10.0, s)},
                     cutoff=5.0)
    crit = [f"site{k}=distance:0:{k}<1.2" for k in (1, 2, 3)]
    # the model's own bond cutoffs: the 3 Å triangle is one molecule however it vibrates
    bonds = BondCriteria({"Ar-Ar": (3.4, 3.8)})
    res = run_qct(atom, tri, pot, 1000.0, crit, n_trajectories=300, seed=4,
                  outdir=tmp_path / "q", b_max_A=4.5, converge_b_max=False, timestep_fs=1.0,
                  batch_size=512, skin=2.0, bond_criteria=bonds)
    assert res["reactants"] == "Ar3 + Kr"
    assert res["n_failed"] == 0 and res["n_timeout"] <= 3
    n = np.array([res["channels"][f"site{k}"]["n"] for k in (1, 2, 3)])
    assert n.sum() == res["n_reactive"] > 100
    assert stats.chisquare(n).pvalue > 0.001, n
    for k in (1, 2, 3):
        f = res["channels"][f"site{k}"]["fraction"]
        assert abs(f - 1 / 3) < 3.5 * math.sqrt(2 / 9 / n.sum()), (k, f, n)
    assert set(res["channels"]) == {"site1", "site2", "site3"}


def test_new_channel_found_from_the_bond_graph(tmp_path, pair_model):
    """O + H2 on a pair model where O-H binds more strongly than H-H: with no distance
    criterion, the products (OH + H) are found from the final frames' bond graphs and reported
    as a new channel with their formula and graph; a products criterion that never matches
    stays a named, empty channel."""
    pot = pair_model({("O", "H"): ("morse", 4.0, 2.0, 0.97),
                      ("H", "H"): ("morse", 2.5, 2.0, 0.74)}, cutoff=3.0)
    o, h2 = Atoms("O"), Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])
    res = run_qct(o, h2, pot, 2000.0, ["insertion=products:H2O2"], n_trajectories=24, seed=3,
                  outdir=tmp_path / "q", internal="none", b_max_A=2.5,
                  converge_b_max=False, timestep_fs=0.4, batch_size=64, skin=1.5)
    assert res["reactants"] == "H2 + O"
    new = res["channels"]["H + OH"]
    assert new["new"] and new["n"] > 0 and new["products"] == {"H + OH": new["n"]}
    oh = [s for s in new["species"] if s["name"] == "OH"][0]
    assert oh["formula"] == "HO" and oh["elements"] == ["O", "H"] and oh["bonds"] == [[0, 1]]
    assert res["channels"]["insertion"] == {
        "n": 0, "fraction": 0.0, "rate_cm3_per_molecule_s": 0.0,
        "rate_err_cm3_per_molecule_s": 0.0, "new": False, "products": {}}
    assert res["n_reactive"] == sum(c["n"] for c in res["channels"].values())
    # every reactive trajectory's final frame is in final_frames.extxyz with its channel
    import ase.io

    frames = ase.io.read(tmp_path / "q" / "final_frames.extxyz", ":")
    assert sum(f.info["channel"] == "H + OH" for f in frames) == new["n"]


def test_presampled_internal_states_are_used(tmp_path, pair_model):
    """Thermal states of H2 from a short NVT run feed QCT with internal="given": each
    trajectory starts from one of them (its bond length and internal velocities)."""
    from atmospheric.qct import sample_internal_states

    pot = pair_model({("H", "H"): ("morse", 4.7, 1.9, 0.74)}, cutoff=3.0)
    h2 = Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])
    states = sample_internal_states(h2, pot, 300.0, 4, tmp_path / "nvt", seed=2, steps=200)
    assert len(states) == 4
    lengths = {round(float(s.get_distance(0, 1)), 6) for s in states}
    assert len(lengths) == 4 and all(0.6 < d < 0.9 for d in lengths)
    assert all(np.abs(s.get_velocities()).sum() > 0 for s in states)
    res = run_qct(Atoms("He"), states, pot, 300.0, ["distance:0:1<1.0"], n_trajectories=12,
                  seed=1, outdir=tmp_path / "q", internal="given", b_max_A=1.0,
                  converge_b_max=False, timestep_fs=0.5, batch_size=16, max_time_fs=50.0)
    import ase.io

    first = ase.io.read(tmp_path / "q" / "runs" / "bmax_00" / "traj_0000.extxyz", index=0)
    d0 = float(first.get_distance(1, 2))
    assert round(d0, 6) in lengths
    assert res["n_trajectories"] == 12 and res["n_failed"] == 0


# -- the parts -----------------------------------------------------------------------------


def test_parse_criterion_forms():
    c = parse_criterion("abstraction = distance: 0 : 5 < 1.2", 2, 4)
    assert (c.channel, c.kind, c.i, c.j, c.op, c.threshold_A) == (
        "abstraction", "distance", 0, 5, "<", 1.2)
    assert parse_criterion("distance:3:1>2.5").channel == "distance:3:1>2.5"
    p = parse_criterion("add=products:C5H9O+H2O")
    assert (p.kind, p.species, p.channel) == ("products", ("C5H9O", "H2O"), "add")


@pytest.mark.parametrize("text,match", [
    ("dist:0:1<2", "cannot read reaction criterion"),
    ("distance:0-1<2", "cannot read reaction criterion"),
    ("distance:0:1<", "cannot read reaction criterion"),
    ("distance:1:1<2", "two different atoms"),
    ("distance:0:1<0", "two different atoms"),
    ("products:", "cannot read reaction criterion"),
    ("distance:0:6<2", "names atom 6, but the reactants have 3 atoms"),
])
def test_bad_criteria_are_one_line_errors(text, match):
    with pytest.raises(ConfigError, match=match) as err:
        parse_criteria([text], 1, 2)
    assert "\n" not in str(err.value) and "fix:" in str(err.value)


def test_bad_inputs_are_one_line_errors(tmp_path, pair_model):
    pot = pair_model({("Ar", "Ar"): ("c6", C6, 1.0)}, cutoff=8.0)
    ar, ar2 = Atoms("Ar"), Atoms("Ar2", positions=[[0, 0, 0], [0, 0, 3.0]])
    cases = [
        (dict(d0_A=6.0, b_max_A=3.0), ["distance:0:1<2"], "reactants overlap at the start"),
        (dict(), ["distance:0:4<2"], "names atom 4, but the reactants have 3 atoms"),
        (dict(), ["distance:0:1>1.0"], "already holds at the start"),
        (dict(temperature_K=0.0), ["distance:0:1<2"], "temperature must be > 0 K"),
        (dict(internal="hot"), ["distance:0:1<2"], "unknown internal-state mode"),
    ]
    for k, (kw, crit, match) in enumerate(cases):
        kw = {"temperature_K": T, **kw}
        with pytest.raises(ConfigError, match=match) as err:
            run_qct(ar, ar2, pot, kw.pop("temperature_K"), crit, n_trajectories=4,
                    outdir=tmp_path / str(k), **kw)
        assert "\n" not in str(err.value)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(ConfigError, match="not empty"):
        run_qct(ar, ar2, pot, T, ["distance:0:1<2"], outdir=tmp_path / "full")


def test_stop_slices_record_into_one_dict():
    """select() maps batch systems to run systems; stops land in the shared record."""
    frames = [Atoms("HeNe", positions=[[0, 0, 0], [0, 0, d]]) for d in (1.0, 5.0, 9.0)]
    crit = parse_criteria(["hit=distance:0:1<2"], 1, 1)
    stop = QCTStop(1, np.array([4.0, 20.0]), crit, d0_A=8.0, max_steps=100)
    sub = stop.select([3, 5, 6]).select([0, 1, 2])  # run systems 3, 5, 6
    state = BatchState.from_atoms(frames)
    out = {"energy": torch.zeros(3, dtype=torch.float64)}
    hit = sub(state, out, step=4)
    assert hit.tolist() == [True, False, True]
    assert {k: v["outcome"] for k, v in stop.record.items()} == {3: "criterion",
                                                                 6: "separated"}
    assert stop.record[3]["step"] == 4 and stop.record[3]["criterion"] == 0
    assert sub(state, out, step=100).tolist() == [True, True, True]
    assert stop.record[5]["outcome"] == "timeout" and stop.record[3]["step"] == 4


def test_random_rotations_are_uniform_rotations():
    r = random_rotations(np.random.default_rng(0), 4000)
    assert np.allclose(r @ r.transpose(0, 2, 1), np.eye(3), atol=1e-12)
    assert np.allclose(np.linalg.det(r), 1.0)
    z = r[:, :, 2]  # images of the z axis: uniform on the sphere, mean 0, <z_i^2> = 1/3
    assert np.abs(z.mean(0)).max() < 4 * math.sqrt(1 / 3 / 4000)
    assert np.abs((z**2).mean(0) - 1 / 3).max() < 4 * math.sqrt(4 / 45 / 4000)


def _rows(folder) -> list[dict]:
    import csv

    with open(folder / "trajectories.csv") as f:
        return list(csv.DictReader(f))


def test_segments_continue_the_same_trajectories(tmp_path, pair_model):
    """Cutting the run into 20-step segments (only unfinished trajectories go on) changes
    nothing: velocity Verlet restarted from (x, v) is the same trajectory, so every outcome,
    stopping step and energy error is that of the uncut run."""
    pot = pair_model({("Ar", "Ar"): ("c6", C6, 1.0)}, cutoff=8.0)
    atom = Atoms("Ar", masses=[2.0])
    kw = dict(n_trajectories=16, seed=3, b_max_A=6.5, converge_b_max=False, timestep_fs=2.0,
              skin=3.0)
    one = run_qct(atom, atom, pot, T, ["capture=distance:0:1<2.0"], outdir=tmp_path / "one",
                  **kw)
    cut = run_qct(atom, atom, pot, T, ["capture=distance:0:1<2.0"], outdir=tmp_path / "cut",
                  segment_fs=40.0, **kw)
    assert len(list((tmp_path / "cut" / "runs" / "bmax_00").glob("segment_*"))) > 2
    a, b = _rows(tmp_path / "one"), _rows(tmp_path / "cut")
    assert [(r["outcome"], r["step"]) for r in a] == [(r["outcome"], r["step"]) for r in b]
    for r, s in zip(a, b, strict=True):
        assert abs(float(r["energy_error_eV"]) - float(s["energy_error_eV"])) < 1e-9
        assert abs(float(r["max_abs_energy_error_eV"])
                   - float(s["max_abs_energy_error_eV"])) < 1e-9
    assert cut["rate_cm3_per_molecule_s"] == one["rate_cm3_per_molecule_s"]


class _NoEnergy(torch.nn.Module):
    """A potential whose forces are not the gradient of its energy (it reports 0 eV): the
    total energy of a trajectory it drives changes by exactly the kinetic energy gained."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.cutoff = inner, inner.cutoff

    def forward(self, state, neighbors, compute_stress=False):
        out = self.inner(state, neighbors, compute_stress)
        return {"energy": torch.zeros_like(out["energy"]), "forces": out["forces"]}


def test_energy_tolerance_leaves_out_nonconserving_trajectories(tmp_path, pair_model):
    """With a non-conservative force field, exactly the trajectories whose largest |E - E0|
    passes the tolerance are stopped and left out; the rate counts only the others."""
    from common.potential.protocol import BatchedPotential

    class NoEnergy(_NoEnergy, BatchedPotential):
        pass

    pot = NoEnergy(pair_model({("Ar", "Ar"): ("c6", C6, 1.0)}, cutoff=8.0))
    atom = Atoms("Ar", masses=[2.0])
    n = 16
    kw = dict(n_trajectories=n, seed=5, b_max_A=6.5, converge_b_max=False, timestep_fs=2.0,
              skin=3.0)
    crit = ["capture=distance:0:1<2.0"]
    free = run_qct(atom, atom, pot, T, crit, outdir=tmp_path / "free", **kw)
    tol = 0.05
    dev = [float(r["max_abs_energy_error_eV"]) for r in _rows(tmp_path / "free")]
    bad = {k for k, d in enumerate(dev) if d > tol}
    assert 0 < len(bad) < n and free["n_nonconserving"] == 0
    res = run_qct(atom, atom, pot, T, crit, outdir=tmp_path / "tol", energy_tolerance_eV=tol,
                  **kw)
    rows = _rows(tmp_path / "tol")
    assert {k for k, r in enumerate(rows) if r["outcome"] == "nonconserving"} == bad
    assert res["n_nonconserving"] == len(bad) and res["n_used"] == n - len(bad)
    assert res["max_abs_energy_error_eV"] <= tol
    n_r = sum(r["channel"] != "" for r in rows)
    assert res["n_reactive"] == n_r
    assert math.isclose(res["reaction_probability"], n_r / (n - len(bad)))
    assert any("energy conservation" in w for w in res["warnings"])


def test_each_trajectory_starts_where_its_closest_pair_reaches_the_gap():
    """Start at reach: on the straight approach line the closest A-B pair is exactly the gap
    apart at the start, never closer earlier on the line (larger z), and a line that never
    comes within the gap starts at z = 0 (its closest point)."""
    from atmospheric.qct import _closest_start

    rng = np.random.default_rng(0)
    xa = rng.normal(0, 1.0, (4, 3))
    xb = rng.normal(0, 1.5, (6, 3))
    gap, z0 = 4.5, 30.0

    def closest(b, z):
        sep = np.array([b, 0.0, -z])
        return np.linalg.norm(xb[None] + sep - xa[:, None], axis=-1).min()

    for b in (0.0, 1.0, 3.0, 5.0):
        z = _closest_start(xa, xb, b, z0, gap)
        assert 0 < z < z0 and closest(b, z) == pytest.approx(gap, abs=1e-9)
        assert min(closest(b, zz) for zz in np.linspace(z, z0, 2000)[1:]) > gap
    assert _closest_start(xa, xb, 40.0, z0, gap) == 0.0
    assert _closest_start(xa, xb, 0.0, 2.0, gap) == 2.0  # never beyond d0
