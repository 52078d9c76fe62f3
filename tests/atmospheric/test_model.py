"""NequIP adapter: trains through ``nequip-train`` (Hydra config generated from ours), passes
common.testing's adapter checks (batched module == nequip's ASE calculator, finite-difference
forces and stress, mixed batches, save/load, committee, float32, unseen elements), drives the
MD engine, refuses bad configs and devices before writing anything; compiles with
``nequip-compile`` (slow).

The default tests share one trained model (one ``nequip-train`` run, ~30 s of the module's
time) and run check_adapter on it; check_adapter's own training of a committee of two (a
second ``nequip-train`` run, members with different seeds) is the slow test.

The labels are GFN2-xTB (tblite, ~6 ms a frame) on rattled H2O, CH4 and OH (a doublet, at an
electronic temperature of 1000 K), each in a 12 Å periodic box: the molecules never see their
images within the 4 Å cutoff, and the box gives nequip a cell to take the stress from.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from ase import Atoms
from ase.build import molecule

from atmospheric.model import (
    NequIPAdapter,
    NequIPBatched,
    fit_energy_shifts,
    load_config,
    nequip_config,
    run_nequip,
)
from common.data import Dataset
from common.errors import ConfigError, DataError
from common.labels import label_now, make_spec
from common.md.engine import MDEngine
from common.md.noise import maxwell_boltzmann
from common.md.state import BatchState
from common.potential.committee import load_committee_folder
from common.potential.protocol import ModelAdapter, evaluate
from common.potential.registry import load_saved
from common.testing import check_adapter

#: tiny model for the tests: the tiny config, 10 epochs (plumbing, not accuracy)
EPOCHS = 10
BOX_A = 12.0


def _molecule(name: str) -> Atoms:
    if name == "OH":
        return Atoms("OH", positions=[[0.0, 0.0, 0.0], [0.0, 0.0, 0.97]])
    return molecule(name)


def _frames(n: int, seed: int = 0) -> Dataset:
    """n rattled molecules (H2O, CH4, OH in turn) labelled with GFN2-xTB, in a periodic box."""
    out = []
    for k in range(n):
        name = ("H2O", "CH4", "OH")[k % 3]
        a = _molecule(name)
        a.rattle(0.05, seed=seed * 1000 + k)
        spec = make_spec("xtb", multiplicity=2 if name == "OH" else 1,
                         electronic_temperature_K=1000.0)
        b = label_now(a, spec)
        b.cell, b.pbc = np.eye(3) * BOX_A, True
        b.center()
        out.append(b)
    return Dataset.from_frames(out)


@pytest.fixture(scope="module")
def frames15():
    return _frames(15)


@pytest.fixture(scope="module")
def checked(tmp_path_factory, frames15):
    """One NequIP trained with nequip-train on the frames (every 5th for validation, as
    check_adapter splits them; seed 0), and check_adapter run on it (its committee check on
    a committee of two copies)."""
    workdir = tmp_path_factory.mktemp("nequip")
    frames = frames15
    is_valid = np.arange(len(frames)) % 5 == 0
    model = NequIPAdapter.train(frames[~is_valid], frames[is_valid], workdir / "member_0",
                                config=load_config("tiny", max_epochs=EPOCHS), seed=0)
    report = check_adapter(model, list(frames), workdir / "check")
    return report, workdir, [NequIPAdapter.load(workdir / "member_0")], frames


def _check_report(report: dict) -> None:
    assert report["elements"] == {"elements_violations": 0.0}
    assert "skipped" not in report["stress"]  # nequip's own stress is checked
    assert report["calculator"]["calculator_energy_eV_per_atom"] < 1e-10
    assert report["calculator"]["calculator_forces_eV_A"] < 1e-10
    assert report["forces"]["fd_forces_eV_A"] < 1e-5


def test_nequip_passes_check_adapter(checked):
    report, _, members, _ = checked
    assert isinstance(members[0], ModelAdapter)
    _check_report(report)


@pytest.mark.slow
def test_check_adapter_trains_a_committee_of_two(tmp_path, frames15):
    """check_adapter on the class: it trains a committee of two (seeds 0 and 1) with
    nequip-train, runs every check on the first member; the members differ and load as a
    committee."""
    report = check_adapter(NequIPAdapter, list(frames15), tmp_path, train_kwargs={
        "config": load_config("tiny", max_epochs=EPOCHS), "seed": 0})
    _check_report(report)
    folder = tmp_path / "committee"
    members = [NequIPAdapter.load(folder / f"member_{k}") for k in range(2)]
    assert [m.meta["seed"] for m in members] == [0, 1]
    committee = json.loads((folder / "mlp-cases-model.json").read_text())
    assert committee["member_framework"] == "nequip"
    assert committee["elements"] == ["H", "C", "O"]
    out = evaluate(load_committee_folder(folder), [frames15[0], frames15[1]])
    assert float(out["max_force_deviation"].min()) > 0.0
    e0 = evaluate(members[0].batched(), [frames15[0]])["energy"]
    e1 = evaluate(members[1].batched(), [frames15[0]])["energy"]
    assert not torch.equal(e0, e1)


def test_training_writes_nequip_files_and_records_elements_and_metrics(checked):
    _, _, members, _ = checked
    model = members[0]
    for name in ("config.yaml", "train.xyz", "valid.xyz", "best.ckpt", "nequip_train.log",
                 "compile_example.xyz", "mlp-cases-model.json"):
        assert (model.path / name).exists(), name
    meta = model.meta
    assert meta["elements"] == ["H", "C", "O"] == list(model.elements)
    assert meta["epochs"] == EPOCHS and meta["training_time_s"] > 0
    assert np.isfinite(meta["metrics"]["valid"]["force_mae_eV_A"])
    assert meta["seed"] == 0
    hydra = yaml.safe_load((model.path / "config.yaml").read_text())
    m = hydra["training_module"]["model"]
    assert (m["r_max"], m["num_layers"], m["l_max"], m["num_features"], m["seed"]) == (
        4.0, 2, 1, 8, 0)
    assert m["type_names"] == ["H", "C", "O"]
    assert hydra["trainer"]["max_epochs"] == EPOCHS


def test_batched_forces_and_stress_equal_nequips_calculator(checked):
    _, _, members, frames = checked
    model = members[0]
    out = evaluate(model.batched(), list(frames[:3]))
    n = np.cumsum([0] + [len(a) for a in frames[:3]])
    for k, a in enumerate(frames[:3]):
        b = a.copy()
        b.calc = model.calculator()
        np.testing.assert_allclose(b.get_forces(), out["forces"][n[k]:n[k + 1]].numpy(),
                                   atol=1e-10)
        np.testing.assert_allclose(b.get_stress(voigt=False), out["stress"][k].numpy(),
                                   atol=1e-12)


def test_float32_module_keeps_the_models_dtype(checked):
    _, _, members, frames = checked
    pot = members[0].batched().to(torch.float32)
    assert next(pot.model.parameters()).dtype == torch.float64  # tiny: model_dtype float64
    out = evaluate(pot, [frames[0]], dtype=torch.float32)
    assert out["energy"].dtype == out["forces"].dtype == torch.float32


def test_loading_leaves_the_callers_torch_state_alone(checked):
    """nequip's global state (float64 default dtype, global seed 123) does not leak out."""
    import os

    _, _, members, _ = checked
    dtype, seed_env = torch.get_default_dtype(), os.environ.get("PL_GLOBAL_SEED")
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    NequIPAdapter.load(members[0].path)
    assert torch.get_default_dtype() == dtype
    assert torch.equal(torch.rand(3), expected)
    assert os.environ.get("PL_GLOBAL_SEED") == seed_env


def test_unseen_element_is_refused_by_module_and_calculator(checked):
    _, _, members, frames = checked
    model = members[0]
    bad = frames[1].copy()
    bad.numbers[2] = 7  # N for an H
    for pot in (model.batched(), load_saved(model.path)):
        with pytest.raises(DataError, match=r"structure 1: element N \(atom 2\) is not one "
                                            r"this model was trained on \(H, C, O\)"):
            evaluate(pot, [frames[0], bad])
    bad.calc = model.calculator()
    with pytest.raises(DataError, match=r"element N \(atom 2\)"):
        bad.get_potential_energy()


def test_nve_md_with_the_batched_module_conserves_energy(checked):
    """Velocity Verlet, dt = 0.25 fs, a boxed water and a free methane in one batch: the total
    energy fluctuates by O(dt^2), a small fraction of the potential energy's fluctuation."""
    _, _, members, frames = checked
    systems = [frames[0].copy(), _molecule("CH4")]
    for k, a in enumerate(systems):
        a.calc = None
        a.set_velocities(maxwell_boltzmann(a.get_masses(), 300.0, 3 + k))
    state = BatchState.from_atoms(systems)
    eng = MDEngine(members[0].batched(), state, ensemble="nve", timestep_fs=0.25)
    etot, epot = [], []
    for _ in range(40):
        eng.run(1)
        epot.append(eng.out["energy"].numpy().copy())
        etot.append(epot[-1] + state.kinetic_energy().numpy())
    etot, epot = np.array(etot), np.array(epot)
    assert np.isfinite(etot).all()
    assert (etot.std(0) < 0.05 * epot.std(0)).all(), (etot.std(0), epot.std(0))


def test_nequip_config_of_the_paper_scale_is_the_seeds(tmp_path):
    cfg = load_config("paper")
    hydra = nequip_config(cfg, ["H", "C", "O"], [-17.0, -44.0, -103.0], seed=3,
                          workdir=tmp_path)
    m = hydra["training_module"]["model"]
    assert (m["num_layers"], m["r_max"], m["l_max"], m["num_features"]) == (5, 5.0, 2, 32)
    assert m["per_type_energy_shifts"] == {"H": -17.0, "C": -44.0, "O": -103.0}
    assert m["avg_num_neighbors"] == "${training_data_stats:num_neighbors_mean}"
    assert hydra["training_module"]["_target_"] == "nequip.train.EMALightningModule"
    assert hydra["training_module"]["ema_decay"] == 0.99
    assert hydra["data"]["key_mapping"] == {"REF_energy": "total_energy",
                                            "REF_forces": "forces"}
    assert "dipole" in hydra["data"]["exclude_keys"]
    assert hydra["data"]["train_file_path"] == str(tmp_path / "train.xyz")


def test_energy_shifts_are_the_least_squares_per_element_energies():
    frames = [label_now(_molecule(n), "emt") for n in ("H2O", "CH4", "OH")]
    shifts = fit_energy_shifts(frames, ["H", "C", "O"])
    predicted = [sum(shifts[["H", "C", "O"].index(s)] for s in a.get_chemical_symbols())
                 for a in frames]
    np.testing.assert_allclose(predicted, [a.get_potential_energy() for a in frames],
                               atol=1e-10)


@pytest.mark.parametrize(("override", "message"), [
    ({"model_dtype": "float16"}, "model_dtype"),
    ({"num_layers": 0}, "num_layers"),
    ({"lr_factor": 1.5}, "lr_factor"),
    ({"ema_decay": 1.0}, "ema_decay"),
    ({"energy_weight": 0.0, "force_weight": 0.0}, "energy_weight"),
    ({"cutoff_A": "five"}, "cutoff_A"),
    ({"parity": 1}, "parity"),
])
def test_config_values_are_checked(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("tiny", **override)


def test_config_keys_are_checked(tmp_path):
    ds = _frames(3)
    with pytest.raises(ConfigError, match="unknown key 'r_max'"):
        NequIPAdapter.train(ds[:2], ds[2:], tmp_path / "m",
                            config={**load_config("tiny"), "r_max": 5.0})
    cfg = load_config("tiny")
    del cfg["num_layers"]
    with pytest.raises(ConfigError, match="missing key 'num_layers'"):
        NequIPAdapter.train(ds[:2], ds[2:], tmp_path / "m", config=cfg)
    with pytest.raises(ConfigError, match="no NequIP config 'huge'"):
        load_config("huge")
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("device", ["cuda:99", "tpu"] + (
    [] if torch.cuda.is_available() else ["cuda"]))
def test_train_checks_the_device_before_writing_anything(tmp_path, device):
    ds = _frames(3)
    with pytest.raises(ConfigError) as err:
        NequIPAdapter.train(ds[:2], ds[2:], tmp_path / "model", device=device)
    assert err.value.where == "device"
    assert not (tmp_path / "model").exists()


def test_training_refuses_too_little_data_and_foreign_valid_elements(tmp_path):
    ds = _frames(4)
    with pytest.raises(DataError, match="too little data"):
        NequIPAdapter.train(ds[:1], ds[1:2], tmp_path / "m")
    odd = ds[3].copy()
    odd.numbers[0] = 7
    with pytest.raises(DataError, match="element N is not in the training set"):
        NequIPAdapter.train(ds[:2], Dataset.from_frames([odd]), tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_a_failed_nequip_run_is_an_error_quoting_its_log(tmp_path, monkeypatch):
    import atmospheric.model as am

    # a cheap stand-in for nequip's module that fails the same way (non-zero exit, says why)
    monkeypatch.setitem(am._MODULES, "nequip-train", "json.tool")
    with pytest.raises(ConfigError, match=r"nequip-train failed \(exit 2\): .*no-such"
                       ) as err:
        run_nequip(["nequip-train", "no-such.json"], tmp_path, "nequip_train.log",
                   "nequip-train")
    assert err.value.where == str(tmp_path / "nequip_train.log")


def test_load_refuses_other_folders(tmp_path):
    with pytest.raises(ConfigError, match="mlp-cases-model.json"):
        NequIPAdapter.load(tmp_path)
    (tmp_path / "mlp-cases-model.json").write_text('{"framework": "schnet"}')
    with pytest.raises(ConfigError, match="'schnet' model, not a NequIP one"):
        NequIPAdapter.load(tmp_path)


def test_compiled_use_without_compiling_is_an_error(checked):
    _, _, members, _ = checked
    with pytest.raises(ConfigError, match=r"call compile\(target='ase'\) first"):
        members[0].calculator(compiled=True)
    with pytest.raises(ConfigError, match="unknown compile target"):
        members[0].compile(target="lammps")


@pytest.mark.slow
def test_compiled_models_equal_the_eager_one(checked, tmp_path):
    """nequip-compile (AOTInductor, CPU) for the ASE calculator and for the batched module,
    from a copy of the model folder (the compile example travels with it); compiled
    predictions equal the eager model's."""
    _, _, members, frames = checked
    model = NequIPAdapter.load(members[0].save(tmp_path / "copy"))
    for target in ("ase", "batch"):
        assert model.compile(target).exists()
        assert model.meta["compile_time_s"][target] > 0
    again = NequIPAdapter.load(model.save(tmp_path / "again"))
    assert set(again.meta["compiled"]) == {"ase", "batch"}
    eager = evaluate(again.batched(), list(frames[:3]))
    fast = evaluate(again.batched(compiled=True), list(frames[:3]))
    single = evaluate(again.batched(compiled=True), [frames[1]])
    np.testing.assert_allclose(fast["energy"].numpy(), eager["energy"].numpy(), atol=1e-8)
    np.testing.assert_allclose(fast["forces"].numpy(), eager["forces"].numpy(), atol=1e-7)
    np.testing.assert_allclose(fast["stress"].numpy(), eager["stress"].numpy(), atol=1e-8)
    np.testing.assert_allclose(single["energy"].numpy(), eager["energy"][1:2].numpy(),
                               atol=1e-8)
    for a in frames[:3]:
        b, c = a.copy(), a.copy()
        b.calc, c.calc = again.calculator(compiled=True), again.calculator()
        assert abs(b.get_potential_energy() - c.get_potential_energy()) < 1e-8
        np.testing.assert_allclose(b.get_forces(), c.get_forces(), atol=1e-7)
    assert isinstance(again.batched(compiled=True), NequIPBatched)
