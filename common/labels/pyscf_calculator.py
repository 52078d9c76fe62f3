"""A small ASE calculator around PySCF: HF or Kohn-Sham DFT energy and analytic forces.

Molecules only (no periodic cell). Closed shells use RHF/RKS, open shells (``spin > 0``)
UHF/UKS. Energies in eV, forces in eV/Å (converted from Hartree and Hartree/Bohr with
``ase.units``). PySCF is imported when a calculation runs, never at module import.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import CalculationFailed, Calculator, all_changes
from ase.units import Bohr, Hartree

from common.errors import ConfigError, MlpCasesError

__all__ = ["PySCFCalculator", "SCFNotConverged"]


class SCFNotConverged(MlpCasesError, CalculationFailed):
    """The SCF did not reach ``conv_tol`` within ``max_cycle`` iterations."""


class PySCFCalculator(Calculator):
    """HF/DFT energies and forces from PySCF.

    The calculator parameters are keywords of the constructor, ASE style (defaults in
    ``default_parameters``):

    - ``method`` (str): ``"hf"`` (RHF/UHF) or a libxc functional name (``"pbe"``,
      ``"b3lyp"``, ...).
    - ``basis`` (str): basis set name known to PySCF (``"def2-svp"``, ``"sto-3g"``,
      ``"cc-pvdz"``, ...).
    - ``charge`` (int): total charge (e).
    - ``spin`` (int): number of unpaired electrons, ``2S = multiplicity - 1``.
    - ``max_cycle`` (int): SCF iteration limit.
    - ``conv_tol`` (float): SCF energy convergence threshold (Hartree).
    - ``grid_level`` (int): DFT integration grid level (PySCF's 0-9).
    """

    implemented_properties = ["energy", "free_energy", "forces"]
    default_parameters: dict[str, Any] = {
        "method": "pbe",
        "basis": "def2-svp",
        "charge": 0,
        "spin": 0,
        "max_cycle": 100,
        "conv_tol": 1e-9,
        "grid_level": 3,
    }

    def calculate(
        self,
        atoms: Atoms | None = None,
        properties: Any = ("energy",),
        system_changes: Any = all_changes,
    ) -> None:
        """Compute energy and forces of ``atoms`` with PySCF (molecules only)."""
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        if atoms.pbc.any():
            raise ConfigError(
                "PySCFCalculator labels molecules only; the structure is "
                f"periodic (pbc={atoms.pbc.tolist()})",
                where="pyscf",
                fix="use --calc xtb for periodic cells, or set pbc=False",
            )
        from pyscf import dft, gto, scf

        p = self.parameters
        spin = int(p.spin or 0)
        mol = gto.M(
            atom=[
                (s, tuple(xyz))
                for s, xyz in zip(
                    atoms.get_chemical_symbols(), atoms.positions.tolist(), strict=True
                )
            ],
            unit="Angstrom",
            basis=p.basis,
            charge=int(p.charge or 0),
            spin=spin,
            verbose=0,
        )
        method = str(p.method).lower()
        if method in ("hf", "rhf", "uhf"):
            mf = scf.UHF(mol) if spin or method == "uhf" else scf.RHF(mol)
        else:
            mf = dft.UKS(mol) if spin else dft.RKS(mol)
            mf.xc = method
            mf.grids.level = int(p.grid_level)
        mf.max_cycle = int(p.max_cycle)
        mf.conv_tol = float(p.conv_tol)
        mf.verbose = 0
        energy = mf.kernel()
        if not mf.converged:
            raise SCFNotConverged(
                f"PySCF {method}/{p.basis} SCF not converged in {mf.max_cycle} cycles",
                fix="raise max_cycle, check the geometry (atoms too close?), charge and "
                "multiplicity, or use a smaller basis",
            )
        grad = mf.nuc_grad_method()
        grad.verbose = 0
        gradient = np.asarray(grad.kernel())  # Hartree/Bohr
        self.results["energy"] = float(energy) * Hartree
        self.results["free_energy"] = self.results["energy"]
        self.results["forces"] = -gradient * Hartree / Bohr
