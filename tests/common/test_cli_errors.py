"""Every bad input through every ``mlp-*`` app: exit 2, one line (``error:``, or click's usage
message for a usage mistake), nothing on stdout, nothing left behind that a rerun would trip
over. The generic part of the table comes from :func:`common.cli.testing.generic_rows`; the
rows below are the bad values each command must refuse before it writes anything."""

from __future__ import annotations

import json

import ase.io
import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

from catalysis.cli import app as catalysis_app
from common.cli.main import app as cases_app
from common.cli.testing import Row, check_row, generic_rows


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def _labelled(n: int, seed: int = 0) -> list:
    frames = []
    for k in range(n):
        a = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 1))
        a.rattle(0.05, seed=seed + k)
        a.calc = EMT()
        e, f = a.get_potential_energy(), a.get_forces()
        a.calc = SinglePointCalculator(a, energy=e, forces=f)
        frames.append(a)
    return frames


@pytest.fixture(scope="module")
def _inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli_inputs")
    _make_inputs(folder)
    return folder


@pytest.fixture
def files(tmp_path, _inputs):
    """The inputs the rows refer to as {name}, copied into the test's own folder."""
    import shutil

    shutil.copytree(_inputs, tmp_path, dirs_exist_ok=True)
    return _paths(tmp_path)


def _make_inputs(tmp_path):
    from common.potential.analytic import AnalyticAdapter

    cu = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
    ase.io.write(tmp_path / "cu.extxyz", cu)
    nan = cu.copy()
    nan.positions[3, 1] = np.nan
    ase.io.write(tmp_path / "nan.extxyz", nan)
    ase.io.write(tmp_path / "labelled.extxyz", _labelled(6))
    bad = _labelled(6, seed=10)
    bad[2].calc.results["energy"] = float("nan")
    ase.io.write(tmp_path / "labelled_nan.extxyz", bad)
    ase.io.write(tmp_path / "unlabelled.extxyz", [a.copy() for a in _labelled(4)])
    (tmp_path / "afile.txt").write_text("not a folder\n")
    AnalyticAdapter("morse", {"epsilon": 0.3429, "rho0": 3.894, "r0": 2.866}).save(
        tmp_path / "model")
    (tmp_path / "notmodel").mkdir()
    (tmp_path / "oldmodel").mkdir()
    (tmp_path / "oldmodel" / "mlp-cases-model.json").write_text("{}")
    (tmp_path / "notevents.json").write_text(json.dumps({"nothing": 1}))
    (tmp_path / "split").mkdir()
    for name in ("train", "valid", "test"):
        (tmp_path / "split" / f"{name}.extxyz").write_text("")


def _paths(tmp_path):
    return {"tmp": tmp_path, "cu": tmp_path / "cu.extxyz", "nan": tmp_path / "nan.extxyz",
            "labelled": tmp_path / "labelled.extxyz",
            "labelled_nan": tmp_path / "labelled_nan.extxyz",
            "unlabelled": tmp_path / "unlabelled.extxyz", "afile": tmp_path / "afile.txt",
            "model": tmp_path / "model", "notmodel": tmp_path / "notmodel",
            "oldmodel": tmp_path / "oldmodel",
            "notevents": tmp_path / "notevents.json", "split": tmp_path / "split",
            "missing": tmp_path / "missing.extxyz"}


def R(id: str, *argv: str, kind: str = "error", needles: tuple = (), xfail: str | None = None
      ) -> Row:
    return Row(id, tuple(argv), kind, tuple(needles), xfail)


MD = ("md", "{cu}", "-p", "lj", "--param", "epsilon=0.0104", "--param", "sigma=2.3",
      "--out", "{tmp}/run")

CASES_ROWS = [
    # mlp-cases md: numbers the run cannot use are usage errors; the rest fail before writing
    R("md-steps-0", *MD, "--steps", "0", kind="usage"),
    R("md-traj-every-0", *MD, "--traj-every", "0", kind="usage"),
    R("md-checkpoint-every-negative", *MD, "--checkpoint-every", "-5", kind="usage"),
    R("md-batch-size-0", *MD, "--batch-size", "0", kind="usage"),
    R("md-batch-size-negative", *MD, "--batch-size", "-3", kind="usage"),
    R("md-batch-size-word", *MD, "--batch-size", "many", kind="usage"),
    R("md-timestep-0", *MD, "--timestep-fs", "0", kind="usage"),
    R("md-timestep-nan", *MD, "--timestep-fs", "nan", kind="usage"),
    R("md-friction-0", *MD, "--friction-per-ps", "0", kind="usage"),
    R("md-temperature-negative", *MD, "--temperature-K", "-1", kind="usage"),
    R("md-replicas-0", *MD, "--replicas", "0", kind="usage"),
    R("md-ensemble-unknown", *MD, "--ensemble", "nph", kind="usage"),
    R("md-on-blowup-unknown", *MD, "--on-blowup", "ignore", kind="usage"),
    R("md-device-unknown", *MD, "--device", "tpu", needles=("--device", "unknown device")),
    R("md-device-cuda-without-gpu", *MD, "--device", "cuda", needles=("--device", "CUDA")),
    R("md-out-is-a-file", "md", "{cu}", "-p", "lj", "--param", "epsilon=0.0104",
      "--param", "sigma=2.3", "--out", "{afile}", needles=("afile.txt",)),
    R("md-nan-positions", "md", "{nan}", "-p", "lj", "--param", "epsilon=0.0104",
      "--param", "sigma=2.3", "--out", "{tmp}/run", needles=("atom 3",)),
    R("md-missing-structures", "md", "{missing}", "-p", "lj", "--out", "{tmp}/run",
      needles=("missing.extxyz", "not found")),
    R("md-unknown-potential", "md", "{cu}", "-p", "nosuch", "--out", "{tmp}/run",
      needles=("--potential",)),
    R("md-bad-import-path", "md", "{cu}", "-p", "no_such_pkg_xyz.mod:Pot", "--out",
      "{tmp}/run", needles=("--potential",)),
    R("md-bad-param", *MD, "--param", "sigma", needles=("--param", "NAME=VALUE")),
    R("md-unknown-param", *MD, "--param", "gamma=2", needles=("--param",)),
    R("md-npt-without-pressure", *MD, "--ensemble", "npt", needles=("--pressure-bar",)),
    R("md-pressure-without-npt", *MD, "--pressure-bar", "1.0", needles=("--pressure-bar",)),
    R("md-restart-nothing", *MD, "--restart", needles=("--restart",)),
    # label: refused before anything is computed
    R("label-unwritable-db", "label", "{cu}", "--calc", "emt", "--db", "/proc/labels.db",
      needles=("/proc/labels.db", "cannot be written")),
    R("label-postgres-without-driver", "label", "{cu}", "--calc", "emt", "--db",
      "postgresql://nobody@localhost:1/labels", needles=("psycopg2",)),
    R("label-unknown-calc", "label", "{cu}", "--calc", "gaussian", "--db", "{tmp}/l.db",
      needles=("--calc",)),
    R("label-workers-0", "label", "{cu}", "--calc", "emt", "--db", "{tmp}/l.db", "--workers",
      "0", kind="usage"),
    R("label-missing-structures", "label", "{missing}", "--calc", "emt", "--db", "{tmp}/l.db",
      needles=("not found",)),
    # dataset: validated before anything is written
    R("split-nan-label", "dataset", "split", "{labelled_nan}", "--out", "{tmp}/parts",
      needles=("labelled_nan.extxyz frame 2", "nonfinite_energy")),
    R("split-unlabelled", "dataset", "split", "{unlabelled}", "--out", "{tmp}/parts",
      needles=("missing_energy",)),
    R("split-two-fractions", "dataset", "split", "{labelled}", "--out", "{tmp}/parts",
      "--fractions", "0.5,0.5", needles=("--fractions",)),
    R("split-empty-part", "dataset", "split", "{labelled}", "--out", "{tmp}/parts",
      "--fractions", "0.9,0.05,0.05", needles=("--fractions",)),
    R("split-files-exist", "dataset", "split", "{labelled}", "--out", "{split}",
      needles=("already exists", "--overwrite")),
    R("convert-unknown-format", "dataset", "convert", "{labelled}", "--to", "lammps", "--out",
      "{tmp}/x", needles=("--to",)),
    R("convert-nan-label", "dataset", "convert", "{labelled_nan}", "--to", "extxyz", "--out",
      "{tmp}/x.extxyz", needles=("frame 2",)),
    R("convert-output-exists", "dataset", "convert", "{labelled}", "--to", "extxyz", "--out",
      "{afile}", needles=("already exists", "--overwrite")),
    R("convert-type-map-not-deepmd", "dataset", "convert", "{labelled}", "--to", "extxyz",
      "--out", "{tmp}/x.extxyz", "--type-map", "Cu", needles=("--type-map",)),
    R("validate-nan", "dataset", "validate", "{labelled_nan}", needles=("frame 2",)),
    R("demo-unknown-scale", "demo", "--scale", "huge", "--out", "{tmp}/demo",
      needles=("--scale",)),
]

CMD = ("md", "{cu}", "--model", "{model}", "--out", "{tmp}/run")
TRAIN = ("train", "{labelled}", "--out", "{tmp}/trained")

CATALYSIS_ROWS = [
    # renamed flags are gone, not aliases
    R("md-old-frame-every", *CMD, "--frame-every", "5", kind="usage"),
    R("md-old-trajectories", *CMD, "--trajectories", "3", kind="usage"),
    R("train-old-ensemble", *TRAIN, "--ensemble", "2", kind="usage"),
    R("md-traj-every-0", *CMD, "--traj-every", "0", kind="usage"),
    R("md-checkpoint-every-negative", *CMD, "--checkpoint-every", "-1", kind="usage"),
    R("md-batch-size-0", *CMD, "--batch-size", "0", kind="usage"),
    R("md-device-unknown", *CMD, "--device", "gpu", needles=("--device",)),
    R("md-device-cuda-without-gpu", *CMD, "--device", "cuda", needles=("--device", "CUDA")),
    R("md-not-a-model", "md", "{cu}", "--model", "{notmodel}", "--out", "{tmp}/run",
      needles=("notmodel",)),
    R("md-nan-positions", "md", "{nan}", "--model", "{model}", "--out", "{tmp}/run",
      needles=("atom 3",)),
    R("md-out-is-a-file", "md", "{cu}", "--model", "{model}", "--out", "{afile}",
      needles=("afile.txt",)),
    R("md-restart-nothing", *CMD, "--restart", needles=("--restart",)),
    R("train-committee-0", *TRAIN, "--committee", "0", kind="usage"),
    R("train-device-cuda-without-gpu", *TRAIN, "--device", "cuda", needles=("--device",)),
    R("train-nan-label", "train", "{labelled_nan}", "--out", "{tmp}/trained",
      needles=("frame 2",)),
    R("train-empty-valid-part", *TRAIN, "--fractions", "0.9,0.05,0.05",
      needles=("--fractions",)),
    R("train-out-exists", "train", "{labelled}", "--out", "{oldmodel}",
      needles=("already exists", "--overwrite")),
    R("build-size-two-numbers", "build", "--out", "{tmp}/s.extxyz", "--size", "3,3",
      needles=("--size",)),
    R("build-count-word", "build", "--out", "{tmp}/s.extxyz", "--adsorbate", "CO:two",
      needles=("--adsorbate",)),
    R("build-unknown-adsorbate", "build", "--out", "{tmp}/s.extxyz", "--adsorbate", "XeF6",
      needles=("--adsorbate",)),
    R("build-coverage-too-low", "build", "--out", "{tmp}/s.extxyz", "--size", "3,3,3",
      "--adsorbate", "CO", "--coverage-ML", "0.001", needles=("--coverage-ML",)),
    R("build-fixed-layers-negative", "build", "--out", "{tmp}/s.extxyz", "--fixed-layers",
      "-1", kind="usage"),
    R("sample-rattle-word", "sample", "{cu}", "--out", "{tmp}/s.extxyz", "--rattle-A", "abc",
      kind="usage"),
    R("sample-rattle-one-number", "sample", "{cu}", "--out", "{tmp}/s.extxyz", "--rattle-A",
      "0.1", kind="usage"),
    R("sample-n-0", "sample", "{cu}", "--out", "{tmp}/s.extxyz", "--n", "0", kind="usage"),
    R("sample-unknown-strategy", "sample", "{cu}", "--out", "{tmp}/s.extxyz", "--strategy",
      "shake", needles=("--strategy",)),
    R("sample-missing-structures", "sample", "{missing}", "--out", "{tmp}/s.extxyz",
      needles=("not found",)),
    R("events-dt-0", "events", "{cu}", "--dt-fs", "0", kind="usage"),
    R("events-missing-file", "events", "{missing}", needles=("missing.extxyz",)),
    R("barriers-not-events-json", "barriers", "{notevents}", "--model", "{model}",
      needles=("events",)),
    R("barriers-images-0", "barriers", "{notevents}", "--model", "{model}", "--images", "0",
      kind="usage"),
    R("case-study-unknown-scale", "case-study", "--scale", "huge", "--out", "{tmp}/cs",
      needles=("tiny",)),
]


def _params(rows):
    out = []
    for r in rows:
        marks = [pytest.mark.xfail(reason=r.xfail, strict=False)] if r.xfail else []
        if "cuda-without-gpu" in r.id and _cuda():
            marks.append(pytest.mark.skip(reason="this machine has CUDA"))
        out.append(pytest.param(r, id=r.id, marks=marks))
    return out


@pytest.mark.parametrize("row", _params(generic_rows(cases_app) + CASES_ROWS))
def test_mlp_cases_bad_input(row, files, capsys):
    check_row(cases_app, row, files["tmp"], capsys, files)


@pytest.mark.parametrize("row", _params(generic_rows(catalysis_app) + CATALYSIS_ROWS))
def test_mlp_catalysis_bad_input(row, files, capsys):
    check_row(catalysis_app, row, files["tmp"], capsys, files)


def test_help_ends_with_an_example_and_every_option_has_help():
    """Every command of every app: each option documented, the help ends with one example,
    no flag shown as ``<bool>``."""
    import typer

    from common.cli.testing import _commands

    for app in (cases_app, catalysis_app):
        top = typer.main.get_command(app)
        for path, cmd in _commands(top):
            for p in cmd.params:
                assert getattr(p, "help", None), (path, p.name)
            assert (cmd.epilog or "").startswith("Example:"), path
            assert len([ln for ln in cmd.epilog.splitlines() if "mlp-" in ln]) == 1, path


def test_md_help_names_the_new_options_and_ends_with_its_example(capsys):
    from common.cli.app import run_app

    assert run_app(cases_app, ["md", "--help"]) == 0
    out = capsys.readouterr().out
    assert "<bool>" not in out
    for text in ("--on-blowup", "stop-system", "--pressure-bar", "npt", "package.module:Class"):
        assert text in out, text
    assert out.rstrip().splitlines()[-1].strip().startswith("--replicas 8")


def test_lj_without_params_says_which_defaults_it_uses(files, capsys):
    from common.cli.app import run_app

    code = run_app(cases_app, ["md", str(files["cu"]), "-p", "lj", "--param", "epsilon=0.0104",
                               "--out", str(files["tmp"] / "run"), "--steps", "20", "--json"])
    cap = capsys.readouterr()
    assert code == 0, cap.err
    json.loads(cap.out)  # stdout is the JSON object only
    warnings = [ln for ln in cap.err.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1 and "sigma=1" in warnings[0] and "epsilon" not in warnings[0]


def test_library_parameters_become_the_commands_flags():
    from common.cli.flags import translate
    from common.errors import ConfigError

    flags = {"overwrite": "--overwrite", "dt_fs": "--dt-fs", "fractions": "--fractions",
             "coverage_ML": "--coverage-ML", "species": "--adsorbate", "restart": "--restart",
             "traj_every": "--traj-every"}
    cases = [
        (ConfigError("output already exists", where="out.extxyz",
                     fix="choose another path, or pass overwrite=True"),
         "out.extxyz: output already exists -- fix: choose another path, or pass --overwrite"),
        (ConfigError("no time step", where="traj.extxyz",
                     fix="give the time between frames, e.g. --dt-fs 10 (dt_fs=10 in Python)"),
         "traj.extxyz: no time step -- fix: give the time between frames, e.g. --dt-fs 10"),
        (ConfigError("coverage_ML=0.001 is < 1 adsorbate", where="place_many coverage_ML",
                     fix="use coverage_ML >= 0.05"),
         "--coverage-ML: --coverage-ML 0.001 is < 1 adsorbate -- fix: use --coverage-ML >= 0.05"),
        (ConfigError("counts must be >= 0", where="place_many species", fix="give counts"),
         "--adsorbate: counts must be >= 0 -- fix: give counts"),
        (ConfigError("the valid split would be empty", where="data.extxyz",
                     fix="change `fractions`"),
         "data.extxyz: the valid split would be empty -- fix: change --fractions"),
        (ConfigError("interval must be >= 1", where="traj_every", fix="use restart=False"),
         "--traj-every: interval must be >= 1 -- fix: use --no-restart"),
        # not a parameter of this command: left alone
        (ConfigError("bad", where="max_iterations", fix="raise max_iterations"),
         "max_iterations: bad -- fix: raise max_iterations"),
    ]
    for exc, want in cases:
        got = translate(exc, flags)
        assert got.one_line() == want
        assert str(got) == want


def test_a_failing_command_reports_in_its_own_flags(files, capsys):
    """--committee N stands for the library's n_models; the mapping is declared once, on the
    command, and run_app applies it."""
    import typer

    from common.cli.app import run_app
    from common.cli.flags import command_flags, instrument

    train = instrument(typer.main.get_command(catalysis_app)).commands["train"]
    flags = command_flags(train)
    assert flags["n_models"] == "--committee" and flags["committee"] == "--committee"
    assert flags["fractions"] == "--fractions" and flags["data"] == "DATA"
    code = run_app(catalysis_app, ["build", "--out", str(files["tmp"] / "s.extxyz"), "--size",
                                   "3,3,3", "--adsorbate", "CO", "--coverage-ML", "0.001"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: --coverage-ML: --coverage-ML 0.001 on 9 surface")
