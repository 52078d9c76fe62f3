r"""Reaction events on a metal surface: adsorbed species, sites and C-C coupling pathways.

Built on :mod:`common.events`. The slab's metal atoms stay out of the bond graph; an adsorbate
species gets the prefix ``*`` when any of its atoms is bound to a metal atom (hysteresis and
persistence as for bonds), and its adsorption site (top / bridge / hollow) is the number of
metal atoms within ``r_on`` of its binding atom (the atom nearest the surface; 1 / 2 / >= 3),
the most frequent value over the instance's life.

C-C coupling events are events that form a C-C bond. Their pathway is read from the reactant
names and checked against the product:

====  =====================  =========
 A    \*CO + \*CO          OCCO
 B    \*CO + \*CHO         OCCHO
 C    \*CO + \*CH2O        OCCH2O
====  =====================  =========

anything else that couples two carbons is ``"other"``. Bond and surface cutoffs are in
:mod:`catalysis.bonds`; trajectories and their times are read by :mod:`common.trajectory`.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers

from catalysis.bonds import bond_criteria, surface_criteria
from common.errors import ConfigError, DataError
from common.events import (
    BondCriteria,
    ReactionEvent,
    SpeciesInstance,
    SpeciesLibrary,
    TimelinePanel,
    bond_states,
    close_contacts,
    detect_events,
    hysteresis_states,
    lifetime_statistics,
    persistence_filter_matrix,
    plot_timeline,
    populations,
    proportions,
    reaction_network,
    species_instances,
    species_series,
    states_to_sets,
)
from common.trajectory import frame_times_fs, load_trajectory, persistence_frames

__all__ = [
    "DEFAULT_MIN_PERSISTENCE_FS",
    "PATHWAYS",
    "EventAnalysis",
    "TrajectoryEvents",
    "analyze_frames",
    "analyze_trajectories",
    "classify_pathway",
    "parse_metals",
]

#: pathway -> (reactant names, product name without the surface prefix)
PATHWAYS: dict[str, tuple[tuple[str, ...], str]] = {
    "A": (("*CO", "*CO"), "OCCO"),
    "B": (("*CHO", "*CO"), "OCCHO"),
    "C": (("*CH2O", "*CO"), "OCCH2O"),
}

_PREFIX = "*"
_SITES = {1: "top", 2: "bridge"}
#: a bond or surface-contact change counts if it lasts this long (fs), unless told otherwise
DEFAULT_MIN_PERSISTENCE_FS = 50.0


def classify_pathway(reactants: Sequence[str], products: Sequence[str]) -> str:
    """Return the pathway of a C-C coupling event: ``"A"``, ``"B"``, ``"C"`` or ``"other"``.

    ``reactants`` and ``products`` are species names (surface species with ``*``).
    """
    r = tuple(sorted(reactants))
    p = sorted(x.lstrip(_PREFIX) for x in products)
    for label, (rs, prod) in PATHWAYS.items():
        if r == tuple(sorted(rs)) and p == [prod]:
            return label
    return "other"


def parse_metals(metal: str | Sequence[str]) -> tuple[str, ...]:
    """Element symbols from ``"Cu"``, ``"Cu,Ag"`` or a list (ConfigError if unknown)."""
    items = [m.strip() for m in metal.split(",")] if isinstance(metal, str) else list(metal)
    items = [m for m in items if m]
    if not items:
        raise ConfigError("no metal element given", where="--metal", fix="give e.g. --metal Cu")
    for m in items:
        if m not in atomic_numbers or m == "X":
            raise ConfigError(f"unknown element {m!r}", where="--metal",
                              fix="give element symbols, e.g. --metal Cu or --metal Cu,Ag")
    return tuple(items)


@dataclass
class TrajectoryEvents:
    """Events and species of one trajectory.

    Attributes
    ----------
    label
        File path or ``frames[k]``.
    times_ps
        Time of every frame (ps).
    dt_fs
        Median time between frames (fs).
    min_persistence_frames
        Persistence filter used (frames).
    events, pathways
        Reaction events and, aligned, their pathway (``None`` unless a C-C bond formed).
    instances, sites
        Species instances and, aligned, the adsorption site (``None`` when not adsorbed).
    populations
        ``{name: count per frame}``.
    """

    label: str
    times_ps: np.ndarray
    dt_fs: float | None
    min_persistence_frames: int
    events: list[ReactionEvent]
    pathways: list[str | None]
    instances: list[SpeciesInstance]
    sites: list[str | None]
    populations: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        """Number of frames of the trajectory."""
        return len(self.times_ps)

    def event_dicts(self) -> list[dict]:
        """Events as ``{trajectory, frame, time_ps, reactants, products, pathway}``."""
        return [{"trajectory": self.label, **e.to_dict(), "pathway": p}
                for e, p in zip(self.events, self.pathways, strict=True)]


@dataclass
class EventAnalysis:
    """Events of several trajectories, pooled for statistics (see :meth:`to_dict`)."""

    trajectories: list[TrajectoryEvents]
    include_initial: bool = False

    @property
    def events(self) -> list[dict]:
        """Events of all trajectories, as :meth:`TrajectoryEvents.event_dicts` gives them."""
        return [d for tr in self.trajectories for d in tr.event_dicts()]

    def pathway_counts(self) -> dict[str, int]:
        """C-C coupling events per pathway (all trajectories)."""
        c = Counter(p for tr in self.trajectories for p in tr.pathways if p is not None)
        return {k: c.get(k, 0) for k in (*PATHWAYS, "other")}

    def lifetimes(self):
        """Return :func:`~common.events.lifetime_statistics` over all trajectories, by name."""
        return lifetime_statistics((i for tr in self.trajectories for i in tr.instances),
                                   include_initial=self.include_initial)

    def site_counts(self) -> dict[str, dict[str, int]]:
        """Count the instances per site: ``{adsorbed species: {site: number of instances}}``."""
        out: dict[str, Counter] = {}
        for tr in self.trajectories:
            for inst, site in zip(tr.instances, tr.sites, strict=True):
                if site is not None:
                    out.setdefault(inst.name, Counter())[site] += 1
        return {k: dict(v) for k, v in sorted(out.items())}

    def to_dict(self) -> dict:
        """Return ``{events, pathways, lifetimes, network, n_frames, dt_fs}`` (JSON-ready)."""
        dts = [tr.dt_fs for tr in self.trajectories]
        same = all(d is not None and dts[0] is not None and math.isclose(d, dts[0], rel_tol=1e-9)
                   for d in dts)
        return {
            "events": self.events,
            "pathways": proportions(self.pathway_counts()),
            "lifetimes": {k: v.to_dict() for k, v in self.lifetimes().items()},
            "network": reaction_network(e for tr in self.trajectories for e in tr.events),
            "n_frames": sum(tr.n_frames for tr in self.trajectories),
            "dt_fs": dts[0] if same else dts,
        }

    def plot(self, path: str | os.PathLike, max_species: int = 8) -> Path:
        """Timeline figure: populations per trajectory and coupling events by pathway."""
        panels = []
        for tr in self.trajectories:
            evs = [{"time_ps": e.time_ps, "label": p}
                   for e, p in zip(tr.events, tr.pathways, strict=True)]
            panels.append(TimelinePanel(tr.times_ps, tr.populations, evs, tr.label))
        prefer = ["*CO", "*CHO", "*CH2O", "*OCCO", "*OCCHO", "*OCCH2O"]
        colors = {"A": "tab:red", "B": "tab:blue", "C": "tab:green", "other": "tab:gray"}
        return plot_timeline(path, panels, max_species, prefer, colors)


def analyze_frames(frames: Sequence[Atoms], *, label: str = "trajectory",
                   dt_fs: float | None = None, file_dt_fs: float | None = None,
                   criteria: BondCriteria | None = None,
                   surface: BondCriteria | None = None, metal: str | Sequence[str] = "Cu",
                   min_persistence_frames: int | None = None,
                   min_persistence_fs: float | None = None,
                   library: SpeciesLibrary | None = None) -> TrajectoryEvents:
    """Events of one trajectory (see :func:`analyze_trajectories` for the parameters)."""
    metals = parse_metals(metal)
    frames = list(frames)
    if not frames:
        raise DataError("trajectory has no frames", where=label, fix="give a non-empty file")
    symbols = frames[0].get_chemical_symbols()
    metal_idx = [k for k, s in enumerate(symbols) if s in metals]
    ads_idx = [k for k, s in enumerate(symbols) if s not in metals]
    mtext = ",".join(metals)
    if not ads_idx:
        raise DataError(f"no adsorbate atoms: all {len(symbols)} atoms are metal ({mtext})",
                        where=label, fix="give a trajectory of the slab with its adsorbates, "
                                         "or check --metal")
    if not metal_idx:
        raise DataError(f"no {mtext} atoms, so no surface", where=label,
                        fix="give --metal with the slab's element(s), e.g. --metal Cu")
    times_fs = frame_times_fs(frames, dt_fs, file_dt_fs, label)
    min_fs = DEFAULT_MIN_PERSISTENCE_FS if min_persistence_fs is None else min_persistence_fs
    m = persistence_frames(times_fs, min_fs, min_persistence_frames)
    crit = criteria or bond_criteria()
    surf = surface or surface_criteria()

    bonds = bond_states(frames, ads_idx, crit, where=label).filtered(m)
    bond_sets = bonds.to_sets()

    marked, contacts = _surface_marks(frames, ads_idx, metal_idx, surf, m)
    species = species_series(bond_sets, ads_idx, symbols, library or SpeciesLibrary(), marked,
                             _PREFIX)
    times_ps = times_fs / 1000.0
    events = detect_events(species, times_ps, bond_sets)
    pathways: list[str | None] = []
    for ev in events:
        cc = any(symbols[a] == "C" and symbols[b] == "C" for a, b in ev.bonds_formed)
        pathways.append(classify_pathway(ev.reactants, ev.products) if cc else None)
    instances = species_instances(species, times_ps)
    sites = _sites(instances, contacts, surf, symbols, len(frames))
    dts = np.diff(times_fs)
    return TrajectoryEvents(label, times_ps, float(np.median(dts)) if len(dts) else dt_fs, m,
                            events, pathways, instances, sites, populations(species))


def _surface_marks(frames: Sequence[Atoms], ads_idx: Sequence[int], metal_idx: Sequence[int],
                   surf: BondCriteria, min_frames: int
                   ) -> tuple[list[frozenset[int]], tuple[np.ndarray, ...]]:
    """Per-frame sets of adsorbate atoms bound to the surface, and the raw contacts.

    An atom is bound while any of its metal contacts is on (hysteresis per pair, one atom at a
    time so memory stays ``n_frames x contacts of one atom``); then the persistence filter.
    """
    symbols = frames[0].get_chemical_symbols()
    r_max = surf.max_off({symbols[k] for k in ads_idx}, {symbols[k] for k in metal_idx})
    f, i, j, d = close_contacts(frames, ads_idx, metal_idx, r_max)
    on, off = surf.atom_pair_arrays(symbols, i, j)
    keep = d <= off
    f, i, j, d, on, off = f[keep], i[keep], j[keep], d[keep], on[keep], off[keep]
    order = np.argsort(i, kind="stable")
    atoms, starts = np.unique(i[order], return_index=True)
    ends = np.append(starts[1:], len(order)) if len(starts) else starts
    bound = np.zeros((len(frames), len(atoms)), dtype=bool)
    for col, (s, e) in enumerate(zip(starts, ends, strict=True)):
        sel = order[s:e]
        _, first, inv = np.unique(j[sel], return_index=True, return_inverse=True)
        st = hysteresis_states(len(frames), f[sel], inv, d[sel], on[sel][first],
                               off[sel][first])
        bound[:, col] = st.any(axis=1)
    marks = states_to_sets(persistence_filter_matrix(bound, min_frames), atoms.tolist())
    return marks, (f, i, j, d)


def _sites(instances: Sequence[SpeciesInstance], contacts: tuple[np.ndarray, ...],
           surf: BondCriteria, symbols: Sequence[str], n_frames: int) -> list[str | None]:
    """Most frequent site (top / bridge / hollow) of each adsorbed instance."""
    f, i, j, d = contacts
    order = np.argsort(f, kind="stable")
    f, i, j, d = f[order], i[order], j[order], d[order]
    on, _ = surf.atom_pair_arrays(symbols, i, j)
    out: list[str | None] = []
    for inst in instances:
        if not inst.name.startswith(_PREFIX):
            out.append(None)
            continue
        end = inst.death_frame if inst.death_frame is not None else n_frames
        lo, hi = np.searchsorted(f, [inst.birth_frame, end])
        sel = np.flatnonzero(np.isin(i[lo:hi], list(inst.atoms))) + lo
        if len(sel) == 0:
            out.append("top")
            continue
        sf, si, sd, son = f[sel], i[sel], d[sel], on[sel]
        by = np.lexsort((sd, sf))  # per frame, nearest contact first
        first = np.concatenate([[True], sf[by][1:] != sf[by][:-1]])
        width = len(symbols) + 1
        bkey = sf[by][first] * width + si[by][first]  # (frame, binding atom)
        ukey, ucount = np.unique((sf * width + si)[sd < son], return_counts=True)
        at = np.clip(np.searchsorted(ukey, bkey), 0, max(0, len(ukey) - 1))
        found = (ukey[at] == bkey) if len(ukey) else np.zeros(len(bkey), dtype=bool)
        counts = np.clip(np.where(found, ucount[at] if len(ukey) else 0, 0), 1, 3)
        n = int(np.argmax(np.bincount(counts, minlength=4)[1:])) + 1
        out.append(_SITES.get(n, "hollow"))
    return out


def _as_trajectory_list(trajectories: object) -> list[object]:
    if isinstance(trajectories, (str, os.PathLike, Atoms)):
        return [trajectories] if not isinstance(trajectories, Atoms) else [[trajectories]]
    items = list(trajectories)  # type: ignore[call-overload]
    if items and isinstance(items[0], Atoms):
        return [items]
    return items


def analyze_trajectories(trajectories: str | os.PathLike | Sequence[Atoms]
                         | Iterable[str | os.PathLike | Sequence[Atoms]],
                         dt_fs: float | None = None, criteria: BondCriteria | None = None,
                         min_persistence_frames: int | None = None, *,
                         min_persistence_fs: float | None = None,
                         metal: str | Sequence[str] = "Cu",
                         surface: BondCriteria | None = None,
                         library: SpeciesLibrary | None = None,
                         include_initial: bool = False) -> EventAnalysis:
    """Reaction events, C-C coupling pathways, lifetimes and network of MD trajectories.

    Parameters
    ----------
    trajectories
        A path, a list of paths, a list of ``Atoms`` (one trajectory) or a list of such lists.
    dt_fs
        Time between frames (fs); default: from the file (``info["time_fs"]``/``["time"]``
        per frame, or an ASE MD ``.traj``'s description).
    criteria
        Adsorbate-adsorbate bond cutoffs (default :func:`catalysis.bonds.bond_criteria`).
    min_persistence_frames, min_persistence_fs
        A bond or surface-contact change counts only if it lasts this long; frames win over fs;
        default 50 fs.
    metal
        Element(s) of the slab, ``"Cu"`` or ``"Cu,Ag"``; these atoms are not in the bond graph.
    surface
        Adsorbate-metal cutoffs (default :func:`catalysis.bonds.surface_criteria`).
    library
        Species names (default :class:`~common.events.SpeciesLibrary`).
    include_initial
        Use species present in the first frame in lifetime statistics (birth unknown).

    Returns
    -------
    EventAnalysis
        ``.to_dict()`` gives ``{events, pathways, lifetimes, network, n_frames, dt_fs}``.
    """
    items = _as_trajectory_list(trajectories)
    if not items:
        raise ConfigError("no trajectory given", where="trajectories",
                          fix="give at least one trajectory file")
    lib = library or SpeciesLibrary()
    results = []
    for k, item in enumerate(items):
        if isinstance(item, (str, os.PathLike)):
            frames, file_dt = load_trajectory(item)
            label = os.fspath(item)
        else:
            frames, file_dt, label = list(item), None, f"frames[{k}]"  # type: ignore[arg-type]
        results.append(analyze_frames(
            frames, label=label, dt_fs=dt_fs, file_dt_fs=file_dt, criteria=criteria,
            surface=surface, metal=metal, min_persistence_frames=min_persistence_frames,
            min_persistence_fs=min_persistence_fs, library=lib))
    return EventAnalysis(results, include_initial)
