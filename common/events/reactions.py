"""Reaction events, species lifetimes and the reaction network from per-frame species sets.

A species *instance* is one ``(name, atom set)``; it is born in the first frame it appears and
dies in the first frame it is gone. Between two consecutive frames the instances that vanished
and those that appeared are grouped by shared atoms into events, so two independent reactions in
the same frame are two events and an adsorption (``CO`` -> ``*CO``, same atoms) is an event too.

Statistics
----------
* Lifetime mean: over completed lifetimes only (birth and death both observed); its 95 %
  interval is Student's t (``mean ± t_{0.975, n-1} s / sqrt(n)``), ``None`` for n < 2. Instances
  alive at the last frame are right-censored: they enter the Kaplan-Meier curve, not the mean.
  Instances present in the first frame have an unknown birth (left-censored) and are left out
  unless ``include_initial=True``.
* Proportions: Wilson score interval (:func:`wilson_interval`).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from common.errors import ConfigError

__all__ = [
    "KaplanMeier",
    "LifetimeStats",
    "ReactionEvent",
    "SpeciesInstance",
    "detect_events",
    "kaplan_meier",
    "lifetime_statistics",
    "populations",
    "proportions",
    "reaction_network",
    "species_instances",
    "t_interval",
    "wilson_interval",
]

Species = tuple[str, frozenset[int]]


@dataclass
class ReactionEvent:
    """Species that vanished and appeared together between ``frame - 1`` and ``frame``.

    Attributes
    ----------
    frame, time_ps
        First frame (and its time, ps) in which the products exist.
    reactants, products
        Sorted species names.
    reactant_atoms, product_atoms
        Atom sets, in the order of the names.
    bonds_formed, bonds_broken
        Bonds ``(i, j)`` among the event's atoms that changed at this frame (when bond sets
        were given to :func:`detect_events`).
    """

    frame: int
    time_ps: float
    reactants: list[str]
    products: list[str]
    reactant_atoms: list[frozenset[int]] = field(default_factory=list)
    product_atoms: list[frozenset[int]] = field(default_factory=list)
    bonds_formed: list[tuple[int, int]] = field(default_factory=list)
    bonds_broken: list[tuple[int, int]] = field(default_factory=list)

    @property
    def atoms(self) -> frozenset[int]:
        """All atoms taking part."""
        return frozenset().union(*self.reactant_atoms, *self.product_atoms)

    def to_dict(self) -> dict:
        """Return ``{frame, time_ps, reactants, products}`` (JSON-ready)."""
        return {"frame": int(self.frame), "time_ps": float(self.time_ps),
                "reactants": list(self.reactants), "products": list(self.products)}


def _times(n: int, times_ps: Sequence[float] | np.ndarray | None) -> np.ndarray:
    if times_ps is None:
        return np.arange(n, dtype=float)
    t = np.asarray(times_ps, dtype=float)
    if t.shape != (n,):
        raise ConfigError(f"{t.size} times for {n} frames", where="times_ps",
                          fix="give one time (ps) per frame")
    return t


def _changed(a: object, b: object) -> bool:
    return not (a is b or a == b)


def detect_events(species: Sequence[frozenset[Species]],
                  times_ps: Sequence[float] | np.ndarray | None = None,
                  bonds: Sequence[frozenset[tuple[int, int]]] | None = None,
                  ) -> list[ReactionEvent]:
    """Reaction events between consecutive frames.

    Parameters
    ----------
    species
        Per-frame species sets ``{(name, frozenset(atoms)), ...}`` (after filtering).
    times_ps
        Time of each frame in ps (default: the frame index).
    bonds
        Optional per-frame bond sets, to record which bonds each event formed/broke.

    Returns
    -------
    list of ReactionEvent
        Ordered by frame, then by smallest atom index.
    """
    t = _times(len(species), times_ps)
    events: list[ReactionEvent] = []
    for k in range(1, len(species)):
        if not _changed(species[k - 1], species[k]):
            continue
        gone = sorted(species[k - 1] - species[k], key=lambda s: (min(s[1]), s[0]))
        new = sorted(species[k] - species[k - 1], key=lambda s: (min(s[1]), s[0]))
        g = nx.Graph()
        g.add_nodes_from(("r", i) for i in range(len(gone)))
        g.add_nodes_from(("p", i) for i in range(len(new)))
        owner: dict[int, list[tuple[str, int]]] = defaultdict(list)
        for i, (_, atoms) in enumerate(gone):
            for a in atoms:
                owner[a].append(("r", i))
        for i, (_, atoms) in enumerate(new):
            for a in atoms:
                for node in owner.get(a, ()):
                    g.add_edge(node, ("p", i))
        formed: set[tuple[int, int]] = set()
        broken: set[tuple[int, int]] = set()
        if bonds is not None and _changed(bonds[k - 1], bonds[k]):
            formed = set(bonds[k] - bonds[k - 1])
            broken = set(bonds[k - 1] - bonds[k])
        group: list[ReactionEvent] = []
        for comp in nx.connected_components(g):
            rs = sorted((gone[i] for side, i in comp if side == "r"), key=lambda s: s[0])
            ps = sorted((new[i] for side, i in comp if side == "p"), key=lambda s: s[0])
            ev = ReactionEvent(k, float(t[k]), [s[0] for s in rs], [s[0] for s in ps],
                               [s[1] for s in rs], [s[1] for s in ps])
            atoms = ev.atoms
            ev.bonds_formed = sorted(b for b in formed if b[0] in atoms)
            ev.bonds_broken = sorted(b for b in broken if b[0] in atoms)
            group.append(ev)
        group.sort(key=lambda e: min(e.atoms) if e.atoms else -1)
        events.extend(group)
    return events


@dataclass
class SpeciesInstance:
    """One species instance (name + atom set) with its birth and death.

    Attributes
    ----------
    birth_frame, death_frame
        First frame present; first frame absent (``None``: alive at the end, right-censored).
    birth_ps, death_ps, end_ps
        Times (ps) of birth, death and the trajectory's last frame.
    left_censored
        Present in the first frame, so its birth is unknown.
    """

    name: str
    atoms: frozenset[int]
    birth_frame: int
    death_frame: int | None
    birth_ps: float
    death_ps: float | None
    end_ps: float
    left_censored: bool

    @property
    def completed(self) -> bool:
        """Birth and death both observed."""
        return self.death_frame is not None and not self.left_censored

    @property
    def duration_ps(self) -> float:
        """Lifetime (completed) or observed time until death / the last frame (ps)."""
        end = self.death_ps if self.death_ps is not None else self.end_ps
        return float(end - self.birth_ps)


def species_instances(species: Sequence[frozenset[Species]],
                      times_ps: Sequence[float] | np.ndarray | None = None
                      ) -> list[SpeciesInstance]:
    """Every species instance with birth/death frames and times (ps), in order of birth."""
    n = len(species)
    t = _times(n, times_ps)
    if n == 0:
        return []
    alive: dict[Species, int] = {s: 0 for s in species[0]}
    done: list[SpeciesInstance] = []

    def close(s: Species, b: int, d: int | None) -> None:
        done.append(SpeciesInstance(s[0], s[1], b, d, float(t[b]),
                                    None if d is None else float(t[d]), float(t[-1]), b == 0))

    for k in range(1, n):
        if not _changed(species[k - 1], species[k]):
            continue
        for s in species[k - 1] - species[k]:
            close(s, alive.pop(s), k)
        for s in species[k] - species[k - 1]:
            alive[s] = k
    for s, b in alive.items():
        close(s, b, None)
    done.sort(key=lambda x: (x.birth_frame, min(x.atoms), x.name))
    return done


def t_interval(values: Sequence[float], confidence: float = 0.95
               ) -> tuple[float | None, tuple[float | None, float | None]]:
    """Mean and Student-t confidence interval of ``values`` (``None`` where undefined)."""
    from scipy import stats

    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return None, (None, None)
    mean = float(x.mean())
    if x.size < 2:
        return mean, (None, None)
    half = float(stats.t.ppf(0.5 + confidence / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return mean, (mean - half, mean + half)


@dataclass
class KaplanMeier:
    """Kaplan-Meier survival estimate.

    Attributes
    ----------
    times
        Distinct event (death) times, ascending.
    survival
        S(t) just after each of ``times`` (a right-continuous step function, S = 1 before).
    n_at_risk, n_events
        Instances at risk just before, and deaths at, each time.
    """

    times: np.ndarray
    survival: np.ndarray
    n_at_risk: np.ndarray
    n_events: np.ndarray

    def __call__(self, t: float | np.ndarray) -> np.ndarray:
        """S(t) at arbitrary times."""
        idx = np.searchsorted(self.times, np.asarray(t, dtype=float), side="right")
        return np.concatenate([[1.0], self.survival])[idx]

    @property
    def median(self) -> float | None:
        """First time with S <= 0.5 (``None`` if the curve never gets there)."""
        below = np.flatnonzero(self.survival <= 0.5)
        return float(self.times[below[0]]) if len(below) else None


def kaplan_meier(durations: Sequence[float], observed: Sequence[bool]) -> KaplanMeier:
    """Kaplan-Meier estimator; ``observed[k]`` False = right-censored at ``durations[k]``.

    A censoring time equal to an event time counts as still at risk at that time.
    """
    d = np.asarray(durations, dtype=float)
    o = np.asarray(observed, dtype=bool)
    if d.shape != o.shape:
        raise ConfigError("durations and observed differ in length", where="kaplan_meier",
                          fix="give one observed flag per duration")
    times = np.unique(d[o])
    at_risk = np.array([(d >= x).sum() for x in times], dtype=int)
    deaths = np.array([((d == x) & o).sum() for x in times], dtype=int)
    surv = np.cumprod(1.0 - deaths / np.maximum(at_risk, 1)) if len(times) else np.zeros(0)
    return KaplanMeier(times, surv, at_risk, deaths)


@dataclass
class LifetimeStats:
    """Lifetime statistics of one species name (times in ps)."""

    n: int
    n_censored: int
    mean_ps: float | None
    ci95_ps: tuple[float | None, float | None]
    km: KaplanMeier

    def to_dict(self) -> dict:
        """Return ``{n, mean_ps, ci95_ps}`` (JSON-ready; ``None`` where undefined)."""
        return {"n": self.n, "mean_ps": self.mean_ps, "ci95_ps": list(self.ci95_ps)}


def lifetime_statistics(instances: Iterable[SpeciesInstance], include_initial: bool = False,
                        confidence: float = 0.95) -> dict[str, LifetimeStats]:
    """Lifetime statistics per species name.

    Parameters
    ----------
    instances
        From :func:`species_instances` (several trajectories may be pooled).
    include_initial
        Also use instances present in the first frame (their birth is unknown, so their
        lifetime is underestimated); default False.
    confidence
        Level of the t interval on the mean of completed lifetimes. A lifetime is positive, so
        the interval's lower end is clipped at 0 (with few events the symmetric t interval
        can reach below it).
    """
    groups: dict[str, list[SpeciesInstance]] = defaultdict(list)
    for inst in instances:
        if inst.left_censored and not include_initial:
            continue
        groups[inst.name].append(inst)
    out: dict[str, LifetimeStats] = {}
    for name in sorted(groups):
        insts = groups[name]
        dur = [i.duration_ps for i in insts]
        obs = [i.death_frame is not None for i in insts]
        done = [x for x, o in zip(dur, obs, strict=True) if o]
        mean, ci = t_interval(done, confidence)
        if ci[0] is not None:
            ci = (max(0.0, ci[0]), ci[1])
        out[name] = LifetimeStats(len(done), len(insts) - len(done), mean, ci,
                                  kaplan_meier(dur, obs))
    return out


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion ``k / n``; ``(0, 1)`` when ``n == 0``."""
    from scipy import stats

    if n < 0 or k < 0 or k > n:
        raise ConfigError(f"need 0 <= k <= n, got k={k}, n={n}", where="wilson_interval",
                          fix="give a count k of n trials")
    if n == 0:
        return 0.0, 1.0
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


def proportions(counts: dict[str, int], confidence: float = 0.95) -> dict[str, dict]:
    """Return ``{key: {count, fraction, ci95}}`` with Wilson intervals.

    The fraction is ``None`` if the total is 0.
    """
    n = sum(counts.values())
    return {k: {"count": int(c), "fraction": (c / n if n else None),
                "ci95": list(wilson_interval(int(c), n, confidence))}
            for k, c in counts.items()}


def reaction_network(events: Iterable[ReactionEvent]) -> list[dict]:
    """Edges ``{reactants, products, count}``, most frequent first."""
    c = Counter((tuple(e.reactants), tuple(e.products)) for e in events)
    return [{"reactants": list(r), "products": list(p), "count": n}
            for (r, p), n in sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))]


def populations(species: Sequence[frozenset[Species]]) -> dict[str, np.ndarray]:
    """Count the instances of each species name in each frame."""
    n = len(species)
    out: dict[str, np.ndarray] = {}
    if n == 0:
        return out
    cuts = [0] + [k for k in range(1, n) if _changed(species[k - 1], species[k])] + [n]
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        for name, c in Counter(name for name, _ in species[a]).items():
            if name not in out:
                out[name] = np.zeros(n, dtype=np.int32)
            out[name][a:b] = c
    return dict(sorted(out.items()))
