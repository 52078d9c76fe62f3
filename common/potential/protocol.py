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
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch

from common.md.neighbors import NeighborList
from common.md.state import BatchState


class BatchedPotential(torch.nn.Module, abc.ABC):
    """Base class: energy and forces for many systems at once (eV, eV/Å)."""

    #: interaction cutoff, Å
    cutoff: float = 0.0
    #: whether "stress" is returned for periodic systems
    has_stress: bool = False
    #: whether forward() differentiates (autograd forces); analytic potentials do not
    needs_grad: bool = False

    @abc.abstractmethod
    def forward(self, state: BatchState, neighbors: NeighborList,
                compute_stress: bool = False) -> dict[str, torch.Tensor]:
        """Energy per system (eV), forces per atom (eV/Å), and the stress (eV/Å^3) of periodic
        systems when ``compute_stress`` and the model has it."""


@runtime_checkable
class ModelAdapter(Protocol):
    """A trained potential as a pipeline sees it, whatever framework is behind it."""

    name: ClassVar[str]

    @classmethod
    def train(cls, train: Any, valid: Any, workdir: Path, config: dict | None = None,
              seed: int = 0) -> ModelAdapter: ...

    @classmethod
    def load(cls, path: Path, device: str = "cpu") -> ModelAdapter: ...

    def save(self, path: Path) -> Path: ...

    def calculator(self) -> Any:
        """An ASE calculator for single structures."""

    def batched(self) -> BatchedPotential:
        """The torch module for the batched MD engine."""


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
