"""drug_binding.mlmm: the ML/MM System's energy and forces are, piece by piece, ANI's own for
the ligand plus OpenMM's MM for everything else; pure-ML mode; XML round trip."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.units import kJ, mol

from common.errors import DataError

pytest.importorskip("rdkit")
pytest.importorskip("openmmml")
mm = pytest.importorskip("openmm")

from openmm import unit  # noqa: E402

from drug_binding import mlmm  # noqa: E402
from drug_binding import prepare as P  # noqa: E402
from drug_binding.model import ANIAdapter  # noqa: E402

KJ_MOL = kJ / mol  # eV per kJ/mol
KJ_MOL_NM = KJ_MOL / 10.0  # eV/Å per kJ/mol/nm


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mlmm")
    pep = P.build_peptide("TRP", tmp / "pep.pdb")
    xyz = P._pdb_xyz_A(pep)
    lig = P.place_ligand(P.ligand_from_smiles("NC(=O)c1ccccc1", seed=0),
                         xyz.mean(0) + [9.0, 0, 0], xyz, seed=1)
    params = P.parametrize_ligand(lig, tmp / "lig", charge_method="gas")
    cx = P.assemble_complex(pep, params, tmp / "cx", solvent="gbn2")
    alone = P.assemble_complex(None, params, tmp / "alone", solvent="vacuum")
    model = ANIAdapter.untrained(tmp / "ani", "tiny", seed=2, elements=["H", "C", "N", "O"])
    return {"cx": cx, "alone": alone, "model": model, "tmp": tmp}


def _eval(system, pos_nm):
    ctx = mm.Context(system, mm.VerletIntegrator(0.001),
                     mm.Platform.getPlatformByName("Reference"))
    ctx.setPositions(pos_nm * unit.nanometer)
    st = ctx.getState(getEnergy=True, getForces=True)
    return (st.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole),
            st.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer))


def _ani(model, numbers, pos_nm):
    atoms = Atoms(numbers=numbers, positions=pos_nm * 10.0)
    atoms.calc = model.calculator()  # torchani's own ASE calculator
    return atoms.get_potential_energy() / KJ_MOL, atoms.get_forces() / KJ_MOL_NM


def test_mlmm_energy_and_forces_by_pieces(setup):
    cx, model = setup["cx"], setup["model"]
    system, top, pos = P.create_system(cx, constraints=None)
    lig = np.array(cx.ligand_atoms)
    rng = np.random.default_rng(0)
    mixed = mlmm.mlmm_system(system, top, lig, model.path)
    numbers = [a.element.atomic_number for a in top.atoms()]
    lsys, _, _ = P.create_system(setup["alone"], constraints=None)
    for trial in range(3):  # the prepared pose and two distorted ones
        x = pos + (rng.normal(0, 0.005, pos.shape) if trial else 0.0)
        e, f = _eval(mixed, x)
        e_mm, f_mm = _eval(system, x)  # full MM complex in GBn2
        e_in, f_in = _eval(lsys, x[lig])  # MM ligand alone in vacuum = its internal terms
        e_ani, f_ani = _ani(model, [numbers[i] for i in lig], x[lig])
        want_e = e_mm - e_in + e_ani
        want_f = f_mm.copy()
        want_f[lig] += f_ani - f_in
        assert abs(e - want_e) < 1e-6 * max(1.0, abs(e_mm))
        np.testing.assert_allclose(f, want_f, atol=1e-5 * np.abs(want_f).max())
        assert abs(e_ani) > 1.0 and np.abs(f_ani).max() > 1.0  # the ANI piece is not empty


def test_pure_ml_ligand_and_xml_round_trip(setup):
    from openmm.app import AmberPrmtopFile

    alone, model = setup["alone"], setup["model"]
    _, _, pos = P.create_system(alone, constraints=None)
    top = AmberPrmtopFile(alone.prmtop).topology
    system = mlmm.ml_system(top, model.path)
    assert [type(f).__name__ for f in system.getForces()] == ["PythonForce", "CMMotionRemover"]
    e, f = _eval(system, pos)
    e_ani, f_ani = _ani(model, [a.element.atomic_number for a in top.atoms()], pos)
    assert abs(e - e_ani) < 1e-8 * max(1.0, abs(e_ani))
    np.testing.assert_allclose(f, f_ani, rtol=1e-8, atol=1e-8)
    back = mm.XmlSerializer.deserialize(mm.XmlSerializer.serialize(system))
    e2, f2 = _eval(back, pos)
    assert e2 == e and np.array_equal(f2, f)


def test_unknown_elements_and_bad_indices_refused(setup, tmp_path):
    cx = setup["cx"]
    system, top, _ = P.create_system(cx, constraints=None)
    ch = ANIAdapter.untrained(tmp_path / "ch", "tiny", elements=["H", "C"])
    with pytest.raises(DataError, match="element.* N, O .*not know"):
        mlmm.mlmm_system(system, top, cx.ligand_atoms, ch.path)
    with pytest.raises(DataError, match="ML atom indices"):
        mlmm.mlmm_system(system, top, [system.getNumParticles()], setup["model"].path)



def test_start_minimised_on_mm_lowers_the_mm_energy_and_skips_the_ml_surface(setup):
    from common.errors import ConfigError

    system, top, pos = P.create_system(setup["cx"])
    mixed = mlmm.mlmm_system(system, top, setup["cx"].ligand_atoms, setup["model"].path)
    sim = mlmm.simulation(mixed, top, pos)
    gas = mm.XmlSerializer.clone(system)  # the MM System less its GBn2 term
    gb = [k for k in range(gas.getNumForces()) if isinstance(gas.getForce(k), mm.CustomGBForce)]
    assert len(gb) == 1
    gas.removeForce(gb[0])
    ref = mm.Context(gas, mm.VerletIntegrator(0.001), mm.Platform.getPlatformByName("CPU"),
                     {"Threads": "1"})

    def e_mm(x):
        ref.setPositions(x)
        return ref.getState(getEnergy=True).getPotentialEnergy().value_in_unit(
            unit.kilojoule_per_mole)

    e0 = e_mm(pos)
    mlmm.relax_start(sim, system, 100, on="mm")
    x = sim.context.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(
        unit.nanometer)
    assert np.all(np.isfinite(x)) and e_mm(x) < e0 - 1.0  # kJ/mol: relaxed on the MM surface
    # the same minimum as minimising the gas-phase MM System alone (ML/MM never entered)
    ref.setPositions(pos)
    mm.LocalEnergyMinimizer.minimize(ref, 10.0, 100)
    alone = ref.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(
        unit.nanometer)
    np.testing.assert_allclose(x, alone, atol=1e-6)
    with pytest.raises(ConfigError, match="start minimisation on 'qm'"):
        mlmm.relax_start(sim, system, 10, on="qm")
