"""Screening: free Langevin particles in packed cells diffuse with D = kT/(m γ) at every
temperature of the grid, the table and the best composition follow from the stored results,
and a rerun runs no MD."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from ase.units import kB

from common.potential.analytic import AnalyticAdapter
from common.potential.committee import save_committee_folder
from electrolytes import screening
from electrolytes.screening import ScreenSettings, compositions, load_screen_config

#: 1 amu Å²/fs² in eV, and 1 Å²/fs in cm²/s
AMU_A2_PER_FS2_EV = 103.6427
A2_PER_FS_IN_CM2_PER_S = 0.1
FRICTION_PER_PS = 40.0


@pytest.fixture(scope="module")
def free_committee(tmp_path_factory):
    """Two Lennard-Jones models with epsilon ~ 0: free particles, a zero committee spread."""
    root = tmp_path_factory.mktemp("free")
    for k, eps in enumerate((1e-12, 1.1e-12)):
        AnalyticAdapter("lj", {"epsilon": eps, "sigma": 0.3}).save(root / f"member_{k}")
    save_committee_folder(root, [root / "member_0", root / "member_1"], framework="lj")
    return root


def _settings(**kw) -> ScreenSettings:
    base = dict(solvents=["EC"], ratios=[[1.0]], salt_M=[1.0], additive_wt_pct=[0.0],
                temperatures_K=[250.0, 330.0, 420.0], n_atoms=100, steps=1000,
                timestep_fs=1.0, traj_every=10, friction_per_ps=FRICTION_PER_PS,
                density_g_cm3=1.0, discard_fs=0.0)
    return ScreenSettings(**{**base, **kw}).check()


def _d_exact(mass_amu: float, t: float) -> float:
    """Free Langevin particle: D = kT / (m γ), cm²/s."""
    gamma_per_fs = FRICTION_PER_PS / 1000.0
    return kB * t / (mass_amu * AMU_A2_PER_FS2_EV * gamma_per_fs) * A2_PER_FS_IN_CM2_PER_S


def test_free_particles_diffuse_as_kT_over_m_gamma(tmp_path, free_committee):
    """16 Li and 16 PF6 (seven free atoms each) at three temperatures: D(Li) and D(P) within
    4 reported standard errors + 3 % of kT/(mγ) (the fit window, 100-500 fs, starts at 4
    velocity relaxation times, where MSD's slope is within 2 % of 6D)."""
    out = tmp_path / "screen"
    counts = {"EC": 1, "Li": 16, "PF6": 16}
    summary = screening.run_screen(_settings(), free_committee, out, cluster="serial",
                                   progress=False, counts=counts)
    assert summary["n_conditions"] == 3 and summary["sweep"]["n_done"] == 1
    rows = summary["rows"]
    for r in rows:
        t = r["temperature_K"]
        for el, mass in (("Li", 6.94), ("P", 30.974)):
            d, err = r[f"D_{el}_cm2_per_s"], r[f"D_{el}_err_cm2_per_s"]
            exact = _d_exact(mass, t)
            assert abs(d - exact) < 4 * err + 0.03 * exact, (el, t, d, err, exact)
        assert r["deviation_median_eV_A"] < 1e-6  # two (almost) identical members
        # the thermostat holds the target: mean kinetic T within 4 block standard errors
        tm, terr = r["md_temperature_K"], r["md_temperature_err_K"]
        assert 0 < terr < 0.05 * t and abs(tm - t) < 4 * terr + 0.01 * t, (t, tm, terr)
        assert r["n_analysed"] == 1
        assert "bonds_kept_final" in r  # free particles: no covalent bonds to keep (None)
    # D ∝ T exactly: the Arrhenius fit of D(Li) gives Ea ≈ k<T> (a slope of ln T in 1/T)
    ea = summary["arrhenius"][rows[0]["key"]]["D_Li"]
    t = np.array([250.0, 330.0, 420.0])
    slope_ln_t = -np.polyfit(1 / t, np.log(t), 1)[0] * kB
    assert abs(ea["Ea_eV"] - slope_ln_t) < 4 * ea["Ea_err_eV"] + 0.003
    # files: table, JSON, figures, best composition
    assert (out / "screen.csv").read_text().count("\n") == 4
    assert json.loads((out / "screen.json").read_text())["best"]["key"] == rows[0]["key"]
    assert (out / "sigma_vs_composition.png").stat().st_size > 0
    assert (out / "arrhenius_sigma.png").stat().st_size > 0
    # a rerun reads the stored result: no MD
    t0 = time.perf_counter()
    again = screening.run_screen(_settings(), free_committee, out, cluster="serial",
                                 progress=False, counts=counts)
    assert again["sweep"]["n_skipped"] == 1 and again["rows"] == rows
    assert time.perf_counter() - t0 < 10


def _result(key, label, sigmas: dict[float, float]):
    rows = [{"key": key, "composition": label, "ratio": "1:1", "salt_M": 1.0,
             "additive_wt_pct": 0.0, "temperature_K": t,
             "sigma_nernst_einstein_S_per_cm": s, "sigma_nernst_einstein_err_S_per_cm": 0.1 * s,
             "sigma_einstein_helfand_S_per_cm": None,
             "sigma_einstein_helfand_err_S_per_cm": None} for t, s in sigmas.items()]
    return {"key": key, "label": label, "rows": rows, "arrhenius": {}}


def test_best_is_the_highest_conductivity_nearest_room_temperature(tmp_path):
    """Composition b is best at 300 K although a is best at 350 K: 300 K is the grid
    temperature nearest 298.15 K."""
    res = {"a": _result("a", "A", {300.0: 1e-3, 350.0: 9e-3}),
           "b": _result("b", "B", {300.0: 2e-3, 350.0: 3e-3})}
    s = screening.summarize_screen(res, tmp_path)
    assert s["reference_temperature_K"] == 300.0
    assert s["best"]["key"] == "b" and s["best"]["sigma_S_per_cm"] == 2e-3
    assert s["n_conditions"] == 4 and s["n_compositions"] == 2


def test_the_paper_grid_is_the_seeds():
    """EC:DEC 1:1, 1:2, 1:3, 3:1 × 0.5-2 M × FEC 0/2 wt% × -40...80 °C: 992 conditions."""
    s = load_screen_config("paper")
    comps = compositions(s)
    assert len(comps) == 32 and len(comps) * len(s.temperatures_K) == 992
    assert min(s.temperatures_K) == pytest.approx(233.15)
    assert max(s.temperatures_K) == pytest.approx(353.15)
    assert len({screening.composition_key(c) for c in comps}) == 32


def test_bad_settings_are_one_line_errors():
    from common.errors import ConfigError

    with pytest.raises(ConfigError, match="one number per solvent"):
        _settings(ratios=[[1.0, 2.0]])
    with pytest.raises(ConfigError, match="discard_fs"):
        _settings(discard_fs=1e6)
    with pytest.raises(ConfigError, match="rank_by"):
        _settings(rank_by="max")
