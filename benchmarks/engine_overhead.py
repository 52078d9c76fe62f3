"""What the MD engine costs on top of the model: engine step time vs the model's own
forward + backward on the same batch, and vs ASE MD with the framework's own calculator.

For any potential the engine takes (``lj``, ``morse``, a saved model folder of any adapter,
``module:Class``), on ``--replicas`` copies of one structure, Langevin NVT:

* model alone: the potential's forward (energy, forces by autograd where the model does that)
  on the batch, called ``--steps`` times on a fixed neighbour list: the model's own cost;
* engine: ``MDEngine`` steps on the same batch, split into the potential's calls, neighbour
  list updates and the rest (integrator, thermostat noise, blow-up guard, bookkeeping);
* engine overhead = 1 − (model alone) / (engine step): the issue's target is at most 10 %;
  the two are timed apart, so on a loaded machine this difference carries their noise (it can
  come out negative);
* engine's own share = (neighbour updates + rest) / engine step, timed inside the same steps:
  what the engine adds to the potential's calls, free of the noise between two timings;
* ASE: ``--ase-steps`` steps of ASE's Langevin with the framework's own ASE calculator (the
  adapter's ``calculator()``; ASE's own for lj/morse), one replica after another; calculators
  are made and called once before the timing, so loading a model is not counted as MD.

    .venv/bin/python benchmarks/engine_overhead.py --potential MODEL_DIR --structure slab.xyz \\
        [--replicas 1,8] [--steps 50] [--ase-steps 20] [--timestep-fs 1] [--temperature-K 300]

Without ``--structure``, a rattled 32-atom Ar fcc crystal (the LJ benchmark's) is used.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from ase.build import bulk
from ase.io import read

from common.md.ase_baseline import run_ase_loop
from common.md.engine import MDEngine
from common.md.noise import maxwell_boltzmann
from common.md.state import BatchState
from common.potential.registry import make_potential


def _structure(path: str | None):
    if path:
        return read(path)
    a = bulk("Ar", "fcc", a=5.26, cubic=True).repeat((2, 2, 2))
    a.rattle(0.02, seed=0)
    return a


def _calculator_factory(name: str, params: dict):
    """The framework's own ASE calculator for ``name`` (a fresh one per replica)."""
    p = Path(name)
    if (p / "mlp-cases-model.json").exists():
        from common.potential.registry import get_adapter

        framework = json.loads((p / "mlp-cases-model.json").read_text())["framework"]
        if framework in ("lj", "morse"):
            return lambda: make_potential(name).calculator()
        adapter = get_adapter(framework).load(p)
        return adapter.calculator
    pot = make_potential(name, params)
    return pot.calculator


class _Timed:
    """Call ``fn`` and add its wall time to ``self.seconds``."""

    def __init__(self, fn):
        self.fn, self.seconds, self.calls = fn, 0.0, 0

    def __call__(self, *a, **k):
        t = time.perf_counter()
        try:
            return self.fn(*a, **k)
        finally:
            self.seconds += time.perf_counter() - t
            self.calls += 1


def bench(name: str, params: dict, atoms, n: int, steps: int, timestep_fs: float,
          temperature_K: float) -> dict:
    frames = []
    for r in range(n):
        a = atoms.copy()
        a.set_velocities(maxwell_boltzmann(a.get_masses(), temperature_K, r))
        frames.append(a)
    pot = make_potential(name, params)
    state = BatchState.from_atoms(frames)
    eng = MDEngine(pot, state, ensemble="nvt", timestep_fs=timestep_fs,
                   temperature_K=temperature_K, friction_per_ps=1.0, seeds=list(range(n)))
    eng.run(5)  # warm-up
    # the model alone on this batch, fixed neighbour list
    eng.neighbors.update(state)
    grad = getattr(pot, "needs_grad", False)
    with torch.set_grad_enabled(grad):
        pot(state, eng.neighbors)
        t = time.perf_counter()
        for _ in range(steps):
            pot(state, eng.neighbors)
        model_s = (time.perf_counter() - t) / steps
    # the engine, its parts timed
    timed_pot = _Timed(eng.potential)
    timed_nl = _Timed(eng.neighbors.update)
    eng.potential, eng.neighbors.update = timed_pot, timed_nl
    t = time.perf_counter()
    eng.run(steps)
    step_s = (time.perf_counter() - t) / steps
    return {"replicas": n, "atoms_per_replica": len(atoms), "model_alone_ms": 1e3 * model_s,
            "engine_step_ms": 1e3 * step_s,
            "engine_potential_ms": 1e3 * timed_pot.seconds / steps,
            "engine_neighbor_ms": 1e3 * timed_nl.seconds / steps,
            "engine_rest_ms": 1e3 * (step_s - (timed_pot.seconds + timed_nl.seconds) / steps),
            "engine_overhead_fraction": 1.0 - model_s / step_s,
            "engine_own_fraction": 1.0 - timed_pot.seconds / steps / step_s,
            "engine_replica_steps_per_s": n / step_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--potential", default="lj")
    ap.add_argument("--param", action="append", default=[], help="NAME=VALUE (lj, morse, ...)")
    ap.add_argument("--structure", default=None)
    ap.add_argument("--replicas", default="1,8")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--ase-steps", type=int, default=20)
    ap.add_argument("--timestep-fs", type=float, default=1.0)
    ap.add_argument("--temperature-K", type=float, default=300.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    params = {k: float(v) for k, v in (p.split("=", 1) for p in args.param)}
    if args.potential == "lj" and not params:
        params = {"epsilon": 0.0104, "sigma": 3.4, "rc": 8.5}
    atoms = _structure(args.structure)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; potential "
          f"{args.potential}; {len(atoms)} atoms per replica")
    print(f"{'replicas':>8} {'model ms':>9} {'step ms':>8} {'pot ms':>7} {'nlist ms':>8} "
          f"{'rest ms':>8} {'overhead':>8} {'own':>6} {'engine rs/s':>11} {'ASE rs/s':>9} "
          f"{'ratio':>6}")
    rows = []
    factory = _calculator_factory(args.potential, params)
    for n in [int(x) for x in args.replicas.split(",")]:
        row = bench(args.potential, params, atoms, n, args.steps, args.timestep_fs,
                    args.temperature_K)
        frames = [atoms.copy() for _ in range(min(n, 2))]  # every replica costs ASE the same
        calcs = []
        for a in frames:  # made and warmed up outside the timing (model loading is not MD)
            calcs.append(factory())
            a.calc = calcs[-1]
            a.get_forces()
        ase = run_ase_loop(frames, iter(calcs).__next__, args.ase_steps, ensemble="nvt",
                           timestep_fs=args.timestep_fs, temperature_K=args.temperature_K)
        row["ase_replica_steps_per_s"] = ase["replica_steps_per_s"]
        row["ratio_engine_over_ase"] = row["engine_replica_steps_per_s"] / ase[
            "replica_steps_per_s"]
        rows.append(row)
        print(f"{n:>8} {row['model_alone_ms']:>9.2f} {row['engine_step_ms']:>8.2f} "
              f"{row['engine_potential_ms']:>7.2f} {row['engine_neighbor_ms']:>8.2f} "
              f"{row['engine_rest_ms']:>8.2f} {row['engine_overhead_fraction']:>8.1%} "
              f"{row['engine_own_fraction']:>6.1%} "
              f"{row['engine_replica_steps_per_s']:>11.0f} "
              f"{row['ase_replica_steps_per_s']:>9.0f} {row['ratio_engine_over_ase']:>6.1f}",
              flush=True)
    if args.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
