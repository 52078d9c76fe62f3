"""Species = connected components of the bond graph, named canonically.

Each component is keyed by its formula (Hill order: C, H, then alphabetical; without carbon
all alphabetical) and a Weisfeiler-Lehman hash of the element-labelled bond graph, so isomers
with one formula (COOH / HCOO, CHO / COH) get different keys. A :class:`SpeciesLibrary` maps
known names to template graphs (checked by element-labelled isomorphism); components that match
no template get the deterministic name ``<formula>#<6 hex digits of the hash>``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import networkx as nx
from ase import Atoms

from common.errors import ConfigError

__all__ = [
    "DEFAULT_TEMPLATES",
    "SpeciesLibrary",
    "Species",
    "graph_key",
    "hill_formula",
    "molecule_graph",
    "species_in_frame",
    "species_series",
]

#: ``(name, atom), ...`` pairs per species instance: ``frozenset[tuple[str, frozenset[int]]]``
Species = tuple[str, frozenset[int]]

# name -> (elements, bonds between element positions)
DEFAULT_TEMPLATES: dict[str, tuple[list[str], list[tuple[int, int]]]] = {
    "H": (["H"], []),
    "C": (["C"], []),
    "O": (["O"], []),
    "N": (["N"], []),
    "H2": (["H", "H"], [(0, 1)]),
    "O2": (["O", "O"], [(0, 1)]),
    "OH": (["O", "H"], [(0, 1)]),
    "H2O": (["O", "H", "H"], [(0, 1), (0, 2)]),
    "H3O": (["O", "H", "H", "H"], [(0, 1), (0, 2), (0, 3)]),
    "OOH": (["O", "O", "H"], [(0, 1), (1, 2)]),
    "H2O2": (["H", "O", "O", "H"], [(0, 1), (1, 2), (2, 3)]),
    "CH": (["C", "H"], [(0, 1)]),
    "CH2": (["C", "H", "H"], [(0, 1), (0, 2)]),
    "CH3": (["C", "H", "H", "H"], [(0, 1), (0, 2), (0, 3)]),
    "CH4": (["C", "H", "H", "H", "H"], [(0, 1), (0, 2), (0, 3), (0, 4)]),
    "CO": (["C", "O"], [(0, 1)]),
    "CO2": (["O", "C", "O"], [(0, 1), (1, 2)]),
    "COOH": (["C", "O", "O", "H"], [(0, 1), (0, 2), (2, 3)]),
    "HCOO": (["H", "C", "O", "O"], [(0, 1), (1, 2), (1, 3)]),
    "HCOOH": (["H", "C", "O", "O", "H"], [(0, 1), (1, 2), (1, 3), (3, 4)]),
    "CHO": (["C", "H", "O"], [(0, 1), (0, 2)]),
    "COH": (["C", "O", "H"], [(0, 1), (1, 2)]),
    "CH2O": (["C", "H", "H", "O"], [(0, 1), (0, 2), (0, 3)]),
    "CHOH": (["C", "H", "O", "H"], [(0, 1), (0, 2), (2, 3)]),
    "CH2OH": (["C", "H", "H", "O", "H"], [(0, 1), (0, 2), (0, 3), (3, 4)]),
    "OCH3": (["O", "C", "H", "H", "H"], [(0, 1), (1, 2), (1, 3), (1, 4)]),
    "CH3OH": (["O", "C", "H", "H", "H", "H"], [(0, 1), (1, 2), (1, 3), (1, 4), (0, 5)]),
    "OCCO": (["O", "C", "C", "O"], [(0, 1), (1, 2), (2, 3)]),
    "OCCOH": (["O", "C", "C", "O", "H"], [(0, 1), (1, 2), (2, 3), (3, 4)]),
    "HOCCOH": (["H", "O", "C", "C", "O", "H"], [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]),
    "OCCHO": (["O", "C", "C", "H", "O"], [(0, 1), (1, 2), (2, 3), (2, 4)]),
    "OCHCHO": (["O", "C", "H", "C", "H", "O"], [(0, 1), (1, 2), (1, 3), (3, 4), (3, 5)]),
    "OCCH2O": (["O", "C", "C", "H", "H", "O"], [(0, 1), (1, 2), (2, 3), (2, 4), (2, 5)]),
    "CCO": (["C", "C", "O"], [(0, 1), (1, 2)]),
    "C2H4": (["C", "C", "H", "H", "H", "H"], [(0, 1), (0, 2), (0, 3), (1, 4), (1, 5)]),
}


def hill_formula(elements: Iterable[str]) -> str:
    """Return the formula in Hill order: C, H, then alphabetical (all alphabetical without C).

    >>> hill_formula(["O", "C", "H", "O"])
    'CHO2'
    """
    counts = Counter(elements)
    if "C" in counts:
        order = ["C"] + (["H"] if "H" in counts else []) + sorted(
            e for e in counts if e not in ("C", "H"))
    else:
        order = sorted(counts)
    return "".join(e + (str(counts[e]) if counts[e] > 1 else "") for e in order)


def molecule_graph(elements: Sequence[str], bonds: Iterable[tuple[int, int]],
                   nodes: Sequence[int] | None = None) -> nx.Graph:
    """Build an element-labelled graph (node attribute ``element``)."""
    g = nx.Graph()
    ids = list(range(len(elements))) if nodes is None else list(nodes)
    for k, e in zip(ids, elements, strict=True):
        g.add_node(k, element=e)
    g.add_edges_from(bonds)
    return g


def graph_key(graph: nx.Graph) -> str:
    """Return the key ``<formula>|<WL hash>`` of a molecule graph.

    It is equal for isomorphic graphs, different for isomers (almost always: Weisfeiler-Lehman
    hashes can collide for some non-isomorphic graphs).
    """
    formula = hill_formula(d["element"] for _, d in graph.nodes(data=True))
    h = nx.weisfeiler_lehman_graph_hash(graph, node_attr="element", iterations=3)
    return f"{formula}|{h}"


def _same_element(a: Mapping, b: Mapping) -> bool:
    return a["element"] == b["element"]


class SpeciesLibrary:
    """Names for bond-graph components, by element-labelled graph isomorphism.

    Parameters
    ----------
    templates
        ``{name: (elements, bonds)}``; bonds index into ``elements``. Default:
        :data:`DEFAULT_TEMPLATES` (C1/C2 intermediates of CO2 reduction, water, H, OH...).
    include_defaults
        With ``templates`` given: also keep the defaults (templates win on name clashes).
    """

    def __init__(self, templates: Mapping[str, tuple[Sequence[str], Sequence[tuple[int, int]]]]
                 | None = None, include_defaults: bool = True):
        self._by_key: dict[str, list[tuple[str, nx.Graph]]] = {}
        self._names: dict[str, str] = {}
        for name, (elements, bonds) in (templates or {}).items():
            self.add(name, elements, bonds)
        if templates is None or include_defaults:
            for name, (elements, bonds) in DEFAULT_TEMPLATES.items():
                g = molecule_graph(elements, bonds)
                if name not in self._names and self._match(g, graph_key(g)) is None:
                    self.add(name, elements, bonds)

    @property
    def names(self) -> list[str]:
        """The registered names."""
        return list(self._names)

    def add(self, name: str, elements: Sequence[str], bonds: Iterable[tuple[int, int]]) -> None:
        """Register ``name`` for the graph of ``elements`` joined by ``bonds``.

        Raises :class:`ConfigError` if the graph is not connected or already has another name.
        """
        g = molecule_graph(list(elements), list(bonds))
        if len(g) == 0 or not nx.is_connected(g):
            raise ConfigError(f"template {name!r} is not one connected molecule",
                              where="species library", fix="give bonds joining all atoms")
        key = graph_key(g)
        for other, tg in self._by_key.get(key, []):
            if other != name and nx.is_isomorphic(g, tg, node_match=_same_element):
                raise ConfigError(f"template {name!r} has the same structure as {other!r}",
                                  where="species library", fix="give each structure one name")
        old = self._names.pop(name, None)
        if old is not None:
            self._by_key[old] = [(n, t) for n, t in self._by_key[old] if n != name]
        self._by_key.setdefault(key, []).append((name, g))
        self._names[name] = key

    def add_atoms(self, name: str, atoms: Atoms, criteria: object | None = None) -> None:
        """Register ``name`` for the bond graph of a molecule given as ASE ``Atoms``."""
        from common.events.bonds import BondCriteria, bond_series

        crit = criteria if isinstance(criteria, BondCriteria) else BondCriteria()
        bonds = bond_series([atoms], None, crit)[0]
        self.add(name, atoms.get_chemical_symbols(), bonds)

    def _match(self, graph: nx.Graph, key: str) -> str | None:
        for name, tg in self._by_key.get(key, []):
            if nx.is_isomorphic(graph, tg, node_match=_same_element):
                return name
        return None

    def name(self, graph: nx.Graph) -> str:
        """Return the registered name of ``graph``, or ``<formula>#<hash6>`` when none matches."""
        key = graph_key(graph)
        found = self._match(graph, key)
        if found is not None:
            return found
        formula, _, h = key.partition("|")
        return f"{formula}#{h[:6]}"


def species_in_frame(bonds: Iterable[tuple[int, int]], atom_indices: Sequence[int],
                     symbols: Sequence[str], library: SpeciesLibrary | None = None,
                     marked: Iterable[int] = (), prefix: str = "*",
                     _cache: dict | None = None) -> frozenset[Species]:
    """Species in one frame: ``{(name, frozenset(atom indices)), ...}``.

    Parameters
    ----------
    bonds
        Bonded pairs ``(i, j)`` (original atom indices).
    atom_indices
        Atoms in the graph (every one is in some species, single atoms included).
    symbols
        Chemical symbols of all atoms of the structure (indexed by atom index).
    library
        Names (default :class:`SpeciesLibrary()`).
    marked, prefix
        Hook for adsorbed species: a component with any atom in ``marked`` gets ``prefix``
        (``"*CO"``).
    """
    lib = library or SpeciesLibrary()
    cache = {} if _cache is None else _cache
    g = nx.Graph()
    g.add_nodes_from(atom_indices)
    g.add_edges_from(bonds)
    marked = frozenset(marked)
    out = []
    for comp in nx.connected_components(g):
        atoms = frozenset(comp)
        edges = frozenset((a, b) if a < b else (b, a) for a, b in g.subgraph(comp).edges())
        key = (atoms, edges)
        base = cache.get(key)
        if base is None:
            sub = molecule_graph([symbols[k] for k in sorted(atoms)], edges, sorted(atoms))
            base = cache[key] = lib.name(sub)
        out.append((prefix + base if atoms & marked else base, atoms))
    return frozenset(out)


def species_series(bond_sets: Sequence[frozenset[tuple[int, int]]], atom_indices: Sequence[int],
                   symbols: Sequence[str], library: SpeciesLibrary | None = None,
                   marked: Sequence[frozenset[int]] | None = None, prefix: str = "*",
                   ) -> list[frozenset[Species]]:
    """Apply :func:`species_in_frame` to every frame, recomputed only where bonds or marks change.

    Parameters
    ----------
    bond_sets
        One bond set per frame (e.g. filtered :func:`~common.events.bonds.bond_series`).
    marked
        Optional per-frame sets of marked atoms (e.g. those bound to a surface).
    """
    lib = library or SpeciesLibrary()
    cache: dict = {}
    out: list[frozenset[Species]] = []
    prev_b: frozenset | None = None
    prev_m: frozenset | None = None
    cur: frozenset[Species] = frozenset()
    for t, b in enumerate(bond_sets):
        m = marked[t] if marked is not None else frozenset()
        if t == 0 or not (b is prev_b or b == prev_b) or not (m is prev_m or m == prev_m):
            cur = species_in_frame(b, atom_indices, symbols, lib, m, prefix, cache)
        out.append(cur)
        prev_b, prev_m = b, m
    return out
