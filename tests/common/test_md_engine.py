"""Correctness of the batched MD engine: batching, exact restarts, stop conditions, the blow-up
guard and the reporters' files."""

from __future__ import annotations

import ase.io
import h5py
import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, fcc111, molecule
from ase.cluster import Icosahedron

from common.errors import ConfigError, SimulationError
from common.md.engine import MDEngine
from common.md.noise import maxwell_boltzmann
from common.md.reporters import ExtxyzTrajectory, HDF5Trajectory, ThermoLog
from common.md.state import BatchState
from common.potential.pair import LennardJones
from common.potential.protocol import BatchedPotential

torch.set_num_threads(1)


def lj():
    return LennardJones(epsilon=0.0104, sigma=3.40, rc=8.5)


class ConstantForce(BatchedPotential):
    """F = f_s along +x on every atom of system s (U = -f_s * x). cutoff 0.1 Å."""

    cutoff = 0.1

    def __init__(self, f_per_system):
        super().__init__()
        self.f = torch.as_tensor(f_per_system, dtype=torch.float64)

    def forward(self, state, neighbors, compute_stress=False):
        fs = self.f[state.system_idx]
        forces = torch.zeros_like(state.positions)
        forces[:, 0] = fs
        e = torch.zeros(state.n_systems, dtype=state.dtype).index_add_(
            0, state.system_idx, -fs * state.positions[:, 0])
        return {"energy": e, "forces": forces}


def three_systems(temps=(30.0, 50.0, 20.0), seeds=(5, 17, 3)) -> list[Atoms]:
    """Periodic crystal, slab and cluster of argon (different sizes), with MB velocities."""
    frames = [bulk("Ar", "fcc", a=5.26, cubic=True).repeat((2, 2, 2)),
              fcc111("Ar", (2, 2, 3), a=5.26, vacuum=6.0),
              Icosahedron("Ar", 2, latticeconstant=5.26)]
    for a, t, s in zip(frames, temps, seeds, strict=True):
        a.set_velocities(maxwell_boltzmann(a.get_masses(), t, s))
    return frames


# ------------------------------------------------------------------------------------------
def test_batched_run_equals_single_runs():
    """3 different systems, NVT at different temperatures, 100 steps of 5 fs, in one batch and
    one by one with the same seeds. Each system's noise comes from its own stream and its forces
    only from its own atoms, so the trajectories are the same. Not necessarily bit for bit: the
    dense neighbour matrix is padded to the batch's largest neighbour count, and a sum over a
    longer row of (zero-padded) terms may be reduced in a different order, ~1e-16 relative per
    step; chaotic growth over 0.5 ps (Lyapunov ~1/ps) keeps that below ~1e-14 Å. Tolerance
    1e-9 Å."""
    temps, seeds = [30.0, 50.0, 20.0], [5, 17, 3]
    frames = three_systems(temps, seeds)
    kw = dict(ensemble="nvt", timestep_fs=5.0, friction_per_ps=2.0)
    batch = BatchState.from_atoms(frames)
    MDEngine(lj(), batch, temperature_K=temps, seeds=seeds, **kw).run(100)
    off = batch.offsets().tolist()
    for k, at in enumerate(frames):
        one = BatchState.from_atoms([at])
        MDEngine(lj(), one, temperature_K=temps[k], seeds=[seeds[k]], **kw).run(100)
        sl = slice(off[k], off[k + 1])
        assert float((one.positions - batch.positions[sl]).abs().max()) < 1e-9
        assert float((one.velocities - batch.velocities[sl]).abs().max()) < 1e-9
        # and the systems really moved
        assert float((one.positions - torch.as_tensor(at.positions)).abs().max()) > 0.05


def test_seeds_decide_the_noise():
    """Same seed -> same trajectory; another seed -> another one (the noise is used)."""
    at = three_systems()[0]
    runs = []
    for seed in (1, 1, 2):
        st = BatchState.from_atoms([at])
        MDEngine(lj(), st, ensemble="nvt", timestep_fs=5.0, temperature_K=40.0,
                 seeds=[seed]).run(20)
        runs.append(st.positions)
    assert torch.equal(runs[0], runs[1])
    assert not torch.allclose(runs[0], runs[2], atol=1e-6)


# ------------------------------------------------------------------------------------------
def _engine(frames, outdir, *, temps=(30.0, 50.0, 20.0), n_systems=3, ckpt_every=0,
            with_h5=True):
    st = BatchState.from_atoms(frames)
    reps = [ExtxyzTrajectory(outdir, every=5, n_systems=n_systems),
            ThermoLog(outdir / "thermo.dat", every=5, n_systems=n_systems)]
    if with_h5:
        reps.append(HDF5Trajectory(outdir / "traj.h5", every=5, n_systems=n_systems))
    eng = MDEngine(lj(), st, ensemble="nvt", timestep_fs=5.0, temperature_K=list(temps),
                   friction_per_ps=2.0, seeds=[5, 17, 3], skin=0.3, reporters=reps,
                   checkpoint_path=outdir / "ckpt.pt", checkpoint_every=ckpt_every,
                   noise_block_steps=64)
    return st, eng


def _steps_in(path):
    return [f.info["step"] for f in ase.io.read(path, ":")]


def test_checkpoint_restart_is_bit_identical(tmp_path):
    """2k = 100 steps straight vs: k = 50 steps with checkpoints every 25, the run goes on to
    step 70 (frames written past the checkpoint) and "crashes"; a NEW engine on a fresh state
    loads the checkpoint and runs the remaining 50 steps. NVT with noise (step 50 is in the
    middle of a 64-step noise block) and neighbour lists rebuilt on the way (skin 0.3 Å): the
    final positions and velocities are bit-identical on the CPU, and every reporter's file
    holds each step exactly once, with the same content as the straight run."""
    frames = three_systems()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    st_a, eng_a = _engine(frames, tmp_path / "a")
    eng_a.run(100)

    st_b, eng_b = _engine(frames, tmp_path / "b", ckpt_every=25)
    eng_b.run(70)  # checkpoints at 25 and 50; 55..70 written and then "lost"
    assert eng_b.neighbors.n_builds > 3  # the lists were rebuilt during the run
    del eng_b, st_b

    st_c, eng_c = _engine(frames, tmp_path / "b", ckpt_every=25)
    eng_c.load_checkpoint(tmp_path / "b" / "ckpt.pt")
    assert eng_c.step == 50
    eng_c.run(50)
    assert torch.equal(st_c.positions, st_a.positions)
    assert torch.equal(st_c.velocities, st_a.velocities)
    assert torch.equal(eng_c.forces, eng_a.forces)

    want = list(range(0, 101, 5))
    for s in range(3):
        pa = tmp_path / "a" / f"traj_{s:04d}.extxyz"
        pb = tmp_path / "b" / f"traj_{s:04d}.extxyz"
        assert _steps_in(pb) == want
        fa, fb = ase.io.read(pa, ":"), ase.io.read(pb, ":")
        for x, y in zip(fa, fb, strict=True):
            np.testing.assert_array_equal(x.positions, y.positions)
    assert (tmp_path / "a" / "thermo.dat").read_text() == (tmp_path / "b" / "thermo.dat"
                                                          ).read_text()
    with h5py.File(tmp_path / "a" / "traj.h5") as ha, h5py.File(tmp_path / "b" / "traj.h5") as hb:
        for g in ha:
            assert list(hb[g]["step"][:]) == want
            np.testing.assert_array_equal(ha[g]["positions"][:], hb[g]["positions"][:])


def test_restart_truncates_extxyz_with_default_reporter(tmp_path):
    """The reporters as a user builds them (no ``n_systems``): a restart must still drop the
    frames written after the checkpoint, or every restarted trajectory has duplicated steps."""
    frames = three_systems()
    st = BatchState.from_atoms(frames)
    reps = [ExtxyzTrajectory(tmp_path, every=5), ThermoLog(tmp_path / "thermo.dat", every=5)]
    kw = dict(ensemble="nvt", timestep_fs=5.0, temperature_K=30.0, seeds=[5, 17, 3])
    eng = MDEngine(lj(), st, reporters=reps, **kw)
    eng.run(20)
    eng.save_checkpoint(tmp_path / "ckpt.pt")
    eng.run(10)
    st2 = BatchState.from_atoms(frames)
    reps2 = [ExtxyzTrajectory(tmp_path, every=5), ThermoLog(tmp_path / "thermo.dat", every=5)]
    eng2 = MDEngine(lj(), st2, reporters=reps2, **kw)
    eng2.load_checkpoint(tmp_path / "ckpt.pt")
    eng2.run(10)
    rows = np.loadtxt(tmp_path / "thermo.dat", ndmin=2)
    assert len({(int(r[0]), int(r[2])) for r in rows}) == len(rows) == 3 * 7
    for s in range(3):
        assert _steps_in(tmp_path / f"traj_{s:04d}.extxyz") == list(range(0, 31, 5))


def test_checkpoint_from_another_run_is_refused(tmp_path):
    frames = three_systems()
    (tmp_path / "a").mkdir()
    st, eng = _engine(frames, tmp_path / "a", with_h5=False)
    eng.run(10)
    ckpt = eng.save_checkpoint(tmp_path / "ckpt.pt")

    # other temperatures
    (tmp_path / "t").mkdir()
    _, other = _engine(frames, tmp_path / "t", temps=(30.0, 50.0, 25.0), with_h5=False)
    with pytest.raises(ConfigError, match="another run") as e:
        other.load_checkpoint(ckpt)
    assert "\n" not in str(e.value)
    # other structures (a strained crystal)
    strained = three_systems()
    strained[0].set_cell(strained[0].cell * 1.02, scale_atoms=True)
    (tmp_path / "s").mkdir()
    _, other = _engine(strained, tmp_path / "s", with_h5=False)
    with pytest.raises(ConfigError, match="another run"):
        other.load_checkpoint(ckpt)
    # not a checkpoint at all / missing
    bad = tmp_path / "bad.pt"
    bad.write_text("hello")
    with pytest.raises(ConfigError):
        eng.load_checkpoint(bad)
    with pytest.raises(ConfigError, match="not found"):
        eng.load_checkpoint(tmp_path / "nope.pt")


def test_checkpoint_of_another_molecule_is_refused(tmp_path):
    """Two different molecules with the same atoms (non-periodic: no cell to tell them apart),
    e.g. two conformers. Restoring one's checkpoint into the other's run would silently swap
    the structure; the fingerprint must tell them apart."""
    a = molecule("CH3CH2OH")
    b = a.copy()
    b.positions[:, 0] *= -1.0  # another arrangement of the same atoms
    b.positions[0] += 0.3
    kw = dict(ensemble="nvt", timestep_fs=0.5, temperature_K=300.0, seeds=[0])
    eng_a = MDEngine(ConstantForce([0.0]), BatchState.from_atoms([a]), **kw)
    eng_a.run(2)
    ckpt = eng_a.save_checkpoint(tmp_path / "a.pt")
    eng_b = MDEngine(ConstantForce([0.0]), BatchState.from_atoms([b]), **kw)
    with pytest.raises(ConfigError):
        eng_b.load_checkpoint(ckpt)


# ------------------------------------------------------------------------------------------
def test_stop_condition_freezes_each_system_at_its_plane_crossing():
    """Three 2-atom systems at rest under constant forces f_s (NVE). Velocity Verlet is exact
    for a constant force: x_n = x_0 + a (n dt)^2 / 2. A stop condition fires when the centre of
    mass passes the plane x = L: system s must stop at the first n with a (n dt)^2 / 2 > L,
    stay exactly there while the others go on, and the run ends when all have stopped."""
    from common.units import fs_to_ase

    forces = [0.05, 0.02, 0.01]  # eV/Å
    frames = [Atoms("Ar2", positions=[[0, 0, 0], [0, 5, 0]]) for _ in forces]
    st = BatchState.from_atoms(frames)
    L = 3.3  # Å
    x0 = st.positions[:, 0].clone()

    def stop(state, out, step):
        com = torch.zeros(state.n_systems, dtype=state.dtype).index_add_(
            0, state.system_idx, state.positions[:, 0]) / 2
        return com > L

    dt_fs = 2.0
    eng = MDEngine(ConstantForce(forces), st, ensemble="nve", timestep_fs=dt_fs, stop=stop)
    m = st.masses[0].item()
    dt = fs_to_ase(dt_fs)
    expected = [int(np.floor(np.sqrt(2 * L / (f / m)) / dt)) + 1 for f in forces]
    for n, f in zip(expected, forces, strict=True):  # L is not on a step: no rounding ties
        assert 0.5 * f / m * ((n - 1) * dt) ** 2 < L - 1e-6 < L + 1e-6 < 0.5 * f / m * (n * dt) ** 2
    assert expected == sorted(expected) and len(set(expected)) == 3

    snapshots = {}
    info = None
    for _ in range(50):  # in chunks, recording where each system is
        info = eng.run(40)
        for s in range(3):
            if eng.stopped_at[s] is not None and s not in snapshots:
                snapshots[s] = st.positions[2 * s:2 * s + 2].clone()
        if info["steps"] < 40:
            break
    assert eng.stopped_at == expected
    assert eng.step == max(expected)  # the run ended when the last system stopped
    assert not bool(eng.active.any())
    assert eng.run(10)["steps"] == 0
    for s, n in enumerate(expected):
        a = forces[s] / m
        np.testing.assert_allclose(st.positions[2 * s:2 * s + 2, 0].numpy(),
                                   x0[2 * s:2 * s + 2].numpy() + 0.5 * a * (n * dt) ** 2,
                                   rtol=1e-12)
        assert torch.equal(st.positions[2 * s:2 * s + 2], snapshots[s])  # frozen since


def test_stop_condition_under_langevin_keeps_stopped_system_frozen():
    frames = three_systems()
    st = BatchState.from_atoms(frames)
    off = st.offsets().tolist()
    eng = MDEngine(lj(), st, ensemble="nvt", timestep_fs=5.0, temperature_K=40.0,
                   stop=lambda state, out, step: torch.tensor([step >= 10, False, False]))
    eng.run(10)
    assert eng.stopped_at == [10, None, None]
    frozen = st.positions[off[0]:off[1]].clone()
    frozen_v = st.velocities[off[0]:off[1]].clone()
    others = st.positions[off[1]:].clone()
    eng.run(20)
    assert torch.equal(st.positions[off[0]:off[1]], frozen)
    assert torch.equal(st.velocities[off[0]:off[1]], frozen_v)
    assert float((st.positions[off[1]:] - others).abs().max()) > 1e-3


# ------------------------------------------------------------------------------------------
def _squeezed_pair():
    """System 0: argon crystal at rest. System 1: the same with atom 0 pushed 1.4 Å towards
    its nearest neighbour (2.32 Å apart, |F| = 14 eV/Å: allowed at the start)."""
    a = bulk("Ar", "fcc", a=5.26, cubic=True).repeat((2, 2, 2))
    b = a.copy()
    d = b.get_distances(0, range(1, len(b)), mic=True)
    j = 1 + int(np.argmin(d))
    v = b.get_distance(0, j, mic=True, vector=True)
    b.positions[0] += v / np.linalg.norm(v) * 1.4
    return [a, b]


@pytest.mark.parametrize("order", ["traj_first", "thermo_first"])
def test_blowup_guard_keeps_trajectory_and_writes_last_frame(tmp_path, order):
    """A 10 fs step with two atoms squeezed together blows up (NVE, deterministic): the guard
    must raise SimulationError naming the system, the trajectory up to that step must be on
    disk and readable, and the offending frame must be written to blowup_*.extxyz. The
    reporters are given in both orders (run_md gives the trajectory first)."""
    frames = _squeezed_pair()
    st = BatchState.from_atoms(frames)
    traj = ExtxyzTrajectory(tmp_path, every=1, n_systems=2)
    thermo = ThermoLog(tmp_path / "thermo.dat", every=1, n_systems=2)
    reps = [traj, thermo] if order == "traj_first" else [thermo, traj]
    eng = MDEngine(lj(), st, ensemble="nve", timestep_fs=10.0, reporters=reps)
    with pytest.raises(SimulationError) as e:
        eng.run(200)
    msg = str(e.value)
    assert "\n" not in msg
    assert "system 1" in msg and "blew up" in msg
    n = eng.step
    assert 1 < n < 200
    for s in range(2):
        frames_s = ase.io.read(tmp_path / f"traj_{s:04d}.extxyz", ":")
        assert [f.info["step"] for f in frames_s] == list(range(n))
        assert len(frames_s[-1]) == 32
    rows = np.loadtxt(tmp_path / "thermo.dat", ndmin=2)
    assert sorted(set(rows[:, 0].astype(int))) == list(range(n))
    dumps = sorted(tmp_path.glob("blowup_*.extxyz"))
    assert [p.name for p in dumps] == [f"blowup_system_0001_step_{n}.extxyz"]
    last = ase.io.read(dumps[0])
    assert len(last) == 32
    assert str(dumps[0]) in msg


def test_guard_does_not_fire_with_a_sane_timestep():
    st = BatchState.from_atoms(_squeezed_pair())
    MDEngine(lj(), st, ensemble="nve", timestep_fs=1.0).run(100)
    assert bool(torch.isfinite(st.positions).all())


def test_guard_refuses_a_start_with_huge_forces(tmp_path):
    a = Atoms("Ar2", positions=[[0, 0, 0], [1.0, 0, 0]])  # 1 Å apart: |F| ~ 1e5 eV/Å
    with pytest.raises(SimulationError, match="system 0"):
        MDEngine(lj(), BatchState.from_atoms([a]), ensemble="nve",
                 reporters=[ThermoLog(tmp_path / "t.dat")])


def test_engine_rejects_bad_settings():
    st = BatchState.from_atoms(three_systems())
    for kw, where in [(dict(timestep_fs=0.0), "timestep"), (dict(timestep_fs=-1.0), "timestep"),
                      (dict(temperature_K=0.0), "temperature"),
                      (dict(temperature_K=[30.0, -1.0, 20.0]), "temperature"),
                      (dict(temperature_K=[30.0, 40.0]), "temperature"),
                      (dict(friction_per_ps=0.0), "friction"), (dict(seeds=[1, 2]), "seeds"),
                      (dict(ensemble="npe"), "ensemble")]:
        with pytest.raises(ConfigError) as e:
            MDEngine(lj(), st, **kw)
        assert where in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ConfigError):
        MDEngine(lj(), st).run(-1)


def test_running_in_chunks_reports_each_step_once(tmp_path):
    """run(0) (e.g. to write the starting frame), then several chunks: the thermo log and the
    trajectory hold every step once."""
    st = BatchState.from_atoms(three_systems()[:1])
    thermo = ThermoLog(tmp_path / "t.dat", every=1, n_systems=1)
    traj = ExtxyzTrajectory(tmp_path, every=1, n_systems=1)
    eng = MDEngine(lj(), st, ensemble="nvt", timestep_fs=5.0, temperature_K=30.0,
                   reporters=[traj, thermo])
    for n in (0, 0, 3, 2):
        eng.run(n)
    assert list(np.loadtxt(tmp_path / "t.dat", ndmin=2)[:, 0].astype(int)) == list(range(6))
    assert _steps_in(tmp_path / "traj_0000.extxyz") == list(range(6))


def test_fixed_atoms_do_not_move_under_langevin():
    from ase.constraints import FixAtoms

    slab = fcc111("Ar", (2, 2, 3), a=5.26, vacuum=6.0)
    bottom = [a.index for a in slab if a.tag == 3]
    slab.set_constraint(FixAtoms(indices=bottom))
    st = BatchState.from_atoms([slab])
    assert int(st.fixed.sum()) == len(bottom) == 4
    assert float(st.degrees_of_freedom()[0]) == 3 * (len(slab) - 4)
    start = st.positions.clone()
    MDEngine(lj(), st, ensemble="nvt", timestep_fs=5.0, temperature_K=40.0).run(50)
    assert torch.equal(st.positions[st.fixed], start[st.fixed])
    assert float(st.velocities[st.fixed].abs().max()) == 0.0
    assert float((st.positions[~st.fixed] - start[~st.fixed]).abs().max()) > 1e-3


def test_stop_system_on_blowup_freezes_only_that_system(tmp_path):
    """on_blowup='stop_system': the replica that blows up is frozen and reported, the
    others finish their steps with finite, moving positions."""
    from ase import Atoms as _Atoms

    from common.md.engine import MDEngine as _Engine
    from common.md.reporters import ThermoLog as _Thermo
    from common.md.state import BatchState as _State
    from common.potential.pair import LennardJones as _LJ

    calm = _Atoms("Ar2", positions=[[0, 0, 0], [3.8, 0, 0]])
    calm.set_velocities([[0, 0, 0], [0.001, 0, 0]])
    wild = _Atoms("Ar2", positions=[[0, 0, 0], [3.8, 0, 0]])
    # 0.2 eV of kinetic energy drives the pair to ~3 Å, where |F| ~ 0.8 eV/Å exceeds the
    # guard's 0.5 eV/Å limit; the calm pairs sit at the LJ minimum with |F| ~ 1e-3 eV/Å
    wild.set_velocities([[0, 0, 0], [-0.1, 0, 0]])
    state = _State.from_atoms([calm, wild, calm.copy()])
    from common.md.guard import BlowUpGuard as _Guard

    eng = _Engine(_LJ(0.0104, 3.4, rc=8.0), state, ensemble="nve", timestep_fs=2.0,
                  on_blowup="stop_system", guard=_Guard(max_force_eV_A=0.5),
                  reporters=[_Thermo(tmp_path / "t.dat", every=1)])
    start = state.positions.clone()
    eng.run(200)
    assert list(eng.failed) == [1]
    assert eng.stopped_at[1] is not None and eng.stopped_at[0] is None
    assert bool(torch.isfinite(state.positions).all())
    frozen = state.positions[2:4].clone()
    eng.run(5)
    assert torch.equal(state.positions[2:4], frozen)  # frozen system stays put
    assert eng.step == 205
    assert not torch.equal(state.positions[0:2], start[0:2])  # the calm pairs kept moving
    assert not torch.equal(state.positions[4:6], start[4:6])
