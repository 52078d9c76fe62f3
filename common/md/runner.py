"""``run_md``: replicas of structures -> batched MD -> trajectories, thermo log, summary.

This is what ``mlp-cases md`` and the pipelines call. Systems are split into batches of the
measured best size (see :mod:`common.md.batching`); each batch writes trajectories and the thermo
log as it goes and checkpoints every ``checkpoint_every`` steps, so a killed run continues with
``restart=True`` from where it stopped, with no frame lost or written twice.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from ase import Atoms

from common.errors import ConfigError, DataError
from common.md.batching import choose_batch_size
from common.md.engine import MDEngine
from common.md.noise import maxwell_boltzmann
from common.md.reporters import DeviationFlagger, ExtxyzTrajectory, HDF5Trajectory, ThermoLog
from common.md.state import BatchState

RUN_FILE = "run.json"


def check_structures(frames: Sequence[Atoms], min_distance_A: float = 0.5) -> None:
    """Refuse structures MD cannot start from: no atoms, periodic without a cell, overlaps."""
    from ase.neighborlist import neighbor_list

    for k, a in enumerate(frames):
        if len(a) == 0:
            raise DataError("structure has no atoms", where=f"structure {k}",
                            fix="remove empty frames")
        lengths = a.cell.lengths()
        if any(p and L < 1e-8 for p, L in zip(a.pbc, lengths, strict=True)):
            raise DataError("structure is periodic but has no cell vector along a periodic "
                            "axis", where=f"structure {k}",
                            fix="set the cell (Lattice= in extxyz) or pbc=False for a molecule")
        if len(a) > 1:
            i, d = neighbor_list("id", a, min_distance_A)
            if len(i):
                m = int(np.argmin(d))
                raise DataError(f"atoms overlap: atom {i[m]} has a neighbour at {d[m]:.3f} Å "
                                f"(< {min_distance_A} Å)", where=f"structure {k}",
                                fix="fix the structure (or relax it) before running MD")


def _validate(steps: int, timestep_fs: float, temperature_K, ensemble: str) -> None:
    if steps < 0:
        raise ConfigError(f"steps must be >= 0 (got {steps})", where="--steps",
                          fix="give a non-negative number of steps")
    if not timestep_fs > 0:
        raise ConfigError(f"timestep must be > 0 fs (got {timestep_fs})", where="--timestep-fs",
                          fix="use e.g. 0.5-1 fs with hydrogen, 2-5 fs for heavy atoms")
    temps = np.atleast_1d(np.asarray(temperature_K, dtype=float))
    if ensemble == "nvt" and not (temps > 0).all():
        raise ConfigError(f"temperature must be > 0 K for NVT (got {temperature_K})",
                          where="--temperature-K", fix="give a positive temperature, e.g. 300")
    if (temps < 0).any():
        raise ConfigError(f"temperature must be >= 0 K (got {temperature_K})",
                          where="--temperature-K", fix="give a non-negative temperature")


def replicate(frames: Sequence[Atoms], replicas: int, seed: int, temperature_K: float
              ) -> tuple[list[Atoms], list[int]]:
    """``replicas`` copies of each frame with seeds seed, seed+1, ...; frames without momenta
    get Maxwell-Boltzmann velocities at ``temperature_K`` from their own seed."""
    if replicas < 1:
        raise ConfigError(f"replicas must be >= 1 (got {replicas})", where="--replicas",
                          fix="give at least 1")
    out, seeds = [], []
    for f in frames:
        for _ in range(replicas):
            s = seed + len(seeds)
            a = f.copy()
            if not f.has("momenta") or not np.any(f.get_momenta()):
                fixed = np.zeros(len(a), dtype=bool)
                for c in a.constraints:
                    if type(c).__name__ == "FixAtoms":
                        fixed[c.get_indices()] = True
                a.set_velocities(maxwell_boltzmann(a.get_masses(), temperature_K, s, fixed))
            out.append(a)
            seeds.append(s)
    return out, seeds


def run_md(frames: Sequence[Atoms], potential, outdir: str | Path, *, ensemble: str = "nvt",
           timestep_fs: float = 1.0, temperature_K: float = 300.0, friction_per_ps: float = 1.0,
           steps: int = 1000, replicas: int = 1, seed: int = 0, device: str = "cpu",
           dtype: torch.dtype | None = None, batch_size: int | str = "auto",
           traj_every: int = 10, traj_format: str = "extxyz", thermo_every: int | None = None,
           checkpoint_every: int = 0, restart: bool = False, skin: float = 0.5,
           terms: Sequence = (), progress: bool = True, potential_label: str = "",
           compile: bool | str = "auto", flag_deviation_eV_A: float | None = None,
           on_blowup: str = "raise") -> dict:
    """Run batched MD of ``replicas`` copies of each structure; return the summary dict
    (also written to ``outdir/summary.json``).

    ``compile``: use the potential's torch.compile-d kernel where it has one (pair
    potentials); "auto" does so when the run is long enough to repay 10-30 s of compilation.
    ``flag_deviation_eV_A``: with an ensemble potential, frames whose max force deviation
    exceeds this are written to ``outdir/flagged_frames.extxyz`` for relabelling.
    ``on_blowup``: "raise" stops the run at the first blow-up; "stop_system" freezes only the
    replica that blew up (listed in the summary's ``failed``) and finishes the others.
    """
    _validate(steps, timestep_fs, temperature_K, ensemble)
    if traj_format not in ("extxyz", "h5"):
        raise ConfigError(f"unknown trajectory format {traj_format!r}", where="--format",
                          fix="use extxyz or h5")
    check_structures(frames)
    outdir = Path(outdir)
    systems, seeds = replicate(frames, replicas, seed, temperature_K)
    state = BatchState.from_atoms(systems, device=device, dtype=dtype)
    if compile == "auto":
        compile = state.n_atoms * steps > 20_000_000
    if compile and hasattr(potential, "use_compiled_kernel"):
        potential.use_compiled_kernel()
    thermo_every = thermo_every or traj_every
    config = {"n_systems": len(systems), "ensemble": ensemble, "timestep_fs": timestep_fs,
              "temperature_K": temperature_K, "friction_per_ps": friction_per_ps,
              "steps": steps, "replicas": replicas, "seed": seed, "potential": potential_label,
              "traj_every": traj_every, "traj_format": traj_format, "skin": skin,
              "structures_sha": _frames_hash(frames)}

    def make_engine(sub: BatchState, sub_seeds, reporters=(), ckpt=None):
        return MDEngine(potential, sub, ensemble=ensemble, timestep_fs=timestep_fs,
                        temperature_K=temperature_K, friction_per_ps=friction_per_ps,
                        seeds=sub_seeds, skin=skin, terms=terms, reporters=reporters,
                        checkpoint_path=ckpt, checkpoint_every=checkpoint_every,
                        on_blowup=on_blowup)

    run_file = outdir / RUN_FILE
    if restart:
        if not run_file.exists():
            raise ConfigError("nothing to restart: no run.json", where=str(outdir),
                              fix="run without --restart first, or give the run's --out folder")
        previous = json.loads(run_file.read_text())
        if previous["config"] != config:
            raise ConfigError("the run in this folder had other settings or structures",
                              where=str(run_file), fix="restart with exactly the same options")
        chosen, table = previous["batch_size"], previous["batch_table"]
    else:
        if outdir.exists() and any(outdir.iterdir()):
            raise ConfigError("output folder is not empty", where=str(outdir),
                              fix="choose a new --out folder, or pass --restart to continue it")
        outdir.mkdir(parents=True, exist_ok=True)
        if batch_size == "auto":
            trial = min(5, max(1, steps))
            chosen, table = choose_batch_size(
                lambda sub: make_engine(sub, seeds[:sub.n_systems]), state, trial_steps=trial)
        else:
            chosen, table = max(1, min(int(batch_size), len(systems))), []
        run_file.write_text(json.dumps({"config": config, "batch_size": chosen,
                                        "batch_table": table}, indent=2))

    totals = {"replica_steps": 0, "wall_s": 0.0, "neighbor_rebuilds": 0}
    failed: dict[int, str] = {}
    trajectories: list[str] = []
    thermo_path = outdir / "thermo.dat"
    for first in range(0, len(systems), chosen):
        idx = list(range(first, min(first + chosen, len(systems))))
        sub = state.select(idx)
        n = len(idx)
        if traj_format == "extxyz":
            traj = ExtxyzTrajectory(outdir, every=traj_every, system_offset=first, n_systems=n)
            trajectories += [str(traj.path(s)) for s in range(n)]
        else:
            traj = HDF5Trajectory(outdir / "trajectory.h5", every=traj_every,
                                  system_offset=first, n_systems=n)
            trajectories = [str(traj.path)]
        thermo = ThermoLog(thermo_path, every=thermo_every, system_offset=first, n_systems=n)
        reporters = [traj, thermo]
        if flag_deviation_eV_A is not None:
            flagger = DeviationFlagger(outdir / "flagged_frames.extxyz", flag_deviation_eV_A,
                                       every=thermo_every, system_offset=first, n_systems=n)
            reporters.append(flagger)
        ckpt = outdir / "checkpoints" / f"batch_{first:05d}.pt"
        engine = make_engine(sub, [seeds[k] for k in idx], reporters,
                             ckpt if checkpoint_every else None)
        if restart and ckpt.exists():
            engine.load_checkpoint(ckpt)
        elif restart:  # this batch never checkpointed: start it again from scratch
            for r in reporters:
                r.truncate_after(-1)
        remaining = steps - engine.step
        info = engine.run(remaining, progress=progress,
                          description=f"MD systems {first}-{first + n - 1}")
        if checkpoint_every:
            engine.save_checkpoint()
        for k in ("replica_steps", "wall_s", "neighbor_rebuilds"):
            totals[k] += info[k]
        failed.update({first + s: why for s, why in engine.failed.items()})
    summary = summarize(thermo_path, state, ensemble, exclude=set(failed))
    if flag_deviation_eV_A is not None:
        flagged = outdir / "flagged_frames.extxyz"
        summary["flagged_frames"] = str(flagged) if flagged.exists() else None
        summary["n_flagged"] = _count_frames(flagged)
        summary["flag_deviation_eV_A"] = flag_deviation_eV_A
    summary.update({
        "replicas": len(systems), "structures": len(frames), "steps": steps,
        "ensemble": ensemble, "timestep_fs": timestep_fs, "device": str(device),
        "batch_size": chosen, "batch_table": table,
        "replica_steps_per_s": (totals["replica_steps"] / totals["wall_s"]
                                if totals["wall_s"] > 0 else None),
        "neighbor_rebuilds": totals["neighbor_rebuilds"],
        "trajectory": trajectories[0] if len(trajectories) == 1 else str(outdir),
        "trajectories": trajectories, "thermo": str(thermo_path),
        "failed": {str(k): v for k, v in sorted(failed.items())},
    })
    if ensemble == "nvt":
        summary["target_temperature_K"] = temperature_K
    (outdir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _frames_hash(frames: Sequence[Atoms]) -> str:
    import hashlib

    from common.data.io import structure_hash

    return hashlib.sha256("".join(structure_hash(a) for a in frames).encode()).hexdigest()[:16]


def _count_frames(path: Path) -> int:
    if not path.exists():
        return 0
    import ase.io

    return sum(1 for _ in ase.io.iread(path, ":"))


def summarize(thermo_path: Path, state: BatchState, ensemble: str,
              exclude: set[int] = frozenset()) -> dict:
    """Mean temperature (second half of each trajectory) and NVE energy drift from the thermo
    log on disk (so a restarted run is summarised whole); ``exclude``: failed systems."""
    rows = np.loadtxt(thermo_path, comments="#", ndmin=2)
    if rows.size == 0:
        return {}
    n_atoms = state.atoms_per_system().cpu().numpy()
    temps, drifts = [], []
    for s in np.unique(rows[:, 2]).astype(int):
        if s in exclude:
            continue
        r = rows[rows[:, 2] == s]
        half = r[len(r) // 2:]
        temps.append(half[:, 3].mean())
        if len(r) >= 2 and r[-1, 1] > r[0, 1]:
            drifts.append(np.polyfit(r[:, 1], r[:, 6], 1)[0] / n_atoms[s])
    if not temps:
        return {"mean_temperature_K": None, "temperature_std_between_replicas_K": None}
    out = {"mean_temperature_K": float(np.mean(temps)),
           "temperature_std_between_replicas_K": float(np.std(temps))}
    if ensemble == "nve" and drifts:
        out["energy_drift_eV_per_atom_per_ps"] = float(np.mean(drifts))
        out["max_abs_energy_drift_eV_per_atom_per_ps"] = float(np.max(np.abs(drifts)))
    return out
