"""The fcc(111) slab: :func:`cu111_slab`, :func:`fcc_lattice_constant`, its layers.

Tags 1 = top layer ... L = bottom; the bottom ``fixed_layers`` under
:class:`~ase.constraints.FixAtoms`. The substrate is the tagged atoms (or, untagged, every
atom heavier than Ne); :func:`surface_atoms` is its top layer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ase import Atoms
from ase.build import fcc111
from ase.constraints import FixAtoms

from catalysis.systems.calculators import _as_calculator
from common.errors import ConfigError

#: Cu lattice constant (experiment, room temperature), Å
CU_A = 3.61


def cu111_slab(
    size: tuple[int, int, int] = (4, 6, 4),
    vacuum_A: float = 10.0,
    fixed_layers: int = 2,
    a_A: float = CU_A,
    orthogonal: bool = True,
    symbol: str = "Cu",
) -> Atoms:
    """Build a (111) slab of an fcc metal with the bottom layers fixed.

    Parameters
    ----------
    size : (nx, ny, layers)
        Surface repeats along a and b, and the number of layers. The seed's 96-atom slab is
        ``(4, 6, 4)``: 4 layers of 24 atoms, 10.2 x 13.3 Å for Cu. An orthogonal cell needs an
        even ``ny``; use ``orthogonal=False`` (the 60° cell) for odd ones such as ``(3, 3, 3)``.
    vacuum_A : float
        Vacuum on each side of the slab, Å (the gap between periodic images is twice this).
    fixed_layers : int
        Bottom layers held by :class:`~ase.constraints.FixAtoms` (0 <= fixed_layers < layers).
    a_A : float
        Cubic lattice constant, Å (3.61 for Cu; use :func:`fcc_lattice_constant` to take the
        labeller's own value so the slab is not strained in that labeller).
    orthogonal : bool
        Rectangular cell (True) or the primitive 60° surface cell (False).
    symbol : str
        The metal (Cu by default).

    Returns
    -------
    ase.Atoms
        Tags 1 (top layer) ... ``layers`` (bottom), pbc (True, True, False), the surface in the
        xy plane; ``info["slab"]`` describes it (e.g. ``"Cu(111) 4x6x4"``).
    """
    try:
        nx, ny, nl = (int(s) for s in size)
    except (TypeError, ValueError):
        raise ConfigError(f"size={size!r} is not three integers", where="cu111_slab size",
                          fix="give (nx, ny, layers), e.g. (4, 6, 4)") from None
    if min(nx, ny, nl) < 1:
        raise ConfigError(f"size={size!r} has a repeat < 1", where="cu111_slab size",
                          fix="every repeat and the layer count must be >= 1, e.g. (4, 6, 4)")
    if orthogonal and ny % 2:
        raise ConfigError(f"an orthogonal (111) cell needs an even second repeat, got {ny}",
                          where="cu111_slab size",
                          fix="use an even ny (e.g. (4, 6, 4)) or orthogonal=False")
    if not 0 <= int(fixed_layers) < nl:
        raise ConfigError(f"fixed_layers={fixed_layers} with {nl} layers",
                          where="cu111_slab fixed_layers",
                          fix=f"fix between 0 and {nl - 1} bottom layers (the top must move)")
    if not vacuum_A > 0:
        raise ConfigError(f"vacuum_A={vacuum_A} must be > 0", where="cu111_slab vacuum_A",
                          fix="use about 10 Å (adsorbates and water need room above the slab)")
    if not a_A > 0:
        raise ConfigError(f"a_A={a_A} must be > 0", where="cu111_slab a_A",
                          fix="give the cubic lattice constant in Å (3.61 for Cu)")
    slab = fcc111(symbol, size=(nx, ny, nl), a=float(a_A), vacuum=float(vacuum_A),
                  orthogonal=bool(orthogonal))
    # ASE's add_adsorbate bookkeeping (a dict of arrays) cannot be written to extxyz; place()
    # and sites() replace it
    slab.info.pop("adsorbate_info", None)
    tags = slab.get_tags()
    if fixed_layers:
        slab.set_constraint(FixAtoms(mask=tags > nl - int(fixed_layers)))
    slab.info["slab"] = f"{symbol}(111) {nx}x{ny}x{nl}"
    return slab


def fcc_lattice_constant(calculator: Any, symbol: str = "Cu", guess_A: float = CU_A) -> float:
    """Fit the cubic lattice constant of an fcc metal in ``calculator``, Å (equation of state).

    Seven volumes within ±3 % of ``guess_A``; use the result as ``cu111_slab(a_A=...)`` so the
    slab is at the labeller's own equilibrium.
    """
    from ase.build import bulk
    from ase.eos import EquationOfState

    calc = _as_calculator(calculator)
    volumes, energies = [], []
    for s in np.linspace(0.97, 1.03, 7):
        b = bulk(symbol, "fcc", a=guess_A * s)
        b.calc = calc
        volumes.append(b.get_volume())
        energies.append(b.get_potential_energy())
    v0, _, _ = EquationOfState(volumes, energies).fit()
    return float((4.0 * v0) ** (1.0 / 3.0))


def _substrate_mask(slab: Atoms) -> np.ndarray:
    tags = slab.get_tags()
    if np.any(tags > 0):
        return tags > 0
    return slab.numbers > 10  # no layer tags: take everything heavier than Ne as the metal


def _layers(slab: Atoms, gap_A: float = 0.7) -> list[np.ndarray]:
    """Substrate atom indices per layer, top layer first (layers split where z jumps)."""
    idx = np.flatnonzero(_substrate_mask(slab))
    if len(idx) == 0:
        raise ConfigError("no substrate atoms (no positive tags and no metal atoms)",
                          where="slab", fix="build the slab with cu111_slab or ase.build.fcc111")
    z = slab.positions[idx, 2]
    order = idx[np.argsort(-z, kind="stable")]
    zs = slab.positions[order, 2]
    cuts = np.flatnonzero(zs[:-1] - zs[1:] > gap_A) + 1
    return [np.sort(g) for g in np.split(order, cuts)]


def surface_atoms(slab: Atoms) -> np.ndarray:
    """Return the indices of the top substrate layer (by z; substrate = tagged or metal atoms)."""
    return _layers(slab)[0]
