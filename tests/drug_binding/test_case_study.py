"""The tiny drug-binding case study end to end (slow), then its resume."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from drug_binding.case_study import load_case_config

pytest.importorskip("rdkit")
pytest.importorskip("openmmml")


def test_configs_load_and_name_their_keys():
    from drug_binding.case_study import _stamped

    tiny, paper = load_case_config("tiny"), load_case_config("paper")
    toy = load_case_config("toy")
    assert toy["experimental"] is None and paper["metad"]["steps"] == 1_000_000_000
    assert set(tiny) == set(paper) | ({"ani_overrides"} - set(paper)) == set(toy)
    # unset optional keys stay out of the run folder's stamp: older folders still resume
    stamp = _stamped(toy)
    assert "solvent" not in stamp and "funnel" not in stamp["metad"]
    assert "active_learning" not in stamp
    assert toy["solvent"] is None and toy["metad"]["funnel"] is None
    assert _stamped(tiny)["solvent"] == "obc2" and tiny["active_learning"]["rounds"] == 2


def test_tiny_is_a_host_guest_set_with_a_measured_affinity_for_every_guest(tmp_path):
    import csv

    from drug_binding.case_study import DATA, _validate, data_file, ligand_inputs

    tiny = load_case_config("tiny")
    assert tiny["receptor"] == {"host": "cd_set1/host-acd.mol2"} and tiny["pocket_residue"] == 1
    picked = ligand_inputs(tiny)
    assert len(picked) == 3 and tiny["metad"]["n_best"] == 3  # every guest gets a ΔG
    for spec in picked.values():  # shipped poses, found in the package's data folder
        assert Path(spec["sdf"]).is_file() and Path(spec["sdf"]).parent == DATA / "cd_set1"
    table = data_file(tiny["experimental"]["table"], "experimental.table")
    with open(table) as fh:
        exp = {r["name"]: float(r["dG_exp_kcal_per_mol"]) for r in csv.DictReader(fh)}
    assert set(picked) <= set(exp)
    assert max(exp[n] for n in picked) - min(exp[n] for n in picked) > 2.5  # a real spread
    # the validation joins the shipped table by guest name
    metad = [{"name": n, "delta_G_bind_kcal_per_mol": exp[n] + d}
             for n, d in zip(picked, (0.5, -0.3, 0.2), strict=True)]
    v = _validate(tiny, tmp_path, metad)
    assert v["n"] == 3 and v["rmse_kcal_per_mol"] == pytest.approx(
        ((0.25 + 0.09 + 0.04) / 3) ** 0.5)
    assert "Rekharsky" in v["experimental_data"]["source"]


def test_ligand_files_and_data_paths_are_checked(tmp_path):
    from common.errors import ConfigError, DataError
    from drug_binding.case_study import _prepare, data_file, ligand_inputs

    pose = tmp_path / "g.mol2"
    pose.write_text("x")
    assert ligand_inputs({"ligands": {"g": {"file": str(pose)}}}) == {
        "g": {"sdf": str(pose), "record": None}}
    with pytest.raises(DataError, match="not found"):
        ligand_inputs({"ligands": {"g": {"file": "no/such.mol2"}}})
    with pytest.raises(ConfigError, match="not a SMILES"):
        ligand_inputs({"ligands": {"g": {"file": 5}}})
    with pytest.raises(DataError, match="not found"):
        data_file("cd_set1/nothing.csv", "experimental.table")
    cfg = {**load_case_config("tiny"), "ligands": {"benzene": "c1ccccc1"}}
    with pytest.raises(ConfigError, match="SMILES guest with a host"):
        _prepare(cfg, tmp_path / "run", seed=0)


def _benchmark_or_skip():
    from common.errors import EnvironmentProblem
    from drug_binding.validation import benchmark_set

    try:
        return benchmark_set("mcl1")
    except EnvironmentProblem:
        pytest.skip("openmmforcefields (with its perses_jacs_systems data) is not installed")


def test_jacs_configs_take_benchmark_ligands_with_their_poses_and_a_funnel():
    from drug_binding.case_study import _receptor_file, ligand_inputs

    rows = _benchmark_or_skip()
    full, short = load_case_config("jacs"), load_case_config("jacs_short")
    for cfg in (full, short):
        assert cfg["experimental"] == {"benchmark": "mcl1"} and cfg["solvent"] == "obc2"
        assert cfg["metad"]["funnel"]["radius_nm"] == 0.2
        assert _receptor_file(cfg).name == "MCL1_protein.pdb" and _receptor_file(cfg).is_file()
        # the same run except for its size
        assert {k: v for k, v in cfg["metad"].items() if k in ("bound_nm", "unbound_nm",
                                                                "funnel")} == {
            k: full["metad"][k] for k in ("bound_nm", "unbound_nm", "funnel")}
    # the reduced run refines its model by active learning (measured: without it, 2 of the 3
    # ligands fell apart)
    assert short["active_learning"]["committee_size"] >= 2
    assert short["active_learning"]["rounds"] >= 1
    picked = ligand_inputs(short)
    assert len(picked) == 3 and all(v["sdf"].endswith(".sdf") for v in picked.values())
    dg = {r["name"]: r["dG_exp_kcal_per_mol"] for r in rows}
    got = sorted(dg[n] for n in picked)  # spread: the set's weakest, middle and strongest
    assert got[0] == min(dg.values()) and got[-1] == max(dg.values())
    assert len(ligand_inputs(full)) == 8 and set(picked) <= set(dg)


@pytest.mark.parametrize("ligands, needle", [
    ({"benchmark": "mcl1", "subset": ["no_such"]}, "not in benchmark set"),
    ({"benchmark": "mcl1", "n": 0}, "ligands.n"),
    ({"benchmark": "mcl1", "n": 2, "subset": ["26"]}, "either"),
    ({"benchmark": "mcl1", "pose": "x"}, "ligands entry"),
    ({"benzene": 5}, "not a SMILES"),
])
def test_bad_ligand_entries_are_one_line_errors(ligands, needle):
    from common.errors import ConfigError
    from drug_binding.case_study import ligand_inputs

    if "benchmark" in ligands and "subset" in ligands and "n" not in ligands:
        _benchmark_or_skip()
    with pytest.raises(ConfigError, match=needle):
        ligand_inputs({"ligands": ligands})


@pytest.mark.slow
def test_tiny_case_study_runs_and_resumes(tmp_path):
    from drug_binding import case_study

    out = tmp_path / "tiny"
    s = case_study.run("tiny", out, progress=False)
    for name in ("summary.json", "report.md", "screening.png", "screening/screening.json"):
        assert (out / name).is_file(), name
    broken = s["screening_fell_apart"]
    assert len(s["screening"]) + len(broken) + len(s["screening_failures"]) == 3
    report = (out / "report.md").read_text()
    for r in broken:  # reported as such, not ranked
        assert r["name"] not in [x["name"] for x in s["screening"]]
        assert f"| {r['name']} | **fell apart**" in report
    ranks = [r["mean_rmsd_A"] for r in s["screening"]]
    assert ranks == sorted(ranks)
    for r in s["screening"]:  # a threaded guest stays in the cavity for 1.5 ps
        assert 0.0 < r["mean_rmsd_A"] < 6.0 and r["contacts"] == {"HST1": 1.0}
    n = load_case_config("tiny")["metad"]["walkers"]
    assert [m["name"] for m in s["metad"]] == [r["name"] for r in s["screening"]]
    for m in s["metad"]:
        assert m["n_walkers"] + m["n_walkers_failed"] == n
        if not m["n_walkers"]:
            continue
        mjson = json.loads((out / "metad" / m["name"] / "metad.json").read_text())
        assert mjson["delta_G_kcal_per_mol"] == m["delta_G_kcal_per_mol"]
        dgs = m["walker_delta_G_kcal_per_mol"]
        assert m["delta_G_kcal_per_mol"] == pytest.approx(sum(dgs) / len(dgs))
        # the unbound shell 1.1-1.4 nm (5.9 nm3) is larger than the 1 M volume (1.66 nm3)
        assert m["delta_G_bind_kcal_per_mol"] < m["delta_G_kcal_per_mol"]
        assert abs(m["delta_G_bind_kcal_per_mol"]) < 20.0  # kcal/mol: finite, not absurd
    v = s["validation"]
    with_dg = [m for m in s["metad"] if m["delta_G_bind_kcal_per_mol"] is not None]
    if len(with_dg) == 3:  # the validation table against calorimetry, in the report
        assert v["n"] == 3 and 0.0 <= v["r2"] <= 1.0 and (out / "validation.png").is_file()
        assert "Validation against titration calorimetry" in report
        for row in v["rows"]:
            assert f"| {row['name']} | {row['dG_exp_kcal_per_mol']:.2f} |" in report
    else:
        assert "too few for R²" in v["note"]
    assert "Rekharsky" in report and "-12.3" in report
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
    assert "trained here on 10 frames" in text and "Active learning" not in text
    # with active learning, the final model's data and the loop's record are what is reported
    h = {"round": 0, "n_train": 10, "accurate_fraction": 0.25, "n_failed": 0, "n_labelled": 5}
    s["active_learning"] = {"history": [h], "rounds": 1, "n_train": 15, "converged": False,
                            "stopped": "1 rounds done"}
    text = report_markdown(s)
    assert "trained here on 15 (10 sampled + active learning's) frames" in text
    assert "round 0: 10 training frames, 25% of the explored frames accurate" in text


# -- the funnel in the case study's walkers ----------------------------------------------------

_FUNNEL = {"radius_nm": 0.2, "angle_deg": 60.0, "z_cc_nm": 1.0, "z_nm": [-1.5, 2.5],
           "rim_nm": 2.0, "rim_out_nm": -0.5}


@pytest.fixture(scope="module")
def peptide_complex(tmp_path_factory):
    """Benzamide over Trp2 of Ac-Trp-Gly-Trp-NMe (Gasteiger charges) and an untrained tiny ANI."""
    from drug_binding import prepare as P
    from drug_binding.case_study import _site
    from drug_binding.model import ANIAdapter

    tmp = tmp_path_factory.mktemp("walker")
    pep = P.build_peptide("TRP GLY TRP", tmp / "pep.pdb")
    lig = P.place_ligand(P.ligand_from_smiles("NC(=O)c1ccccc1", seed=0), _site(pep, 2, 4.0),
                         P._pdb_xyz_A(pep), seed=1)
    params = P.parametrize_ligand(lig, tmp / "lig", charge_method="gas")
    cx = P.assemble_complex(pep, params, tmp / "cx", solvent="gbn2")
    model = ANIAdapter.untrained(tmp / "ani", "tiny", seed=2, elements=["H", "C", "N", "O"])
    return cx, model.path, tmp


def _walker_call(monkeypatch, cx, model_dir, out, funnel):
    """Run ``metad_walker`` with ``run_metad`` replaced by a recorder; return its arguments."""
    import openmm as mm

    from drug_binding import metad
    from drug_binding.case_study import load_case_config, metad_walker

    seen = {}

    def record(system, positions, cv_spec, *args, **kw):
        seen.update(system=system, positions=positions, cv=cv_spec, **kw)
        return {"settings": {"steps": 100, "timestep_fs": 2.0}}

    monkeypatch.setattr(metad, "run_metad", record)
    # an untrained ANI is no potential to minimise on; the start pose is enough here
    monkeypatch.setattr(mm.LocalEnergyMinimizer, "minimize", staticmethod(lambda *a, **k: None))
    settings = {**load_case_config("toy")["metad"], "funnel": funnel}
    res = metad_walker("benzamide", cx.folder, str(model_dir), str(out), 2, settings, seed=0)
    assert res["status"] == "ok"
    return seen


def test_walker_builds_the_funnel_force_when_asked(peptide_complex, monkeypatch):
    import numpy as np
    import openmm as mm

    from common.cv import parse_cv
    from common.errors import ConfigError
    from drug_binding.metad import _check_funnel_start

    cx, model_dir, tmp = peptide_complex
    off = _walker_call(monkeypatch, cx, model_dir, tmp / "w0", None)
    assert off["funnel"] is None
    seen = _walker_call(monkeypatch, cx, model_dir, tmp / "w1", _FUNNEL)
    fun, system, x = seen["funnel"], seen["system"], np.asarray(seen["positions"])
    # the funnel's ligand and origin are the CV's groups, so ΔG_bind uses its volume
    cv = parse_cv(seen["cv"], system.getNumParticles())
    assert (set(fun.ligand), set(fun.origin)) == (set(cv.groups[0]), set(cv.groups[1]))
    assert fun.radius_nm == 0.2 and fun.z_cc_nm == 1.0 and (fun.z_min_nm, fun.z_max_nm) == (
        -1.5, 2.5)
    assert fun.toward and not set(fun.toward) & set(fun.ligand)
    _check_funnel_start(system, x, fun)  # the ligand starts inside
    # the OpenMM force it gives: zero at the start, Limongelli's wall energy off the axis
    test = mm.System()
    for i in range(system.getNumParticles()):
        test.addParticle(system.getParticleMass(i))
    test.addForce(fun.openmm_force(system))
    ctx = mm.Context(test, mm.VerletIntegrator(0.001), mm.Platform.getPlatformByName("Reference"))

    def energy(pos):
        ctx.setPositions(pos)
        return ctx.getState(getEnergy=True).getPotentialEnergy()._value

    assert energy(x) == pytest.approx(0.0, abs=1e-9)
    def com(group):  # mass-weighted, as the force's groups
        m = np.array([system.getParticleMass(i)._value for i in group])
        return (x[list(group)] * m[:, None]).sum(0) / m.sum()

    a, b = com(fun.origin), com(fun.toward)
    n = (b - a) / np.linalg.norm(b - a)
    side = np.cross(n, [1.0, 0.0, 0.0])
    moved = x.copy()
    lig = list(cx.ligand_atoms)
    target = a + 2.0 * n + 0.5 * side / np.linalg.norm(side)  # in the cylinder's range, 0.5 nm out
    moved[lig] += target - com(fun.ligand)
    z, rho = fun.axial(target[None], a, b)
    want = float(fun.energy_kJ(z, rho)[0])
    assert want > 100.0 and energy(moved) == pytest.approx(want, rel=1e-6)
    # a receptor with no outer rim for the axis is a one-line error naming the setting
    with pytest.raises(ConfigError, match="rim"):
        _walker_call(monkeypatch, cx, model_dir, tmp / "w2", {**_FUNNEL, "rim_nm": 0.01})


def test_validation_joins_predictions_with_the_benchmark_by_name(tmp_path):
    from drug_binding.case_study import _validate
    from drug_binding.validation import validate_table

    rows = _benchmark_or_skip()[:4]
    pred = [-7.0, -8.5, -6.1, None]  # the last ligand has no ΔG (its walkers fell apart)
    metad = [{"name": r["name"], "delta_G_bind_kcal_per_mol": p}
             for r, p in zip(rows, pred, strict=True)]
    metad.append({"name": "not_in_the_set", "delta_G_bind_kcal_per_mol": -9.0})
    v = _validate({"experimental": {"benchmark": "mcl1"}}, tmp_path, metad)
    want = validate_table([{"name": r["name"], "dG_exp_kcal_per_mol": r["dG_exp_kcal_per_mol"],
                            "dG_pred_kcal_per_mol": p}
                           for r, p in zip(rows[:3], pred[:3], strict=True)], 298.15)
    assert v["n"] == 3 and [r["name"] for r in v["rows"]] == [r["name"] for r in rows[:3]]
    assert v["r2"] == pytest.approx(want["r2"]) and v["ci95"] == want["ci95"]
    assert "JACS 2015" in v["experimental_data"]["source"]
    assert (tmp_path / "validation.png").is_file()
    few = _validate({"experimental": {"benchmark": "mcl1"}}, tmp_path, metad[:2])
    assert "only 2 ligand(s)" in few["note"]


def test_validation_lines_give_the_sign_that_r2_hides():
    from drug_binding.case_study import _validation_lines

    v = {"experimental_data": {"source": "JACS mcl1"}, "n": 3, "r2": 0.233, "pearson_r": -0.483,
         "kendall_tau": -0.333, "rmse_kcal_per_mol": 4.35, "mae_kcal_per_mol": 3.94,
         "ci95": {"pearson_r": [-1.0, 1.0]},
         "rows": [{"name": "53", "dG_exp_kcal_per_mol": -9.96, "dG_pred_kcal_per_mol": -3.73}]}
    text = "\n".join(_validation_lines(v))
    assert "R² 0.23" in text and "Pearson r -0.48 [-1.00, 1.00]" in text
    assert "| 53 | -9.96 | -3.73 |" in text


def test_host_guest_report_names_the_host_the_calorimetry_and_stuck_walkers():
    from drug_binding.case_study import SEED_RESULTS, report_markdown

    def metad(name, dgs, cross):
        return {"name": name, "screen_rank": 1, "delta_G_kcal_per_mol": sum(dgs) / len(dgs),
                "delta_G_err_kcal_per_mol": 0.5, "delta_G_bind_kcal_per_mol": -1.0,
                "n_walkers": len(dgs), "walker_delta_G_kcal_per_mol": dgs,
                "walker_basin_transitions": cross, "n_walkers_failed": 0, "walker_failures": {},
                "bound_nm": [0.0, 0.35], "unbound_nm": [1.1, 1.4], "error_method": "spread",
                "simulated_ps_per_walker": 6.0, "simulated_ps": 18.0}

    rows = [{"name": n, "dG_exp_kcal_per_mol": e, "dG_pred_kcal_per_mol": p}
            for n, e, p in (("a", -1.5, -0.2), ("b", -3.5, -4.0), ("c", -4.6, -7.9))]
    s = {"scale": "tiny", "receptor": {"host": "cd_set1/host-acd.mol2"}, "solvent": "obc2",
         "ligands": {"a": {"file": "cd_set1/guest-1.mol2"}}, "labels": {},
         "dataset": {"train": 10}, "model": {"metrics": {}}, "screening": [],
         "timings_s": {}, "screening_fell_apart": [], "screening_failures": {},
         "metad": [metad("a", [1.0, 0.3], [1, 2]), metad("c", [-10.0, -0.6], [0, 1])],
         "seed_results": SEED_RESULTS,
         "validation": {"experimental_data": {"source": "titration calorimetry (Rekharsky)"},
                        "n": 3, "r2": 0.97, "pearson_r": 0.99, "kendall_tau": 1.0,
                        "rmse_kcal_per_mol": 2.1, "mae_kcal_per_mol": 1.7, "ci95": {},
                        "rows": rows}}
    text = report_markdown(s)
    assert "host `host-acd.mol2` (host–guest, measured ΔG)" in text
    assert "a (`guest-1.mol2`)" in text and "receptor GAFF2" in text and "implicit OBC2" in text
    assert "the host’s heavy-atom centre of mass" in text
    assert "1 of the 4 walkers never left the cavity" in text
    assert "| c | -4.60 | -7.90 |" in text and "Validation against titration calorimetry" in text
    assert "the solvent is implicit OBC2" in text and "This run had no active learning" in text
    # a guest none of whose walkers left: its ΔG is called a loose bound, by name
    s["metad"][1]["walker_basin_transitions"] = [0, 0]
    assert "No walker of c left the cavity" in report_markdown(s)
