"""The tiny case study end to end (slow): OH + propene on GFN2-xTB labels (incl. short GFN2
trajectories) -> NequIP -> QCT at three temperatures (classical internal states) with
energy conservation checked per trajectory and channel branching (allylic and vinylic
abstraction named) -> Arrhenius -> KPP; outputs, physics sanity, and resume."""

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
    temps = (250, 298, 400)
    for name in ("summary.json", "report.md", "reactants/channels.json", "data/labelled.extxyz",
                 "data/sample_report.json", "model/mlp-cases-model.json",
                 *(f"qct_{t}K/qct.json" for t in temps)):
        assert (out / name).exists(), name
    assert s["channels"] == ["add_C1", "add_C2", "abstraction", "abstraction_vinylic"]
    assert s["labels"]["n_failed"] == 0  # electronic temperature 1000 K: every SCF converges
    # the GFN2 trajectories that feed the training set reach named channels
    outcomes = s["labels"]["sampling"]["reactive"]["outcomes"]
    assert sum(outcomes.get(c, 0) for c in s["channels"]) >= 6, outcomes
    assert s["model"]["metrics"]["test"]["force_mae_eV_A"] < 0.4
    for r, t in zip(s["qct"], temps, strict=True):
        assert r["temperature_K"] == t and r["n_trajectories"] == 48
        assert r["n_used"] == 48 - r["n_nonconserving"] - r["n_failed"]
        # counted trajectories conserve energy within the tolerance; few are left out
        assert r["max_abs_energy_error_eV"] <= r["energy_tolerance_eV"] == 0.1
        assert r["n_nonconserving"] <= 0.1 * 48
        assert r["b_max_converged_by"] == "geometric bound"
        # a capture rate cannot exceed the geometric one: <v_rel> pi b_max^2
        v = r["mean_relative_speed_m_per_s"] * 100
        assert 0 < r["rate_cm3_per_molecule_s"] <= v * math.pi * (r["b_max_A"] * 1e-8) ** 2
        assert math.isclose(sum(c["n"] for c in r["channels"].values()), r["n_reactive"])
        # reactions are the named channels (addition or abstraction), not fragmentation
        named = sum(r["channels"][c]["n"] for c in s["channels"])
        assert named >= r["n_reactive"] - max(1, 0.2 * r["n_reactive"]), r["channels"]
        # every reaction has a kind; new channels giving H2O (vinylic H) count as abstraction
        br = r["branching"]
        assert sum(b["n"] for b in br.values()) == r["n_reactive"]
        assert br["addition"]["n"] + br["abstraction"]["n"] >= named
        # classical internal states at this scale (the report says why not quasi-classical)
        assert r["internal"] == "mb" and r["internal_states"] == {}
        assert "abstraction_vinylic" in r["channels"]
    assert s["kinetics_error"] is None
    assert s["arrhenius"]["Ea_err_kcal_per_mol"] is not None
    kpp = (out / "kinetics" / "mechanism.kpp").read_text()
    assert kpp.count("EXP(") >= 1 and "OH + C3H6" in kpp
    report = (out / "report.md").read_text()
    assert "1.3e-10" in report and "0.15 e" in report and "1000 K" in report
    assert "left out" in report and "cannot" in report
    assert "Internal states: mb" in report and "qc-thermal" in report
    t0 = time.perf_counter()
    again = case_study.run("tiny", out)
    assert time.perf_counter() - t0 < 30
    assert again["qct"] == json.loads((out / "summary.json").read_text())["qct"] == s["qct"]
