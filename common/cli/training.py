"""The body every ``mlp-<domain> train`` command shares.

It reads and validates the labelled data, splits it by seed, trains one model or a committee into
a folder that appears only when training has finished, and prints (or ``--json``) the metrics.
Each domain command keeps its own options and help (its framework's config names) and calls
:func:`train_model`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common.cli import options as opt
from common.cli.app import emit_json
from common.errors import ConfigError


def check_new_output(out: Path, overwrite: bool, what: str) -> None:
    """Refuse an output folder that is a file, or non-empty without ``--overwrite``.

    The refusal is a one-line ConfigError, raised before anything is computed.
    """
    if out.exists() and not out.is_dir():
        raise ConfigError(f"a file is in the way of the {what}", where=str(out),
                          fix="choose another --out")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ConfigError(f"the {what} already exists", where=str(out),
                          fix="choose another --out, or pass --overwrite to replace it")


def train_model(adapter_cls: Any, load_config: Callable[[str], dict], *, data: Path, out: Path,
                config: str, committee: int = 1, fractions: str = "0.8,0.1,0.1", seed: int = 0,
                device: str = "cpu", overwrite: bool = False, json_out: bool = False,
                train_committee: Callable | None = None) -> dict:
    """Train ``adapter_cls`` on ``data`` into ``out``; return ``{"model", "metrics"}``.

    The result is also printed. ``committee > 1`` trains a committee (seeds seed..seed+N-1) with
    ``train_committee(train, valid, folder, n, config=, seed=, test=, device=)`` (default:
    :func:`common.potential.committee.train_committee` for ``adapter_cls``).
    """
    from common.data import Dataset
    from common.fileio import atomic_dir

    check_new_output(out, overwrite, "model folder")
    cfg = load_config(config)
    ds = Dataset.read(data).validate(max_force_eV_A=100.0)
    tr, va, te = ds.split(opt.parse_fractions(fractions), seed=seed)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        if committee > 1:
            if train_committee is None:
                from common.potential.committee import train_committee as generic

                def train_committee(*args, **kw):
                    return generic(adapter_cls, *args, **kw)

            _, members = train_committee(tr, va, tmp, committee, config=cfg, seed=seed,
                                         test=te, device=device)
            metrics: Any = [m.meta.get("metrics") for m in members]
        else:
            metrics = adapter_cls.train(tr, va, tmp, config=cfg, seed=seed, test=te,
                                        device=device, progress=not json_out).meta["metrics"]
    result = {"model": str(out), "metrics": metrics}
    if json_out:
        emit_json(result)
    else:
        print(json.dumps(metrics, indent=2))
        print(f"model -> {out}")
    return result
