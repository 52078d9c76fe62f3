"""The end-to-end check of the shared layer: labels -> dataset -> model -> batched MD -> results.

From reference labels to a dataset, a trained model, batched MD and a result file. It is the
README's main job until the domain case studies land.

    structures (rattled, strained Cu fcc)  -> EMT labels, cached in an ASE db (common.labels)
    -> Dataset: validate, split (common.data) -> fit a Morse potential (common.potential)
    -> batched Langevin NVT and NVE MD of replicas (common.md) -> summary.json + report.md

EMT is used because it is fast and needs nothing; the Morse fit is the smallest trained model
the suite has. Both are plumbing, not production chemistry.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

SCALES = {
    "tiny": {"n_structures": 40, "replicas": 8, "nvt_steps": 2000, "nve_steps": 1000},
    "small": {"n_structures": 200, "replicas": 32, "nvt_steps": 20000, "nve_steps": 5000},
}


def make_structures(n: int, seed: int = 0):
    """Cu fcc 2x2x2 cells (32 atoms), strained by up to ±3 % and rattled by 0.02-0.12 Å."""
    from ase.build import bulk

    rng = np.random.default_rng(seed)
    frames = []
    for k in range(n):
        a = bulk("Cu", "fcc", a=3.61 * (1 + rng.uniform(-0.03, 0.03)), cubic=True)
        a = a.repeat((2, 2, 2))
        a.rattle(rng.uniform(0.02, 0.12), seed=int(seed * 1000 + k))
        frames.append(a)
    return frames


def run(outdir: str | Path, scale: str = "tiny", seed: int = 0, progress: bool = True) -> dict:
    """Run the demo at ``scale`` into ``outdir`` (summary.json, report.md); return the summary."""
    from common.data import Dataset
    from common.errors import ConfigError
    from common.fileio import atomic_write_json, atomic_write_text
    from common.labels import label_structures, labelled_frames
    from common.md.runner import run_md
    from common.potential.analytic import AnalyticAdapter

    if scale not in SCALES:
        raise ConfigError(f"unknown scale {scale!r}", where="--scale",
                          fix=f"use one of {', '.join(SCALES)}")
    cfg = SCALES[scale]
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    t = time.perf_counter()
    frames = make_structures(cfg["n_structures"], seed)
    report = label_structures(frames, "emt", out / "labels.db", progress=progress,
                              source="demo structures")
    labelled = labelled_frames(frames, "emt", out / "labels.db")
    timings["label_s"] = time.perf_counter() - t

    ds = Dataset.from_frames([a for a in labelled if a is not None]).validate()
    train, valid, test = ds.split((0.8, 0.1, 0.1), seed=seed)
    for name, part in (("train", train), ("valid", valid), ("test", test)):
        part.write(out / "dataset" / f"{name}.extxyz", overwrite=True)

    t = time.perf_counter()
    model = AnalyticAdapter.train(train, valid, out / "model", seed=seed, config={
        "kind": "morse",  # Girifalco & Weizer's Cu Morse parameters as the starting point
        "init": {"epsilon": 0.3429, "rho0": 3.894, "r0": 2.866, "rcut1": 1.5, "rcut2": 2.0}})
    model.metrics["test"] = model.errors(test)
    model.save(out / "model")
    timings["train_s"] = time.perf_counter() - t

    pot = model.batched()
    start = [make_structures(1, seed + 99)[0]]
    md_common = {"timestep_fs": 2.0, "replicas": cfg["replicas"], "seed": seed,
                 "traj_every": 50, "progress": progress, "potential_label": "fitted morse"}
    for d in ("md_nvt", "md_nve"):
        if (out / d).exists():
            import shutil

            shutil.rmtree(out / d)  # the demo is rerun whole; labels stay cached
    t = time.perf_counter()
    nvt = run_md(start, pot, out / "md_nvt", ensemble="nvt", temperature_K=300.0,
                 friction_per_ps=5.0, steps=cfg["nvt_steps"], **md_common)
    nve = run_md(start, pot, out / "md_nve", ensemble="nve", temperature_K=300.0,
                 steps=cfg["nve_steps"], **md_common)
    timings["md_s"] = time.perf_counter() - t

    summary = {
        "scale": scale, "seed": seed,
        "labels": report.to_dict(),
        "dataset": {"n_train": len(train), "n_valid": len(valid), "n_test": len(test),
                    "stats": ds.stats()},
        "model": {"kind": "morse", "params": model.params,
                  "energy_per_atom_eV": model.energy_per_atom, "metrics": model.metrics},
        "md_nvt": {k: nvt[k] for k in ("replicas", "steps", "mean_temperature_K",
                                       "target_temperature_K", "replica_steps_per_s",
                                       "batch_size", "trajectory")},
        "md_nve": {k: nve[k] for k in ("replicas", "steps", "energy_drift_eV_per_atom_per_ps",
                                       "max_abs_energy_drift_eV_per_atom_per_ps",
                                       "replica_steps_per_s", "batch_size", "trajectory")},
        "timings_s": timings,
    }
    atomic_write_json(out / "summary.json", summary, default=float)
    atomic_write_text(out / "report.md", _report(summary))
    return summary


def _report(s: dict) -> str:
    m = s["model"]["metrics"]["test"]
    nvt, nve, lab, ds = s["md_nvt"], s["md_nve"], s["labels"], s["dataset"]
    rows = [
        ("labels (EMT, cached in labels.db)",
         f"{lab['n_labelled']} computed, {lab['n_cached']} from cache"),
        ("dataset", f"{ds['n_train']} train / {ds['n_valid']} valid / {ds['n_test']} test"),
        ("Morse fit, test set",
         f"energy MAE {m['energy_mae_eV_per_atom'] * 1000:.2f} meV/atom, "
         f"force MAE {m['force_mae_eV_A']:.4f} eV/Å"),
        (f"NVT MD, {nvt['replicas']} replicas × {nvt['steps']} steps",
         f"mean T {nvt['mean_temperature_K']:.1f} K (target {nvt['target_temperature_K']} K), "
         f"{nvt['replica_steps_per_s']:.0f} replica-steps/s"),
        (f"NVE MD, {nve['replicas']} replicas × {nve['steps']} steps",
         f"energy drift {nve['energy_drift_eV_per_atom_per_ps']:.2e} eV/atom/ps"),
    ]
    table = "\n".join(f"| {a} | {b} |" for a, b in rows)
    return (f"# mlp-cases shared-layer demo ({s['scale']})\n\n| step | result |\n|---|---|\n"
            f"{table}\n\nEMT and a Morse pair potential are plumbing checks, not production "
            "chemistry.\n")
