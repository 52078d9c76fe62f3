"""Settings as data: each pipeline keeps its scales (``tiny``, ``paper``) as JSON files in its
``configs/`` folder; a user may give the path of their own file instead."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from common.errors import ConfigError


def load_json_config(name_or_path: str | Path, folder: Path, prefix: str,
                     what: str = "config", where: str = "--config",
                     **overrides: Any) -> dict[str, Any]:
    """``folder/{prefix}_{name}.json`` for a bare name, else the JSON file at the path; keys
    starting with ``_`` are comments; ``overrides`` that are not None replace values."""
    p = Path(name_or_path)
    if not p.suffix:
        p = folder / f"{prefix}_{name_or_path}.json"
    if not p.exists():
        known = sorted(f.stem.removeprefix(f"{prefix}_") for f in folder.glob(f"{prefix}_*.json"))
        raise ConfigError(f"no {what} {str(name_or_path)!r}", where=where,
                          fix=f"use one of {', '.join(known)}, or the path of a JSON file")
    try:
        data = json.loads(p.read_text())
    except ValueError as exc:
        raise ConfigError(f"not valid JSON ({exc})", where=str(p),
                          fix="check the file's syntax") from exc
    cfg = {k: v for k, v in data.items() if not k.startswith("_")}
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    return cfg
