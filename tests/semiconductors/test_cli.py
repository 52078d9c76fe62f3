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
def files(tmp_path, _inputs):
    shutil.copytree(_inputs, tmp_path, dirs_exist_ok=True)
    return {"tmp": tmp_path, "ar": tmp_path / "ar.extxyz", "mol": tmp_path / "molecule.extxyz",
            "afile": tmp_path / "afile.txt", "done": tmp_path / "done",
            "missing": tmp_path / "missing.extxyz"}


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
