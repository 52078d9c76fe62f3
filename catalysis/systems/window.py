"""The energy window on labelled frames.

The filter is :func:`energy_window`; its :class:`WindowReport` says what it kept and dropped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms

from common.data.dataset import get_labels
from common.errors import ConfigError, DataError


@dataclass
class WindowReport:
    """What :func:`energy_window` kept and dropped.

    Attributes
    ----------
    window_eV : float
        The window above each composition's lowest energy, eV.
    n_in, n_kept, n_dropped : int
        Frame counts.
    compositions : dict
        Hill formula -> ``{"n", "n_kept", "e_min_eV", "ground_state"}`` (index of the lowest).
    dropped : list of dict
        ``{"index", "formula", "delta_eV"}`` for each dropped frame (input order).
    """

    window_eV: float
    n_in: int
    n_kept: int
    n_dropped: int
    compositions: dict[str, dict[str, Any]] = field(default_factory=dict)
    dropped: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as a plain, JSON-ready dict."""
        return {"window_eV": self.window_eV, "n_in": self.n_in, "n_kept": self.n_kept,
                "n_dropped": self.n_dropped, "compositions": self.compositions,
                "dropped": self.dropped}


def energy_window(frames: Iterable[Atoms], window_eV: float = 3.0
                  ) -> tuple[list[Atoms], WindowReport]:
    """Keep frames within ``window_eV`` of the lowest energy of the same composition.

    Parameters
    ----------
    frames : iterable of ase.Atoms
        Labelled frames (energy on the calculator, e.g. a SinglePointCalculator).
    window_eV : float
        Total-energy window, eV (the seed keeps frames within ±3 eV of the ground state).

    Returns
    -------
    (list of ase.Atoms, WindowReport)
        The kept frames (input order, same objects) and what was dropped.

    Raises
    ------
    DataError
        A frame has no energy or a non-finite one.
    """
    frames = list(frames)
    if not (math.isfinite(window_eV) and window_eV > 0):
        raise ConfigError(f"window_eV={window_eV} must be > 0", where="energy_window",
                          fix="use e.g. 3.0 eV")
    energies = np.empty(len(frames))
    formulas = []
    for i, a in enumerate(frames):
        e = get_labels(a).get("energy") if isinstance(a, Atoms) else None
        if e is None:
            raise DataError("no energy label", where=f"frame {i}",
                            fix="label the frames first (common.labels.label_structures, or "
                                "md_snapshots), then filter")
        if not math.isfinite(float(e)):
            raise DataError(f"non-finite energy {e}", where=f"frame {i}",
                            fix="drop or relabel the frame")
        energies[i] = float(e)
        formulas.append(a.get_chemical_formula(mode="hill"))
    comps: dict[str, dict[str, Any]] = {}
    for f in dict.fromkeys(formulas):
        idx = [i for i, g in enumerate(formulas) if g == f]
        g = int(idx[int(np.argmin(energies[idx]))])
        comps[f] = {"n": len(idx), "n_kept": 0, "e_min_eV": float(energies[g]),
                    "ground_state": g}
    kept, dropped = [], []
    for i, (a, f) in enumerate(zip(frames, formulas, strict=True)):
        delta = float(energies[i] - comps[f]["e_min_eV"])
        if delta <= window_eV:
            kept.append(a)
            comps[f]["n_kept"] += 1
        else:
            dropped.append({"index": i, "formula": f, "delta_eV": delta})
    report = WindowReport(float(window_eV), len(frames), len(kept), len(dropped), comps,
                          dropped)
    return kept, report
