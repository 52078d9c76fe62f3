"""Forces and stress by automatic differentiation, for any energy-only torch model.

The stress is the strain derivative of the energy (ASE's sign convention, positive in tension):

    stress_ab = (1/V) dE/d eps_ab  at eps = 0,

where a symmetric strain eps (one 3x3 per system) moves every atom and the cell affinely,
x -> x (1 + eps) and h -> h (1 + eps) (rows of h are the cell vectors). For that to reach the
energy, the model must build its edge vectors from the (strained) positions *and cells* it is
given, r_ij = x_j - x_i + S_ij h, as :func:`edge_vectors` does -- not from precomputed Cartesian
offsets, which would not follow the strain and silently give a wrong stress.

An adapter whose framework returns only energies (or whose own stress is missing) wraps its
energy function: ``energy_forces_stress(energy_fn, state, neighbors)``, or the ready-made
:class:`AutogradPotential`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import torch

from common.md.neighbors import NeighborList
from common.md.state import BatchState
from common.potential.protocol import BatchedPotential

EnergyFn = Callable[[BatchState, NeighborList], torch.Tensor]


def apply_strain(state: BatchState, strain: torch.Tensor) -> BatchState:
    """Return a state with positions and cells deformed by ``strain`` (n_systems, 3, 3).

    The deformation is x (1 + eps), h (1 + eps). Differentiable; the other tensors are shared with
    ``state``.
    """
    pos = state.positions + torch.einsum("na,nab->nb", state.positions,
                                         strain[state.system_idx])
    return replace(state, positions=pos, cells=state.cells + state.cells @ strain)


def edge_vectors(state: BatchState, neighbors: NeighborList
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return (i, j, r_ij, pair_system) over the flat neighbour list, r_ij = x_j - x_i + S h (Å).

    r_ij is differentiable with respect to both the positions and the cells of ``state``.
    """
    i, j, shifts, _, psys = neighbors.pairs()
    offsets = torch.einsum("pa,pab->pb", shifts, state.cells[psys])
    return i, j, state.positions[j] - state.positions[i] + offsets, psys


def energy_forces_stress(energy_fn: EnergyFn, state: BatchState, neighbors: NeighborList, *,
                         compute_stress: bool = True, create_graph: bool = False
                         ) -> dict[str, torch.Tensor]:
    """Compute energy, forces and (with ``compute_stress``) stress by autograd.

    The energy is in eV, (n_systems,); the forces -dE/dx in eV/Å; the stress (1/V) dE/d eps in
    eV/Å^3, (n_systems, 3, 3), zero for systems without a cell.

    ``energy_fn(state, neighbors)`` returns the energy per system and must take its edge
    vectors from the state's positions and cells (see :func:`edge_vectors`).
    ``create_graph`` keeps the graph (to train on forces or stress).
    """
    with torch.enable_grad():
        pos = state.positions.detach().requires_grad_(True)
        inputs = [pos]
        current = replace(state, positions=pos)
        if compute_stress:
            eps = torch.zeros(state.n_systems, 3, 3, dtype=state.dtype, device=state.device,
                              requires_grad=True)
            current = apply_strain(current, 0.5 * (eps + eps.transpose(-1, -2)))
            inputs.append(eps)
        energy = energy_fn(current, neighbors)
        grads = torch.autograd.grad(energy.sum(), inputs, create_graph=create_graph,
                                    allow_unused=True)
    grads = [torch.zeros_like(x) if g is None else g for g, x in zip(grads, inputs, strict=True)]
    out = {"energy": energy if create_graph else energy.detach(), "forces": -grads[0]}
    if compute_stress:
        vol = torch.linalg.det(state.cells.detach()).abs()
        periodic = state.pbc.any(-1) & (vol > 0)
        safe = torch.where(periodic, vol, torch.ones_like(vol))
        out["stress"] = torch.where(periodic[:, None, None], grads[1] / safe[:, None, None],
                                    torch.zeros_like(grads[1]))
    return out


class AutogradPotential(BatchedPotential):
    """A :class:`BatchedPotential` from an energy function: forces and stress by autograd.

    Parameters
    ----------
    energy_fn : (state, neighbors) -> energy per system, eV (edge vectors from
        :func:`edge_vectors`, so that the strain reaches them)
    cutoff : interaction cutoff, Å
    """

    has_stress = True
    needs_grad = True

    def __init__(self, energy_fn: EnergyFn, cutoff: float):
        super().__init__()
        self.energy_fn, self.cutoff = energy_fn, float(cutoff)

    def forward(self, state: BatchState, neighbors: NeighborList,
                compute_stress: bool = False) -> dict[str, torch.Tensor]:
        """Return energy, forces (and stress if asked) from the energy function."""
        return energy_forces_stress(self.energy_fn, state, neighbors,
                                    compute_stress=compute_stress)
