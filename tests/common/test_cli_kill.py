"""``kill -9`` of every file-producing command at its worst moment, then the same command again:
the rerun succeeds and the output is whole.

Each command runs in a child process whose ``os.replace``/``os.rename`` stop for good when they
are about to move a chosen output into place (the n-th time, for checkpoints), after writing a
marker; the test then kills the whole process group with SIGKILL. A writer that wrote its
output in place never reaches the rename: that fails the test too ("never paused").
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

from common.cli.app import run_app

REPO = Path(__file__).resolve().parents[2]

_DRIVER = r"""
import importlib, os, sys, time
targets = {os.path.abspath(p) for p in os.environ["MLP_TEST_PAUSE_AT"].split(os.pathsep)}
skip = [int(os.environ.get("MLP_TEST_PAUSE_SKIP", "0"))]
marker = os.environ["MLP_TEST_MARKER"]


def pausing(real):
    def move(src, dst, *args, **kwargs):
        if os.path.abspath(os.fspath(dst)) in targets:
            if skip[0] > 0:
                skip[0] -= 1
            else:
                with open(marker, "w") as fh:
                    fh.write(os.fspath(src))
                time.sleep(3600)
        return real(src, dst, *args, **kwargs)
    return move


os.replace, os.rename = pausing(os.replace), pausing(os.rename)
module, attr = sys.argv[1].split(":")
from common.cli.app import run_app
sys.exit(run_app(getattr(importlib.import_module(module), attr), sys.argv[2:]))
"""

CASES = "common.cli.main:app"
CATALYSIS = "catalysis.cli:app"


def _app(spec: str):
    import importlib

    module, attr = spec.split(":")
    return getattr(importlib.import_module(module), attr)


def kill_at(tmp_path: Path, app: str, argv: list, targets: list, skip: int = 0,
            timeout: float = 240) -> str:
    """Run ``app argv`` in a child; SIGKILL it when it is about to move one of ``targets`` into
    place; return the temporary path it was moving."""
    marker = tmp_path / ".paused"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH",
                                                                                    "")]),
               OMP_NUM_THREADS="1", MLP_TEST_MARKER=str(marker), MLP_TEST_PAUSE_SKIP=str(skip),
               MLP_TEST_PAUSE_AT=os.pathsep.join(str(Path(t).resolve()) for t in targets))
    env.pop("MLP_CASES_DEBUG", None)
    proc = subprocess.Popen([sys.executable, "-c", _DRIVER, app, *map(str, argv)], cwd=tmp_path,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.05)  # the marker is written whole
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    err = proc.stderr.read().decode()
    assert marker.exists(), f"never paused (exit {proc.returncode}): {err}"
    assert proc.returncode == -signal.SIGKILL, err
    moving = marker.read_text()
    marker.unlink()
    return moving


def rerun(tmp_path: Path, app: str, argv: list, capsys) -> str:
    capsys.readouterr()
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        code = run_app(_app(app), [str(a) for a in argv])
    finally:
        os.chdir(cwd)
    cap = capsys.readouterr()
    assert code == 0, cap.err
    return cap.out


def no_partials(folder: Path) -> None:
    left = [p.name for p in folder.rglob("*") if ".partial" in p.name]
    assert not left, left


def _labelled(n: int) -> list:
    frames = []
    for k in range(n):
        a = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 1))
        a.rattle(0.05, seed=k)
        a.calc = EMT()
        e, f = a.get_potential_energy(), a.get_forces()
        a.calc = SinglePointCalculator(a, energy=e, forces=f)
        frames.append(a)
    return frames


@pytest.fixture
def labelled(tmp_path):
    p = tmp_path / "labelled.extxyz"
    ase.io.write(p, _labelled(10))
    return p


@pytest.fixture
def morse_model(tmp_path):
    from common.potential.analytic import AnalyticAdapter

    return AnalyticAdapter("morse", {"epsilon": 0.3429, "rho0": 3.894, "r0": 2.866}).save(
        tmp_path / "model")


# -- mlp-cases dataset --------------------------------------------------------------------------


def test_dataset_split_killed_before_any_part_lands(tmp_path, labelled, capsys):
    out = tmp_path / "parts"
    argv = ["dataset", "split", labelled, "--out", out, "--fractions", "0.6,0.2,0.2"]
    moving = kill_at(tmp_path, CASES, argv, [out / f"{n}.extxyz" for n in ("train", "valid",
                                                                             "test")])
    assert Path(moving).exists() and ".partial" in moving
    assert not any((out / f"{n}.extxyz").exists() for n in ("train", "valid", "test"))
    rerun(tmp_path, CASES, argv, capsys)
    sizes = [len(ase.io.read(out / f"{n}.extxyz", ":")) for n in ("train", "valid", "test")]
    assert sizes == [6, 2, 2]
    no_partials(out)


@pytest.mark.parametrize("fmt, name", [("extxyz", "out.extxyz"), ("db", "out.db"),
                                       ("deepmd", "dp"), ("schnetpack", "spk.db")])
def test_dataset_convert_killed_then_rerun(fmt, name, tmp_path, labelled, capsys):
    from common.data import read_export

    out = tmp_path / name
    argv = ["dataset", "convert", labelled, "--to", fmt, "--out", out]
    kill_at(tmp_path, CASES, argv, [out])
    assert not out.exists()
    rerun(tmp_path, CASES, argv, capsys)
    back = read_export(fmt, out)
    assert len(back) == 10
    np.testing.assert_allclose(sorted(a.get_potential_energy() for a in back),
                               sorted(a.get_potential_energy() for a in _labelled(10)),
                               atol=1e-6)
    no_partials(tmp_path)


def test_dataset_convert_overwrite_killed_keeps_the_old_output(tmp_path, labelled, capsys):
    out = tmp_path / "out.extxyz"
    ase.io.write(out, _labelled(3))
    argv = ["dataset", "convert", labelled, "--to", "extxyz", "--out", out, "--overwrite"]
    kill_at(tmp_path, CASES, argv, [out])
    assert len(ase.io.read(out, ":")) == 3  # the old file, whole
    rerun(tmp_path, CASES, argv, capsys)
    assert len(ase.io.read(out, ":")) == 10
    no_partials(tmp_path)


# -- mlp-cases md / mlp-catalysis md: killed after a checkpoint, continued with --restart -----


def _assert_whole_run(out: Path, steps: int, every: int, n_traj: int) -> None:
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == steps
    trajs = sorted(out.glob("traj_*.extxyz"))
    assert len(trajs) == n_traj
    for t in trajs:
        got = [f.info["step"] for f in ase.io.read(t, ":")]
        assert got == sorted(set(got)), t  # no frame twice
        assert got[-1] == steps and np.all(np.diff(got) == every), t  # none missing
    no_partials(out)


def test_md_killed_mid_run_then_restart(tmp_path, capsys):
    ase.io.write(tmp_path / "cu.extxyz", bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2))
    out = tmp_path / "run"
    argv = ["md", "cu.extxyz", "-p", "lj", "--param", "epsilon=0.0104", "--param", "sigma=2.3",
            "--replicas", "2", "--steps", "300", "--traj-every", "10", "--checkpoint-every",
            "50", "--batch-size", "2", "--out", out]
    kill_at(tmp_path, CASES, argv, [out / "checkpoints" / "batch_00000.pt"], skip=2)
    assert not (out / "summary.json").exists()
    rerun(tmp_path, CASES, [*argv, "--restart"], capsys)
    _assert_whole_run(out, 300, 10, 2)


def test_catalysis_md_killed_mid_run_then_restart(tmp_path, morse_model, capsys):
    ase.io.write(tmp_path / "cu.extxyz", bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2))
    out = tmp_path / "run"
    argv = ["md", "cu.extxyz", "--model", morse_model, "--replicas", "2", "--steps", "300",
            "--traj-every", "10", "--checkpoint-every", "50", "--batch-size", "2", "--out", out]
    kill_at(tmp_path, CATALYSIS, argv, [out / "checkpoints" / "batch_00000.pt"], skip=2)
    rerun(tmp_path, CATALYSIS, [*argv, "--restart"], capsys)
    _assert_whole_run(out, 300, 10, 2)


# -- mlp-catalysis build / sample / events / barriers / train ----------------------------------


def test_build_killed_then_rerun(tmp_path, capsys):
    out = tmp_path / "slab.extxyz"
    argv = ["build", "--out", out, "--size", "3,3,3", "--adsorbate", "CO:2", "--seed", "1"]
    kill_at(tmp_path, CATALYSIS, argv, [out])
    assert not out.exists()
    rerun(tmp_path, CATALYSIS, argv, capsys)
    assert len(ase.io.read(out)) == 27 + 4
    no_partials(tmp_path)


def test_sample_killed_then_rerun(tmp_path, capsys):
    slab = tmp_path / "slab.extxyz"
    ase.io.write(slab, bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2))
    out = tmp_path / "samples.extxyz"
    argv = ["sample", slab, "--out", out, "--n", "20"]
    kill_at(tmp_path, CATALYSIS, argv, [out])
    assert not out.exists()
    rerun(tmp_path, CATALYSIS, argv, capsys)
    assert len(ase.io.read(out, ":")) == 20
    no_partials(tmp_path)


def test_events_plot_killed_then_rerun(tmp_path, capsys):
    from catalysis.systems import cu111_slab, place_many

    slab = place_many(cu111_slab((3, 4, 3), fixed_layers=1), {"CO": 2}, seed=0)
    frames = []
    for k in range(6):
        a = slab.copy()
        a.rattle(0.01, seed=k)
        a.info["time_fs"] = 10.0 * k
        frames.append(a)
    ase.io.write(tmp_path / "traj.extxyz", frames)
    fig = tmp_path / "timeline.png"
    argv = ["events", "traj.extxyz", "--plot", fig, "--json"]
    kill_at(tmp_path, CATALYSIS, argv, [fig])
    assert not fig.exists()
    rerun(tmp_path, CATALYSIS, argv, capsys)
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    no_partials(tmp_path)


def test_barriers_killed_then_rerun(tmp_path, morse_model, capsys):
    (tmp_path / "events.json").write_text(json.dumps({"events": []}))
    out = tmp_path / "barriers.json"
    argv = ["barriers", "events.json", "--model", morse_model, "--out", out]
    kill_at(tmp_path, CATALYSIS, argv, [out])
    assert not out.exists()
    rerun(tmp_path, CATALYSIS, argv, capsys)
    assert json.loads(out.read_text())["n"] == 0
    no_partials(tmp_path)


@pytest.mark.slow
def test_train_killed_then_rerun(tmp_path, capsys):
    """The model folder appears only when training is done: a kill leaves no folder to trip
    over, and the rerun trains a loadable model."""
    from common.potential.registry import load_saved

    ase.io.write(tmp_path / "labelled.extxyz", _labelled(12))
    out = tmp_path / "model"
    argv = ["train", "labelled.extxyz", "--out", out, "--config", "tiny"]
    kill_at(tmp_path, CATALYSIS, argv, [out], timeout=600)
    assert not out.exists()
    rerun(tmp_path, CATALYSIS, argv, capsys)
    load_saved(out)
    no_partials(tmp_path)


@pytest.mark.slow
def test_demo_killed_then_rerun(tmp_path, capsys):
    """The demo is rerun whole (labels come from the cache); summary.json is whole."""
    out = tmp_path / "demo"
    argv = ["demo", "--scale", "tiny", "--out", out, "--json"]
    kill_at(tmp_path, CASES, argv, [out / "summary.json"], timeout=600)
    assert not (out / "summary.json").exists()
    summary = json.loads(rerun(tmp_path, CASES, argv, capsys))
    assert summary["labels"]["n_labelled"] == 0  # all from the cache of the killed run
    assert json.loads((out / "summary.json").read_text()) == summary
    assert (out / "report.md").read_text().startswith("# mlp-cases shared-layer demo")
    no_partials(tmp_path)


# -- the atomic writers themselves ----------------------------------------------------------------


def test_atomic_writes_leave_old_or_new_and_clean_up_after_dead_writers(tmp_path):
    from common.fileio import atomic_dir, atomic_path, atomic_write_text

    target = tmp_path / "out.txt"
    atomic_write_text(target, "old\n")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old\n" and sorted(tmp_path.iterdir()) == [target]
    # what a kill -9 leaves: a partial of a process that is gone; the next write removes it
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stale = tmp_path / f".out.txt.{dead}.abc123.partial"
    stale.write_text("half")
    live = tmp_path / f".out.txt.{os.getpid()}.xyz.partial"  # a writer still running
    live.write_text("busy")
    atomic_write_text(target, "new\n")
    assert target.read_text() == "new\n" and not stale.exists() and live.exists()
    live.unlink()

    folder = tmp_path / "model"
    with atomic_dir(folder) as tmp:
        (tmp / "weights").write_text("1")
    with pytest.raises(FileExistsError), atomic_dir(folder) as tmp:
        (tmp / "weights").write_text("2")
    assert (folder / "weights").read_text() == "1"
    with atomic_dir(folder, overwrite=True) as tmp:
        (tmp / "weights").write_text("3")
    assert (folder / "weights").read_text() == "3"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "out.txt"]
