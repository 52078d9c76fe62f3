"""``run_md`` with per-system settings: temperatures, force-term parameters sliced with each
batch, stateful terms (never touched by the batch-size trial, restored after kill -9), stop
conditions, and the bad inputs that must be one-line errors before anything is written."""

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
from ase.build import bulk

from common.errors import ConfigError, DataError
from common.md.runner import per_system_values, read_thermo, replicate, run_md
from common.potential.pair import LennardJones
from common.units import KB_EV_PER_K

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[2]
QUIET = dict(progress=False, compile=False)


def lj():
    return LennardJones(epsilon=0.0104, sigma=3.40, rc=8.5)


def argon():
    return bulk("Ar", "fcc", a=5.26, cubic=True).repeat((2, 2, 2))


class Tether:
    """Harmonic tether of every atom to its starting position, one spring constant per
    system (eV/Å²): the kind of per-system parameter a TI window or an Einstein crystal has."""

    cutoff = 0.0

    def __init__(self, k_eV_A2, reference: torch.Tensor | None = None):
        self.k = torch.as_tensor(k_eV_A2, dtype=torch.float64)
        self.reference = reference

    def select(self, idx):
        return Tether(self.k[idx], None)

    def params(self):
        return {"k": self.k.tolist()}

    def __call__(self, state, neighbors):
        if self.reference is None:
            self.reference = state.positions.detach().clone()
        d = state.positions - self.reference
        k = self.k.to(state.dtype)[state.system_idx].unsqueeze(-1)
        e_atom = 0.5 * (k * d * d).sum(-1)
        energy = torch.zeros(state.n_systems, dtype=state.dtype).index_add_(
            0, state.system_idx, e_atom)
        return {"energy": energy, "forces": -k * d}


class Counter:
    """A stateful term: counts the MD steps it has seen per system (zero force)."""

    cutoff = 0.0

    def __init__(self, counts):
        self.counts = np.asarray(counts, dtype=int).copy()

    def select(self, idx):
        return Counter(self.counts[idx])

    def __call__(self, state, neighbors):
        return {"energy": torch.zeros(state.n_systems, dtype=state.dtype),
                "forces": torch.zeros_like(state.positions)}

    def after_step(self, state, out, step):
        self.counts += 1

    def state_dict(self):
        return {"counts": self.counts.tolist()}

    def load_state_dict(self, d):
        self.counts = np.asarray(d["counts"], dtype=int)


# ------------------------------------------------------------------------------------------
def test_per_system_values_order_and_errors():
    assert per_system_values(5.0, 2, 3, "x").tolist() == [5.0] * 6
    assert per_system_values([1, 2], 2, 3, "x").tolist() == [1, 1, 1, 2, 2, 2]
    assert per_system_values(range(6), 2, 3, "x").tolist() == [0, 1, 2, 3, 4, 5]
    with pytest.raises(ConfigError, match="4 values for 2 structures x 3 replicas") as e:
        per_system_values([1, 2, 3, 4], 2, 3, "temperature_K")
    assert "\n" not in str(e.value)


def test_maxwell_boltzmann_at_each_systems_own_temperature():
    """2 structures of 4000 Ar atoms, 100 K and 900 K: the kinetic temperature of each
    replica is its own target within 4 standard errors (relative SE = sqrt(2/(3N - 3)))."""
    big = bulk("Ar", "fcc", a=5.26, cubic=True).repeat((10, 10, 10))
    systems, seeds = replicate([big, big], 2, seed=4, temperature_K=[100.0, 100.0, 900.0, 900.0])
    assert seeds == [4, 5, 6, 7]
    for a, target in zip(systems, [100.0, 100.0, 900.0, 900.0], strict=True):
        ke = 0.5 * (a.get_masses()[:, None] * a.get_velocities() ** 2).sum()
        t = 2 * ke / ((3 * len(a) - 3) * KB_EV_PER_K)
        assert abs(t / target - 1) < 4 * np.sqrt(2 / (3 * len(a) - 3))


@pytest.fixture(scope="module")
def three_temperatures(tmp_path_factory):
    """3 argon crystals at 100/300/900 K (one per system), in batches of 1, 2 and 3."""
    base = tmp_path_factory.mktemp("temps")
    kw = dict(ensemble="nvt", timestep_fs=5.0, temperature_K=[100.0, 300.0, 900.0],
              friction_per_ps=10.0, steps=400, seed=11, traj_every=200, thermo_every=1,
              **QUIET)
    return {b: run_md([argon(), argon(), argon()], lj(), base / f"b{b}", batch_size=b, **kw)
            for b in (1, 2, 3)}, base


def test_per_system_temperatures_in_any_batch_size(three_temperatures):
    """Each system's mean kinetic temperature over the second half (200 samples, correlation
    time 1/(2 gamma) = 10 steps, as in test_md_physics) is its target within 4 SE, with
    SE = T sqrt(2/(3N-3)) sqrt(2 tau / n); batches of 1, 2 and 3 give the same numbers."""
    runs, base = three_temperatures
    logs = {b: read_thermo(base / f"b{b}" / "thermo.dat") for b in runs}
    for b, s in runs.items():
        assert s["target_temperature_K"] == [100.0, 300.0, 900.0]
        cfg = json.loads((base / f"b{b}" / "run.json").read_text())["config"]
        assert cfg["temperature_K"] == [100.0, 300.0, 900.0]
        assert s["batch_size"] == b
        for k, target in enumerate((100.0, 300.0, 900.0)):
            t = logs[b]["T_K"][logs[b]["system"] == k]
            half = t[len(t) // 2:]
            se = target * np.sqrt(2 / 93) * np.sqrt(2 * 10 / len(half))
            assert abs(half.mean() - target) < 4 * se, (b, k, half.mean(), se)
    def by_system(log, key):
        order = np.lexsort((log["step"], log["system"]))
        return log[key][order]

    for b in (2, 3):
        for key in ("T_K", "Epot_eV"):
            np.testing.assert_allclose(by_system(logs[b], key), by_system(logs[1], key),
                                       rtol=1e-8, atol=1e-8)


def test_term_parameters_are_sliced_with_each_batch(tmp_path):
    """A tether with k = 0, 0.5, 5 eV/Å² per system: batches of 1 and 3 agree, and the
    stiffest system moves least (its own k was used, not another system's)."""
    frames = [argon(), argon(), argon()]
    kw = dict(ensemble="nvt", timestep_fs=5.0, temperature_K=60.0, friction_per_ps=5.0,
              steps=60, seed=2, traj_every=60, **QUIET)
    one = run_md(frames, lj(), tmp_path / "one", batch_size=1, terms=[Tether([0.0, 0.5, 5.0])],
                 **kw)
    all3 = run_md(frames, lj(), tmp_path / "all", batch_size=3,
                  terms=[Tether([0.0, 0.5, 5.0])], **kw)
    msd = []
    for a, b in zip(one["trajectories"], all3["trajectories"], strict=True):
        fa, fb = ase.io.read(a, ":"), ase.io.read(b, ":")
        np.testing.assert_allclose(fa[-1].positions, fb[-1].positions, atol=1e-9)
        msd.append(((fa[-1].positions - fa[0].positions) ** 2).sum(-1).mean())
    assert msd[2] < msd[1] < msd[0]


def test_wrong_number_of_term_values_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="values for 1 structures"):
        run_md([argon()], lj(), tmp_path / "r", replicas=2, steps=5,
               temperature_K=[300.0, 200.0, 100.0], **QUIET)
    assert not (tmp_path / "r").exists()


def test_stateful_term_not_touched_by_batch_size_trial(tmp_path):
    """With batch size auto the engine times trial steps on copies: the counter saved in the
    final checkpoint counts exactly the run's own steps."""
    out = tmp_path / "count"
    s = run_md([argon()] * 2, lj(), out, steps=30, traj_every=10, checkpoint_every=10,
               terms=[Counter([0, 0])], **QUIET)
    counts = []
    for ck in sorted((out / "checkpoints").glob("*.pt")):
        d = torch.load(ck, weights_only=False)
        counts += d["terms"][0]["counts"]
    assert counts == [30, 30], (counts, s["batch_table"])


def test_stateful_term_without_select_runs_as_one_batch(tmp_path):
    with pytest.raises(ConfigError, match="cannot be split into batches"):
        run_md([argon()] * 2, lj(), tmp_path / "a", steps=5, batch_size=1,
               terms=[_NoSelectCounter([0, 0])], **QUIET)
    s = run_md([argon()] * 2, lj(), tmp_path / "b", steps=5, terms=[_NoSelectCounter([0, 0])],
               **QUIET)
    assert s["batch_size"] == 2 and s["batch_table"] == []


class _NoSelectCounter:
    cutoff = 0.0

    def __init__(self, counts):
        self.counts = np.asarray(counts, dtype=int)

    def __call__(self, state, neighbors):
        return {"energy": torch.zeros(state.n_systems, dtype=state.dtype),
                "forces": torch.zeros_like(state.positions)}

    def state_dict(self):
        return {"counts": self.counts.tolist()}

    def load_state_dict(self, d):
        self.counts = np.asarray(d["counts"])


class StopAt:
    """Stops system k of the run at step ``at[k]``."""

    def __init__(self, at):
        self.at = list(at)

    def select(self, idx):
        return StopAt([self.at[i] for i in idx])

    def __call__(self, state, out, step):
        return torch.tensor([step >= a for a in self.at])


def test_stop_conditions_per_system_through_run_md(tmp_path):
    s = run_md([argon()] * 3, lj(), tmp_path / "stop", steps=40, batch_size=2,
               stop=StopAt([10, 25, 1000]), traj_every=5, **QUIET)
    assert s["stopped"] == {"0": 10, "1": 25}
    log = read_thermo(tmp_path / "stop" / "thermo.dat")
    for k, at in ((0, 10), (1, 25)):
        x = ase.io.read(s["trajectories"][k], ":")
        steps = [f.info["step"] for f in x]
        frozen = [f.positions for f in x if f.info["step"] >= at]
        assert all(np.array_equal(frozen[0], p) for p in frozen), steps
    assert log["step"].max() == 40
    final = ase.io.read(s["final_structures"], ":")
    assert [f.info["system"] for f in final] == [0, 1, 2]
    assert [f.info["step"] for f in final] == [10, 25, 40]
    assert [f.info["stopped"] for f in final] == [True, True, False]
    last0 = ase.io.read(s["trajectories"][0], "-1")
    np.testing.assert_array_equal(final[0].positions, last0.positions)


def test_no_trajectory_still_gives_final_structures(tmp_path):
    """traj_every=0 (thousands of short trajectories, QCT): no trajectory files, the thermo
    log and every system's final state are still written."""
    s = run_md([argon()] * 3, lj(), tmp_path / "quiet", steps=20, traj_every=0, batch_size=2,
               **QUIET)
    assert s["trajectories"] == [] and not list((tmp_path / "quiet").glob("traj_*"))
    final = ase.io.read(s["final_structures"], ":")
    assert len(final) == 3 and all(f.info["step"] == 20 for f in final)
    assert read_thermo(s["thermo"])["step"].max() == 20


# ------------------------------------------------------------------------------------------
HILLS_RUN = textwrap.dedent("""
    import os, signal, sys
    import numpy as np, torch
    torch.set_num_threads(1)
    import ase.io
    sys.path.insert(0, sys.argv[4])
    from hills import Hills
    from common.md.runner import run_md
    from common.potential.pair import LennardJones

    frames = ase.io.read(sys.argv[1], ":")
    kw = eval(sys.argv[3])
    kill_at = int(sys.argv[5])
    run_md(frames, LennardJones(0.0104, 3.40, rc=8.5), sys.argv[2],
           terms=[Hills(len(frames) * kw["replicas"], kill_at=kill_at)], **kw)
    print("finished")
""")

HILLS = textwrap.dedent('''
    import os, signal
    import numpy as np, torch

    class Hills:
        """Metadynamics-like: every 5 steps deposit a Gaussian hill (0.01 eV, 0.2 Å) at
        atom 0's current x; the bias acts on atom 0's x. State: the hills per system."""
        cutoff = 0.0

        def __init__(self, n, centres=None, kill_at=0, steps_seen=0):
            self.centres = centres if centres is not None else [[] for _ in range(n)]
            self.kill_at, self.steps_seen = kill_at, steps_seen

        def select(self, idx):
            return Hills(0, [list(self.centres[i]) for i in idx], self.kill_at)

        def params(self):
            return {"height": 0.01, "width": 0.2, "pace": 5}

        def __call__(self, state, neighbors):
            off = state.offsets()[:-1]
            x = state.positions[off, 0]
            e = torch.zeros(state.n_systems, dtype=state.dtype)
            f = torch.zeros_like(state.positions)
            for s, cs in enumerate(self.centres):
                if cs:
                    c = torch.tensor(cs, dtype=state.dtype)
                    g = 0.01 * torch.exp(-(x[s] - c) ** 2 / (2 * 0.2 ** 2))
                    e[s] = g.sum()
                    f[off[s], 0] = (g * (x[s] - c) / 0.2 ** 2).sum()
            return {"energy": e, "forces": f}

        def after_step(self, state, out, step):
            self.steps_seen += 1
            if step % 5 == 0:
                x = state.positions[state.offsets()[:-1], 0]
                for s in range(state.n_systems):
                    self.centres[s].append(float(x[s]))
            if self.kill_at and step == self.kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

        def state_dict(self):
            return {"centres": self.centres}

        def load_state_dict(self, d):
            self.centres = [list(c) for c in d["centres"]]
''')


def test_biased_run_killed_and_restarted_continues_with_the_same_bias(tmp_path):
    """A run with a hill-depositing bias is SIGKILLed at step 33 (checkpoints every 10); the
    restart reloads the hills from the step-30 checkpoint, and the final trajectories equal an
    uninterrupted run's bit for bit."""
    (tmp_path / "hills.py").write_text(HILLS)
    src = tmp_path / "frames.extxyz"
    ase.io.write(src, [argon()])
    kw = dict(ensemble="nvt", timestep_fs=5.0, temperature_K=40.0, friction_per_ps=2.0,
              steps=50, replicas=2, seed=3, batch_size="auto", traj_every=5,
              checkpoint_every=10, progress=False, compile=False)
    script = tmp_path / "run.py"
    script.write_text(HILLS_RUN)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}

    def go(out, kill_at):
        return subprocess.run([sys.executable, str(script), str(src), str(out), repr(kw),
                               str(tmp_path), str(kill_at)], env=env, cwd=REPO,
                              capture_output=True, text=True, timeout=120)

    killed = go(tmp_path / "killed", 33)
    assert killed.returncode == -9, killed.stderr[-2000:]
    kw["restart"] = True
    again = go(tmp_path / "killed", 0)
    assert again.returncode == 0 and "finished" in again.stdout, again.stderr[-2000:]
    kw["restart"] = False
    straight = go(tmp_path / "straight", 0)
    assert straight.returncode == 0, straight.stderr[-2000:]
    for k in range(2):
        a = ase.io.read(tmp_path / "killed" / f"traj_{k:04d}.extxyz", ":")
        b = ase.io.read(tmp_path / "straight" / f"traj_{k:04d}.extxyz", ":")
        assert [f.info["step"] for f in a] == list(range(0, 51, 5))
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x.positions, y.positions)
    ck = torch.load(next((tmp_path / "killed" / "checkpoints").glob("*.pt")), weights_only=False)
    assert [len(c) for c in ck["terms"][0]["centres"]][0] == 10  # hills at steps 5..50


# ------------------------------------------------------------------------------------------
def _nan_frame():
    a = argon()
    a.positions[3, 1] = np.nan
    return a


@pytest.mark.parametrize("kwargs,frames,err,word", [
    (dict(steps=0), None, ConfigError, "steps"),
    (dict(traj_every=-1), None, ConfigError, "trajectory interval"),
    (dict(thermo_every=-1), None, ConfigError, "thermo interval"),
    (dict(checkpoint_every=-5), None, ConfigError, "checkpoint interval"),
    (dict(batch_size=0), None, ConfigError, "batch size"),
    (dict(batch_size=-3), None, ConfigError, "batch size"),
    (dict(device="gpu"), None, ConfigError, "unknown device"),
    (dict(device="cuda:7"), None, ConfigError, "CUDA" if not torch.cuda.is_available()
     else "no GPU"),
    (dict(ensemble="npt"), None, ConfigError, "pressure"),
    (dict(pressure_bar=1.0), None, ConfigError, "only applies to NPT"),
    (dict(ensemble="npt", pressure_bar=1.0, barostat="berendsen"), None, ConfigError,
     "barostat"),
    (dict(on_blowup="ignore"), None, ConfigError, "on_blowup"),
    (dict(friction_per_ps=[1.0, 2.0]), None, ConfigError, "2 values for 1 structures"),
    (dict(), "nan", DataError, "non-finite positions"),
])
def test_bad_inputs_fail_before_writing(tmp_path, kwargs, frames, err, word):
    frames = [_nan_frame()] if frames == "nan" else [argon()]
    out = tmp_path / "run"
    with pytest.raises(err) as e:
        run_md(frames, lj(), out, **{"steps": 5, **QUIET, **kwargs})
    msg = str(e.value)
    assert word in msg and "\n" not in msg and "fix:" in msg, msg
    assert not out.exists()


def test_output_path_that_is_a_file(tmp_path):
    f = tmp_path / "taken"
    f.write_text("keep me")
    with pytest.raises(ConfigError, match="is a file"):
        run_md([argon()], lj(), f, steps=5, **QUIET)
    assert f.read_text() == "keep me"


def test_restart_names_the_setting_that_differs(tmp_path):
    kw = dict(steps=10, traj_every=5, batch_size=1, checkpoint_every=5, **QUIET)
    run_md([argon()], lj(), tmp_path / "r", temperature_K=50.0, **kw)
    with pytest.raises(ConfigError, match=r"temperature_K \(was 50.0, now 60.0\)"):
        run_md([argon()], lj(), tmp_path / "r", temperature_K=60.0, restart=True, **kw)


def test_blowup_names_the_system_and_its_own_atom(tmp_path):
    """Second structure explodes at the start: the message names system 1 and the atom's
    index within its own structure (< 32), and leaves no folder a rerun would trip over."""
    from common.errors import SimulationError

    good, bad = argon(), argon()
    bad.positions[5] = bad.positions[4] + [0.8, 0.0, 0.0]
    for batch_size in ("auto", 2):
        out = tmp_path / f"b{batch_size}"
        with pytest.raises(SimulationError) as e:
            run_md([good, bad], lj(), out, steps=5, batch_size=batch_size, **QUIET)
        msg = str(e.value)
        assert "atom 4" in msg or "atom 5" in msg, msg
        assert "system 1" in msg and "nothing written" in msg, msg
        assert not out.exists()
