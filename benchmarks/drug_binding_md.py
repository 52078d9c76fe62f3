"""ANI molecular dynamics three ways, measured in the same run.

1. **OpenMM vs ASE, one molecule.** Langevin MD of one ligand entirely on the ANI model (pure
   ML): in OpenMM through openmmml with our model registered (``drug_binding.mlmm.ml_system``,
   evaluated by ``openmm.PythonForce``, TorchScript, 1 thread), against ASE's Langevin with
   torchani's own ASE calculator (``ANIAdapter.calculator()``) on the same model and molecule.
2. **Batched vs one at a time, many ligands.** The batched MD engine
   (``common.md.run_md`` with ``ANIBatched``) on N different ligands in one run, against the
   same engine run on one ligand after the other, and ASE + torchani's calculator one ligand
   after the other.

Weights: a model folder given by ``--model`` (e.g. a case study's ``model/``), else a randomly
initialised ANI of the ``--config`` architecture (the cost per step does not depend on the
weights). Random weights give forces of ~10 eV/Å and heat a molecule by thousands of K
within steps, so with them the default time step is 0.05 fs (10 fs in 200 steps: the
molecules stay near their starting geometry while we time them) and the engine's blow-up
guard is relaxed; the trajectories are not physical. With ``--model`` the default is 0.5 fs
and the guard is the engine's own. Steps/s depend on the machine's load: compare the
ratios of one run only.

    .venv/bin/python benchmarks/drug_binding_md.py [--steps 200] [--ligands 16]
        [--model DIR | --config tiny|paper] [--timestep-fs DT] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

#: small drug-like molecules of H C N O (ANI-2x elements), cycled for --ligands
SMILES = ("NC(=O)c1ccccc1", "Oc1ccccc1", "Nc1ccccc1", "Cc1ccccc1", "CC(=O)Nc1ccc(O)cc1",
          "OC(=O)c1ccccc1O", "CC(C)Cc1ccc([C@@H](C)C(=O)O)cc1", "Cn1cnc2c1c(=O)n(C)c(=O)n2C")


def ligands(n: int):
    from drug_binding.prepare import ligand_from_smiles, ligand_to_atoms

    return [ligand_to_atoms(ligand_from_smiles(SMILES[k % len(SMILES)], seed=k))
            for k in range(n)]


def topology_of(atoms):
    """An OpenMM Topology of one residue holding ``atoms`` (no bonds: pure ML needs none)."""
    from openmm import app

    top = app.Topology()
    res = top.addResidue("LIG", top.addChain())
    for s in atoms.get_chemical_symbols():
        top.addAtom(s, app.Element.getBySymbol(s), res)
    return top


def openmm_rate(atoms, model_dir: str, steps: int, timestep_fs: float) -> float:
    """Pure-ML OpenMM Langevin steps per second (after a 10-step warm-up that loads and
    scripts the model)."""
    from drug_binding import mlmm

    top = topology_of(atoms)
    system = mlmm.ml_system(top, model_dir, threads=1)
    sim = mlmm.simulation(system, top, atoms.positions / 10.0, 300.0, timestep_fs,
                          platform="Reference")
    sim.step(10)
    t0 = time.perf_counter()
    sim.step(steps)
    return steps / (time.perf_counter() - t0)


def ase_rate(frames, adapter, steps: int, timestep_fs: float) -> float:
    """ASE Langevin + torchani's calculator, one molecule after the other: steps/s."""
    from common.md.ase_baseline import run_ase_loop

    warm = frames[0].copy()
    warm.calc = adapter.calculator()
    warm.get_forces()
    r = run_ase_loop([a.copy() for a in frames], adapter.calculator, steps, ensemble="nvt",
                     timestep_fs=timestep_fs, temperature_K=300.0)
    return r["replica_steps_per_s"]


def engine_rate(frames, adapter, steps: int, timestep_fs: float, out: str, guard=None) -> dict:
    """The batched engine on all ``frames`` in one run (replica-steps/s, batch size)."""
    from common.md.runner import run_md

    t0 = time.perf_counter()
    s = run_md(frames, adapter.batched(), out, ensemble="nvt", temperature_K=300.0,
               timestep_fs=timestep_fs, steps=steps, traj_every=steps, progress=False,
               guard=guard)
    return {"rate": s["replica_steps_per_s"], "batch_size": s["batch_size"],
            "total_s": time.perf_counter() - t0}


def main() -> None:
    import torch

    from drug_binding.model import ANIAdapter

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--ligands", type=int, default=16)
    ap.add_argument("--model", default=None, help="an ANI model folder (default: random "
                    "weights of --config)")
    ap.add_argument("--config", default="tiny")
    ap.add_argument("--timestep-fs", type=float, default=None,
                    help="default 0.05 fs with random weights, 0.5 fs with --model")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    os.environ.setdefault("OPENMM_CPU_THREADS", "1")
    tmp = tempfile.mkdtemp(prefix="ani_bench_")
    model_dir = args.model or str(Path(tmp) / "model")
    if args.model is None:
        ANIAdapter.untrained(model_dir, args.config, elements=["H", "C", "N", "O"])
    adapter = ANIAdapter.load(model_dir)
    guard = None
    if args.timestep_fs is None:
        args.timestep_fs = 0.5 if args.model else 0.05
    if args.model is None:  # random weights: unphysical forces, timed all the same
        from common.md.guard import BlowUpGuard

        guard = BlowUpGuard(max_force_eV_A=1e4, max_temperature_K=1e7)
    frames = ligands(args.ligands)
    one = frames[0]
    print(f"torch {torch.__version__}, 1 thread; ANI {args.model or args.config + ' (random)'}; "
          f"{args.steps} steps of {args.timestep_fs} fs")

    omm = openmm_rate(one, model_dir, args.steps, args.timestep_fs)
    ase1 = ase_rate([one], adapter, args.steps, args.timestep_fs)
    print(f"one ligand ({len(one)} atoms, {one.get_chemical_formula()}): OpenMM PythonForce "
          f"{omm:.1f} steps/s, ASE + torchani calculator {ase1:.1f} steps/s, "
          f"ratio {omm / ase1:.2f}", flush=True)

    batched = engine_rate(frames, adapter, args.steps, args.timestep_fs, f"{tmp}/batched",
                          guard)
    # the engine's own steps/s of each run (set-up and batch-size trial excluded, as for the
    # batched run): ligand-steps over the summed MD time
    single = len(frames) * args.steps / sum(
        args.steps / engine_rate([a], adapter, args.steps, args.timestep_fs,
                                 f"{tmp}/single_{k}", guard)["rate"]
        for k, a in enumerate(frames))
    ase_n = ase_rate(frames, adapter, max(10, args.steps // 4), args.timestep_fs)
    sizes = sorted({len(a) for a in frames})
    print(f"{len(frames)} ligands ({sizes[0]}-{sizes[-1]} atoms): batched engine "
          f"{batched['rate']:.1f} ligand-steps/s (batch {batched['batch_size']}), one at a "
          f"time {single:.1f}, ASE one at a time {ase_n:.1f}; batched / one at a time "
          f"{batched['rate'] / single:.2f}, batched / ASE {batched['rate'] / ase_n:.2f}")
    row = {"steps": args.steps, "timestep_fs": args.timestep_fs,
           "model": args.model or f"{args.config} (random weights)",
           "one_ligand": {"atoms": len(one), "openmm_pythonforce_steps_per_s": omm,
                          "ase_torchani_steps_per_s": ase1, "ratio_openmm_over_ase": omm / ase1},
           "many_ligands": {"n": len(frames), "atoms": [int(x) for x in np.unique(sizes)],
                            "batched_ligand_steps_per_s": batched["rate"],
                            "batch_size": batched["batch_size"],
                            "one_at_a_time_ligand_steps_per_s": single,
                            "ase_one_at_a_time_ligand_steps_per_s": ase_n,
                            "ratio_batched_over_one_at_a_time": batched["rate"] / single,
                            "ratio_batched_over_ase": batched["rate"] / ase_n}}
    if args.json:
        print(json.dumps(row, indent=2))


if __name__ == "__main__":
    main()
