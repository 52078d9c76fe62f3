"""Stochastic cell rescaling (SCR) barostats, batched over systems.

Isotropic: Bernetti & Bussi, "Pressure control using stochastic cell rescaling", J. Chem. Phys.
153, 114107 (2020). The log-volume ε = ln V follows the first-order (Itô) equation

    dε = -(β_T/τ_p) (P0 - P_int) dt + sqrt(2 kT β_T / (V τ_p)) dW,

positions are scaled by e^{dε/3} and velocities by e^{-dε/3}, and P_int includes the
instantaneous kinetic term (P_int = -tr σ/3 + Σ m v² / 3V). This samples the isothermal-isobaric
distribution ρ(V) ∝ e^{-β(P0 V + F(V))} exactly in the limit of small time steps, with no
oscillation of the volume (first order) and no extra dynamical variable. β_T is only a guess of
the compressibility: with τ_p it sets the relaxation time, not the sampled distribution. The
step is integrated as in the authors' reference code, by Euler-Maruyama in λ = sqrt(V), where
the noise is additive: dλ = -(β_T λ/2τ_p)(P0 - P_int - kT/2V) dt + sqrt(kT β_T dt/2τ_p) ξ. The
engine applies it once per step, in the middle of the BAOAB drift right after the thermostat
(B A O [cell] A), with the virial of the last force evaluation and the current velocities.

Anisotropic: the cell-shape extension of Del Tatto, Raiteri, Bernetti & Bussi, "Molecular
dynamics of solids at constant pressure and stress using anisotropic stochastic cell
rescaling", Appl. Sci. 12, 1139 (2022), under a hydrostatic target pressure. The cell is kept in
the rotation-free form h = h_t R (h_t lower triangular in ASE's row convention, R the system's
fixed orientation) and deformed as h_t -> h_t (1 + dL), dL lower triangular, with

    dL_kk = β_T/(3τ_p) (P_kk - P0 + n_k kT/V) dt + sqrt(2 kT β_T dt / (3 V τ_p)) ξ_kk,
    dL_ab = β_T/(3τ_p) P_ab dt + sqrt(2 kT β_T dt / (3 V τ_p)) ξ_ab   (a > b),

P the pressure tensor in the triangular frame, positions x -> x (1 + dL) and velocities
v -> v (1 + dL)^{-T} (phase-space volume preserved). The n_k kT/V terms, n = (3, 1, -1), are the
Itô drift that makes the stationary distribution the fully flexible NPT ensemble of Martyna,
Tobias & Klein (J. Chem. Phys. 101, 4177 (1994)), whose volume marginal is the isotropic one,
once the rotations are factored out (Jacobian a_x² b_y of h = h_t R); derived by the
Fokker-Planck condition for this parametrisation. "orthorhombic" keeps only the three diagonal
terms (n = (1, 1, 1)): the cell axes change length independently, the angles of a rectangular
cell stay 90°: its stationary distribution is p ∝ V^N e^{-β(P0 V + U)} da db dc. A flexible
cell needs a restoring force against shear: use it for solids, and the isotropic barostat for
liquids and gases. Both targets are tested exactly (tests/common/test_md_npt.py): ideal-gas
cells held by springs on the entries of h_t sample the diagonal means (which differ between
a, b and c through the a² b Jacobian) and the off-diagonal variances of the quadrature.
"""

from __future__ import annotations

import numpy as np
import torch
from ase import units as _u

from common.md.noise import NoiseStreams
from common.md.state import BatchState, cell_det, cell_inv
from common.units import KB_EV_PER_K

#: one bar in eV/Å^3
BAR_EV_PER_A3: float = float(_u.bar)
BAROSTATS = ("isotropic", "orthorhombic", "anisotropic")
#: a system under negative target pressure whose volume grows past this factor has cavitated
MAX_EXPANSION_UNDER_TENSION = 4.0
#: a flexible cell whose deformation since the start exceeds this ratio of principal stretches
#: has no shear stiffness (a liquid or gas under an anisotropic barostat)
MAX_SHAPE_CHANGE = 2.0
_JACOBIAN = {"anisotropic": (3.0, 1.0, -1.0), "orthorhombic": (1.0, 1.0, 1.0)}
_LOWER = ((0, 1, 2, 1, 2, 2), (0, 1, 2, 0, 0, 1))  # noise slots -> (row, column) of dL


def pressure_tensor(state: BatchState, stress: torch.Tensor) -> torch.Tensor:
    """Return the instantaneous pressure tensor, eV/Å^3, (n_systems, 3, 3).

    It is -stress (ASE sign: stress positive in tension) plus the kinetic term Σ m v (x) v / V.
    """
    vol = cell_det(state.cells).abs().clamp(min=1e-30)
    return -stress + state.kinetic_tensor() / vol[:, None, None]


def pressure(state: BatchState, stress: torch.Tensor | None) -> torch.Tensor:
    """Return the instantaneous pressure per system, eV/Å^3 (virial + kinetic).

    It is NaN for a system that is not periodic along all three axes, or when there is no stress.
    """
    nan = torch.full((state.n_systems,), float("nan"), dtype=state.dtype, device=state.device)
    if stress is None:
        return nan
    p = torch.diagonal(pressure_tensor(state, stress), dim1=-2, dim2=-1).sum(-1) / 3.0
    ok = state.pbc.all(-1) & torch.isfinite(state.volumes())
    return torch.where(ok, p, nan)


def barostat_seeds(seeds: list[int]) -> list[int]:
    """Derive the seeds of the barostat's streams from the systems' seeds.

    The streams are independent of the Langevin and Maxwell-Boltzmann streams drawn from the same
    seeds.
    """
    return [int(np.random.SeedSequence([int(s), 0xBA205CA1]).generate_state(1, np.uint64)[0])
            for s in seeds]


class StochasticCellRescaling:
    """One SCR step per MD step for every system of a batch (see the module docstring).

    Parameters
    ----------
    mode : "isotropic", "orthorhombic" or "anisotropic"
    pressure : target pressure per system, (n_systems,), eV/Å^3
    temperature_K : bath temperature per system, (n_systems,), K
    compressibility : β_T, Å^3/eV (with ``tau`` it sets the relaxation rate only)
    tau : relaxation time τ_p, ASE time units
    dt : time step, ASE time units
    seeds : one integer per system (the barostat's own streams are derived from them)
    """

    def __init__(self, mode: str, pressure: torch.Tensor, temperature_K: torch.Tensor,
                 compressibility: float, tau: float, dt: float, seeds: list[int], *,
                 block_steps: int = 64):
        if mode not in BAROSTATS:
            raise ValueError(f"unknown barostat {mode!r}")
        self.mode, self.pressure, self.temperature_K = mode, pressure, temperature_K
        self.beta, self.tau, self.dt = float(compressibility), float(tau), float(dt)
        n = len(seeds)
        self.noise = NoiseStreams(barostat_seeds(seeds), [2] * n, block_steps=block_steps,
                                  device=pressure.device, dtype=pressure.dtype)

    def step(self, state: BatchState, stress: torch.Tensor, active: torch.Tensor) -> None:
        """Rescale cells, positions and velocities in place.

        ``stress`` (n_systems, 3, 3), eV/Å^3, is the virial stress at the current positions;
        inactive systems stay put.
        """
        xi = self.noise.next().reshape(state.n_systems, 6)
        if self.mode == "isotropic":
            self._isotropic(state, stress, active, xi[:, 0])
        else:
            self._anisotropic(state, stress, active, xi)

    def _isotropic(self, state, stress, active, xi) -> None:
        vol = cell_det(state.cells).abs()
        kT = KB_EV_PER_K * self.temperature_K
        p_int = torch.diagonal(pressure_tensor(state, stress), dim1=-2, dim2=-1).sum(-1) / 3.0
        # Euler-Maruyama in λ = sqrt(V), where the noise is additive (Bernetti & Bussi's
        # integrator): dλ = -(β_T λ / 2τ_p)(P0 - P_int - kT/2V) dt + sqrt(kT β_T dt / 2τ_p) ξ
        lam = torch.sqrt(vol)
        rate = self.beta / self.tau
        dlam = -0.5 * rate * lam * (self.pressure - p_int - 0.5 * kT / vol) * self.dt \
            + torch.sqrt(0.5 * kT * rate * self.dt) * xi
        deps = 2.0 * torch.log1p(torch.clamp(dlam / lam, min=-0.5))
        mu = torch.exp(torch.where(active, deps, torch.zeros_like(deps)) / 3.0)
        state.cells.mul_(mu[:, None, None])
        state.positions.mul_(mu[state.system_idx].unsqueeze(-1))
        state.velocities.div_(mu[state.system_idx].unsqueeze(-1))

    def _anisotropic(self, state, stress, active, xi) -> None:
        rot = _orientation(state.cells)  # h = h_t R
        p_t = rot @ pressure_tensor(state, stress) @ rot.transpose(-1, -2)
        vol = cell_det(state.cells).abs()
        kT = KB_EV_PER_K * self.temperature_K
        rate = self.beta / (3.0 * self.tau)
        eye = torch.eye(3, dtype=state.dtype, device=state.device)
        jac = torch.diag(torch.tensor(_JACOBIAN[self.mode], dtype=state.dtype,
                                      device=state.device))
        drift = torch.tril(p_t) - self.pressure[:, None, None] * eye \
            + (kT / vol)[:, None, None] * jac
        noise = torch.zeros_like(p_t)
        noise[:, _LOWER[0], _LOWER[1]] = xi
        dl = rate * self.dt * drift + torch.sqrt(2.0 * kT * rate * self.dt / vol
                                                 )[:, None, None] * noise
        dl = dl * eye if self.mode == "orthorhombic" else torch.tril(dl)
        g = torch.where(active[:, None, None], eye + rot.transpose(-1, -2) @ dl @ rot,
                        eye)  # lab frame: h -> h g
        g_inv_t = cell_inv(g).transpose(-1, -2)
        sys = state.system_idx
        state.cells.copy_(state.cells @ g)
        state.positions.copy_(torch.einsum("na,nab->nb", state.positions, g[sys]))
        state.velocities.copy_(torch.einsum("na,nab->nb", state.velocities, g_inv_t[sys]))

    def state_dict(self) -> dict:
        """Return the barostat's state for a checkpoint (its mode and noise streams)."""
        return {"mode": self.mode, "noise": self.noise.state_dict()}

    def load_state_dict(self, d: dict) -> None:
        """Restore the noise streams saved by :meth:`state_dict`."""
        self.noise.load_state_dict(d["noise"])


def _orientation(cells: torch.Tensor) -> torch.Tensor:
    """Return the orthogonal R, (n, 3, 3), with cells = h_t R.

    Here h_t is lower triangular with a positive diagonal; R comes from the QR decomposition of
    the cells' transpose.
    """
    q, r = torch.linalg.qr(cells.transpose(-1, -2))
    sign = torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))
    sign = torch.where(sign == 0, torch.ones_like(sign), sign)
    return (q * sign[:, None, :]).transpose(-1, -2)
