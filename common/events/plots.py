"""Event timeline figures: species populations vs time with event markers (matplotlib, Agg)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["TimelinePanel", "draw_timeline", "plot_timeline"]


@dataclass
class TimelinePanel:
    """Data for one timeline panel.

    Attributes
    ----------
    times_ps
        Time of each frame (ps).
    populations
        ``{species name: count per frame}``.
    events
        Dicts with ``time_ps`` and optionally ``label`` (a category, e.g. a pathway) used to
        colour the marker; events without a label get thin grey ticks.
    title
        Panel title.
    """

    times_ps: np.ndarray
    populations: Mapping[str, np.ndarray]
    events: Sequence[Mapping] = field(default_factory=list)
    title: str = ""


def _top_species(populations: Mapping[str, np.ndarray], max_species: int,
                 prefer: Sequence[str]) -> list[str]:
    def score(name: str) -> tuple:
        pop = populations[name]
        return (name not in prefer, -float(np.mean(pop)), name)

    varying = [n for n, p in populations.items() if p.size and (p.max() > 0)]
    return sorted(varying, key=score)[:max_species]


def draw_timeline(ax, panel: TimelinePanel, max_species: int = 8,
                  prefer: Sequence[str] = (), colors: Mapping[str, str] | None = None) -> None:
    """Draw populations (steps) and event markers (vertical lines) on a matplotlib axes."""
    t = np.asarray(panel.times_ps, dtype=float)
    for name in _top_species(panel.populations, max_species, prefer):
        ax.step(t, panel.populations[name], where="post", label=name, lw=1.2)
    colors = dict(colors or {})
    cycle = ["tab:red", "tab:blue", "tab:green", "tab:purple", "tab:brown", "tab:olive"]
    seen: set[str] = set()
    for ev in panel.events:
        label = ev.get("label")
        if label is None:
            ax.axvline(ev["time_ps"], color="0.75", lw=0.5, zorder=0)
            continue
        if label not in colors:
            colors[label] = cycle[len(colors) % len(cycle)]
        ax.axvline(ev["time_ps"], color=colors[label], lw=1.5, ls="--",
                   label=None if label in seen else f"event {label}")
        seen.add(label)
    ax.set_xlabel("time (ps)")
    ax.set_ylabel("count")
    if panel.title:
        ax.set_title(panel.title, fontsize=9)
    ax.legend(fontsize=7, ncol=2, loc="upper right")


def plot_timeline(path: str | os.PathLike, panels: Sequence[TimelinePanel],
                  max_species: int = 8, prefer: Sequence[str] = (),
                  colors: Mapping[str, str] | None = None) -> Path:
    """Save a figure with one timeline panel per trajectory; returns the path written."""
    from common.plots import pyplot, save_figure

    plt = pyplot()

    n = max(1, len(panels))
    fig, axes = plt.subplots(n, 1, figsize=(8, 2.6 * n), squeeze=False)
    for ax, panel in zip(axes[:, 0], panels, strict=False):
        draw_timeline(ax, panel, max_species, prefer, colors)
    return save_figure(fig, path)
