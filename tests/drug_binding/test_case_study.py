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
    assert len(s["screening"]) + len(s["screening_failures"]) == 4
    ranks = [r["mean_rmsd_A"] for r in s["screening"]]
    assert ranks == sorted(ranks)
    for r in s["screening"]:  # intact ligands stay near the pocket on this time scale
        assert 0.0 < r["mean_rmsd_A"] < 15.0 and r["contacts"]
    best = s["metad"][0]
    assert best["name"] == s["screening"][0]["name"]
    mjson = json.loads((out / "metad" / best["name"] / "metad.json").read_text())
    assert mjson["delta_G_kcal_per_mol"] == best["delta_G_kcal_per_mol"]
    assert best["delta_G_bind_kcal_per_mol"] < best["delta_G_kcal_per_mol"]  # V_u > 1.66 nm3
    assert (out / "metad" / best["name"] / "HILLS").is_file()
    assert s["validation"]["experimental_data"] is None
    report = (out / "report.md").read_text()
    assert "no experimental comparison" in report and "-12.3" in report
    t0 = time.perf_counter()
    again = case_study.run("tiny", out, progress=False)
    assert time.perf_counter() - t0 < 30.0
    assert again["screening"] == s["screening"] and again["metad"] == s["metad"]
