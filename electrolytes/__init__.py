"""Electrolytes: DeePMD-kit (PyTorch) on EC/DEC + LiPF6 -- placeholder until its issue lands.

The shared layer it will use is ready: common.labels, common.data (deepmd/npy export via
dpdata), common.potential (registry name "deepmd" -> electrolytes.model:DeepMDAdapter),
common.active_learning, common.md, common.sweep.
"""
