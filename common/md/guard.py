"""The blow-up guard: stop a simulation the moment it becomes unphysical."""

from __future__ import annotations

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

    def _temperature_K(self, state: BatchState) -> torch.Tensor:
        """Kinetic temperature per system, with the degrees of freedom cached per state."""
        from common.units import KB_EV_PER_K

        key = (id(state.fixed), state.fixed._version, id(state.system_idx),
               state.system_idx._version, state.n_systems)
        if getattr(self, "_dof_key", None) != key:
            self._dof = state.degrees_of_freedom().clamp(min=1.0) * KB_EV_PER_K
            self._dof_key = key
        return 2.0 * state.kinetic_energy() / self._dof

    def check(self, state: BatchState, forces: torch.Tensor, energy: torch.Tensor,
              active: torch.Tensor | None = None) -> tuple[int, str] | None:
        """Return None if all is well, else (system index in the batch, what went wrong).

        In the message, an atom is named by its index within its own structure. Systems that are
        no longer ``active`` (stopped or already failed) are not checked.
        """
        forces, energy = forces.detach(), energy.detach()
        temp = self._temperature_K(state)
        # fast path, one synchronisation: every value finite and within its limit (NaN fails
        # every comparison, so it takes the detailed path below)
        fine = ((forces.abs().max() <= self.max_force_eV_A)
                & torch.isfinite(state.positions.sum()) & torch.isfinite(energy.sum())
                & (temp.max() <= self.max_temperature_K))
        if bool(fine):
            return None
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
