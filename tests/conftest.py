"""Shared pytest setup.

Tests are collected with --import-mode=importlib and have no ``tests`` package, so the top-level
``tests`` package that mace-torch installs into site-packages can never shadow them.
"""

from __future__ import annotations

import os

import pytest

# one thread per test process: CI has 2 cores, and oversubscription makes torch 10x slower
os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slurm: needs a single-node SLURM (scripts/slurm_single_node.sh); skipped "
                   "with the reason where it cannot be started")


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    skip_gpu = pytest.mark.skip(reason="needs CUDA (marked gpu)")
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)
