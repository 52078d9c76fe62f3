"""Drug binding: TorchANI (ANI-2x) + OpenMM ML/MM metadynamics, and the analyses around it.

Framework-free analyses (importable without torch or OpenMM):

* :mod:`drug_binding.validation` -- predicted vs experimental binding ΔG (Kd / IC50 /
  Cheng-Prusoff conversion, R², RMSE, MAE, Kendall τ with bootstrap intervals, parity plot,
  the JACS 2015 benchmark sets shipped with openmmforcefields).
* :mod:`drug_binding.metad` -- well-tempered metadynamics with OpenMM's ``Metadynamics`` on
  any OpenMM System (centre-of-mass distance CVs between atom groups), free-energy profile,
  ΔG between basins with block errors, ΔG_bind with the standard-state correction, PLUMED-style
  HILLS/COLVAR, independent walkers (``run_walkers``, ``combine_walkers``) (OpenMM is imported
  only when a function needs it).
* :mod:`drug_binding.funnel` -- the funnel restraint of funnel metadynamics (``Funnel``,
  ``parse_funnel``): cone + cylinder around a pocket axis, its accessible volume by quadrature
  and the standard-state correction it implies.
* :mod:`drug_binding.folding` -- folding/unfolding events of a small protein from the fraction
  of native contacts Q or the Kabsch RMSD, with hysteresis, persistence and mean first-passage
  times.

The model: :mod:`drug_binding.model` -- the TorchANI adapter (entry point "ani"): torchani's
own ANI architecture trained on our labels, or the pretrained ANI-2x from a local state dict
(never downloaded); imported on first use (``drug_binding.ANIAdapter``), so the analyses above
load no torch.

The pipeline, also imported on first use (``drug_binding.ligand_from_smiles`` loads RDKit only
then):

* :mod:`drug_binding.prepare` -- ligands from SMILES/SDF/MOL2 (RDKit), GAFF2/AM1-BCC by
  AmberTools, receptors through pdbfixer or tleap-built peptides, complexes in GBn2/TIP3P/vacuum
  (``prepare_complex``, ``ligand_from_smiles``, ``load_ligand``, ``parametrize_ligand``,
  ``fix_receptor``, ``build_peptide``, ``assemble_complex``, ``create_system``, ``Complex``).
* :mod:`drug_binding.mlmm` -- ML/MM OpenMM Systems with our ANI through openmmml + PythonForce
  (``mlmm_system``, ``ml_system``, ``simulation``, ``register_ani_potential``).
* :mod:`drug_binding.screening` -- binding-stability screening on common.sweep (``screen``,
  ``screen_md``, ``rank_ligands``).
* :mod:`drug_binding.case_study` -- ``mlp-drug-binding case-study`` (``run_case_study``,
  ``load_case_config``, ``metad_walker``).
"""

from drug_binding.folding import (
    FoldingResult,
    NativeContacts,
    analyse_folding,
    fold_trajectory,
    folding_states,
    fraction_native_contacts,
    kabsch_rmsd_A,
    native_contacts,
    plot_folding,
    residue_ids_from_pdb,
)
from drug_binding.funnel import Funnel, cylinder_shell_volume_nm3, parse_funnel
from drug_binding.metad import (
    STANDARD_VOLUME_NM3,
    CVSpec,
    basin_free_energy_kJ,
    basin_transitions,
    combine_walkers,
    cv_value_nm,
    delta_g_kJ,
    load_openmm_inputs,
    parse_cv,
    parse_range_nm,
    plot_convergence,
    plot_profile,
    plot_walkers,
    run_metad,
    run_walkers,
    shell_volume_nm3,
    standard_state_correction_kJ,
)
from drug_binding.validation import (
    benchmark_files,
    benchmark_set,
    benchmark_sets,
    bootstrap_ci,
    cheng_prusoff_ki_nM,
    kd_to_dg_kcal_per_mol,
    metrics,
    plot_validation,
    validate_table,
)

__all__ = [
    "STANDARD_VOLUME_NM3",
    "CVSpec",
    "basin_free_energy_kJ",
    "basin_transitions",
    "combine_walkers",
    "cv_value_nm",
    "delta_g_kJ",
    "load_openmm_inputs",
    "parse_cv",
    "parse_range_nm",
    "plot_convergence",
    "plot_profile",
    "plot_walkers",
    "run_metad",
    "run_walkers",
    "shell_volume_nm3",
    "standard_state_correction_kJ",
    "Funnel",
    "cylinder_shell_volume_nm3",
    "parse_funnel",
    "FoldingResult",
    "NativeContacts",
    "analyse_folding",
    "benchmark_files",
    "benchmark_set",
    "benchmark_sets",
    "bootstrap_ci",
    "cheng_prusoff_ki_nM",
    "fold_trajectory",
    "folding_states",
    "fraction_native_contacts",
    "kabsch_rmsd_A",
    "kd_to_dg_kcal_per_mol",
    "metrics",
    "native_contacts",
    "plot_folding",
    "plot_validation",
    "residue_ids_from_pdb",
    "validate_table",
]

#: names imported on first use: ``{public name: (module, attribute)}``
_LAZY = {
    **{n: ("model", n) for n in ("ANI2X_ELEMENTS", "ANIAdapter", "ANIBatched", "ANIConfig",
                                 "build_model", "fit_self_energies", "load_config",
                                 "pretrained_path")},
    # the function prepare.prepare is exported as prepare_complex: "prepare" is the submodule
    "prepare_complex": ("prepare", "prepare"),
    **{n: ("prepare", n) for n in ("ANI_ELEMENTS", "Complex", "LigandParams",
                                   "assemble_complex", "build_peptide", "check_ligand",
                                   "create_system", "fix_receptor", "host_from_file",
                                   "ligand_from_file",
                                   "ligand_from_smiles", "load_ligand", "parametrize_ligand",
                                   "place_ligand")},
    **{n: ("mlmm", n) for n in ("ANICompute", "POTENTIAL_NAME", "ml_system", "mlmm_system",
                                "relax_start", "simulation")},
    "register_ani_potential": ("mlmm", "register"),
    "screen": ("screening", "screen"),
    "screen_md": ("screening", "run_md"),
    "rank_ligands": ("screening", "rank"),
    "plot_screening": ("screening", "plot_screening"),
    "run_case_study": ("case_study", "run"),
    "load_case_config": ("case_study", "load_case_config"),
    "metad_walker": ("case_study", "metad_walker"),
}
__all__ += sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(f"drug_binding.{module}"), attr)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'drug_binding' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
