"""Analytic pair potentials in torch (Lennard-Jones, Morse), batched over systems.

They match ASE's own ``LennardJones`` and ``MorsePotential`` calculators exactly (same
functional forms, shifts and cutoff functions), which the tests check; ``calculator()`` returns
that ASE calculator. Forces are analytic (no autograd), so these potentials are also the
fastest workload for testing and benchmarking the MD engine.

On a CPU, Lennard-Jones runs its pair loop in a native C kernel (:mod:`common.md.native`,
compiled once on first use, ~9x the ``torch.compile``-d torch kernel on 2 cores); the torch
kernels below stay the reference, the GPU path and the fallback where no C compiler is found
(``pot.native = False`` selects them).
"""

from __future__ import annotations

import abc
import ctypes
from typing import Any

import torch

from common.errors import ConfigError
from common.md.neighbors import NeighborList
from common.md.state import BatchState
from common.potential.protocol import BatchedPotential, sum_per_system


class PairPotential(BatchedPotential):
    """Sum over pairs of u(r); subclasses give u and (1/r) du/dr as functions of r²."""

    has_stress = True
    #: constant energy per atom added to every system (a fitted reference energy), eV
    energy_per_atom: float = 0.0
    #: use the native CPU kernel where the potential has one (see the module docstring)
    native: bool = True

    @abc.abstractmethod
    def pair_terms(self, r2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(u(r), (1/r) du/dr) for squared distances r2; zero beyond the cutoff."""

    def forward(self, state: BatchState, neighbors: NeighborList,
                compute_stress: bool = False) -> dict[str, torch.Tensor]:
        """Return energy per system, forces, per-atom ``energies`` and, if asked, the stress."""
        # dense (n_atoms, K) neighbour matrix, structure of arrays: see NeighborList.dense
        nbr, offs = neighbors.dense(state)
        native = self._native_kernel(state.positions, nbr, offs, compute_stress)
        if native is not None:
            e_atom, forces, virial = native
        elif compute_stress:  # the pair vectors and terms are kept for the virial
            kernel = self._compiled[1] if self._compiled else self._dense_terms
            e_atom, forces, d, du_r = kernel(state.positions, nbr, offs)
            virial = 0.5 * torch.einsum("anK,bnK->nab", d, d * du_r).reshape(-1, 9)
        else:  # the MD hot path: nothing per pair leaves the kernel
            kernel = self._compiled[0] if self._compiled else self._dense_forces
            e_atom, forces = kernel(state.positions, nbr, offs)
        out = {"energy": sum_per_system(e_atom, state.system_idx, state.n_systems),
               "forces": forces, "energies": e_atom}
        if compute_stress:
            out["stress"] = self._stress(state, virial)
        return out

    def _native_kernel(self, positions, nbr, offs, virial: bool):
        """(per-atom energies, forces, per-atom virial or None) from a C kernel, or None.

        None sends the caller to the torch kernels: no native kernel for this potential, a GPU
        tensor, autograd through the positions, or no C compiler (:mod:`common.md.native`).
        """
        return None

    def _dense_terms(self, positions, nbr, offs):
        pos_t = positions.t().contiguous()  # (3, n_atoms)
        d = pos_t.index_select(1, nbr.reshape(-1)).view(3, *nbr.shape) \
            - pos_t.unsqueeze(-1) + offs  # r_ij = x_j - x_i, (3, n, K)
        r2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
        u, du_r = self.pair_terms(r2)
        forces = (d * du_r).sum(-1).t()  # F_i = sum_j (1/r) du/dr (x_j - x_i)
        e_atom = 0.5 * u.sum(-1) + self.energy_per_atom  # each pair appears twice
        return e_atom, forces, d, du_r

    def _dense_forces(self, positions, nbr, offs):
        """Per-atom energies and forces only (what MD needs): the kernel ``torch.compile`` fuses."""
        e_atom, forces, _, _ = self._dense_terms(positions, nbr, offs)
        return e_atom, forces

    _compiled = None  # (energies+forces kernel, kernel with the pair terms for the virial)

    def use_compiled_kernel(self) -> PairPotential:
        """Use ``torch.compile``-d kernels where there is no native one; return ``self``.

        The kernel fuses the gather, the pair terms and the reductions into one loop: about 5x
        faster on a CPU than eager torch, after 10-30 s of compilation, cached on disk. MD
        without a barostat uses a kernel that writes nothing per pair; the virial (NPT, stress)
        one that keeps the pair vectors. Either falls back to eager, with a warning, if
        compilation fails. A potential with a native C kernel (Lennard-Jones on a CPU) uses that
        instead, compiled or not: it is ~9x this kernel's speed on 2 cores.
        """
        def compiled(fn):
            fast = torch.compile(fn, dynamic=True)

            def kernel(*args):
                try:
                    return fast(*args)
                except Exception as exc:  # no C++ compiler, unsupported platform...
                    import warnings

                    warnings.warn(f"torch.compile failed ({type(exc).__name__}); running eager",
                                  stacklevel=2)
                    self._compiled = None
                    return fn(*args)
            return kernel

        self._compiled = (compiled(self._dense_forces), compiled(self._dense_terms))
        return self

    @staticmethod
    def _stress(state: BatchState, virial: torch.Tensor) -> torch.Tensor:
        """Return the virial stress per system, (n_systems, 3, 3), eV/Å^3.

        ``virial`` is per atom, (n_atoms, 9): half of sum_j r_ij (x) dU/dr_ij over its pairs.
        The stress is (1/V) times its sum over a system's atoms for any system with a cell of
        non-zero volume (slabs too, as ASE does), and zero for molecules.
        """
        vir = torch.zeros(state.n_systems, 9, dtype=state.dtype, device=state.device
                          ).index_add_(0, state.system_idx, virial)
        vol = torch.linalg.det(state.cells).abs()
        periodic = state.pbc.any(-1) & (vol > 0)
        stress = torch.where(periodic[:, None], vir / torch.where(periodic, vol, 1.0)[:, None],
                             torch.zeros_like(vir))
        return stress.reshape(-1, 3, 3)


class LennardJones(PairPotential):
    """12-6 Lennard-Jones, ASE's convention.

    The energy is shifted to zero at ``rc`` (default 3σ); with ``smooth=True``, ASE's smooth
    cutoff applies between ``ro`` (default 0.66 rc) and ``rc``.
    """

    def __init__(self, epsilon: float = 1.0, sigma: float = 1.0, rc: float | None = None,
                 ro: float | None = None, smooth: bool = False):
        super().__init__()
        if epsilon <= 0 or sigma <= 0:
            raise ConfigError(f"Lennard-Jones needs epsilon > 0 and sigma > 0 (got {epsilon}, "
                              f"{sigma})", where="potential parameters", fix="use positive values")
        rc = 3.0 * sigma if rc is None else float(rc)
        ro = 0.66 * rc if ro is None else float(ro)
        if not 0 < ro < rc:
            raise ConfigError(f"need 0 < ro < rc (got ro={ro}, rc={rc})",
                              where="potential parameters", fix="choose ro below rc")
        self.epsilon, self.sigma, self.rc, self.ro, self.smooth = (float(epsilon), float(sigma),
                                                                   rc, ro, bool(smooth))
        self.cutoff = rc
        self.e0 = 4 * epsilon * ((sigma / rc) ** 12 - (sigma / rc) ** 6)

    def pair_terms(self, r2):
        """Return (u(r), (1/r) du/dr) of the 12-6 form for squared distances r2; zero beyond rc."""
        rc2, ro2 = self.rc**2, self.ro**2
        if not self.smooth:  # the hot path of MD: as few tensor passes as possible
            inside = (r2 < rc2).to(r2.dtype)
            inv2 = (self.sigma**2) / r2
            c6 = inv2 * inv2 * inv2
            c12 = c6 * c6
            u = (4 * self.epsilon * (c12 - c6) - self.e0) * inside
            du_r = (c6 - 2 * c12) * (inv2 * inside) * (24 * self.epsilon / self.sigma**2)
            return u, du_r
        inside = r2 < rc2
        r2s = torch.where(inside, r2, torch.full_like(r2, rc2))
        c6 = (self.sigma**2 / r2s) ** 3
        c12 = c6 * c6
        u = 4 * self.epsilon * (c12 - c6)
        du_r = -24 * self.epsilon * (2 * c12 - c6) / r2s  # (1/r) du/dr
        # ASE's smooth cutoff (a function of r^2) between ro and rc
        fc = torch.where(r2s < ro2, torch.ones_like(r2s),
                         (rc2 - r2s) ** 2 * (rc2 + 2 * r2s - 3 * ro2) / (rc2 - ro2) ** 3)
        dfc = torch.where(r2s < ro2, torch.zeros_like(r2s),
                          6 * (rc2 - r2s) * (ro2 - r2s) / (rc2 - ro2) ** 3)  # d fc / d r2
        du_r = du_r * fc + u * 2 * dfc
        u = u * fc
        zero = torch.zeros_like(u)
        return torch.where(inside, u, zero), torch.where(inside, du_r, zero)

    def _native_kernel(self, positions, nbr, offs, virial: bool):
        """Run the C pair loop of :mod:`common.md.native` (``pair_lj.c``), unsmoothed form only."""
        fn = _native_lj(positions, nbr, offs) if self.native and not self.smooth else None
        if fn is None:
            return None
        n, k = nbr.shape
        e_atom = positions.new_empty(n)
        forces = positions.new_empty(n, 3)
        w = positions.new_empty(n, 9) if virial else None
        fn(n, k, positions.data_ptr(), nbr.data_ptr(), offs.data_ptr(), self.rc**2,
           self.sigma**2, 4 * self.epsilon, self.e0, 24 * self.epsilon / self.sigma**2,
           self.energy_per_atom, e_atom.data_ptr(), forces.data_ptr(),
           None if w is None else w.data_ptr(), torch.get_num_threads())
        return e_atom, forces, w

    def calculator(self):
        """Return ASE's ``LennardJones`` calculator with the same parameters."""
        from ase.calculators.lj import LennardJones as AseLJ

        return AseLJ(epsilon=self.epsilon, sigma=self.sigma, rc=self.rc, ro=self.ro,
                     smooth=self.smooth)

    def params(self) -> dict[str, Any]:
        """Return the parameters that identify this potential (checkpoints, run.json)."""
        return {"epsilon": self.epsilon, "sigma": self.sigma, "rc": self.rc, "ro": self.ro,
                "smooth": self.smooth}


class Morse(PairPotential):
    """Morse potential, ASE's ``MorsePotential`` form.

    The energy is u(r) = ε(e^{-2ρ0(r/r0-1)} - 2e^{-ρ0(r/r0-1)}) times a quintic smooth cutoff
    between ``rcut1·r0`` and ``rcut2·r0``.
    """

    def __init__(self, epsilon: float = 1.0, rho0: float = 6.0, r0: float = 1.0,
                 rcut1: float = 1.9, rcut2: float = 2.7):
        super().__init__()
        if epsilon <= 0 or r0 <= 0 or rho0 <= 0 or not 0 < rcut1 < rcut2:
            raise ConfigError("Morse needs epsilon, rho0, r0 > 0 and 0 < rcut1 < rcut2",
                              where="potential parameters", fix="check the values")
        self.epsilon, self.rho0, self.r0 = float(epsilon), float(rho0), float(r0)
        self.rcut1, self.rcut2 = float(rcut1), float(rcut2)
        self.cutoff = self.rcut2 * self.r0

    def pair_terms(self, r2):
        """Return (u(r), (1/r) du/dr) for squared distances r2; zero beyond ``rcut2·r0``."""
        r1c, r2c = self.rcut1 * self.r0, self.rcut2 * self.r0
        inside = r2 < r2c**2
        d = torch.sqrt(torch.clamp(r2, max=r2c**2))
        expf = torch.exp(self.rho0 * (1.0 - d / self.r0))
        e = self.epsilon * expf * (expf - 2.0)
        de = (-2.0 * self.epsilon * self.rho0 / self.r0) * expf * (expf - 1.0)
        s = 1.0 - (d - r1c) / (r2c - r1c)
        mid = ((s > 0) & (s < 1)).to(d.dtype)
        fc = (s >= 1).to(d.dtype) + mid * (6 * s**5 - 15 * s**4 + 10 * s**3)
        dfc = -mid * (30 * s**4 - 60 * s**3 + 30 * s**2) / (r2c - r1c)
        u = e * fc
        du_r = (de * fc + e * dfc) / d
        zero = torch.zeros_like(u)
        return torch.where(inside, u, zero), torch.where(inside, du_r, zero)

    def calculator(self):
        """Return ASE's ``MorsePotential`` calculator with the same parameters."""
        from ase.calculators.morse import MorsePotential

        return MorsePotential(epsilon=self.epsilon, rho0=self.rho0, r0=self.r0,
                              rcut1=self.rcut1, rcut2=self.rcut2)

    def params(self) -> dict[str, Any]:
        """Return the parameters that identify this potential (checkpoints, run.json)."""
        return {"epsilon": self.epsilon, "rho0": self.rho0, "r0": self.r0,
                "rcut1": self.rcut1, "rcut2": self.rcut2}


def _native_lj(positions: torch.Tensor, nbr: torch.Tensor, offs: torch.Tensor):
    """Return the ctypes function of ``pair_lj.c`` for these tensors, or None (use torch)."""
    dt = positions.dtype
    if (positions.device.type != "cpu" or dt not in (torch.float64, torch.float32)
            or offs.dtype != dt or nbr.dtype != torch.int32
            or (positions.requires_grad and torch.is_grad_enabled())
            or not (positions.is_contiguous() and nbr.is_contiguous() and offs.is_contiguous())):
        return None
    from common.md import native

    d, i64, p = ctypes.c_double, ctypes.c_int64, ctypes.c_void_p
    return native.function("pair_lj", "lj_f64" if dt == torch.float64 else "lj_f32",
                           (i64, i64, p, p, p, d, d, d, d, d, d, p, p, p, ctypes.c_int))
