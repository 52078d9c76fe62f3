"""Batched QCT trajectories vs one-at-a-time ASE trajectories, same NequIP model, same run.

Workload (atmospheric issue): N OH + propene trajectories as QCT starts them (298 K, thermal
relative speed, random orientations and impact parameters, Maxwell-Boltzmann internal
velocities), NVE velocity Verlet at 0.5 fs for ``--steps`` steps. The engine runs all N at
once (``run_md``, one batch, the model's batched module, eager); the baseline runs ASE's
``VelocityVerlet`` with the same model's ASE calculator (nequip's own ``NequIPCalculator``,
eager) on each trajectory in turn. Both run the same number of steps (no stop condition), so
the ratio is one of throughput (trajectory-steps per second). Both ends check energy
conservation (the largest |E - E0| over the N trajectories is printed). Both sides run in one
thread; on a loaded machine the wall-clock ratio depends on how the load changed between the
two, so the ratio of CPU seconds (this process's user + system time) is printed beside it.

    .venv/bin/python benchmarks/atmospheric_qct.py [--model MODEL_DIR] [--n 8,32]
        [--steps 40] [--json]

``--model``: a trained NequIP folder (e.g. ``runs/atmospheric_tiny/model`` from
``mlp-atmospheric case-study --scale tiny``). Without it a tiny NequIP is trained for two
epochs on 24 GFN2-xTB frames of OH + propene (about a minute; speed does not depend on how
well a model is trained). Ratios of one run only.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def tiny_model(folder: Path):
    """A tiny NequIP trained for 2 epochs on 24 GFN2-labelled OH + propene frames."""
    from atmospheric import systems
    from atmospheric.model import NequIPAdapter, load_config
    from common.data import Dataset

    oh = systems.oh_radical()
    mol, labels = systems.voc("propene")
    rng = np.random.default_rng(0)
    chans = systems.channels(mol, labels)
    frames = [systems.complex_at(oh, mol, chans[k % len(chans)], float(d), rng)
              for k, d in enumerate(np.linspace(4.0, 1.6, 24))]
    for f in frames:
        f.positions += rng.normal(0.0, 0.05, f.positions.shape)
    labelled, _ = systems.label_frames(frames, folder / "labels.db")
    train, valid = Dataset.from_frames(labelled).split((0.8, 0.2), seed=0)
    return NequIPAdapter.train(train, valid, folder / "model",
                               config=load_config("tiny", max_epochs=2, patience=2), seed=0)


def starts(n: int, temperature_K: float, cutoff_A: float, seed: int = 0):
    """N QCT initial conditions of OH + propene (qct's own sampler)."""
    from atmospheric import systems
    from atmospheric.qct import _D0_MARGIN_A, _reactant, _sample

    ra, rb = _reactant(systems.oh_radical(), "A"), _reactant(systems.voc("propene")[0], "B")
    bound = ra.radius_A + rb.radius_A + cutoff_A
    s = _sample(ra, rb, temperature_K, 4.0, bound + _D0_MARGIN_A, n,
                np.random.default_rng(seed), "mb")
    return s.frames


def run_engine(frames, model, steps: int, outdir: str) -> dict:
    from common.md.runner import run_md

    t0, c0 = time.perf_counter(), time.process_time()
    s = run_md(frames, model.batched(), outdir, ensemble="nve", timestep_fs=0.5, steps=steps,
               traj_every=0, batch_size=len(frames), progress=False, potential_label="nequip")
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"wall_s": wall, "cpu_s": cpu, "traj_steps_per_s": len(frames) * steps / wall,
            "traj_steps_per_cpu_s": len(frames) * steps / cpu,
            "drift_eV": _drift(outdir, s, len(frames))}


def _drift(outdir: str, summary: dict, n: int) -> float | None:
    """Largest |E(end) - E(0)| from the engine's thermo log, if it has the total energy."""
    path = Path(summary.get("thermo", ""))
    if not path.exists():
        return None
    rows = [line.split() for line in path.read_text().splitlines() if line and line[0] != "#"]
    head = [line for line in path.read_text().splitlines() if line.startswith("#")]
    cols = head[-1].lstrip("#").split() if head else []
    if "Etot_eV" not in cols or "system" not in cols:
        return None
    e, sy = cols.index("Etot_eV"), cols.index("system")
    first, last = {}, {}
    for r in rows:
        first.setdefault(r[sy], float(r[e]))
        last[r[sy]] = float(r[e])
    return max(abs(last[k] - first[k]) for k in first) if first else None


def run_ase(frames, model, steps: int) -> dict:
    from ase import units
    from ase.md.verlet import VelocityVerlet

    drift = 0.0
    t0, c0 = time.perf_counter(), time.process_time()
    for f in frames:
        at = f.copy()
        at.calc = model.calculator()
        e0 = at.get_total_energy()
        VelocityVerlet(at, timestep=0.5 * units.fs).run(steps)
        drift = max(drift, abs(at.get_total_energy() - e0))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"wall_s": wall, "cpu_s": cpu, "traj_steps_per_s": len(frames) * steps / wall,
            "traj_steps_per_cpu_s": len(frames) * steps / cpu, "drift_eV": drift}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="a trained NequIP model folder")
    ap.add_argument("--n", default="8,32", help="trajectories, comma-separated")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    from atmospheric.model import NequIPAdapter

    tmp = Path(tempfile.mkdtemp(prefix="atm_qct_bench_"))
    model = NequIPAdapter.load(args.model) if args.model else tiny_model(tmp)
    c = model.meta["config"]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; NequIP "
          f"{c['num_layers']} layers, l_max {c['l_max']}, {c['num_features']} features, "
          f"cutoff {c['cutoff_A']} Å, {c['model_dtype']}, eager; OH + propene (11 atoms), "
          f"NVE 0.5 fs, {args.steps} steps")
    print(f"{'N':>5} {'engine traj-steps/s':>20} {'ASE traj-steps/s':>17} {'ratio':>7} "
          f"{'ratio (CPU s)':>14} {'max|dE| engine':>15} {'max|dE| ASE':>12}")
    rows = []
    for n in [int(x) for x in args.n.split(",")]:
        frames = starts(n, 298.0, model.cutoff)
        eng = run_engine(frames, model, args.steps, str(tmp / f"md_{n}"))
        ase_r = run_ase(frames, model, args.steps)
        ratio = eng["traj_steps_per_s"] / ase_r["traj_steps_per_s"]
        ratio_cpu = eng["traj_steps_per_cpu_s"] / ase_r["traj_steps_per_cpu_s"]
        rows.append({"n": n, "steps": args.steps, "engine": eng, "ase": ase_r, "ratio": ratio,
                     "ratio_cpu": ratio_cpu})
        de = "—" if eng["drift_eV"] is None else f"{eng['drift_eV']:.2e}"
        print(f"{n:>5} {eng['traj_steps_per_s']:>20.1f} {ase_r['traj_steps_per_s']:>17.1f} "
              f"{ratio:>7.2f} {ratio_cpu:>14.2f} {de:>15} {ase_r['drift_eV']:>12.2e}",
              flush=True)
    if args.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
