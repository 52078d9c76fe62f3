"""Physics of the batched MD engine: NVE energy conservation, Langevin (BAOAB) sampling of the
canonical kinetic temperature, and free-particle Langevin diffusion.

Every tolerance is derived from the statistics or from the integrator's known error, in a
comment next to it. Runs are seeded, so the tests are deterministic; the tolerances say how far
a *correct* engine could be from the exact answer (4 standard errors: a false alarm rate of
~6e-5 per check for a fresh seed), while the bugs these tests guard against (wrong units,
wrong half-kick, noise scaled by the wrong temperature or system, wrong friction
conversion...) are off by factors, not by percent.
"""

from __future__ import annotations

import numpy as np
import torch
from ase.build import bulk

from common.md.engine import MDEngine
from common.md.neighbors import NeighborList
from common.md.reporters import Reporter
from common.md.state import BatchState
from common.potential.pair import LennardJones
from common.potential.protocol import BatchedPotential
from common.units import KB_EV_PER_K, fs_to_ase

torch.set_num_threads(1)

AR_LJ = dict(epsilon=0.0104, sigma=3.40)  # eV, Å


class Recorder(Reporter):
    """Keeps what the engine reports, in memory."""

    def __init__(self, every: int = 1, keep_arrays: bool = False):
        self.every = every
        self.keep = keep_arrays
        self.steps, self.etot, self.temp = [], [], []
        self.x, self.v, self.f = [], [], []

    def report(self, step, time_fs, state, out):
        self.steps.append(step)
        self.etot.append((out["energy"] + state.kinetic_energy()).tolist())
        self.temp.append(state.temperature_K().tolist())
        if self.keep:
            self.x.append(state.positions.clone())
            self.v.append(state.velocities.clone())
            self.f.append(out["forces"].clone())


def argon_fcc_32():
    return bulk("Ar", "fcc", a=5.26, cubic=True).repeat((2, 2, 2))


def velocities_at(masses: np.ndarray, temperature_K: float, seed: int) -> np.ndarray:
    """Maxwell-Boltzmann velocities, centre of mass removed, rescaled to exactly T."""
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(len(masses), 3)) * np.sqrt(KB_EV_PER_K * temperature_K / masses)[:, None]
    v -= (masses[:, None] * v).sum(0) / masses.sum()
    t_now = (masses[:, None] * v**2).sum() / (3 * len(masses) * KB_EV_PER_K)
    return v * np.sqrt(temperature_K / t_now)


# ------------------------------------------------------------------------------------------
# NVE
# ------------------------------------------------------------------------------------------
def _hessian_vector_terms(pot, state, X, V, F, n_sys):
    """Per frame and system: v^T U'' v (by central differences of the forces along v) and
    F^T M^-1 F, evaluated in one batched call over all frames."""
    T, N = X.shape[0], X.shape[1]
    vnorm = V.norm(dim=(1, 2), keepdim=True)
    u = V / vnorm
    eps = 1e-3  # Å along a unit 3N-vector: FD error eps^2 U''''/6 ~ 1e-6 relative
    xp = torch.cat([X + eps * u, X - eps * u]).reshape(-1, 3)
    reps = 2 * T
    big = BatchState(
        positions=xp, velocities=torch.zeros_like(xp), masses=state.masses.repeat(reps),
        numbers=state.numbers.repeat(reps), cells=state.cells.repeat(reps, 1, 1),
        pbc=state.pbc.repeat(reps, 1),
        system_idx=state.system_idx.repeat(reps)
        + n_sys * torch.arange(reps).repeat_interleave(N),
        fixed=state.fixed.repeat(reps))
    nl = NeighborList(pot.cutoff, skin=0.0)
    nl.update(big)
    with torch.no_grad():
        fb = pot(big, nl)["forces"].reshape(reps, N, 3)
    hv = -(fb[:T] - fb[T:]) / (2 * eps) * vnorm  # U'' v
    m = state.masses[:, None]
    idx = state.system_idx
    vhv = torch.zeros(T, n_sys, dtype=X.dtype).index_add_(1, idx, (V * hv).sum(-1))
    fmf = torch.zeros(T, n_sys, dtype=X.dtype).index_add_(1, idx, (F**2 / m).sum(-1))
    return vhv.numpy(), fmf.numpy()


def _nve_run(dt_fs: float, duration_fs: float, keep: bool):
    pot = LennardJones(**AR_LJ, rc=8.5, smooth=True)  # C1 cutoff: forces continuous
    frames = []
    for r in range(2):
        at = argon_fcc_32()
        # lattice + velocities at 80 K: equipartition brings the kinetic temperature to ~40 K
        at.set_velocities(velocities_at(at.get_masses(), 80.0, seed=r))
        frames.append(at)
    state = BatchState.from_atoms(frames)
    rec = Recorder(keep_arrays=keep)
    eng = MDEngine(pot, state, ensemble="nve", timestep_fs=dt_fs, skin=1.0, reporters=[rec])
    eng.run(int(round(duration_fs / dt_fs)))
    return pot, state, rec


def test_nve_energy_conservation_lj_argon():
    """32-atom LJ argon fcc, ~40 K, velocity Verlet at 4 fs and 2 fs over 3 ps.

    Velocity Verlet is symplectic: it exactly conserves (up to O(h^4)) the shadow Hamiltonian
        H~ = H + h^2 [ (1/12) v^T U'' v - (1/24) F^T M^-1 F ]
    (Hairer, Lubich & Wanner, Geometric Numerical Integration, IX). Hence:
    (a) the fluctuation of H is the fluctuation of that h^2 term (checked to 10 %: their
        difference is O(h^4), relatively (h w_max)^2 ~ (4 fs * 0.013 /fs)^2 ~ 3e-3);
    (b) H~ itself is constant to <= 2 % of std(H) (O(h^4) again, plus the finite-difference
        Hessian, 1e-6; the C1 cutoff adds a small non-smooth part, measured ~1e-3);
    (c) halving h divides std(H) by 4 (to +-5 %: relative O(h^2) corrections ~3e-3, and the
        two runs start identically and barely diverge over 3 ps);
    (d) no drift: the OLS slope of H(t) times the run length is within 4 standard errors of
        zero. For a stationary signal of std s and integrated correlation time tau over a
        run of length L, SE(slope * L) = s sqrt(12 tau / L); tau <~ 1 / w_min ~ 100 fs
        (slowest phonon of the 2x2x2 cell), L = 3000 fs -> SE <= 0.63 s, bound 2.5 s.
        A non-symplectic error (e.g. forces from the wrong positions) drifts by >> s.
    """
    pot, state, rec = _nve_run(4.0, 3000.0, keep=True)
    e = np.array(rec.etot)  # (T, 2)
    t = np.array(rec.steps) * 4.0
    temps = np.array(rec.temp)
    assert 30.0 < temps[len(temps) // 2:].mean() < 50.0  # really ~40 K

    raw_std = e.std(0)
    # (a), (b): shadow Hamiltonian on every 10th frame
    sub = slice(None, None, 10)
    X, V, F = (torch.stack(a)[sub] for a in (rec.x, rec.v, rec.f))
    vhv, fmf = _hessian_vector_terms(pot, state, X, V, F, state.n_systems)
    h = fs_to_ase(4.0)
    corr = h * h * (vhv / 12.0 - fmf / 24.0)
    e_sub = e[sub]
    np.testing.assert_allclose((-corr).std(0), e_sub.std(0), rtol=0.10)
    shadow = e_sub + corr
    assert np.all(shadow.std(0) < 0.02 * e_sub.std(0)), (shadow.std(0), e_sub.std(0))

    # (d) drift
    for k in range(2):
        slope = np.polyfit(t, e[:, k], 1)[0]
        assert abs(slope * np.ptp(t)) < 2.5 * raw_std[k]
    # absolute scale, per atom: ~3e-7 eV at 4 fs (a sanity bound 10x above)
    assert np.all(raw_std / 32 < 3e-6)

    # (c) dt^2 scaling
    _, _, rec2 = _nve_run(2.0, 3000.0, keep=False)
    ratio = raw_std / np.array(rec2.etot).std(0)
    np.testing.assert_allclose(ratio, 4.0, rtol=0.05)


# ------------------------------------------------------------------------------------------
# Langevin BAOAB: canonical kinetic temperature
# ------------------------------------------------------------------------------------------
def test_langevin_kinetic_temperature_per_system_targets():
    """3 target temperatures x 3 replicas of 32-atom LJ argon in ONE batch, gamma = 10/ps,
    dt = 5 fs, 10 ps (first 1 ps = 10/gamma discarded as equilibration).

    Canonical ensemble: T_kin = 2 KE / (N_dof k) with N_dof = 3N = 96 (Langevin acts on every
    atom, the centre of mass is thermalised too) has mean T and variance 2 T^2 / N_dof.
    Samples are correlated: in a (nearly) harmonic solid half of var(KE) is var(E)/4, which
    relaxes at rate gamma; the other half oscillates at 2w and integrates to ~0, so the
    integrated autocorrelation time is tau = 1 / (2 gamma) = 50 fs = 10 steps, and
        SE(mean) = T sqrt(2/N_dof) sqrt(2 tau / n)          (n samples per target)
                 = T * 0.144 * sqrt(20 / 5400) = 0.88 % of T;  tolerance 4 SE = 3.5 %.
    The fluctuation: for correlated Gaussian samples var(s^2) = (2 s^4 / n) 2 tau_2 with
    tau_2 = 1/2 + sum rho_k^2 <= tau, so SE(s)/s <= sqrt(tau / n); pooled over all 9 systems
    (T_kin / T_target), n = 16200 -> 2.5 %; tolerance 4 SE = 10 %.
    BAOAB's own bias of <T_kin> is O((h w)^2 / 4) ~ 1e-3 (Leimkuhler & Matthews 2013),
    negligible here.
    """
    targets = np.repeat([15.0, 40.0, 70.0], 3)
    n_dof = 96
    frames = []
    for k, tt in enumerate(targets):
        at = argon_fcc_32()
        at.set_velocities(velocities_at(at.get_masses(), tt, seed=100 + k))
        frames.append(at)
    state = BatchState.from_atoms(frames)
    rec = Recorder()
    gamma_per_ps, dt = 10.0, 5.0
    eng = MDEngine(LennardJones(**AR_LJ, rc=7.0), state, ensemble="nvt", timestep_fs=dt,
                   temperature_K=targets, friction_per_ps=gamma_per_ps,
                   seeds=range(100, 109), skin=1.0, reporters=[rec])
    eng.run(2000)
    temps = np.array(rec.temp)[201:]  # after 1 ps
    tau_steps = 1.0 / (2 * gamma_per_ps) * 1000.0 / dt
    for g, tt in enumerate([15.0, 40.0, 70.0]):
        x = temps[:, 3 * g:3 * g + 3]
        se = tt * np.sqrt(2.0 / n_dof) * np.sqrt(2 * tau_steps / x.size)
        assert abs(x.mean() - tt) < 4 * se, (tt, x.mean(), se)
    rel = temps / targets
    s = rel.std(0, ddof=1)
    pooled = np.sqrt((s**2).mean())
    expected = np.sqrt(2.0 / n_dof)
    se_rel = np.sqrt(tau_steps / rel.size)
    assert abs(pooled / expected - 1.0) < 4 * se_rel, (pooled, expected)


# ------------------------------------------------------------------------------------------
# Free particles: Langevin diffusion
# ------------------------------------------------------------------------------------------
class ZeroPotential(BatchedPotential):
    """No interaction at all (cutoff 0.1 Å)."""

    cutoff = 0.1

    def forward(self, state, neighbors, compute_stress=False):
        return {"energy": torch.zeros(state.n_systems, dtype=state.dtype),
                "forces": torch.zeros_like(state.positions)}


def test_free_particle_diffusion_and_velocity_autocorrelation():
    """4 systems x 500 non-interacting argon atoms (non-periodic), 300 K, gamma = 10/ps,
    dt = 5 fs, 5 ps.

    Velocities are an Ornstein-Uhlenbeck process: <v(0).v(t)> = (3kT/m) exp(-gamma t) (BAOAB
    with zero force does v <- c v + sqrt(1-c^2) sigma xi with c = exp(-gamma dt): exact at
    the sampled times), and
        MSD(t) = 6 D [t - (1 - exp(-gamma t)) / gamma],   D = kT / (m gamma).
    (BAOAB's discrete positions give D (1 + (gamma dt)^2 / 12 + ...), 2e-4 relative: nil.)
    Statistics, n = 3 x 2000 independent Cartesian components:
      * MSD: each squared Gaussian displacement has relative variance 2, so
        SE(MSD)/MSD = sqrt(2/n) = 1.8 %; tolerance 4 SE = 7.3 % at each checked time;
      * VACF by the ratio estimator sum v0.vt / sum v0.v0 = rho + sqrt(1-rho^2) xi/sqrt(n):
        SE = sqrt(1 - rho^2) / sqrt(n) (~1.2 % absolute); tolerance 4 SE.
    A friction or unit error (1/ps vs 1/fs or 1/ASE time) changes D by 10^3 or ~10x.
    """
    n_sys, n_per = 4, 500
    gamma_per_ps, dt, temp = 10.0, 5.0, 300.0
    grid = np.stack(np.meshgrid(*[np.arange(8)] * 3, indexing="ij"), -1).reshape(-1, 3)[:n_per]
    from ase import Atoms

    frames = []
    for k in range(n_sys):
        at = Atoms(f"Ar{n_per}", positions=grid * 6.0, pbc=False)
        rng = np.random.default_rng(7 + k)
        m = at.get_masses()
        at.set_velocities(rng.normal(size=(n_per, 3)) * np.sqrt(KB_EV_PER_K * temp / m)[:, None])
        frames.append(at)
    state = BatchState.from_atoms(frames)
    x0 = state.positions.clone().numpy()
    v0 = state.velocities.clone().numpy()
    eng = MDEngine(ZeroPotential(), state, ensemble="nvt", timestep_fs=dt, temperature_K=temp,
                   friction_per_ps=gamma_per_ps, seeds=[11, 12, 13, 14], skin=3.0)
    n = 3 * n_sys * n_per
    m = state.masses[0].item()
    gamma = gamma_per_ps / 1000.0  # 1/fs
    kt_over_m = KB_EV_PER_K * temp / m  # (Å / ASE time)^2
    D = kt_over_m / (gamma / fs_to_ase(1.0))  # Å^2 / ASE time
    done, msds = 0, {}
    for t_fs in (50.0, 100.0, 200.0, 1000.0, 5000.0):  # 0.5/gamma ... 50/gamma
        steps = int(round(t_fs / dt)) - done
        eng.run(steps)
        done += steps
        t = fs_to_ase(t_fs)
        g = gamma / fs_to_ase(1.0)
        msd = ((state.positions.numpy() - x0) ** 2).sum(-1).mean()
        msd_th = 6 * D * (t - (1 - np.exp(-g * t)) / g)
        msds[t_fs] = msd
        assert abs(msd / msd_th - 1) < 4 * np.sqrt(2.0 / n), (t_fs, msd, msd_th)
        if t_fs <= 200.0:
            v = state.velocities.numpy()
            rho = (v0 * v).sum() / (v0 * v0).sum()
            rho_th = np.exp(-gamma * t_fs)
            assert abs(rho - rho_th) < 4 * np.sqrt((1 - rho_th**2) / n), (t_fs, rho, rho_th)
    # D from the MSD slope between 1 ps and 5 ps (10/gamma and 50/gamma: the exponential is
    # e^-10, gone), in Å^2/ps, against kT/(m gamma) with gamma in 1/ps as the user gives it.
    # Per component the increment is d_b^2 + 2 d_a d_b (d_a: displacement up to 1 ps, var
    # s_a^2 = 2D*0.9 ps; d_b: from 1 to 5 ps, s_b^2 = 2D*4 ps), relative variance
    # 2 + 4 s_a^2/s_b^2 = 2.9 -> SE = sqrt(2.9/n) = 2.2 %; tolerance 4 SE.
    slope = (msds[5000.0] - msds[1000.0]) / (6 * 4.0)  # Å^2/ps
    # kT/m is in (Å per ASE time)^2; one ps is fs_to_ase(1000) ASE time units
    d_expected = KB_EV_PER_K * temp / m * fs_to_ase(1000.0) ** 2 / gamma_per_ps
    assert abs(slope / d_expected - 1) < 4 * np.sqrt(2.9 / n), (slope, d_expected)
    # equipartition of the free particles at the end
    t_kin = state.temperature_K().numpy()
    assert np.all(np.abs(t_kin / temp - 1) < 4 * np.sqrt(2 / 1500))
