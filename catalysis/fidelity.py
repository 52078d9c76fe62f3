"""Check whether the MLP's reaction events reproduce direct MD on the reference method itself.

The reference is the ground truth the MLP is meant to reproduce, so the honest check is to run
both from the same starting structures under the same conditions and compare what happens:

1. **reference MD**: many direct trajectories with the labeller's ASE calculator (ASE Langevin),
   one sweep task each (:func:`common.sweep.run_tasks`), each saved as it finishes (resumable);
2. **the MLP**: a SchNet committee trained by the pipeline's own active learning
   (:class:`common.active_learning.ActiveLearning`: rattled configurations labelled with the
   reference -- plus, with ``n_reference_training`` > 0, frames of that many further direct
   reference trajectories with their own seeds, never the ones compared against, as DP-GEN
   starts from ab initio MD -- then rounds of committee MD at the same conditions whose
   disagreeing frames are labelled and added, until ``al_accurate_fraction`` of the explored
   frames are accurate or the rounds run out);
3. **MLP-MD**: as many trajectories in the batched engine (:func:`common.md.run_md`), same
   temperature, friction, time step, length and frame interval;
4. **events** in both sets by the same code (:func:`catalysis.events.analyze_trajectories`);
5. **comparison** (:func:`compare_event_sets`): the rate of each reaction type (events per ps
   of simulated time, exact Poisson intervals) and the MLP/reference ratio with its exact
   interval; the time to the first event of each trajectory as Kaplan-Meier curves with a
   log-rank test; species lifetimes side by side. ``agrees`` is true when every reaction type
   seen in either set has a ratio interval containing 1 and the log-rank p-value is >= 0.05 --
   "no difference the statistics can see", which is all that a finite sample can say.

Scales (``configs/fidelity_*.json``): ``emt`` (minutes on 2 cores; EMT's C/O chemistry on Cu is
not real -- *CO dissociates within a fraction of a ps at 600 K -- but as a reference for this
check it is exact, fast and gives ample events) and ``xtb`` (GFN1-xTB, an hour or more: a
handful of direct trajectories against many MLP ones).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from common.config import ConfigSchema
from common.events.compare import logrank_test, poisson_interval, rate_ratio, reaction_label
from common.fileio import atomic_write_atoms, atomic_write_json

CONFIGS = Path(__file__).parent / "configs"

__all__ = ["FidelityConfig", "compare_event_sets", "load_fidelity_config", "run_fidelity"]


@dataclass(frozen=True)
class FidelityConfig(ConfigSchema):
    """The keys of ``configs/fidelity_*.json``.

    ``system``: ``{"slab": [nx, ny, layers], "adsorbates": [species, ...]}``; ``labeller``:
    a :mod:`common.labels` preset with options; the MD keys are shared by both sides; the
    ``al_*`` and ``n_rattled`` keys set the MLP's training; ``schnet`` names a SchNet config.
    Optional: ``al_accurate_fraction`` (0: off) stops active learning once that fraction of a
    round's explored frames is accurate; ``n_reference_training`` direct reference
    trajectories (own seeds) whose frames, one every ``training_frame_every`` steps (0: every
    saved frame), join the initial training data; ``energy_window_eV`` keeps initial frames
    within that much of the lowest (the case study's window, :func:`catalysis.systems.
    energy_window`; null: no window). Initial frames with a reference force above
    ``max_force_eV_A`` are dropped and counted (strongly rattled CO on Cu under GFN1-xTB gave
    up to 110 eV/Å).
    """

    scale: str
    system: dict[str, Any]
    labeller: dict[str, Any]
    temperature_K: float
    friction_per_ps: float
    timestep_fs: float
    steps: int
    frame_every: int
    n_reference: int
    n_mlp: int
    min_persistence_fs: float
    n_rattled: int
    rattle_A: tuple[float, float]
    schnet: str
    schnet_overrides: dict[str, Any]
    committee_size: int
    active_learning_rounds: int
    al_md_steps: int
    al_flag_deviation_eV_A: float
    al_max_new_frames: int
    al_accurate_fraction: float = 0.0
    n_reference_training: int = 0
    training_frame_every: int = 0
    energy_window_eV: float | None = None
    max_force_eV_A: float = 100.0


def load_fidelity_config(scale: str | Path) -> dict[str, Any]:
    """Load the fidelity settings: ``emt``, ``xtb`` or a JSON file.

    They are checked against :class:`FidelityConfig`.
    """
    from common.config import load_json_config
    from common.errors import ConfigError

    cfg = load_json_config(scale, CONFIGS, "fidelity", what="fidelity config",
                           where="--scale", schema=FidelityConfig).to_dict()
    window, fmax = cfg["energy_window_eV"], cfg["max_force_eV_A"]
    if window is not None and not window > 0:
        raise ConfigError(f"energy_window_eV must be > 0 or null (got {window})",
                          where=f"{scale}: energy_window_eV", fix="use e.g. 3.0, or null")
    if not fmax > 0:
        raise ConfigError(f"max_force_eV_A must be > 0 (got {fmax})",
                          where=f"{scale}: max_force_eV_A", fix="use e.g. 100.0")
    return cfg


# ---------------------------------------------------------------------------------------------
# comparison


def _event_counts(analysis: dict) -> dict[str, int]:
    counts: dict[str, int] = {}
    for e in analysis["events"]:
        key = reaction_label(e["reactants"], e["products"])
        counts[key] = counts.get(key, 0) + 1
    return counts


def _first_event_times(analysis: dict, n_trajectories: int, length_ps: float
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Per trajectory: the time of its first event (observed) or its length (censored)."""
    first: dict[str, float] = {}
    for e in analysis["events"]:
        t = float(e["time_ps"])
        first[e["trajectory"]] = min(t, first.get(e["trajectory"], np.inf))
    times = list(first.values()) + [length_ps] * (n_trajectories - len(first))
    observed = [True] * len(first) + [False] * (n_trajectories - len(first))
    return np.array(times), np.array(observed)


def compare_event_sets(reference: dict, mlp: dict, *, n_reference: int, n_mlp: int,
                       length_ps: float) -> dict[str, Any]:
    """Compare two event analyses (``EventAnalysis.to_dict()``): rates and their ratios.

    ``reference`` and ``mlp`` hold ``n_reference`` and ``n_mlp`` trajectories of ``length_ps``
    each; see the module docstring.
    """
    t_ref, t_mlp = n_reference * length_ps, n_mlp * length_ps
    c_ref, c_mlp = _event_counts(reference), _event_counts(mlp)
    rates = {}
    for key in sorted(set(c_ref) | set(c_mlp)):
        n_r, n_m = c_ref.get(key, 0), c_mlp.get(key, 0)
        rr = rate_ratio(n_m, t_mlp, n_r, t_ref)
        rates[key] = {
            "n_reference": n_r, "n_mlp": n_m,
            "reference_per_ps": n_r / t_ref, "mlp_per_ps": n_m / t_mlp,
            "reference_ci95_per_ps": list(poisson_interval(n_r, t_ref)),
            "mlp_ci95_per_ps": list(poisson_interval(n_m, t_mlp)),
            "ratio": rr.ratio, "ratio_ci95": list(rr.ci), "ratio_contains_1": rr.contains(1.0),
        }
    d_ref, o_ref = _first_event_times(reference, n_reference, length_ps)
    d_mlp, o_mlp = _first_event_times(mlp, n_mlp, length_ps)
    lr = logrank_test(d_mlp, o_mlp, d_ref, o_ref)
    lifetimes = {}
    for name in sorted(set(reference.get("lifetimes", {})) | set(mlp.get("lifetimes", {}))):
        a = reference.get("lifetimes", {}).get(name, {})
        b = mlp.get("lifetimes", {}).get(name, {})
        lifetimes[name] = {"reference": {k: a.get(k) for k in ("n", "mean_ps", "ci95_ps")},
                           "mlp": {k: b.get(k) for k in ("n", "mean_ps", "ci95_ps")}}
    agrees = bool(rates) and all(r["ratio_contains_1"] for r in rates.values()) \
        and lr.p_value >= 0.05
    return {
        "n_reference_trajectories": n_reference, "n_mlp_trajectories": n_mlp,
        "trajectory_ps": length_ps, "rates": rates,
        "first_event": {"reference_observed": int(o_ref.sum()), "mlp_observed": int(o_mlp.sum()),
                        "reference_median_ps": _median(d_ref, o_ref),
                        "mlp_median_ps": _median(d_mlp, o_mlp)},
        "logrank_chi2": lr.chi2, "logrank_p": lr.p_value, "lifetimes": lifetimes,
        "agrees": agrees,
    }


def _median(d: np.ndarray, o: np.ndarray) -> float | None:
    from common.events import kaplan_meier

    return kaplan_meier(d, o).median


# ---------------------------------------------------------------------------------------------
# running both sides


def fidelity_system(spec: dict[str, Any]):
    """Build the starting structure: a Cu(111) slab with the adsorbates on top sites."""
    from catalysis import systems

    slab = systems.cu111_slab(tuple(spec.get("slab", (3, 3, 3))), orthogonal=False)
    for k, species in enumerate(spec.get("adsorbates", ["CO"])):
        slab = systems.place(slab, species, site=("top", k))
    return slab


def reference_trajectory(start_file: str, labeller: dict, out_file: str, *, temperature_K: float,
                         friction_per_ps: float, timestep_fs: float, steps: int,
                         frame_every: int, seed: int) -> dict:
    """Run one direct reference-MD trajectory (ASE Langevin with the labeller's calculator).

    A sweep task; the frames are written to ``out_file`` (extxyz with ``time_fs`` per frame).
    """
    import ase.io
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    from common.labels import LabellerSpec, make_calculator

    atoms = ase.io.read(start_file)
    opts = dict(labeller)
    atoms.calc = make_calculator(LabellerSpec(opts.pop("name"), opts), atoms)
    rng = np.random.default_rng(seed)
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature_K, rng=rng)
    dyn = Langevin(atoms, timestep_fs * units.fs, temperature_K=temperature_K,
                   friction=friction_per_ps / (1000.0 * units.fs), rng=rng, fixcm=False)
    frames = []

    def grab():
        a = atoms.copy()
        a.info = {"time_fs": dyn.nsteps * timestep_fs}
        frames.append(a)

    dyn.attach(grab, interval=frame_every)  # ASE calls it at step 0 too: the start frame
    dyn.run(steps)
    atomic_write_atoms(out_file, frames)
    return {"trajectory": out_file, "n_frames": len(frames)}


def reference_md_frames(trajectories: list[str], every_steps: int, timestep_fs: float
                        ) -> list:
    """Return frames of direct reference trajectories for training, one every ``every_steps``.

    ``every_steps`` 0 keeps every saved frame; the start frame (shared by all trajectories) is
    left out. The frames carry no labels: they are labelled like any other training frame.
    """
    import ase.io

    out = []
    for path in trajectories:
        for a in ase.io.read(path, ":"):
            step = int(round(float(a.info.get("time_fs", 0.0)) / timestep_fs))
            if step > 0 and (not every_steps or step % int(every_steps) == 0):
                a.info = {}
                out.append(a)
    return out


def run_fidelity(scale: str | Path = "emt", outdir: str | Path = "runs/fidelity_emt", *,
                 seed: int = 0, progress: bool = True, cluster: Any = None) -> dict[str, Any]:
    """Run (or resume) the whole check; returns ``fidelity.json``'s content."""
    import ase.io

    from catalysis import systems
    from catalysis.events import analyze_trajectories
    from catalysis.model import SchNetAdapter, load_config
    from common.active_learning import ActiveLearning, plot_history
    from common.data import Dataset
    from common.labels import LabellerSpec, label_structures, labelled_frames
    from common.md import run_md
    from common.potential import Committee, train_committee
    from common.potential.model_folder import META
    from common.sweep import JsonDirStore, run_tasks

    cfg = load_fidelity_config(scale)
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    start = fidelity_system(cfg["system"])
    start_file = out / "start.extxyz"
    atomic_write_atoms(start_file, [start])
    length_ps = cfg["steps"] * cfg["timestep_fs"] / 1000.0
    md_kw = {k: cfg[k] for k in ("temperature_K", "friction_per_ps", "timestep_fs", "steps")}

    # 1. reference MD, one sweep task per trajectory: the compared ones, and (own seeds, own
    # folder) the ones whose frames are training data
    ref_dir, train_dir = out / "reference", out / "reference_training"
    ref_dir.mkdir(exist_ok=True)

    def ref_task(folder: Path, k: int, seed_k: int):
        folder.mkdir(exist_ok=True)
        return (reference_trajectory, {
            "start_file": str(start_file.resolve()), "labeller": cfg["labeller"],
            "out_file": str((folder / f"traj_{k:04d}.extxyz").resolve()),
            "frame_every": cfg["frame_every"], "seed": seed_k, **md_kw})

    tasks = {f"ref_{k:04d}": ref_task(ref_dir, k, seed * 100_003 + k)
             for k in range(cfg["n_reference"])}
    tasks.update({f"train_{k:04d}": ref_task(train_dir, k, seed * 100_003 + 50_000 + k)
                  for k in range(cfg["n_reference_training"])})
    store = JsonDirStore(out / "reference_tasks")
    report = run_tasks(tasks, store, cluster=cluster, progress=progress,
                       description="reference MD")
    if not report.ok:
        from common.errors import SimulationError

        raise SimulationError(f"{report.n_failed} reference trajectories failed "
                              f"(first: {next(iter(report.failures.values()))})",
                              where=str(out / "reference"), fix="rerun to retry them")
    results = store.results()
    ref_trajs = [results[f"ref_{k:04d}"]["trajectory"] for k in range(cfg["n_reference"])]
    train_trajs = [results[f"train_{k:04d}"]["trajectory"]
                   for k in range(cfg["n_reference_training"])]

    # 2. the MLP, by the pipeline's own active learning on reference labels
    lab = dict(cfg["labeller"])
    spec = LabellerSpec(lab.pop("name"), lab)
    db = out / "labels.db"

    def label(frames):
        label_structures(frames, spec, db, progress=progress, source="fidelity")
        return [a for a in labelled_frames(frames, spec, db) if a is not None]

    sampled = systems.sample_configurations([start], cfg["n_rattled"],
                                            rattle_A=tuple(cfg["rattle_A"]), seed=seed)
    sampled += reference_md_frames(train_trajs, cfg["training_frame_every"], cfg["timestep_fs"])
    labelled = label(sampled)
    window = None
    if cfg["energy_window_eV"] is not None:
        labelled, window = systems.energy_window(labelled, window_eV=cfg["energy_window_eV"])
    data = Dataset.from_frames(labelled)
    too_hard = sorted({p.frame for p in data.problems(max_force_eV_A=cfg["max_force_eV_A"])
                       if p.kind == "large_force"})
    if too_hard:
        data = data[[k for k in range(len(data)) if k not in set(too_hard)]]
    data = data.validate(max_force_eV_A=cfg["max_force_eV_A"])
    initial = {"n_sampled": len(sampled), "n_dropped_large_force": len(too_hard),
               "n_dropped_energy_window": window.n_dropped if window else 0,
               "n_kept": len(data)}
    train0, valid, test = data.split((0.8, 0.1, 0.1), seed=seed)
    schnet_cfg = load_config(cfg["schnet"], **cfg["schnet_overrides"])

    def train(frames, folder, r):
        _, members = train_committee(SchNetAdapter, Dataset.from_frames(frames), valid, folder,
                                     cfg["committee_size"], config=schnet_cfg,
                                     seed=seed + 100 * r, test=test)
        return Committee([m.batched() for m in members]), members[0].meta.get("metrics", {})

    def load(folder, r):
        names = json.loads((folder / META).read_text())["members"]
        return Committee([SchNetAdapter.load(folder / m).batched() for m in names])

    def explore(pot, folder, r):
        md = run_md([start], pot, folder, restart=(folder / "run.json").exists(),
                    replicas=4, steps=cfg["al_md_steps"], seed=seed + 1000 * (r + 1),
                    traj_every=cfg["frame_every"], checkpoint_every=cfg["al_md_steps"],
                    # every frame with its deviation, so the accurate fraction is measured
                    flag_deviation_eV_A=0.0, progress=progress, on_blowup="stop_system",
                    **{k: v for k, v in md_kw.items() if k != "steps"})
        path = md.get("flagged_frames")
        return ase.io.read(path, ":") if path else []

    def label_new(frames):
        for f in frames:
            f.info = {}
        return label(frames)

    loop = ActiveLearning(out / "active_learning", train0, train=train, load=load,
                          explore=explore, label=label_new, lo=cfg["al_flag_deviation_eV_A"],
                          hi=10.0 * cfg["al_flag_deviation_eV_A"],
                          max_new=cfg["al_max_new_frames"])
    al = loop.run(cfg["active_learning_rounds"],
                  accurate_fraction=cfg["al_accurate_fraction"] or None)
    committee = al.model
    try:
        plot_history(al.history, out / "active_learning.png", lo=loop.lo, hi=loop.hi,
                     accurate_fraction=cfg["al_accurate_fraction"] or None)
    except Exception as exc:  # noqa: BLE001 - a figure must never cost the numbers
        print(f"warning: no active-learning figure ({exc})")

    # 3. MLP-MD, same conditions, one batch
    md = run_md([start], committee, out / "mlp_md", restart=(out / "mlp_md" / "run.json").exists(),
                replicas=cfg["n_mlp"], seed=seed + 7, traj_every=cfg["frame_every"],
                checkpoint_every=cfg["steps"], progress=progress, on_blowup="stop_system",
                **md_kw)
    failed = {int(k) for k in md["failed"]}
    mlp_trajs = [p for k, p in enumerate(md["trajectories"]) if k not in failed]

    # 4-5. events by the same code, compared
    persist = cfg["min_persistence_fs"]
    ref_ev = analyze_trajectories(ref_trajs, min_persistence_fs=persist).to_dict()
    mlp_ev = analyze_trajectories(mlp_trajs, min_persistence_fs=persist).to_dict()
    atomic_write_json(out / "events_reference.json", ref_ev)
    atomic_write_json(out / "events_mlp.json", mlp_ev)
    result = {"scale": cfg["scale"],
              **compare_event_sets(ref_ev, mlp_ev, n_reference=len(ref_trajs),
                                   n_mlp=len(mlp_trajs), length_ps=length_ps),
              "mlp_failed_trajectories": len(failed),
              "mlp_md_mean_temperature_K": md.get("mean_temperature_K"),
              "model_test_metrics": al.metrics,
              "active_learning": al.history,
              "active_learning_stop": {"stopped": al.stopped, "converged": al.converged,
                                       "accurate_fraction_threshold":
                                           cfg["al_accurate_fraction"] or None},
              "n_reference_training_trajectories": len(train_trajs),
              "initial_data": initial,
              "n_training_frames": len(al.data)}
    atomic_write_json(out / "fidelity.json", result)
    try:
        plot_first_event(out / "first_event.png", ref_ev, mlp_ev, len(ref_trajs),
                         len(mlp_trajs), length_ps)
    except Exception as exc:  # noqa: BLE001 - a figure must never cost the numbers
        print(f"warning: no survival figure ({exc})")
    return result


def plot_first_event(path: str | os.PathLike, reference: dict, mlp: dict, n_reference: int,
                     n_mlp: int, length_ps: float) -> Path:
    """Kaplan-Meier curves of the time to the first event, reference vs MLP."""
    from common.events import kaplan_meier
    from common.plots import pyplot, save_figure

    plt = pyplot()

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, ev, n in (("reference", reference, n_reference), ("MLP", mlp, n_mlp)):
        d, o = _first_event_times(ev, n, length_ps)
        km = kaplan_meier(d, o)
        t = np.concatenate([[0.0], km.times, [length_ps]])
        s = np.concatenate([[1.0], km.survival, [km.survival[-1] if len(km.survival) else 1.0]])
        ax.step(t, s, where="post", label=f"{name} (n = {n})")
    ax.set_xlabel("time (ps)")
    ax.set_ylabel("no event yet (fraction)")
    ax.set_ylim(0, 1.05)
    ax.legend()
    return save_figure(fig, path)


def summary_lines(result: dict) -> list[str]:
    """Return a short human-readable summary of ``fidelity.json``, one line per item."""
    lines = [f"fidelity ({result['scale']}): {result['n_reference_trajectories']} reference vs "
             f"{result['n_mlp_trajectories']} MLP trajectories of {result['trajectory_ps']:g} ps"]
    for key, r in result["rates"].items():
        ci = r["ratio_ci95"]
        lines.append(f"  {key}: reference {r['reference_per_ps']:.3g}/ps (n = {r['n_reference']}),"
                     f" MLP {r['mlp_per_ps']:.3g}/ps (n = {r['n_mlp']}), ratio "
                     f"{'—' if r['ratio'] is None else format(r['ratio'], '.3g')} "
                     f"[{'—' if ci[0] is None else format(ci[0], '.3g')}, "
                     f"{'∞' if ci[1] is None else format(ci[1], '.3g')}]")
    lines.append(f"  time to first event: log-rank p = {result['logrank_p']:.3g}")
    lines.append("  the MLP reproduces the reference within the statistics"
                 if result["agrees"] else
                 "  the MLP does NOT reproduce the reference within the statistics")
    return lines
