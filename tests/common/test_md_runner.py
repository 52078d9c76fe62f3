"""``run_md`` (common.md.runner): outputs and summary, refusal of bad inputs, and a restart after
the process was killed with SIGKILL in the middle of a run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import ase.io
import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from ase.cluster import Icosahedron

from common.errors import ConfigError, DataError
from common.md.runner import run_md
from common.potential.pair import LennardJones

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[2]


def lj(smooth=False):
    return LennardJones(epsilon=0.0104, sigma=3.40, rc=8.5, smooth=smooth)


def argon():
    return bulk("Ar", "fcc", a=5.26, cubic=True).repeat((2, 2, 2))


def read_thermo(path) -> np.ndarray:
    return np.loadtxt(path, comments="#", ndmin=2)


QUIET = dict(progress=False, compile=False)


# ------------------------------------------------------------------------------------------
def test_run_md_nve_summary_and_files(tmp_path):
    """2 replicas of 32-atom argon, NVE at 4 fs for 0.8 ps (smooth LJ), batch size measured.

    Energy drift: from the NVE test in test_md_physics, std(E)/atom ~ 2e-7 eV at ~30-40 K and
    4 fs, with no systematic drift (symplectic). The OLS slope over L = 0.8 ps has
    SE ~ std * sqrt(12 tau / L^3) ~ 2e-7 * sqrt(12 * 0.1 / 0.51) ~ 3e-7 eV/atom/ps; the
    bound 1e-5 is > 30 SE, while a broken integrator drifts by >= 1e-3 eV/atom/ps here."""
    out = tmp_path / "nve"
    s = run_md([argon()], lj(smooth=True), out, ensemble="nve", timestep_fs=4.0,
               temperature_K=60.0, steps=200, replicas=2, seed=3, traj_every=20, **QUIET)
    for key in ("replicas", "steps", "mean_temperature_K", "energy_drift_eV_per_atom_per_ps",
                "replica_steps_per_s", "trajectory", "trajectories", "thermo", "batch_size"):
        assert key in s, key
    assert s["replicas"] == 2 and s["steps"] == 200 and s["ensemble"] == "nve"
    assert s["replica_steps_per_s"] > 0
    assert abs(s["energy_drift_eV_per_atom_per_ps"]) < 1e-5
    assert abs(s["max_abs_energy_drift_eV_per_atom_per_ps"]) < 1e-5
    # lattice + 60 K velocities: equipartition -> ~30 K
    assert 15.0 < s["mean_temperature_K"] < 45.0
    assert json.loads((out / "summary.json").read_text()) == json.loads(json.dumps(s))
    assert (out / "run.json").exists()
    assert Path(s["trajectory"]) == out  # several trajectories: the folder
    assert len(s["trajectories"]) == 2
    for k, p in enumerate(s["trajectories"]):
        frames = ase.io.read(p, ":")
        assert [f.info["step"] for f in frames] == list(range(0, 201, 20))
        assert len(frames[0]) == 32
        assert Path(p).name == f"traj_{k:04d}.extxyz"
    rows = read_thermo(s["thermo"])
    assert rows.shape == (2 * 11, 9)  # ... Etot_eV P_bar V_A3
    # the summary's mean temperature is the second half of each replica's thermo rows
    means = [rows[rows[:, 2] == r][:, 3][len(rows[rows[:, 2] == r]) // 2:].mean()
             for r in (0, 1)]
    assert s["mean_temperature_K"] == pytest.approx(np.mean(means), rel=1e-9)
    # Etot column = Epot + Ekin
    np.testing.assert_allclose(rows[:, 6], rows[:, 4] + rows[:, 5], atol=2e-10)


def test_run_md_nvt_mean_temperature_and_h5(tmp_path):
    """4 replicas, 40 K, gamma = 10/ps, 2 ps at 5 fs. The summary averages the second half
    (1 ps = 10/gamma after the start: equilibrated). Per replica n = 201 samples, tau = 1/(2
    gamma) = 10 steps (see test_md_physics), SE = 40 * sqrt(2/96) * sqrt(2*10/(4*201)) = 0.91 K;
    tolerance 4 SE = 3.6 K."""
    out = tmp_path / "nvt"
    s = run_md([argon()], lj(), out, ensemble="nvt", timestep_fs=5.0, temperature_K=40.0,
               friction_per_ps=10.0, steps=400, replicas=4, seed=0, traj_every=100,
               thermo_every=1, traj_format="h5", batch_size=4, **QUIET)
    assert s["target_temperature_K"] == 40.0
    assert abs(s["mean_temperature_K"] - 40.0) < 3.6
    assert s["trajectory"] == str(out / "trajectory.h5")
    import h5py

    with h5py.File(out / "trajectory.h5") as h5:
        assert sorted(h5) == [f"system_{k:04d}" for k in range(4)]
        for g in h5.values():
            assert list(g["step"][:]) == [0, 100, 200, 300, 400]
            assert g["positions"].shape == (5, 32, 3)


def test_run_md_refuses_a_used_folder(tmp_path):
    out = tmp_path / "used"
    out.mkdir()
    (out / "something.txt").write_text("x")
    with pytest.raises(ConfigError, match="not empty") as e:
        run_md([argon()], lj(), out, steps=5, **QUIET)
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="nothing to restart"):
        run_md([argon()], lj(), tmp_path / "empty", steps=5, restart=True, **QUIET)


def _periodic_without_cell():
    return Atoms("Ar2", positions=[[0, 0, 0], [3.8, 0, 0]], pbc=True)


@pytest.mark.parametrize("kwargs,frames,err,word", [
    (dict(timestep_fs=0.0), None, ConfigError, "timestep"),
    (dict(timestep_fs=-2.0), None, ConfigError, "timestep"),
    (dict(temperature_K=0.0), None, ConfigError, "temperature"),
    (dict(temperature_K=-5.0, ensemble="nve"), None, ConfigError, "temperature"),
    (dict(steps=-1), None, ConfigError, "steps"),
    (dict(replicas=0), None, ConfigError, "replicas"),
    (dict(traj_format="dcd"), None, ConfigError, "format"),
    (dict(), "overlap", DataError, "overlap"),
    (dict(), "nocell", DataError, "cell"),
    (dict(), "empty", DataError, "no atoms"),
])
def test_run_md_bad_inputs(tmp_path, kwargs, frames, err, word):
    if frames == "overlap":
        frames = [argon()]
        frames[0].positions[1] = frames[0].positions[0] + [0.3, 0, 0]
    elif frames == "nocell":
        frames = [_periodic_without_cell()]
    elif frames == "empty":
        frames = [argon(), Atoms()]
    else:
        frames = [argon()]
    out = tmp_path / "run"
    with pytest.raises(err) as e:
        run_md(frames, lj(), out, **{"steps": 5, **QUIET, **kwargs})
    msg = str(e.value)
    assert word in msg and "\n" not in msg and "fix:" in msg
    assert not out.exists() or not any(out.iterdir())  # nothing half-written


# ------------------------------------------------------------------------------------------
KILLED_RUN = textwrap.dedent("""
    import os, signal, sys
    import ase.io, torch
    torch.set_num_threads(1)
    from common.md.runner import run_md
    from common.potential.pair import LennardJones

    class KillAt:
        '''A zero force term that SIGKILLs this process after its n-th step.'''
        cutoff = 0.0
        def __init__(self, n):
            self.n, self.calls = n, 0
        def __call__(self, state, neighbors):
            return {"energy": torch.zeros(state.n_systems, dtype=state.dtype),
                    "forces": torch.zeros_like(state.positions)}
        def after_step(self, state, out, step):
            self.calls += 1
            if self.calls == self.n:
                os.kill(os.getpid(), signal.SIGKILL)

    frames = ase.io.read(sys.argv[1], ":")
    kw = eval(sys.argv[3])
    run_md(frames, LennardJones(0.0104, 3.40, rc=8.5), sys.argv[2],
           terms=[KillAt(int(sys.argv[4]))], **kw)
    print("not killed")
""")


def test_run_md_restart_after_sigkill(tmp_path):
    """6 systems in batches of 2, 60 steps, checkpoints every 10, frames every 5. The process
    is SIGKILLed at step 37 of the second batch (first batch done, third never started; the
    second batch's frame 35 is already on disk, past its step-30 checkpoint). ``restart=True`` then
    completes the run: every (step, system) is in the thermo log exactly once, and the files
    are identical to an uninterrupted run's (the restart is exact on the CPU)."""
    frames = [argon(), Icosahedron("Ar", 2, latticeconstant=5.26)]
    src = tmp_path / "frames.extxyz"
    ase.io.write(src, frames)
    frames = ase.io.read(src, ":")
    kw = dict(ensemble="nvt", timestep_fs=5.0, temperature_K=40.0, friction_per_ps=2.0,
              steps=60, replicas=3, seed=7, batch_size=2, traj_every=5, checkpoint_every=10,
              progress=False, compile=False)
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    script = tmp_path / "killed_run.py"
    script.write_text(KILLED_RUN)
    proc = subprocess.run([sys.executable, str(script), str(src), str(out), repr(kw),
                           str(60 + 37)], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert "not killed" not in proc.stdout
    ck = sorted(p.name for p in (out / "checkpoints").glob("*.pt"))
    assert ck == ["batch_00000.pt", "batch_00002.pt"]
    rows = read_thermo(out / "thermo.dat")
    assert rows[rows[:, 2] < 2][:, 0].max() == 60  # first batch finished
    assert rows[rows[:, 2] >= 2][:, 0].max() == 35  # second: frames past its checkpoint (30)
    assert not (rows[:, 2] >= 4).any()  # third never started

    s = run_md(frames, lj(), out, restart=True, **kw)
    rows = read_thermo(out / "thermo.dat")
    keys = [(int(r[0]), int(r[2])) for r in rows]
    assert len(keys) == len(set(keys))
    assert set(keys) == {(st, sy) for st in range(0, 61, 5) for sy in range(6)}
    for k in range(6):
        steps = [f.info["step"] for f in ase.io.read(out / f"traj_{k:04d}.extxyz", ":")]
        assert steps == list(range(0, 61, 5)), (k, steps)

    ref_dir = tmp_path / "straight"
    ref = run_md(frames, lj(), ref_dir, **kw)
    assert (out / "thermo.dat").read_text() == (ref_dir / "thermo.dat").read_text()
    for k in range(6):
        a = ase.io.read(out / f"traj_{k:04d}.extxyz", ":")
        b = ase.io.read(ref_dir / f"traj_{k:04d}.extxyz", ":")
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x.positions, y.positions)
            np.testing.assert_array_equal(x.get_velocities(), y.get_velocities())
    assert s["mean_temperature_K"] == ref["mean_temperature_K"]

    # restarting a finished run changes nothing
    before = (out / "thermo.dat").read_text()
    run_md(frames, lj(), out, restart=True, **kw)
    assert (out / "thermo.dat").read_text() == before

    # the restart needs the same settings: more steps is another run
    with pytest.raises(ConfigError, match="other settings"):
        run_md(frames, lj(), out, restart=True, **{**kw, "steps": 80})


def test_run_md_restart_with_other_structures_is_refused(tmp_path):
    """Same number of systems, same cell, other positions: not the run in this folder."""
    a = argon()
    a.rattle(0.05, seed=1)
    b = argon()
    b.rattle(0.05, seed=2)
    kw = dict(ensemble="nvt", timestep_fs=5.0, temperature_K=40.0, steps=20, batch_size=1,
              traj_every=5, checkpoint_every=10, **QUIET)
    out = tmp_path / "run"
    run_md([a], lj(), out, **kw)
    with pytest.raises(ConfigError):
        run_md([b], lj(), out, restart=True, **kw)


def test_run_md_blowup_raises_simulation_error_and_keeps_files(tmp_path):
    """run_md's own reporters (trajectory first, then thermo) on a run that blows up: the user
    gets SimulationError (a one-line message), the trajectories so far and the last frame."""
    a = argon()
    d = a.get_distances(0, range(1, len(a)), mic=True)
    j = 1 + int(np.argmin(d))
    v = a.get_distance(0, j, mic=True, vector=True)
    a.positions[0] += v / np.linalg.norm(v) * 1.4  # 2.32 Å from its neighbour
    out = tmp_path / "boom"
    from common.errors import SimulationError

    with pytest.raises(SimulationError) as e:
        run_md([a], lj(), out, ensemble="nve", timestep_fs=10.0, temperature_K=1.0,
               steps=200, batch_size=1, traj_every=1, **QUIET)
    assert "\n" not in str(e.value)
    frames = ase.io.read(out / "traj_0000.extxyz", ":")
    assert len(frames) > 1
    assert list(out.glob("blowup_system_0000_step_*.extxyz"))
