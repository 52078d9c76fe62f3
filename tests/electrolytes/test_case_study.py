"""The electrolytes case study: configs checked against their schema (fast) and the tiny run
end to end with real GFN1-xTB labels, then resumed (slow)."""

from __future__ import annotations

import json
import time

import pytest

from common.errors import ConfigError
from electrolytes import case_study


def test_configs_hold_the_seeds_settings():
    paper = case_study.load_case_config("paper")
    assert paper["active_learning"]["iterations"] == 10
    assert paper["active_learning"]["committee_size"] == 4
    assert paper["cells"]["n_cells"] * (paper["cells"]["n_rattled"] + 1) == 15000
    assert 500 <= paper["cells"]["n_atoms"] <= 1000
    s = paper["screen"]
    n_comp = len(s["ratios"]) * len(s["salt_M"]) * len(s["additive_wt_pct"])
    assert n_comp * len(s["temperatures_K"]) == 992
    assert s["steps"] * s["timestep_fs"] == 1e8  # 100 ns per condition
    tiny = case_study.load_case_config("tiny")
    assert tiny["active_learning"]["committee_size"] == 2
    assert len(tiny["screen"]["temperatures_K"]) == 3


def test_small_scale_trains_longer_and_larger_than_tiny():
    """The small scale (the one whose model holds bonds) differs from tiny only where measured:
    the DeePMD nets and steps, the retraining steps and the production length."""
    from electrolytes.model import load_config

    tiny, small = case_study.load_case_config("tiny"), case_study.load_case_config("small")
    assert small["scale"] == "small" and small["cells"] == tiny["cells"]
    dt, ds = load_config(tiny["deepmd"], **tiny["deepmd_overrides"]), load_config(small["deepmd"])
    assert ds["numb_steps"] >= 20 * dt["numb_steps"]
    assert ds["fitting_neuron"] > dt["fitting_neuron"] and ds["neuron"] > dt["neuron"]
    assert ds["zbl"] and ds["descriptor"] == dt["descriptor"]
    assert small["screen"]["steps"] > tiny["screen"]["steps"]


def _summary(scale: str) -> dict:
    return {"scale": scale, "model": {"config": {"numb_steps": 20000}}, "simulated_ps": 6.0,
            "production": {"n_conditions": 3}}


@pytest.mark.parametrize("kept, says", [
    ([1.0, 1.0, 1.0], "keeps every covalent bond"),
    ([1.0, 0.98, 1.0], "fall apart or fuse"),
    ([1.0, None, 1.0], "fall apart or fuse"),  # a failed run cannot vouch for its bonds
])
def test_report_says_whether_the_model_held_the_liquid(kept, says):
    rows = [{"bonds_kept_final": k} for k in kept]
    text = case_study._scale_text(_summary("small"), rows)
    assert says in text and "small run" in text and "20,000 steps" in text
    assert "2 ps of MD per condition" in text
    assert "seed's settings" in case_study._scale_text(_summary("paper"), rows)


def test_a_config_with_an_unknown_key_is_refused(tmp_path):
    cfg = json.loads((case_study.CONFIGS / "case_tiny.json").read_text())
    cfg["active_learning"]["trust"] = 1.0
    p = tmp_path / "mine.json"
    p.write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match="trust"):
        case_study.load_case_config(p)


@pytest.mark.slow
def test_tiny_case_study_runs_and_resumes(tmp_path):
    """The tiny study end to end: real labels, a trained committee, at least one
    active-learning iteration recorded, MD at three temperatures, transport with an Arrhenius
    fit, a Li+ shell, the report beside the seed's numbers; a rerun resumes in < 30 s with
    the same numbers and no new label."""
    from common.labels import LabelDB

    out = tmp_path / "tiny"
    t0 = time.perf_counter()
    s = case_study.run("tiny", out, progress=False)
    first_s = time.perf_counter() - t0
    for name in ("summary.json", "report.md", "transport.json", "start_structures.extxyz",
                 "active_learning/active_learning.png", "production/screen.csv",
                 "production/arrhenius_sigma.png", "production/sigma_vs_composition.png",
                 "figures/rdf_li.png"):
        assert (out / name).stat().st_size > 0, name
    assert s["labels"]["n_failed"] == 0 and s["dataset"]["n_initial"] >= 15
    hist = s["active_learning"]["history"]
    assert len(hist) >= 1 and hist[0]["n_accurate"] + hist[0]["n_candidates"] + \
        hist[0]["n_failed"] > 0
    assert s["dataset"]["n_train_final"] == s["dataset"]["n_train_initial"] + sum(
        h["n_labelled"] or 0 for h in hist[:s["active_learning"]["iterations"]])
    rows = s["analysis"]["rows"]
    assert [r["temperature_K"] for r in rows] == [273.15, 313.15, 353.15]
    rep = s["analysis"]["transport"]
    assert len(rep["runs"]) == 3 and "arrhenius" in rep
    assert set(rep["runs"][0]["species"]) >= {"Li", "P"}
    assert s["analysis"]["solvation"]["compositions"]  # a Li+ shell name such as Li+(EC)..
    text = (out / "report.md").read_text()
    assert "0.25 ± 0.02" in text and "Li+(EC)3(DEC)1" in text and "tiny run" in text
    assert "bonds kept" in text and all(0.0 <= r["bonds_kept_final"] <= 1.0 for r in rows)
    n_labels = len(LabelDB(out / "labels.db").done_keys())

    t0 = time.perf_counter()
    again = case_study.run("tiny", out, progress=False)
    rerun_s = time.perf_counter() - t0
    assert rerun_s < 30, (rerun_s, first_s)
    assert len(LabelDB(out / "labels.db").done_keys()) == n_labels
    assert again["analysis"]["rows"] == rows
    assert again["active_learning"] == s["active_learning"]
