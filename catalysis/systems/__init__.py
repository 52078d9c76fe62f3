"""Structure builders for CO2 electroreduction on Cu(111): slabs, adsorbates, sites, sampling.

The seed's systems are a 96-atom Cu(111) slab (4 layers of 24 atoms, ``(4, 6, 4)``, orthogonal
cell, bottom two layers fixed) with the adsorbates of the CO2-to-C1/C2 network on top. This
package builds them and the configurations a training set is made of. Everything public is
re-exported here, so ``from catalysis import systems; systems.place(...)`` works; the rooms:

- ``slabs`` -- :func:`cu111_slab` (``ase.build.fcc111``; tags 1 = top layer ... L = bottom,
  bottom ``fixed_layers`` under :class:`~ase.constraints.FixAtoms`), :func:`fcc_lattice_constant`,
  :func:`surface_atoms` and the layer helpers, :data:`CU_A`.
- ``adsorbates`` -- :data:`ADSORBATES`: the 12 seed species (:data:`SEED_SPECIES`) and the C2
  intermediates (:data:`C2_SPECIES`) as :class:`Adsorbate` entries: geometry in adsorption
  orientation (binding atom(s) first, at z = 0, the rest above), binding atoms, preferred sites
  and the metal-adsorbate bond length used for the height; the Z-matrix builders.
- ``surface`` -- :func:`sites`: every top / bridge / fcc / hcp site (:data:`SITE_KINDS`) of
  the top layer, from the geometry; ``_Surface``, the lateral periodic geometry behind it.
  (Not named ``sites``, so the function of that name is not shadowed by a module.)
- ``placement`` -- :func:`place`, :func:`place_many`: put adsorbates on sites.
- ``water`` -- :func:`water_layer`: a random water layer over the surface and adsorbates.
- ``sampling`` -- :func:`sample_configurations`: rattled / displaced copies (unlabelled).
- ``md`` -- :func:`md_snapshots`: labelled Langevin MD frames.
- ``window`` -- :func:`energy_window`, :class:`WindowReport`: the ±window filter.
- ``library`` -- :func:`seed_library`: the starting structures of the case study (``"tiny"``
  or ``"paper"``).
- ``calculators`` -- the shared ``calculator`` argument (ASE calculator, spec or preset).

Import order (no cycles): calculators -> slabs -> surface; adsorbates; placement -> water,
sampling, library; md, window stand alone.

Placed adsorbate atoms get tag 0 (ASE's convention) and an ``adsorbate_id`` per-atom array
(-1 for the slab, 0, 1, ... per placed molecule); ``atoms.info["adsorbates"]`` lists the species
placed ("CO+CHO"). Units: Å, eV, fs, K.
"""

from __future__ import annotations

from catalysis.systems.adsorbates import ADSORBATES, C2_SPECIES, SEED_SPECIES, Adsorbate
from catalysis.systems.library import seed_library
from catalysis.systems.md import md_snapshots
from catalysis.systems.placement import place, place_many
from catalysis.systems.sampling import sample_configurations
from catalysis.systems.slabs import CU_A as CU_A  # public, but not in __all__ (as before)
from catalysis.systems.slabs import cu111_slab, fcc_lattice_constant, surface_atoms
from catalysis.systems.surface import SITE_KINDS, sites
from catalysis.systems.water import water_layer
from catalysis.systems.window import WindowReport, energy_window

__all__ = [
    "ADSORBATES",
    "C2_SPECIES",
    "SEED_SPECIES",
    "SITE_KINDS",
    "Adsorbate",
    "WindowReport",
    "cu111_slab",
    "energy_window",
    "fcc_lattice_constant",
    "md_snapshots",
    "place",
    "place_many",
    "sample_configurations",
    "seed_library",
    "sites",
    "surface_atoms",
    "water_layer",
]
