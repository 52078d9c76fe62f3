"""DeePMD adapter: trains through deepmd-kit's own trainer (input.json from our config, sel from
deepmd's neighbour statistics), freezes, passes common.testing's adapter checks (batched
module == deepmd's ASE calculator, finite-difference forces and stress, mixed batches,
save/load, committee, float32, unseen elements), drives the MD engine, refuses bad configs
and devices before writing anything.

The labels are a Lennard-Jones potential (ASE's, smooth cutoff) on rattled rock-salt LiF cells
with some F replaced by O: any smooth labels check the adapter; two cell sizes and two
compositions give deepmd several systems and check_adapter frames of two sizes.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.lj import LennardJones

from common.data import Dataset
from common.errors import ConfigError, DataError
from common.labels import label_now
from common.md.engine import MDEngine
from common.md.noise import maxwell_boltzmann
from common.md.state import BatchState
from common.potential.committee import load_committee_folder
from common.potential.protocol import ModelAdapter, evaluate
from common.potential.registry import load_saved
from common.testing import check_adapter
from electrolytes.model import (
    DeepMDAdapter,
    input_json,
    load_config,
    sel_from_stat,
    train_committee,
    zbl_pair_energy,
    zbl_table,
)

#: tiny model for the tests: the tiny config, trained 30 steps (plumbing, not accuracy)
STEPS = 30


def _cell(k: int):
    a = bulk("LiF", "rocksalt", a=4.03, cubic=True)
    if k % 2:
        a = a.repeat((2, 1, 1))
    if k % 3 == 0:
        a.symbols[1] = "O"
    return a


def _frames(n: int, seed: int = 0) -> Dataset:
    lj = LennardJones(sigma=1.8, epsilon=0.1, rc=4.5, smooth=True)
    out = []
    for k in range(n):
        a = _cell(k)
        a.rattle(0.08, seed=seed * 1000 + k)
        out.append(label_now(a, lj))
    return Dataset.from_frames(out)


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    """check_adapter on the class: it trains a committee of two (seeds 0 and 1) with
    deepmd-kit on the frames and runs every check on the first member."""
    workdir = tmp_path_factory.mktemp("deepmd")
    frames = _frames(15)
    report = check_adapter(DeepMDAdapter, list(frames), workdir, train_kwargs={
        "config": load_config("tiny", numb_steps=STEPS), "seed": 0})
    members = [DeepMDAdapter.load(workdir / "committee" / f"member_{k}") for k in range(2)]
    return report, workdir / "committee", members, frames


def test_deepmd_passes_check_adapter(checked):
    report, _, members, _ = checked
    assert isinstance(members[0], ModelAdapter)
    assert report["elements"] == {"elements_violations": 0.0}
    assert "skipped" not in report["stress"]  # deepmd gives the virial: stress is checked
    assert report["calculator"]["calculator_energy_eV_per_atom"] < 1e-10
    assert report["calculator"]["calculator_forces_eV_A"] < 1e-10
    assert report["forces"]["fd_forces_eV_A"] < 1e-5


def test_training_writes_deepmd_files_and_records_sel_and_metrics(checked):
    _, folder, members, _ = checked
    model = members[0]
    for name in ("input.json", "lcurve.out", "frozen_model.pth", "model.ckpt.pt",
                 "dp_train.log", "mlp-cases-model.json"):
        assert (model.path / name).exists(), name
    meta = model.meta
    assert meta["elements"] == ["Li", "O", "F"] == list(model.elements)
    stat = meta["neighbor_stat"]
    assert meta["sel"] == sel_from_stat(stat["max_nbor_size"], 1.1)
    assert all(s >= n for s, n in zip(meta["sel"], stat["max_nbor_size"], strict=True))
    inp = json.loads((model.path / "input.json").read_text())
    assert inp["model"]["descriptor"]["sel"] == sum(meta["sel"])  # se_atten: one sel
    assert inp["model"]["use_srtab"] == "zbl_table.txt"  # the tiny config's DP+ZBL model
    assert (model.path / "zbl_table.txt").exists()
    assert inp["model"]["type_map"] == ["Li", "O", "F"]
    assert inp["training"]["numb_steps"] == STEPS
    assert np.isfinite(meta["metrics"]["valid"]["force_mae_eV_A"])
    assert [m.meta["seed"] for m in members] == [0, 1]
    committee = json.loads((folder / "mlp-cases-model.json").read_text())
    assert committee["member_framework"] == "deepmd"
    assert committee["elements"] == ["Li", "O", "F"]


def test_batched_stress_equals_deepmd_calculator(checked):
    _, _, members, frames = checked
    model = members[0]
    out = evaluate(model.batched(), list(frames[:3]))
    for k, a in enumerate(frames[:3]):
        b = a.copy()
        b.calc = model.calculator()
        np.testing.assert_allclose(b.get_stress(voigt=False), out["stress"][k].numpy(),
                                   atol=1e-10)


def test_committee_members_differ_and_load_as_a_committee(checked):
    _, folder, members, frames = checked
    out = evaluate(load_committee_folder(folder), [frames[0], frames[1]])
    assert float(out["max_force_deviation"].min()) > 0.0
    e0 = evaluate(members[0].batched(), [frames[0]])["energy"]
    e1 = evaluate(members[1].batched(), [frames[0]])["energy"]
    assert not torch.equal(e0, e1)


def test_unseen_element_is_refused_by_module_and_calculator(checked):
    _, _, members, frames = checked
    model = members[0]
    bad = frames[2].copy()
    bad.numbers[3] = 15  # P for an F
    for pot in (model.batched(), load_saved(model.path)):
        with pytest.raises(DataError, match=r"structure 1: element P \(atom 3\) is not one "
                                            r"this model was trained on \(Li, O, F\)"):
            evaluate(pot, [frames[1], bad])
    bad.calc = model.calculator()
    with pytest.raises(DataError, match=r"element P \(atom 3\)"):
        bad.get_potential_energy()


def test_nve_md_with_the_batched_module_conserves_energy(checked):
    """Velocity Verlet, dt = 0.5 fs, two cells of different sizes in one batch: the total
    energy fluctuates by O(dt^2) around a constant, a small fraction of the potential
    energy's own fluctuation."""
    _, _, members, _ = checked
    cells = [_cell(0), _cell(1)]
    for a in cells:
        a.set_velocities(maxwell_boltzmann(a.get_masses(), 300.0, 3))
    state = BatchState.from_atoms(cells)
    eng = MDEngine(members[0].batched(), state, ensemble="nve", timestep_fs=0.5)
    etot, epot = [], []
    for _ in range(60):
        eng.run(1)
        epot.append(eng.out["energy"].numpy().copy())
        etot.append(epot[-1] + state.kinetic_energy().numpy())
    etot, epot = np.array(etot), np.array(epot)
    assert np.isfinite(etot).all()
    assert (etot.std(0) < 0.05 * epot.std(0)).all(), (etot.std(0), epot.std(0))


def test_untrained_se_e2_r_round_trips_and_equals_calculator(tmp_path):
    cfg = load_config("tiny", descriptor="se_e2_r", zbl=False)
    m = DeepMDAdapter.untrained(tmp_path / "u", ["F", "Li", "O"], cfg, seed=2, sel=[8, 4, 8])
    assert m.elements == ("Li", "O", "F")
    again = DeepMDAdapter.load(m.save(tmp_path / "copy"))
    frames = list(_frames(2, seed=3))
    x, y = evaluate(m.batched(), frames), evaluate(again.batched(), frames)
    assert torch.equal(x["energy"], y["energy"]) and torch.equal(x["forces"], y["forces"])
    b = frames[1].copy()
    b.calc = again.calculator()
    assert abs(b.get_potential_energy() - float(x["energy"][1])) < 1e-10
    np.testing.assert_allclose(b.get_forces(), x["forces"][len(frames[0]):].numpy(),
                               atol=1e-10)


def test_zbl_pair_energy_and_deepmds_table():
    """The ZBL universal repulsion: bare Coulomb Z1 Z2 e²/r as r -> 0 (phi(0) = 1), a
    textbook value, and the table in deepmd's layout (r, then pairs i <= j) ending at 0."""
    assert zbl_pair_energy(3, 9, 1e-6) * 1e-6 == pytest.approx(27 * 14.399645, rel=1e-4)
    # universal: E r / (Z1 Z2 e²) is one function of r / a, a ∝ 1 / (Z1^0.23 + Z2^0.23)
    r = np.array([0.3, 0.7, 1.5])
    scale = (3**0.23 + 9**0.23) / (1 + 1)  # a(H, H) / a(Li, F)
    np.testing.assert_allclose(zbl_pair_energy(1, 1, r * scale) * r * scale,
                               zbl_pair_energy(3, 9, r) * r / 27, rtol=1e-12)
    tab = zbl_table(["Li", "O", "F"], 5.0)
    assert tab.shape[1] == 1 + 6
    assert np.all(np.diff(tab[:, 0]) > 0) and tab[0, 0] > 0
    np.testing.assert_allclose(tab[tab[:, 0] < 2.5, 3],  # Li-F, the third pair (0-2)
                               zbl_pair_energy(3, 9, tab[tab[:, 0] < 2.5, 0]))
    assert np.all(tab[-2:, 1:] == 0) and np.all(np.diff(tab[:, 1:], axis=0) <= 0)


def test_dp_zbl_model_has_the_zbl_wall_and_equals_its_calculator(checked):
    """The tiny config's DP+ZBL model: two atoms alone in a box (nothing else within the
    cutoff) closer than zbl_sw_rmin_A interact by the ZBL table only (differences of the
    total energy == differences of the ZBL pair energy); through the switching region the
    batched module equals deepmd's calculator and its forces are the energy's gradient."""
    from ase import Atoms

    _, _, members, _ = checked
    model = members[0]
    cfg = model.meta["config"]
    assert cfg["zbl"] and cfg["descriptor"] == "se_atten"
    lo, hi = cfg["zbl_sw_rmin_A"], cfg["zbl_sw_rmax_A"]

    def pair(d):
        return Atoms("LiF", positions=[[5, 5, 5], [5 + d, 5, 5]], cell=[20, 20, 20], pbc=True)

    ds = [0.2, 0.3, 0.4, lo - 0.01]
    e = evaluate(model.batched(), [pair(d) for d in ds])["energy"].numpy()
    zbl = zbl_pair_energy(3, 9, np.array(ds))
    np.testing.assert_allclose(e - e[-1], zbl - zbl[-1], rtol=1e-4, atol=1e-4)
    assert e[0] - e[-1] > 100.0  # a wall: 1 kcal/mol is 0.04 eV
    ds = np.linspace(lo - 0.05, hi + 0.05, 7)
    frames = [pair(d) for d in ds]
    out = evaluate(model.batched(), frames)
    calc = model.calculator()
    h = 1e-5
    for k, a in enumerate(frames):
        a.calc = calc
        assert abs(a.get_potential_energy() - float(out["energy"][k])) < 1e-10
        e_plus = evaluate(model.batched(), [pair(ds[k] + h)])["energy"]
        e_minus = evaluate(model.batched(), [pair(ds[k] - h)])["energy"]
        fd = -float(e_plus - e_minus) / (2 * h)  # force on the F atom along x
        assert abs(float(out["forces"][2 * k + 1, 0]) - fd) < 1e-5 * max(1.0, abs(fd))


def test_zbl_needs_the_mixed_type_descriptor():
    with pytest.raises(ConfigError, match="zbl needs the mixed-type se_atten"):
        load_config("tiny", descriptor="se_e2_a", zbl=True)
    with pytest.raises(ConfigError, match="zbl_sw_rmin_A"):
        load_config("tiny", zbl_sw_rmin_A=0.9, zbl_sw_rmax_A=0.8)


def test_input_json_of_the_paper_config_is_the_seeds(tmp_path):
    cfg = load_config("paper")
    inp = input_json(cfg, ["Li", "C", "O", "F", "P"], [40, 80, 60, 30, 8], seed=3,
                     train_systems=["data/train/a"], valid_systems=["data/valid/a"])
    d, f = inp["model"]["descriptor"], inp["model"]["fitting_net"]
    assert (d["type"], d["rcut"], d["rcut_smth"], d["neuron"], d["axis_neuron"]) == (
        "se_e2_a", 6.0, 0.5, [25, 50, 100], 16)
    assert f["neuron"] == [240, 240, 240] and d["seed"] == f["seed"] == 3
    assert inp["learning_rate"] == {"type": "exp", "start_lr": 1e-3, "stop_lr": 3.51e-8,
                                    "decay_steps": 5000}
    loss = inp["loss"]
    assert (loss["start_pref_e"], loss["limit_pref_e"], loss["start_pref_f"],
            loss["limit_pref_f"]) == (0.02, 1.0, 1000.0, 1.0)
    assert inp["training"]["training_data"]["batch_size"] == "auto"
    from deepmd.utils.argcheck import normalize

    normalize(inp)  # deepmd's own schema accepts it


def test_sel_follows_deepmds_automatic_rule():
    assert sel_from_stat([41, 11, 0], 1.1) == [48, 16, 4]
    assert sel_from_stat([40], 1.0) == [40]


@pytest.mark.parametrize(("override", "message"), [
    ({"rcut_smth_A": 6.0}, "rcut_smth_A"),
    ({"descriptor": "dpa3"}, "unknown descriptor 'dpa3'"),
    ({"precision": "float16"}, "unknown precision"),
    ({"batch_size": "many"}, "batch_size"),
    ({"neuron": [4, 0]}, "neuron"),
    ({"stop_lr": 0.1}, "stop_lr"),
    ({"sel_margin": 0.5}, "sel_margin"),
])
def test_config_values_are_checked(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("tiny", **override)


def test_config_keys_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'rcut'"):
        DeepMDAdapter.untrained(tmp_path / "m", ["Li"], {**load_config("tiny"), "rcut": 6.0})
    cfg = load_config("tiny")
    del cfg["fitting_neuron"]
    with pytest.raises(ConfigError, match="missing key 'fitting_neuron'"):
        DeepMDAdapter.train(_frames(3), _frames(1), tmp_path / "m", config=cfg)
    with pytest.raises(ConfigError, match="no DeePMD config 'huge'"):
        load_config("huge")
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("device", ["cuda:99", "tpu"] + (
    [] if torch.cuda.is_available() else ["cuda"]))
def test_train_checks_the_device_before_writing_anything(tmp_path, device):
    ds = _frames(3)
    with pytest.raises(ConfigError) as err:
        DeepMDAdapter.train(ds[:2], ds[2:], tmp_path / "model", device=device)
    assert err.value.where == "device"
    assert not (tmp_path / "model").exists()


def test_training_refuses_too_little_data_and_foreign_valid_elements(tmp_path):
    ds = _frames(4)
    with pytest.raises(DataError, match="too little data"):
        DeepMDAdapter.train(ds[:1], ds[1:2], tmp_path / "m")
    odd = ds[3].copy()
    odd.numbers[0] = 15
    with pytest.raises(DataError, match="element P is not in the training set"):
        DeepMDAdapter.train(ds[:2], Dataset.from_frames([odd]), tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_a_failed_deepmd_run_is_an_error_quoting_its_log(tmp_path, monkeypatch):
    import electrolytes.model as dm

    monkeypatch.setattr(dm, "_DRIVER", "import sys; print('deepmd says no'); sys.exit(3)")
    with pytest.raises(ConfigError, match=r"training failed \(exit 3\): deepmd says no") as err:
        dm.run_deepmd(tmp_path)
    assert err.value.where == str(tmp_path / "dp_train.out")


def test_load_refuses_other_folders(tmp_path):
    with pytest.raises(ConfigError, match="mlp-cases-model.json"):
        DeepMDAdapter.load(tmp_path)
    (tmp_path / "mlp-cases-model.json").write_text('{"framework": "schnet"}')
    with pytest.raises(ConfigError, match="'schnet' model, not a DeePMD one"):
        DeepMDAdapter.load(tmp_path)


@pytest.mark.slow
def test_committee_of_four_with_different_seeds_and_reproducible_training(tmp_path):
    """DP-GEN's committee of 4 (seeds 7..10), and one member retrained with its seed gives
    the same model (CPU)."""
    ds = _frames(15)
    cfg = load_config("tiny", numb_steps=STEPS)
    folder, members = train_committee(ds[:12], ds[12:], tmp_path / "c", config=cfg, seed=7)
    assert [m.meta["seed"] for m in members] == [7, 8, 9, 10]
    out = evaluate(load_committee_folder(folder), [ds[0]])
    assert float(out["max_force_deviation"][0]) > 0.0
    again = DeepMDAdapter.train(ds[:12], ds[12:], tmp_path / "again", config=cfg, seed=7)
    x = evaluate(members[0].batched(), [ds[0], ds[1]])
    y = evaluate(again.batched(), [ds[0], ds[1]])
    assert torch.equal(x["energy"], y["energy"]) and torch.equal(x["forces"], y["forces"])
