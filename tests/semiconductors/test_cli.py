"""mlp-semiconductors: the JSON contract of `ti` on a 4-atom Lennard-Jones argon crystal (very
few steps), and the bad-input table."""

from __future__ import annotations

import json
import shutil

import ase.io
import pytest
from ase import Atoms
from ase.build import bulk

from common.cli.app import run_app
from common.cli.testing import Row, check_row, generic_rows
from semiconductors.cli import app

CONTRACT_KEYS = {"temperature_K", "free_energy_eV_per_atom", "free_energy_err_eV_per_atom",
                 "einstein_spring_eV_per_A2", "n_lambda"}
LJ = ("-p", "lj", "--param", "epsilon=0.0104", "--param", "sigma=3.4", "--param", "rc=8.5")
FAST = ("--n-lambda", "2", "--steps-per-window", "128", "--equilibration-steps", "10",
        "--timestep-fs", "5", "--batch-size", "4")


def _run(args, capsys):
    code = run_app(app, [str(a) for a in args])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.fixture(scope="module")
def _inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("semiconductors_cli")
    ase.io.write(folder / "ar.extxyz", bulk("Ar", "fcc", a=5.26, cubic=True))
    ase.io.write(folder / "molecule.extxyz", Atoms("Ar2", positions=[[0, 0, 0], [3.8, 0, 0]]))
    (folder / "afile.txt").write_text("not a folder\n")
    (folder / "done" / "md").mkdir(parents=True)
    (folder / "done" / "md" / "run.json").write_text("{}")
    return folder


@pytest.fixture
def files(tmp_path, _inputs, gan):
    shutil.copytree(_inputs, tmp_path, dirs_exist_ok=True)
    shutil.copytree(gan, tmp_path, dirs_exist_ok=True)
    return {"tmp": tmp_path, "ar": tmp_path / "ar.extxyz", "mol": tmp_path / "molecule.extxyz",
            "afile": tmp_path / "afile.txt", "done": tmp_path / "done",
            "missing": tmp_path / "missing.extxyz", "host": tmp_path / "host.extxyz",
            "zb": tmp_path / "zb.extxyz", "vac": tmp_path / "vac.extxyz"}


def test_ti_contract(files, capsys):
    code, out, err = _run(["ti", files["ar"], *LJ, "--temperatures", "10,20", *FAST,
                           "--seed", "2", "--json"], capsys)
    assert code == 0, err
    res = json.loads(out)
    assert [r["temperature_K"] for r in res["results"]] == [10.0, 20.0]
    for r in res["results"]:
        assert CONTRACT_KEYS <= set(r) and r["n_lambda"] == 2
        assert r["free_energy_err_eV_per_atom"] > 0 and r["einstein_spring_eV_per_A2"] > 0
    # the default --out: <stem>_ti/ next to the structure, holding the library's own JSON
    saved = json.loads((files["tmp"] / "ar_ti" / "frenkel_ladd.json").read_text())
    assert saved["results"] == res["results"]
    # the windows' warnings (far too few steps here) reach stderr once each, as warnings
    lines = [ln for ln in err.splitlines() if ln]
    assert lines and all(ln.startswith("warning: ") for ln in lines)
    assert len(lines) == len(set(lines))


def R(id: str, *argv: str, kind: str = "error", needles: tuple = ()) -> Row:
    return Row(id, tuple(argv), kind, tuple(needles))


TI = ("ti", "{ar}", *LJ)

ROWS = [
    R("ti-temperature-0", *TI, "--temperatures", "300,0", kind="usage"),
    R("ti-temperature-negative", *TI, "--temperatures", "-5", kind="usage"),
    R("ti-temperatures-word", *TI, "--temperatures", "hot", kind="usage"),
    R("ti-n-lambda-1", *TI, "--temperatures", "10", "--n-lambda", "1", kind="usage"),
    R("ti-steps-per-window-too-few", *TI, "--temperatures", "10", "--steps-per-window", "10",
      kind="usage"),
    R("ti-equilibration-negative", *TI, "--temperatures", "10", "--equilibration-steps", "-1",
      kind="usage"),
    R("ti-spring-0", *TI, "--temperatures", "10", "--spring-eV-A2", "0", kind="usage"),
    R("ti-timestep-0", *TI, "--temperatures", "10", "--timestep-fs", "0", kind="usage"),
    R("ti-not-periodic", "ti", "{mol}", *LJ, "--temperatures", "10", "--out", "{tmp}/x",
      needles=("molecule.extxyz", "periodic")),
    R("ti-missing-structure", "ti", "{missing}", *LJ, "--temperatures", "10",
      needles=("missing.extxyz", "not found")),
    R("ti-unknown-potential", "ti", "{ar}", "-p", "nosuch", "--temperatures", "10",
      needles=("--potential",)),
    R("ti-bad-param", *TI, "--param", "sigma", "--temperatures", "10",
      needles=("--param", "NAME=VALUE")),
    R("ti-out-is-a-file", *TI, "--temperatures", "10", "--out", "{afile}",
      needles=("afile.txt",)),
    R("ti-out-holds-a-run", *TI, "--temperatures", "10", "--out", "{done}",
      needles=("done", "--restart")),
    R("ti-restart-nothing", *TI, "--temperatures", "10", "--out", "{tmp}/new", "--restart",
      *FAST, needles=("--restart",)),
    R("ti-device-cuda-without-gpu", *TI, "--temperatures", "10", "--device", "cuda",
      needles=("--device", "CUDA")),
]


def _params(rows):
    import torch

    out = []
    for r in rows:
        skip = "cuda-without-gpu" in r.id and torch.cuda.is_available()
        out.append(pytest.param(r, id=r.id, marks=[pytest.mark.skip("has CUDA")] if skip else []))
    return out




def test_help_ends_with_an_example_and_every_option_has_help():
    import typer

    from common.cli.testing import _commands

    for path, cmd in _commands(typer.main.get_command(app)):
        assert all(getattr(p, "help", None) for p in cmd.params), path
        assert (cmd.epilog or "").startswith("Example:"), path
        assert len([ln for ln in cmd.epilog.splitlines() if "mlp-" in ln]) == 1, path


# -- build, defects, formation, train, case-study -------------------------------------------------
@pytest.fixture(scope="module")
def gan(tmp_path_factory):
    """A 32-atom wurtzite cell at Tersoff's lattice, a zincblende cell and a vacancy cell."""
    from semiconductors import systems as S

    folder = tmp_path_factory.mktemp("gan_cli")
    host = S.supercell(S.wurtzite(3.18092, 5.19445), (2, 2, 2))
    ase.io.write(folder / "host.extxyz", host)
    ase.io.write(folder / "zb.extxyz", bulk("GaN", "zincblende", a=4.5).repeat(2))
    ase.io.write(folder / "vac.extxyz", S.make_defect(host, "V_N"))
    return folder


def test_build_bulk_defect_and_slab(tmp_path, capsys):
    code, out, err = _run(["build", "--repeat", "3,3,2", "--lattice", "3.18092,5.19445",
                           "--out", tmp_path / "host.extxyz"], capsys)
    assert code == 0, err
    host = ase.io.read(tmp_path / "host.extxyz")
    assert len(host) == 72 and host.cell.cellpar()[0] == pytest.approx(3 * 3.18092)
    code, out, err = _run(["build", "--host", tmp_path / "host.extxyz", "--defect", "N_i",
                           "--site", "1.0,2.0,3.0", "--out", tmp_path / "ni.extxyz"], capsys)
    assert code == 0, err
    ni = ase.io.read(tmp_path / "ni.extxyz")
    assert ni.get_chemical_formula() == "Ga36N37" and ni.positions[-1] == pytest.approx(
        [1.0, 2.0, 3.0])
    code, out, err = _run(["build", "--slab", "--repeat", "2,2,1", "--bilayers", "4",
                           "--out", tmp_path / "slab.extxyz"], capsys)
    assert code == 0, err
    assert ase.io.read(tmp_path / "slab.extxyz").pbc.tolist() == [True, True, False]


def test_defects_then_formation_vs_mu_and_vs_temperature(gan, tmp_path, capsys):
    code, out, err = _run(["defects", gan / "host.extxyz", "-p", "tersoff", "--defects",
                           "V_Ga,V_N", "--out", tmp_path / "d", "--json"], capsys)
    assert code == 0, err
    res = json.loads(out)
    by = {r["defect"]: r for r in res["defects"]}
    # 32-atom cell: within 0.02 eV of the converged 5.73/2.34 eV (Ga-rich, issue 11)
    assert by["V_Ga"]["E_f_Ga_rich_eV"] == pytest.approx(5.73, abs=0.02)
    assert by["V_N"]["E_f_Ga_rich_eV"] == pytest.approx(2.34, abs=0.02)
    assert (tmp_path / "d" / "formation_energies.csv").exists()
    code, out, err = _run(["formation", gan / "host.extxyz", "-p", "tersoff", "--defect",
                           "V_N", "--temperatures", "300", "--n-lambda", "2",
                           "--steps-per-window", "128", "--equilibration-steps", "20",
                           "--chemical-potentials", tmp_path / "d" / "chemical_potentials.json",
                           "--out", tmp_path / "f", "--json"], capsys)
    assert code == 0, err
    res = json.loads(out)
    assert res["E_f_Ga_rich_eV"] == pytest.approx(by["V_N"]["E_f_Ga_rich_eV"], abs=1e-4)
    mu = res["vs_mu"]
    assert mu[0]["delta_mu_Ga_eV"] == pytest.approx(res["formation_enthalpy_eV"])
    assert mu[0]["E_f_eV"] == pytest.approx(res["E_f_N_rich_eV"])
    assert mu[-1]["E_f_eV"] == pytest.approx(res["E_f_Ga_rich_eV"])
    (row,) = res["vs_temperature"]
    # N-rich: μ_N = E(N2)/2 at any T, so F_f differs from the static E_f only by the
    # vacancy's vibrational free energy: tenths of an eV at most at 300 K
    assert abs(row["F_f_N_rich_eV"] - res["E_f_N_rich_eV"]) < 0.5
    assert row["F_f_N_rich_err_eV"] > 0


def test_growth_map_json(tmp_path, capsys):
    code, out, err = _run(["growth", "--temperatures", "900", "--flux-ratios", "1.0",
                           "--atoms", "1", "--steps-per-atom", "20", "--cluster", "serial",
                           "--out", tmp_path / "g", "--json"], capsys)
    assert code == 0, err
    res = json.loads(out)
    assert len(res["points"]) == 1 and res["optimum"]["flux_ratio"] == 1.0
    assert (tmp_path / "g" / "growth_map.png").exists()


GAN = ("-p", "tersoff")

ROWS += [
    R("build-site-outside-cell", "build", "--defect", "Ga_i", "--site", "0,0,100",
      "--out", "{tmp}/x.extxyz", needles=("--site", "outside the cell")),
    R("build-site-not-three-numbers", "build", "--defect", "Ga_i", "--site", "1,2",
      "--out", "{tmp}/x.extxyz", needles=("--site",)),
    R("build-index-outside-cell", "build", "--repeat", "2,2,2", "--defect", "V_N",
      "--index", "64", "--out", "{tmp}/x.extxyz", needles=("--index", "outside")),
    R("build-index-wrong-element", "build", "--repeat", "2,2,2", "--defect", "V_N",
      "--index", "0", "--out", "{tmp}/x.extxyz", needles=("--index", "not N")),
    R("build-unknown-defect", "build", "--defect", "V_O", "--out", "{tmp}/x.extxyz",
      needles=("--defect", "V_O")),
    R("build-host-not-wurtzite", "build", "--host", "{zb}", "--defect", "V_N",
      "--out", "{tmp}/x.extxyz", needles=("zb.extxyz", "P6_3mc")),
    R("build-host-defective", "build", "--host", "{vac}", "--defect", "V_Ga",
      "--out", "{tmp}/x.extxyz", needles=("vac.extxyz",)),
    R("build-bad-repeat", "build", "--repeat", "3,3", "--out", "{tmp}/x.extxyz",
      needles=("--repeat",)),
    R("build-bad-lattice", "build", "--lattice", "-3,5", "--out", "{tmp}/x.extxyz",
      needles=("--lattice",)),
    R("build-vacuum-0", "build", "--slab", "--vacuum-A", "0", "--out", "{tmp}/x.extxyz",
      kind="usage"),
    R("defects-not-wurtzite", "defects", "{zb}", *GAN, "--out", "{tmp}/d",
      needles=("zb.extxyz", "wurtzite")),
    R("defects-unknown-kind", "defects", "{host}", *GAN, "--defects", "V_Ga,X_i",
      "--out", "{tmp}/d", needles=("--defects", "X_i")),
    R("defects-search-temperature-0", "defects", "{host}", *GAN, "--search-temperature-K",
      "0", "--out", "{tmp}/d", kind="usage"),
    R("defects-bad-ga-phase", "defects", "{host}", *GAN, "--ga-phase", "beta",
      "--out", "{tmp}/d", needles=("--ga-phase",)),
    R("defects-bad-tersoff-param", "defects", "{host}", *GAN, "--param", "x=1",
      "--out", "{tmp}/d", needles=("--param",)),
    R("formation-temperature-0", "formation", "{host}", *GAN, "--defect", "V_N",
      "--temperatures", "0", "--out", "{tmp}/f", kind="usage"),
    R("formation-n-lambda-1", "formation", "{host}", *GAN, "--defect", "V_N",
      "--temperatures", "300", "--n-lambda", "1", "--out", "{tmp}/f", kind="usage"),
    R("formation-bad-chemical-potentials", "formation", "{host}", *GAN, "--defect", "V_N",
      "--chemical-potentials", "{afile}", "--out", "{tmp}/f",
      needles=("afile.txt", "chemical-potentials")),
    R("formation-two-defects", "formation", "{host}", *GAN, "--defect", "V_N,V_Ga",
      "--out", "{tmp}/f", needles=("--defect",)),
    R("train-missing-data", "train", "{missing}", "--out", "{tmp}/m",
      needles=("missing.extxyz",)),
    R("train-bad-config", "train", "{ar}", "--config", "huge", "--out", "{tmp}/m",
      needles=("huge",)),
    R("growth-flux-ratio-0", "growth", "--temperatures", "900", "--flux-ratios", "1.0,0",
      "--out", "{tmp}/g", needles=("--flux-ratios", "> 0")),
    R("growth-flux-ratio-negative", "growth", "--temperatures", "900", "--flux-ratios", "-1",
      "--out", "{tmp}/g", needles=("--flux-ratios",)),
    R("growth-temperature-0", "growth", "--temperatures", "0", "--out", "{tmp}/g",
      kind="usage"),
    R("growth-no-temperature", "growth", "--out", "{tmp}/g", needles=("--temperatures",)),
    R("growth-unknown-potential", "growth", "--temperatures", "900", "-p", "nosuch",
      "--out", "{tmp}/g", needles=("--potential",)),
    R("case-study-unknown-scale", "case-study", "--scale", "huge", "--out", "{tmp}/c",
      needles=("--scale",)),
    R("case-study-out-is-a-file", "case-study", "--out", "{afile}", needles=("afile.txt",)),
]


@pytest.mark.parametrize("row", _params(generic_rows(app) + ROWS))
def test_bad_input(row, files, capsys):
    check_row(app, row, files["tmp"], capsys, files)
