"""The tiny drug-binding case study end to end (slow), then its resume."""

from __future__ import annotations

import json
import time

import pytest

from drug_binding.case_study import load_case_config

pytest.importorskip("rdkit")
pytest.importorskip("openmmml")


def test_configs_load_and_name_their_keys():
    tiny, paper = load_case_config("tiny"), load_case_config("paper")
    assert tiny["experimental"] is None and paper["metad"]["steps"] == 1_000_000_000
    assert set(tiny) == set(paper) | ({"ani_overrides"} - set(paper))


@pytest.mark.slow
def test_tiny_case_study_runs_and_resumes(tmp_path):
    from drug_binding import case_study

    out = tmp_path / "tiny"
    s = case_study.run("tiny", out, progress=False)
    for name in ("summary.json", "report.md", "screening.png", "model/mlp-cases-model.json",
                 "screening/screening.json"):
        assert (out / name).is_file(), name
    broken = s["screening_fell_apart"]
    assert len(s["screening"]) + len(broken) + len(s["screening_failures"]) == 4
    report_text = (out / "report.md").read_text()
    for r in broken:  # reported as such, not ranked
        assert r["name"] not in [x["name"] for x in s["screening"]]
        assert f"| {r['name']} | **fell apart**" in report_text
    ranks = [r["mean_rmsd_A"] for r in s["screening"]]
    assert ranks == sorted(ranks)
    for r in s["screening"]:  # intact ligands stay near the pocket on this time scale
        assert 0.0 < r["mean_rmsd_A"] < 15.0 and r["contacts"]
    best = s["metad"][0]
    assert best["name"] == s["screening"][0]["name"]
    mjson = json.loads((out / "metad" / best["name"] / "metad.json").read_text())
    assert mjson["delta_G_kcal_per_mol"] == best["delta_G_kcal_per_mol"]
    assert best["delta_G_bind_kcal_per_mol"] < best["delta_G_kcal_per_mol"]  # V_u > 1.66 nm3
    # the tiny metadynamics gives a ΔG with an error bar: 4 walkers, each crossing the basins
    n = load_case_config("tiny")["metad"]["walkers"]
    assert best["n_walkers"] == n == len(mjson["walkers"]) and best["n_walkers_failed"] == 0
    dgs = best["walker_delta_G_kcal_per_mol"]
    assert best["delta_G_kcal_per_mol"] == pytest.approx(sum(dgs) / n)
    assert 0.0 < best["delta_G_err_kcal_per_mol"] < 3.0  # kcal/mol: finite, not absurd
    assert sum(x >= 1 for x in best["walker_basin_transitions"]) >= n - 1
    for k in range(n):
        assert (out / "metad" / best["name"] / f"walker_{k}" / "HILLS").is_file()
    assert (out / "metad" / best["name"] / "walkers.png").is_file()
    assert s["validation"]["experimental_data"] is None
    report = (out / "report.md").read_text()
    assert "no experimental comparison" in report and "-12.3" in report
    assert "not the distance to the converged answer" in report
    t0 = time.perf_counter()
    again = case_study.run("tiny", out, progress=False)
    assert time.perf_counter() - t0 < 30.0
    assert again["screening"] == s["screening"] and again["metad"] == s["metad"]


def _walker(dg, rw=None, err=None, transitions=2):
    return {"delta_G_kcal_per_mol": dg, "delta_G_reweighted_kcal_per_mol": rw,
            "delta_G_err_kcal_per_mol": err, "standard_state_correction_kcal_per_mol": -0.5,
            "n_basin_transitions": transitions, "n_hills": 60, "wall_time_s": 10.0,
            "simulated_ps": 6.0, "cv_spec": "distance:0:1", "bound_nm": [0.25, 0.6],
            "unbound_nm": [0.8, 1.0]}


def test_walkers_combine_to_their_mean_with_the_standard_error_over_walkers():
    import numpy as np

    from drug_binding.case_study import combine_walkers

    rng = np.random.default_rng(3)
    # independent walkers scattered around a true ΔG: the error bar covers it ~68 % of the time
    inside = 0
    for _ in range(400):
        dgs = rng.normal(-2.0, 0.8, 4)
        c = combine_walkers([_walker(x) for x in dgs])
        assert c["delta_G_kcal_per_mol"] == pytest.approx(dgs.mean())
        assert c["delta_G_err_kcal_per_mol"] == pytest.approx(dgs.std(ddof=1) / 2.0)
        assert c["delta_G_bind_kcal_per_mol"] == pytest.approx(dgs.mean() - 0.5)
        inside += abs(dgs.mean() + 2.0) < c["delta_G_err_kcal_per_mol"]
    # Student t with 3 dof: P(|t| < 1) = 0.609; binomial sd over 400 sets = 0.024
    assert abs(inside / 400 - 0.609) < 4 * 0.024
    one = combine_walkers([_walker(-1.0, rw=-1.2, err=0.3)])
    assert one["delta_G_err_kcal_per_mol"] == 0.3 and "block" in one["error_method"]
    none = combine_walkers([_walker(-1.0), _walker(-2.0, rw=-2.5)])
    assert none["delta_G_reweighted_kcal_per_mol"] == -2.5 and none["simulated_ps"] == 12.0


def test_case_study_report_names_a_broken_ligand():
    from drug_binding.case_study import SEED_RESULTS, report_markdown

    row = {"rank": 1, "name": "phenol", "mean_rmsd_A": 3.5, "sem_rmsd_A": 0.2,
           "residence_time_ps": 1.5, "escaped": False, "contacts": {"TRP2": 1.0}}
    s = {"scale": "tiny", "receptor": {"peptide": "TRP GLY TRP"},
         "ligands": {"phenol": "Oc1ccccc1", "benzamide": "NC(=O)c1ccccc1"},
         "labels": {}, "dataset": {"train": 10}, "model": {"metrics": {}},
         "screening": [row], "timings_s": {},
         "metad": [{"name": "phenol", "screen_rank": 1, "delta_G_kcal_per_mol": None,
                    "delta_G_err_kcal_per_mol": None, "delta_G_bind_kcal_per_mol": None,
                    "n_walkers": 0, "walker_delta_G_kcal_per_mol": [],
                    "walker_basin_transitions": [], "n_walkers_failed": 2,
                    "walker_failures": {"phenol-w0": "fell apart at step 600: O-H",
                                        "phenol-w1": "fell apart at step 900: O-H"}}],
         "screening_fell_apart": [{"name": "benzamide", "step": 700, "max_bond_A": 2.31,
                                   "message": "the ligand fell apart by step 700"}],
         "screening_failures": {}, "seed_results": SEED_RESULTS,
         "validation": {"experimental_data": None, "note": "none"}}
    text = report_markdown(s)
    assert "| 1 | phenol |" in text
    assert "| — | benzamide | **fell apart** under the tiny ANI at step 700" in text
    assert "**No ΔG for phenol: every walker stopped** (fell apart at step 600" in text
    assert "| phenol | — ± — | — | 0 × — ps (2 more stopped and left out: fell apart" in text
