"""Atmospheric chemistry: NequIP on OH + VOC, rate constants by quasi-classical trajectories.

Framework-free rate machinery (this package's first rooms):

* :mod:`atmospheric.qct` -- bimolecular rate constants of capture (barrierless) channels by
  quasi-classical trajectories run as batches in :func:`common.md.runner.run_md`, with
  branching between channels and products identified from the bond graph
  (:mod:`common.events`);
* :mod:`atmospheric.kinetics` -- Arrhenius / modified Arrhenius fits of k(T), branching
  against T, Arrhenius plots and a KPP/MCM mechanism file.

Registry name "nequip" -> atmospheric.model:NequIPAdapter (to come); transition path sampling
uses common.md stop conditions; products are identified with common.events.
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

__all__ = [
    "ArrheniusFit",
    "Criterion",
    "QCTStop",
    "branching_vs_temperature",
    "export_kinetics",
    "fit_arrhenius",
    "fit_channels",
    "kpp_species",
    "mean_relative_speed_m_per_s",
    "mechanism_lines",
    "parse_criteria",
    "parse_criterion",
    "plot_arrhenius",
    "random_rotations",
    "reduced_mass_amu",
    "run_qct",
    "sample_internal_states",
]
