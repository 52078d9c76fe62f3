"""Potentials by name, by saved-model folder, or by import path.

* ``lj``, ``morse``: the analytic pair potentials of :mod:`common.potential.pair`.
* Framework adapters are plug-ins: each distribution that provides one declares it as an entry
  point in the group ``mlp_cases.adapters`` (``name = "package.module:AdapterClass"``), as ASE
  and pytest find their plug-ins. This module reads the group and names no package itself; an
  adapter is imported only when asked for, so ``import common`` never imports a framework.
* ``package.module:Class``: a user's own :class:`BatchedPotential` subclass, built with the
  ``--param`` values as keyword arguments.
* A folder written by a ``train`` command (``mlp-cases-model.json`` names its framework).
"""

from __future__ import annotations

import importlib
import inspect
import json
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from common.errors import ConfigError

#: the entry-point group adapters register under
GROUP = "mlp_cases.adapters"

#: analytic potentials: name -> "module:class"
ANALYTIC: dict[str, str] = {
    "lj": "common.potential.pair:LennardJones",
    "morse": "common.potential.pair:Morse",
}

#: what every ``--potential`` error suggests
_FIX = ("use lj, morse, an adapter name ({names}), a saved model folder, or "
        "package.module:Class for your own BatchedPotential subclass")


def adapter_entry_points() -> dict[str, str]:
    """Installed adapters: name -> "module:attribute", from the ``mlp_cases.adapters`` group."""
    return {ep.name: ep.value for ep in entry_points(group=GROUP)}


def names() -> list[str]:
    """Return the potential names: the analytic ones and the installed adapters."""
    return sorted(ANALYTIC) + sorted(adapter_entry_points())


def _fix() -> str:
    return _FIX.format(names=", ".join(sorted(adapter_entry_points())) or "none installed")


def _import(target: str, where: str = "--potential") -> Any:
    module, _, attr = target.partition(":")
    try:
        obj = importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(f"cannot import {module!r} ({exc})", where=where,
                          fix="check the module path and that its package is installed in this "
                              "environment") from exc
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError(f"{module!r} has no attribute {attr!r}", where=where,
                              fix="check the name after the colon (module:Class)")
        obj = getattr(obj, part)
    return obj


def get_adapter(name: str):
    """Return the adapter class registered under ``name`` (imports its framework)."""
    eps = adapter_entry_points()
    if name not in eps:
        raise ConfigError(f"no adapter named {name!r} is installed", where="--potential",
                          fix=_fix())
    try:
        return _import(eps[name])
    except ConfigError as exc:
        raise ConfigError(f"the {name} adapter does not load: {exc.what}", where="--potential",
                          fix="run `mlp-cases doctor` to see what is missing") from exc


def make_potential(name: str, params: dict[str, Any] | None = None, device: str = "cpu"):
    """Make a BatchedPotential from a name, the path of a saved model, or a class.

    A name is ``lj``, ``morse`` or an adapter name with ``params['path']``; a class is given as
    ``package.module:Class``.
    """
    params = dict(params or {})
    if name in ANALYTIC:
        return _construct(_import(ANALYTIC[name]), params, name)
    if name in adapter_entry_points():
        if "path" not in params:
            raise ConfigError(f"{name} needs a trained model", where="--potential",
                              fix="pass the folder of a saved model as --potential FOLDER")
        return get_adapter(name).load(Path(params["path"]), device=device).batched()
    if Path(name).exists():
        return load_saved(Path(name), device=device)
    if ":" in name and not Path(name).anchor:
        return user_potential(name, params)
    raise ConfigError(f"unknown potential {name!r} (not a name, no such folder, not "
                      "module:Class)", where="--potential", fix=_fix())


def user_potential(target: str, params: dict[str, Any] | None = None):
    """Instantiate a user's :class:`BatchedPotential` subclass from ``package.module:Class``."""
    from common.potential.protocol import BatchedPotential

    cls = _import(target)
    if not (inspect.isclass(cls) and issubclass(cls, BatchedPotential)):
        raise ConfigError(f"{target} is not a BatchedPotential subclass "
                          f"(it is {type(cls).__name__} {getattr(cls, '__name__', '')!s})",
                          where="--potential",
                          fix="point at a class deriving common.potential.BatchedPotential")
    return _construct(cls, dict(params or {}), target)


def _construct(cls, params: dict[str, Any], label: str):
    try:
        return cls(**params)
    except TypeError as exc:
        raise ConfigError(f"bad parameters for {label}: {exc}", where="--param",
                          fix=f"valid parameters: {_signature(cls) or 'none'}") from exc


def load_saved(path: Path, device: str = "cpu"):
    """Load a model saved by an adapter.

    Its folder holds ``mlp-cases-model.json`` naming the framework.
    """
    meta = path / "mlp-cases-model.json" if path.is_dir() else path.with_suffix(".json")
    if not meta.exists():
        raise ConfigError("not a model saved by mlp-cases (no mlp-cases-model.json)",
                          where=str(path), fix="give the folder written by a `train` command")
    try:
        info = json.loads(meta.read_text())
        framework = info["framework"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError("unreadable model metadata", where=str(meta),
                          fix="retrain the model, or restore the file from the train folder"
                          ) from exc
    if framework in ("committee", "ensemble"):  # "ensemble": folders saved before 0.2
        from common.potential.committee import load_committee_folder

        return load_committee_folder(path, device=device)
    if framework in ANALYTIC:
        from common.potential.analytic import AnalyticAdapter

        return AnalyticAdapter.load(path).batched()
    return get_adapter(framework).load(path, device=device).batched()


def _signature(cls) -> str:
    return ", ".join(p for p in inspect.signature(cls.__init__).parameters
                     if p not in ("self", "args", "kwargs"))
