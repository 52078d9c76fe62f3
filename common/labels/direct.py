"""Label one structure now, in this process, with no database: for small scripts and tests.

For many structures, resumable and in parallel, use :func:`common.labels.label_structures`.
"""

from __future__ import annotations

from typing import Any

from ase import Atoms


def label_now(atoms: Atoms, calculator: Any) -> Atoms:
    """Label ``atoms`` now: return a copy carrying the labels on a SinglePointCalculator.

    The labels are energy (eV), forces (eV/Å) and, for a fully periodic cell when the calculator
    gives it, stress (eV/Å³).

    ``calculator``: an ASE calculator instance, a preset name (``"emt"``, ``"xtb"``, ...) or a
    :class:`~common.labels.LabellerSpec`.
    """
    from ase.calculators.calculator import PropertyNotImplementedError
    from ase.calculators.singlepoint import SinglePointCalculator

    if isinstance(calculator, str) or type(calculator).__name__ == "LabellerSpec":
        from common.labels.calculators import make_calculator

        calculator = make_calculator(calculator, atoms)
    work = atoms.copy()
    work.calc = calculator
    results = {"energy": work.get_potential_energy(), "forces": work.get_forces()}
    if atoms.pbc.all():
        try:
            results["stress"] = work.get_stress()
        except PropertyNotImplementedError:
            pass
    out = atoms.copy()
    out.calc = SinglePointCalculator(out, **results)
    return out
