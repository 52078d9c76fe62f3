"""The LAMMPS baseline of the MD benchmarks runs the engine's physics (the same shifted LJ
energy on the benchmark's own structures) and reports both of its workloads."""

from __future__ import annotations

import pytest
from ase.build import bulk

from common.md.lammps_baseline import lammps_lj_energy, run_lammps_lj
from common.potential.pair import LennardJones

LJ = {"epsilon": 0.0104, "sigma": 3.4, "rc": 8.5}


def _argon(seed: int):
    a = bulk("Ar", "fcc", a=5.26, cubic=True).repeat((2, 2, 2))
    a.rattle(0.05, seed=seed)
    return a


@pytest.mark.parametrize("seed", [0, 1])
def test_lammps_energy_equals_the_engines_lj(seed):
    atoms = _argon(seed)
    ours = LennardJones(**LJ).calculator()
    atoms.calc = ours
    assert lammps_lj_energy(atoms, **LJ) == pytest.approx(atoms.get_potential_energy(),
                                                          abs=1e-9)


def test_one_box_and_per_structure_timings_are_reported():
    structures = [_argon(k) for k in range(4)]
    kw = dict(steps=20, timestep_fs=5.0, temperature_K=40.0, **LJ)
    loop = run_lammps_lj(structures[:2], **kw)
    box = run_lammps_lj(structures, one_box=True, repeat=(2, 2, 1), **kw)
    assert loop["atoms"] == 32 and box["atoms"] == 128
    assert loop["replica_steps_per_s"] > 0 and box["replica_steps_per_s"] > 0
    with pytest.raises(ValueError, match="does not make 4 replicas"):
        run_lammps_lj(structures, one_box=True, repeat=(2, 1, 1), **kw)
