"""common.testing.check_adapter: an analytic adapter that keeps the contract passes every
check, and each deliberately broken adapter fails the check that catches its bug, with the
numbers in the message. Also: unseen elements are refused by every BatchedPotential."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.emt import EMT

from common.errors import ConfigError, DataError
from common.labels import label_now
from common.potential.analytic import AnalyticAdapter
from common.potential.calculator import BatchedPotentialCalculator
from common.potential.pair import Morse
from common.potential.protocol import BatchedPotential, ModelAdapter, evaluate
from common.testing import CHECKS, AdapterCheckFailed, Tolerances, check_adapter, evaluation_frames

torch.set_num_threads(1)

#: Girifalco & Weizer's Cu Morse parameters as the starting point (as common.demo does)
MORSE = {"kind": "morse", "max_iter": 30,
         "init": {"epsilon": 0.3429, "rho0": 3.894, "r0": 2.866, "rcut1": 1.5, "rcut2": 2.0}}


class MorseAdapter(AnalyticAdapter):
    """AnalyticAdapter, with a helper to re-make the fitted potential as a broken subclass."""

    def copy_as(self, cls):
        """The same fitted potential as an instance of a (broken) subclass."""
        return cls(self.kind, self.params, self.energy_per_atom, self.metrics)


class Tampered(BatchedPotential):
    """A BatchedPotential whose outputs pass through ``change(out, state)``."""

    def __init__(self, inner: BatchedPotential, change):
        super().__init__()
        self.inner, self.change = inner, change
        self.cutoff, self.has_stress = inner.cutoff, inner.has_stress

    def forward(self, state, neighbors, compute_stress=False):
        return self.change(self.inner(state, neighbors, compute_stress=compute_stress), state)


def _tampering(change):
    class Broken(MorseAdapter):
        def batched(self):
            return Tampered(super().batched(), change)

    return Broken


@pytest.fixture(scope="module")
def cu_frames():
    """EMT-labelled rattled fcc Cu cells of 32 and 48 atoms."""
    out = []
    for k, rep in enumerate([(2, 2, 2), (3, 2, 2)] * 3):
        a = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(rep)
        a.rattle(0.05, seed=k)
        out.append(label_now(a, EMT()))
    return out


@pytest.fixture(scope="module")
def fitted(cu_frames):
    return MorseAdapter.train(cu_frames[:4], cu_frames[4:], config=MORSE)


def _failures(exc: AdapterCheckFailed) -> list[str]:
    return [line.strip() for line in str(exc).splitlines()[1:]]


def test_fitted_morse_adapter_passes_every_check(cu_frames, tmp_path):
    report = check_adapter(MorseAdapter, cu_frames, tmp_path, train_kwargs={"config": MORSE})
    assert set(report) == set(CHECKS)
    assert report["elements"] == {"skipped": "the model takes any element (elements is None)"}
    assert all("skipped" not in report[c] for c in CHECKS if c != "elements")
    assert report["forces"]["fd_forces_eV_A"] < 1e-6
    assert report["stress"]["fd_stress_eV_A3"] < 1e-7
    assert report["float32"]["float32_forces_eV_A"] < 1e-4
    assert (tmp_path / "committee" / "mlp-cases-model.json").exists()  # train_committee's folder


def test_a_trained_instance_is_checked_too(fitted, cu_frames, tmp_path):
    report = check_adapter(fitted, cu_frames, tmp_path, checks=("batch", "committee"))
    assert report["batch"]["batch_forces_eV_A"] < 1e-10
    assert isinstance(fitted, ModelAdapter)


@pytest.mark.parametrize("change, check, quantity", [
    (lambda o, s: {**o, "forces": -o["forces"]}, "forces", "fd_forces_eV_A"),
    (lambda o, s: {**o, "stress": -o["stress"]} if "stress" in o else o, "stress",
     "fd_stress_eV_A3"),
    # every system gets the whole batch's energy: right alone, wrong in a mixed batch
    (lambda o, s: {**o, "energy": o["energies"].sum().expand(s.n_systems)}, "batch",
     "batch_energy_eV_per_atom"),
    # accumulates in half precision when run in float32
    (lambda o, s: {**o, "energy": o["energy"].half().to(s.dtype)} if s.dtype == torch.float32
     else o, "float32", "float32_energy_eV_per_atom"),
], ids=["forces-wrong-sign", "stress-wrong-sign", "ignores-system-index", "half-precision"])
def test_a_broken_batched_module_fails_its_check(fitted, cu_frames, tmp_path, change, check,
                                                 quantity):
    broken = fitted.copy_as(_tampering(change))
    with pytest.raises(AdapterCheckFailed) as err:
        check_adapter(broken, cu_frames, tmp_path, checks=("calculator", check))
    failed = _failures(err.value)
    assert len(failed) == 1 and failed[0].startswith(f"{check}: {quantity} = "), failed
    assert err.value.report[check][quantity] > getattr(Tolerances(), quantity)
    assert err.value.report["calculator"]["calculator_forces_eV_A"] == 0.0


def test_wrong_sign_forces_message_names_the_atom_and_both_numbers(fitted, cu_frames,
                                                                    tmp_path):
    broken = fitted.copy_as(_tampering(lambda o, s: {**o, "forces": -o["forces"]}))
    with pytest.raises(AdapterCheckFailed, match=r"frame 0 atom 0 [xyz]: F = .*, -dE/dx = "):
        check_adapter(broken, cu_frames, tmp_path, checks=("forces",))


def test_a_calculator_that_disagrees_fails(fitted, cu_frames, tmp_path):
    class OffsetCalculator(MorseAdapter):
        def calculator(self):  # forgets the fitted reference energy
            return BatchedPotentialCalculator(Morse(**self.params))

    with pytest.raises(AdapterCheckFailed, match="calculator: calculator_energy_eV_per_atom"):
        check_adapter(fitted.copy_as(OffsetCalculator), cu_frames, tmp_path,
                      checks=("calculator",))


def test_a_save_that_loses_a_parameter_fails_save_load_and_committee(fitted, cu_frames,
                                                                     tmp_path):
    class Forgetful(MorseAdapter):
        def save(self, path):
            return MorseAdapter(self.kind, self.params, 0.0).save(path)

    with pytest.raises(AdapterCheckFailed) as err:
        check_adapter(fitted.copy_as(Forgetful), cu_frames, tmp_path,
                      checks=("save_load", "committee"))
    failed = _failures(err.value)
    assert any(f.startswith("save_load: save_load_energy_eV_per_atom") for f in failed)
    assert any(f.startswith("committee: committee_energy_eV_per_atom") for f in failed)


def test_claimed_elements_that_are_not_enforced_fail(fitted, cu_frames, tmp_path):
    class Claims(MorseAdapter):
        meta = {"framework": "morse", "elements": ["Cu"]}
        elements = ("Cu",)

    with pytest.raises(AdapterCheckFailed, match="ran on U without a word") as err:
        check_adapter(fitted.copy_as(Claims), cu_frames, tmp_path, checks=("elements",))
    assert err.value.report["elements"]["elements_violations"] == 2.0


def test_a_broken_contract_is_listed(fitted, cu_frames, tmp_path):
    class Narrow(MorseAdapter):
        meta = {"metrics": {}}

        @classmethod
        def train(cls, train, valid=None, workdir=None, config=None, seed=0):
            raise NotImplementedError

    with pytest.raises(AdapterCheckFailed) as err:
        check_adapter(fitted.copy_as(Narrow), cu_frames, tmp_path, checks=("contract",))
    text = str(err.value)
    for words in ("train() takes no test=", "no device=", "no progress=", "meta['framework']"):
        assert words in text


def test_tolerances_can_be_loosened_and_are_checked_by_name(fitted, cu_frames, tmp_path):
    half = fitted.copy_as(_tampering(
        lambda o, s: {**o, "energy": o["energy"].half().to(s.dtype)}
        if s.dtype == torch.float32 else o))
    check_adapter(half, cu_frames, tmp_path, checks=("float32",),
                  tolerances={"float32_energy_eV_per_atom": 1.0})
    with pytest.raises(ConfigError, match="float32_energy"):
        check_adapter(half, cu_frames, tmp_path, tolerances={"float32_energy": 1.0})
    with pytest.raises(ConfigError, match="unknown check"):
        check_adapter(half, cu_frames, tmp_path, checks=("speed",))


def test_evaluation_frames_mix_sizes_and_add_a_molecule(cu_frames):
    same_size = [cu_frames[0], cu_frames[2]]
    frames = evaluation_frames(same_size)
    assert len({len(a) for a in frames}) == 2
    assert [bool(a.pbc.any()) for a in frames] == [True, True, False]
    assert all(a.calc is None for a in frames)
    assert len(evaluation_frames(cu_frames, molecules=False)) == 2


def test_a_potential_with_elements_refuses_others_naming_structure_and_atom(cu_frames):
    pot = Morse(**MORSE["init"])
    pot.elements = frozenset({29})
    bad = cu_frames[1].copy()
    bad.numbers[7] = 92
    evaluate(pot, [cu_frames[0]])  # Cu only: fine
    with pytest.raises(DataError, match=r"structure 1: element U \(atom 7\)") as err:
        evaluate(pot, [cu_frames[0], bad])
    assert err.value.where == "structure 1" and "(Cu)" in err.value.what
    bad.calc = BatchedPotentialCalculator(pot)
    with pytest.raises(DataError, match=r"structure Cu47U: element U \(atom 7\)"):
        bad.get_potential_energy()
    assert np.isfinite(evaluate(Morse(**MORSE["init"]), [bad])["energy"][0])  # no elements
