"""The model protocol every potential implements, framework adapters and analytic ones alike.

Two levels:

* :class:`BatchedPotential` — a ``torch.nn.Module`` whose ``forward(state, neighbors)`` returns
  ``{"energy": (n_systems,), "forces": (n_atoms, 3)}`` (and ``"stress": (n_systems, 3, 3)``
  where the model has it) for a whole :class:`~common.md.state.BatchState`. This is what the
  batched MD engine calls. Neighbour lists come from the engine: full lists (both directions
  of every pair) within ``cutoff + skin``, as a flat edge list (``pairs()``) or a padded dense
  matrix (``dense()``); a model must ignore pairs beyond its own ``cutoff``.
* :class:`ModelAdapter` — what a pipeline holds: train with the framework's own trainer, load
  from disk, an ASE calculator, and the batched module.

``common.testing.check_adapter`` checks an adapter against this contract (batched vs ASE
calculator, forces vs finite differences, stress vs strain derivative, mixed batches, save/load
and ensemble round trips, float32 vs float64, refusal of unseen elements).
"""

from __future__ import annotations

import abc
from collections.abc import Collection
from pathlib import Path
from typing import Any, ClassVar, Protocol, Required, TypedDict, runtime_checkable

import numpy as np
import torch

from common.errors import DataError
from common.md.neighbors import NeighborList
from common.md.state import BatchState

#: keyword arguments callers pass to ``ModelAdapter.train`` (catalysis.cli, catalysis.case_study,
#: common.potential.committee.train_committee); every adapter's ``train`` accepts all of them
TRAIN_KEYWORDS: tuple[str, ...] = ("config", "seed", "test", "device", "progress")


class BatchedPotential(torch.nn.Module, abc.ABC):
    """Base class: energy and forces for many systems at once (eV, eV/Å).

    A module follows ``module.to(dtype)``: it then computes in the state's dtype (float64 on
    CPU by default, float32 for speed on a GPU).
    """

    #: interaction cutoff, Å
    cutoff: float = 0.0
    #: whether "stress" is returned for periodic systems
    has_stress: bool = False
    #: whether forward() differentiates (autograd forces); analytic potentials do not
    needs_grad: bool = False
    #: atomic numbers the model was trained on; None: any element (analytic potentials)
    elements: frozenset[int] | None = None

    @abc.abstractmethod
    def forward(self, state: BatchState, neighbors: NeighborList,
                compute_stress: bool = False) -> dict[str, torch.Tensor]:
        """Energy per system (eV), forces per atom (eV/Å), and the stress of periodic systems.

        The stress (eV/Å^3) is given when ``compute_stress`` and the model has it.
        """

    def __call__(self, state: BatchState, neighbors: NeighborList,
                 compute_stress: bool = False) -> dict[str, torch.Tensor]:
        """Refuse unseen elements (:meth:`check_elements`), then run ``forward``."""
        self.check_elements(state)
        return super().__call__(state, neighbors, compute_stress=compute_stress)

    def check_elements(self, state: BatchState) -> None:
        """Raise :class:`~common.errors.DataError` if ``state`` holds an unknown element.

        An unknown element is one outside ``self.elements``; it is checked once per ``numbers``
        tensor, so MD pays nothing per step.
        """
        if self.elements is None:
            return
        key = (state.numbers.data_ptr(), state.numbers.shape, state.numbers._version)
        if getattr(self, "_checked_numbers", None) == key:
            return
        check_elements(state.numbers, self.elements, state.system_idx)
        self._checked_numbers = key


class ErrorMetrics(TypedDict):
    """One split's errors, as ``common.training.error_metrics`` returns them."""

    n_frames: int
    energy_mae_eV_per_atom: float
    energy_rmse_eV_per_atom: float
    force_mae_eV_A: float
    force_rmse_eV_A: float


class ModelMeta(TypedDict, total=False):
    """``adapter.meta``, saved as ``mlp-cases-model.json`` in the model folder.

    framework : the registry name (``common.potential.registry``), read by ``load_saved``
    elements : element symbols the model was trained on (sorted by Z); absent or None for a
        model that takes any element
    metrics : errors per split (``"train"``, ``"valid"``, ``"test"``), read by the CLIs, the
        case studies and ``train_committee``
    config : the hyperparameters trained with; seed : the training seed
    trained : False for a randomly initialised model (benchmarks only)
    """

    framework: Required[str]
    elements: list[str] | None
    metrics: dict[str, ErrorMetrics]
    config: dict[str, Any]
    seed: int
    trained: bool


@runtime_checkable
class ModelAdapter(Protocol):
    """A trained potential as a pipeline sees it, whatever framework is behind it.

    A :class:`typing.Protocol`, not an ABC: adapters live in domain packages and in users'
    own packages (found through entry points) and need not inherit from anything here; static
    type checkers check the signatures, ``isinstance(x, ModelAdapter)`` the members, and
    ``common.testing.check_adapter`` the behaviour.

    The saved folder holds ``mlp-cases-model.json`` (:class:`ModelMeta`) next to the
    framework's own files; ``load(save(path))`` predicts exactly what the adapter did.

    Optional class attribute ``trains_in_subprocess`` (absent means False): True when ``train``
    runs the framework's trainer in a child process, so ``train_committee(parallel=N)`` trains
    members in threads (passing ``threads=cpu_count // N`` if ``train`` takes ``threads``), not
    one process each. It is not a protocol member, so ``isinstance`` holds without it.
    """

    name: ClassVar[str]
    meta: ModelMeta

    @property
    def elements(self) -> tuple[str, ...] | None:
        """Element symbols the model was trained on; None for a model that takes any element.

        Its batched module and calculator refuse any other element with a DataError.
        """

    @classmethod
    def train(cls, train: Any, valid: Any, workdir: str | Path, *,
              config: dict[str, Any] | str | None = None, seed: int = 0, test: Any = None,
              device: str = "cpu", progress: bool = False) -> ModelAdapter:
        """Train with the framework's own trainer and save into ``workdir``.

        It trains on ``train`` (a Dataset), stops early on ``valid`` and scores on ``test``
        (``meta["metrics"]``).

        ``config``: hyperparameters (a dict, a scale name or a file); ``seed``: same seed on
        CPU, same model; ``device``: ``cpu``/``cuda``/``cuda:N``, checked before anything is
        written (ConfigError with ``where="device"``); ``progress``: draw a progress bar.
        """

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> ModelAdapter:
        """Load a saved model (the folder ``save`` or ``train`` wrote)."""

    def save(self, path: str | Path) -> Path:
        """Write the model folder (framework files + ``mlp-cases-model.json``)."""

    def calculator(self) -> Any:
        """Return an ASE calculator for single structures."""

    def batched(self) -> BatchedPotential:
        """Return the torch module for the batched MD engine (float64 unless ``.to(dtype)``)."""


def check_elements(numbers: torch.Tensor | np.ndarray, allowed: Collection[int],
                   system_idx: torch.Tensor | np.ndarray | None = None,
                   structure: str | None = None) -> None:
    """Raise a DataError naming the first element outside ``allowed`` (atomic numbers).

    The message names the element, the structure (``structure``, or its index in ``system_idx``)
    and the atom (index within its structure).
    """
    from ase.data import chemical_symbols

    z = np.asarray(numbers.detach().cpu() if isinstance(numbers, torch.Tensor) else numbers)
    bad = np.flatnonzero(~np.isin(z, sorted(allowed)))
    if not len(bad):
        return
    a = int(bad[0])
    sys_idx = np.zeros(len(z), dtype=int) if system_idx is None else np.asarray(
        system_idx.detach().cpu() if isinstance(system_idx, torch.Tensor) else system_idx)
    s = int(sys_idx[a])
    local = a - int(np.flatnonzero(sys_idx == s)[0])
    sym = chemical_symbols[z[a]] if 0 <= z[a] < len(chemical_symbols) else f"Z={z[a]}"
    known = ", ".join(chemical_symbols[k] for k in sorted(allowed))
    raise DataError(f"element {sym} (atom {local}) is not one this model was trained on "
                    f"({known})", where=structure or f"structure {s}",
                    fix=f"use a model trained on structures with {sym}, or remove it")


def element_numbers(symbols: Collection[str] | None) -> frozenset[int] | None:
    """Atomic numbers of element symbols (None stays None: any element)."""
    from ase.data import atomic_numbers

    return None if symbols is None else frozenset(atomic_numbers[s] for s in symbols)


def evaluate(potential: BatchedPotential, atoms_list, *, device: str = "cpu",
             dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """Energies/forces of a list of ASE Atoms in one batched call (no skin)."""
    state = BatchState.from_atoms(atoms_list, device=device, dtype=dtype)
    nbrs = NeighborList(potential.cutoff, skin=0.0)
    nbrs.update(state)
    with torch.no_grad() if not potential.needs_grad else torch.enable_grad():
        return potential(state, nbrs, compute_stress=potential.has_stress)


def sum_per_system(values: torch.Tensor, index: torch.Tensor, n_systems: int) -> torch.Tensor:
    """Sum per-item values (pairs or atoms) into one value per system."""
    return torch.zeros(n_systems, dtype=values.dtype, device=values.device
                       ).index_add_(0, index, values)


def elements_of(frames) -> list[str]:
    """Element symbols present in ``frames`` (ASE Atoms), sorted by atomic number."""
    from ase.data import chemical_symbols

    zs = sorted({int(z) for a in frames for z in np.unique(a.numbers)})
    return [chemical_symbols[z] for z in zs]
