"""Predicted vs experimental binding ΔG: conversions, metrics against scipy, bootstrap coverage,
the table's errors, the parity plot and the JACS benchmark reader."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from common.errors import ConfigError, DataError, EnvironmentProblem
from common.events import wilson_interval
from drug_binding.validation import (
    R_KCAL_PER_MOL_K,
    benchmark_files,
    benchmark_set,
    benchmark_sets,
    bootstrap_ci,
    cheng_prusoff_ki_nM,
    kd_to_dg_kcal_per_mol,
    metrics,
    plot_validation,
    validate_table,
)


def _rows(exp, pred, col="dG_exp_kcal_per_mol"):
    return [{"name": f"L{k}", col: e, "dG_pred_kcal_per_mol": p}
            for k, (e, p) in enumerate(zip(exp, pred, strict=True))]


def _write_csv(path, header, lines):
    path.write_text("\n".join([",".join(header)] + [",".join(map(str, r)) for r in lines]) + "\n")
    return path


# -- conversions ------------------------------------------------------------------------------


def test_kd_1nM_at_298K_by_hand():
    # R T ln(1e-9) = 1.98720e-3 kcal/(mol K) * 298.15 K * (-20.7233) = -12.278 kcal/mol
    assert kd_to_dg_kcal_per_mol(1.0) == pytest.approx(-12.278, abs=5e-4)
    assert R_KCAL_PER_MOL_K == pytest.approx(1.987204e-3, rel=1e-6)
    # 1 M is the standard state: ΔG = 0; a 10x weaker binder costs RT ln 10 = 1.364 kcal/mol
    assert kd_to_dg_kcal_per_mol(1e9) == pytest.approx(0.0, abs=1e-12)
    d = kd_to_dg_kcal_per_mol(np.array([1.0, 10.0]))
    assert d[1] - d[0] == pytest.approx(R_KCAL_PER_MOL_K * 298.15 * math.log(10), rel=1e-12)


def test_cheng_prusoff():
    # [S] = Km halves IC50; [S] = 0 leaves it as is
    assert cheng_prusoff_ki_nM(100.0, substrate_uM=5.0, km_uM=5.0) == pytest.approx(50.0)
    assert cheng_prusoff_ki_nM(100.0, substrate_uM=0.0, km_uM=5.0) == pytest.approx(100.0)
    assert cheng_prusoff_ki_nM(90.0, substrate_uM=10.0, km_uM=5.0) == pytest.approx(30.0)
    with pytest.raises(ConfigError, match="Km"):
        cheng_prusoff_ki_nM(90.0, substrate_uM=10.0, km_uM=0.0)


def test_table_sources_say_which_conversion(tmp_path):
    ic50 = [10.0, 100.0, 1000.0, 30.0]
    pred = [-11.0, -9.5, -8.0, -10.0]
    rows = _rows(ic50, pred, col="IC50_nM")
    plain = validate_table(rows, n_bootstrap=50)
    assert plain["experimental_source"] == "IC50 as Kd"
    assert plain["rows"][0]["dG_exp_kcal_per_mol"] == pytest.approx(
        kd_to_dg_kcal_per_mol(10.0))
    cp = validate_table(rows, substrate_uM=10.0, km_uM=5.0, n_bootstrap=50)
    assert cp["experimental_source"] == "Cheng-Prusoff Ki"
    # Ki = IC50 / 3 -> ΔG lower by RT ln 3
    shift = R_KCAL_PER_MOL_K * 298.15 * math.log(3.0)
    for a, b in zip(plain["rows"], cp["rows"], strict=True):
        assert b["dG_exp_kcal_per_mol"] == pytest.approx(a["dG_exp_kcal_per_mol"] - shift)
    kd = validate_table(_rows(ic50, pred, col="Kd_nM"), temperature_K=310.0, n_bootstrap=50)
    assert kd["experimental_source"] == "Kd"
    assert kd["rows"][1]["dG_exp_kcal_per_mol"] == pytest.approx(
        R_KCAL_PER_MOL_K * 310.0 * math.log(100e-9))


# -- metrics ----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_match_scipy(seed):
    rng = np.random.default_rng(seed)
    exp = rng.normal(-9.0, 1.5, 40)
    pred = exp + rng.normal(0.3, 1.0, 40)
    pred[:5] = np.round(pred[:5])  # some ties for Kendall tau-b
    exp[5:8] = exp[8]
    m = metrics(exp, pred)
    r = stats.pearsonr(exp, pred).statistic
    assert m["pearson_r"] == pytest.approx(r, abs=1e-12)
    assert m["r2"] == pytest.approx(r * r, abs=1e-12)
    assert m["kendall_tau"] == pytest.approx(stats.kendalltau(exp, pred).statistic, abs=1e-12)
    assert m["rmse_kcal_per_mol"] == pytest.approx(np.sqrt(np.mean((pred - exp) ** 2)))
    assert m["mae_kcal_per_mol"] == pytest.approx(np.mean(np.abs(pred - exp)))


def test_perfect_predictions():
    exp = [-7.0, -8.5, -9.1, -10.3, -12.0]
    res = validate_table(_rows(exp, exp), n_bootstrap=200)
    assert res["r2"] == pytest.approx(1.0)
    assert res["pearson_r"] == pytest.approx(1.0)
    assert res["kendall_tau"] == pytest.approx(1.0)
    assert res["rmse_kcal_per_mol"] == 0.0
    assert res["mae_kcal_per_mol"] == 0.0
    assert res["ci95"]["rmse_kcal_per_mol"] == [0.0, 0.0]
    assert res["ci95"]["r2"] == pytest.approx([1.0, 1.0])


def test_constant_prediction_has_no_correlation():
    m = metrics([-7.0, -8.0, -9.0], [-8.0, -8.0, -8.0])
    assert m["pearson_r"] is None and m["r2"] is None and m["kendall_tau"] is None
    assert m["rmse_kcal_per_mol"] == pytest.approx(math.sqrt(2 / 3))


def test_contract_keys_and_json(tmp_path):
    rng = np.random.default_rng(3)
    exp = rng.normal(-9, 1.2, 12)
    path = _write_csv(tmp_path / "t.csv", ["name", "dG_pred_kcal_per_mol", "dG_exp_kcal_per_mol"],
                      [(f"c{k}", round(e + rng.normal(0, 0.8), 3), round(e, 3))
                       for k, e in enumerate(exp)])
    res = validate_table(path, n_bootstrap=300, seed=7)
    for key in ("n", "r2", "pearson_r", "kendall_tau", "rmse_kcal_per_mol", "mae_kcal_per_mol",
                "ci95", "rows"):
        assert key in res
    assert res["n"] == 12
    assert set(res["ci95"]) == {"r2", "pearson_r", "kendall_tau", "rmse_kcal_per_mol",
                                "mae_kcal_per_mol"}
    for k, (lo, hi) in res["ci95"].items():
        assert lo <= res[k] <= hi or k == "r2"  # r2's interval need not hold the point value
    assert set(res["rows"][0]) == {"name", "dG_exp_kcal_per_mol", "dG_pred_kcal_per_mol"}
    json.dumps(res, allow_nan=False)
    # same seed -> same numbers; another seed -> other intervals
    assert validate_table(path, n_bootstrap=300, seed=7) == res
    assert validate_table(path, n_bootstrap=300, seed=8)["ci95"] != res["ci95"]


# -- bootstrap --------------------------------------------------------------------------------


def test_bootstrap_coverage_of_pearson_r_and_rmse():
    """Percentile bootstrap CIs contain the true values at about the nominal rate.

    200 synthetic data sets of n = 60 from a bivariate normal with rho = 0.6 (true r) and
    errors of sd 1 (true RMSE = 1). The percentile bootstrap is known to under-cover slightly
    at this n (about 1-3 points), so the observed coverage must be consistent with a rate in
    [0.90, 0.97]: its 99.9 % Wilson interval (about ±5 points at 200 trials) must overlap it.
    """
    rng = np.random.default_rng(12)
    rho, n, trials = 0.6, 60, 200
    hits = {"pearson_r": 0, "rmse_kcal_per_mol": 0}
    for k in range(trials):
        x = rng.normal(size=n)
        y = rho * x + math.sqrt(1 - rho**2) * rng.normal(size=n)
        ci = bootstrap_ci(x, y, n_bootstrap=400, seed=k, names=["pearson_r"])
        hits["pearson_r"] += ci["pearson_r"][0] <= rho <= ci["pearson_r"][1]
        e = rng.normal(size=n)
        ci = bootstrap_ci(x, x + e, n_bootstrap=400, seed=k, names=["rmse_kcal_per_mol"])
        hits["rmse_kcal_per_mol"] += ci["rmse_kcal_per_mol"][0] <= 1.0 <= ci[
            "rmse_kcal_per_mol"][1]
    for name, h in hits.items():
        lo, hi = wilson_interval(h, trials, confidence=0.999)
        assert lo <= 0.97 and hi >= 0.90, (name, h / trials)


def test_bootstrap_width_matches_fisher_z():
    """For n = 400 bivariate-normal pairs the bootstrap interval of r matches the analytic
    Fisher-z interval tanh(atanh r ± 1.96 / sqrt(n - 3)); 4000 resamples put the Monte Carlo
    error of each percentile at about 2 % of the width, so the widths agree within 10 %."""
    rng = np.random.default_rng(5)
    n, rho = 400, 0.7
    x = rng.normal(size=n)
    y = rho * x + math.sqrt(1 - rho**2) * rng.normal(size=n)
    r = stats.pearsonr(x, y).statistic
    z = math.atanh(r)
    half = 1.959964 / math.sqrt(n - 3)
    fisher = (math.tanh(z - half), math.tanh(z + half))
    lo, hi = bootstrap_ci(x, y, n_bootstrap=4000, seed=1, names=["pearson_r"])["pearson_r"]
    assert (hi - lo) == pytest.approx(fisher[1] - fisher[0], rel=0.10)
    assert (lo + hi) / 2 == pytest.approx(sum(fisher) / 2, abs=0.1 * (fisher[1] - fisher[0]))


# -- bad input --------------------------------------------------------------------------------


def test_missing_column(tmp_path):
    p = _write_csv(tmp_path / "t.csv", ["name", "dG_pred_kcal_per_mol"], [("a", -9)] * 3)
    with pytest.raises(DataError, match="no experimental column") as e:
        validate_table(p)
    assert "t.csv" in str(e.value) and "\n" not in str(e.value)
    p = _write_csv(tmp_path / "u.csv", ["name", "Kd_nM"], [("a", 1), ("b", 2), ("c", 3)])
    with pytest.raises(DataError, match=r"missing column\(s\) \['dG_pred_kcal_per_mol'\]"):
        validate_table(p)
    p = _write_csv(tmp_path / "v.csv", ["name", "Kd_nM", "IC50_nM", "dG_pred_kcal_per_mol"],
                   [("a", 1, 1, -9)] * 3)
    with pytest.raises(DataError, match="several experimental columns"):
        validate_table(p)


def test_non_numeric_names_row_and_column(tmp_path):
    p = _write_csv(tmp_path / "t.csv", ["name", "Kd_nM", "dG_pred_kcal_per_mol"],
                   [("a", 1, -9), ("b", "n/a", -8), ("c", 3, -7)])
    with pytest.raises(DataError, match=r"t\.csv line 3 \(b\).*column Kd_nM: not a number"):
        validate_table(p)
    with pytest.raises(DataError, match=r"rows\[2\] \(L2\).*dG_pred_kcal_per_mol"):
        validate_table(_rows([-9, -8, -7], [-9, -8, float("nan")]))


def test_non_positive_kd(tmp_path):
    p = _write_csv(tmp_path / "t.csv", ["name", "IC50_nM", "dG_pred_kcal_per_mol"],
                   [("a", 1, -9), ("b", 2, -8), ("c", 0, -7)])
    with pytest.raises(DataError, match=r"line 4 \(c\).*IC50_nM: must be > 0"):
        validate_table(p)


def test_too_few_rows_and_duplicates(tmp_path):
    with pytest.raises(DataError, match="at least 3 compounds, got 2"):
        validate_table(_rows([-9, -8], [-9, -8]))
    p = _write_csv(tmp_path / "t.csv", ["name", "dG_exp_kcal_per_mol", "dG_pred_kcal_per_mol"],
                   [("a", -9, -9), ("b", -8, -8), ("a", -7, -7)])
    with pytest.raises(DataError, match=r"line 4: duplicate name 'a' \(also .*line 2\)"):
        validate_table(p)
    with pytest.raises(DataError, match="file not found"):
        validate_table(tmp_path / "nope.csv")


def test_bad_options():
    rows = _rows([-9, -8, -7], [-9, -8, -7])
    with pytest.raises(ConfigError, match="temperature"):
        validate_table(rows, temperature_K=0)
    with pytest.raises(ConfigError, match="apply to IC50_nM"):
        validate_table(rows, substrate_uM=1.0, km_uM=1.0)
    with pytest.raises(ConfigError, match="both"):
        validate_table(_rows([1, 2, 3], [-9, -8, -7], col="IC50_nM"), substrate_uM=1.0)


# -- plot and benchmark sets ------------------------------------------------------------------


def test_parity_plot(tmp_path):
    rng = np.random.default_rng(0)
    exp = rng.normal(-9, 1.0, 10)
    res = validate_table(_rows(exp, exp + rng.normal(0, 0.7, 10)), n_bootstrap=100)
    out = plot_validation(res, tmp_path / "fig" / "parity.png", title="test")
    assert out.stat().st_size > 5000
    assert out.read_bytes()[:4] == b"\x89PNG"


_SDF = """{name}
  test

  1  0  0  0  0  0            999 V2000
    0.0000    0.0000    0.0000 C   0  0  0  0  0  0
M  END
>  <i_m_stars>
0

>  <r_user_dG.exp>
{dg}

$$$$
"""


def test_benchmark_set_reads_sd_tags(tmp_path):
    root = tmp_path / "perses_jacs_systems"
    (root / "tyk2").mkdir(parents=True)
    (root / "p38a").mkdir()
    (root / "tyk2" / "Tyk2_ligands.sdf").write_text(
        _SDF.format(name="ejm_31", dg=-9.54) + _SDF.format(name="jmc_30", dg=-10.94))
    (root / "p38a" / "p38_ligands_shifted.sdf").write_text(
        _SDF.format(name="p38a_2n", dg=-11.854).replace("r_user_dG.exp", "r_exp_dg"))
    assert benchmark_sets(root) == ["p38", "tyk2"]
    assert benchmark_set("TYK2", root) == [
        {"name": "ejm_31", "dG_exp_kcal_per_mol": -9.54},
        {"name": "jmc_30", "dG_exp_kcal_per_mol": -10.94}]
    assert benchmark_set("p38", root)[0]["dG_exp_kcal_per_mol"] == -11.854
    with pytest.raises(ConfigError, match=r"no benchmark set 'bace'.*\['p38', 'tyk2'\]"):
        benchmark_set("bace", root)
    (root / "tyk2" / "Tyk2_protein.pdb").write_text("END\n")
    files = benchmark_files("tyk2", root)
    assert files["protein_pdb"].name == "Tyk2_protein.pdb"
    assert files["ligands_sdf"].name == "Tyk2_ligands.sdf" and files["folder"] == root / "tyk2"
    with pytest.raises(DataError, match="no \\*_protein.pdb"):
        benchmark_files("p38", root)
    with pytest.raises(ConfigError, match="no benchmark set 'bace'"):
        benchmark_files("bace", root)


def test_benchmark_set_shipped_with_openmmforcefields():
    try:
        names = benchmark_sets()
    except EnvironmentProblem:
        pytest.skip("openmmforcefields (with its perses_jacs_systems data) is not installed")
    # Wang et al. JACS 2015: 8 targets, 199 ligands
    assert {"bace", "cdk2", "jnk1", "mcl1", "p38", "ptp1b", "thrombin", "tyk2"} <= set(names)
    assert sum(len(benchmark_set(n)) for n in names) >= 199
