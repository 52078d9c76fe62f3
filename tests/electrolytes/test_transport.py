"""electrolytes.transport on synthetic trajectories with known D and conductivity.

Tolerances come from the statistics:

* D of one run: the reported error is the standard error over independent walkers
  (``std(D_i)/sqrt(N)``); a single run must fall within 4 of its errors (a 4-sigma band, the
  Gaussian limit being good for N >= 20 walkers).
* The errors themselves are checked by repeating the run with ``M`` seeds (module fixture
  ``seed_runs``): the RMS of the reported errors must match the scatter of the estimates
  across seeds. The sample standard deviation of M estimates has a relative spread of
  ``1/sqrt(2(M-1))``; the block error of one run (5 blocks, 4 degrees of freedom) has
  ``1/sqrt(8)``, so its RMS over M runs ``~1/sqrt(8M)``; the test allows 3.5 of the two
  combined. A block error wrongly divided by sqrt(5) (ratio 0.45) would fail.
* Conductivity of independent walkers: E[sigma_EH] = sigma_NE; the seed-mean of sigma_EH is
  compared with sigma_NE's expectation within 4 standard errors of the mean.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from common.errors import ConfigError, DataError, MlpCasesError
from common.units import KB_EV_PER_K
from electrolytes.transport import (
    analyse_transport,
    arrhenius_fit,
    msd_direct,
    msd_fft,
    transport_report,
    unwrap_positions,
)

E_C, KB_SI = 1.602176634e-19, 1.380649e-23
CUBE = np.diag([15.0, 15.0, 15.0])
TRICLINIC = np.array([[14.0, 0.0, 0.0], [4.0, 13.0, 0.0], [-2.0, 3.0, 15.0]])


def sigma_ne(n_d_q2: float, volume_A3: float, temperature_K: float) -> float:
    """e² sum N q² D / (V kB T) in S/cm for ``sum N q² D`` in cm²/s (independent check of the
    module's unit chain: SI throughout)."""
    return E_C**2 * n_d_q2 * 1e-4 / (volume_A3 * 1e-30 * KB_SI * temperature_K) / 100.0


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and "fix:" in text, text
    return text


# ------------------------------------------------------------------------------------------
# MSD and unwrapping


def test_msd_fft_equals_direct_double_loop():
    rng = np.random.default_rng(3)
    x = 400.0 + np.cumsum(rng.normal(size=(600, 7, 3)), axis=0)  # far from the origin
    fft, direct = msd_fft(x), msd_direct(x)
    assert fft.shape == direct.shape == (600, 7)
    assert np.abs(fft - direct).max() <= 1e-10 * direct.max()
    one = msd_fft(x[:, 2])
    np.testing.assert_allclose(one, direct[:, 2], rtol=0, atol=1e-10 * direct.max())
    np.testing.assert_allclose(msd_fft(x, chunk_elements=1), fft, rtol=0, atol=1e-9)


def test_unwrap_round_trip_triclinic():
    rng = np.random.default_rng(5)
    n_t, n = 300, 20
    # steps up to ~1.5 Å per frame (narrowest width of the cell ~11.6 Å: half is 5.8 Å)
    x = rng.uniform(0, 14, size=(1, n, 3)) + np.cumsum(
        rng.normal(scale=0.5, size=(n_t, n, 3)), axis=0)
    frac = x @ np.linalg.inv(TRICLINIC)
    wrapped = (frac % 1.0) @ TRICLINIC
    assert np.abs(wrapped - x).max() > 20.0  # atoms did cross the boundaries, many times
    u = unwrap_positions(wrapped, TRICLINIC)
    np.testing.assert_allclose(u - u[0], x - x[0], rtol=0, atol=1e-9)
    # per-frame cells and a non-periodic direction
    u2 = unwrap_positions(wrapped, np.broadcast_to(TRICLINIC, (n_t, 3, 3)), (True,) * 3)
    np.testing.assert_allclose(u2, u, atol=1e-12)
    free = unwrap_positions(wrapped, TRICLINIC, (False, False, False))
    np.testing.assert_allclose(free, wrapped, atol=1e-12)


# ------------------------------------------------------------------------------------------
# D on one run


def test_diffusion_of_several_species_wrapped_triclinic_dt_2p5(make_brownian):
    """Li, P and uncharged O walkers in a triclinic box, frames 2.5 fs apart read from the
    frames' info["time_fs"]; D within 4 of its standard errors."""
    d_true = {"Li": 2.0e-4, "P": 1.0e-4, "O": 5.0e-5}
    frames, _ = make_brownian(11, 1200, {"Li": 40, "P": 40, "O": 30}, d_true, 2.5, TRICLINIC)
    run = analyse_transport(frames, 300.0, {"Li": 1, "P": -1})
    assert run.dt_fs == pytest.approx(2.5)
    assert run.window_fs == pytest.approx((120 * 2.5, 599 * 2.5))
    for s, d in d_true.items():
        fit = run.species[s]
        assert fit.n_atoms == {"Li": 40, "P": 40, "O": 30}[s]
        # expected size of the error: the single-walker slope scatters by ~70% (window 10-50%)
        assert 0.3 < fit.D_err_cm2_per_s / (d / math.sqrt(fit.n_atoms)) < 1.5
        assert abs(fit.D_cm2_per_s - d) < 4 * fit.D_err_cm2_per_s, (s, fit)
    assert any("no charge given for O" in n for n in run.notes)
    assert run.conductivity is not None


def test_dt_fs_wins_over_stored_times(make_brownian):
    frames, _ = make_brownian(2, 200, {"Li": 10}, {"Li": 1e-4}, 2.5, CUBE, stored_dt_fs=1.0)
    stored = analyse_transport(frames, 300.0)
    given = analyse_transport(frames, 300.0, dt_fs=2.5)
    assert stored.dt_fs == 1.0 and given.dt_fs == 2.5
    ratio = stored.species["Li"].D_cm2_per_s / given.species["Li"].D_cm2_per_s
    assert ratio == pytest.approx(2.5, rel=1e-12)


def test_block_error_for_one_atom_species(make_brownian):
    frames, _ = make_brownian(4, 500, {"Li": 1, "P": 5}, {"Li": 1e-4, "P": 1e-4}, 2.0, CUBE)
    run = analyse_transport(frames, 300.0, d_error="atoms")
    assert math.isfinite(run.species["Li"].D_err_cm2_per_s)
    blocks = analyse_transport(frames, 300.0, d_error="blocks")
    assert blocks.species["P"].D_cm2_per_s == run.species["P"].D_cm2_per_s
    assert blocks.species["P"].D_err_cm2_per_s != run.species["P"].D_err_cm2_per_s


# ------------------------------------------------------------------------------------------
# errors against seed scatter; sigma_EH = sigma_NE for independent walkers

M_SEEDS = 40
SEED_D = {"Li": 2.0e-4, "P": 1.0e-4}
SEED_N = {"Li": 20, "P": 20}


@pytest.fixture(scope="module")
def seed_runs(make_brownian):
    """M independent runs (1000 frames, 2 fs apart, 20 Li+ and 20 PF6- as P walkers)."""
    runs = []
    for s in range(M_SEEDS):
        frames, _ = make_brownian(100 + s, 1000, SEED_N, SEED_D, 2.0, CUBE)
        runs.append(analyse_transport(frames, 300.0, {"Li": 1, "P": -1}))
    return runs


def _scatter_vs_error(values, errors, block_dof: int | None) -> tuple[float, float]:
    """(RMS reported error / seed standard deviation, allowed deviation of that ratio)."""
    ratio = math.sqrt(np.mean(np.square(errors))) / np.std(values, ddof=1)
    rel = 1.0 / math.sqrt(2 * (M_SEEDS - 1))
    if block_dof:
        rel = math.hypot(rel, 1.0 / math.sqrt(2 * block_dof * M_SEEDS))
    return ratio, 3.5 * rel


def test_reported_errors_match_seed_scatter(seed_runs):
    for s in SEED_D:
        d = [r.species[s].D_cm2_per_s for r in seed_runs]
        ratio, tol = _scatter_vs_error(d, [r.species[s].D_err_cm2_per_s for r in seed_runs],
                                       None)
        assert abs(ratio - 1) < tol, (s, ratio, tol)
        assert abs(np.mean(d) - SEED_D[s]) < 4 * np.std(d, ddof=1) / math.sqrt(M_SEEDS)
    eh = [r.conductivity.einstein_helfand_S_per_cm for r in seed_runs]
    ratio, tol = _scatter_vs_error(
        eh, [r.conductivity.einstein_helfand_err_S_per_cm for r in seed_runs], 4)
    assert abs(ratio - 1) < tol, ("EH", ratio, tol)
    ne = [r.conductivity.nernst_einstein_S_per_cm for r in seed_runs]
    ratio, tol = _scatter_vs_error(
        ne, [r.conductivity.nernst_einstein_err_S_per_cm for r in seed_runs], None)
    assert abs(ratio - 1) < tol, ("NE", ratio, tol)


def test_independent_ions_haven_ratio_one(seed_runs):
    expected = sigma_ne(sum(SEED_N[s] * SEED_D[s] for s in SEED_D), 15.0**3, 300.0)
    ne = np.array([r.conductivity.nernst_einstein_S_per_cm for r in seed_runs])
    eh = np.array([r.conductivity.einstein_helfand_S_per_cm for r in seed_runs])
    assert abs(ne.mean() - expected) < 4 * ne.std(ddof=1) / math.sqrt(M_SEEDS)
    assert abs(eh.mean() - expected) < 4 * eh.std(ddof=1) / math.sqrt(M_SEEDS)
    haven = ne.mean() / eh.mean()
    haven_err = haven * math.hypot(ne.std(ddof=1) / ne.mean(), eh.std(ddof=1) / eh.mean()) \
        / math.sqrt(M_SEEDS)
    assert abs(haven - 1.0) < 4 * haven_err, (haven, haven_err)


# ------------------------------------------------------------------------------------------
# correlated ions: the collective term differs


def test_rigid_neutral_pairs_carry_no_current(make_ion_pairs):
    frames = make_ion_pairs(8, 600, 30, 0.0, 2e-4, 2.0, CUBE)
    run = analyse_transport(frames, 300.0, {"Li": 1, "P": -1})
    c = run.conductivity
    assert run.species["Li"].D_cm2_per_s == pytest.approx(2e-4, rel=0.3)
    assert c.nernst_einstein_S_per_cm > 0
    assert abs(c.einstein_helfand_S_per_cm) < 1e-9 * c.nernst_einstein_S_per_cm
    assert run.to_dict()["conductivity"]["haven_ratio"] is None


def test_partly_correlated_pairs_haven_ratio_two(make_ion_pairs):
    """Shared walk D_c plus own walks D_a = D_b = D_c: D_Li = D_P = 2 D_c, while the charge
    displacement sees only the own walks, so H = (D_Li + D_P)/(D_a + D_b) = 2. Pooled over 8
    seeds with a short window (1-5% of the run, relative error of one run ~25%)."""
    d = 1e-4
    ne, eh = [], []
    for seed in range(8):
        frames = make_ion_pairs(20 + seed, 1000, 40, d, d, 2.0, CUBE)
        c = analyse_transport(frames, 300.0, {"Li": 1, "P": -1}, window=(0.01, 0.05)
                              ).conductivity
        ne.append(c.nernst_einstein_S_per_cm)
        eh.append(c.einstein_helfand_S_per_cm)
    ne, eh = np.array(ne), np.array(eh)
    expected_eh = sigma_ne(40 * 2 * d, 15.0**3, 300.0)
    assert abs(eh.mean() - expected_eh) < 4 * eh.std(ddof=1) / math.sqrt(8)
    haven = ne.mean() / eh.mean()
    err = haven * math.hypot(ne.std(ddof=1) / ne.mean(), eh.std(ddof=1) / eh.mean()) / 8**0.5
    assert abs(haven - 2.0) < 4 * err and abs(haven - 1.0) > 4 * err, (haven, err)


# ------------------------------------------------------------------------------------------
# Arrhenius


def test_arrhenius_recovers_activation_energy():
    """ln D with 5% Gaussian noise at 5 temperatures: Ea within 3 errors for one draw, and
    over 400 draws the z-scores have spread <= 1 (errors are never shrunk below the
    weighted-covariance ones) and not far below (not grossly inflated)."""
    ea, d0 = 0.25, 1e-2
    temps = np.array([300.0, 350.0, 400.0, 450.0, 500.0])
    truth = d0 * np.exp(-ea / (KB_EV_PER_K * temps))
    rng = np.random.default_rng(0)
    z = []
    for k in range(400):
        d = truth * np.exp(rng.normal(scale=0.05, size=len(temps)))
        f = arrhenius_fit(temps, d, 0.05 * d)
        if k == 0:
            assert abs(f.Ea_eV - ea) < 3 * f.Ea_err_eV
            assert abs(math.log(f.prefactor / d0)) < 3 * f.ln_prefactor_err
        z.append((f.Ea_eV - ea) / f.Ea_err_eV)
    spread = float(np.std(z))
    assert 0.6 < spread < 1.0 + 3.5 / math.sqrt(2 * 399), spread
    plain = arrhenius_fit(temps, truth)  # no errors: exact data, zero scatter
    assert plain.Ea_eV == pytest.approx(ea, rel=1e-9) and plain.Ea_err_eV < 1e-9


def _write_runs(tmp_path, make_brownian, temps, ea=0.2):
    import ase.io

    paths, d_true = [], {}
    for k, t in enumerate(temps):
        d = {"Li": 0.2 * math.exp(-ea / (KB_EV_PER_K * t)), "P": 0.1 * math.exp(
            -ea / (KB_EV_PER_K * t)), "O": 1e-4}
        d_true[t] = d
        frames, _ = make_brownian(50 + k, 400, {"Li": 30, "P": 30, "O": 4}, d, 2.0, CUBE)
        p = tmp_path / f"run_{t:g}K.extxyz"
        ase.io.write(p, frames, format="extxyz")
        paths.append(p)
    return paths, d_true


def test_transport_report_contract_and_arrhenius(tmp_path, make_brownian):
    temps = [300.0, 400.0, 500.0]
    paths, d_true = _write_runs(tmp_path, make_brownian, temps)
    t0 = time.perf_counter()
    report, notes = transport_report(paths, temps, {"Li": 1, "P": -1}, dt_fs=2.0,
                                     window=(0.02, 0.2), plots_dir=tmp_path / "plots")
    assert time.perf_counter() - t0 < 60
    assert set(report) == {"runs", "arrhenius"}
    assert [r["trajectory"] for r in report["runs"]] == [str(p) for p in paths]
    for run, t in zip(report["runs"], temps, strict=True):
        assert set(run) == {"trajectory", "temperature_K", "species", "conductivity"}
        assert run["temperature_K"] == t
        assert set(run["species"]) == {"Li", "P", "O"}
        li = run["species"]["Li"]
        assert set(li) == {"n_atoms", "D_cm2_per_s", "D_err_cm2_per_s"} and li["n_atoms"] == 30
        assert abs(li["D_cm2_per_s"] - d_true[t]["Li"]) < 4 * li["D_err_cm2_per_s"]
        assert set(run["conductivity"]) == {
            "nernst_einstein_S_per_cm", "nernst_einstein_err_S_per_cm",
            "einstein_helfand_S_per_cm", "einstein_helfand_err_S_per_cm", "haven_ratio"}
    arr = report["arrhenius"]
    assert set(arr) == {"D", "conductivity"} and set(arr["D"]) == {"Li", "P", "O"}
    for s in ("Li", "P"):
        e = arr["D"][s]
        assert set(e) == {"Ea_eV", "Ea_err_eV", "prefactor_cm2_per_s"}
        assert abs(e["Ea_eV"] - 0.2) < 4 * e["Ea_err_eV"], (s, e)
    assert abs(arr["D"]["O"]["Ea_eV"]) < 4 * arr["D"]["O"]["Ea_err_eV"]  # D of O is constant
    assert set(arr["conductivity"]) == {"Ea_eV", "Ea_err_eV", "prefactor_S_K_per_cm"}
    assert abs(arr["conductivity"]["Ea_eV"] - 0.2) < 4 * arr["conductivity"]["Ea_err_eV"]
    assert sum("no charge given for O" in n for n in notes) == 1  # once, not per run
    import json

    json.dumps(report, allow_nan=False)
    pngs = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert pngs == ["arrhenius_D.png", "arrhenius_conductivity.png", "msd_00_run_300K.png",
                    "msd_01_run_400K.png", "msd_02_run_500K.png"]


def test_no_arrhenius_below_three_temperatures(make_brownian):
    runs = [make_brownian(k, 200, {"Li": 5, "P": 5}, {"Li": 1e-4, "P": 1e-4}, 2.0, CUBE)[0]
            for k in range(3)]
    report, _ = transport_report(runs, [300.0, 300.0, 400.0], {"Li": 1, "P": -1})
    assert "arrhenius" not in report and len(report["runs"]) == 3
    one, notes = transport_report(runs[0], 300.0, {"Li": 1, "P": -1})
    assert one["runs"][0]["trajectory"] == "frames[0]" and notes == []


# ------------------------------------------------------------------------------------------
# bad input: one-line errors


def _no_cell(frames):
    for a in frames:
        a.cell = np.zeros((3, 3))
        a.pbc = False
    return frames


@pytest.mark.parametrize("case, exc, words", [
    ("no cell", DataError, "no cell"),
    ("charge of absent species", ConfigError, "no Na atoms"),
    ("absent species", ConfigError, "species Na is not in the trajectory"),
    ("dt zero", ConfigError, "time step must be > 0"),
    ("dt negative", ConfigError, "time step must be > 0"),
    ("too few frames", DataError, "too few frames (30)"),
    ("temperatures", ConfigError, "2 temperature(s) for 3 trajectories"),
    ("bad temperature", ConfigError, "temperature must be > 0 K"),
    ("bad window", ConfigError, "fit window"),
    ("uneven times", DataError, "not evenly spaced"),
])
def test_bad_input_one_line_errors(make_brownian, case, exc, words):
    frames, _ = make_brownian(1, 200, {"Li": 3, "P": 3}, {"Li": 1e-4, "P": 1e-4}, 2.0, CUBE)
    calls = {
        "no cell": lambda: analyse_transport(_no_cell(frames), 300.0),
        "charge of absent species": lambda: analyse_transport(frames, 300.0, {"Na": 1}),
        "absent species": lambda: analyse_transport(frames, 300.0, species=["Na"]),
        "dt zero": lambda: analyse_transport(frames, 300.0, dt_fs=0.0),
        "dt negative": lambda: transport_report([frames], [300.0], dt_fs=-1.0),
        "too few frames": lambda: analyse_transport(frames[:30], 300.0),
        "temperatures": lambda: transport_report([frames] * 3, [300.0, 400.0]),
        "bad temperature": lambda: analyse_transport(frames, -5.0),
        "bad window": lambda: analyse_transport(frames, 300.0, window=(0.5, 0.1)),
        "uneven times": lambda: analyse_transport(
            [a for k, a in enumerate(frames) if k != 50], 300.0),
    }
    with pytest.raises(exc) as info:
        calls[case]()
    assert isinstance(info.value, MlpCasesError)
    assert words in one_line(info.value)
