"""Potentials for the batched engine and the model contract every framework adapter meets.

* :class:`BatchedPotential` -- energy, forces (and stress) of many systems in one call;
  :func:`evaluate` runs one on ASE structures.
* :class:`ModelAdapter` -- a trained model of a framework (SchNet, DeePMD, ANI, MACE, NequIP):
  ``train``, ``load``, ``save``, its own ASE ``calculator()``, ``batched()`` for the engine.
  Adapters are plug-ins (entry-point group ``mlp_cases.adapters``): :func:`get_adapter`,
  :func:`load_saved` (any model or committee folder), :func:`make_potential` (a name, a folder
  or ``module:Class``).
* :class:`Committee` and :func:`train_committee` -- a committee of models and its force
  deviation, for active learning.
* Analytic pair potentials (:class:`LennardJones`, :class:`Morse`), :class:`AutogradPotential`
  (any energy function, forces and stress by autograd) and
  :class:`BatchedPotentialCalculator` (any BatchedPotential as an ASE calculator).

>>> from common.potential import load_saved, evaluate          # doctest: +SKIP
>>> pot = load_saved("runs/my_model")   # a model or committee folder written by train
>>> out = evaluate(pot, frames)        # {"energy": (n,), "forces": (n_atoms, 3), ...}

Names are imported on first use, so ``import common.potential`` loads no framework.
"""

from __future__ import annotations

from common.lazy import lazy_exports

_EXPORTS = {
    "BatchedPotential": "common.potential.protocol",
    "ModelAdapter": "common.potential.protocol",
    "ModelMeta": "common.potential.protocol",
    "ErrorMetrics": "common.potential.protocol",
    "evaluate": "common.potential.protocol",
    "check_elements": "common.potential.protocol",
    "get_adapter": "common.potential.registry",
    "load_saved": "common.potential.registry",
    "make_potential": "common.potential.registry",
    "names": "common.potential.registry",
    "Committee": "common.potential.committee",
    "train_committee": "common.potential.committee",
    "load_committee_folder": "common.potential.committee",
    "committee_members": "common.potential.committee",
    "force_deviation": "common.potential.committee",
    "PairPotential": "common.potential.pair",
    "LennardJones": "common.potential.pair",
    "Morse": "common.potential.pair",
    "AutogradPotential": "common.potential.stress",
    "energy_forces_stress": "common.potential.stress",
    "BatchedPotentialCalculator": "common.potential.calculator",
    "AnalyticAdapter": "common.potential.analytic",
    "read_model_meta": "common.potential.model_folder",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports("common.potential", _EXPORTS, globals())
