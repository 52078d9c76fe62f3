"""MACE adapter: trains through mace's own ``mace_run_train``, passes common.testing's adapter
checks (batched module == mace's MACECalculator, finite-difference forces and stress, mixed
batches, save/load, committee, float32, unseen elements), refuses bad configs, data and devices
before writing anything.

The labels are Tersoff GaN (Nord 2003, LAMMPS) on rattled wurtzite cells of 8 and 16 atoms
with lattice constants ±2 %; the model is the tiny config made tinier (8 channels, 4 Å,
3 epochs, the last one stage two): these tests check plumbing and consistency, not accuracy.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk

from common.data import Dataset
from common.errors import ConfigError, DataError
from common.labels import label_now
from common.md.engine import MDEngine
from common.md.noise import maxwell_boltzmann
from common.md.state import BatchState
from common.potential.committee import load_committee_folder
from common.potential.protocol import ModelAdapter, evaluate
from common.potential.registry import get_adapter
from common.testing import check_adapter
from semiconductors.model import (
    MACEAdapter,
    MACEConfig,
    load_config,
    train_committee,
    training_arguments,
)
from semiconductors.reference import TersoffGaN

EPOCHS = 3
#: the tiny config made tinier for the tests (stage two in the last epoch, as tiny has it)
TEST_CONFIG = {"num_channels": 8, "r_max_A": 4.0, "max_ell": 2, "num_radial_basis": 6,
               "max_num_epochs": EPOCHS, "patience": EPOCHS, "batch_size": 4,
               "stage_two_from_epoch": EPOCHS - 1}


def gan_frames(n: int = 10, seed: int = 0) -> Dataset:
    """n wurtzite GaN cells (16 and 8 atoms in turn), lattice constant ±2 %, rattled by
    0.05 Å, labelled with Tersoff GaN (energy, forces, stress)."""
    rng = np.random.default_rng(seed)
    calc = TersoffGaN()
    out = []
    for k in range(n):
        a = 3.18 * (1 + rng.uniform(-0.02, 0.02))
        x = bulk("GaN", "wurtzite", a=a, c=a * np.sqrt(8 / 3), u=0.375)
        x = x.repeat((2, 1, 1) if k % 2 else (2, 2, 1))
        x.rattle(0.05, seed=seed * 1000 + k)
        out.append(label_now(x, calc))
    return Dataset.from_frames(out)


@pytest.fixture(scope="module")
def frames():
    return gan_frames()


@pytest.fixture(scope="module")
def checked(tmp_path_factory, frames):
    """A committee of two (seeds 0 and 1) trained by mace_run_train at the same time
    (``train_committee(workers=2)``: one process per member, both cores; the split is
    check_adapter's own, every 5th frame for validation), reloaded from its folder; then
    check_adapter runs every check on the first member with the second as its committee
    partner."""
    workdir = tmp_path_factory.mktemp("mace")
    ds = Dataset.from_frames(list(frames))
    is_valid = np.arange(len(ds)) % 5 == 0
    folder, _ = train_committee(ds[~is_valid], ds[is_valid], workdir / "committee", 2,
                                config=load_config("tiny", **TEST_CONFIG), seed=0, workers=2)
    members = [MACEAdapter.load(folder / f"member_{k}") for k in range(2)]
    report = check_adapter(members[0], list(frames), workdir / "check",
                           committee=[members[1]])
    return report, folder, members


def test_mace_passes_check_adapter(checked):
    report, _, members = checked
    print(json.dumps(report, indent=1))  # the measured deviations, for the record (-s)
    assert isinstance(members[0], ModelAdapter)
    assert report["elements"] == {"elements_violations": 0.0}
    assert "skipped" not in report["stress"]
    assert report["calculator"]["calculator_energy_eV_per_atom"] < 1e-10
    assert report["calculator"]["calculator_forces_eV_A"] < 1e-10
    assert report["forces"]["fd_forces_eV_A"] < 1e-6


def test_training_writes_mace_files_and_records_elements_and_metrics(checked):
    _, folder, members = checked
    model = members[0]
    for name in ("mace.model", "mace_stagetwo.model", "data/train.xyz", "data/valid.xyz",
                 "mace_train.out", "mlp-cases-model.json"):
        assert (model.path / name).exists(), name
    assert model.meta["model_file"] == "mace_stagetwo.model"  # the model after stage two
    assert not (model.path / "mace_compiled.model").exists()  # the skipped TorchScript copy
    meta = model.meta
    assert meta["elements"] == ["N", "Ga"] == list(model.elements)
    assert meta["train_seconds"] > 0 and meta["mace_version"] == "0.3.16"
    assert np.isfinite(meta["metrics"]["valid"]["force_mae_eV_A"])
    assert [m.meta["seed"] for m in members] == [0, 1]
    assert model.cutoff == 4.0 and int(model.model.num_interactions) == 2
    assert float(model.model.atomic_energies_fn.atomic_energies.abs().max()) == 0.0  # E0s
    # ScaleShiftMACE: the mean interaction energy per atom of the training set is the shift
    assert float(model.model.scale_shift.shift) == pytest.approx(-4.4, abs=0.1)
    committee = json.loads((folder / "mlp-cases-model.json").read_text())
    assert committee["member_framework"] == "mace" and committee["elements"] == ["N", "Ga"]


def test_batched_stress_equals_maces_calculator(checked, frames):
    _, _, members = checked
    out = evaluate(members[0].batched(), list(frames[:2]))
    for k, a in enumerate(frames[:2]):
        b = a.copy()
        b.calc = members[0].calculator()
        np.testing.assert_allclose(b.get_stress(voigt=False), out["stress"][k].numpy(),
                                   rtol=0, atol=1e-12)


def test_committee_members_differ_and_load_as_a_committee(checked, frames):
    _, folder, members = checked
    out = evaluate(load_committee_folder(folder), [frames[0], frames[1]])
    assert float(out["max_force_deviation"].min()) > 0.0
    assert get_adapter("mace") is MACEAdapter


def test_unseen_element_is_refused_by_training_calculator_and_module(checked, tmp_path):
    _, _, members = checked
    oxide = Atoms("GaO", positions=[[0, 0, 0], [0, 0, 1.9]], cell=np.eye(3) * 8, pbc=True)
    oxide.calc = members[0].calculator()
    with pytest.raises(DataError, match=r"element O .*N, Ga"):
        oxide.get_potential_energy()
    with pytest.raises(DataError, match="element O"):
        evaluate(members[0].batched(), [oxide])
    frames = gan_frames(2, seed=1)
    with pytest.raises(DataError, match="valid frame 0"):
        MACEAdapter.train(frames, [_relabelled(oxide)], tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def _relabelled(atoms: Atoms) -> Atoms:
    """A frame carrying (made-up) labels, for the refusal test: never trained on."""
    from ase.calculators.singlepoint import SinglePointCalculator

    b = atoms.copy()
    b.calc = SinglePointCalculator(b, energy=0.0, forces=np.zeros((len(b), 3)))
    return b


def test_nve_md_with_the_batched_module_conserves_energy(checked, frames):
    """Velocity Verlet, dt = 0.5 fs, cells of 16 and 8 atoms in one batch: the total energy
    fluctuates by O(dt^2), a small fraction of the potential energy's fluctuation."""
    _, _, members = checked
    systems = [frames[0].copy(), frames[1].copy()]
    for k, a in enumerate(systems):
        a.calc = None
        a.set_velocities(maxwell_boltzmann(a.get_masses(), 300.0, 3 + k))
    state = BatchState.from_atoms(systems)
    eng = MDEngine(members[0].batched(), state, ensemble="nve", timestep_fs=0.5)
    etot, epot = [], []
    for _ in range(40):
        eng.run(1)
        epot.append(eng.out["energy"].numpy().copy())
        etot.append(epot[-1] + state.kinetic_energy().numpy())
    etot, epot = np.array(etot), np.array(epot)
    assert np.isfinite(etot).all()
    assert (etot.std(0) < 0.05 * epot.std(0)).all(), (etot.std(0), epot.std(0))


def test_float32_module_computes_in_float32_on_its_own_copy(checked, frames):
    _, _, members = checked
    pot = members[0].batched()
    assert pot.model is members[0].model  # shared until converted
    out = evaluate(pot.to(torch.float32), [frames[0]], dtype=torch.float32)
    assert out["energy"].dtype == out["forces"].dtype == torch.float32
    assert pot.model is not members[0].model
    assert next(members[0].model.parameters()).dtype == torch.float64


# -- configs ------------------------------------------------------------------------------------


def test_paper_config_is_the_seeds_and_becomes_mace_flags(tmp_path):
    paper = load_config("paper")
    assert (paper["correlation"], paper["r_max_A"]) == (3, 6.0)
    args = training_arguments(paper, {"train": tmp_path / "t.xyz", "valid": tmp_path / "v.xyz"},
                              tmp_path, seed=7, device="cuda:1", symbols=["N", "Ga"])
    for flag in ("--correlation=3", "--r_max=6.0", "--num_channels=128", "--max_L=1",
                 "--model=ScaleShiftMACE", "--E0s={7: 0.0, 31: 0.0}", "--seed=7",
                 "--device=cuda", "--loss=stress", "--compute_stress=True", "--ema",
                 "--stage_two", "--start_stage_two=800", "--energy_key=REF_energy"):
        assert flag in args, flag
    tiny = training_arguments(load_config("tiny"), {"train": "t", "valid": "v", "test": "x"},
                              tmp_path, seed=0, device="cpu", symbols=["N", "Ga"])
    assert "--test_file=x" in tiny and "--start_stage_two=20" in tiny
    assert not any(a.startswith("--loss") for a in tiny)  # stress_weight 0: mace's default


@pytest.mark.parametrize(("change", "match"), [
    ({"colour": 1}, "unknown key 'colour'"),
    ({"r_max_A": "six"}, "key 'r_max_A' must be float"),
    ({"r_max_A": -1.0}, "r_max_A must be > 0"),
    ({"e0s_eV": "guess"}, "e0s_eV 'guess'"),
    ({"e0s_eV": {"Ga": "zero"}}, "e0s_eV"),
    ({"default_dtype": "float16"}, "default_dtype 'float16'"),
    ({"stage_two_from_epoch": 99}, "stage_two_from_epoch 99"),
    ({"ema_decay": 1.5}, "ema_decay"),
])
def test_config_errors_name_the_key(change, match):
    with pytest.raises(ConfigError, match=match):
        load_config("tiny", **change)


def test_missing_key_wrong_scale_and_missing_e0_are_one_line_errors(frames, tmp_path):
    cfg = load_config("tiny")
    del cfg["correlation"]
    with pytest.raises(ConfigError, match="missing key 'correlation'"):
        MACEConfig.from_dict(cfg)
    with pytest.raises(ConfigError, match="no MACE config 'huge'"):
        load_config("huge")
    with pytest.raises(ConfigError, match="e0s_eV has no energy for Ga"):
        MACEAdapter.train(frames[:2], frames[2:3], tmp_path / "m",
                          config=load_config("tiny", e0s_eV={"N": 0.0}))
    with pytest.raises(ConfigError, match="device"):
        MACEAdapter.train(frames[:2], frames[2:3], tmp_path / "m", device="tpu")
    assert not (tmp_path / "m").exists()
    with pytest.raises(ConfigError, match="not a MACE model folder"):
        MACEAdapter.load(tmp_path)


def test_a_rerun_first_removes_the_previous_runs_models_and_checkpoints(tmp_path):
    from semiconductors.model import _clear_previous_run

    (tmp_path / "checkpoints").mkdir()
    old = [tmp_path / "mace.model", tmp_path / "mace_stagetwo.model",
           tmp_path / "checkpoints" / "mace_run-0_epoch-40.pt"]
    kept = [tmp_path / "notes.txt", tmp_path / "checkpoints" / "other.pt"]
    for p in old + kept:
        p.write_text("x")
    _clear_previous_run(tmp_path)
    assert not any(p.exists() for p in old) and all(p.exists() for p in kept)
    _clear_previous_run(tmp_path / "empty")  # nothing there: nothing to do
