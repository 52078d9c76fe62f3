"""Catalysis: SchNet (schnetpack) MD of CO2 reduction on Cu(111) and reaction-event analysis.

The common tasks read from the package itself; names are imported on first use, so
``import catalysis`` loads no framework:

>>> import catalysis
>>> slab = catalysis.place(catalysis.cu111_slab((4, 6, 4)), "CO", site="top")
>>> events = catalysis.analyze_frames([slab] * 20, dt_fs=10.0)       # species, events, pathways

Rooms: ``model`` (the SchNet adapter), ``systems`` (slabs, adsorbates, sampling), ``events``
(pathways, lifetimes), ``barriers`` (CI-NEB), ``fidelity`` (MLP-MD vs reference MD),
``case_study`` (the seed workflow), ``seed`` (the seed's published facts), ``cli``.
"""

from __future__ import annotations

from common.lazy import lazy_exports

#: public name -> the module that defines it
_EXPORTS = {
    "cu111_slab": "catalysis.systems",
    "place": "catalysis.systems",
    "place_many": "catalysis.systems",
    "sites": "catalysis.systems",
    "water_layer": "catalysis.systems",
    "sample_configurations": "catalysis.systems",
    "seed_library": "catalysis.systems",
    "energy_window": "catalysis.systems",
    "ADSORBATES": "catalysis.systems",
    "analyze_frames": "catalysis.events",
    "analyze_trajectories": "catalysis.events",
    "EventAnalysis": "catalysis.events",
    "neb_barrier": "catalysis.barriers",
    "event_barriers": "catalysis.barriers",
    "SchNetAdapter": "catalysis.model",
    "load_config": "catalysis.model",
    "run_fidelity": "catalysis.fidelity",
    "compare_event_sets": "catalysis.fidelity",
    "run_case_study": "catalysis.case_study",
    "SEED_RESULTS": "catalysis.seed",
}

__all__ = sorted(_EXPORTS)

_getattr, __dir__ = lazy_exports("catalysis", _EXPORTS, globals())


def __getattr__(name: str):
    """Import a public name on first use (``run_case_study`` is ``case_study.run``)."""
    if name == "run_case_study":
        from catalysis.case_study import run

        globals()[name] = run
        return run
    return _getattr(name)
