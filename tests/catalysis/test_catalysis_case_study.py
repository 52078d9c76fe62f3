"""The catalysis case study end to end at a reduced scale (slow: real GFN1-xTB labels,
SchNet training, batched MD, events and NEB)."""

from __future__ import annotations

import json

import pytest

from catalysis import case_study


@pytest.mark.slow
def test_case_study_runs_end_to_end(tmp_path):
    cfg = case_study.load_case_config("tiny")
    cfg.update({"n_rattled": 16, "schnet_overrides": {"max_epochs": 4, "patience": 4},
                "al_md_steps": 40, "al_max_new_frames": 4, "committee_size": 2})
    cfg["md"].update({"trajectories": 3, "steps": 100})
    cfg["thermalize"] = {"steps": 60, "friction_per_ps": 20.0}
    cfg["barriers"].update({"max_events": 1, "steps": 20})
    path = tmp_path / "case.json"
    path.write_text(json.dumps(cfg))
    s = case_study.run(path, tmp_path / "out", progress=False)
    out = tmp_path / "out"
    for f in ("summary.json", "report.md", "events.json", "barriers.json",
              "start_structures.extxyz", "labels.db"):
        assert (out / f).exists(), f
    assert s["labels"]["n_failed"] == 0
    assert s["md"]["replicas"] == 3 and s["md"]["steps"] == 100
    assert set(s["events"]["pathways"]) == {"A", "B", "C", "other"}
    assert s["model"]["metrics"]["test"]["force_mae_eV_A"] > 0
    report = (out / "report.md").read_text()
    assert "| C–C coupling events |" in report
    assert s["thermalize"]["steps"] == 60 and s["thermalize"]["mean_temperature_K"] > 0
    assert "| production temperature held |" in report and "after thermalising" in report
    stop = s["active_learning_stop"]
    assert stop["accurate_fraction_threshold"] == 0.9 and stop["stopped"]
    assert 0.0 <= stop["last_accurate_fraction"] <= 1.0
    assert "Active learning: " in report
