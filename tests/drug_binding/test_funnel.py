"""The funnel restraint: its OpenMM energy against the formula, its accessible volume by
quadrature against closed forms and Monte Carlo, the standard-state correction against
Limongelli's formula, and metadynamics of a free particle inside a funnel."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from common.errors import ConfigError, DataError
from drug_binding import metad
from drug_binding.funnel import Funnel, cylinder_shell_volume_nm3, parse_funnel

mm = pytest.importorskip("openmm")

T_K = 300.0
KT_KJ = 0.008314462618 * T_K
V0 = 1.66054
# the free particle's funnel: axis along +z from particle 0 (origin) through particle 1; the
# cone (30 degrees) over z < 0.5 nm, a cylinder of 0.1 nm beyond, z limited to [-0.2, 1.2] nm
FUNNEL = Funnel((2,), (0,), (1,), 0.1, 30.0, 0.5, -0.2, 1.2, 5000.0)
BOUND, UNBOUND = (0.0, 0.45), (0.75, 1.1)
START = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 2.0], [0.0, 0.0, 0.2]])


def _particle_system(mass_amu: float = 2.0):
    system = mm.System()
    for m in (0.0, 0.0, mass_amu):  # origin and axis point fixed (massless)
        system.addParticle(m)
    return system


def _energy(ctx, pos) -> float:
    ctx.setPositions(pos * mm.unit.nanometer)
    return ctx.getState(getEnergy=True).getPotentialEnergy().value_in_unit(
        mm.unit.kilojoule_per_mole)


# ---------------------------------------------------------------------------------------------
# the restraint in OpenMM is the formula


def test_openmm_energy_is_the_formula_with_groups_and_a_tilted_axis():
    rng = np.random.default_rng(0)
    masses = [12.0, 16.0, 1.0, 14.0, 12.0, 0.0, 0.0]
    funnel = Funnel((0, 1, 2), (3, 4), (5, 6), 0.15, 40.0, 0.6, -0.3, 1.5, 3000.0)
    system = mm.System()
    for m in masses:
        system.addParticle(m)
    system.addForce(funnel.openmm_force(system))
    ctx = mm.Context(system, mm.VerletIntegrator(0.001),
                     mm.Platform.getPlatformByName("Reference"))
    w = np.asarray(masses)
    n_out = 0
    for _ in range(40):
        pos = rng.normal(0.0, 0.8, (7, 3))
        lig = np.average(pos[:3], axis=0, weights=w[:3])
        a = np.average(pos[3:5], axis=0, weights=w[3:5])
        b = pos[5:7].mean(axis=0)  # massless group: equal weights
        z, rho = funnel.axial(lig[None], a, b)
        expect = float(funnel.energy_kJ(z, rho)[0])
        assert _energy(ctx, pos) == pytest.approx(expect, rel=1e-6, abs=1e-6)
        n_out += expect > 0
    assert 5 < n_out < 40  # both inside and outside were tried


def test_energy_formula_known_points():
    f = FUNNEL
    assert f.radius_at(0.5) == pytest.approx(0.1) and f.radius_at(2.0) == pytest.approx(0.1)
    assert f.radius_at(0.0) == pytest.approx(0.1 + 0.5 * math.tan(math.radians(30)))
    assert f.energy_kJ(0.8, 0.09) == 0.0 and f.energy_kJ(-0.1, 0.3) == 0.0
    assert f.energy_kJ(0.8, 0.3) == pytest.approx(0.5 * 5000 * 0.2**2)
    assert f.energy_kJ(1.3, 0.0) == pytest.approx(0.5 * 5000 * 0.1**2)
    assert f.energy_kJ(-0.4, 0.0) == pytest.approx(0.5 * 5000 * 0.2**2)


# ---------------------------------------------------------------------------------------------
# accessible volume: quadrature against closed forms and Monte Carlo


def test_hard_wall_volume_quadrature_matches_the_closed_forms():
    # the whole funnel: a cone frustum (z -0.2..0.5, radii 0.504..0.1) plus a cylinder
    r1 = 0.1 + 0.7 * math.tan(math.radians(30))
    frustum = math.pi * 0.7 * (r1 * r1 + r1 * 0.1 + 0.01) / 3.0
    cylinder = math.pi * 0.01 * 0.7
    assert FUNNEL.geometric_volume_nm3() == pytest.approx(frustum + cylinder, rel=1e-12)
    assert FUNNEL.accessible_volume_nm3() == pytest.approx(frustum + cylinder, rel=1e-6)
    # the unbound shell lies in the cylinder (the cone reaches |x| <= 0.54 nm < 0.75):
    # spherical caps of the cylinder, and Limongelli's pi R^2 (HI - LO) for a thin one
    exact = cylinder_shell_volume_nm3(0.1, UNBOUND)
    assert FUNNEL.accessible_volume_nm3(UNBOUND) == pytest.approx(exact, rel=1e-6)
    thin = math.pi * 0.01 * (UNBOUND[1] - UNBOUND[0])
    assert exact == pytest.approx(thin, rel=0.01 * 2)  # O(R^2 / LO^2) = 1.8 %
    assert cylinder_shell_volume_nm3(1e-3, UNBOUND) == pytest.approx(
        math.pi * 1e-6 * 0.35, rel=1e-5)
    # bound + middle + unbound + beyond = everything
    parts = [FUNNEL.accessible_volume_nm3(r) for r in (BOUND, (0.45, 0.75), UNBOUND,
                                                       (1.1, 3.0))]
    assert sum(parts) == pytest.approx(FUNNEL.geometric_volume_nm3(), rel=1e-5)


def test_soft_wall_volume_quadrature_matches_monte_carlo():
    """int exp(-U/kT) d^3x by uniform sampling of a box around the funnel (independent of the
    quadrature's closed-form rho integral): agreement within 4 standard errors."""
    f = Funnel((2,), (0,), (1,), 0.1, 30.0, 0.5, -0.2, 1.2, 300.0)  # soft: wide leakage
    rng = np.random.default_rng(4)
    lo, hi = np.array([-0.8, -0.8, -0.5]), np.array([0.8, 0.8, 1.5])
    n = 1_000_000
    x = lo + (hi - lo) * rng.random((n, 3))
    z, rho = x[:, 2], np.hypot(x[:, 0], x[:, 1])
    w = np.exp(-f.energy_kJ(z, rho) / KT_KJ)
    s = np.linalg.norm(x, axis=1)
    box = float(np.prod(hi - lo))
    for rng_s in (None, BOUND, UNBOUND):
        m = np.ones(n, bool) if rng_s is None else (s >= rng_s[0]) & (s <= rng_s[1])
        v_mc, se = box * (w * m).mean(), box * (w * m).std() / math.sqrt(n)
        v_q = f.accessible_volume_nm3(rng_s, T_K)
        assert abs(v_q - v_mc) < 4 * se, (rng_s, v_q, v_mc, se)
    # soft walls add a skin of ~ area * sqrt(pi kT / 2k) to the hard-wall volume
    assert f.accessible_volume_nm3(None, T_K) > f.geometric_volume_nm3() * 1.2


def test_standard_state_correction_is_limongellis_formula_for_a_stiff_cylinder():
    stiff = Funnel((2,), (0,), (1,), 0.1, 30.0, 0.5, -0.2, 1.2, 1e12)
    corr = stiff.standard_state_correction_kJ(UNBOUND, T_K)
    exact = -KT_KJ * math.log(cylinder_shell_volume_nm3(0.1, UNBOUND) / V0)
    assert corr == pytest.approx(exact, abs=1e-3)  # soft-wall skin: ~1e-4 kJ/mol
    # Limongelli: dG0 = dG - kT ln(pi R_cyl^2 (HI - LO) C0), up to kT * O(R^2/LO^2)
    limongelli = -KT_KJ * math.log(math.pi * 0.1**2 * (UNBOUND[1] - UNBOUND[0]) / V0)
    assert abs(corr - limongelli) < KT_KJ * 0.02
    assert corr > 0  # a cylinder holds far less than 1.66 nm^3: binding looks weaker
    with pytest.raises(ConfigError) as e:
        stiff.standard_state_correction_kJ((1.5, 2.0), T_K)  # beyond z_max
    assert "outside the funnel" in str(e.value)


# ---------------------------------------------------------------------------------------------
# metadynamics inside the funnel


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("funnel")
    return metad.run_metad(_particle_system(), START, "distance:2:0", BOUND, UNBOUND, T_K,
                           30_000, out, seed=3, funnel=FUNNEL, bias_factor=6.0,
                           hill_height_kJ=1.0, hill_width_nm=0.03, pace=100,
                           platform="Reference", n_blocks=2), out


def test_metad_uses_the_funnel_volume_for_the_standard_state(run):
    r, out = run
    v_u = FUNNEL.accessible_volume_nm3(UNBOUND, T_K)
    assert r["unbound_volume_nm3"] == pytest.approx(v_u)
    assert "funnel" in r["unbound_volume_method"] and r["funnel"]["radius_nm"] == 0.1
    corr = -KT_KJ * math.log(v_u / V0) / metad.KJ_PER_KCAL
    assert r["standard_state_correction_kcal_per_mol"] == pytest.approx(corr)
    assert r["delta_G_bind_kcal_per_mol"] == pytest.approx(r["delta_G_kcal_per_mol"] + corr)
    assert json.loads((out / "metad.json").read_text())["settings"]["funnel"]["z_cc_nm"] == 0.5
    assert r["n_basin_transitions"] >= 1


def test_metad_free_particle_in_the_funnel_stays_inside_it(tmp_path):
    """A guard sees every hill's positions: the particle never leaves the funnel by more than
    a few thermal skin depths sqrt(kT/k) = 0.022 nm."""
    seen = []

    def guard(pos, step):
        z, rho = FUNNEL.axial(pos[2][None], pos[0], pos[1])
        seen.append(max(float(rho[0] - FUNNEL.radius_at(z[0])), float(z[0]) - 1.2,
                        -0.2 - float(z[0])))

    metad.run_metad(_particle_system(), START, "distance:2:0", BOUND, UNBOUND, T_K, 4_000,
                    tmp_path, seed=1, funnel=FUNNEL, pace=100, platform="Reference",
                    n_blocks=2, guard=guard)
    assert len(seen) == 40 and max(seen) < 5 * math.sqrt(KT_KJ / 5000.0)


def test_funnel_on_other_groups_gives_no_delta_g_bind(tmp_path):
    system = _particle_system()
    system.addParticle(0.0)
    pos = np.vstack([START, [[0.0, 0.1, 0.0]]])
    other = Funnel((2,), (3,), (1,), 0.1, 30.0, 0.5, -0.2, 1.2, 5000.0)
    r = metad.run_metad(system, pos, "distance:2:0", BOUND, UNBOUND, T_K, 2_000, tmp_path,
                        funnel=other, pace=50, platform="Reference", n_blocks=2)
    assert "delta_G_bind_kcal_per_mol" not in r and "not the CV's groups" in r[
        "standard_state_note"]
    assert math.isfinite(r["delta_G_kcal_per_mol"])


def test_funnel_bad_input_one_line_errors(tmp_path):
    def err(exc_type, fn, *a, **k):
        with pytest.raises(exc_type) as e:
            fn(*a, **k)
        assert "\n" not in str(e.value) and "fix:" in str(e.value)
        return str(e.value)

    assert "funnel" in err(ConfigError, parse_funnel, "2:0", 3, 0.1, 30, 0.5, "-0.2,1.2")
    assert "out of range" in err(ConfigError, parse_funnel, "2:0:5", 3, 0.1, 30, 0.5,
                                 "-0.2,1.2")
    assert "funnel_z_nm" in err(ConfigError, parse_funnel, "2:0:1", 3, 0.1, 30, 0.5, "1.2,-0.2")
    assert "funnel_angle_deg" in err(ConfigError, parse_funnel, "2:0:1", 3, 0.1, 95, 0.5,
                                     "-0.2,1.2")
    assert "funnel_radius_nm" in err(ConfigError, parse_funnel, "2:0:1", 3, 0.0, 30, 0.5,
                                     "-0.2,1.2")
    assert "share atoms" in err(ConfigError, parse_funnel, "2:0:2", 3, 0.1, 30, 0.5,
                                "-0.2,1.2")
    f = parse_funnel("2:0:1", 3, 0.1, 30, 0.5, "-0.2,1.2")
    assert f == Funnel((2,), (0,), (1,), 0.1, 30.0, 0.5, -0.2, 1.2, 5000.0)
    kw = dict(funnel=f, pace=50, platform="Reference", n_blocks=2)
    outside = START.copy()
    outside[2] = [0.5, 0.0, 0.9]  # 0.4 nm off the cylinder's axis
    assert "starts 0.40 nm outside the funnel" in err(
        DataError, metad.run_metad, _particle_system(), outside, "distance:2:0", BOUND,
        UNBOUND, T_K, 2_000, tmp_path, **kw)
    assert "outside the funnel" in err(
        ConfigError, metad.run_metad, _particle_system(), START, "distance:2:0", BOUND,
        (1.5, 1.8), T_K, 2_000, tmp_path, **kw)  # z_max = 1.2: exp(-90) of the wall


# ---------------------------------------------------------------------------------------------
# slow: sampling inside the funnel, and ΔG_bind of a free particle


@pytest.mark.slow
def test_unbiased_md_samples_the_quadrature_distribution():
    """Langevin MD of the free particle under the OpenMM restraint: the fractions of time in
    the bound and unbound CV intervals equal the quadrature's volume fractions within 4
    block standard errors."""
    system = _particle_system()
    system.addForce(FUNNEL.openmm_force(system))
    integ = mm.LangevinMiddleIntegrator(T_K, 1.0, 0.002)
    integ.setRandomNumberSeed(5)
    ctx = mm.Context(system, integ, mm.Platform.getPlatformByName("Reference"))
    ctx.setPositions(START * mm.unit.nanometer)
    ctx.setVelocitiesToTemperature(T_K, 5)
    s = []
    for _ in range(40_000):
        integ.step(10)
        x = ctx.getState(getPositions=True).getPositions(asNumpy=True)
        s.append(np.linalg.norm(x.value_in_unit(mm.unit.nanometer)[2]))
    s = np.asarray(s)
    total = FUNNEL.accessible_volume_nm3(None, T_K)
    for lo, hi in (BOUND, UNBOUND):
        ind = ((s >= lo) & (s <= hi)).astype(float)
        blocks = ind.reshape(20, -1).mean(axis=1)
        se = blocks.std(ddof=1) / math.sqrt(20)
        expect = FUNNEL.accessible_volume_nm3((lo, hi), T_K) / total
        assert abs(ind.mean() - expect) < 4 * se + 1e-3, (lo, hi, ind.mean(), expect, se)


@pytest.mark.slow
def test_free_particle_delta_g_bind_is_minus_kt_ln_vb_over_v0(tmp_path):
    """With nothing binding the particle, K = V_bound and dG_bind = -kT ln(V_b / V0) exactly;
    four walkers of funnel metadynamics recover it (and dG = -kT ln(V_b / V_u)) within 3
    standard errors over walkers plus 0.15 kcal/mol."""
    v_b = FUNNEL.accessible_volume_nm3(BOUND, T_K)
    v_u = FUNNEL.accessible_volume_nm3(UNBOUND, T_K)
    dg_exact = -KT_KJ * math.log(v_b / v_u) / metad.KJ_PER_KCAL
    bind_exact = -KT_KJ * math.log(v_b / V0) / metad.KJ_PER_KCAL
    r = metad.run_walkers(_particle_system(), START, "distance:2:0", BOUND, UNBOUND, T_K,
                          150_000, tmp_path, walkers=4, seed=1, funnel=FUNNEL,
                          bias_factor=6.0, hill_height_kJ=1.0, hill_width_nm=0.03, pace=100,
                          platform="Reference", n_blocks=3)
    err = r["delta_G_err_kcal_per_mol"]
    print(f"funnel metad dG {r['delta_G_kcal_per_mol']:.2f} +- {err:.2f} (exact {dg_exact:.2f})"
          f", dG_bind {r['delta_G_bind_kcal_per_mol']:.2f} (exact {bind_exact:.2f})")
    assert abs(r["delta_G_kcal_per_mol"] - dg_exact) < 3 * err + 0.15
    assert abs(r["delta_G_bind_kcal_per_mol"] - bind_exact) < 3 * err + 0.15
