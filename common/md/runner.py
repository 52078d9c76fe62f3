"""``run_md``: replicas of structures -> batched MD -> trajectories, thermo log, summary.

This is what ``mlp-cases md`` and the pipelines call. Systems are split into batches of the
measured best size (see :mod:`common.md.batching`); each batch writes trajectories and the thermo
log as it goes and checkpoints every ``checkpoint_every`` steps, so a killed run continues with
``restart=True`` from where it stopped, with no frame lost or written twice.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from ase import Atoms

from common.errors import ConfigError, DataError, SimulationError
from common.fileio import atomic_write_atoms, atomic_write_json
from common.md.barostat import BAROSTATS
from common.md.batching import choose_batch_size
from common.md.engine import ENSEMBLES, MDEngine
from common.md.guard import BlowUpGuard
from common.md.noise import maxwell_boltzmann
from common.md.reporters import DeviationFlagger, ExtxyzTrajectory, HDF5Trajectory, ThermoLog
from common.md.state import BatchState

RUN_FILE = "run.json"
#: every system's last state (positions, velocities, energy, forces; info: system, step)
FINAL_FILE = "final.extxyz"


def check_structures(frames: Sequence[Atoms], min_distance_A: float = 0.5) -> None:
    """Refuse structures MD cannot start from.

    A DataError names the first structure with no atoms, non-finite positions or velocities, a
    periodic axis without a cell vector, or atoms closer than ``min_distance_A`` (overlaps).
    """
    from ase.neighborlist import neighbor_list

    for k, a in enumerate(frames):
        if len(a) == 0:
            raise DataError("structure has no atoms", where=f"structure {k}",
                            fix="remove empty frames")
        for what, arr in (("positions", a.positions), ("cell", a.cell.array),
                          ("velocities", a.get_velocities() if a.has("momenta") else None)):
            if arr is not None and not np.isfinite(arr).all():
                bad = int(np.nonzero(~np.isfinite(arr).all(-1))[0][0]) if arr.ndim == 2 else 0
                raise DataError(f"non-finite {what} (NaN or inf)" + (
                    f" on atom {bad}" if what != "cell" else ""), where=f"structure {k}",
                    fix="repair or remove that structure in the input file")
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


def check_device(device: str) -> None:
    """Refuse a device torch cannot use here (``cpu``, ``cuda``, ``cuda:N``)."""
    dev = str(device)
    if dev != "cpu" and not (dev == "cuda" or (dev.startswith("cuda:")
                                               and dev[5:].isdigit())):
        raise ConfigError(f"unknown device {dev!r}", where="device",
                          fix="use cpu, cuda or cuda:N")
    if dev.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError("CUDA is not available on this machine", where="device",
                              fix="use cpu, or install a CUDA build of torch on a GPU machine")
        if ":" in dev and int(dev[5:]) >= torch.cuda.device_count():
            raise ConfigError(f"no GPU {dev} (this machine has {torch.cuda.device_count()})",
                              where="device", fix="use cuda:0 or another existing index")


def _validate(steps: int, timestep_fs: float, temperatures: np.ndarray, ensemble: str,
              traj_every: int, thermo_every: int | None, checkpoint_every: int,
              batch_size: int | str, traj_format: str) -> None:
    def need(ok: bool, what: str, where: str, fix: str) -> None:
        if not ok:
            raise ConfigError(what, where=where, fix=fix)

    need(steps >= 1, f"steps must be >= 1 (got {steps})", "steps",
         "give a positive number of steps")
    need(timestep_fs > 0, f"timestep must be > 0 fs (got {timestep_fs})", "timestep_fs",
         "use e.g. 0.5-1 fs with hydrogen, 2-5 fs for heavy atoms")
    need(ensemble in ENSEMBLES, f"unknown ensemble {ensemble!r}", "ensemble",
         f"use one of {', '.join(ENSEMBLES)}")
    if ensemble in ("nvt", "npt"):
        need(bool((temperatures > 0).all()), f"temperature must be > 0 K for {ensemble.upper()}"
             f" (got {_plain_list(temperatures)})", "temperature_K",
             "give a positive temperature, e.g. 300")
    need(bool((temperatures >= 0).all()), "temperature must be >= 0 K (got "
         f"{_plain_list(temperatures)})", "temperature_K", "give a non-negative temperature")
    need(traj_every >= 0, f"trajectory interval must be >= 0 steps (got {traj_every})",
         "traj_every", "write a frame every N >= 1 steps, or 0 for no trajectory")
    need(thermo_every is None or thermo_every >= 1,
         f"thermo interval must be >= 1 step (got {thermo_every})", "thermo_every",
         "log every N >= 1 steps")
    need(checkpoint_every >= 0, f"checkpoint interval must be >= 0 (got {checkpoint_every})",
         "checkpoint_every", "give N >= 1 steps, or 0 for a checkpoint at the end only")
    need(batch_size == "auto" or (isinstance(batch_size, int) and batch_size >= 1),
         f"batch size must be a positive integer or 'auto' (got {batch_size!r})",
         "batch_size", "give e.g. 8, or auto to measure the fastest")
    need(traj_format in ("extxyz", "h5"), f"unknown trajectory format {traj_format!r}",
         "traj_format", "use extxyz or h5")


def _plain_list(a: np.ndarray):
    vals = np.unique(a)
    return float(vals[0]) if len(vals) == 1 else [float(x) for x in a]


def per_system_values(value, n_structures: int, replicas: int, name: str) -> np.ndarray:
    """One value per system from a scalar, one value per input structure, or one per system.

    Systems are ordered structure by structure, replicas of a structure together: system
    ``k = structure * replicas + replica``. A list of ``n_structures`` values gives every
    replica of a structure that structure's value.
    """
    arr = np.asarray(value, dtype=float)
    n = n_structures * replicas
    if arr.ndim == 0:
        return np.full(n, float(arr))
    if arr.ndim == 1 and len(arr) == n:
        return arr.copy()
    if arr.ndim == 1 and len(arr) == n_structures:
        return np.repeat(arr, replicas)
    raise ConfigError(f"{name} has {arr.size} values for {n_structures} structures x "
                      f"{replicas} replicas", where=name,
                      fix=f"give one value, one per structure ({n_structures}) or one per "
                          f"structure x replica ({n}, structure by structure)")


def replicate(frames: Sequence[Atoms], replicas: int, seed: int, temperature_K
              ) -> tuple[list[Atoms], list[int]]:
    """Return ``replicas`` copies of each frame and their seeds (seed, seed+1, ...).

    Frames without momenta get Maxwell-Boltzmann velocities at their system's temperature
    (``temperature_K``: one value or one per system, in :func:`per_system_values` order) from their
    own seed.
    """
    if replicas < 1:
        raise ConfigError(f"replicas must be >= 1 (got {replicas})", where="replicas",
                          fix="give at least 1")
    temps = per_system_values(temperature_K, len(frames), replicas, "temperature_K")
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
                a.set_velocities(maxwell_boltzmann(a.get_masses(), temps[len(seeds)], s, fixed))
            out.append(a)
            seeds.append(s)
    return out, seeds


def _for_batch(obj, idx: list[int]):
    """Return a term or stop condition for the systems ``idx`` of the run.

    Objects that hold per-system parameters define ``select(idx)``; anything else is shared as it
    is.
    """
    if obj is None or not hasattr(obj, "select"):
        return obj
    return obj.select(list(idx))


def _stateful_unsplittable(terms: Sequence) -> list[str]:
    return [type(t).__name__ for t in terms
            if hasattr(t, "state_dict") and not hasattr(t, "select")]


def _identified(obj) -> bool:
    """Tell whether ``obj`` is part of a run's identity (run.json).

    Terms that declare parameters or carry state are; a plain callable (a progress hook, a kill
    switch in a test) is not.
    """
    return obj is not None and (hasattr(obj, "params") or hasattr(obj, "state_dict"))


def _describe(obj) -> str:
    """Return what identifies a term or stop condition in run.json (type and parameters)."""
    if obj is None:
        return ""
    params = obj.params() if hasattr(obj, "params") else {}
    return f"{type(obj).__module__}.{type(obj).__qualname__}{sorted(params.items())!r}"


def _settings_diff(old: dict, new: dict) -> str:
    keys = sorted(set(old) | set(new), key=str)
    diff = [k for k in keys if old.get(k) != new.get(k)]
    return ", ".join(f"{k} (was {old.get(k)!r}, now {new.get(k)!r})" for k in diff[:3])


def run_md(frames: Sequence[Atoms], potential, outdir: str | Path, *, ensemble: str = "nvt",
           timestep_fs: float = 1.0, temperature_K: float | Sequence[float] = 300.0,
           friction_per_ps: float | Sequence[float] = 1.0,
           pressure_bar: float | Sequence[float] | None = None,
           barostat: str = "isotropic", barostat_tau_ps: float = 1.0,
           steps: int = 1000, replicas: int = 1, seed: int = 0, device: str = "cpu",
           dtype: torch.dtype | None = None, batch_size: int | str = "auto",
           traj_every: int = 10, traj_format: str = "extxyz", thermo_every: int | None = None,
           checkpoint_every: int = 0, restart: bool = False, skin: float = 0.5,
           terms: Sequence = (), stop=None, guard: BlowUpGuard | None = None,
           progress: bool = True, potential_label: str = "",
           compile: bool | str = "auto", flag_deviation_eV_A: float | None = None,
           on_blowup: str = "raise") -> dict:
    """Run batched MD of ``replicas`` copies of each structure.

    Return the summary dict (also written to ``outdir/summary.json``).

    Systems are numbered structure by structure (``k = structure * replicas + replica``).
    ``temperature_K``, ``friction_per_ps`` and ``pressure_bar`` take one value, one per
    structure, or one per system in that order (see :func:`per_system_values`); each system's
    Maxwell-Boltzmann velocities are drawn at its own temperature.

    ``terms``: extra force terms (bias potentials, λ-mixing, restraints). A term that holds
    per-system parameters or state defines ``select(idx)`` returning the term for systems
    ``idx`` of the run (in that order), and is sliced with each batch; a term with state
    (``state_dict``) but no ``select`` forces one batch for all systems. Term state is saved
    in checkpoints; the batch-size trial runs work on copies, so they never change it.
    ``stop``: callable(state, out, step) -> bool per system of the batch; a system that
    returns True is frozen (its step is in the summary's ``stopped``); sliced like a term when
    it defines ``select``. ``guard``: a :class:`~common.md.guard.BlowUpGuard` (limits).
    ``ensemble="npt"``: Langevin thermostat + stochastic cell rescaling (``barostat``
    "isotropic" for liquids, "orthorhombic" or "anisotropic" for crystals; time constant
    ``barostat_tau_ps``) at ``pressure_bar``; needs periodic cells and a potential
    with stress.
    ``compile``: use the potential's torch.compile-d kernel where it has one (pair
    potentials); "auto" does so when the run is long enough to repay 10-30 s of compilation.
    ``flag_deviation_eV_A``: with a committee potential, frames whose max force deviation
    exceeds this are written to ``outdir/flagged_frames.extxyz`` for relabelling.
    ``on_blowup``: "raise" stops the run at the first blow-up; "stop_system" freezes only the
    replica that blew up (listed in the summary's ``failed``) and finishes the others.
    """
    n_sys = len(frames) * replicas
    if replicas < 1:
        raise ConfigError(f"replicas must be >= 1 (got {replicas})", where="replicas",
                          fix="give at least 1")
    temps = per_system_values(temperature_K, len(frames), replicas, "temperature_K")
    frictions = per_system_values(friction_per_ps, len(frames), replicas, "friction_per_ps")
    _validate(steps, timestep_fs, temps, ensemble, traj_every, thermo_every, checkpoint_every,
              batch_size, traj_format)
    npt = _npt_settings(ensemble, pressure_bar, barostat, barostat_tau_ps, len(frames),
                        replicas)
    check_device(device)
    if on_blowup not in ("raise", "stop_system"):
        raise ConfigError(f"unknown on_blowup {on_blowup!r}", where="on_blowup",
                          fix="use raise or stop_system")
    check_structures(frames)
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise ConfigError("the output path is a file, not a folder", where=str(outdir),
                          fix="give a new folder name for the output")
    systems, seeds = replicate(frames, replicas, seed, temps)
    state = BatchState.from_atoms(systems, device=device, dtype=dtype)
    if compile == "auto":
        compile = state.n_atoms * steps > 20_000_000
    if compile and hasattr(potential, "use_compiled_kernel"):
        potential.use_compiled_kernel()
    thermo_every = thermo_every or traj_every or max(1, steps // 100)
    config = {"n_systems": n_sys, "ensemble": ensemble, "timestep_fs": timestep_fs,
              "temperature_K": _plain_list(temps), "friction_per_ps": _plain_list(frictions),
              "steps": steps, "replicas": replicas, "seed": seed, "potential": potential_label,
              "traj_every": traj_every, "traj_format": traj_format, "skin": skin,
              "structures_sha": _frames_hash(frames),
              "terms": [_describe(t) for t in terms if _identified(t)],
              "stop": _describe(stop) if _identified(stop) else ""}
    if npt:
        config.update({k: (_plain_list(v) if isinstance(v, np.ndarray) else v)
                       for k, v in npt.items()})

    def make_engine(idx, reporters=(), ckpt=None, trial=False):
        sub = state.select(idx)
        sub_terms = [_for_batch(t, idx) for t in terms]
        sub_stop = _for_batch(stop, idx)
        if trial:  # the trial runs must never change a term's state (hills, counters)
            sub_terms, sub_stop = copy.deepcopy(sub_terms), copy.deepcopy(sub_stop)
        extra = {k: (v[idx] if isinstance(v, np.ndarray) else v) for k, v in npt.items()}
        return MDEngine(potential, sub, ensemble=ensemble, timestep_fs=timestep_fs,
                        temperature_K=temps[idx], friction_per_ps=frictions[idx],
                        seeds=[seeds[k] for k in idx], skin=skin, terms=sub_terms,
                        stop=sub_stop, guard=guard, reporters=reporters,
                        checkpoint_path=ckpt, checkpoint_every=0 if trial else checkpoint_every,
                        on_blowup=on_blowup, system_offset=idx[0], **extra)

    chosen, table = _batch_plan(outdir, restart, config, batch_size, make_engine, n_sys,
                                steps, terms)
    totals = {"replica_steps": 0, "wall_s": 0.0, "neighbor_rebuilds": 0}
    failed: dict[int, str] = {}
    stopped: dict[int, int] = {}
    finals: list[Atoms] = []
    trajectories: list[str] = []
    thermo_path = outdir / "thermo.dat"
    for first in range(0, n_sys, chosen):
        idx = list(range(first, min(first + chosen, n_sys)))
        reporters, paths = _reporters(outdir, traj_format, traj_every, thermo_every, first,
                                      len(idx), flag_deviation_eV_A)
        trajectories = paths if traj_format == "h5" else trajectories + paths
        ckpt = outdir / "checkpoints" / f"batch_{first:05d}.pt"
        try:
            engine = make_engine(idx, reporters, ckpt if checkpoint_every else None)
        except SimulationError as exc:
            if first == 0 and not restart:  # nothing was run: leave nothing behind
                shutil.rmtree(outdir, ignore_errors=True)
                raise SimulationError(f"{exc.what} (nothing written)",
                                      where=exc.where, fix=exc.fix) from exc
            raise
        if restart and ckpt.exists():
            engine.load_checkpoint(ckpt)
        elif restart:  # this batch never checkpointed: start it again from scratch
            for r in reporters:
                r.truncate_after(-1)
        info = engine.run(steps - engine.step, progress=progress,
                          description=f"MD systems {first}-{first + len(idx) - 1}")
        if checkpoint_every:
            engine.save_checkpoint()
        for k in ("replica_steps", "wall_s", "neighbor_rebuilds"):
            totals[k] += info[k]
        failed.update({first + s: why for s, why in engine.failed.items()})
        finals += _final_frames(engine, first)
        stopped.update({first + s: int(at) for s, at in enumerate(engine.stopped_at)
                        if at is not None and s not in engine.failed})
    summary = summarize(thermo_path, state, ensemble, exclude=set(failed))
    if flag_deviation_eV_A is not None:
        flagged = outdir / "flagged_frames.extxyz"
        summary["flagged_frames"] = str(flagged) if flagged.exists() else None
        summary["n_flagged"] = _count_frames(flagged)
        summary["flag_deviation_eV_A"] = flag_deviation_eV_A
    summary.update({
        "replicas": n_sys, "structures": len(frames), "steps": steps,
        "ensemble": ensemble, "timestep_fs": timestep_fs, "device": str(device),
        "batch_size": chosen, "batch_table": table,
        "replica_steps_per_s": (totals["replica_steps"] / totals["wall_s"]
                                if totals["wall_s"] > 0 else None),
        "neighbor_rebuilds": totals["neighbor_rebuilds"],
        "trajectory": trajectories[0] if len(trajectories) == 1 else str(outdir),
        "final_structures": str(atomic_write_atoms(outdir / FINAL_FILE, finals,
                                                   format="extxyz")),
        "trajectories": trajectories, "thermo": str(thermo_path),
        "failed": {str(k): v for k, v in sorted(failed.items())},
        "stopped": {str(k): v for k, v in sorted(stopped.items())},
    })
    if ensemble in ("nvt", "npt"):
        summary["target_temperature_K"] = _plain_list(temps)
    if npt:
        summary["target_pressure_bar"] = _plain_list(npt["pressure_bar"])
    atomic_write_json(outdir / "summary.json", summary)
    return summary


def _final_frames(engine: MDEngine, first: int) -> list[Atoms]:
    """Return the batch's systems as they ended: stopped or failed ones at the step they froze."""
    out = engine.out
    frames = engine.state.to_atoms(out.get("energy"), out.get("forces"))
    for s, a in enumerate(frames):
        a.info.update(system=first + s, step=int(engine.stopped_at[s] or engine.step),
                      time_fs=float((engine.stopped_at[s] or engine.step) * engine.timestep_fs),
                      stopped=engine.stopped_at[s] is not None, failed=s in engine.failed)
    return frames


def _npt_settings(ensemble: str, pressure_bar, barostat: str, tau_ps: float,
                  n_structures: int, replicas: int) -> dict:
    """Check the NPT settings and return the engine's NPT keyword arguments (empty for NVE/NVT)."""
    if ensemble != "npt":
        if pressure_bar is not None:
            raise ConfigError(f"a pressure only applies to NPT (ensemble is {ensemble})",
                              where="pressure_bar", fix="use ensemble=npt, or drop the pressure")
        return {}
    if pressure_bar is None:
        raise ConfigError("NPT needs a target pressure", where="pressure_bar",
                          fix="give the pressure in bar, e.g. 1.0")
    if barostat not in BAROSTATS:
        raise ConfigError(f"unknown barostat {barostat!r}", where="barostat",
                          fix="use isotropic (liquids), orthorhombic or anisotropic (crystals)")
    if not tau_ps > 0:
        raise ConfigError(f"barostat time constant must be > 0 ps (got {tau_ps})",
                          where="barostat_tau_ps", fix="use e.g. 1.0 ps")
    p = per_system_values(pressure_bar, n_structures, replicas, "pressure_bar")
    if not np.isfinite(p).all():
        raise ConfigError("pressure must be finite", where="pressure_bar",
                          fix="give a number in bar")
    return {"pressure_bar": p, "barostat": barostat, "barostat_tau_ps": float(tau_ps)}


def _batch_plan(outdir: Path, restart: bool, config: dict, batch_size, make_engine, n_sys: int,
                steps: int, terms: Sequence) -> tuple[int, list]:
    """Return the batch size (restored on restart, else measured or given) and its trial table.

    For a new run, also write run.json.
    """
    run_file = outdir / RUN_FILE
    if restart:
        if not run_file.exists():
            raise ConfigError("nothing to restart: no run.json", where=str(outdir),
                              fix="run without restart=True first, or give the run's output folder")
        previous = json.loads(run_file.read_text())
        if previous["config"] != config:
            raise ConfigError("the run in this folder had other settings or structures: "
                              + _settings_diff(previous["config"], config), where=str(run_file),
                              fix="restart with exactly the same options and structures")
        return previous["batch_size"], previous["batch_table"]
    if outdir.exists() and any(outdir.iterdir()):
        raise ConfigError("output folder is not empty", where=str(outdir),
                          fix="choose a new output folder, or pass restart=True to continue it")
    unsplittable = _stateful_unsplittable(terms)
    if unsplittable and batch_size not in ("auto", n_sys) and int(batch_size) < n_sys:
        raise ConfigError(f"term {unsplittable[0]} keeps state but cannot be split into "
                          "batches (it has no select())", where="batch_size",
                          fix=f"use batch size auto or {n_sys}, or give the term a select()")
    if batch_size == "auto" and not unsplittable:
        try:
            chosen, table = choose_batch_size(lambda idx: make_engine(idx, trial=True), n_sys,
                                              trial_steps=min(5, max(1, steps)))
        except SimulationError as exc:
            raise SimulationError(f"{exc.what} (in the batch-size trial: nothing written)",
                                  where=exc.where, fix=exc.fix) from exc
    else:
        chosen, table = (n_sys if batch_size == "auto" else min(int(batch_size), n_sys)), []
    outdir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run_file, {"config": config, "batch_size": chosen, "batch_table": table})
    return chosen, table


def _reporters(outdir: Path, traj_format: str, traj_every: int, thermo_every: int, first: int,
               n: int, flag_deviation_eV_A: float | None) -> tuple[list, list[str]]:
    if traj_format == "extxyz" and traj_every:
        traj = ExtxyzTrajectory(outdir, every=traj_every, system_offset=first, n_systems=n)
        paths = [str(traj.path(s)) for s in range(n)]
    elif traj_every:
        traj = HDF5Trajectory(outdir / "trajectory.h5", every=traj_every, system_offset=first,
                              n_systems=n)
        paths = [str(traj.path)]
    if not traj_every:  # no trajectory: the final structures are still written
        traj, paths = None, []
    reporters = [r for r in (traj, ThermoLog(outdir / "thermo.dat", every=thermo_every,
                                             system_offset=first, n_systems=n)) if r]
    if flag_deviation_eV_A is not None:
        reporters.append(DeviationFlagger(outdir / "flagged_frames.extxyz", flag_deviation_eV_A,
                                          every=thermo_every, system_offset=first, n_systems=n))
    return reporters, paths


def _frames_hash(frames: Sequence[Atoms]) -> str:
    import hashlib

    from common.data.io import structure_hash

    return hashlib.sha256("".join(structure_hash(a) for a in frames).encode()).hexdigest()[:16]


def _count_frames(path: Path) -> int:
    if not path.exists():
        return 0
    import ase.io

    return sum(1 for _ in ase.io.iread(path, ":"))


def read_thermo(path: str | Path) -> dict[str, np.ndarray]:
    """Read a thermo log as columns by name.

    The columns are ``step``, ``time_ps``, ``system``, ``T_K``, ``Epot_eV``, ``Ekin_eV``,
    ``Etot_eV`` and, where logged, ``P_bar`` and ``V_A3``.
    """
    path = Path(path)
    names = None
    with open(path) as fh:
        for line in fh:
            if line.startswith("#"):
                names = line[1:].split()
                break
    rows = np.loadtxt(path, comments="#", ndmin=2)
    names = names or ["step", "time_ps", "system", "T_K", "Epot_eV", "Ekin_eV", "Etot_eV"]
    if rows.size == 0:
        return {k: np.zeros(0) for k in names}
    return {k: rows[:, c] for c, k in enumerate(names[:rows.shape[1]])}


#: amu/Å^3 -> g/cm^3
_AMU_PER_A3_TO_G_PER_CM3 = 1.66053906660


def summarize(thermo_path: Path, state: BatchState, ensemble: str,
              exclude: set[int] = frozenset()) -> dict:
    """Summarise a run from its thermo log on disk (so a restarted run is summarised whole).

    Values are averaged over the second half of each system's log and over systems (``exclude``:
    failed systems): mean temperature, NVE energy drift, and where logged the mean pressure
    (periodic systems with a stress-capable potential) and, for NPT, mean volume and density.
    """
    cols = read_thermo(thermo_path)
    if cols["step"].size == 0:
        return {}
    n_atoms = state.atoms_per_system().cpu().numpy()
    mass = torch.zeros(state.n_systems, dtype=state.dtype).index_add_(
        0, state.system_idx.cpu(), state.masses.detach().cpu()).numpy()
    acc: dict[str, list[float]] = {"T": [], "drift": [], "P": [], "V": [], "rho": []}
    for s in np.unique(cols["system"]).astype(int):
        if s in exclude:
            continue
        sel = cols["system"] == s
        half = slice(int(sel.sum()) // 2, None)
        acc["T"].append(cols["T_K"][sel][half].mean())
        t, e = cols["time_ps"][sel], cols["Etot_eV"][sel]
        if len(t) >= 2 and t[-1] > t[0]:
            acc["drift"].append(np.polyfit(t, e, 1)[0] / n_atoms[s])
        if "P_bar" in cols and np.isfinite(cols["P_bar"][sel][half]).all():
            acc["P"].append(cols["P_bar"][sel][half].mean())
        if ensemble == "npt" and "V_A3" in cols:
            v = cols["V_A3"][sel][half]
            acc["V"].append(v.mean())
            acc["rho"].append(np.mean(mass[s] / v) * _AMU_PER_A3_TO_G_PER_CM3)
    if not acc["T"]:
        return {"mean_temperature_K": None, "temperature_std_between_replicas_K": None}
    out = {"mean_temperature_K": float(np.mean(acc["T"])),
           "temperature_std_between_replicas_K": float(np.std(acc["T"]))}
    if ensemble == "nve" and acc["drift"]:
        out["energy_drift_eV_per_atom_per_ps"] = float(np.mean(acc["drift"]))
        out["max_abs_energy_drift_eV_per_atom_per_ps"] = float(np.max(np.abs(acc["drift"])))
    if acc["P"] and len(acc["P"]) == len(acc["T"]):
        out["mean_pressure_bar"] = float(np.mean(acc["P"]))
    if acc["V"]:
        out["mean_volume_A3"] = float(np.mean(acc["V"]))
        out["mean_density_g_per_cm3"] = float(np.mean(acc["rho"]))
    return out
