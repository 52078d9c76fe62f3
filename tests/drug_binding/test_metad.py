"""Well-tempered metadynamics (drug_binding.metad) against a profile known exactly.

The system: particle 0 fixed (mass 0) at the origin, particle 1 (10 amu) moving in 3D under the
radial double well U(r) = a((r - c)^2 - b^2)^2 (minima at c -+ b, barrier a b^4). With the CV the
distance r, the exact profile is F(r) = U(r) - kT ln(4 pi r^2) + const, so the exact
G(basin) = -kT ln int_basin r^2 exp(-U(r)/kT) dr (quadrature below). The well is symmetric in U,
so the whole of the exact delta_G (+1.0 kcal/mol: the outer well has more volume) is the
Jacobian's: a run that dropped or double-counted it would miss by about 1 kcal/mol.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

mm = pytest.importorskip("openmm")

from common.errors import ConfigError, DataError  # noqa: E402
from drug_binding import metad  # noqa: E402

C_NM, B_NM, BARRIER_KJ = 0.6, 0.25, 15.0
A_KJ_PER_NM4 = BARRIER_KJ / B_NM**4
BOUND, UNBOUND = (0.2, 0.6), (0.6, 1.0)
T_K = 300.0
KT_KJ = metad.R_KJ_PER_MOL_K * T_K
START = np.array([[0.0, 0.0, 0.0], [0.35, 0.0, 0.0]])
# settings for the tiny system: narrow hills for narrow wells, one hill per 0.2 ps
FAST = dict(bias_factor=6.0, hill_height_kJ=1.0, hill_width_nm=0.025, pace=100,
            platform="Reference", n_blocks=10)


def _u_kJ(r):
    return A_KJ_PER_NM4 * ((r - C_NM) ** 2 - B_NM**2) ** 2


def double_well_system(mass_amu: float = 10.0):
    system = mm.System()
    system.addParticle(0.0)  # fixed
    system.addParticle(mass_amu)
    force = mm.CustomBondForce(f"{A_KJ_PER_NM4}*((r-{C_NM})^2-{B_NM**2})^2")
    force.addBond(0, 1, [])
    system.addForce(force)
    return system


def exact_g_kJ(basin, jacobian: bool = True) -> float:
    r = np.linspace(basin[0], basin[1], 200001)
    w = np.exp(-_u_kJ(r) / KT_KJ) * (4 * math.pi * r**2 if jacobian else 1.0)
    return -KT_KJ * math.log(np.trapezoid(w, r))


def exact_delta_g_kcal(jacobian: bool = True) -> float:
    return (exact_g_kJ(BOUND, jacobian) - exact_g_kJ(UNBOUND, jacobian)) / metad.KJ_PER_KCAL


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("metad")
    result = metad.run_metad(double_well_system(), START, "distance:0:1", BOUND, UNBOUND, T_K,
                             500_000, out, seed=1, **FAST)
    return result, out


# ---------------------------------------------------------------------------------------------
# physics


def test_delta_g_matches_quadrature_within_error(run):
    result, _ = run
    exact = exact_delta_g_kcal()
    dg, err = result["delta_G_kcal_per_mol"], result["delta_G_err_kcal_per_mol"]
    print(f"metad dG = {dg:.3f} +- {err:.3f}, exact {exact:.3f} kcal/mol")
    assert 0.0 < err < 0.3
    assert abs(dg - exact) <= 3.0 * err
    assert abs(dg - exact) <= 0.3
    # the convention matters: without the volume term the exact answer is 0, not +1
    assert abs(dg - exact_delta_g_kcal(jacobian=False)) > 3.0 * err
    assert abs(result["delta_G_reweighted_kcal_per_mol"] - exact) <= max(3.0 * err, 0.3)


def test_profile_follows_u_minus_volume_term(run):
    result, _ = run
    s = np.asarray(result["profile"]["cv_nm"])
    f = np.asarray(result["profile"]["free_energy_kcal_per_mol"]) * metad.KJ_PER_KCAL
    m = (s > 0.25) & (s < 0.95)
    exact = _u_kJ(s[m]) - KT_KJ * np.log(4 * math.pi * s[m] ** 2)
    diff = f[m] - exact
    diff -= diff.mean()
    # hills of width 0.025 nm smooth the wells (curvature 1900 kJ/mol/nm^2): allow ~1 kT
    assert np.sqrt(np.mean(diff**2)) < KT_KJ
    assert abs(s[m][np.argmin(f[m])] - (C_NM + B_NM)) < 0.05  # the deeper well is the outer


def test_standard_state_correction_sign_and_value(run):
    result, _ = run
    v_u = 4.0 / 3.0 * math.pi * (UNBOUND[1] ** 3 - UNBOUND[0] ** 3)
    assert result["unbound_volume_nm3"] == pytest.approx(v_u)
    corr = -KT_KJ * math.log(v_u / 1.66054) / metad.KJ_PER_KCAL
    assert result["standard_state_correction_kcal_per_mol"] == pytest.approx(corr)
    assert result["delta_G_bind_kcal_per_mol"] == pytest.approx(
        result["delta_G_kcal_per_mol"] + corr)
    # a shell of exactly V0 needs no correction; a bigger one makes binding stronger
    r0 = (3 * 1.66054 / (4 * math.pi)) ** (1 / 3)
    assert metad.standard_state_correction_kJ((0.0, r0), T_K) == pytest.approx(0.0, abs=1e-9)
    assert metad.standard_state_correction_kJ((1.0, 2.0), T_K) < 0


def test_basin_free_energy_known_answers():
    s = np.linspace(0.0, 2.0, 201)
    assert metad.basin_free_energy_kJ(s, np.zeros_like(s), (0.5, 1.0), T_K) == pytest.approx(
        -KT_KJ * math.log(0.5), rel=1e-9)
    f = 3.0 * s  # linear profile: int exp(-3s/kT) ds in closed form
    lo, hi = 0.25, 1.5
    exact = -KT_KJ * math.log(KT_KJ / 3.0 * (math.exp(-3 * lo / KT_KJ) - math.exp(-3 * hi / KT_KJ)))
    assert metad.basin_free_energy_kJ(s, f, (lo, hi), T_K) == pytest.approx(exact, abs=2e-3)


# ---------------------------------------------------------------------------------------------
# files and the JSON contract


def test_json_contract(run):
    result, out = run
    on_disk = json.loads((out / "metad.json").read_text())
    assert on_disk["delta_G_kcal_per_mol"] == pytest.approx(result["delta_G_kcal_per_mol"])
    for key in ("cv", "temperature_K", "profile", "delta_G_kcal_per_mol",
                "delta_G_err_kcal_per_mol", "delta_G_bind_kcal_per_mol"):
        assert key in on_disk
    assert on_disk["cv"] == "distance" and on_disk["temperature_K"] == T_K
    prof = on_disk["profile"]
    assert len(prof["cv_nm"]) == len(prof["free_energy_kcal_per_mol"]) > 50
    assert min(prof["free_energy_kcal_per_mol"]) == 0.0
    conv = on_disk["convergence"]
    assert len(conv["time_ps"]) == len(conv["delta_G_kcal_per_mol"])
    assert conv["time_ps"][-1] == pytest.approx(500_000 * 2.0 / 1000)


def _plumed_table(path: Path) -> tuple[list[str], dict[str, str], np.ndarray]:
    fields, sets, rows = [], {}, []
    for line in path.read_text().splitlines():
        if line.startswith("#! FIELDS"):
            fields = line.split()[2:]
        elif line.startswith("#! SET"):
            _, _, key, value = line.split(maxsplit=3)
            sets[key] = value
        else:
            rows.append([float(x) for x in line.split()])
    return fields, sets, np.array(rows)


def test_hills_are_plumed_text_and_rebuild_the_profile(run):
    result, out = run
    fields, sets, hills = _plumed_table(out / "HILLS")
    assert fields == ["time", "cv", "sigma_cv", "height", "biasf"]
    assert sets == {"multivariate": "false", "kerneltype": "gaussian"}
    assert len(hills) == result["n_hills"] == 500_000 // FAST["pace"]
    assert np.all(np.diff(hills[:, 0]) > 0) and np.all(hills[:, 4] == FAST["bias_factor"])
    # PLUMED's convention: heights are written as -F contributions, so F = -sum of the hills
    s = np.asarray(result["profile"]["cv_nm"])
    g = np.exp(-0.5 * ((s[:, None] - hills[:, 1]) / hills[:, 2]) ** 2)
    f_hills = -(g * hills[:, 3]).sum(axis=1)
    f = np.asarray(result["profile"]["free_energy_kcal_per_mol"]) * metad.KJ_PER_KCAL
    np.testing.assert_allclose(f_hills - f_hills.min(), f, atol=1e-3)


def test_colvar_fes_and_figures(run):
    result, out = run
    fields, _, colvar = _plumed_table(out / "COLVAR")
    assert fields == ["time", "cv", "metad.bias", "metad.rbias"]
    assert len(colvar) == result["n_hills"] and np.all(colvar[:, 2] >= 0)
    assert colvar[:, 1].min() < 0.4 and colvar[:, 1].max() > 0.8  # both wells visited
    fields, sets, fes = _plumed_table(out / "fes.dat")
    assert fields == ["cv", "file.free"] and int(sets["nbins_cv"]) == len(fes)
    for name in ("profile.png", "convergence.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    assert not list(out.glob(".*partial*"))


def test_same_seed_same_numbers(tmp_path):
    kw = dict(FAST, n_blocks=2, seed=7)
    a = metad.run_metad(double_well_system(), START, "distance:0:1", BOUND, UNBOUND, T_K,
                        10_000, tmp_path / "a", **kw)
    b = metad.run_metad(double_well_system(), START, "distance:0:1", BOUND, UNBOUND, T_K,
                        10_000, tmp_path / "b", **kw)
    assert a["profile"] == b["profile"]
    assert (tmp_path / "a" / "HILLS").read_text() == (tmp_path / "b" / "HILLS").read_text()


def test_system_is_not_modified_and_cpu_platform_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENMM_CPU_THREADS", "1")
    system = double_well_system()
    r = metad.run_metad(system, START, "distance:0:1", BOUND, UNBOUND, T_K, 2_000, tmp_path,
                        **dict(FAST, n_blocks=2, pace=50, platform="CPU"))
    assert system.getNumForces() == 1
    assert r["n_hills"] == 40 and r["settings"]["platform"] == "CPU"


def test_periodic_system_with_groups_runs(tmp_path):
    """A periodic box, a three-atom 'receptor' and a two-atom 'ligand' held by bonds and a
    Lennard-Jones attraction: the run works on such a System and keeps the CV below the wall."""
    system = mm.System()
    system.setDefaultPeriodicBoxVectors(mm.Vec3(3, 0, 0), mm.Vec3(0, 3, 0), mm.Vec3(0, 0, 3))
    pos = np.array([[1.5, 1.5, 1.5], [1.65, 1.5, 1.5], [1.5, 1.65, 1.5],
                    [1.5, 1.5, 1.9], [1.6, 1.5, 1.9]])
    bonds, lj = mm.HarmonicBondForce(), mm.NonbondedForce()
    lj.setNonbondedMethod(mm.NonbondedForce.CutoffPeriodic)
    lj.setCutoffDistance(1.2)
    for _ in range(5):
        system.addParticle(12.0)
        lj.addParticle(0.0, 0.3, 2.0)
    for i, j in ((0, 1), (0, 2), (1, 2), (3, 4)):
        bonds.addBond(i, j, float(np.linalg.norm(pos[i] - pos[j])), 5e4)
        lj.addException(i, j, 0.0, 0.3, 0.0)
    system.addForce(bonds)
    system.addForce(lj)
    s0 = metad.cv_value_nm(system, pos, "distance:0-2:3,4")
    com = pos[:3].mean(axis=0)
    assert s0 == pytest.approx(np.linalg.norm(pos[3:].mean(axis=0) - com), rel=1e-5)
    r = metad.run_metad(system, pos, "distance:0-2:3,4", (0.2, 0.6), (0.7, 1.0), T_K, 8_000,
                        tmp_path, bias_factor=8.0, pace=100, hill_width_nm=0.05,
                        timestep_fs=1.0, platform="Reference", n_blocks=2)
    assert math.isfinite(r["delta_G_kcal_per_mol"]) and r["n_hills"] == 80
    _, _, colvar = _plumed_table(tmp_path / "COLVAR")
    assert colvar[:, 1].max() < 1.0 + 3 * 0.05 + 0.15  # default wall: 3 widths past the top


# ---------------------------------------------------------------------------------------------
# the CV


def test_cv_groups_are_centres_of_mass():
    system = mm.System()
    masses = [12.0, 1.0, 16.0, 14.0, 0.0]
    for m in masses:
        system.addParticle(m)
    rng = np.random.default_rng(0)
    pos = rng.uniform(0, 1, (5, 3))
    com = np.average(pos[:3], axis=0, weights=masses[:3])
    expect = np.linalg.norm(com - pos[3])
    assert metad.cv_value_nm(system, pos, "distance:0-2:3") == pytest.approx(expect, rel=1e-6)
    assert metad.cv_value_nm(system, pos, "distance:0,1,2:3") == pytest.approx(expect, rel=1e-6)
    # a massless atom: its own position
    assert metad.cv_value_nm(system, pos, "distance:4:3") == pytest.approx(
        np.linalg.norm(pos[4] - pos[3]), rel=1e-6)
    assert metad.parse_cv("distance:0-2,4:3", 5).groups == ((0, 1, 2, 4), (3,))


# ---------------------------------------------------------------------------------------------
# bad input: one-line errors


def _one_line(exc_info) -> str:
    text = str(exc_info.value)
    assert "\n" not in text and "fix:" in text
    return text


def test_cv_index_out_of_range():
    with pytest.raises(ConfigError) as e:
        metad.run_metad(double_well_system(), START, "distance:0:2", BOUND, UNBOUND, T_K,
                        4_000, "unused", **FAST)
    assert "out of range" in _one_line(e) and "0..1" in str(e.value)


@pytest.mark.parametrize("spec", ["distance:0", "distance:0:1:2", "dist:0:1", "distance:a:1",
                                  "distance:0,,1:2", "distance::1", "distance:3-1:0",
                                  "distance:0:0"])
def test_bad_cv_syntax(spec):
    with pytest.raises(ConfigError) as e:
        metad.parse_cv(spec, 5)
    assert "cv_spec" in _one_line(e)


def test_overlapping_basins():
    with pytest.raises(ConfigError) as e:
        metad.run_metad(double_well_system(), START, "distance:0:1", (0.2, 0.7), (0.6, 1.0),
                        T_K, 4_000, "unused", **FAST)
    assert "overlaps" in _one_line(e)


@pytest.mark.parametrize("kw, words", [
    (dict(grid_nm=(0.0, 0.9)), "outside the bias grid"),
    (dict(upper_wall_nm=0.8), "past the upper wall"),
    (dict(bias_factor=1.0), "must be > 1"),
    (dict(hill_width_nm=-1), "positive"),
])
def test_bad_settings(kw, words):
    with pytest.raises(ConfigError) as e:
        metad.run_metad(double_well_system(), START, "distance:0:1", BOUND, UNBOUND, T_K,
                        4_000, "unused", **dict(FAST, **kw))
    assert words in _one_line(e)


def test_bad_ranges_and_too_few_steps():
    for text in ("0.5", "0.6,0.2", "a,b", "-1,2"):
        with pytest.raises(ConfigError):
            metad.parse_range_nm(text, "bound_nm")
    with pytest.raises(ConfigError) as e:
        metad.run_metad(double_well_system(), START, "distance:0:1", BOUND, UNBOUND, T_K,
                        1_000, "unused", **FAST)
    assert "steps" in _one_line(e)


def test_start_outside_wall(tmp_path):
    far = np.array([[0.0, 0.0, 0.0], [3.0, 0.0, 0.0]])
    with pytest.raises(DataError) as e:
        metad.run_metad(double_well_system(), far, "distance:0:1", BOUND, UNBOUND, T_K, 4_000,
                        tmp_path, **FAST)
    assert "starting CV" in _one_line(e)


def test_load_openmm_inputs(tmp_path):
    from openmm import app

    system = double_well_system()
    xml = tmp_path / "system.xml"
    xml.write_text(mm.XmlSerializer.serialize(system))
    top = app.Topology()
    res = top.addResidue("LIG", top.addChain())
    for name in ("A", "B"):
        top.addAtom(name, app.Element.getBySymbol("Ar"), res)
    pdb = tmp_path / "coords.pdb"
    with open(pdb, "w") as fh:
        app.PDBFile.writeFile(top, START * 10.0 * mm.unit.angstrom, fh)
    sys2, pos = metad.load_openmm_inputs(xml, pdb)
    assert sys2.getNumParticles() == 2
    np.testing.assert_allclose(pos, START, atol=1e-3)

    with pytest.raises(DataError) as e:
        metad.load_openmm_inputs(tmp_path / "missing.xml", pdb)
    assert "not found" in _one_line(e)
    bad = tmp_path / "bad.xml"
    bad.write_text("<System nonsense")
    with pytest.raises(DataError) as e:
        metad.load_openmm_inputs(bad, pdb)
    assert "serialized OpenMM System" in _one_line(e)
    three = mm.System()
    for _ in range(3):
        three.addParticle(1.0)
    xml3 = tmp_path / "three.xml"
    xml3.write_text(mm.XmlSerializer.serialize(three))
    with pytest.raises(DataError) as e:
        metad.load_openmm_inputs(xml3, pdb)
    assert "2 atoms in the PDB but 3 particles" in _one_line(e)


# ---------------------------------------------------------------------------------------------
# slow: is the error bar calibrated over independent runs?


@pytest.mark.slow
def test_error_bar_is_calibrated_over_seeds(tmp_path):
    exact = exact_delta_g_kcal()
    z = []
    for seed in range(8):
        r = metad.run_metad(double_well_system(), START, "distance:0:1", BOUND, UNBOUND, T_K,
                            1_000_000, tmp_path / str(seed), seed=seed, **FAST)
        z.append((r["delta_G_kcal_per_mol"] - exact) / r["delta_G_err_kcal_per_mol"])
    z = np.asarray(z)
    print("z scores", np.round(z, 2))
    assert np.all(np.abs(z) < 4.0)
    assert np.sqrt(np.mean(z**2)) < 2.0


def test_basin_transitions_count_committed_crossings_only():
    from drug_binding.metad import basin_transitions

    b, u = (0.2, 0.5), (0.8, 1.0)
    assert basin_transitions([0.3, 0.6, 0.7, 0.6, 0.4], b, u) == 0  # left, came back
    assert basin_transitions([0.3, 0.6, 0.9, 0.7, 0.4, 0.65, 0.95], b, u) == 3
    assert basin_transitions([0.6, 0.7, 0.9, 0.9], b, u) == 0  # started between the basins
    assert basin_transitions([], b, u) == 0
