"""Frenkel–Ladd windows: all λ × T windows as one batched run (semiconductors.thermo) against
the same windows run one after another with ASE's Langevin and an ASE calculator of the
λ-mixed potential. Both do the same number of steps per window; the ratio is measured in one
run (compare ratios, not absolute numbers, across machines).

    .venv/bin/python benchmarks/semiconductors_ti.py                  # LJ argon, 32 atoms
    .venv/bin/python benchmarks/semiconductors_ti.py --potential tersoff  # GaN, LAMMPS
    .venv/bin/python benchmarks/semiconductors_ti.py --potential runs/x/model  # a MACE model

Prints replica-steps per second of both paths and their ratio (``--json`` for one object).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
from ase.calculators.calculator import Calculator, all_changes


class MixedCalculator(Calculator):
    """λ U_pot + (1 − λ) (E0 + U_Ein) with COM-relative springs, as FrenkelLaddTerm does."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, inner, reference, springs, masses, e0, lam):
        super().__init__()
        self.inner, self.ref, self.k, self.m = inner, reference, springs, masses
        self.e0, self.lam = e0, lam

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        work = self.atoms.copy()
        work.calc = self.inner
        e_pot, f_pot = work.get_potential_energy(), work.get_forces()
        u = self.atoms.positions - self.ref
        u -= u[:1]
        frac = np.linalg.solve(self.atoms.cell.array.T, u.T).T
        u = (frac - np.round(frac)) @ self.atoms.cell.array
        d = u - (self.m[:, None] * u).sum(0) / self.m.sum()
        kd = self.k[:, None] * d
        e_ein = 0.5 * float((kd * d).sum())
        f_ein = -kd + (self.m / self.m.sum())[:, None] * kd.sum(0)
        lam = self.lam
        self.results = {"energy": lam * e_pot + (1 - lam) * (self.e0 + e_ein),
                        "forces": lam * f_pot + (1 - lam) * f_ein}


def setup(name: str):
    """(structure, BatchedPotential, ASE calculator factory)."""
    from ase.build import bulk

    if name == "lj":
        from common.potential.pair import LennardJones

        atoms = bulk("Ar", "fcc", a=5.26, cubic=True).repeat((2, 2, 2))
        pot = LennardJones(epsilon=0.0104, sigma=3.40, rc=8.5)
        return atoms, pot, pot.calculator
    from semiconductors import systems as S

    atoms = S.supercell(S.wurtzite(3.18092, 5.19445), (2, 2, 2))
    if name == "tersoff":
        from semiconductors.reference import TersoffBatched, TersoffGaN

        return atoms, TersoffBatched(), TersoffGaN
    from semiconductors.model import MACEAdapter

    model = MACEAdapter.load(name)
    return atoms, model.batched(), model.calculator


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--potential", default="lj", help="lj, tersoff or a MACE model folder")
    ap.add_argument("--temperatures", default="20,40,60", help="K, comma-separated")
    ap.add_argument("--n-lambda", type=int, default=8)
    ap.add_argument("--steps", type=int, default=400, help="steps per window (production)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    import torch
    from ase.md.langevin import Langevin

    from common.potential.protocol import evaluate
    from common.units import FS, PS
    from semiconductors.thermo import einstein_springs, frenkel_ladd, lambda_grid, per_atom_springs

    torch.set_num_threads(1)
    temps = [float(t) for t in args.temperatures.split(",")]
    atoms, pot, calc_factory = setup(args.potential)
    n_sys = len(temps) * args.n_lambda
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        frenkel_ladd(atoms, pot, temps, tmp, n_lambda=args.n_lambda, steps_per_window=args.steps,
                     equilibration_steps=0, batch_size=n_sys, progress=False, plot=False)
        batched_s = time.perf_counter() - t0
    springs = per_atom_springs(atoms, einstein_springs(atoms, pot))
    e0 = float(evaluate(pot, [atoms])["energy"][0])
    lambdas, _ = lambda_grid(args.n_lambda)
    t0 = time.perf_counter()
    for k, t in enumerate(temps):
        for j, lam in enumerate(lambdas):
            a = atoms.copy()
            a.calc = MixedCalculator(calc_factory(), atoms.positions.copy(), springs,
                                     atoms.get_masses(), e0, float(lam))
            Langevin(a, timestep=1.0 * FS, temperature_K=t, friction=10.0 / PS, fixcm=False,
                     rng=np.random.default_rng(k * 100 + j)).run(args.steps)
    ase_s = time.perf_counter() - t0
    total = n_sys * args.steps
    res = {"potential": args.potential, "atoms": len(atoms), "windows": n_sys,
           "steps_per_window": args.steps, "batched_s": round(batched_s, 2),
           "ase_s": round(ase_s, 2),
           "batched_replica_steps_per_s": round(total / batched_s, 1),
           "ase_replica_steps_per_s": round(total / ase_s, 1),
           "ratio": round(ase_s / batched_s, 2)}
    if args.json:
        print(json.dumps(res))
    else:
        print(f"{args.potential}, {len(atoms)} atoms, {n_sys} windows x {args.steps} steps: "
              f"batched {res['batched_replica_steps_per_s']} replica-steps/s, ASE one after "
              f"another {res['ase_replica_steps_per_s']} -> {res['ratio']}x")


if __name__ == "__main__":
    main()
