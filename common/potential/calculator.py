"""An ASE calculator for any BatchedPotential (one structure at a time)."""

from __future__ import annotations

from ase.calculators.calculator import Calculator, all_changes


class BatchedPotentialCalculator(Calculator):
    """An ASE calculator on a :class:`~common.potential.protocol.BatchedPotential`.

    With it every model in the suite can run under ASE (optimisers, NEB, ASE MD). Elements
    outside the potential's ``elements`` are refused with a DataError.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress", "energies"]

    def __init__(self, potential, device: str = "cpu", dtype=None, **kwargs):
        super().__init__(**kwargs)
        self.potential, self.device, self.dtype = potential, device, dtype

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        """Evaluate the potential on ``atoms`` as a batch of one."""
        from common.potential.protocol import check_elements, evaluate

        super().calculate(atoms, properties, system_changes)
        if getattr(self.potential, "elements", None) is not None:
            check_elements(self.atoms.numbers, self.potential.elements,
                           structure=f"structure {self.atoms.get_chemical_formula()}")
        out = evaluate(self.potential, [self.atoms], device=self.device, dtype=self.dtype)
        e = float(out["energy"][0])
        self.results = {"energy": e, "free_energy": e,
                        "forces": out["forces"].detach().cpu().numpy()}
        if "energies" in out:
            self.results["energies"] = out["energies"].detach().cpu().numpy()
        if "stress" in out and self.atoms.pbc.any() and self.atoms.cell.rank == 3:
            from ase.stress import full_3x3_to_voigt_6_stress

            self.results["stress"] = full_3x3_to_voigt_6_stress(
                out["stress"][0].detach().cpu().numpy())
