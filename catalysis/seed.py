"""The seed's published facts for case study 1 (CO2 electroreduction on Cu(111)), in one place.

The case study's report, its summary and the README take the seed's numbers from here (a test
checks the README against this module). What the seed states:

* MLP-MD: 10 trajectories of 1 µs each (10 µs in all), Langevin at 300 K with a friction of
  0.01 ps⁻¹; SchNet at 36 h of wall time per µs on one V100 GPU.
* MD system: 200 Cu atoms + 50 H2O + CO2, with an electrode-potential model.
* Training data: a 96-atom, 4-layer Cu(111) slab; 8,500 configurations (6,000 static + 2,500
  from AIMD) inside a ±3 eV energy window.
* Results: 127 reaction events; a statistically sampled barrier of 0.52 ± 0.08 eV; C–C
  coupling pathway fractions A/B/C = 12/68/20 %; *OCCHO discovered as an intermediate with a
  mean lifetime of 180 ps.

"180 ps" is the *OCCHO lifetime, not the simulated time.
"""

from __future__ import annotations

SEED_RESULTS: dict = {
    "n_trajectories": 10,
    "trajectory_us": 1.0,
    "simulated_us": 10.0,
    "temperature_K": 300.0,
    "friction_per_ps": 0.01,
    "n_reaction_events": 127,
    "barrier_mean_eV": 0.52,
    "barrier_std_eV": 0.08,
    "pathway_fractions": {"A": 0.12, "B": 0.68, "C": 0.20},
    "lifetime_ps": {"*OCCHO": 180.0},
    "md_system": {"n_cu": 200, "n_water": 50, "adsorbates": ["CO2"],
                  "electrode_potential": "an electrode-potential model (not modelled here)"},
    "training": {"slab_atoms": 96, "layers": 4, "n_configurations": 8500, "n_static": 6000,
                 "n_aimd": 2500, "energy_window_eV": 3.0},
    "gpu_hours_per_us": 36.0,
    "gpu": "one NVIDIA V100",
}

#: what an electrode-potential model would need, said in the report and the paper config
ELECTRODE_POTENTIAL_NOTE = (
    "The seed's electrode-potential model is not modelled: the MD here is at zero net charge "
    "and no applied potential. Modelling it would need a constant-potential method (e.g. a "
    "grand-canonical electron number with a reference that gives the work function, or "
    "charged slabs with a counter-charge plane) and reference labels computed at that charge, "
    "which GFN1-xTB on a periodic slab does not provide.")


def seed_md_wall_time_h() -> float:
    """Return the seed's own wall time for its MD (its 36 h per µs on one V100, times 10 µs)."""
    return SEED_RESULTS["gpu_hours_per_us"] * SEED_RESULTS["simulated_us"]
