"""Drug binding: TorchANI (ANI-2x) + OpenMM ML/MM metadynamics, and the analyses around it.

Framework-free analyses (importable without torch or OpenMM):

* :mod:`drug_binding.validation` -- predicted vs experimental binding ΔG (Kd / IC50 /
  Cheng-Prusoff conversion, R², RMSE, MAE, Kendall τ with bootstrap intervals, parity plot,
  the JACS 2015 benchmark sets shipped with openmmforcefields).
* :mod:`drug_binding.metad` -- well-tempered metadynamics with OpenMM's ``Metadynamics`` on
  any OpenMM System (centre-of-mass distance CVs between atom groups), free-energy profile,
  ΔG between basins with block errors, ΔG_bind with the standard-state correction, PLUMED-style
  HILLS/COLVAR (OpenMM is imported only when a function needs it).
* :mod:`drug_binding.folding` -- folding/unfolding events of a small protein from the fraction
  of native contacts Q or the Kabsch RMSD, with hysteresis, persistence and mean first-passage
  times.

The model: :mod:`drug_binding.model` -- the TorchANI adapter (entry point "ani"): torchani's
own ANI architecture trained on our labels, or the pretrained ANI-2x from a local state dict
(never downloaded); imported on first use (``drug_binding.ANIAdapter``), so the analyses above
load no torch.
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
from drug_binding.metad import (
    STANDARD_VOLUME_NM3,
    CVSpec,
    basin_free_energy_kJ,
    cv_value_nm,
    delta_g_kJ,
    load_openmm_inputs,
    parse_cv,
    parse_range_nm,
    plot_convergence,
    plot_profile,
    run_metad,
    shell_volume_nm3,
    standard_state_correction_kJ,
)
from drug_binding.validation import (
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
    "cv_value_nm",
    "delta_g_kJ",
    "load_openmm_inputs",
    "parse_cv",
    "parse_range_nm",
    "plot_convergence",
    "plot_profile",
    "run_metad",
    "shell_volume_nm3",
    "standard_state_correction_kJ",
    "FoldingResult",
    "NativeContacts",
    "analyse_folding",
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

_MODEL_NAMES = ("ANI2X_ELEMENTS", "ANIAdapter", "ANIBatched", "ANIConfig", "build_model",
                "fit_self_energies", "load_config", "pretrained_path")


def __getattr__(name: str):
    if name in _MODEL_NAMES:
        from drug_binding import model

        return getattr(model, name)
    raise AttributeError(f"module 'drug_binding' has no attribute {name!r}")
