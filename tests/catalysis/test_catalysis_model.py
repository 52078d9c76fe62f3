"""SchNet adapter: trains through schnetpack, loads, agrees with schnetpack's own calculator,
conserves energy in NVE MD, drives batched MD with an ensemble, passes common.testing's
adapter checks, refuses elements it never saw, and checks the device before writing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import add_adsorbate, fcc111, molecule
from ase.calculators.emt import EMT

from catalysis.model import SchNetAdapter, load_config
from common.data import Dataset
from common.errors import ConfigError, DataError
from common.labels import label_now
from common.md.engine import MDEngine
from common.md.noise import maxwell_boltzmann
from common.md.state import BatchState
from common.potential.committee import Committee
from common.potential.protocol import ModelAdapter, evaluate
from common.potential.registry import load_saved
from common.testing import check_adapter


def _slab_co():
    slab = fcc111("Cu", size=(2, 2, 3), vacuum=6.0)
    add_adsorbate(slab, molecule("CO"), height=1.9, position="ontop", mol_index=0)
    return slab


def _emt_frames(n, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        a = _slab_co()
        a.rattle(float(rng.uniform(0.02, 0.1)), seed=seed * 100 + k)
        out.append(label_now(a, EMT()))
    return Dataset.from_frames(out)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    ds = _emt_frames(30)
    tr, va, te = ds.split((0.8, 0.1, 0.1), seed=0)
    cfg = load_config("tiny", max_epochs=8, patience=8, n_atom_basis=16, n_interactions=2)
    workdir = tmp_path_factory.mktemp("schnet")
    model = SchNetAdapter.train(tr, va, workdir, config=cfg, seed=0, test=te)
    return model, workdir, te


def test_training_writes_model_metrics_and_parity_plot(trained):
    model, workdir, _ = trained
    assert (workdir / "best_model").exists()
    assert (workdir / "parity_test.png").stat().st_size > 1000
    m = model.meta["metrics"]["test"]
    assert m["n_frames"] > 0
    assert np.isfinite(m["force_mae_eV_A"]) and np.isfinite(m["energy_mae_eV_per_atom"])
    assert (workdir / "splitting.lock").exists()


def test_batched_module_equals_schnetpack_calculator(trained):
    model, workdir, te = trained
    loaded = SchNetAdapter.load(workdir)
    frames = [te[0], te[1]]
    out = evaluate(loaded.batched(), frames)
    n0 = len(frames[0])
    for k, a in enumerate(frames):
        b = a.copy()
        b.calc = loaded.calculator()
        sl = slice(0, n0) if k == 0 else slice(n0, n0 + len(a))
        assert abs(b.get_potential_energy() - float(out["energy"][k])) < 1e-8
        np.testing.assert_allclose(b.get_forces(), out["forces"][sl].numpy(), atol=1e-8)


def test_nve_energy_conservation_with_trained_schnet(trained):
    """Velocity Verlet on a smooth potential: total energy fluctuates by O(dt^2) around a
    constant. With dt = 0.5 fs the fluctuation must be a small fraction of the potential
    energy's own fluctuation (which is of order the kinetic energy, ~ N kT) and show no
    drift beyond a few fluctuation widths."""
    model, _, _ = trained
    a = _slab_co()
    a.set_velocities(maxwell_boltzmann(a.get_masses(), 300.0, 1))
    state = BatchState.from_atoms([a])
    eng = MDEngine(model.batched(), state, ensemble="nve", timestep_fs=0.5)
    etot, epot = [], []
    for _ in range(200):
        eng.run(1)
        e = float(eng.out["energy"][0])
        epot.append(e)
        etot.append(e + float(state.kinetic_energy()[0]))
    etot, epot = np.array(etot), np.array(epot)
    assert etot.std() < 0.05 * epot.std(), (etot.std(), epot.std())
    slope = np.polyfit(np.arange(len(etot)), etot, 1)[0] * len(etot)
    assert abs(slope) < 3 * etot.std() + 1e-6
    # the barely trained model's minimum is far from the start, so potential energy turns into
    # heat (a strong test of conservation); the run must stay finite
    assert np.isfinite(etot).all() and np.isfinite(float(state.temperature_K()[0]))


def test_ensemble_md_flags_uncertain_frames(tmp_path):
    from common.md.runner import run_md

    members = [SchNetAdapter.untrained(tmp_path / f"m{k}", load_config(
        "tiny", n_atom_basis=8, n_interactions=1), seed=k).batched() for k in range(2)]
    ens = Committee(members)
    s = run_md([_slab_co()], ens, tmp_path / "md", ensemble="nvt", temperature_K=300.0,
               timestep_fs=0.5, steps=10, replicas=3, traj_every=5, progress=False,
               flag_deviation_eV_A=0.0)
    assert s["n_flagged"] > 0
    out = evaluate(ens, [_slab_co()])
    assert float(out["max_force_deviation"][0]) > 0.0


def test_load_refuses_a_folder_without_a_model(tmp_path):
    with pytest.raises(ConfigError, match="mlp-cases-model.json"):
        SchNetAdapter.load(tmp_path)


def test_untrained_model_round_trips_through_save_and_load(tmp_path):
    m = SchNetAdapter.untrained(tmp_path / "u", load_config("tiny", n_atom_basis=8,
                                                             n_interactions=1))
    again = SchNetAdapter.load(tmp_path / "u")
    x = evaluate(m.batched(), [_slab_co()])["energy"]
    y = evaluate(again.batched(), [_slab_co()])["energy"]
    assert torch.equal(x, y)


def test_schnet_passes_check_adapter(trained, tmp_path):
    """The shared adapter checks (common.testing); the committee for the committee-folder
    round trip is the trained model and an untrained one with the same elements."""
    model, _, te = trained
    assert isinstance(model, ModelAdapter)
    other = SchNetAdapter.untrained(tmp_path / "other", model.meta["config"], seed=1,
                                    elements=list(model.elements))
    report = check_adapter(model, list(te), tmp_path / "check", committee=[other])
    # stress by the strain derivative through schnetpack's own modules (the slab is periodic)
    assert report["stress"]["fd_stress_eV_A3"] < 1e-6
    assert report["elements"] == {"elements_violations": 0.0}
    assert report["forces"]["fd_forces_eV_A"] < 1e-5  # measured 1.5e-7


def test_trained_model_records_and_enforces_its_elements(trained):
    model, workdir, te = trained
    assert model.meta["elements"] == ["C", "O", "Cu"] == list(model.elements)
    bad = te[0].copy()
    bad.numbers[[3, 13]] = [1, 92]  # H for a Cu atom, U for the O of CO
    for pot in (model.batched(), load_saved(workdir)):
        with pytest.raises(DataError, match=r"structure 1: element H \(atom 3\) is not one "
                                            r"this model was trained on \(C, O, Cu\)"):
            evaluate(pot, [te[1], bad])
    bad.calc = model.calculator()
    with pytest.raises(DataError, match=r"element H \(atom 3\)"):
        bad.get_potential_energy()


@pytest.mark.parametrize("device", ["cuda:99", "tpu"] + (
    [] if torch.cuda.is_available() else ["cuda"]))
def test_train_checks_the_device_before_writing_anything(tmp_path, device):
    ds = _emt_frames(3)
    with pytest.raises(ConfigError) as err:
        SchNetAdapter.train(ds[:2], ds[2:], tmp_path / "model", device=device)
    assert err.value.where == "device"
    assert not (tmp_path / "model").exists()


def test_schnet_stress_drives_npt(tmp_path):
    """SchNet gives stress (strain derivative), so NPT accepts it and the run reports a
    pressure and a changing volume."""
    from ase.build import bulk

    from common.md.runner import run_md

    model = SchNetAdapter.untrained(tmp_path / "u", load_config("tiny", n_atom_basis=8,
                                                                 n_interactions=1),
                                    elements=["C", "O", "Cu"])
    xtal = bulk("Cu", "fcc", a=3.6, cubic=True) * (2, 2, 2)
    s = run_md([xtal], model.batched(), tmp_path / "npt", steps=20, timestep_fs=1.0,
               temperature_K=300.0, ensemble="npt", pressure_bar=1.0, traj_every=0, seed=0,
               progress=False)
    assert np.isfinite(s["mean_pressure_bar"]) and s["mean_volume_A3"] > 0
    assert abs(s["mean_volume_A3"] - xtal.get_volume()) > 1e-6
