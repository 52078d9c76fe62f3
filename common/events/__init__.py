"""Reaction-event detection on MD trajectories (generic: surfaces, liquids, gas phase).

bonds (cutoffs with hysteresis, minimum image, persistence filter) -> species (connected
components of the bond graph, named by element-labelled graph isomorphism) -> reactions
(events, lifetimes with censoring, Kaplan-Meier, network, Wilson proportions) -> plots.
"""

from common.events.bonds import (
    BondCriteria,
    BondStates,
    bond_retention,
    bond_series,
    bond_states,
    close_contacts,
    contact_states,
    hysteresis_states,
    parse_cutoff_overrides,
    persistence_filter,
    persistence_filter_matrix,
    states_to_sets,
)
from common.events.plots import TimelinePanel, draw_timeline, plot_timeline
from common.events.reactions import (
    KaplanMeier,
    LifetimeStats,
    ReactionEvent,
    SpeciesInstance,
    detect_events,
    kaplan_meier,
    lifetime_statistics,
    populations,
    proportions,
    reaction_network,
    species_instances,
    t_interval,
    wilson_interval,
)
from common.events.species import (
    DEFAULT_TEMPLATES,
    SpeciesLibrary,
    graph_key,
    hill_formula,
    molecule_graph,
    species_in_frame,
    species_series,
)

__all__ = [
    "DEFAULT_TEMPLATES",
    "BondCriteria",
    "BondStates",
    "KaplanMeier",
    "LifetimeStats",
    "ReactionEvent",
    "SpeciesInstance",
    "SpeciesLibrary",
    "TimelinePanel",
    "bond_retention",
    "bond_series",
    "bond_states",
    "close_contacts",
    "contact_states",
    "detect_events",
    "draw_timeline",
    "graph_key",
    "hill_formula",
    "hysteresis_states",
    "kaplan_meier",
    "lifetime_statistics",
    "molecule_graph",
    "parse_cutoff_overrides",
    "persistence_filter",
    "persistence_filter_matrix",
    "plot_timeline",
    "populations",
    "proportions",
    "reaction_network",
    "species_in_frame",
    "species_instances",
    "species_series",
    "states_to_sets",
    "t_interval",
    "wilson_interval",
]
