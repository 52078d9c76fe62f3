"""common.trajectory: trajectories of any format with their times, and persistence in fs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms, units
from ase.build import fcc111, molecule

from common.errors import ConfigError, DataError
from common.md.reporters import ExtxyzTrajectory, HDF5Trajectory
from common.md.state import BatchState
from common.trajectory import (
    frame_times_fs,
    load_trajectory,
    persistence_frames,
    trajectory_systems,
)


def _systems() -> list[Atoms]:
    slab = fcc111("Cu", size=(2, 2, 2), vacuum=5.0)
    slab.info.clear()
    water = molecule("H2O")
    water.cell = [6.0, 7.0, 8.0]
    water.pbc = True
    return [slab, water]


def _write_md_files(folder, steps=(0, 10, 20), dt_fs=0.5):
    """What common.md writes for two systems: HDF5 and one extxyz per system."""
    state = BatchState.from_atoms(_systems())
    writers = [HDF5Trajectory(folder / "traj.h5", n_systems=2),
               ExtxyzTrajectory(folder, n_systems=2)]
    rng = np.random.default_rng(0)
    for step in steps:
        state.positions += 0.01 * torch.as_tensor(rng.normal(size=state.positions.shape))
        state.velocities = 0.001 * torch.as_tensor(rng.normal(size=state.positions.shape))
        out = {"energy": torch.as_tensor(rng.normal(size=2)),
               "forces": torch.as_tensor(rng.normal(size=state.positions.shape))}
        for w in writers:
            w.report(step, step * dt_fs, state, out)
    return folder / "traj.h5", [writers[1].path(s) for s in range(2)]


def test_hdf5_and_extxyz_of_common_md_read_the_same(tmp_path):
    h5, xyz = _write_md_files(tmp_path)
    assert trajectory_systems(h5) == [0, 1] and trajectory_systems(xyz[1]) == [0]
    for s in (0, 1):
        a_frames, a_dt = load_trajectory(h5, system=s)
        b_frames, b_dt = load_trajectory(xyz[s])
        assert a_dt is None and b_dt is None and len(a_frames) == len(b_frames) == 3
        for a, b in zip(a_frames, b_frames, strict=True):
            assert a.get_chemical_symbols() == b.get_chemical_symbols()
            np.testing.assert_allclose(a.positions, b.positions, atol=1e-7)
            np.testing.assert_allclose(a.cell.array, b.cell.array, atol=1e-7)
            assert list(a.pbc) == list(b.pbc)
            np.testing.assert_allclose(a.get_velocities(), b.get_velocities(), atol=1e-7)
            np.testing.assert_allclose(a.get_forces(), b.get_forces(), atol=1e-7)
            assert a.get_potential_energy() == pytest.approx(b.get_potential_energy())
            assert a.info["step"] == b.info["step"]
        assert frame_times_fs(a_frames) == pytest.approx([0.0, 5.0, 10.0])
        assert frame_times_fs(b_frames) == pytest.approx([0.0, 5.0, 10.0])


def test_hdf5_system_choice_and_errors(tmp_path):
    h5, xyz = _write_md_files(tmp_path)
    with pytest.raises(ConfigError, match=r"holds 2 systems.*one of \[0, 1\]"):
        load_trajectory(h5)
    with pytest.raises(ConfigError, match="no system 5"):
        load_trajectory(h5, system=5)
    with pytest.raises(ConfigError, match="one trajectory"):
        load_trajectory(xyz[0], system=1)
    with pytest.raises(DataError, match="file not found"):
        load_trajectory(tmp_path / "missing.h5")
    bad = tmp_path / "bad.h5"
    bad.write_text("not hdf5")
    with pytest.raises(DataError, match="cannot read HDF5"):
        load_trajectory(bad)
    one, _ = _write_md_files(tmp_path / "one", steps=(0, 4))
    import h5py

    with h5py.File(one, "a") as f:
        del f["system_0001"]
    frames, _ = load_trajectory(one)  # one system: no need to say which
    assert len(frames) == 2 and len(frames[0]) == 8


def test_time_step_of_an_ase_md_traj(tmp_path):
    from ase.io.trajectory import Trajectory

    path = tmp_path / "md.traj"
    with Trajectory(str(path), "w") as tr:
        tr.set_description({"type": "molecular-dynamics", "timestep": 2.5 * units.fs,
                            "interval": 4})
        for d in (0.0, 0.1, 0.2):
            tr.write(Atoms("H2", positions=[[0, 0, 0], [0.74 + d, 0, 0]]))
    frames, dt = load_trajectory(path)
    assert dt == pytest.approx(10.0)
    assert frame_times_fs(frames, None, dt) == pytest.approx([0.0, 10.0, 20.0])


def test_frame_times_precedence_and_errors():
    frames = [Atoms("H") for _ in range(3)]
    for k, a in enumerate(frames):
        a.info["time"] = 2.0 * k
    assert frame_times_fs(frames) == pytest.approx([0, 2, 4])  # info["time"], as fs
    for k, a in enumerate(frames):
        a.info["time_fs"] = 3.0 * k
    assert frame_times_fs(frames, file_dt_fs=7.0) == pytest.approx([0, 3, 6])  # time_fs first
    assert frame_times_fs(frames, dt_fs=5.0) == pytest.approx([0, 5, 10])  # the caller wins
    frames[2].info["time_fs"] = 1.0
    with pytest.raises(DataError, match="does not increase") as exc:
        frame_times_fs(frames, where="t.xyz")
    assert "t.xyz frame 2" in str(exc.value)
    bare = [Atoms("H") for _ in range(2)]
    assert frame_times_fs(bare, file_dt_fs=4.0) == pytest.approx([0, 4])
    with pytest.raises(DataError, match="no time step"):
        frame_times_fs(bare)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ConfigError, match="dt_fs"):
            frame_times_fs(bare, dt_fs=bad)


def test_persistence_frames():
    t = np.arange(10) * 10.0
    assert persistence_frames(t, 50.0) == 5
    assert persistence_frames(t, 25.0) == 3
    assert persistence_frames(t, 0.0) == 1
    assert persistence_frames(t[:1], 50.0) == 1
    assert persistence_frames(t, 50.0, min_frames=2) == 2
    for kw in ({"min_fs": -1.0}, {"min_fs": float("inf")}, {"min_fs": 1.0, "min_frames": 0},
               {"min_fs": 1.0, "min_frames": 1.5}):
        with pytest.raises(ConfigError):
            persistence_frames(t, **kw)
