"""Electrolytes: DeePMD-kit (PyTorch) on EC/DEC + LiPF6, transport and solvation.

Ready (framework-free, any trajectory with a cell):

* :mod:`electrolytes.transport` -- unwrapping, MSD by FFT, D per species with errors,
  Nernst-Einstein and Einstein-Helfand conductivity, Haven ratio, Arrhenius fits and plots;
  :func:`transport_report` is the JSON of ``mlp-electrolytes transport``.
* :mod:`electrolytes.solvation` -- Li-O / Li-F RDFs, first-shell cutoffs, coordination,
  shell compositions (``Li+(EC)3(DEC)1``) and residence times.

The model: :mod:`electrolytes.model` -- the DeePMD-kit adapter (entry point "deepmd"):
deepmd's own PyTorch trainer and freezer, deepmd's ASE calculator, one batched call of the
frozen model for the MD engine, a committee of 4; imported on first use
(``electrolytes.DeepMDAdapter``), so the analyses above load no framework.

Pipeline: :mod:`electrolytes.systems` (packmol cells from compositions),
:mod:`electrolytes.active_learning` (DP-GEN loop on common.active_learning),
:mod:`electrolytes.screening` (the condition grid on common.sweep) and
:mod:`electrolytes.case_study` (``mlp-electrolytes case-study --scale tiny|small|paper``).
"""

from electrolytes.solvation import (
    DEFAULT_MOLECULE_NAMES,
    RDF,
    SolvationResult,
    composition_name,
    continuous_acf,
    first_shell_cutoff,
    plot_rdf,
    rdf,
    residence_time_ps,
    solvation_shells,
)
from electrolytes.transport import (
    ArrheniusFit,
    Conductivity,
    SpeciesDiffusion,
    TransportRun,
    analyse_transport,
    arrhenius_fit,
    msd_direct,
    msd_fft,
    plot_arrhenius,
    plot_msd,
    transport_report,
    unwrap_positions,
)

__all__ = [
    "DEFAULT_MOLECULE_NAMES",
    "RDF",
    "ArrheniusFit",
    "Conductivity",
    "SolvationResult",
    "SpeciesDiffusion",
    "TransportRun",
    "analyse_transport",
    "arrhenius_fit",
    "composition_name",
    "continuous_acf",
    "first_shell_cutoff",
    "msd_direct",
    "msd_fft",
    "plot_arrhenius",
    "plot_msd",
    "plot_rdf",
    "rdf",
    "residence_time_ps",
    "solvation_shells",
    "transport_report",
    "unwrap_positions",
]

_MODEL_NAMES = ("COMMITTEE_SIZE", "DeepMDAdapter", "DeepMDBatched", "DeepMDConfig",
                "train_committee")


def __getattr__(name: str):
    if name in _MODEL_NAMES:
        from electrolytes import model

        return getattr(model, name)
    raise AttributeError(f"module 'electrolytes' has no attribute {name!r}")
