"""Bond and surface-contact cutoffs for C/H/O adsorbates on Cu (Å, ``r_on`` / ``r_off``).

:class:`common.events.BondCriteria` gives every element pair the covalent-radius rule; the
pairs of this chemistry get explicit values, chosen from bond lengths and transition states
on Cu:

====  =====  =====  ==========================================================
pair  r_on   r_off  why
====  =====  =====  ==========================================================
C-C   1.80   2.20   single 1.54, OCCO on Cu 1.5-1.6; C-C coupling TS on Cu ~1.9-2.0
C-O   1.70   2.05   C=O 1.15-1.25, C-O 1.36-1.43 (COOH, OCH3); C-O scission TS ~1.9
C-H   1.30   1.55   1.09-1.10; C-H formation/scission TS on Cu ~1.5-1.6
H-O   1.20   1.45   0.97-1.0, shared protons ~1.2; H-bond acceptor O···H >= 1.6
O-O   1.60   1.90   O2 1.21, peroxide 1.48; O···O in liquid water ~2.8
H-H   0.95   1.20   H2 0.74 (the radius rule would put r_on at 0.74, on the bond itself);
                    the two H of one water are 1.51 apart and must stay unbonded
====  =====  =====  ==========================================================

Surface contacts (adsorbate-metal): C-Cu and O-Cu 2.4 / 2.7, H-Cu 2.0 / 2.3 (C on top of Cu
1.85, bridge ~2.0, O of OH in a hollow ~2.0, H in a hollow 1.73; the next Cu shell around a
bound atom is >= 3.0 Å away). Other metal pairs: ``1.15 / 1.30 x`` the sum of covalent radii
(which gives 2.39 Å for C-Cu).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from common.events import BondCriteria

__all__ = ["BOND_CUTOFFS", "SURFACE_CUTOFFS", "bond_criteria", "surface_criteria"]

#: adsorbate-adsorbate (r_on, r_off) in Å; see the module docstring for why.
BOND_CUTOFFS: dict[tuple[str, str], tuple[float, float]] = {
    ("C", "C"): (1.80, 2.20),
    ("C", "O"): (1.70, 2.05),
    ("C", "H"): (1.30, 1.55),
    ("H", "O"): (1.20, 1.45),
    ("O", "O"): (1.60, 1.90),
    ("H", "H"): (0.95, 1.20),
}

#: adsorbate-metal (r_on, r_off) in Å; see the module docstring.
SURFACE_CUTOFFS: dict[tuple[str, str], tuple[float, float]] = {
    ("C", "Cu"): (2.4, 2.7),
    ("Cu", "O"): (2.4, 2.7),
    ("Cu", "H"): (2.0, 2.3),
}

Overrides = Mapping[str | tuple[str, str], Sequence[float]]


def bond_criteria(overrides: Overrides | None = None, where: str = "bond cutoffs"
                  ) -> BondCriteria:
    """Return the adsorbate-adsorbate bond cutoffs.

    They come from ``overrides``, else :data:`BOND_CUTOFFS`, else 1.20 / 1.45 x the covalent radii.
    """
    return BondCriteria(overrides, table=BOND_CUTOFFS, where=where)


def surface_criteria(overrides: Overrides | None = None, where: str = "surface cutoffs"
                     ) -> BondCriteria:
    """Return the adsorbate-metal contact cutoffs.

    They come from ``overrides``, else :data:`SURFACE_CUTOFFS`, else 1.15 / 1.30 x the covalent
    radii.
    """
    return BondCriteria(overrides, on_factor=1.15, off_factor=1.30, table=SURFACE_CUTOFFS,
                        where=where)
