"""Potentials by name: ``lj``, ``morse`` (analytic) and the five framework adapters.

Adapters are registered as "module:attribute" strings and imported only when asked for, so
``import common`` never imports a framework. A domain package adds its adapter here when its
pipeline lands; until then asking for it says so.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from common.errors import ConfigError

#: analytic potentials: name -> "module:class"
ANALYTIC: dict[str, str] = {
    "lj": "common.potential.pair:LennardJones",
    "morse": "common.potential.pair:Morse",
}

#: framework adapters: name -> ("module:class", pipeline that provides it)
ADAPTERS: dict[str, tuple[str, str]] = {
    "schnet": ("catalysis.model:SchNetAdapter", "catalysis"),
    "deepmd": ("electrolytes.model:DeepMDAdapter", "electrolytes"),
    "ani": ("drug_binding.model:ANIAdapter", "drug_binding"),
    "mace": ("semiconductors.model:MACEAdapter", "semiconductors"),
    "nequip": ("atmospheric.model:NequIPAdapter", "atmospheric"),
}


def names() -> list[str]:
    return sorted(ANALYTIC) + sorted(ADAPTERS)


def _load(target: str) -> Any:
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def get_adapter(name: str):
    """The adapter class for a framework name (imports the framework)."""
    if name not in ADAPTERS:
        raise ConfigError(f"unknown model name {name!r}", where="--potential",
                          fix=f"use one of: {', '.join(names())}, or a path to a saved model")
    target, pipeline = ADAPTERS[name]
    try:
        return _load(target)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"the {name} adapter is not available ({exc})", where="--potential",
                          fix=f"it comes with the {pipeline} pipeline; use lj or morse meanwhile"
                          ) from exc


def make_potential(name: str, params: dict[str, Any] | None = None, device: str = "cpu"):
    """A BatchedPotential from a name (``lj``, ``morse``, an adapter name with
    ``params['path']``) or from the path of a saved model."""
    params = dict(params or {})
    if name in ANALYTIC:
        cls = _load(ANALYTIC[name])
        try:
            return cls(**params)
        except TypeError as exc:
            raise ConfigError(f"bad parameters for {name}: {exc}", where="--param",
                              fix=f"valid parameters: {_signature(cls)}") from exc
    if name in ADAPTERS:
        if "path" not in params:
            raise ConfigError(f"{name} needs a trained model", where="--potential",
                              fix="pass the path of a saved model as --potential PATH")
        return get_adapter(name).load(Path(params["path"]), device=device).batched()
    if Path(name).exists():
        return load_saved(Path(name), device=device)
    raise ConfigError(f"unknown potential {name!r} (not a name, and no such file)",
                      where="--potential",
                      fix=f"use one of: {', '.join(names())}, or a path to a saved model")


def load_saved(path: Path, device: str = "cpu"):
    """Load a model saved by an adapter: its folder holds ``mlp-cases-model.json`` naming the
    framework."""
    import json

    meta = path / "mlp-cases-model.json" if path.is_dir() else path.with_suffix(".json")
    if not meta.exists():
        raise ConfigError("not a model saved by mlp-cases (no mlp-cases-model.json)",
                          where=str(path), fix="give the folder written by a `train` command")
    info = json.loads(meta.read_text())
    if info["framework"] == "ensemble":
        from common.potential.ensemble import load_ensemble_folder

        return load_ensemble_folder(path, device=device)
    if info["framework"] in ANALYTIC:
        from common.potential.analytic import AnalyticAdapter

        return AnalyticAdapter.load(path).batched()
    return get_adapter(info["framework"]).load(path, device=device).batched()


def _signature(cls) -> str:
    import inspect

    return ", ".join(p for p in inspect.signature(cls.__init__).parameters if p != "self")
