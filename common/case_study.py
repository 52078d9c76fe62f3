"""What every pipeline's case study needs besides its science.

That is one output folder per run (resumed, never overwritten by other settings), stage timings,
JSON of numpy/dataclass values, and number formatting for report tables.

>>> from common.case_study import StageClock, claim_outdir, fmt
>>> claim_outdir(out, {"config": cfg, "seed": seed})     # doctest: +SKIP
>>> clock = StageClock()
>>> with clock("train_s"):
...     pass
>>> fmt(None), fmt(0.1234, ".2f")
('—', '0.12')
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from common.errors import ConfigError
from common.fileio import atomic_write_text

__all__ = ["STAMP", "StageClock", "claim_outdir", "cpu_seconds", "fmt", "json_plain"]

#: the file in a case-study folder that records the settings of the run it holds
STAMP = "case_settings.json"


def claim_outdir(out: str | Path, settings: dict, *, stamp: str = STAMP) -> Path:
    """Make ``out`` the folder of a run with ``settings``.

    A rerun with the same settings continues there (finished stages are reused); a folder holding a
    run with other settings is refused with a one-line ConfigError, never overwritten.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError("exists and is not a folder", where=str(out),
                          fix="give --out a folder path")
    out.mkdir(parents=True, exist_ok=True)
    path = out / stamp
    text = json.dumps(settings, indent=2, sort_keys=True, default=str)
    if path.exists() and path.read_text() != text:
        raise ConfigError("this folder holds a case study run with other settings",
                          where=str(out), fix="choose a new --out folder (or rerun with the "
                          "same scale and seed to continue it)")
    atomic_write_text(path, text)
    return out


def cpu_seconds() -> float:
    """Return the user + sys CPU seconds of this process and of its finished children.

    The children count too since framework trainers and Dask workers run as child processes.
    """
    import os

    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class StageClock:
    """Wall time of named stages, seconds (one decimal): ``with clock("label_s"): ...``.

    A stage entered again adds to its time; ``clock.t`` is the dict for the summary. With
    ``cpu=True`` each stage also records ``<name>_cpu_s`` (:func:`cpu_seconds`), since wall time
    on a shared machine says little about cost.
    """

    def __init__(self, cpu: bool = False):
        self.t: dict[str, float] = {}
        self.cpu = cpu

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        """Time the stage ``name`` while the ``with`` block runs (added to earlier entries)."""
        t0, c0 = time.perf_counter(), cpu_seconds() if self.cpu else 0.0
        try:
            yield
        finally:
            self.t[name] = round(self.t.get(name, 0.0) + time.perf_counter() - t0, 1)
            if self.cpu:
                key = name.removesuffix("_s") + "_cpu_s"
                self.t[key] = round(self.t.get(key, 0.0) + cpu_seconds() - c0, 1)


def json_plain(o: Any) -> Any:
    """Convert what json cannot write by itself (the ``default=`` for json.dump).

    Dataclasses become dicts, numpy scalars and arrays Python values, anything else its string.
    """
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return dataclasses.asdict(o)
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is always there
        np = None
    if np is not None and isinstance(o, np.generic):
        return o.item()
    if np is not None and isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    return str(o)


def fmt(x: Any, spec: str = ".2f", none: str = "—") -> str:
    """Return ``format(x, spec)``, or ``none`` for None and NaN (a table cell with no value)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return none
    return format(x, spec)
