"""The seed's facts come from catalysis.seed, and the report, the configs and the docs agree
with it (issue: "180 ps" is the *OCCHO lifetime, not the simulated time)."""

from pathlib import Path

import pytest

from catalysis.case_study import load_case_config, production_system, report_markdown
from catalysis.seed import SEED_RESULTS

ROOT = Path(__file__).resolve().parents[2]


def _summary(lifetimes):
    return {
        "scale": "tiny", "labeller": "xtb", "seed_results": SEED_RESULTS,
        "model": {"committee_size": 2, "metrics": {"test": {}}},
        "md": {"n_finished": 10, "replicas": 10}, "simulated_ps": 2.5,
        "events": {"n_events": 30, "n_coupling_events": 0, "pathways": {},
                   "lifetimes": lifetimes, "network": []},
        "barriers": {"mean_eV": None, "std_eV": None, "n": 0}, "timings_s": {},
    }


def test_report_states_the_seed_as_the_seed_does():
    occho = {"n": 3, "mean_ps": 0.12, "ci95_ps": [0.05, 0.2]}
    text = report_markdown(_summary({"*OCCHO": occho}))
    assert "| simulated time | 2.5 ps | 10 µs (10 × 1 µs) |" in text
    assert "| reaction events | 30 | 127 |" in text
    assert "| *OCCHO mean lifetime | 0.120 ps [0.050, 0.200] (n = 3) | 180 ps |" in text
    assert "electrode-potential model is not modelled" in text
    assert "180 ps of MD" not in text
    text = report_markdown(_summary({}))
    assert "| *OCCHO mean lifetime | not observed | 180 ps |" in text


def test_paper_config_runs_the_seeds_md_and_medium_is_not_called_paper():
    paper = load_case_config("paper")
    md = paper["md"]
    total_us = md["trajectories"] * md["steps"] * md["timestep_fs"] * 1e-9
    assert total_us == pytest.approx(SEED_RESULTS["simulated_us"])
    assert md["trajectories"] == SEED_RESULTS["n_trajectories"]
    assert (md["temperature_K"], md["friction_per_ps"]) == (SEED_RESULTS["temperature_K"],
                                                            SEED_RESULTS["friction_per_ps"])
    system = production_system(paper["production_system"])
    symbols = system.get_chemical_symbols()
    want = SEED_RESULTS["md_system"]
    assert symbols.count("Cu") == want["n_cu"]
    assert symbols.count("H") == 2 * want["n_water"]
    assert symbols.count("C") == 1 and symbols.count("O") == want["n_water"] + 2
    medium = load_case_config("medium")
    assert medium["scale"] == "medium" and medium["md"]["steps"] < md["steps"]


def test_the_docs_take_the_seed_numbers_as_stated():
    text = " ".join((ROOT / "docs/pipelines/catalysis.md").read_text().split())
    for wrong in ("127 events in 180 ps", "127 couplings in 180 ps", "180 ps of MD"):
        assert wrong not in text
    s = SEED_RESULTS
    assert f"{s['n_reaction_events']} reaction events in {s['simulated_us']:g} µs" in text
    assert f"*OCCHO with a mean lifetime of {s['lifetime_ps']['*OCCHO']:g} ps" in text
    assert f"{s['barrier_mean_eV']:.2f} ± {s['barrier_std_eV']:.2f} eV" in text


def test_estimate_projects_the_measured_step_time(tmp_path):
    import json

    from catalysis.case_study import estimate_md_wall_time

    cfg = load_case_config("tiny")
    cfg["md"]["trajectories"], cfg["committee_size"] = 2, 2
    path = tmp_path / "case.json"
    path.write_text(json.dumps(cfg))
    est = estimate_md_wall_time(path, steps=2)
    assert est["n_trajectories"] == 2 and est["committee_size"] == 2
    assert est["seconds_per_step_all_trajectories"] > 0
    assert est["projected_wall_time_h"] == pytest.approx(
        est["seconds_per_step_all_trajectories"] * cfg["md"]["steps"] / 3600.0)
    assert est["seed_gpu_wall_time_h"] == pytest.approx(360.0)
    assert "not modelled" in est["note"]


def test_report_says_the_temperature_held_and_how_active_learning_ended():
    s = _summary({})
    s["md"].update({"mean_temperature_K": 306.4, "temperature_std_between_replicas_K": 12.0})
    s["thermalize"] = {"steps": 300, "friction_per_ps": 20.0, "mean_temperature_K": 297.0}
    s["active_learning_stop"] = {"stopped": "1 rounds done", "converged": False,
                                 "accurate_fraction_threshold": 0.9,
                                 "last_accurate_fraction": 0.41}
    text = report_markdown(s)
    assert ("| production temperature held | 306 K (± 12 K between trajectories), after "
            "thermalising at 297 K (300 steps at 20 ps⁻¹) | 300 K (target) |") in text
    assert "last exploration 0.41 accurate" in text
    assert "did not reach the threshold 0.9" in text
    s["active_learning_stop"].update({"converged": True, "last_accurate_fraction": 0.95})
    assert "converged (threshold 0.9)" in report_markdown(s)
