"""mlp-atmospheric: the JSON contract of `qct` on two H atoms with a Lennard-Jones potential
(few trajectories), `rates` on QCT results and on a k(T) table, and the bad-input table."""

from __future__ import annotations

import json
import shutil

import ase.io
import numpy as np
import pytest
from ase import Atoms

from atmospheric.cli import app
from common.cli.app import run_app
from common.cli.testing import Row, check_row, generic_rows

QCT_KEYS = {"method", "temperature_K", "rate_cm3_per_molecule_s", "rate_err_cm3_per_molecule_s",
            "b_max_A", "n_trajectories", "n_reactive", "channels"}
LJ = ("-p", "lj", "--param", "epsilon=0.05", "--param", "sigma=1.0", "--param", "rc=3.0")
FAST = ("--trajectories", "12", "--b-max-A", "2", "--fixed-b-max", "--batch-size", "12")


def _run(args, capsys):
    code = run_app(app, [str(a) for a in args])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _qct_like(t: float, k: float) -> dict:
    return {"method": "QCT", "temperature_K": t, "rate_cm3_per_molecule_s": k,
            "rate_err_cm3_per_molecule_s": 0.05 * k, "n_reactive": 100, "reactants": "H + H",
            "channels": {"capture": {"n": 100, "rate_cm3_per_molecule_s": k,
                                     "rate_err_cm3_per_molecule_s": 0.05 * k}}}


@pytest.fixture(scope="module")
def _inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("atmospheric_cli")
    ase.io.write(folder / "h.xyz", Atoms("H"))
    ase.io.write(folder / "h2.xyz", Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]]))
    ase.io.write(folder / "periodic.extxyz", Atoms("H", cell=[5, 5, 5], pbc=True))
    for t, k in ((250, 1.0e-11), (300, 1.5e-11), (350, 2.0e-11)):
        (folder / f"q{t}").mkdir()
        (folder / f"q{t}" / "qct.json").write_text(json.dumps(_qct_like(t, k)))
    (folder / "one_T.csv").write_text("temperature_K,rate_cm3_per_molecule_s\n300,1e-11\n")
    (folder / "kT.csv").write_text("temperature_K,rate_cm3_per_molecule_s,"
                                   "rate_err_cm3_per_molecule_s\n250,1e-11,1e-12\n"
                                   "300,2e-11,2e-12\n350,3e-11,3e-12\n")
    (folder / "zero.csv").write_text("temperature_K,rate_cm3_per_molecule_s\n250,0\n300,1e-11\n")
    (folder / "nocol.csv").write_text("T,k\n250,1e-11\n300,2e-11\n")
    (folder / "notjson.json").write_text("{not json")
    (folder / "full").mkdir()
    (folder / "full" / "x").write_text("x")
    return folder


@pytest.fixture
def files(tmp_path, _inputs):
    shutil.copytree(_inputs, tmp_path, dirs_exist_ok=True)
    out = {p.name.split(".")[0]: p for p in tmp_path.iterdir()}
    return {**out, "tmp": tmp_path, "missing": tmp_path / "missing.xyz"}


# -- the contracts -------------------------------------------------------------------------------


def test_qct_contract(files, capsys):
    out_dir = files["tmp"] / "qct"
    code, out, err = _run(["qct", files["h"], files["h"], *LJ, "--temperature-K", "1000",
                           "--react", "capture=distance:0:1<1.2", *FAST, "--seed", "3",
                           "--out", out_dir, "--json"], capsys)
    assert code == 0, err
    res = json.loads(out)
    assert QCT_KEYS <= set(res)
    assert res["method"] == "QCT" and res["temperature_K"] == 1000.0
    assert res["n_trajectories"] == 12 and res["b_max_A"] == 2.0
    assert set(res["channels"]) == {"capture"} and {"n", "fraction"} <= set(
        res["channels"]["capture"])
    assert json.loads((out_dir / "qct.json").read_text()) == res
    # warnings (here: the outer ring still reacts at a fixed b_max) name the command's flags
    assert all(ln.startswith("warning: ") and "b_max_A" not in ln
               for ln in err.splitlines() if ln)


def test_qct_quasi_classical_internal_states(files, capsys):
    """--internal qc-zpe: the H2 (an LJ dimer, r_min = 2^(1/6) sigma) is relaxed on the
    potential and its one mode gets hbar omega / 2 with omega = sqrt(k / mu),
    k = 72 eps / r_min^2 the LJ curvature at the minimum."""
    import math

    from ase import units

    out_dir = files["tmp"] / "qc"
    code, out, err = _run(["qct", files["h"], files["h2"], *LJ, "--temperature-K", "300",
                           "--react", "capture=distance:0:1<1.0", *FAST, "--internal",
                           "qc-zpe", "--max-time-fs", "20", "--out", out_dir, "--json"],
                          capsys)
    assert code == 0, err
    res = json.loads(out)
    b = res["internal_states"]["B"]
    assert res["internal"] == "qc-zpe" and res["internal_states"]["A"] == {"n_modes": 0}
    k = 72 * 0.05 / (2 ** (1 / 6)) ** 2
    mu = Atoms("H2").get_masses().sum() / 4
    hw = units._hbar * units.J * units.s * math.sqrt(k / mu)
    assert b["n_modes"] == 1 and b["linear"]
    assert b["zpe_eV"] == pytest.approx(hw / 2, rel=1e-3)
    assert b["mean_vibrational_eV"] == pytest.approx(b["zpe_eV"], rel=1e-5)


def test_rates_from_qct_folders(files, capsys):
    out_dir = files["tmp"] / "kin"
    code, out, err = _run(["rates", files["q250"], files["q300"], files["q350"] / "qct.json",
                           "--out", out_dir, "--json"], capsys)
    assert code == 0, err
    res = json.loads(out)
    assert {"reactants", "total", "channels", "branching", "mechanism", "files"} <= set(res)
    assert res["reactants"] == ["H", "H"]
    assert {"A_cm3_per_molecule_s", "Ea_kcal_per_mol", "Ea_eV", "E_over_R_K"} <= set(
        res["total"])
    assert res["total"]["Ea_kcal_per_mol"] > 0
    assert res["mechanism"][0].startswith("{1.} H + H = capture :")
    assert (out_dir / "mechanism.kpp").read_text().count("=") >= 1
    assert {p.name for p in out_dir.iterdir()} == {"kinetics.json", "rates.csv",
                                                   "mechanism.kpp", "arrhenius.png"}


def test_rates_from_a_table(files, capsys):
    code, out, err = _run(["rates", files["kT"], "--reactants", "OH,C5H8", "--out",
                           files["tmp"] / "kin"], capsys)
    assert code == 0, err
    assert "Ea =" in out and "{1.} OH + C5H8" not in out  # no channels in a bare k(T) table
    res = json.loads((files["tmp"] / "kin" / "kinetics.json").read_text())
    assert res["reactants"] == ["OH", "C5H8"] and res["total"]["n_points"] == 3


# -- bad input -----------------------------------------------------------------------------------


def R(id: str, *argv: str, kind: str = "error", needles: tuple = ()) -> Row:
    return Row(id, tuple(argv), kind, tuple(needles))


Q = ("qct", "{h}", "{h}", *LJ, "--temperature-K", "1000", "--out", "{tmp}/qct")

ROWS = [
    R("qct-criterion-on-missing-atoms", *Q, "--react", "distance:0:5<1.2",
      needles=("--react", "names atom 5", "2 atoms")),
    R("qct-reactants-overlap-at-start", *Q, "--react", "distance:0:1<1.2", "--d0-A", "2",
      "--b-max-A", "1", "--fixed-b-max", needles=("--d0-A", "overlap")),
    R("qct-criterion-holds-at-start", *Q, "--react", "distance:0:1>0.5", *FAST,
      needles=("--react", "already holds")),
    R("qct-unreadable-criterion", *Q, "--react", "close:0:1", needles=("--react",)),
    R("qct-criterion-same-atom", *Q, "--react", "distance:1:1<2", needles=("--react",)),
    R("qct-trajectories-0", *Q, "--trajectories", "0", kind="usage"),
    R("qct-temperature-0", "qct", "{h}", "{h}", *LJ, "--temperature-K", "0", "--out",
      "{tmp}/qct", kind="usage"),
    R("qct-old-replicas", *Q, "--replicas", "10", kind="usage"),
    R("qct-internal-unknown", *Q, "--internal", "hot", kind="usage"),
    R("qct-timestep-0", *Q, "--timestep-fs", "0", kind="usage"),
    R("qct-periodic-reactant", "qct", "{periodic}", "{h}", *LJ, "--temperature-K", "300",
      "--out", "{tmp}/qct", needles=("periodic.extxyz", "periodic")),
    R("qct-missing-reactant", "qct", "{missing}", "{h}", *LJ, "--temperature-K", "300",
      "--out", "{tmp}/qct", needles=("missing.xyz", "not found")),
    R("qct-unknown-potential", "qct", "{h}", "{h2}", "-p", "nosuch", "--temperature-K", "300",
      "--out", "{tmp}/qct", needles=("--potential",)),
    R("qct-out-not-empty", "qct", "{h}", "{h2}", *LJ, "--temperature-K", "300", "--out",
      "{full}", needles=("full", "not empty")),
    R("qct-device-cuda-without-gpu", *Q, "--device", "cuda", needles=("--device", "CUDA")),
    R("rates-one-temperature", "rates", "{one_T}", "--reactants", "A,B", "--out", "{tmp}/k",
      needles=("one_T.csv", "at least 2 temperatures")),
    R("rates-missing-column", "rates", "{nocol}", "--reactants", "A,B", "--out", "{tmp}/k",
      needles=("nocol.csv", "missing column")),
    R("rates-zero-rate", "rates", "{zero}", "--reactants", "A,B", "--out", "{tmp}/k",
      needles=("zero.csv", "250 K")),
    R("rates-table-without-reactants", "rates", "{kT}", "--out", "{tmp}/k",
      needles=("--reactants",)),
    R("rates-not-json", "rates", "{notjson}", "--out", "{tmp}/k", needles=("notjson.json",)),
    R("rates-missing-file", "rates", "{missing}", "--out", "{tmp}/k", needles=("missing.xyz",)),
    R("rates-modified-needs-three", "rates", "{q250}", "{q300}", "--modified", "--out",
      "{tmp}/k", needles=("at least 3 temperatures",)),
]


def _params(rows):
    import torch

    out = []
    for r in rows:
        skip = "cuda-without-gpu" in r.id and torch.cuda.is_available()
        out.append(pytest.param(r, id=r.id, marks=[pytest.mark.skip("has CUDA")] if skip else []))
    return out


@pytest.mark.parametrize("row", _params(generic_rows(app) + ROWS))
def test_bad_input(row, files, capsys):
    check_row(app, row, files["tmp"], capsys, files)


def test_help_ends_with_an_example_and_every_option_has_help():
    import typer

    from common.cli.testing import _commands

    for path, cmd in _commands(typer.main.get_command(app)):
        assert all(getattr(p, "help", None) for p in cmd.params), path
        assert (cmd.epilog or "").startswith("Example:"), path
        assert len([ln for ln in cmd.epilog.splitlines() if "mlp-" in ln]) == 1, path
    assert "number of QCT trajectories" in next(
        p.help for p in typer.main.get_command(app).commands["qct"].params
        if p.name == "trajectories")


# -- tps bad input ------------------------------------------------------------------------------

T = ("tps", "{h2}", *LJ, "--cv", "distance:0:1", "--temperature-K", "300", "--out", "{tmp}/tis")

TPS_ROWS = [
    R("tps-states-overlap", *T, "--state-a", "0.5,1.0", "--state-b", "0.9,2.0",
      needles=("--state-b", "overlap")),
    R("tps-cv-on-missing-atoms", "tps", "{h2}", *LJ, "--cv", "distance:0:4", "--state-a",
      "0.5,1.0", "--state-b", "2.0,3.0", "--temperature-K", "300", "--out", "{tmp}/tis",
      needles=("--cv", "atom index 4")),
    R("tps-interface-outside-states", *T, "--state-a", "0.5,1.0", "--state-b", "2.0,3.0",
      "--interfaces", "1.2,2.5", needles=("--interfaces", "outside")),
    R("tps-interface-inside-a", *T, "--state-a", "0.5,1.0", "--state-b", "2.0,3.0",
      "--interfaces", "0.7", needles=("--interfaces", "outside")),
    R("tps-bad-range", *T, "--state-a", "1.0", "--state-b", "2.0,3.0",
      needles=("--state-a", "bad range")),
    R("tps-structure-not-in-a", *T, "--state-a", "1.0,1.5", "--state-b", "2.0,3.0",
      needles=("h2.xyz", "not in state A")),
    R("tps-friction-negative", *T, "--state-a", "0.5,1.0", "--state-b", "2.0,3.0",
      "--friction-per-ps", "-1", kind="usage"),
    R("tps-shots-0", *T, "--state-a", "0.5,1.0", "--state-b", "2.0,3.0", "--shots", "0",
      kind="usage"),
]


@pytest.mark.parametrize("row", _params(TPS_ROWS))
def test_tps_bad_input(row, files, capsys):
    check_row(app, row, files["tmp"], capsys, files)


# -- build, export -------------------------------------------------------------------------------


def test_export_writes_kpp_mcm_json_csv_from_rates(files, capsys):
    kin, mech = files["tmp"] / "kin", files["tmp"] / "mech"
    assert _run(["rates", files["q250"], files["q300"], files["q350"], "--reactants",
                 "OH,C5H8", "--out", kin], capsys)[0] == 0
    code, out, err = _run(["export", kin, "--out", mech, "--json"], capsys)
    assert code == 0, err
    res = json.loads(out)
    kpp = (mech / "mechanism.kpp").read_text().splitlines()
    mcm = (mech / "mechanism.mcm").read_text().splitlines()
    assert kpp[0] == "#EQUATIONS" and kpp[1] == res["mechanism"][0]
    rate = kpp[1].split(":", 1)[1].strip().rstrip(";").strip()
    assert "EXP(" in rate and mcm[0] == f"% {rate} : OH + C5H8 = capture ;"
    assert json.loads((mech / "rates.json").read_text())["channels"][0]["channel"] == "capture"
    assert (mech / "rates.csv").read_text().startswith("channel,")


def test_build_gives_propene_channels_as_criteria(files, capsys):
    code, out, err = _run(["build", "propene", "--out", files["tmp"] / "b", "--json"], capsys)
    assert code == 0, err
    res = json.loads(out)
    assert res["formula"] == "C3H6"
    assert [c["name"] for c in res["channels"]] == ["add_C1", "add_C2", "abstraction",
                                                    "abstraction_vinylic"]
    assert res["channels"][0]["criteria"] == ["add_C1=distance:0:2<1.6"]
    # the three methyl (allylic) H atoms, and the three H atoms on the sp2 carbons
    mol = ase.io.read(files["tmp"] / "b" / "reactants" / "voc.xyz")
    for ch, carbons in ((res["channels"][2], {2}), (res["channels"][3], {0, 1})):
        assert len(ch["criteria"]) == 3 and ch["kind"] == "abstraction"
        for h in ch["sites"]:
            assert mol[h].symbol == "H"
            d = [mol.get_distance(h, c) for c in range(3)]
            assert int(np.argmin(d)) in carbons and min(d) < 1.15
        assert [f"{ch['name']}=distance:0:{h + 2}<1.1" for h in ch["sites"]] == ch["criteria"]


PIPE_ROWS = [
    R("export-not-kinetics", "export", "{kT}", "--out", "{tmp}/m",
      needles=("kT.csv", "kinetics.json")),
    R("build-bad-smiles", "build", "C1=CC(", "--out", "{tmp}/b", needles=("SMILES",)),
    R("sample-without-build", "sample", "{tmp}", needles=("channels.json", "build")),
    R("train-without-sample", "train", "{tmp}", needles=("labelled.extxyz", "sample")),
    R("case-study-unknown-scale", "case-study", "--scale", "huge", "--out", "{tmp}/c",
      needles=("--scale",)),
]


@pytest.mark.parametrize("row", _params(PIPE_ROWS))
def test_pipeline_bad_input(row, files, capsys):
    check_row(app, row, files["tmp"], capsys, files)
