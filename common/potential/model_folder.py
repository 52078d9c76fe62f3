"""What every adapter's model folder shares.

That is ``mlp-cases-model.json`` (the framework's name, its config, elements, metrics), read with
one-line errors and written atomically, and the config an adapter trains with, checked against its
schema.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common.errors import ConfigError

#: the metadata file of every saved model folder
META = "mlp-cases-model.json"


def read_model_meta(path: str | Path, framework: str, label: str) -> dict[str, Any]:
    """Read the metadata of the model folder ``path``, which must hold a ``framework`` model.

    ``label`` names the model in messages, e.g. "MACE".
    """
    path = Path(path)
    meta_path = path / META
    fix = "give the folder written by `train` or `save`"
    if not meta_path.exists():
        raise ConfigError(f"not a {label} model folder (no {META})", where=str(path), fix=fix)
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"unreadable model metadata ({type(exc).__name__})",
                          where=str(meta_path), fix=fix) from exc
    if not isinstance(meta, dict) or meta.get("framework") != framework:
        found = meta.get("framework") if isinstance(meta, dict) else None
        raise ConfigError(f"this folder holds a {found!r} model, not a {label} one",
                          where=str(path), fix="load it with its own adapter (load_saved)")
    return meta


def write_model_meta(path: str | Path, meta: dict[str, Any]) -> Path:
    """Write ``path/mlp-cases-model.json`` atomically; returns its path."""
    from common.fileio import atomic_write_json

    return atomic_write_json(Path(path) / META, meta)


def checked_model_config(config: dict | str | Path | None, schema, load: Callable[..., dict],
                         check: Callable[[dict, str], None] | None = None) -> dict[str, Any]:
    """Return an adapter's checked training config.

    A dict is checked against ``schema`` (a :class:`~common.config.ConfigSchema`) and ``check(cfg,
    where)``; a name or path goes through the adapter's ``load`` (``None`` means "tiny").
    """
    if not isinstance(config, dict):
        return load(config or "tiny")
    cfg = schema.from_dict(config, where="config").to_dict()
    if check is not None:
        check(cfg, "config")
    return cfg
