"""The batched state: many independent systems as plain tensors plus a system index."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch
from ase import Atoms

from common.errors import DataError


def cell_det(cells: torch.Tensor) -> torch.Tensor:
    """Return the determinants of (n, 3, 3) matrices, by the explicit formula.

    It is far cheaper than ``torch.linalg.det`` for small batches of 3x3 cells, and is called
    every NPT step.
    """
    a, b, c = cells[:, 0], cells[:, 1], cells[:, 2]
    return (a * torch.linalg.cross(b, c)).sum(-1)


def cell_inv(cells: torch.Tensor) -> torch.Tensor:
    """Inverses of (n, 3, 3) non-singular matrices (adjugate / determinant)."""
    a, b, c = cells[:, 0], cells[:, 1], cells[:, 2]
    adj = torch.stack([torch.linalg.cross(b, c), torch.linalg.cross(c, a),
                       torch.linalg.cross(a, b)], -1)
    return adj / cell_det(cells)[:, None, None]


def squared_norms(x: torch.Tensor) -> torch.Tensor:
    """Row-wise squared norms of an (n, 3) tensor.

    ``x.square() @ 1`` rather than ``(x**2).sum(-1)``: a reduction over a trailing dimension of
    3 is 5-8x slower on a CPU (measured with torch 2.13, 2k-13k rows), and these run every step.
    """
    return x.square() @ x.new_ones(x.shape[-1])


@dataclass
class BatchState:
    """Atoms of ``n_systems`` independent systems, concatenated.

    Units are ASE's: positions Å, velocities Å/(ASE time), masses amu, cells Å.

    Attributes
    ----------
    positions, velocities : (n_atoms, 3)
    masses : (n_atoms,)
    numbers : (n_atoms,) atomic numbers, int64
    cells : (n_systems, 3, 3), rows are the cell vectors (zeros for a non-periodic system)
    pbc : (n_systems, 3) bool
    system_idx : (n_atoms,) int64, which system each atom belongs to (sorted, contiguous)
    fixed : (n_atoms,) bool, atoms held in place (e.g. the bottom layers of a slab)
    """

    positions: torch.Tensor
    velocities: torch.Tensor
    masses: torch.Tensor
    numbers: torch.Tensor
    cells: torch.Tensor
    pbc: torch.Tensor
    system_idx: torch.Tensor
    fixed: torch.Tensor

    @property
    def n_systems(self) -> int:
        """Number of systems."""
        return int(self.cells.shape[0])

    @property
    def n_atoms(self) -> int:
        """Number of atoms, all systems together."""
        return int(self.positions.shape[0])

    @property
    def device(self) -> torch.device:
        """Device of the tensors."""
        return self.positions.device

    @property
    def dtype(self) -> torch.dtype:
        """Floating-point dtype of positions, velocities, masses and cells."""
        return self.positions.dtype

    def atoms_per_system(self) -> torch.Tensor:
        """Return the number of atoms of each system, (n_systems,)."""
        return torch.bincount(self.system_idx, minlength=self.n_systems)

    def offsets(self) -> torch.Tensor:
        """Index of each system's first atom, (n_systems + 1,)."""
        counts = self.atoms_per_system()
        return torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])

    def degrees_of_freedom(self) -> torch.Tensor:
        """3 × free atoms per system (fixed atoms carry no kinetic degrees of freedom)."""
        free = (~self.fixed).to(self.dtype)
        return 3.0 * torch.zeros(self.n_systems, dtype=self.dtype, device=self.device
                                 ).index_add_(0, self.system_idx, free)

    def kinetic_energy(self) -> torch.Tensor:
        """Kinetic energy per system, eV."""
        ke_atom = 0.5 * self.masses * squared_norms(self.velocities)
        return torch.zeros(self.n_systems, dtype=self.dtype, device=self.device
                           ).index_add_(0, self.system_idx, ke_atom)

    def kinetic_tensor(self) -> torch.Tensor:
        """Return the sum over each system's atoms of m v (x) v, (n_systems, 3, 3), eV.

        It is twice the kinetic energy tensor: its trace is 2 Ekin.
        """
        mv = self.masses.unsqueeze(-1) * self.velocities
        per_atom = (mv.unsqueeze(-1) * self.velocities.unsqueeze(-2)).reshape(-1, 9)
        return torch.zeros(self.n_systems, 9, dtype=self.dtype, device=self.device
                           ).index_add_(0, self.system_idx, per_atom).reshape(-1, 3, 3)

    def volumes(self) -> torch.Tensor:
        """Return the cell volume per system, Å^3.

        It is NaN for a system that is not periodic along any axis or has no cell of non-zero
        volume.
        """
        vol = cell_det(self.cells).abs()
        ok = self.pbc.any(-1) & (vol > 0)
        return torch.where(ok, vol, torch.full_like(vol, float("nan")))

    def temperature_K(self) -> torch.Tensor:
        """Instantaneous kinetic temperature per system, K."""
        from common.units import KB_EV_PER_K

        dof = self.degrees_of_freedom().clamp(min=1.0)
        return 2.0 * self.kinetic_energy() / (dof * KB_EV_PER_K)

    def clone(self) -> BatchState:
        """Return a copy with every tensor cloned."""
        return BatchState(**{f.name: getattr(self, f.name).clone() for f in fields(self)})

    def to(self, device: str | torch.device) -> BatchState:
        """Return a copy with every tensor on ``device``."""
        return BatchState(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def select(self, systems: list[int] | torch.Tensor) -> BatchState:
        """Return a new state holding only ``systems`` (in that order)."""
        systems = torch.as_tensor(systems, dtype=torch.long, device=self.device)
        parts = [torch.nonzero(self.system_idx == s).flatten() for s in systems.tolist()]
        atom_idx = torch.cat(parts)
        new_sys = torch.cat([torch.full((len(p),), k, dtype=torch.long, device=self.device)
                             for k, p in enumerate(parts)])
        return BatchState(
            positions=self.positions[atom_idx].clone(),
            velocities=self.velocities[atom_idx].clone(),
            masses=self.masses[atom_idx].clone(),
            numbers=self.numbers[atom_idx].clone(),
            cells=self.cells[systems].clone(),
            pbc=self.pbc[systems].clone(),
            system_idx=new_sys,
            fixed=self.fixed[atom_idx].clone(),
        )

    # -- conversion -------------------------------------------------------------------------
    @classmethod
    def from_atoms(cls, atoms_list: list[Atoms] | Atoms, *, device: str = "cpu",
                   dtype: torch.dtype | None = None) -> BatchState:
        """Stack ASE Atoms into one state.

        Velocities come from the Atoms' momenta (zero if unset); ``FixAtoms`` constraints become
        ``fixed``. float64 on CPU, float32 on CUDA unless ``dtype`` is given.
        """
        if isinstance(atoms_list, Atoms):
            atoms_list = [atoms_list]
        if len(atoms_list) == 0:
            raise DataError("no structures given", fix="pass at least one structure")
        if dtype is None:
            dtype = torch.float64 if str(device).startswith("cpu") else torch.float32
        pos, vel, mass, num, cell, pbc, sidx, fixed = [], [], [], [], [], [], [], []
        for k, a in enumerate(atoms_list):
            if len(a) == 0:
                raise DataError("structure has no atoms", where=f"structure {k}",
                                fix="remove empty frames from the input")
            pos.append(a.get_positions())
            vel.append(a.get_velocities() if a.has("momenta") else np.zeros((len(a), 3)))
            mass.append(a.get_masses())
            num.append(a.numbers)
            cell.append(a.cell.array if a.pbc.any() else np.zeros((3, 3)))
            pbc.append(a.pbc)
            sidx.append(np.full(len(a), k))
            fx = np.zeros(len(a), dtype=bool)
            for c in a.constraints:
                if type(c).__name__ == "FixAtoms":
                    fx[c.get_indices()] = True
            fixed.append(fx)

        def t(x, dt):
            return torch.as_tensor(np.concatenate(x) if x[0].ndim else np.array(x), dtype=dt,
                                   device=device)

        return cls(
            positions=t(pos, dtype), velocities=t(vel, dtype), masses=t(mass, dtype),
            numbers=t(num, torch.long),
            cells=torch.as_tensor(np.stack(cell), dtype=dtype, device=device),
            pbc=torch.as_tensor(np.stack(pbc), dtype=torch.bool, device=device),
            system_idx=t(sidx, torch.long), fixed=t(fixed, torch.bool),
        )

    def to_atoms(self, energies: torch.Tensor | None = None,
                 forces: torch.Tensor | None = None) -> list[Atoms]:
        """One ASE Atoms per system (with velocities; energy/forces attached when given)."""
        from ase.calculators.singlepoint import SinglePointCalculator
        from ase.constraints import FixAtoms

        off = self.offsets().tolist()
        pos = self.positions.detach().cpu().numpy()
        vel = self.velocities.detach().cpu().numpy()
        num = self.numbers.cpu().numpy()
        mass = self.masses.detach().cpu().numpy()
        fixed = self.fixed.cpu().numpy()
        cells = self.cells.detach().cpu().numpy()
        pbc = self.pbc.cpu().numpy()
        f_np = None if forces is None else forces.detach().cpu().numpy()
        out = []
        for s in range(self.n_systems):
            a, b = off[s], off[s + 1]
            at = Atoms(numbers=num[a:b], positions=pos[a:b], cell=cells[s], pbc=pbc[s],
                       masses=mass[a:b])
            at.set_velocities(vel[a:b])
            if fixed[a:b].any():
                at.set_constraint(FixAtoms(indices=np.nonzero(fixed[a:b])[0]))
            if energies is not None or f_np is not None:
                at.calc = SinglePointCalculator(
                    at, energy=None if energies is None else float(energies[s]),
                    forces=None if f_np is None else f_np[a:b])
            out.append(at)
        return out
