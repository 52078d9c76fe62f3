"""mlp-catalysis commands on real files, and their one-line errors."""

from __future__ import annotations

import json

import ase.io

from catalysis.cli import app
from common.cli.app import run_app


def _run(args, capsys):
    code = run_app(app, [str(a) for a in args])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_build_and_sample(tmp_path, capsys):
    slab = tmp_path / "slab.extxyz"
    code, out, err = _run(["build", "--out", slab, "--size", "3,3,3", "--fixed-layers", "1",
                           "--adsorbate", "CO:2", "--seed", "1"], capsys)
    assert code == 0, err
    atoms = ase.io.read(slab)
    assert len(atoms) == 27 + 4
    samples = tmp_path / "samples.extxyz"
    code, out, err = _run(["sample", slab, "--out", samples, "--n", "5"], capsys)
    assert code == 0, err
    assert len(ase.io.read(samples, ":")) == 5


def test_build_bad_inputs_give_one_line_errors(tmp_path, capsys):
    for args in (["build", "--out", tmp_path / "x.extxyz", "--size", "3,3"],
                 ["build", "--out", tmp_path / "x.extxyz", "--adsorbate", "CO:two"],
                 ["build", "--out", tmp_path / "x.extxyz", "--adsorbate", "XeF6"]):
        code, out, err = _run(args, capsys)
        assert code == 2, (args, err)
        lines = [ln for ln in err.strip().splitlines() if ln]
        assert len(lines) == 1 and lines[0].startswith("error:"), err
        assert "Traceback" not in err


def test_barriers_refuses_a_file_that_is_not_events_json(tmp_path, capsys):
    bad = tmp_path / "events.json"
    bad.write_text(json.dumps({"nothing": 1}))
    code, out, err = _run(["barriers", bad, "--model", tmp_path], capsys)
    assert code == 2 and err.startswith("error:")


def test_case_study_refuses_unknown_scale(tmp_path, capsys):
    code, out, err = _run(["case-study", "--scale", "huge", "--out", tmp_path / "cs"], capsys)
    assert code == 2 and "tiny" in err


def test_md_takes_the_shared_flags(tmp_path, capsys):
    """--replicas and --traj-every as in mlp-cases md (the old --trajectories and
    --frame-every are gone), with --on-blowup, on a saved model folder."""
    from ase.build import bulk

    from common.potential.analytic import AnalyticAdapter

    model = AnalyticAdapter("morse", {"epsilon": 0.3429, "rho0": 3.894, "r0": 2.866}).save(
        tmp_path / "model")
    ase.io.write(tmp_path / "cu.extxyz", bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2))
    code, out, err = _run(["md", tmp_path / "cu.extxyz", "--model", model, "--replicas", "2",
                           "--steps", "20", "--traj-every", "5", "--on-blowup", "stop-system",
                           "--out", tmp_path / "run", "--json"], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["replicas"] == 2 and summary["steps"] == 20
    for traj in summary["trajectories"]:
        assert [f.info["step"] for f in ase.io.read(traj, ":")][-1] == 20
    for old in (["--trajectories", "2"], ["--frame-every", "5"]):
        code, out, err = _run(["md", tmp_path / "cu.extxyz", "--model", model, "--out",
                               tmp_path / "run2", *old], capsys)
        assert code == 2 and "No such option" in err and out == ""
