"""Drug binding's active learning: a committee of ANI models explores each ligand's own MD,
labels its uncertain frames with GFN2-xTB through the case study's label database, continues
its members from the last round's weights, resumes from its folder, and refuses settings no
run can use with one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase.build import molecule

from common.errors import ConfigError
from common.labels import LabellerSpec, label_now
from drug_binding.active_learning import ALSettings, run_active_learning
from drug_binding.case_study import _active_learning_lines, load_case_config
from drug_binding.model import ANIAdapter, load_config

#: a few epochs per model: this tests the loop, not the fit
ANI = load_config("tiny", max_epochs=4, patience=4)
SETTINGS = {"rounds": 1, "committee_size": 2, "temperature_K": 300.0, "timestep_fs": 0.5,
            "friction_per_ps": 5.0, "steps": 20, "replicas": 2, "frame_every": 5,
            "trust_lo_eV_A": 0.0, "trust_hi_eV_A": 1000.0, "max_new": 4,
            "retrain_epochs": 2, "retrain_lr": 1e-3}


def _frames(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        a = molecule(("CH3OH", "H2O")[k % 2])
        a.rattle(float(rng.uniform(0.03, 0.1)), seed=seed * 1000 + k)
        out.append(label_now(a, "xtb"))
    return out


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    """One round of the loop from 16 labelled frames (the model of round 1 continues round 0)."""
    d = tmp_path_factory.mktemp("ani_al")
    frames = _frames(24)
    starts = [molecule("CH3OH"), molecule("H2O")]
    for a in starts:
        a.info["charge"] = 0
    kw = dict(settings=SETTINGS, ani_config=ANI, labeller=LabellerSpec("xtb"),
              db=d / "labels.db", max_force_eV_A=50.0, seed=0)
    res = run_active_learning(starts, frames[:16], frames[16:20], frames[20:], d / "al", **kw)
    return res, d, (starts, frames, kw)


def test_loop_labels_explored_frames_and_continues_members(loop):
    res, d, _ = loop
    assert res["rounds"] == 1 and len(res["history"]) == 1
    h = res["history"][0]
    # 2 ligands x 2 replicas x 20 steps / 5 = 16 measured frames (start frames included or not)
    assert 16 <= h["n_candidates"] + h["n_accurate"] + h["n_failed"] <= 20
    assert h["n_selected"] == 4 and h["n_labelled"] == 4
    assert res["n_train"] == 16 + 4
    assert len(res["members"]) == 2
    for k, m in enumerate(res["members"]):
        assert m.meta["continued_from"].endswith(f"round_000/model/member_{k}")
        assert m.meta["n_train"] == 20
    # the labelled frames carry GFN2-xTB labels of the explored geometries
    import ase.io

    lab = ase.io.read(d / "al" / "round_000" / "labelled.extxyz", ":")
    assert len(lab) == 4
    again = label_now(lab[0].copy(), "xtb")
    assert np.allclose(lab[0].get_forces(), again.get_forces(), atol=1e-6)


def test_loop_resumes_without_retraining(loop):
    res, d, (starts, frames, kw) = loop
    model_file = d / "al" / "round_001" / "model" / "member_0" / "ani_state_dict.pt"
    before = model_file.stat().st_mtime_ns
    again = run_active_learning(starts, frames[:16], frames[16:20], frames[20:], d / "al", **kw)
    assert model_file.stat().st_mtime_ns == before
    assert again["n_train"] == res["n_train"] and again["history"] == res["history"]


def test_continuing_needs_the_same_elements(loop, tmp_path):
    _, d, (_, frames, _) = loop
    member = d / "al" / "round_000" / "model" / "member_0"
    water = [f for f in _frames(6, seed=3) if f.get_chemical_formula() == "H2O"]
    with pytest.raises(ConfigError, match="training data has"):
        ANIAdapter.train(water, water, tmp_path / "m", config=ANI, init_from=member)
    cont = ANIAdapter.train(frames[:8], frames[8:10], tmp_path / "c", config=ANI,
                            init_from=member)
    assert cont.meta["self_energies_Ha"] == ANIAdapter.load(member).meta["self_energies_Ha"]


@pytest.mark.parametrize("change, match", [
    ({"committee_size": 1}, "at least 2 models"),
    ({"trust_lo_eV_A": 1.0, "trust_hi_eV_A": 0.5}, "trust_lo_eV_A < trust_hi_eV_A"),
    ({"frame_every": 50}, "longer than the run"),
    ({"timestep_fs": 0.0}, "timestep_fs must be > 0"),
    ({"retrain_epochs": 0}, "retrain_epochs"),
    ({"rounds": -1}, "rounds must be >= 0"),
])
def test_bad_settings_are_one_line_errors(change, match):
    with pytest.raises(ConfigError, match=match):
        ALSettings.from_dict({**SETTINGS, **change}).check()


def test_case_config_checks_its_active_learning_section(tmp_path):
    from drug_binding.case_study import CONFIGS

    cfg = json.loads((CONFIGS / "case_tiny.json").read_text())
    cfg["active_learning"] = {**SETTINGS, "committee_size": 1}
    p = tmp_path / "case.json"
    p.write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match="at least 2 models"):
        load_case_config(p)
    cfg["active_learning"] = {**SETTINGS, "steps_per_round": 3}
    p.write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match="steps_per_round"):
        load_case_config(p)


def test_report_says_whether_the_loop_converged():
    h = {"round": 0, "n_train": 150, "accurate_fraction": 0.42, "n_failed": 3,
         "n_labelled": 60}
    al = {"history": [h], "rounds": 1, "n_train": 210, "stopped": "1 rounds done",
          "converged": False}
    text = " ".join(_active_learning_lines(al))
    assert "round 0: 150 training frames, 42% of the explored frames accurate" in text
    assert "did **not** converge" in text
    assert "converged" in " ".join(_active_learning_lines({**al, "converged": True}))
    assert _active_learning_lines(None) == []


def test_members_trained_side_by_side_equal_members_trained_one_by_one(tmp_path):
    """train_committee(parallel=2): each member in its own process, the same weights."""
    from common.data import Dataset
    from common.potential.committee import train_committee

    frames = _frames(12, seed=3)
    train, valid = Dataset.from_frames(frames[:9]), Dataset.from_frames(frames[9:])
    cfg = load_config("tiny", max_epochs=3, patience=3)
    _, one = train_committee(ANIAdapter, train, valid, tmp_path / "one", 2, config=cfg, seed=4)
    _, two = train_committee(ANIAdapter, train, valid, tmp_path / "two", 2, config=cfg, seed=4,
                             parallel=2)
    def energy_forces(model):
        a = frames[0].copy()
        a.calc = model.calculator()
        return a.get_potential_energy(), a.get_forces()

    for a, b in zip(one, two, strict=True):
        (ea, fa), (eb, fb) = energy_forces(a), energy_forces(b)
        assert ea == pytest.approx(eb, abs=1e-9)
        np.testing.assert_allclose(fa, fb, atol=1e-9)
    meta = json.loads((tmp_path / "two" / "mlp-cases-model.json").read_text())
    assert meta["members"] == ["member_0", "member_1"]
    assert energy_forces(one[0])[0] != pytest.approx(energy_forces(one[1])[0], abs=1e-9)
