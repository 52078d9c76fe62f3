"""The tiny case study end to end (slow): OH + propene on GFN2-xTB labels -> NequIP -> QCT at
two temperatures with branching -> Arrhenius -> KPP; outputs, physics sanity, and resume."""

from __future__ import annotations

import json
import math
import time

import pytest

from atmospheric import case_study


@pytest.mark.slow
def test_tiny_case_study_runs_and_resumes(tmp_path):
    out = tmp_path / "tiny"
    s = case_study.run("tiny", out)
    for name in ("summary.json", "report.md", "reactants/channels.json", "data/labelled.extxyz",
                 "model/mlp-cases-model.json", "qct_250K/qct.json", "qct_400K/qct.json"):
        assert (out / name).exists(), name
    assert s["channels"] == ["add_C1", "add_C2", "abstraction"]
    assert s["labels"]["n_failed"] == 0  # electronic temperature 1000 K: every SCF converges
    for r in s["qct"]:
        assert r["n_trajectories"] == 24 and 0 <= r["n_reactive"] <= 24
        # a capture rate cannot exceed the geometric one: <v_rel> pi b_max^2
        assert 0 <= r["rate_cm3_per_molecule_s"] <= 1e-8
        assert math.isclose(sum(c["n"] for c in r["channels"].values()), r["n_reactive"])
    report = (out / "report.md").read_text()
    assert "1.3e-10" in report and "0.15 e" in report and "1000 K" in report
    if s["kinetics_error"] is None:
        assert (out / "kinetics" / "mechanism.kpp").read_text().count("EXP(") >= 1
    t0 = time.perf_counter()
    again = case_study.run("tiny", out)
    assert time.perf_counter() - t0 < 30
    assert again["qct"] == json.loads((out / "summary.json").read_text())["qct"] == s["qct"]
