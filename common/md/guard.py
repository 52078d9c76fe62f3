"""The blow-up guard: stop a simulation the moment it becomes unphysical."""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import torch

from common.md.state import BatchState


@dataclass
class BlowUpGuard:
    """Limits checked after every force evaluation.

    max_force_eV_A : largest allowed |F| on any atom
    max_temperature_K : largest allowed kinetic temperature of any system
    """

    max_force_eV_A: float = 100.0
    max_temperature_K: float = 10000.0

    def _temperature_K(self, state: BatchState, dof_only: bool = False) -> torch.Tensor | None:
        """Kinetic temperature per system, with the degrees of freedom cached per state.

        ``dof_only``: only bring the cache (kB x dof and its inverse) up to date.
        """
        from common.units import KB_EV_PER_K

        key = (id(state.fixed), state.fixed._version, id(state.system_idx),
               state.system_idx._version, state.n_systems, state.dtype)
        if getattr(self, "_dof_key", None) != key:
            self._dof = state.degrees_of_freedom().clamp(min=1.0) * KB_EV_PER_K
            self._inv_dof = (1.0 / self._dof).contiguous()
            self._dof_key = key
        if dof_only:
            return None
        return 2.0 * state.kinetic_energy() / self._dof

    def _native_fine(self, state: BatchState, forces: torch.Tensor,
                     energy: torch.Tensor) -> bool | None:
        """Run the fast path in C (``guard.c``): True if all is fine, None if it cannot run."""
        dt = state.dtype
        tensors = (state.positions, state.velocities, forces, state.masses, energy)
        if (state.device.type != "cpu" or dt not in (torch.float64, torch.float32)
                or any(t.dtype != dt or not t.is_contiguous() for t in tensors)
                or forces.shape != state.positions.shape):
            return None
        from common.md import native

        p, i64, d = ctypes.c_void_p, ctypes.c_int64, ctypes.c_double
        fn = native.function("guard", "guard_fine_f64" if dt == torch.float64 else
                             "guard_fine_f32", (i64, i64, p, p, p, p, p, p, p, d, d, p),
                             ctypes.c_int)
        if fn is None:
            return None
        self._temperature_K(state, dof_only=True)  # the cached 1 / (kB dof) per system
        n_sys = state.n_systems
        scratch = torch.empty(n_sys, dtype=torch.float64)  # per call: a guard may be shared
        sys_idx = state.system_idx
        if sys_idx.dtype != torch.int64 or not sys_idx.is_contiguous():
            return None
        return bool(fn(state.n_atoms, n_sys, state.positions.data_ptr(),
                       state.velocities.data_ptr(), forces.data_ptr(), state.masses.data_ptr(),
                       sys_idx.data_ptr(), self._inv_dof.data_ptr(), energy.data_ptr(),
                       self.max_force_eV_A, self.max_temperature_K, scratch.data_ptr()))

    def check(self, state: BatchState, forces: torch.Tensor, energy: torch.Tensor,
              active: torch.Tensor | None = None) -> tuple[int, str] | None:
        """Return None if all is well, else (system index in the batch, what went wrong).

        In the message, an atom is named by its index within its own structure. Systems that are
        no longer ``active`` (stopped or already failed) are not checked.
        """
        forces, energy = forces.detach(), energy.detach()
        # fast path: every value finite and within its limit (NaN fails every comparison, so
        # it takes the detailed path below); one C pass on a CPU, else one synchronisation
        fine = self._native_fine(state, forces, energy)
        if fine is None:
            temp = self._temperature_K(state)
            fine = bool((forces.abs().max() <= self.max_force_eV_A)
                        & torch.isfinite(state.positions.sum()) & torch.isfinite(energy.sum())
                        & (temp.max() <= self.max_temperature_K))
        if fine:
            return None
        temp = self._temperature_K(state)
        fmax = forces.abs().amax(-1)
        bad_atom = ~torch.isfinite(fmax) | (fmax > self.max_force_eV_A) \
            | ~torch.isfinite(state.positions).all(-1)
        bad_sys_e = ~torch.isfinite(energy)
        bad_sys_t = ~torch.isfinite(temp) | (temp > self.max_temperature_K)
        if active is not None:
            bad_atom &= active[state.system_idx]
            bad_sys_e &= active
            bad_sys_t &= active
        if not (bool(bad_atom.any()) or bool(bad_sys_e.any()) or bool(bad_sys_t.any())):
            return None
        if bool(bad_atom.any()):
            a = int(torch.nonzero(bad_atom)[0])
            s = int(state.system_idx[a])
            local = a - int(state.offsets()[s])  # the atom's index within its own structure
            f = float(fmax[a])
            what = (f"non-finite force or position on atom {local}"
                    if not torch.isfinite(fmax[a]) or not torch.isfinite(state.positions[a]).all()
                    else f"|F| = {f:.3g} eV/Å on atom {local} exceeds {self.max_force_eV_A:g}")
            return s, what
        if bool(bad_sys_e.any()):
            return int(torch.nonzero(bad_sys_e)[0]), "non-finite energy"
        s = int(torch.nonzero(bad_sys_t)[0])
        return s, f"temperature {float(temp[s]):.4g} K exceeds {self.max_temperature_K:g} K"
