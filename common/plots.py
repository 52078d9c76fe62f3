"""Figures: matplotlib on a headless machine, and a figure written whole or not at all.

Every package's plotting function ends the same way -- lay the figure out, write it atomically
in the format its file name asks for, free it -- so that ending is here once:

>>> from common.plots import pyplot, save_figure
>>> plt = pyplot()
>>> fig, ax = plt.subplots()
>>> _ = ax.plot([0, 1], [1, 0])
>>> save_figure(fig, "runs/line.png")                               # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["pyplot", "save_figure"]


def pyplot():
    """Return ``matplotlib.pyplot`` on the non-interactive Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | os.PathLike, dpi: int = 120, tight: bool = True) -> Path:
    """Write ``fig`` to ``path`` atomically and close it; return the path.

    The format follows the file's suffix (``.png`` when it has none, ``.pdf``, ``.svg``, ...);
    the folder is made if needed, and a figure that fails to render leaves no partial file
    (:func:`common.fileio.atomic_path`). ``tight``: apply ``tight_layout`` first.
    """
    from common.fileio import atomic_path

    path = Path(path)
    if tight:
        fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=path.suffix.lstrip(".").lower() or "png", dpi=dpi)
    finally:
        pyplot().close(fig)
    return path
