"""Arrhenius fits, branching, plots and the KPP/MCM mechanism (atmospheric.kinetics).

Synthetic k(T) with known parameters and log-normal noise of known size: the fit must recover
Ea within its own error, and over many noisy data sets its errors must be honest (z-scores of
unit spread; the spread of 400 z's is known to ~3.5%, so 1 +- 0.12 is a 3.4-sigma band).
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from atmospheric.kinetics import (
    R_KCAL_PER_MOL_K,
    branching_vs_temperature,
    export_kinetics,
    fit_arrhenius,
    fit_channels,
    mechanism_lines,
)
from common.errors import ConfigError, DataError

TEMPS = np.array([220.0, 250.0, 280.0, 310.0, 340.0, 370.0, 400.0])
REL = 0.05  # 5% standard error on each k


def _noisy(a: float, e_over_r: float, rng, n: float = 0.0, temps=TEMPS, rel=REL):
    k = a * (temps / 300.0) ** n * np.exp(-e_over_r / temps)
    k_obs = k * np.exp(rng.normal(0.0, rel, len(temps)))
    return k_obs, rel * k_obs


def test_arrhenius_recovers_ea_within_its_error():
    ea_kcal = 1.5
    e_over_r = ea_kcal / R_KCAL_PER_MOL_K  # 754.8 K
    k, err = _noisy(2.0e-11, e_over_r, np.random.default_rng(11))
    fit = fit_arrhenius(TEMPS, k, err)
    assert abs(fit.Ea_kcal_per_mol - ea_kcal) < 3 * fit.Ea_err_kcal_per_mol
    assert abs(math.log(fit.A_cm3_per_molecule_s / 2.0e-11)) \
        < 3 * fit.A_err_cm3_per_molecule_s / fit.A_cm3_per_molecule_s
    # the error is the analytic one: sigma(E/R) = sigma_lnk / sqrt(sum (1/T - mean)^2)
    x = 1 / TEMPS
    assert fit.E_over_R_err_K == pytest.approx(REL / math.sqrt(((x - x.mean()) ** 2).sum()),
                                               rel=0.1)
    assert fit.Ea_eV == pytest.approx(fit.E_over_R_K * 8.617333262e-5)
    assert fit.Ea_kcal_per_mol == pytest.approx(fit.Ea_eV * 23.0605, rel=1e-4)
    assert 0.0 < fit.chi2_reduced < 4.0


def test_arrhenius_errors_are_honest_over_many_data_sets():
    rng = np.random.default_rng(5)
    z = []
    for _ in range(400):
        k, err = _noisy(1.0e-11, -390.0, rng)  # a negative Ea, as for capture
        fit = fit_arrhenius(TEMPS, k, err)
        z.append((fit.E_over_R_K + 390.0) / fit.E_over_R_err_K)
    z = np.array(z)
    assert abs(z.mean()) < 4 / math.sqrt(400)
    assert abs(z.std() - 1.0) < 0.12


def test_modified_arrhenius_and_unweighted_fit():
    rng = np.random.default_rng(2)
    temps = np.linspace(200.0, 1000.0, 12)
    k, err = _noisy(3.0e-12, 250.0, rng, n=-1.4, temps=temps, rel=0.02)
    fit = fit_arrhenius(temps, k, err, modified=True)
    assert fit.modified and fit.T_ref_K == 300.0
    assert abs(fit.n + 1.4) < 3 * fit.n_err
    assert abs(fit.E_over_R_K - 250.0) < 3 * fit.E_over_R_err_K
    assert fit.rate(300.0) == pytest.approx(3.0e-12 * math.exp(-250.0 / 300.0), rel=0.05)
    # exact data, no errors: exact parameters, errors from the (zero) scatter
    exact = fit_arrhenius(TEMPS, 5e-12 * np.exp(-1000.0 / TEMPS))
    assert exact.E_over_R_K == pytest.approx(1000.0)
    assert exact.A_cm3_per_molecule_s == pytest.approx(5e-12)
    assert exact.E_over_R_err_K < 1e-6 and exact.chi2_reduced is None
    # two points, no errors: a line through them, no error estimate
    two = fit_arrhenius([250.0, 350.0], [1e-11, 2e-11])
    assert two.E_over_R_err_K is None and two.A_err_cm3_per_molecule_s is None


@pytest.mark.parametrize("kwargs,match", [
    (dict(temperatures_K=[298.0], rates=[1e-11]), "needs at least 2 temperatures"),
    (dict(temperatures_K=[298.0, 298.0], rates=[1e-11, 1.1e-11]),
     "needs at least 2 temperatures"),
    (dict(temperatures_K=[250.0, 300.0], rates=[1e-11, 1e-11], modified=True),
     "modified Arrhenius fit needs at least 3 temperatures"),
    (dict(temperatures_K=[250.0, 300.0], rates=[1e-11]), "2 temperatures but 1 rates"),
    (dict(temperatures_K=[-5.0, 300.0], rates=[1e-11, 1e-11]), "finite and > 0 K"),
])
def test_too_few_temperatures_and_bad_shapes_are_one_line_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match) as err:
        fit_arrhenius(**kwargs)
    assert "\n" not in str(err.value) and "fix:" in str(err.value)


def test_zero_rate_or_zero_error_is_a_data_error():
    with pytest.raises(DataError, match="rate at 300 K is 0"):
        fit_arrhenius([250.0, 300.0], [1e-11, 0.0])
    with pytest.raises(DataError, match="rate error at 250 K is 0"):
        fit_arrhenius([250.0, 300.0], [1e-11, 2e-11], [0.0, 1e-12])


def test_mechanism_line_format():
    fit = fit_arrhenius([250.0, 300.0, 350.0], 2.7e-11 * np.exp(390.0 / np.array(
        [250.0, 300.0, 350.0])))
    lines = mechanism_lines(["OH", "C5H8"], {"ISOPOH_C1": fit})
    assert lines == ["{1.} OH + C5H8 = ISOPOH_C1 : 2.70D-11*EXP(390/TEMP) ;"]
    mod = fit_arrhenius(TEMPS, 1e-12 * (TEMPS / 300) ** 2.0 * np.exp(-1500.0 / TEMPS),
                        modified=True)
    both = mechanism_lines(["OH", "C5H8"], {"add": fit, "H + OH": mod, "none": None},
                           products={"add": ["ISOPOH", "M"]})
    assert both[0] == "{1.} OH + C5H8 = ISOPOH + M : 2.70D-11*EXP(390/TEMP) ;"
    assert both[1] == "{2.} OH + C5H8 = H + OH : 1.00D-12*(TEMP/300)@2.00*EXP(-1500/TEMP) ;"
    kpp = re.compile(r"\{\d+\.\} [A-Za-z]\w* \+ [A-Za-z]\w* = [A-Za-z]\w*( \+ [A-Za-z]\w*)* : "
                     r"\d\.\d\dD-?\d+(\*\(TEMP/300\)@-?\d+\.\d\d)?(\*EXP\(-?\d+/TEMP\))? ;")
    assert all(kpp.fullmatch(line) for line in both) and len(both) == 2


def _qct_result(temperature_K: float, k_add: float, k_abs: float, n: int = 1000) -> dict:
    """A run_qct-shaped result with two channels and binomial errors."""
    total = k_add + k_abs
    scale = 5e-9  # <v> pi b_max^2, cm^3/s: P = k / scale
    out = {"method": "QCT", "temperature_K": temperature_K, "n_trajectories": n,
           "rate_cm3_per_molecule_s": total, "b_max_A": 6.0, "channels": {}}
    n_r = 0
    for name, k in (("addition", k_add), ("H + H2O", k_abs)):
        c = round(k / scale * n)
        n_r += c
        p = c / n
        out["channels"][name] = {"n": c, "rate_cm3_per_molecule_s": scale * p,
                                 "rate_err_cm3_per_molecule_s": scale * math.sqrt(
                                     p * (1 - p) / n), "new": name != "addition"}
    p = n_r / n
    out.update(n_reactive=n_r, rate_cm3_per_molecule_s=scale * p,
               rate_err_cm3_per_molecule_s=scale * math.sqrt(p * (1 - p) / n))
    return out


def test_branching_and_export(tmp_path):
    temps = [250.0, 300.0, 350.0, 400.0]
    results = [_qct_result(t, 1e-10 * math.exp(300 / t), 2e-10 * math.exp(-500 / t))
               for t in reversed(temps)]
    br = branching_vs_temperature(results)
    assert br["temperatures_K"] == temps
    f_add = br["channels"]["addition"]["fraction"]
    assert all(abs(a + b - 1) < 1e-12 for a, b in zip(
        f_add, br["channels"]["H + H2O"]["fraction"], strict=True))
    assert f_add[0] > f_add[-1]  # addition wins at low T
    fitted = fit_channels(results)
    e_add = fitted["channels"]["addition"]["fit"]["E_over_R_K"]
    assert abs(e_add + 300) < 3 * fitted["channels"]["addition"]["fit"]["E_over_R_err_K"] + 20
    out = export_kinetics(tmp_path / "kin", results, ["OH", "CH4"],
                          products={"addition": "CH4OH"})
    files = {p.name for p in (tmp_path / "kin").iterdir()}
    assert files == {"kinetics.json", "rates.csv", "mechanism.kpp", "arrhenius.png"}
    mech = (tmp_path / "kin" / "mechanism.kpp").read_text().splitlines()
    eqs = [ln for ln in mech if ln.startswith("{")]
    assert eqs[0].startswith("{1.} OH + CH4 = CH4OH : ") and eqs[0].endswith("/TEMP) ;")
    assert eqs[1].startswith("{2.} OH + CH4 = H + H2O : ") and len(eqs) == 2
    data = json.loads((tmp_path / "kin" / "kinetics.json").read_text())
    assert data["mechanism"] == eqs == out["mechanism"]
    assert data["total"]["Ea_kcal_per_mol"] == pytest.approx(out["total"]["Ea_kcal_per_mol"])
    rows = (tmp_path / "kin" / "rates.csv").read_text().splitlines()
    assert rows[0].startswith("temperature_K,channel,n,fraction") and len(rows) == 1 + 2 * 4
    assert (tmp_path / "kin" / "arrhenius.png").stat().st_size > 1000


def test_channel_never_seen_enough_gets_no_fit():
    results = [_qct_result(t, 1e-10, 1e-10 if t == 300.0 else 0.0) for t in (250.0, 300.0)]
    fitted = fit_channels(results)
    ch = fitted["channels"]["H + H2O"]
    assert ch["fit"] is None and "at least 2 temperatures" in ch["reason"]
    assert ch["dropped_temperatures_K"] == [250.0]
    with pytest.raises(ConfigError, match="at least 2 temperatures"):
        fit_channels(results[:1])
