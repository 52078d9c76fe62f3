"""catalysis.fidelity: the comparison of two event sets on synthetic events with known rates,
and the configs."""

import numpy as np
import pytest

from catalysis.fidelity import compare_event_sets, load_fidelity_config, summary_lines


def _analysis(rng, rate_per_ps, n_traj, length_ps, name):
    """Events of one reaction type, Poisson in each trajectory (EventAnalysis.to_dict form)."""
    events = []
    for k in range(n_traj):
        n = rng.poisson(rate_per_ps * length_ps)
        for t in np.sort(rng.uniform(0, length_ps, n)):
            events.append({"time_ps": float(t), "trajectory": f"{name}{k}",
                           "reactants": ["*CO"], "products": ["*C", "*O"]})
    return {"events": events, "lifetimes": {}}


@pytest.mark.parametrize("mlp_rate,agrees_mostly", [(2.0, True), (6.0, False)])
def test_compare_detects_a_wrong_rate_and_accepts_a_right_one(mlp_rate, agrees_mostly):
    """Reference rate 2 /ps per trajectory, 40 + 40 trajectories of 0.4 ps. Equal rates:
    'agrees' in most of 200 synthetic pairs (the two tests each reject ~5 %); a 3x faster MLP:
    'agrees' almost never."""
    rng = np.random.default_rng(5)
    agree = 0
    for _ in range(200):
        ref = _analysis(rng, 2.0, 40, 0.4, "r")
        mlp = _analysis(rng, mlp_rate, 40, 0.4, "m")
        out = compare_event_sets(ref, mlp, n_reference=40, n_mlp=40, length_ps=0.4)
        agree += out["agrees"]
    if agrees_mostly:
        assert agree / 200 > 0.85
    else:
        assert agree / 200 < 0.02
    r = out["rates"]["*CO → *C + *O"]
    assert r["reference_per_ps"] == pytest.approx(r["n_reference"] / 16.0)
    assert set(out) >= {"rates", "logrank_p", "agrees", "n_reference_trajectories",
                        "n_mlp_trajectories"}
    assert any("reference" in line for line in summary_lines({"scale": "emt", **out}))


def test_no_events_at_all_does_not_claim_agreement():
    out = compare_event_sets({"events": []}, {"events": []}, n_reference=5, n_mlp=5,
                             length_ps=1.0)
    assert out["rates"] == {} and out["agrees"] is False


@pytest.mark.parametrize("scale", ["emt", "xtb"])
def test_fidelity_configs_load(scale):
    cfg = load_fidelity_config(scale)
    assert cfg["scale"] == scale and cfg["n_reference"] > 0 and cfg["n_mlp"] > 0


def test_reference_trajectory_frames_are_evenly_spaced_in_time(tmp_path):
    """One frame every ``frame_every`` steps from the start, each time once (a repeated start
    frame made the event analysis refuse the file)."""
    import ase.io
    import numpy as np
    from ase.build import fcc111

    from catalysis.fidelity import reference_trajectory

    start = tmp_path / "start.extxyz"
    ase.io.write(start, fcc111("Cu", size=(2, 2, 2), vacuum=6.0))
    out = tmp_path / "traj.extxyz"
    info = reference_trajectory(str(start), {"name": "emt"}, str(out), temperature_K=300.0,
                                friction_per_ps=5.0, timestep_fs=1.0, steps=20, frame_every=5,
                                seed=0)
    times = [a.info["time_fs"] for a in ase.io.read(out, ":")]
    assert info["n_frames"] == 5
    np.testing.assert_allclose(times, [0.0, 5.0, 10.0, 15.0, 20.0])
    # the same file as training data: one frame every 10 steps, the shared start left out
    from catalysis.fidelity import reference_md_frames

    frames = reference_md_frames([str(out), str(out)], 10, 1.0)
    assert len(frames) == 4 and all(a.info == {} for a in frames)
    assert len(reference_md_frames([str(out)], 0, 1.0)) == 4  # 0: every saved frame


@pytest.mark.parametrize("key,value", [("energy_window_eV", 0.0), ("max_force_eV_A", -1.0)])
def test_bad_initial_data_limits_are_one_line_config_errors(tmp_path, key, value):
    import json

    from common.errors import ConfigError

    cfg = load_fidelity_config("emt")
    cfg[key] = value
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match=key):
        load_fidelity_config(path)


def test_a_reduced_emt_fidelity_run_end_to_end(tmp_path):
    """The whole check at a sub-minute scale: direct EMT MD, the pipeline's own active learning,
    batched MLP MD, events by the same code; an energy window and the force limit drop strongly
    rattled initial frames (counted), and the contract keys are there."""
    import json

    from catalysis.fidelity import run_fidelity

    cfg = load_fidelity_config("emt")
    cfg.update(n_reference=3, n_mlp=4, steps=60, n_rattled=24, rattle_A=[0.03, 0.35],
               n_reference_training=1, training_frame_every=10, active_learning_rounds=1,
               al_md_steps=40, schnet_overrides={"max_epochs": 3, "patience": 3,
                                                 "batch_size": 8},
               energy_window_eV=3.0, max_force_eV_A=20.0)
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(cfg))
    res = run_fidelity(path, tmp_path / "out", progress=False, cluster="serial")
    assert res["n_reference_trajectories"] == 3 and res["n_mlp_trajectories"] >= 1
    assert {"rates", "logrank_p", "agrees"} <= set(res)
    init = res["initial_data"]
    assert init["n_sampled"] > 24  # rattled copies and frames of the training trajectory
    assert init["n_dropped_large_force"] + init["n_dropped_energy_window"] > 0
    assert init["n_kept"] == init["n_sampled"] - init["n_dropped_large_force"] \
        - init["n_dropped_energy_window"]
    saved = json.loads((tmp_path / "out" / "fidelity.json").read_text())
    assert saved["initial_data"] == init
