"""common.md.thermalize: a strong-friction stage lets a weak thermostat hold its temperature.

A rattled 32-atom LJ argon crystal releases far more potential energy than kT as it relaxes;
with the catalysis seed's weak friction (0.01 ps⁻¹, a 100 ps coupling time) a 5 ps run cannot
shed it, so it runs hot. After 2 ps at 10 ps⁻¹ the same weak-friction run holds the target
within its statistics (the spread between 8 independent replicas).
"""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk

from common.errors import ConfigError
from common.md import run_md, thermalize
from common.potential import LennardJones

T = 40.0
KW = {"timestep_fs": 5.0, "progress": False}


@pytest.fixture(scope="module")
def setup():
    ar = bulk("Ar", "fcc", a=5.26, cubic=True) * (2, 2, 2)
    ar.rattle(0.25, seed=1)
    ar.info["label"] = "rattled argon"
    return ar, LennardJones(epsilon=0.0104, sigma=3.40, rc=8.5)


def test_weak_thermostat_holds_the_target_only_after_thermalisation(setup, tmp_path):
    ar, lj = setup
    weak = {"steps": 1000, "temperature_K": T, "friction_per_ps": 0.01, "traj_every": 0,
            "thermo_every": 10, **KW}
    direct = run_md([ar], lj, tmp_path / "direct", replicas=8, seed=3, **weak)
    frames, stage = thermalize([ar], lj, tmp_path / "therm", steps=400, temperature_K=T,
                               friction_per_ps=10.0, replicas=8, seed=3, **KW)
    assert len(frames) == 8 and all(a.info == ar.info for a in frames)
    assert all(np.any(a.get_momenta()) for a in frames)  # the velocities are carried over
    prod = run_md(frames, lj, tmp_path / "prod", seed=5, **weak)
    se = prod["temperature_std_between_replicas_K"] / np.sqrt(8)
    assert abs(prod["mean_temperature_K"] - T) < 4 * se + 0.5
    assert abs(stage["mean_temperature_K"] - T) < 0.25 * T  # includes the first steps
    assert direct["mean_temperature_K"] > 3 * T  # the relaxation heat a weak friction keeps
    # a rerun reads the finished stage back
    again, _ = thermalize([ar], lj, tmp_path / "therm", steps=400, temperature_K=T,
                          friction_per_ps=10.0, replicas=8, seed=3, **KW)
    assert np.array_equal(again[3].get_positions(), frames[3].get_positions())
    assert np.array_equal(again[3].get_momenta(), frames[3].get_momenta())


def test_zero_steps_is_refused(setup, tmp_path):
    ar, lj = setup
    with pytest.raises(ConfigError, match="steps"):
        thermalize([ar], lj, tmp_path / "x", steps=0, temperature_K=T)
