"""TorchANI adapter: an ANI-2x-architecture model trained on GFN2-xTB labels passes
common.testing's adapter checks (molecules and periodic cells), conserves energy in NVE MD,
refuses elements it never saw, loads the pretrained ANI-2x only from a local state dict (and
says where to put it), and checks its config and device before writing anything."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import molecule

from common.data import Dataset
from common.errors import ConfigError, DataError, EnvironmentProblem
from common.labels import label_now
from common.md.engine import MDEngine
from common.md.noise import maxwell_boltzmann
from common.md.state import BatchState
from common.potential.committee import Committee
from common.potential.protocol import ModelAdapter, evaluate
from common.potential.registry import load_saved
from common.testing import check_adapter
from drug_binding.model import ANI2X_ELEMENTS, ANIAdapter, build_model, load_config

MOLECULES = ("CH4", "H2O", "NH3", "CH3OH")
#: the tiny config, shortened further for CI (a few seconds per model on one core)
CI = {"max_epochs": 15, "patience": 15}


def _xtb_frames(n: int, seed: int = 0, names=MOLECULES) -> Dataset:
    """Rattled small molecules labelled with GFN2-xTB (tblite): ~3 ms a frame."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        a = molecule(names[k % len(names)])
        a.rattle(float(rng.uniform(0.03, 0.1)), seed=seed * 1000 + k)
        out.append(label_now(a, "xtb"))
    return Dataset.from_frames(out)


def _periodic(name: str, box_A: float, seed: int) -> object:
    """``name`` in a small triclinic cell (images within the 5.1 Å cutoff)."""
    a = molecule(name)
    a.cell = np.diag([box_A, 1.1 * box_A, 0.95 * box_A])
    a.cell[1, 0] = 0.3
    a.pbc = True
    a.center()
    a.rattle(0.05, seed=seed)
    return a


@pytest.fixture(scope="module")
def frames():
    return _xtb_frames(40)


@pytest.fixture(scope="module")
def checked(frames, tmp_path_factory):
    """check_adapter on the class: it trains a committee of two with train_committee."""
    workdir = tmp_path_factory.mktemp("ani_check")
    report = check_adapter(ANIAdapter, list(frames), workdir,
                           train_kwargs={"config": load_config("tiny", **CI)})
    return report, workdir / "committee"


@pytest.fixture(scope="module")
def trained(checked):
    return ANIAdapter.load(checked[1] / "member_0")


def test_ani_passes_check_adapter(checked):
    report, _ = checked
    assert report["contract"] == {"contract_violations": 0.0}
    assert report["elements"] == {"elements_violations": 0.0}
    assert report["stress"] == {"skipped": "no periodic frame among the frames"}
    # measured: 0 and 2e-15 against torchani's own calculator, 3e-7 by finite differences
    assert report["calculator"]["calculator_energy_eV_per_atom"] < 1e-10
    assert report["calculator"]["calculator_forces_eV_A"] < 1e-10
    assert report["forces"]["fd_forces_eV_A"] < 1e-5
    assert report["save_load"]["save_load_forces_eV_A"] == 0.0


def test_periodic_cells_match_torchani_and_finite_differences(trained, tmp_path):
    """Molecules in cells smaller than twice the cutoff (self-images, partial pbc): batched
    module == torchani's calculator, forces and stress == finite differences."""
    cells = [_periodic("CH4", 4.6, 0), _periodic("CH3OH", 5.5, 1), _periodic("H2O", 3.2, 2)]
    cells[2].pbc = [True, False, True]
    report = check_adapter(trained, cells, tmp_path, checks=(
        "calculator", "forces", "stress", "batch", "float32"))
    assert report["stress"]["fd_stress_eV_A3"] < 1e-6  # measured 8e-8
    a = cells[0].copy()
    a.calc = trained.calculator()
    ours = evaluate(trained.batched(), [cells[0]], dtype=torch.float64)
    np.testing.assert_allclose(ours["stress"][0].numpy(), a.get_stress(voigt=False),
                               atol=1e-10)


def test_training_writes_model_log_metrics_and_elements(trained, checked):
    m = trained.meta
    assert isinstance(trained, ModelAdapter)
    assert m["framework"] == "ani" and m["elements"] == ["H", "C", "N", "O"]
    assert set(m["self_energies_Ha"]) == {"H", "C", "N", "O"}
    assert -5.0 < m["self_energies_Ha"]["O"] < -3.0  # GFN2-xTB's scale, Hartree
    assert 1 <= m["best_epoch"] <= m["epochs"] <= CI["max_epochs"]
    assert np.isfinite(m["metrics"]["valid"]["force_mae_eV_A"])
    log = (trained.path / "training_log.csv").read_text().splitlines()
    assert log[0] == "epoch,train_loss,valid_loss,lr" and len(log) == m["epochs"] + 1
    valid = [float(row.split(",")[2]) for row in log[1:]]
    assert min(valid) < 0.5 * valid[0]  # it learns
    assert (checked[1] / "mlp-cases-model.json").exists()


def test_same_seed_same_model_and_test_metrics(frames, tmp_path):
    tr, va, te = frames[:30], frames[30:35], frames[35:]
    cfg = load_config("tiny", max_epochs=3)
    a = ANIAdapter.train(tr, va, tmp_path / "a", config=cfg, seed=3, test=te)
    b = ANIAdapter.train(tr, va, tmp_path / "b", config=cfg, seed=3)
    for (k, x), y in zip(a.model.state_dict().items(), b.model.state_dict().values(),
                         strict=True):
        assert torch.equal(x, y), k
    assert a.meta["metrics"]["test"]["n_frames"] == 5
    assert (tmp_path / "a" / "parity_test.png").stat().st_size > 1000


def test_nve_energy_conservation(trained):
    """Velocity Verlet at 0.25 fs: total-energy fluctuations a small fraction of the
    potential energy's, no drift beyond a few fluctuation widths."""
    a = molecule("CH3OH")
    a.set_velocities(maxwell_boltzmann(a.get_masses(), 300.0, 1))
    state = BatchState.from_atoms([a])
    eng = MDEngine(trained.batched(), state, ensemble="nve", timestep_fs=0.25)
    etot, epot = [], []
    for _ in range(150):
        eng.run(1)
        epot.append(float(eng.out["energy"][0]))
        etot.append(epot[-1] + float(state.kinetic_energy()[0]))
    etot, epot = np.array(etot), np.array(epot)
    assert etot.std() < 0.05 * epot.std(), (etot.std(), epot.std())
    slope = np.polyfit(np.arange(len(etot)), etot, 1)[0] * len(etot)
    assert abs(slope) < 3 * etot.std() + 1e-6


def test_committee_flags_deviation(checked):
    ens = load_saved(checked[1])
    assert isinstance(ens, Committee) and len(ens.members) == 2
    out = evaluate(ens, [molecule("CH3OH")])
    assert float(out["max_force_deviation"][0]) > 0.0


def test_unseen_element_is_refused(trained, checked):
    bad = molecule("CH3CH2OH")
    bad.numbers[2] = 35  # Br
    msg = (r"structure 1: element Br \(atom 2\) is not one this model was trained on "
           r"\(H, C, N, O\)")
    for pot in (trained.batched(), load_saved(checked[1] / "member_0"), load_saved(checked[1])):
        with pytest.raises(DataError, match=msg):
            evaluate(pot, [molecule("CH4"), bad])
    bad.calc = trained.calculator()
    with pytest.raises(DataError, match=r"element Br \(atom 2\)"):
        bad.get_potential_energy()


def test_training_refuses_elements_missing_from_the_training_set(frames, tmp_path):
    valid = _xtb_frames(2, seed=5, names=("CH3SH",))
    with pytest.raises(DataError, match=r"valid frame 0: element S is not in the training set"):
        ANIAdapter.train(frames[:4], valid, tmp_path / "m", config=load_config("tiny"))
    bare = [molecule(n) for n in MOLECULES]
    with pytest.raises(DataError, match="frame 0: frame has no energy or forces"):
        ANIAdapter.train(bare, frames[:2], tmp_path / "m", config=load_config("tiny"))
    assert not (tmp_path / "m").exists()


def test_pretrained_without_local_state_dict_names_the_path(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCHANI_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(EnvironmentProblem) as err:
        ANIAdapter.pretrained("ani2x")
    expected = tmp_path / "StateDicts" / "ani2x_state_dict.pt"
    assert err.value.where == str(expected)
    assert "nothing is downloaded" in str(err.value) and str(tmp_path / "StateDicts") in str(
        err.value)
    assert list(tmp_path.iterdir()) == []  # nothing created, nothing fetched
    with pytest.raises(ConfigError, match="no pretrained ANI model 'ani3x'"):
        ANIAdapter.pretrained("ani3x")


def _fake_ani2x_state_dict(data_dir) -> dict:
    """Random weights in the exact layout of torchani's ANI-2x (assembled as
    ``torchani.models.ANI2x`` does, minus the download), saved where torchani looks."""
    from torchani.arch import Assembler
    from torchani.utils import SYMBOLS_2X

    asm = Assembler()
    asm.set_symbols(SYMBOLS_2X)
    asm.set_global_cutoff_fn("cosine")
    asm.set_aev_computer(radial="ani2x", angular="ani2x", strategy="pyaev")
    asm.set_atomic_networks(ctor="ani2x")
    asm.set_neighborlist("all_pairs")
    asm.set_gsaes_as_self_energies("wb97x-631gd")
    state = asm.assemble(8).state_dict()
    (data_dir / "StateDicts").mkdir(parents=True)
    torch.save(state, data_dir / "StateDicts" / "ani2x_state_dict.pt")
    return state


def test_pretrained_loads_the_local_state_dict_through_torchani(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCHANI_DATA_DIR", str(tmp_path / "data"))
    state = _fake_ani2x_state_dict(tmp_path / "data")
    model = ANIAdapter.pretrained("ani2x")
    key = "potentials.nnp.neural_networks.members.3.atomics.Cl.layers.0.weight"
    assert torch.equal(model.model.state_dict()[key], state[key])
    assert model.elements == ANI2X_ELEMENTS
    mols = [molecule(n) for n in ("CH3SH", "CH3Cl", "CH3CH2OH")]
    report = check_adapter(model, mols, tmp_path / "check", checks=(
        "contract", "calculator", "forces", "batch", "save_load", "elements"))
    assert report["calculator"]["calculator_forces_eV_A"] < 1e-9
    again = ANIAdapter.load(tmp_path / "check" / "check_saved")
    assert again.meta["pretrained"] == "ani2x"
    bad = molecule("CH3CH2OH")
    bad.numbers[0] = 35
    with pytest.raises(DataError, match=r"element Br \(atom 0\)"):
        evaluate(again.batched(), [bad])


def test_paper_config_is_ani2x(tmp_path):
    """The paper config builds ANI-2x's architecture: torchani's 2x AEV (1008 features for
    the seven elements) and its per-element network sizes."""
    from torchani.aev import AEVComputer

    model = build_model(load_config("paper"), ANI2X_ELEMENTS)
    assert model.aev_computer.out_dim == 1008
    ref = AEVComputer.like_2x()
    for name, buf in ref.named_buffers():
        assert torch.equal(dict(model.aev_computer.named_buffers())[name], buf), name
    assert model.aev_computer.radial.cutoff == 5.1 and model.aev_computer.angular.cutoff == 3.5
    assert model.neural_networks["H"].layers[0].out_features == 256
    assert model.neural_networks["Cl"].layers[0].out_features == 160


@pytest.mark.parametrize(("overrides", "message"), [
    ({"n_layers": 3}, "unknown key 'n_layers'"),
    ({"hidden_layers": "big"}, "key 'hidden_layers' must be"),
    ({"angular_cutoff_A": 6.0}, r"angular_cutoff_A \(6.0\) must be > 0 and smaller"),
    ({"batch_size": 0}, r"batch_size must be > 0"),
    ({"hidden_layers": [16, 0]}, "hidden_layers must be positive sizes"),
])
def test_config_errors_name_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config("tiny", **overrides)


def test_config_dict_missing_key_and_unknown_scale():
    cfg = load_config("tiny")
    del cfg["lr"]
    with pytest.raises(ConfigError, match="missing key 'lr'"):
        ANIAdapter.untrained("unused", config=cfg)
    with pytest.raises(ConfigError, match="no ANI config 'huge'"):
        load_config("huge")


def test_untrained_round_trips_and_load_refuses_other_folders(tmp_path):
    m = ANIAdapter.untrained(tmp_path / "u", elements=["H", "O"])
    again = ANIAdapter.load(tmp_path / "u")
    x = evaluate(m.batched(), [molecule("H2O")])
    y = evaluate(again.batched(), [molecule("H2O")])
    assert torch.equal(x["energy"], y["energy"]) and torch.equal(x["forces"], y["forces"])
    assert again.elements == ("H", "O")
    with pytest.raises(ConfigError, match="mlp-cases-model.json"):
        ANIAdapter.load(tmp_path)


@pytest.mark.parametrize("device", ["cuda:99", "tpu"] + (
    [] if torch.cuda.is_available() else ["cuda"]))
def test_train_checks_the_device_before_writing_anything(frames, tmp_path, device):
    with pytest.raises(ConfigError) as err:
        ANIAdapter.train(frames[:4], frames[4:6], tmp_path / "model", device=device)
    assert err.value.where == "device"
    assert not (tmp_path / "model").exists()
