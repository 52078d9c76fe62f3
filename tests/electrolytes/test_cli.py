"""mlp-electrolytes: the JSON contract of `transport` and `solvation` on synthetic
trajectories, and the bad-input table (one line, exit 2, nothing left behind)."""

from __future__ import annotations

import json
import shutil

import ase.io
import pytest
from ase import Atoms

from common.cli.app import run_app
from common.cli.testing import Row, check_row, generic_rows
from electrolytes.cli import app

CELL = [[12.0, 0, 0], [0, 12.0, 0], [0, 0, 12.0]]
COUNTS = {"Li": 8, "P": 8}


def _run(args, capsys):
    code = run_app(app, [str(a) for a in args])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.fixture(scope="module")
def _inputs(tmp_path_factory, make_brownian):
    """Brownian Li/P trajectories at three 'temperatures' (D grows with T), stored with
    ``time_fs`` every 5 fs although the walk's step is 10 fs; one without a cell; one short."""
    folder = tmp_path_factory.mktemp("electrolytes_cli")
    for k, (t, d) in enumerate(((300, 1e-5), (350, 2e-5), (400, 3.5e-5))):
        frames, _ = make_brownian(k, 200, COUNTS, {"Li": d, "P": d / 2}, 10.0, CELL,
                                  stored_dt_fs=5.0)
        ase.io.write(folder / f"md_{t}K.extxyz", frames)
    frames, _ = make_brownian(9, 200, COUNTS, {"Li": 1e-5, "P": 1e-5}, 10.0, CELL)
    ase.io.write(folder / "nocell.extxyz",
                 [Atoms(a.symbols, positions=a.positions) for a in frames])
    ase.io.write(folder / "short.extxyz", frames[:5])
    return folder


@pytest.fixture
def files(tmp_path, _inputs):
    shutil.copytree(_inputs, tmp_path, dirs_exist_ok=True)
    return {"tmp": tmp_path, **{p.stem: p for p in tmp_path.glob("*.extxyz")},
            "missing": tmp_path / "missing.extxyz"}


# -- the contract ------------------------------------------------------------------------------


def test_transport_json_is_the_report_exactly(files, capsys):
    from electrolytes.transport import transport_report

    trajs = [files[f"md_{t}K"] for t in (300, 350, 400)]
    code, out, err = _run(["transport", *trajs, "--dt-fs", "10", "--temperatures",
                           "300,350,400", "--charge", "Li=1", "--charge", "P=-1", "--json"],
                          capsys)
    assert code == 0, err
    rep = json.loads(out)
    want, notes = transport_report([str(p) for p in trajs], [300, 350, 400],
                                   {"Li": 1, "P": -1}, 10.0)
    assert rep == json.loads(json.dumps(want))
    assert set(rep) == {"runs", "arrhenius"} and len(rep["runs"]) == 3
    run = rep["runs"][0]
    assert set(run) == {"trajectory", "temperature_K", "species", "conductivity"}
    assert set(run["species"]["Li"]) == {"n_atoms", "D_cm2_per_s", "D_err_cm2_per_s"}
    assert set(run["conductivity"]) == {
        "nernst_einstein_S_per_cm", "nernst_einstein_err_S_per_cm", "einstein_helfand_S_per_cm",
        "einstein_helfand_err_S_per_cm", "haven_ratio"}
    assert set(rep["arrhenius"]["D"]["Li"]) == {"Ea_eV", "Ea_err_eV", "prefactor_cm2_per_s"}
    assert [ln for ln in err.splitlines() if ln] == [f"warning: {n}" for n in notes]


def test_dt_fs_wins_over_the_file_times_and_notes_are_warnings(files, capsys):
    traj = files["md_300K"]
    args = ["transport", traj, "--temperature-K", "300", "--charge", "Li=1", "--json"]
    code, out, err = _run([*args, "--dt-fs", "10"], capsys)
    assert code == 0, err
    d10 = json.loads(out)["runs"][0]["species"]["Li"]["D_cm2_per_s"]
    assert 0.5e-5 < d10 < 2e-5  # the walk's own D, 1e-5 cm²/s
    warnings = [ln for ln in err.splitlines() if ln]
    assert len(warnings) == 2 and all(ln.startswith("warning: ") for ln in warnings)
    assert "no charge given for P" in warnings[0] and "sum to +8 e" in warnings[1]
    code, out, _ = _run(args, capsys)  # the file says 5 fs per frame: D doubles exactly
    assert json.loads(out)["runs"][0]["species"]["Li"]["D_cm2_per_s"] == pytest.approx(2 * d10)


def test_transport_table_and_plots(files, capsys):
    plots = files["tmp"] / "figs"
    code, out, err = _run(["transport", files["md_300K"], "--dt-fs", "10", "--temperature-K",
                           "300", "--charge", "Li=1", "--charge", "P=-1", "--plots", plots],
                          capsys)
    assert code == 0, err
    assert "D(Li) =" in out and "Haven ratio" in out and not out.lstrip().startswith("{")
    assert [p.name for p in plots.iterdir()] == ["msd_00_md_300K.png"]


def test_solvation_json(tmp_path, make_li_shell, capsys):
    path = tmp_path / "shell.extxyz"
    ase.io.write(path, make_li_shell())
    code, out, err = _run(["solvation", path, "--center", "Li", "--json"], capsys)
    assert code == 0, err
    d = json.loads(out)
    assert set(d) == {"center", "cutoffs_A", "first_peak_A", "coordination", "compositions",
                      "mean_shell", "residence_times_ps", "residence_decayed"}
    assert d["compositions"] == {"Li+(EC)3(DEC)1": 1.0}
    assert all(ln.startswith("warning:") for ln in err.splitlines() if ln)


# -- bad input ----------------------------------------------------------------------------------


def R(id: str, *argv: str, kind: str = "error", needles: tuple = ()) -> Row:
    return Row(id, tuple(argv), kind, tuple(needles))


T = ("transport", "{md_300K}", "--dt-fs", "10", "--temperature-K", "300")

ROWS = [
    R("transport-no-cell", "transport", "{nocell}", "--dt-fs", "10", "--temperature-K", "300",
      needles=("nocell.extxyz", "no cell")),
    R("transport-species-not-present", *T, "--species", "Na",
      needles=("species Na is not in the trajectory",)),
    R("transport-charge-not-present", *T, "--charge", "Na=1", needles=("no Na atoms",)),
    R("transport-dt-0", *T[:2], "--dt-fs", "0", "--temperature-K", "300", kind="usage"),
    R("transport-dt-negative", *T[:2], "--dt-fs", "-5", "--temperature-K", "300",
      kind="usage"),
    R("transport-too-few-frames", "transport", "{short}", "--dt-fs", "10", "--temperature-K",
      "300", needles=("too few frames",)),
    R("transport-temperatures-not-one-per-trajectory", "transport", "{md_300K}", "{md_350K}",
      "--dt-fs", "10", "--temperatures", "300", needles=("--temperatures", "2 trajectories")),
    R("transport-no-temperature", "transport", "{md_300K}", "--dt-fs", "10",
      needles=("--temperature-K",)),
    R("transport-two-temperatures", *T, "--temperatures", "300",
      needles=("--temperatures",)),
    R("transport-temperature-0", *T[:4], "--temperature-K", "0", kind="usage"),
    R("transport-temperatures-negative", *T[:4], "--temperatures", "300,-1", kind="usage"),
    R("transport-temperatures-word", *T[:4], "--temperatures", "hot", kind="usage"),
    R("transport-bad-charge", *T, "--charge", "Li", needles=("--charge", "ELEMENT=CHARGE")),
    R("transport-bad-window", *T, "--window", "0.5,0.1", needles=("--window",)),
    R("transport-blocks-1", *T, "--blocks", "1", kind="usage"),
    R("transport-missing-file", "transport", "{missing}", "--dt-fs", "10", "--temperature-K",
      "300", needles=("missing.extxyz",)),
    R("transport-no-time-step", "transport", "{nocell}", "--temperature-K", "300",
      needles=("--dt-fs",)),
    R("solvation-center-not-present", "solvation", "{md_300K}", "--center", "Na",
      needles=("Na",)),
    R("solvation-no-cell", "solvation", "{nocell}", needles=("no periodic cell",)),
    R("solvation-no-ligands", "solvation", "{md_300K}", needles=("no O or F",)),
    R("solvation-r-max-0", "solvation", "{md_300K}", "--r-max-A", "0", kind="usage"),
]


@pytest.mark.parametrize("row", [pytest.param(r, id=r.id) for r in generic_rows(app) + ROWS])
def test_bad_input(row, files, capsys):
    check_row(app, row, files["tmp"], capsys, files)


def test_help_ends_with_an_example_and_every_option_has_help():
    import typer

    from common.cli.testing import _commands

    for path, cmd in _commands(typer.main.get_command(app)):
        assert all(getattr(p, "help", None) for p in cmd.params), path
        assert (cmd.epilog or "").startswith("Example:"), path
        assert len([ln for ln in cmd.epilog.splitlines() if "mlp-" in ln]) == 1, path


# -- the pipeline commands ---------------------------------------------------------------------


def test_build_json_and_file(tmp_path, capsys):
    import ase.io

    out = tmp_path / "cell.extxyz"
    code, stdout, err = _run(["build", "--solvents", "EC:DEC=1:1", "--salt-M", "1",
                              "--atoms", "84", "--out", out, "--json"], capsys)
    assert code == 0, err
    d = json.loads(stdout)
    assert d["counts"] == {"EC": 4, "DEC": 2, "Li": 1, "PF6": 1} and d["n_atoms"] == 84
    cell = ase.io.read(out)
    assert len(cell) == 84 and cell.pbc.all()
    assert abs(cell.get_volume() - d["edge_A"] ** 3) < 1e-6
    code, stdout, err = _run(["build", "--counts", "EC=3,Li=1,PF6=1", "--density-g-cm3", "1.3",
                              "--out", tmp_path / "c2.extxyz"], capsys)
    assert code == 0, err and "1.300 g/cm³" in stdout


def test_md_with_any_potential_nvt_and_npt(tmp_path, capsys):
    """A packed cell runs with Lennard-Jones through `md` (NVT, then NPT at 1 bar)."""
    cell = tmp_path / "cell.extxyz"
    assert _run(["build", "--counts", "EC=2,Li=1,PF6=1", "--density-g-cm3", "1.2", "--out",
                 cell], capsys)[0] == 0
    lj = ["--potential", "lj", "--param", "epsilon=0.002", "--param", "sigma=0.5"]
    code, stdout, err = _run(["md", cell, *lj, "--steps", "20", "--temperatures", "300",
                              "--out", tmp_path / "nvt", "--json"], capsys)
    assert code == 0, err
    assert json.loads(stdout)["ensemble"] == "nvt"
    code, stdout, err = _run(["md", cell, *lj, "--steps", "20", "--ensemble", "npt",
                              "--pressure-bar", "1", "--out", tmp_path / "npt", "--json"],
                             capsys)
    assert code == 0, err
    s = json.loads(stdout)
    assert s["ensemble"] == "npt" and s["mean_density_g_per_cm3"] > 0


P = ("build", "--out", "{tmp}/cell.extxyz")

PIPELINE_ROWS = [
    R("build-atoms-and-counts", *P, "--atoms", "84", "--counts", "EC=4,Li=1,PF6=1",
      needles=("--atoms",)),
    R("build-neither", *P, needles=("--atoms",)),
    R("build-zero-salt-molecules", *P, "--atoms", "40", needles=("zero LiPF6", "--atoms")),
    R("build-zero-fec", *P, "--atoms", "90", "--fec-wt-pct", "2", needles=("zero FEC",)),
    R("build-too-dense", *P, "--atoms", "84", "--density-g-cm3", "2.5",
      needles=("cannot be packed", "--density-g-cm3")),
    R("build-net-charge", *P, "--counts", "EC=2,Li=1", needles=("net charge",)),
    R("build-bad-counts", *P, "--counts", "EC4", needles=("--counts",)),
    R("build-bad-solvents", *P, "--atoms", "84", "--solvents", "EC:DEC=1",
      needles=("EC:DEC=1:1",)),
    R("build-bad-basis", *P, "--atoms", "84", "--by", "mass", needles=("volume or mole",)),
    R("build-unknown-molecule", *P, "--counts", "XYZ((=2", needles=("SMILES",)),
    R("build-density-0", *P, "--atoms", "84", "--density-g-cm3", "0", kind="usage"),
    R("train-missing-data", "train", "{missing}", "--out", "{tmp}/model",
      needles=("missing.extxyz",)),
    R("train-unknown-config", "train", "{md_300K}", "--out", "{tmp}/model", "--config",
      "huge", needles=("--config",)),
    R("train-out-is-a-file", "train", "{md_300K}", "--out", "{md_350K}",
      needles=("a file is in the way",)),
    R("md-unknown-potential", "md", "{md_300K}", "--potential", "nothing", "--out",
      "{tmp}/md", needles=("--potential",)),
    R("md-npt-without-pressure", "md", "{md_300K}", "--potential", "lj", "--param",
      "epsilon=0.01", "--param", "sigma=2", "--ensemble", "npt", "--out", "{tmp}/md",
      needles=("--pressure-bar",)),
    R("md-pressure-with-nvt", "md", "{md_300K}", "--potential", "lj", "--param",
      "epsilon=0.01", "--param", "sigma=2", "--pressure-bar", "1", "--out", "{tmp}/md",
      needles=("--pressure-bar",)),
    R("active-learn-bad-window", "active-learn", "{md_300K}", "{md_300K}", "--out", "{tmp}/al",
      "--trust-lo-eV-A", "3", "--trust-hi-eV-A", "1", needles=("--trust-lo-eV-A",)),
    R("active-learn-missing-data", "active-learn", "{md_300K}", "{missing}", "--out",
      "{tmp}/al", needles=("missing.extxyz",)),
    R("active-learn-temperature-0", "active-learn", "{md_300K}", "{md_300K}", "--out",
      "{tmp}/al", "--temperatures", "0", kind="usage"),
    R("screen-missing-model", "screen", "--model", "{tmp}/nomodel", "--out", "{tmp}/s",
      needles=("nomodel",)),
    R("screen-unknown-config", "screen", "--model", "{tmp}", "--out", "{tmp}/s", "--config",
      "huge", needles=("--config",)),
    R("case-study-unknown-scale", "case-study", "--scale", "huge", "--out", "{tmp}/cs",
      needles=("--scale",)),
]


@pytest.mark.parametrize("row", [pytest.param(r, id=r.id) for r in PIPELINE_ROWS])
def test_pipeline_bad_input(row, files, capsys):
    check_row(app, row, files["tmp"], capsys, files)
