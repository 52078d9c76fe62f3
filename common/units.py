"""Units: ASE's (eV, Å, amu, ASE time) inside; user-facing names carry their unit."""

from __future__ import annotations

from ase import units as _u

#: Boltzmann constant, eV/K
KB_EV_PER_K: float = float(_u.kB)
#: one femtosecond in ASE time units
FS: float = float(_u.fs)
#: one picosecond in ASE time units
PS: float = 1000.0 * float(_u.fs)


def fs_to_ase(t_fs: float) -> float:
    """Femtoseconds -> ASE time units."""
    return float(t_fs) * FS


def per_ps_to_ase(rate_per_ps: float) -> float:
    """Convert a rate in 1/ps to 1/(ASE time)."""
    return float(rate_per_ps) / PS
