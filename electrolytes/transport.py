"""Transport from MD trajectories: unwrapping, MSD by FFT, D, conductivity, Arrhenius.

Framework-free: any trajectory with a cell (extxyz, ASE ``.traj``, LAMMPS dump, the HDF5 of
:mod:`common.md`) or a list of ASE ``Atoms``. Units: positions Å, times fs, D in cm²/s
(1 Å²/fs = 0.1 cm²/s), conductivity in S/cm, temperatures in K, charges in units of e.

Method
------
* **Unwrapping** (:func:`unwrap_positions`): each frame-to-frame displacement is brought to its
  minimum image in the frame's cell (fractional components rounded), then summed. This is the
  displacement-based scheme, exact for orthorhombic and triclinic cells as long as no atom
  moves more than half the narrowest cell width between saved frames, and correct under a
  changing (NPT) cell.
* **MSD** (:func:`msd_fft`): averaged over every time origin, by the FFT (Wiener-Khinchin)
  algorithm, O(T log T) per atom; :func:`msd_direct` is the O(T²) definition it is tested
  against.
* **D**: ordinary least squares of ``MSD(t) = 6 D t + b`` over a fit window given as fractions
  of the run's duration, by default ``(0.1, 0.5)``: from 10% of the run (past the ballistic and
  caging regime of a liquid sampled long enough) to 50% (beyond it fewer than half the time
  origins contribute and the MSD gets noisy). The intercept absorbs the short-time offset.
* **Error of D** (``d_error="atoms"``, default): the fitted slope is linear in the MSD, so the
  species' D is exactly the mean of the per-atom slopes D_i, and its standard error is
  ``std(D_i) / sqrt(N)`` -- the bootstrap over atoms in closed form; it assumes the atoms of a
  species move independently (true for self-diffusion up to O(1/N) momentum-conservation
  correlations). ``d_error="blocks"`` (and species of one atom) use the block error below.
* **Collective (Einstein-Helfand) conductivity**: the same fit on the MSD of the total charge
  displacement ``M(t) = sum_i q_i r_i(t)``; ``sigma_EH = e² slope / (6 V kB T)``. There is one
  M per trajectory, so its error comes from blocks: the run is cut into ``n_blocks`` contiguous
  pieces and the slope is fitted in each with the same *fractional* window. For a diffusive
  signal the relative variance of a windowed MSD slope depends only on the window's fraction
  of the run (Qian, Sheetz & Elson, Biophys. J. 60, 910 (1991)), so each block estimate
  scatters as much as the full-run one: the error is ``std(blocks, ddof=1)``, not divided by
  ``sqrt(n_blocks)`` (checked by repeating with seeds in tests/electrolytes). Expect it to be
  large (tens of %): the collective conductivity of one trajectory is a single-particle
  statistic.
* **Nernst-Einstein**: ``sigma_NE = e² / (V kB T) sum_i N_i q_i² D_i`` with the D errors added
  in quadrature; the Haven ratio is ``sigma_NE / sigma_EH``.
* **Arrhenius** (:func:`arrhenius_fit`): weighted least squares of ``ln D`` (or ``ln(sigma T)``)
  against ``1/T`` with weights from the errors; parameter errors are scaled by
  ``sqrt(chi²_red)`` when the scatter exceeds the errors (the Birge ratio), never shrunk.

kinisi (Bayesian regression over the MSD covariance) is the reference for doing this with
the full covariance; it is not a dependency here.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

from common.errors import ConfigError, DataError
from common.units import KB_EV_PER_K

__all__ = [
    "DEFAULT_BLOCKS",
    "DEFAULT_WINDOW",
    "ArrheniusFit",
    "Conductivity",
    "SpeciesDiffusion",
    "TransportRun",
    "analyse_transport",
    "arrhenius_fit",
    "fit_lags",
    "msd_direct",
    "msd_fft",
    "plot_arrhenius",
    "plot_msd",
    "transport_report",
    "uniform_timestep_fs",
    "unwrap_positions",
]

#: default fit window, fractions of the run's duration
DEFAULT_WINDOW: tuple[float, float] = (0.1, 0.5)
#: default number of contiguous blocks for block errors
DEFAULT_BLOCKS = 5
#: fewest lags the fit window must hold in each block
MIN_WINDOW_LAGS = 4
#: 1 Å²/fs in cm²/s
A2_PER_FS_IN_CM2_PER_S = 0.1
_E_C = 1.602176634e-19  # elementary charge, C
_KB_J_PER_K = 1.380649e-23  # Boltzmann constant, J/K
_FIX_CELL = "give a trajectory with its periodic box (extxyz Lattice=..., or set atoms.cell)"


# ---------------------------------------------------------------------------------------------
# unwrapping and MSD


def unwrap_positions(positions: np.ndarray, cells: np.ndarray,
                     pbc: bool | Sequence[bool] = True) -> np.ndarray:
    """Continuous positions from positions wrapped into the cell.

    Parameters
    ----------
    positions
        ``(T, N, 3)`` positions in Å, wrapped or not.
    cells
        ``(3, 3)`` or ``(T, 3, 3)`` cell vectors (rows) in Å; frame t's displacement is
        imaged in the cell of frame t.
    pbc
        Periodic directions (others are left as they are).

    Returns
    -------
    numpy.ndarray
        ``(T, N, 3)`` unwrapped positions (Å), equal to ``positions[0]`` in the first frame.
    """
    x = np.asarray(positions, dtype=float)
    n = len(x)
    cells = np.broadcast_to(np.asarray(cells, dtype=float), (n, 3, 3))
    per = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,))
    d = np.diff(x, axis=0)
    if per.any() and n > 1:
        frac = np.einsum("tnk,tkl->tnl", d, np.linalg.inv(cells[1:]))
        shift = np.where(per, np.round(frac), 0.0)
        d = d - np.einsum("tnk,tkl->tnl", shift, cells[1:])
    out = np.empty_like(x)
    out[0] = x[0]
    np.cumsum(d, axis=0, out=out[1:])
    out[1:] += x[0]
    return out


def msd_fft(x: np.ndarray, chunk_elements: int = 4_000_000) -> np.ndarray:
    """Mean squared displacement of each particle, over every time origin, by FFT.

    ``MSD(k) = 1/(T-k) sum_{t<T-k} |x(t+k) - x(t)|²`` = ``S1(k) - 2 S2(k)``, with ``S2`` the
    position autocorrelation (Wiener-Khinchin, zero-padded FFT) and ``S1`` a running sum.
    Each particle's mean position is subtracted first (the MSD does not change), so large
    absolute coordinates cost no precision in the difference ``S1 - 2 S2``.

    Parameters
    ----------
    x
        ``(T, N, 3)`` (or ``(T, 3)``) continuous positions (Å).
    chunk_elements
        Particles are processed in chunks of about this many ``T x 3`` elements (memory).

    Returns
    -------
    numpy.ndarray
        ``(T, N)`` (or ``(T,)``) MSD in Å² at lags ``0 .. T-1`` frames.
    """
    from scipy import fft

    x = np.asarray(x, dtype=float)
    single = x.ndim == 2
    x = x[:, None, :] if single else x
    n_t, n_p = x.shape[:2]
    n_fft = fft.next_fast_len(2 * n_t)
    norm = (n_t - np.arange(n_t))[:, None].astype(float)
    out = np.empty((n_t, n_p))
    step = max(1, chunk_elements // max(1, 3 * n_t))
    for p0 in range(0, n_p, step):
        xc = x[:, p0:p0 + step]
        xc = xc - xc.mean(axis=0)  # the MSD ignores a constant shift; this avoids cancellation
        f = fft.rfft(xc, n=n_fft, axis=0)
        s2 = fft.irfft(f * f.conj(), n=n_fft, axis=0)[:n_t].sum(axis=-1) / norm
        sq = np.einsum("tpk,tpk->tp", xc, xc)
        cs = np.concatenate([np.zeros((1, sq.shape[1])), np.cumsum(sq, axis=0)])
        k = np.arange(n_t)
        s1 = (2.0 * cs[n_t] - cs[k] - (cs[n_t] - cs[n_t - k])) / norm
        out[:, p0:p0 + step] = s1 - 2.0 * s2
    return out[:, 0] if single else out


def msd_direct(x: np.ndarray, lags: Sequence[int] | None = None) -> np.ndarray:
    """Compute the MSD by its O(T²) definition, as :func:`msd_fft` does by FFT.

    It is the reference and benchmark baseline.

    Returns ``(len(lags), N)`` (or ``(len(lags),)`` for ``(T, 3)`` input) MSD in Å².
    """
    x = np.asarray(x, dtype=float)
    ks = range(len(x)) if lags is None else [int(k) for k in lags]
    rows = []
    for k in ks:
        d = x[k:] - x[:len(x) - k]
        rows.append(np.einsum("t...k,t...k->t...", d, d).mean(axis=0))
    return np.array(rows)


# ---------------------------------------------------------------------------------------------
# fit window and slopes


def _check_window(window: Sequence[float]) -> tuple[float, float]:
    try:
        f0, f1 = (float(v) for v in window)
    except (TypeError, ValueError):
        f0 = f1 = math.nan
    if not (0.0 <= f0 < f1 <= 1.0):
        raise ConfigError(f"fit window must be two fractions 0 <= start < end <= 1, got "
                          f"{tuple(window)}", where="window",
                          fix="give e.g. window=(0.1, 0.5): 10% to 50% of the run")
    return f0, f1


def fit_lags(n_frames: int, window: Sequence[float] = DEFAULT_WINDOW) -> np.ndarray:
    """Lags (in frames) of the fit window: ``ceil(f0 (T-1)) .. floor(f1 (T-1))``."""
    f0, f1 = _check_window(window)
    k0 = max(1, math.ceil(f0 * (n_frames - 1) - 1e-9))
    k1 = math.floor(f1 * (n_frames - 1) + 1e-9)
    return np.arange(k0, k1 + 1)


def _min_frames(window: Sequence[float], n_blocks: int) -> int:
    """Fewest frames for which every block's fit window holds MIN_WINDOW_LAGS lags."""
    n = 2
    while len(fit_lags(n, window)) < MIN_WINDOW_LAGS:
        n += 1
    return n * max(1, n_blocks)


def _slope_weights(lags_fs: np.ndarray) -> np.ndarray:
    """``w`` with ``w @ y`` = OLS slope of ``y`` against ``lags_fs`` (with an intercept)."""
    c = lags_fs - lags_fs.mean()
    return c / float(c @ c)


def _slope(msd: np.ndarray, dt_fs: float, window: Sequence[float]) -> np.ndarray:
    """OLS slope (Å²/fs) of MSD curves ``(T, ...)`` over the fit window."""
    lags = fit_lags(len(msd), window)
    return np.tensordot(_slope_weights(lags * dt_fs), msd[lags], axes=(0, 0))


def _block_slopes(x: np.ndarray, dt_fs: float, window: Sequence[float], n_blocks: int
                  ) -> np.ndarray:
    """Windowed MSD slopes (Å²/fs) of ``n_blocks`` contiguous pieces of ``x`` ``(T, ...)``.

    ``x`` of shape ``(T, N, 3)`` gives the slope of the particle-mean MSD per block.
    """
    size = len(x) // n_blocks
    out = []
    for b in range(n_blocks):
        m = msd_fft(x[b * size:(b + 1) * size])
        out.append(float(np.mean(_slope(m, dt_fs, window))))
    return np.array(out)


# ---------------------------------------------------------------------------------------------
# one run


@dataclass
class SpeciesDiffusion:
    """Self-diffusion of one element.

    Attributes
    ----------
    symbol, n_atoms
        Element and its number of atoms.
    D_cm2_per_s, D_err_cm2_per_s
        Diffusion coefficient and its standard error (cm²/s).
    msd_A2
        Species-mean MSD (Å²) at lags ``0 .. T-1``.
    intercept_A2
        Intercept of the fit (Å²).
    """

    symbol: str
    n_atoms: int
    D_cm2_per_s: float
    D_err_cm2_per_s: float
    msd_A2: np.ndarray
    intercept_A2: float


@dataclass
class Conductivity:
    """Nernst-Einstein and Einstein-Helfand conductivities (S/cm) with errors."""

    nernst_einstein_S_per_cm: float
    nernst_einstein_err_S_per_cm: float
    einstein_helfand_S_per_cm: float
    einstein_helfand_err_S_per_cm: float

    @property
    def haven_ratio(self) -> float:
        """``sigma_NE / sigma_EH`` (NaN when ``sigma_EH <= 0``)."""
        eh = self.einstein_helfand_S_per_cm
        return self.nernst_einstein_S_per_cm / eh if eh > 0 else math.nan

    def to_dict(self) -> dict:
        """Return the ``conductivity`` entry of the JSON contract (NaN as ``None``)."""
        out = {k: _num(v) for k, v in vars(self).items()}
        out["haven_ratio"] = _num(self.haven_ratio)
        return out


@dataclass
class TransportRun:
    """Transport of one trajectory at one temperature.

    Attributes
    ----------
    name, temperature_K, dt_fs, volume_A3
        Trajectory name, temperature (K), time between frames (fs), mean cell volume (Å³).
    window_fs
        Fit window ``(start, end)`` in fs.
    species
        ``{element: SpeciesDiffusion}``.
    charges
        ``{element: charge in e}`` of the charged elements.
    charge_msd_e2A2
        MSD of ``M = sum_i q_i r_i`` (e² Å²), or ``None`` without charges.
    conductivity
        :class:`Conductivity`, or ``None`` without charges.
    notes
        Warnings for the user (uncharged species, unwrapping risk...).
    """

    name: str
    temperature_K: float
    dt_fs: float
    volume_A3: float
    window_fs: tuple[float, float]
    species: dict[str, SpeciesDiffusion]
    charges: dict[str, float]
    charge_msd_e2A2: np.ndarray | None
    conductivity: Conductivity | None
    notes: list[str] = field(default_factory=list)

    @property
    def lag_fs(self) -> np.ndarray:
        """Lag times (fs) of the MSD curves."""
        n = len(next(iter(self.species.values())).msd_A2)
        return np.arange(n) * self.dt_fs

    def to_dict(self) -> dict:
        """Return this run's entry of the ``runs`` list of the JSON contract."""
        return {"trajectory": self.name, "temperature_K": float(self.temperature_K),
                "species": {s: {"n_atoms": d.n_atoms, "D_cm2_per_s": _num(d.D_cm2_per_s),
                                "D_err_cm2_per_s": _num(d.D_err_cm2_per_s)}
                            for s, d in self.species.items()},
                "conductivity": self.conductivity.to_dict() if self.conductivity else None}


def _num(v: float) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def uniform_timestep_fs(times_fs: np.ndarray, where: str) -> float:
    """Return the constant spacing (fs) of frame times.

    Raises :class:`DataError` if they are uneven.
    """
    t = np.asarray(times_fs, dtype=float)
    if len(t) < 2:
        raise DataError(f"{len(t)} frame(s): a time series needs at least 2", where=where,
                        fix="give a trajectory with many frames")
    dt = (t[-1] - t[0]) / (len(t) - 1)
    bad = np.flatnonzero(np.abs(np.diff(t) - dt) > 1e-4 * dt)
    if len(bad):
        raise DataError(f"frames are not evenly spaced in time ({t[bad[0]]} -> "
                        f"{t[bad[0] + 1]} fs; mean spacing {dt:.6g} fs)",
                        where=f"{where} frame {bad[0] + 1}",
                        fix="give a trajectory saved at a fixed interval, or dt_fs (--dt-fs) "
                            "to ignore the file's times")
    return float(dt)


def _frames_arrays(frames: Sequence[Atoms], where: str
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions ``(T, N, 3)``, cells ``(T, 3, 3)``, pbc ``(3,)`` of checked frames."""
    if len(frames) == 0:
        raise DataError("no frames", where=where, fix="give a trajectory with frames")
    ref = np.asarray(frames[0].numbers)
    for k, a in enumerate(frames):
        if not np.array_equal(np.asarray(a.numbers), ref):
            raise DataError("atoms differ from the first frame (count or elements)",
                            where=f"{where} frame {k}",
                            fix="give a trajectory of one system with a fixed atom order")
    cells = np.stack([np.asarray(a.cell.array, dtype=float) for a in frames])
    vols = np.abs(np.linalg.det(cells))
    if not np.all(vols > 1e-6):
        k = int(np.flatnonzero(~(vols > 1e-6))[0])
        raise DataError("no cell (volume 0): periodic analysis needs the box",
                        where=f"{where} frame {k}", fix=_FIX_CELL)
    pos = np.stack([np.asarray(a.positions, dtype=float) for a in frames])
    return pos, cells, np.asarray(frames[0].pbc, dtype=bool)


def _check_charges(charges: Mapping[str, float], symbols: Sequence[str], where: str
                   ) -> dict[str, float]:
    present = sorted(set(symbols))
    out = {}
    for s, q in charges.items():
        if s not in present:
            raise ConfigError(f"charge given for {s}, but the trajectory has no {s} atoms",
                              where=where, fix=f"give charges of elements it holds: "
                                               f"{', '.join(present)}")
        q = float(q)
        if not math.isfinite(q):
            raise ConfigError(f"charge of {s} must be a number, got {q}", where="charges",
                              fix="give e.g. charges={'Li': 1, 'P': -1} (--charge Li=1)")
        out[s] = q
    return out


def _check_temperature(t: float, where: str) -> float:
    try:
        t = float(t)
    except (TypeError, ValueError):
        t = math.nan
    if not (math.isfinite(t) and t > 0):
        raise ConfigError(f"temperature must be > 0 K, got {t}", where=where,
                          fix="give the run's temperature in K, e.g. 300")
    return t


def _species_list(symbols: Sequence[str], species: Sequence[str] | None, where: str
                  ) -> list[str]:
    present = list(dict.fromkeys(symbols))
    if species is None:
        return present
    for s in species:
        if s not in present:
            raise ConfigError(f"species {s} is not in the trajectory", where=where,
                              fix=f"choose among {', '.join(present)}")
    return list(species)


def _diffusion(x: np.ndarray, symbol: str, dt_fs: float, window: Sequence[float],
               n_blocks: int, d_error: str) -> SpeciesDiffusion:
    """D of one species from its unwrapped positions ``(T, N, 3)`` (Å)."""
    msd = msd_fft(x)
    lags = fit_lags(len(msd), window)
    w = _slope_weights(lags * dt_fs)
    d_i = (w @ msd[lags]) / 6.0 * A2_PER_FS_IN_CM2_PER_S
    mean_msd = msd.mean(axis=1)
    n = x.shape[1]
    if d_error == "atoms" and n > 1:
        err = float(np.std(d_i, ddof=1) / math.sqrt(n))
    else:
        blocks = _block_slopes(x, dt_fs, window, n_blocks) / 6.0 * A2_PER_FS_IN_CM2_PER_S
        err = float(np.std(blocks, ddof=1))
    intercept = float(mean_msd[lags].mean() - 6.0 * d_i.mean() / A2_PER_FS_IN_CM2_PER_S
                      * float(np.mean(lags * dt_fs)))
    return SpeciesDiffusion(symbol, n, float(d_i.mean()), err, mean_msd, intercept)


def _sigma_factor_S_per_cm(volume_A3: float, temperature_K: float) -> float:
    """``e² / (V kB T)`` times 1 Å²/fs, in S/cm."""
    si = _E_C**2 / (volume_A3 * 1e-30 * _KB_J_PER_K * temperature_K) * 1e-5  # S/m
    return si / 100.0


def _conductivity(x: np.ndarray, symbols: np.ndarray, charges: dict[str, float],
                  species: dict[str, SpeciesDiffusion], factor: float, dt_fs: float,
                  window: Sequence[float], n_blocks: int
                  ) -> tuple[Conductivity, np.ndarray]:
    """Compute NE conductivity from the D's and EH from the charge displacement.

    ``factor`` comes from :func:`_sigma_factor_S_per_cm`.
    """
    to_a2fs = 1.0 / A2_PER_FS_IN_CM2_PER_S
    ne = sum(species[s].n_atoms * q**2 * species[s].D_cm2_per_s for s, q in charges.items())
    ne_err = math.sqrt(sum((species[s].n_atoms * q**2 * species[s].D_err_cm2_per_s) ** 2
                           for s, q in charges.items()))
    q = np.array([charges.get(s, 0.0) for s in symbols])
    m = np.einsum("n,tnk->tk", q, x)
    msd_m = msd_fft(m)
    eh = float(_slope(msd_m, dt_fs, window)) / 6.0
    eh_err = float(np.std(_block_slopes(m, dt_fs, window, n_blocks), ddof=1)) / 6.0
    c = Conductivity(factor * ne * to_a2fs, factor * ne_err * to_a2fs, factor * eh,
                     factor * eh_err)
    return c, msd_m


def _unwrap_notes(pos: np.ndarray, cells: np.ndarray, pbc: np.ndarray) -> list[str]:
    """Return a note when a frame-to-frame step exceeds a quarter of the narrowest cell width."""
    if not pbc.any() or len(pos) < 2:
        return []
    d = np.diff(pos, axis=0)
    frac = np.einsum("tnk,tkl->tnl", d, np.linalg.inv(cells[1:]))
    frac = np.where(pbc, frac - np.round(frac), frac)
    step = float(np.sqrt((np.einsum("tnl,tlk->tnk", frac, cells[1:]) ** 2).sum(-1)).max())
    vol = np.abs(np.linalg.det(cells[0]))
    widths = [vol / np.linalg.norm(np.cross(cells[0][(k + 1) % 3], cells[0][(k + 2) % 3]))
              for k in range(3) if pbc[k]]
    if step > 0.25 * min(widths):
        return [f"an atom moves {step:.2f} Å between saved frames (> 1/4 of the narrowest "
                f"cell width {min(widths):.2f} Å): frames may be too far apart to unwrap; "
                "save frames more often"]
    return []


def analyse_transport(frames: Sequence[Atoms], temperature_K: float,
                      charges: Mapping[str, float] | None = None, dt_fs: float | None = None,
                      *, window: Sequence[float] = DEFAULT_WINDOW, n_blocks: int = DEFAULT_BLOCKS,
                      species: Sequence[str] | None = None, d_error: str = "atoms",
                      remove_drift: bool = False, file_dt_fs: float | None = None,
                      name: str = "trajectory") -> TransportRun:
    """D per species and conductivity of one trajectory.

    Parameters
    ----------
    frames
        Frames with a cell (positions in Å, wrapped or not), evenly spaced in time.
    temperature_K
        Temperature of the run (K).
    charges
        ``{element: charge in e}``, e.g. ``{"Li": 1, "P": -1}`` (P standing for PF6-);
        elements without a charge get a D but add nothing to the conductivity.
    dt_fs
        Time between frames (fs); wins over the frames' ``info["time_fs"]``.
    window
        Fit window as fractions of the run's duration (default 10% to 50%).
    n_blocks
        Contiguous blocks for the block errors (>= 2).
    species
        Elements to analyse (default: all in the trajectory).
    d_error
        ``"atoms"`` (standard error over atoms) or ``"blocks"``.
    remove_drift
        Subtract the centre-of-mass displacement of the whole system from every atom.
    file_dt_fs, name
        Time step the file states (used when neither ``dt_fs`` nor frame times exist) and the
        trajectory's name in messages.

    Returns
    -------
    TransportRun

    Raises
    ------
    ConfigError
        Bad temperature, charge, window, ``n_blocks``, ``d_error``, ``dt_fs <= 0``, or a
        species (or charge) not in the trajectory.
    DataError
        No cell, frames that change atoms, uneven times, or too few frames for the window.
    """
    from common.trajectory import frame_times_fs

    temperature_K = _check_temperature(temperature_K, f"{name} temperature_K")
    if d_error not in ("atoms", "blocks"):
        raise ConfigError(f"unknown d_error {d_error!r}", where="d_error",
                          fix="give 'atoms' or 'blocks'")
    if int(n_blocks) != n_blocks or n_blocks < 2:
        raise ConfigError(f"n_blocks must be an integer >= 2, got {n_blocks}",
                          where="n_blocks", fix="give e.g. 5")
    _check_window(window)
    dt = uniform_timestep_fs(frame_times_fs(frames, dt_fs, file_dt_fs, where=name), name)
    if len(frames) < _min_frames(window, n_blocks):
        f0, f1 = window
        raise DataError(f"too few frames ({len(frames)}) for a diffusive regime: the fit "
                        f"window {f0:.0%}-{f1:.0%} of each of {n_blocks} blocks must hold "
                        f"{MIN_WINDOW_LAGS} lags", where=name,
                        fix=f"give at least {_min_frames(window, n_blocks)} frames (a longer "
                            "run, or frames saved more often)")
    pos, cells, pbc = _frames_arrays(frames, name)
    symbols = np.array(frames[0].get_chemical_symbols())
    q = _check_charges(charges or {}, symbols, name)
    chosen = _species_list(list(symbols), species, name)
    notes = _unwrap_notes(pos, cells, pbc)
    x = unwrap_positions(pos, cells, pbc)
    if remove_drift:
        m = frames[0].get_masses()
        x -= (np.einsum("n,tnk->tk", m, x) / m.sum())[:, None, :]
    diff = {s: _diffusion(x[:, symbols == s], s, dt, window, n_blocks, d_error)
            for s in chosen}
    lags = fit_lags(len(frames), window)
    run = TransportRun(name, temperature_K, dt, float(np.abs(np.linalg.det(cells)).mean()),
                       (float(lags[0] * dt), float(lags[-1] * dt)), diff, q, None, None, notes)
    if q:
        for s in q:
            if s not in diff:
                diff[s] = _diffusion(x[:, symbols == s], s, dt, window, n_blocks, d_error)
        factor = _sigma_factor_S_per_cm(run.volume_A3, temperature_K)
        run.conductivity, run.charge_msd_e2A2 = _conductivity(
            x, symbols, q, diff, factor, dt, window, n_blocks)
        run.notes += _charge_notes(q, symbols, chosen)
    return run


def _charge_notes(q: dict[str, float], symbols: np.ndarray, chosen: Sequence[str]
                  ) -> list[str]:
    notes = []
    free = [s for s in chosen if s not in q]
    if free:
        notes.append(f"no charge given for {', '.join(free)}: D is reported, but they add "
                     f"nothing to the conductivity (give charges={{'{free[0]}': q}}, "
                     f"--charge {free[0]}=q, to count them)")
    net = sum(qq * int(np.sum(symbols == s)) for s, qq in q.items())
    if abs(net) > 1e-6:
        notes.append(f"the charges sum to {net:+g} e: the collective conductivity then "
                     "includes the drift of the net charge")
    return notes


# ---------------------------------------------------------------------------------------------
# Arrhenius


@dataclass
class ArrheniusFit:
    """``y = A exp(-Ea / kB T)`` fitted as ``ln y = ln A - Ea / (kB T)``.

    Attributes
    ----------
    Ea_eV, Ea_err_eV
        Activation energy and its standard error (eV).
    prefactor, ln_prefactor_err
        ``A`` (units of ``y``) and the standard error of ``ln A``.
    chi2_reduced
        Weighted residual sum over ``n - 2`` (NaN for two points).
    temperatures_K, values, errors
        The data fitted.
    """

    Ea_eV: float
    Ea_err_eV: float
    prefactor: float
    ln_prefactor_err: float
    chi2_reduced: float
    temperatures_K: np.ndarray
    values: np.ndarray
    errors: np.ndarray

    def predict(self, temperatures_K: np.ndarray) -> np.ndarray:
        """Return ``A exp(-Ea / kB T)`` at ``temperatures_K``."""
        t = np.asarray(temperatures_K, dtype=float)
        return self.prefactor * np.exp(-self.Ea_eV / (KB_EV_PER_K * t))


def arrhenius_fit(temperatures_K: Sequence[float], values: Sequence[float],
                  errors: Sequence[float] | None = None) -> ArrheniusFit:
    """Weighted fit of ``ln(values)`` against ``1/T``.

    Parameters
    ----------
    temperatures_K
        Temperatures (K), at least two distinct.
    values, errors
        Positive values (e.g. D in cm²/s, or sigma T in S K/cm) and their standard errors.
        Without errors (or with a non-positive one) the points are weighted equally and the
        errors come from the scatter alone.

    Returns
    -------
    ArrheniusFit
        Errors from the weighted covariance, scaled by ``sqrt(chi²_red)`` when that exceeds 1.
    """
    t = np.array([_check_temperature(v, "temperatures_K") for v in temperatures_K])
    y = np.asarray(values, dtype=float)
    if len(y) != len(t) or len(np.unique(t)) < 2:
        raise ConfigError(f"need one value per temperature and two distinct temperatures, got "
                          f"{len(y)} values at {len(np.unique(t))} temperature(s)",
                          where="arrhenius_fit", fix="give runs at two or more temperatures")
    if not np.all(np.isfinite(y) & (y > 0)):
        raise DataError(f"Arrhenius fit needs positive values, got {y.tolist()}",
                        where="arrhenius_fit", fix="drop runs whose value is <= 0 or missing")
    e = np.full_like(y, np.nan) if errors is None else np.asarray(errors, dtype=float)
    weighted = bool(np.all(np.isfinite(e) & (e > 0)))
    w = (y / e) ** 2 if weighted else np.ones_like(y)
    a = np.stack([np.ones_like(t), 1.0 / t], axis=1)
    cov = np.linalg.inv(a.T @ (w[:, None] * a))
    coef = cov @ a.T @ (w * np.log(y))
    dof = len(y) - 2
    chi2 = float(w @ (np.log(y) - a @ coef) ** 2) / dof if dof > 0 else math.nan
    if weighted:
        scale = max(1.0, chi2) if dof > 0 else 1.0
    else:
        scale = chi2  # plain least squares: errors from the scatter (NaN for two points)
    ea = -coef[1] * KB_EV_PER_K
    return ArrheniusFit(float(ea), float(math.sqrt(cov[1, 1] * scale) * KB_EV_PER_K),
                        float(math.exp(coef[0])), float(math.sqrt(cov[0, 0] * scale)),
                        chi2, t, y, e)


# ---------------------------------------------------------------------------------------------
# plots


def _pyplot():
    from common.plots import pyplot

    return pyplot()


def _save(fig, path: str | os.PathLike) -> Path:
    from common.plots import save_figure

    return save_figure(fig, path, dpi=150, tight=False)


def plot_msd(run: TransportRun, path: str | os.PathLike) -> Path:
    """Plot the MSD per species (and of the charge displacement) against time.

    The fit window is shaded and the fitted lines drawn; written atomically to ``path`` (PNG/PDF/SVG
    by suffix).
    """
    plt = _pyplot()
    panels = 2 if run.charge_msd_e2A2 is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4.0), squeeze=False)
    t_ps = run.lag_fs / 1000.0
    half = len(t_ps) // 2 + 1
    ax = axes[0, 0]
    for s, d in run.species.items():
        (line,) = ax.plot(t_ps[:half], d.msd_A2[:half], label=f"{s} (N={d.n_atoms})")
        fit = d.intercept_A2 + 6.0 * d.D_cm2_per_s / A2_PER_FS_IN_CM2_PER_S * run.lag_fs
        ax.plot(t_ps[:half], fit[:half], "--", color=line.get_color(), lw=0.8)
    ax.set(xlabel="lag time (ps)", ylabel="MSD (Å²)",
           title=f"{Path(run.name).name}, {run.temperature_K:g} K")
    for a in axes[0]:
        a.axvspan(run.window_fs[0] / 1000.0, run.window_fs[1] / 1000.0, color="0.9",
                  label="fit window")
    ax.legend(fontsize=8)
    if panels == 2:
        axes[0, 1].plot(t_ps[:half], run.charge_msd_e2A2[:half], color="k")
        axes[0, 1].set(xlabel="lag time (ps)", ylabel="⟨|Σ q Δr|²⟩ (e² Å²)",
                       title="charge displacement (Einstein-Helfand)")
    fig.tight_layout()
    return _save(fig, path)


def plot_arrhenius(fits: Mapping[str, ArrheniusFit], path: str | os.PathLike,
                   ylabel: str = "D (cm²/s)") -> Path:
    """Draw the Arrhenius plot of ``fits``, written atomically to ``path``.

    Values with error bars against 1000/T (log scale) and the fitted lines, one series per entry of
    ``fits`` (label -> fit).
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.0, 4.0))
    for label, f in fits.items():
        x = 1000.0 / f.temperatures_K
        err = np.where(np.isfinite(f.errors), f.errors, 0.0)
        bars = ax.errorbar(x, f.values, yerr=err, fmt="o", ms=4, capsize=2,
                           label=f"{label}: Ea = {f.Ea_eV:.3f} ± {f.Ea_err_eV:.3f} eV")
        tt = np.linspace(f.temperatures_K.min(), f.temperatures_K.max(), 50)
        ax.plot(1000.0 / tt, f.predict(tt), "-", color=bars[0].get_color(), lw=1)
    ax.set_yscale("log")
    ax.set(xlabel="1000 / T (1/K)", ylabel=ylabel)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


# ---------------------------------------------------------------------------------------------
# the report behind `mlp-electrolytes transport`


def _as_runs(paths_or_frames) -> list:
    if isinstance(paths_or_frames, str | os.PathLike):
        return [paths_or_frames]
    items = list(paths_or_frames)
    if items and isinstance(items[0], Atoms):
        return [items]
    return items


def _temperatures(temperatures_K, n_runs: int) -> list[float]:
    if isinstance(temperatures_K, int | float | np.floating | np.integer):
        return [float(temperatures_K)] * n_runs
    ts = list(temperatures_K)
    if len(ts) != n_runs:
        raise ConfigError(f"{len(ts)} temperature(s) for {n_runs} trajectories",
                          where="temperatures_K",
                          fix="give one temperature per trajectory, in the same order "
                              "(--temperatures T1,T2,...), or one for all (--temperature-K)")
    return ts


def _load(item, k: int, dt_fs: float | None):
    if isinstance(item, str | os.PathLike):
        from common.trajectory import load_trajectory

        frames, file_dt = load_trajectory(item)
        return list(frames), file_dt, str(item)
    return list(item), None, f"frames[{k}]"


def _arrhenius_entries(runs: list[TransportRun], conductivity: str, notes: list[str]
                       ) -> tuple[dict | None, dict[str, ArrheniusFit]]:
    temps = np.array([r.temperature_K for r in runs])
    if len(np.unique(temps)) < 3:
        return None, {}
    fits: dict[str, ArrheniusFit] = {}
    common_species = [s for s in runs[0].species if all(s in r.species for r in runs)]
    out: dict = {"D": {}, "conductivity": None}
    for s in common_species:
        d = [r.species[s] for r in runs]
        vals = [x.D_cm2_per_s for x in d]
        if min(vals) <= 0:
            notes.append(f"Arrhenius fit of D({s}) skipped: a D is <= 0")
            continue
        f = fits[f"D({s})"] = arrhenius_fit(temps, vals, [x.D_err_cm2_per_s for x in d])
        out["D"][s] = {"Ea_eV": _num(f.Ea_eV), "Ea_err_eV": _num(f.Ea_err_eV),
                       "prefactor_cm2_per_s": _num(f.prefactor)}
    if all(r.conductivity for r in runs):
        key = f"{conductivity}_S_per_cm"
        sig = np.array([getattr(r.conductivity, key) for r in runs])
        err = np.array([getattr(r.conductivity, key.replace("_S_", "_err_S_")) for r in runs])
        if np.all(sig > 0):
            f = fits["σT"] = arrhenius_fit(temps, sig * temps, err * temps)
            out["conductivity"] = {"Ea_eV": _num(f.Ea_eV), "Ea_err_eV": _num(f.Ea_err_eV),
                                   "prefactor_S_K_per_cm": _num(f.prefactor)}
        else:
            notes.append(f"Arrhenius fit of the conductivity skipped: a {conductivity} "
                         "conductivity is <= 0")
    return out, fits


def transport_report(paths_or_frames, temperatures_K: float | Sequence[float],
                     charges: Mapping[str, float] | None = None, dt_fs: float | None = None,
                     *, window: Sequence[float] = DEFAULT_WINDOW,
                     n_blocks: int = DEFAULT_BLOCKS, species: Sequence[str] | None = None,
                     d_error: str = "atoms", remove_drift: bool = False,
                     arrhenius_conductivity: str = "einstein_helfand",
                     plots_dir: str | os.PathLike | None = None) -> tuple[dict, list[str]]:
    """Return the JSON of ``mlp-electrolytes transport``: D, conductivity, Haven ratio, Arrhenius.

    Parameters
    ----------
    paths_or_frames
        Trajectory files (any ASE format or the HDF5 of :mod:`common.md`) or lists of
        ``Atoms``, one per run; a single path or a single list of ``Atoms`` is one run.
    temperatures_K
        One temperature per run (K), or one number for all.
    charges
        ``{element: charge in e}``.
    dt_fs
        Time between frames (fs); wins over the times stored in the files.
    window, n_blocks, species, d_error, remove_drift
        As in :func:`analyse_transport`.
    arrhenius_conductivity
        Which conductivity the Arrhenius fit of ``sigma T`` uses: ``"einstein_helfand"``
        (collective, default) or ``"nernst_einstein"``.
    plots_dir
        If given, ``msd_<k>_<name>.png`` per run and, with an Arrhenius fit,
        ``arrhenius_D.png`` and ``arrhenius_conductivity.png`` are written there.

    Returns
    -------
    report, notes
        ``report`` = ``{"runs": [...], "arrhenius": {...}}`` exactly as the CLI prints it
        (``arrhenius`` only with three or more distinct temperatures; NaN as ``None``), and
        the notes to print once on stderr.
    """
    if arrhenius_conductivity not in ("einstein_helfand", "nernst_einstein"):
        raise ConfigError(f"unknown conductivity {arrhenius_conductivity!r}",
                          where="arrhenius_conductivity",
                          fix="give 'einstein_helfand' or 'nernst_einstein'")
    items = _as_runs(paths_or_frames)
    if not items:
        raise ConfigError("no trajectory given", where="paths_or_frames",
                          fix="give one or more trajectory files")
    temps = _temperatures(temperatures_K, len(items))
    runs, notes = [], []
    for k, (item, t) in enumerate(zip(items, temps, strict=True)):
        frames, file_dt, name = _load(item, k, dt_fs)
        run = analyse_transport(frames, t, charges, dt_fs, window=window, n_blocks=n_blocks,
                                species=species, d_error=d_error, remove_drift=remove_drift,
                                file_dt_fs=file_dt, name=name)
        runs.append(run)
        notes += run.notes
    report: dict = {"runs": [r.to_dict() for r in runs]}
    arr, fits = _arrhenius_entries(runs, arrhenius_conductivity, notes)
    if arr is not None:
        report["arrhenius"] = arr
    if plots_dir is not None:
        _write_plots(runs, fits, Path(plots_dir))
    return report, _dedupe(notes)


def _write_plots(runs: list[TransportRun], fits: dict[str, ArrheniusFit], folder: Path) -> None:
    for k, r in enumerate(runs):
        stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(r.name).stem)
        plot_msd(r, folder / f"msd_{k:02d}_{stem}.png")
    d_fits = {k: f for k, f in fits.items() if k.startswith("D(")}
    if d_fits:
        plot_arrhenius(d_fits, folder / "arrhenius_D.png", ylabel="D (cm²/s)")
    if "σT" in fits:
        plot_arrhenius({"σT": fits["σT"]}, folder / "arrhenius_conductivity.png",
                       ylabel="σT (S K/cm)")


def _dedupe(notes: list[str]) -> list[str]:
    return list(dict.fromkeys(notes))
