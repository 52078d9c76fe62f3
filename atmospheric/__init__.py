"""Atmospheric chemistry: NequIP on OH + VOC, rate constants by quasi-classical trajectories.

Framework-free rate machinery (this package's first rooms):

* :mod:`atmospheric.qct` -- bimolecular rate constants of capture (barrierless) channels by
  quasi-classical trajectories run as batches in :func:`common.md.runner.run_md`, with
  branching between channels and products identified from the bond graph
  (:mod:`common.events`);
* :mod:`atmospheric.normal_modes` -- quasi-classical internal states: harmonic modes from a
  finite-difference Hessian of the potential, (v + 1/2) hbar omega per mode (v = 0 or
  thermal), random phases, thermal rotation (QCT's ``internal="qc-zpe"``/``"qc-thermal"``);
* :mod:`atmospheric.kinetics` -- Arrhenius / modified Arrhenius fits of k(T), branching
  against T, Arrhenius plots and a KPP/MCM mechanism file.

The model: :mod:`atmospheric.model` -- the NequIP adapter (entry point "nequip"): nequip's own
Hydra-configured trainer, eager and aotinductor-compiled inference, its ASE calculator, a
batched module for the engine; imported on first use (``atmospheric.NequIPAdapter``).

* :mod:`atmospheric.tps` -- rate constants of steps with a barrier by transition interface
  sampling (flux x crossing probabilities, two-way shooting batched in the engine);
* :mod:`atmospheric.systems` -- OH and VOCs from SMILES (RDKit), channels, training frames
  labelled with GFN2-xTB; :mod:`atmospheric.case_study` -- the seed's case study, tiny/paper.
"""

from atmospheric.kinetics import (
    ArrheniusFit,
    branching_vs_temperature,
    export_kinetics,
    fit_arrhenius,
    fit_channels,
    kpp_species,
    mechanism_lines,
    plot_arrhenius,
)
from atmospheric.normal_modes import NormalModes, sample_normal_mode_states
from atmospheric.qct import (
    Criterion,
    QCTStop,
    mean_relative_speed_m_per_s,
    parse_criteria,
    parse_criterion,
    random_rotations,
    reduced_mass_amu,
    run_qct,
    sample_internal_states,
)
from atmospheric.tps import OrderParameter, TISMonitor, order_parameter, run_tis

__all__ = [
    "ArrheniusFit",
    "OrderParameter",
    "TISMonitor",
    "Criterion",
    "QCTStop",
    "branching_vs_temperature",
    "export_kinetics",
    "fit_arrhenius",
    "fit_channels",
    "kpp_species",
    "mean_relative_speed_m_per_s",
    "mechanism_lines",
    "NormalModes",
    "parse_criteria",
    "parse_criterion",
    "plot_arrhenius",
    "order_parameter",
    "random_rotations",
    "reduced_mass_amu",
    "run_qct",
    "run_tis",
    "sample_internal_states",
    "sample_normal_mode_states",
]

_MODEL_NAMES = ("NequIPAdapter", "NequIPBatched", "NequIPConfig", "train_committee")


def __getattr__(name: str):
    if name in _MODEL_NAMES:
        from atmospheric import model

        return getattr(model, name)
    raise AttributeError(f"module 'atmospheric' has no attribute {name!r}")
