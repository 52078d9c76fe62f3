"""Drug binding: TorchANI (ANI-2x) + OpenMM ML/MM metadynamics -- placeholder until its issue.

Registry name "ani" -> drug_binding.model:ANIAdapter; bias potentials plug into common.md as
extra force terms.
"""
