"""Shared helpers of the atmospheric tests: a small analytic pair model for QCT.

``PairModel`` sums, over the element pairs it is given, one of

* ``("c6", C6)``: ``-C6 / r^6`` (eV Å^6), continued linearly below ``r_core`` (so a capture
  criterion well outside ``r_core`` sees the exact ``-C6/r^6``), shifted to zero at the cutoff;
* ``("morse", D, a, r0)``: ``D [(1 - exp(-a (r - r0)))^2 - 1]`` (eV, 1/Å, Å), shifted to zero
  at the cutoff;
* ``("harmonic", k, r0)``: ``k/2 (r - r0)^2`` (eV/Å^2, Å) within the cutoff.

Pairs not listed do not interact. It runs on the engine's dense neighbour matrix.
"""

from __future__ import annotations

import math

import pytest
import torch
from ase.data import atomic_numbers

from common.potential.protocol import BatchedPotential


def _terms(kind: str, p: tuple, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(u, du/dr) of one pair form at distances r."""
    if kind == "c6":
        c6, r_core = p
        rr = r.clamp(min=r_core)
        u, du = -c6 / rr**6, 6 * c6 / rr**7
        return u + du * (r - rr), du  # linear continuation below r_core
    if kind == "morse":
        d, a, r0 = p
        e = torch.exp(-a * (r - r0))
        return d * ((1 - e) ** 2 - 1), 2 * d * a * e * (1 - e)
    if kind == "harmonic":
        k, r0 = p
        return 0.5 * k * (r - r0) ** 2, k * (r - r0)
    raise ValueError(kind)


class PairModel(BatchedPotential):
    """Element-pair analytic potential for QCT tests (see the module docstring).

    Parameters
    ----------
    pairs
        ``{("Ar", "Kr"): ("c6", C6, r_core), ...}``
    cutoff
        Interaction cutoff, Å (every form is zero beyond it).
    """

    def __init__(self, pairs: dict, cutoff: float):
        super().__init__()
        self.cutoff = float(cutoff)
        self.forms = []
        self.table = torch.full((119, 119), -1, dtype=torch.long)  # Z x Z -> form index
        for k, ((x, y), (kind, *p)) in enumerate(pairs.items()):
            zx, zy = atomic_numbers[x], atomic_numbers[y]
            p = tuple(float(v) for v in p)
            shift = 0.0 if kind == "harmonic" else float(
                _terms(kind, p, torch.tensor([self.cutoff], dtype=torch.float64))[0])
            self.forms.append((kind, p, shift))
            self.table[zx, zy] = self.table[zy, zx] = k

    def forward(self, state, neighbors, compute_stress=False):
        nbr, offs = neighbors.dense(state)
        pos_t = state.positions.t()
        d = pos_t[:, nbr] - pos_t.unsqueeze(-1) + offs  # (3, n, K), x_j - x_i
        r = torch.sqrt((d * d).sum(0))
        kind_of = self.table.to(nbr.device)[state.numbers.unsqueeze(-1), state.numbers[nbr]]
        kind_of = torch.where(r < self.cutoff, kind_of, torch.full_like(kind_of, -1))
        u, du = torch.zeros_like(r), torch.zeros_like(r)
        for k, (kind, p, shift) in enumerate(self.forms):
            sel = kind_of == k
            uk, dk = _terms(kind, p, r[sel])
            u[sel], du[sel] = uk - shift, dk
        forces = (d * (du / r.clamp(min=1e-12))).sum(-1).t()
        energy = torch.zeros(state.n_systems, dtype=r.dtype, device=r.device
                             ).index_add_(0, state.system_idx, 0.5 * u.sum(-1))
        return {"energy": energy, "forces": forces}

    def params(self) -> dict:
        return {"forms": repr(self.forms), "cutoff": self.cutoff}


@pytest.fixture
def pair_model():
    """The :class:`PairModel` class."""
    return PairModel


def capture_rate_c6(c6_eV_A6: float, temperature_K: float, mean_speed_m_per_s: float
                    ) -> float:
    """Exact thermal capture rate for -C6/r^6, cm^3 molecule^-1 s^-1 (see the QCT test)."""
    from ase import units

    kt = units.kB * temperature_K
    sigma_A2 = math.gamma(2 / 3) * math.pi * (2 * c6_eV_A6 / kt) ** (1 / 3)
    return mean_speed_m_per_s * 100.0 * sigma_A2 * 1e-16


@pytest.fixture
def c6_capture_rate():
    """:func:`capture_rate_c6`."""
    return capture_rate_c6
