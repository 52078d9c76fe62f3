"""Funnel restraint for binding metadynamics, its accessible volume and standard-state correction.

The restraint is that of Limongelli, Bonomi & Parrinello (PNAS 110, 6358, 2013); the standard-state
correction is the one its accessible volume implies.

Geometry. The funnel's axis runs from ``A``, the centre of mass of the ``origin`` atom group
(in the pocket), towards ``B``, the centre of the ``toward`` group (a point along the exit path);
``n = (B - A) / |B - A|``. For the ligand's centre of mass ``x`` (group ``ligand``)::

    z   = (x - A) . n                  position along the axis (nm)
    rho = |x - A - z n|                distance from the axis (nm)
    R(z) = R_cyl + tan(alpha) (z_cc - z)   for z <  z_cc  (the cone, wide towards the pocket)
    R(z) = R_cyl                           for z >= z_cc  (the cylinder, out in the solvent)
    U   = 1/2 k [ max(0, rho - R(z))^2 + max(0, z - z_max)^2 + max(0, z_min - z)^2 ]

``U`` is zero inside the funnel and harmonic outside (PLUMED's FUNNEL_PS uses the same cone,
cylinder and the two limits MINS/MAXS along the axis). It depends only on the three centres'
relative positions, so it moves and turns with the receptor and needs no alignment; in OpenMM
it is one ``CustomCentroidBondForce`` of three groups with ``z = d cos(theta)``,
``rho = d sin(theta)``, ``d = distance(g1, g2)``, ``theta = angle(g1, g2, g3)``.

Accessible volume. The Boltzmann-weighted volume the ligand's centre can reach inside a CV
interval ``LO <= s <= HI``, ``s = |x - A|`` (the metadynamics distance CV between the ligand and
origin groups), is::

    V(LO, HI) = int_{LO <= |x| <= HI} exp(-U(x) / kT) d^3x
              = int dz  int_{rho_lo(z)}^{rho_hi(z)} 2 pi rho exp(-U(z, rho) / kT) d rho,

``rho_lo = sqrt(max(0, LO^2 - z^2))``, ``rho_hi = sqrt(max(0, HI^2 - z^2))``. The ``rho``
integral is done in closed form (a Gaussian tail: ``exp`` and ``erf`` terms), the ``z`` integral
by the trapezoid rule on a fine grid (:meth:`Funnel.accessible_volume_nm3`; ``temperature_K=None``
gives the hard-wall, ``k -> infinity`` volume).

Standard-state correction. With one ligand free in the unbound part of the funnel, the binding
constant is ``K = (P_bound / P_unbound) V_u`` and::

    dG_bind = dG - kT ln(V_u / V0),        V0 = 1 / C0 = 1.66054 nm^3 (1 mol/L),

``dG = G(bound) - G(unbound)`` from the profile. When the unbound shell lies in the cylinder
(``sqrt(LO^2 - R_cyl^2) >= z_cc``, ``HI <= z_max``) and the walls are hard, ``V_u`` has the
closed form (:func:`cylinder_shell_volume_nm3`)::

    V_u = (2 pi / 3) [HI^3 - (HI^2 - R_cyl^2)^(3/2) - LO^3 + (LO^2 - R_cyl^2)^(3/2)]
        -> pi R_cyl^2 (HI - LO)                 for R_cyl << LO,

and the correction becomes Limongelli's ``dG0 = dG - kT ln(pi R_cyl^2 (HI - LO) C0)``, which is
the paper's ``dG0 = -kT ln(C0 pi R_cyl^2 int_site exp(-(W(z) - W_ref)/kT) dz)`` written with our
``dG`` (``W`` flat at ``W_ref`` over the unbound stretch of length ``HI - LO``). We use the exact
``V_u`` from the quadrature, soft walls included, not the small-radius limit.

Simplification: the metadynamics CV stays the centre-of-mass distance from the origin group
(the issue's contract), not Limongelli's projection ``z`` on the axis; the two coincide in the
cylinder up to ``O(R_cyl^2 / s)``, and the volume above is exact for the distance CV.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from common.cv import parse_cv
from common.errors import ConfigError

__all__ = ["Funnel", "cylinder_shell_volume_nm3", "parse_funnel"]

#: molar gas constant, kJ/(mol K)
_R = 0.008314462618


@dataclass(frozen=True)
class Funnel:
    """A funnel restraint (see the module docstring).

    The ``ligand``, ``origin`` and ``toward`` atom groups (0-based indices), the cylinder radius
    ``radius_nm`` (``R_cyl``), the cone's half-opening ``angle_deg`` (``alpha``), where the cone
    meets the cylinder ``z_cc_nm``, the limits ``z_min_nm``/``z_max_nm`` along the axis and the wall
    constant ``k_kJ_per_nm2``.
    """

    ligand: tuple[int, ...]
    origin: tuple[int, ...]
    toward: tuple[int, ...]
    radius_nm: float
    angle_deg: float
    z_cc_nm: float
    z_min_nm: float
    z_max_nm: float
    k_kJ_per_nm2: float = 5000.0

    # -- geometry and energy (numpy, nm and kJ/mol) ------------------------------------------

    def radius_at(self, z_nm) -> np.ndarray:
        """``R(z)`` (nm)."""
        z = np.asarray(z_nm, float)
        return self.radius_nm + math.tan(math.radians(self.angle_deg)) * np.maximum(
            0.0, self.z_cc_nm - z)

    def energy_kJ(self, z_nm, rho_nm) -> np.ndarray:
        """Return the restraint energy ``U(z, rho)`` (kJ/mol)."""
        z, rho = np.asarray(z_nm, float), np.asarray(rho_nm, float)
        out = (np.maximum(0.0, rho - self.radius_at(z)) ** 2
               + np.maximum(0.0, z - self.z_max_nm) ** 2
               + np.maximum(0.0, self.z_min_nm - z) ** 2)
        return 0.5 * self.k_kJ_per_nm2 * out

    def axial(self, x, origin, toward) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(z, rho)`` of points ``x`` (..., 3) on the funnel's axis frame (nm).

        The axis runs from ``origin`` towards ``toward``.
        """
        a, b = np.asarray(origin, float), np.asarray(toward, float)
        n = (b - a) / np.linalg.norm(b - a)
        d = np.asarray(x, float) - a
        z = d @ n
        return z, np.linalg.norm(d - z[..., None] * n, axis=-1)

    def geometric_volume_nm3(self) -> float:
        """Return the hard-wall volume of the whole funnel between ``z_min`` and ``z_max`` (nm^3).

        It is a cone frustum below ``z_cc`` plus a cylinder above, ``pi h (R1^2 + R1 R2 + R2^2) / 3
        + pi R_cyl^2 h'``.
        """
        lo, hi, zcc = self.z_min_nm, self.z_max_nm, self.z_cc_nm
        v = 0.0
        if lo < zcc:
            top = min(zcc, hi)
            r1, r2 = float(self.radius_at(lo)), float(self.radius_at(top))
            v += math.pi * (top - lo) * (r1 * r1 + r1 * r2 + r2 * r2) / 3.0
        if hi > zcc:
            v += math.pi * self.radius_nm**2 * (hi - max(zcc, lo))
        return v

    def accessible_volume_nm3(self, s_range_nm: Sequence[float] | None = None,
                              temperature_K: float | None = None, n_z: int = 40001) -> float:
        """Return the accessible volume ``int exp(-U/kT) d^3x`` of part of the funnel (nm^3).

        The part is where ``LO <= |x - A| <= HI`` (``s_range_nm=None``: everywhere).
        ``temperature_K=None`` gives hard walls (``exp(-U/kT)`` replaced by "inside or not").
        Quadrature as in the module docstring.
        """
        hard = temperature_K is None
        a = math.inf if hard else self.k_kJ_per_nm2 / (2.0 * _R * float(temperature_K))
        margin = 0.0 if hard else 12.0 / math.sqrt(a)  # exp(-144) beyond
        r_far = float(self.radius_at(self.z_min_nm - margin)) + margin
        lo, hi = (0.0, math.inf) if s_range_nm is None else map(float, s_range_nm)
        z0, z1 = self.z_min_nm - margin, self.z_max_nm + margin
        if math.isfinite(hi):
            z0, z1 = max(z0, -hi), min(z1, hi)
        if z1 <= z0:
            return 0.0
        z = np.linspace(z0, z1, int(n_z))
        r_lo = np.sqrt(np.maximum(0.0, lo * lo - z * z))
        r_hi = (np.sqrt(np.maximum(0.0, hi * hi - z * z)) if math.isfinite(hi)
                else np.full_like(z, r_far))
        r_hi = np.minimum(r_hi, r_far + 1.0)  # beyond r_far + margin the integrand is 0
        area = _disc_integral(a, self.radius_at(z), r_lo, np.maximum(r_lo, r_hi))
        if not hard:
            area *= np.exp(-a * (np.maximum(0.0, z - self.z_max_nm) ** 2
                                 + np.maximum(0.0, self.z_min_nm - z) ** 2))
        else:
            area *= (z >= self.z_min_nm) & (z <= self.z_max_nm)
        return float(np.trapezoid(area, z))

    def standard_state_correction_kJ(self, unbound_nm: Sequence[float], temperature_K: float,
                                     v0_nm3: float = 1.66054) -> float:
        """Return the standard-state correction ``-kT ln(V_u / V0)`` (kJ/mol).

        ``V_u`` is the accessible volume of the unbound CV interval (soft walls at
        ``temperature_K``).
        """
        v_u = self.accessible_volume_nm3(unbound_nm, temperature_K)
        if not v_u > 0.0:
            raise ConfigError(f"the unbound basin {unbound_nm[0]:g},{unbound_nm[1]:g} nm lies "
                              "outside the funnel", where="unbound_nm",
                              fix="put the unbound basin inside the funnel's cylinder")
        return -_R * float(temperature_K) * math.log(v_u / v0_nm3)

    # -- OpenMM ------------------------------------------------------------------------------

    def openmm_force(self, system):
        """Build the restraint as an OpenMM ``CustomCentroidBondForce`` with the energy ``U``.

        Its groups are ligand, origin and toward (mass-weighted centres, equal weights for massless
        groups).
        """
        import openmm as mm
        from openmm import unit

        expr = ("0.5*kf*(max(0, rho - rz)^2 + max(0, z - zmax)^2 + max(0, zmin - z)^2);"
                "rz = rcyl + tana*max(0, zcc - z);"
                "z = d*cos(theta); rho = d*sin(theta);"
                "d = distance(g1, g2); theta = angle(g1, g2, g3)")
        force = mm.CustomCentroidBondForce(3, expr)
        params = {"kf": self.k_kJ_per_nm2, "rcyl": self.radius_nm,
                  "tana": math.tan(math.radians(self.angle_deg)), "zcc": self.z_cc_nm,
                  "zmin": self.z_min_nm, "zmax": self.z_max_nm}
        for name in params:
            force.addPerBondParameter(name)
        for g in (self.ligand, self.origin, self.toward):
            masses = [system.getParticleMass(i).value_in_unit(unit.dalton) for i in g]
            force.addGroup(list(g), masses if sum(masses) > 0 else [1.0] * len(g))
        force.addBond([0, 1, 2], list(params.values()))
        force.setUsesPeriodicBoundaryConditions(system.usesPeriodicBoundaryConditions())
        force.setName("FunnelRestraint")
        return force

    def to_dict(self) -> dict:
        """Return the funnel as a JSON-ready dict (atom groups as lists)."""
        d = asdict(self)
        for key in ("ligand", "origin", "toward"):
            d[key] = list(d[key])
        return d


def _disc_integral(a: float, R: np.ndarray, r1: np.ndarray, r2: np.ndarray) -> np.ndarray:
    """Return ``int_{r1}^{r2} 2 pi rho w(rho) d rho`` element-wise, in closed form.

    ``w = 1`` for ``rho <= R`` and ``exp(-a (rho - R)^2)`` beyond (``a = inf``: 0 beyond).
    """
    from scipy.special import erf

    inner = math.pi * (np.minimum(r2, R) ** 2 - np.minimum(r1, R) ** 2)
    if math.isinf(a):
        return inner
    u1, u2 = np.maximum(r1, R) - R, np.maximum(r2, R) - R
    sa = math.sqrt(a)
    tail = 2.0 * math.pi * ((np.exp(-a * u1 * u1) - np.exp(-a * u2 * u2)) / (2.0 * a)
                            + R * math.sqrt(math.pi) / (2.0 * sa) * (erf(sa * u2) - erf(sa * u1)))
    return inner + tail


def cylinder_shell_volume_nm3(radius_nm: float, s_range_nm: Sequence[float]) -> float:
    """Return the volume of ``{LO <= |x| <= HI, rho <= R, z > 0}`` (nm^3).

    That is, for a cylinder of radius ``R`` on the axis (``R <= LO``): ``(2 pi / 3)[HI^3 - (HI^2 -
    R^2)^(3/2) - LO^3 + (LO^2 - R^2)^(3/2)]`` (nm^3); ``pi R^2 (HI - LO)`` for ``R << LO``
    (Limongelli's ``pi R_cyl^2`` times a length).
    """
    lo, hi = map(float, s_range_nm)
    r2 = float(radius_nm) ** 2
    if r2 > lo * lo:
        raise ConfigError(f"cylinder radius {radius_nm:g} nm exceeds the shell's inner radius "
                          f"{lo:g} nm", where="funnel_radius_nm", fix="use R <= LO")
    return 2.0 * math.pi / 3.0 * (hi**3 - (hi * hi - r2) ** 1.5 - lo**3 + (lo * lo - r2) ** 1.5)


def parse_funnel(groups: str, n_atoms: int, radius_nm: float, angle_deg: float,
                 z_cc_nm: float, z_range_nm: str | Sequence[float],
                 k_kJ_per_nm2: float = 5000.0) -> Funnel:
    """Parse a :class:`Funnel` from ``"LIGAND:ORIGIN:TOWARD"`` and its numbers.

    The atom groups are 0-based and written as in ``distance:I:J`` (indices, lists, ranges); a bad
    value is a one-line :class:`ConfigError` (``where`` = ``funnel``, ``funnel_radius_nm``, ...).
    """
    parts = str(groups).strip().split(":")
    if len(parts) != 3 or not all(parts):
        raise ConfigError(f"bad funnel groups {groups!r}", where="funnel",
                          fix="write LIGAND:ORIGIN:TOWARD atom groups, e.g. 40-55:0-9:20,21")
    try:
        a = parse_cv(f"distance:{parts[0]}:{parts[1]}", n_atoms, where="funnel")
        b = parse_cv(f"distance:{parts[1]}:{parts[2]}", n_atoms, where="funnel")
    except ConfigError as exc:
        raise ConfigError(f"bad funnel groups {groups!r} ({exc.what})", where="funnel",
                          fix=exc.fix) from None
    if set(a.groups[0]) & set(b.groups[1]):
        raise ConfigError(f"the ligand and toward groups share atoms in {groups!r}",
                          where="funnel", fix="give three disjoint groups")
    z_min, z_max = _z_range(z_range_nm)
    for name, value, ok, fix in (
            ("funnel_radius_nm", radius_nm, lambda v: v > 0, "give the cylinder radius, e.g. 0.1"),
            ("funnel_angle_deg", angle_deg, lambda v: 0 <= v < 90, "give 0 <= angle < 90"),
            ("funnel_z_cc_nm", z_cc_nm, lambda v: True, "give where cone meets cylinder, nm"),
            ("funnel_k_kJ_per_nm2", k_kJ_per_nm2, lambda v: v > 0, "e.g. 5000 kJ/mol/nm^2")):
        v = float(value)
        if not (math.isfinite(v) and ok(v)):
            raise ConfigError(f"{name}={value} is not allowed", where=name, fix=fix)
    return Funnel(a.groups[0], a.groups[1], b.groups[1], float(radius_nm), float(angle_deg),
                  float(z_cc_nm), z_min, z_max, float(k_kJ_per_nm2))


def _z_range(text) -> tuple[float, float]:
    """``"ZMIN,ZMAX"`` along the axis (ZMIN may be negative: behind the origin)."""
    try:
        vals = [float(v) for v in (text.split(",") if isinstance(text, str) else text)]
    except (TypeError, ValueError):
        vals = []
    if len(vals) != 2 or not all(math.isfinite(v) for v in vals) or not vals[0] < vals[1]:
        raise ConfigError(f"bad funnel range {text!r}", where="funnel_z_nm",
                          fix="give ZMIN,ZMAX along the axis in nm with ZMIN < ZMAX, "
                              "e.g. -0.3,2.0")
    return vals[0], vals[1]

