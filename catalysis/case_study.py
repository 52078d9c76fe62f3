"""The seed workflow end to end, at a chosen scale.

build starting structures -> sample configurations -> label (GFN1-xTB via tblite by default;
any ASE calculator for production, e.g. VASP) -> energy window -> train a committee of SchNet
models (schnetpack) -> active learning on the committee's force deviation, resumable
(:class:`common.active_learning.ActiveLearning`) -> production Langevin MD of N
trajectories (batched) -> reaction events, C-C coupling pathways, lifetimes -> CI-NEB barriers
-> report.md, summary.json and figures, with the seed's numbers side by side.

    from catalysis import case_study
    summary = case_study.run("tiny", "runs/catalysis_tiny")
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from catalysis.seed import ELECTRODE_POTENTIAL_NOTE, SEED_RESULTS
from common.case_study import StageClock, claim_outdir, fmt, json_plain
from common.config import ConfigSchema
from common.fileio import atomic_write_atoms, atomic_write_json, atomic_write_text

CONFIGS = Path(__file__).parent / "configs"

#: the seed's published results (for comparison only; a toy reference will not reproduce them)
@dataclass(frozen=True)
class MDSettings(ConfigSchema):
    """Production MD settings: ``trajectories`` Langevin runs of ``steps`` steps.

    A frame is saved every ``frame_every`` steps.
    """

    trajectories: int
    temperature_K: float
    friction_per_ps: float
    timestep_fs: float
    steps: int
    frame_every: int


@dataclass(frozen=True)
class EventSettings(ConfigSchema):
    """Event detection: a bond or surface-contact change counts if it lasts this long (fs)."""

    min_persistence_fs: float


@dataclass(frozen=True)
class BarrierSettings(ConfigSchema):
    """CI-NEB of the C-C coupling events: at most ``max_events``."""

    max_events: int
    n_images: int
    fmax_eV_A: float
    steps: int


@dataclass(frozen=True)
class CaseConfig(ConfigSchema):
    """The keys of ``configs/case_*.json`` (a user's own file is checked against them).

    ``labeller`` is ``{"name": preset, **options}`` (:mod:`common.labels`); ``schnet`` names
    a SchNet config (``configs/schnet_*.json``) or a file, ``schnet_overrides`` replaces some
    of its values; the ``al_*`` keys set active learning (MD steps per round, the trust
    window's lower end in eV/Å, frames labelled per round at most). ``library`` names the
    starting-structure library (:func:`catalysis.systems.seed_library`; default: ``scale``).
    ``production_system`` (optional) is the production MD's own system,
    ``{"slab": [nx, ny, layers], "n_water": n, "adsorbates": [species, ...]}`` (the seed's
    200 Cu + 50 H2O + CO2 in the paper config); empty: the coupling-capable starting
    structures. ``al_accurate_fraction`` (optional; 0: off) stops active learning once that
    fraction of a round's explored frames is below the trust window (DP-GEN's criterion; the
    report says whether it was reached). ``thermalize`` (optional;
    ``{"steps": n, "friction_per_ps": g}``) runs each production system at the target
    temperature with friction ``g`` first and starts the production run (the seed's weak
    friction) from where that ended, velocities included (:func:`common.md.thermalize`).
    """

    scale: str
    labeller: dict[str, Any]
    n_rattled: int
    rattle_A: tuple[float, float]
    energy_window_eV: float
    schnet: str
    active_learning_rounds: int
    al_md_steps: int
    al_flag_deviation_eV_A: float
    al_max_new_frames: int
    committee_size: int
    md: MDSettings
    events: EventSettings
    barriers: BarrierSettings
    schnet_overrides: dict[str, Any] = field(default_factory=dict)
    library: str = ""
    production_system: dict[str, Any] = field(default_factory=dict)
    al_accurate_fraction: float = 0.0
    thermalize: dict[str, Any] = field(default_factory=dict)


_OPTIONAL_KEYS = ("library", "production_system", "al_accurate_fraction", "thermalize")


def load_case_config(scale: str | Path) -> dict[str, Any]:
    """Load the case study's settings.

    ``scale`` is ``tiny``, ``paper`` (the seed's) or a JSON file, checked against
    :class:`CaseConfig` (a missing, unknown or mistyped key is a ConfigError naming it and the
    file); returned as a plain dict.
    """
    from common.config import load_json_config

    return load_json_config(scale, CONFIGS, "case", what="case-study config", where="--scale",
                            schema=CaseConfig).to_dict()


def run(scale: str = "tiny", outdir: str | Path = "runs/catalysis", seed: int = 0,
        labeller: dict | None = None, progress: bool = True, device: str = "cpu") -> dict:
    """Run the case study; returns the summary (also ``outdir/summary.json``)."""
    import ase.io

    from catalysis import systems
    from catalysis.barriers import event_barriers
    from catalysis.events import analyze_trajectories
    from catalysis.model import SchNetAdapter, load_config
    from common.active_learning import ActiveLearning, plot_history
    from common.data import Dataset
    from common.errors import SimulationError
    from common.labels import LabellerSpec, label_structures, labelled_frames
    from common.md.runner import run_md
    from common.md.thermalize import thermalize
    from common.potential.calculator import BatchedPotentialCalculator
    from common.potential.committee import Committee, committee_members, train_committee

    cfg = load_case_config(scale)
    out = Path(outdir)
    # optional keys left at their defaults are not part of the stamp, so folders of runs made
    # before those keys existed still resume
    stamped = {k: v for k, v in cfg.items() if v or k not in _OPTIONAL_KEYS}
    claim_outdir(out, {"config": stamped, "seed": seed, "labeller": labeller})
    clock = StageClock()
    lab_cfg = dict(labeller or cfg["labeller"])
    spec = LabellerSpec(lab_cfg.pop("name"), lab_cfg)
    db = out / "labels.db"

    def label(frames, name):
        report = label_structures(frames, spec, db, progress=progress, source=name)
        done = [a for a in labelled_frames(frames, spec, db) if a is not None]
        return done, report.to_dict()

    # 1-2. build and sample
    with clock("build_sample_s"):
        starts = systems.seed_library(cfg["library"] or cfg["scale"], seed=seed)
        atomic_write_atoms(out / "start_structures.extxyz", starts)
        frames = systems.sample_configurations(starts, cfg["n_rattled"],
                                               rattle_A=tuple(cfg["rattle_A"]), seed=seed)
    # 3-4. label, energy window, split
    with clock("label_s"):
        labelled, label_report = label(frames, "sampled configurations")
    kept, window = systems.energy_window(labelled, window_eV=cfg["energy_window_eV"])
    data = Dataset.from_frames(kept).validate(max_force_eV_A=100.0)
    train0, valid, test = data.split((0.8, 0.1, 0.1), seed=seed)
    for name, part in (("valid", valid), ("test", test)):
        part.write(out / "dataset" / f"{name}.extxyz", overwrite=True)

    schnet_cfg = load_config(cfg["schnet"], **cfg["schnet_overrides"])
    coupling_starts = [a for a in starts if "+" in str(a.info.get("adsorbates", ""))]
    if not coupling_starts:
        coupling_starts = [a for a in starts if len(a) > len(starts[0])] or starts

    def train(frames, folder, r):
        _, members = train_committee(SchNetAdapter, Dataset.from_frames(frames), valid, folder,
                                    cfg["committee_size"], config=schnet_cfg,
                                    seed=seed + 100 * r, test=test, device=device)
        committee = Committee([m.batched() for m in members])
        return (committee, members), members[0].meta.get("metrics", {})

    def load(folder, r):
        members = [SchNetAdapter.load(m, device=device) for m in committee_members(folder)]
        return Committee([m.batched() for m in members]), members

    def explore(pot, folder, r):
        committee, _ = pot
        md = run_md(coupling_starts, committee, folder, restart=(folder / "run.json").exists(),
                    ensemble="nvt", temperature_K=cfg["md"]["temperature_K"],
                    friction_per_ps=cfg["md"]["friction_per_ps"],
                    timestep_fs=cfg["md"]["timestep_fs"], steps=cfg["al_md_steps"],
                    seed=seed + 1000 * (r + 1), traj_every=cfg["md"]["frame_every"],
                    checkpoint_every=cfg["al_md_steps"],
                    # every frame with its deviation, so the accurate fraction is measured
                    flag_deviation_eV_A=0.0, progress=progress, on_blowup="stop_system")
        path = md.get("flagged_frames")
        return ase.io.read(path, ":") if path else []

    def label_new(frames):
        for f in frames:  # keep what the labeller needs, drop MD bookkeeping
            f.info = {k: v for k, v in f.info.items() if k in ("charge", "multiplicity")}
        done, _ = label(frames, "active-learning frames")
        return done

    loop = ActiveLearning(out / "active_learning", train0, train=train, load=load,
                          explore=explore, label=label_new, lo=cfg["al_flag_deviation_eV_A"],
                          hi=10.0 * cfg["al_flag_deviation_eV_A"],
                          max_new=cfg["al_max_new_frames"])
    with clock("train_and_active_learning_s"):
        al = loop.run(cfg["active_learning_rounds"],
                      accurate_fraction=cfg["al_accurate_fraction"] or None)
    committee, members = al.model
    metrics = al.metrics
    try:
        plot_history(al.history, out / "active_learning.png", lo=loop.lo, hi=loop.hi,
                     accurate_fraction=cfg["al_accurate_fraction"] or None)
    except Exception as exc:  # a figure must never cost the numbers
        print(f"warning: no active-learning figure ({exc})")

    # 6. production MD: N trajectories over the coupling-capable starting structures
    md_cfg = cfg["md"]
    n_traj = int(md_cfg["trajectories"])
    if cfg["production_system"]:
        prod_starts = [production_system(cfg["production_system"], seed=seed + k)
                       for k in range(n_traj)]
    else:
        prod_starts = [coupling_starts[k % len(coupling_starts)] for k in range(n_traj)]
    therm = None
    if cfg["thermalize"]:
        th = cfg["thermalize"]
        with clock("thermalize_s"):
            prod_starts, therm = thermalize(
                prod_starts, committee, out / "thermalize", steps=int(th["steps"]),
                temperature_K=md_cfg["temperature_K"],
                friction_per_ps=float(th.get("friction_per_ps", 10.0)),
                timestep_fs=md_cfg["timestep_fs"], seed=seed + 17, progress=progress,
                on_blowup="stop_system")
    with clock("production_md_s"):
        md = run_md(prod_starts, committee, out / "md", ensemble="nvt",
                    restart=(out / "md" / "run.json").exists(),
                    temperature_K=md_cfg["temperature_K"],
                    friction_per_ps=md_cfg["friction_per_ps"],
                    timestep_fs=md_cfg["timestep_fs"], steps=md_cfg["steps"], seed=seed,
                    traj_every=md_cfg["frame_every"],
                    checkpoint_every=min(md_cfg["steps"], 200_000),
                    flag_deviation_eV_A=cfg["al_flag_deviation_eV_A"], progress=progress,
                    on_blowup="stop_system")
    # a trajectory that blew up is unphysical before it crossed the guard's limits: the
    # analysis uses the trajectories that finished, and the report says how many did not
    failed = {int(k) for k in md["failed"]}
    if therm is not None:  # a system that blew up while thermalising starts broken
        failed |= {int(k) for k in therm["failed"]}
    good = [p for k, p in enumerate(md["trajectories"]) if k not in failed]
    simulated_ps = len(good) * md_cfg["steps"] * md_cfg["timestep_fs"] / 1000.0

    # 7. events
    with clock("events_s"):
        if not good:
            raise SimulationError("every production trajectory blew up", where=str(out / "md"),
                                  fix="train on more data (n_rattled, active-learning rounds) "
                                      "or lower the temperature/timestep")
        analysis = analyze_trajectories(good,
                                        min_persistence_fs=cfg["events"]["min_persistence_fs"])
        ev = analysis.to_dict()
        atomic_write_json(out / "events.json", ev)
        try:
            analysis.plot(out / "event_timeline.png")
        except Exception as exc:  # a figure must never cost the numbers
            print(f"warning: no event timeline figure ({exc})")

    # 8. barriers of the C-C coupling events
    coupling = [e for e in ev["events"] if e.get("pathway") is not None]
    chosen = coupling[: cfg["barriers"]["max_events"]]
    with clock("barriers_s"):
        frames_by = {e["trajectory"]: ase.io.read(e["trajectory"], ":") for e in chosen}
        pot0 = members[0].batched()
        bars = event_barriers(frames_by, chosen, lambda: BatchedPotentialCalculator(pot0),
                              n_images=cfg["barriers"]["n_images"],
                              fmax_eV_A=cfg["barriers"]["fmax_eV_A"],
                              steps=cfg["barriers"]["steps"])
        atomic_write_json(out / "barriers.json", bars)

    summary = {
        "scale": cfg["scale"], "seed": seed, "labeller": spec.key(),
        "labels": label_report, "energy_window": json_plain(window),
        "dataset": {"n_final_train": len(al.data), "n_valid": len(valid),
                    "n_test": len(test)},
        "model": {"framework": "schnetpack SchNet", "config": schnet_cfg,
                  "committee_size": cfg["committee_size"], "metrics": metrics},
        "active_learning": al.history,
        "active_learning_stop": {"stopped": al.stopped, "converged": al.converged,
                                 "accurate_fraction_threshold":
                                     cfg["al_accurate_fraction"] or None,
                                 "last_accurate_fraction":
                                     (al.history[-1]["accurate_fraction"] if al.history
                                      else None)},
        "thermalize": ({"steps": int(cfg["thermalize"]["steps"]),
                        "friction_per_ps": float(cfg["thermalize"].get("friction_per_ps", 10.0)),
                        "mean_temperature_K": therm.get("mean_temperature_K"),
                        "failed": therm.get("failed")} if therm is not None else None),
        "md": {**{k: md.get(k) for k in ("replicas", "steps", "timestep_fs",
                                         "mean_temperature_K",
                                         "temperature_std_between_replicas_K",
                                         "replica_steps_per_s",
                                         "batch_size", "n_flagged", "failed")},
               "n_finished": len(good)},
        "simulated_ps": simulated_ps,
        "events": {"n_events": len(ev["events"]), "n_coupling_events": len(coupling),
                   "pathways": ev["pathways"], "lifetimes": ev["lifetimes"],
                   "network": ev.get("network", [])},
        "barriers": {k: bars[k] for k in ("n", "mean_eV", "std_eV", "barriers_eV")},
        "seed_results": SEED_RESULTS,
        "timings_s": clock.t,
    }
    atomic_write_json(out / "summary.json", summary, default=json_plain)
    atomic_write_text(out / "report.md", report_markdown(summary))
    return summary


def production_system(spec: dict[str, Any], seed: int = 0):
    """Build the production MD system of a ``production_system`` config entry.

    A Cu(111) slab of ``slab`` = (nx, ny, layers) with the ``adsorbates`` placed on sites and
    ``n_water`` water molecules over them (the seed's: (5, 10, 4) = 200 Cu, CO2, 50 H2O).
    """
    from catalysis import systems

    slab = systems.cu111_slab(tuple(spec.get("slab", (4, 6, 4))))
    rng_sites = ["top", "fcc", "hcp", "bridge"]
    for k, species in enumerate(spec.get("adsorbates", [])):
        slab = systems.place(slab, species, site=(rng_sites[k % 4], k))
    # water in layers of at most half a monolayer each (a random layer rarely packs more), each
    # over the one before: the seed's 50 H2O on a 5x10 surface is two such layers
    n_water = int(spec.get("n_water", 0))
    per_layer = max(1, int(spec.get("slab", (4, 6, 4))[0]) * int(spec.get("slab", (4, 6, 4))[1])
                    // 2)
    layer = 0
    while n_water > 0:
        n = min(n_water, per_layer)
        slab = systems.water_layer(slab, n_water=n, seed=seed + 7919 * layer)
        n_water -= n
        layer += 1
    slab.info["production_system"] = json.dumps(spec, sort_keys=True)
    return slab


def estimate_md_wall_time(scale: str | Path = "paper", steps: int = 3, device: str = "cpu",
                          progress: bool = False) -> dict[str, Any]:
    """Time the production MD's step here and project the wall time of the whole production run.

    The whole run is the config's ``trajectories`` x ``steps``. The production system is built as
    the config says, and the config's SchNet committee is made with untrained weights (the cost of
    a step does not depend on the weights); ``steps`` steps of batched MD of all trajectories at
    once are timed by the engine's clock. The seed's own figure (36 h per µs on one V100) is given
    beside it; on a machine with a GPU, run this with ``device="cuda"`` to measure ours there.
    """
    import tempfile

    from catalysis.model import SchNetAdapter, load_config
    from catalysis.seed import seed_md_wall_time_h
    from common.md.runner import run_md
    from common.potential.committee import Committee

    cfg = load_case_config(scale)
    md_cfg = cfg["md"]
    schnet_cfg = load_config(cfg["schnet"], **cfg["schnet_overrides"])
    n_traj = int(md_cfg["trajectories"])
    if cfg["production_system"]:
        frames = [production_system(cfg["production_system"], seed=k) for k in range(n_traj)]
    else:
        from catalysis import systems

        lib = systems.seed_library(cfg["library"] or cfg["scale"], seed=0)
        coupling = [a for a in lib if "+" in str(a.info.get("adsorbates", ""))] or lib
        frames = [coupling[k % len(coupling)] for k in range(n_traj)]
    elements = sorted({s for a in frames for s in a.get_chemical_symbols()})
    with tempfile.TemporaryDirectory() as tmp:
        members = [SchNetAdapter.untrained(Path(tmp) / f"m{k}", schnet_cfg, seed=k,
                                           elements=elements).batched()
                   for k in range(int(cfg["committee_size"]))]
        pot = Committee(members)
        common_kw = dict(ensemble="nvt", temperature_K=md_cfg["temperature_K"],
                         friction_per_ps=md_cfg["friction_per_ps"],
                         timestep_fs=md_cfg["timestep_fs"], traj_every=0, device=device,
                         batch_size=n_traj, progress=progress)
        timed = run_md(frames, pot, Path(tmp) / "timed", steps=steps, **common_kw)
    # the engine's own clock covers the step loop only (not building, the first force call or
    # writing), so this is the cost of one MD step of the whole batch
    s_per_step = n_traj / timed["replica_steps_per_s"]
    total_steps = int(md_cfg["steps"])
    wall_h = s_per_step * total_steps / 3600.0
    sim_ps = n_traj * total_steps * md_cfg["timestep_fs"] / 1000.0
    return {
        "scale": cfg["scale"], "device": device, "n_trajectories": n_traj,
        "atoms_per_system": len(frames[0]), "committee_size": int(cfg["committee_size"]),
        "schnet": {k: schnet_cfg[k] for k in ("n_atom_basis", "n_interactions", "cutoff_A")},
        "timed_steps": steps, "seconds_per_step_all_trajectories": s_per_step,
        "steps_per_trajectory": total_steps, "simulated_ps": sim_ps,
        "projected_wall_time_h": wall_h, "projected_wall_time_days": wall_h / 24.0,
        "seed_gpu_wall_time_h": seed_md_wall_time_h(), "seed_gpu": SEED_RESULTS["gpu"],
        "note": ("projected from the measured step time of the whole batch (all trajectories "
                 "at once) with untrained weights; MD only (labelling, training and active "
                 "learning not included). " + ELECTRODE_POTENTIAL_NOTE),
    }


def _lifetime_row(name: str, d: dict | None, seed_ps: float) -> str:
    """Format a report row: our mean lifetime of ``name`` with its interval, beside the seed's."""
    if not d or not d.get("n"):
        ours = "not observed"
    else:
        ci = d.get("ci95_ps") or [None, None]
        ours = (f"{fmt(d['mean_ps'], '.3f')} ps [{fmt(ci[0], '.3f')}, {fmt(ci[1], '.3f')}]"
                f" (n = {d['n']})")
    return f"| {name} mean lifetime | {ours} | {seed_ps:g} ps |"


def _temperature_row(s: dict) -> str:
    """Format the report row of the temperature the production MD held (and the thermalisation)."""
    md, th = s["md"], s.get("thermalize")
    spread = md.get("temperature_std_between_replicas_K")
    held = (f"{fmt(md.get('mean_temperature_K'), '.0f')} K"
            + (f" (± {spread:.0f} K between trajectories)" if spread is not None else ""))
    how = ("after thermalising at " f"{fmt(th.get('mean_temperature_K'), '.0f')} K "
           f"({th['steps']} steps at {th['friction_per_ps']:g} ps⁻¹)"
           if th else "no thermalisation stage")
    return f"| production temperature held | {held}, {how} | 300 K (target) |"


def _active_learning_line(s: dict) -> str:
    """Say how active learning ended: converged by the accurate fraction or not."""
    st = s.get("active_learning_stop") or {}
    thr, last = st.get("accurate_fraction_threshold"), st.get("last_accurate_fraction")
    frac = (f"last exploration {fmt(last, '.2f')} accurate (deviation below the trust window)"
            if last is not None else "no exploration")
    if thr is None:
        verdict = "no accurate-fraction threshold set"
    elif st.get("converged"):
        verdict = f"converged (threshold {thr:g})"
    else:
        verdict = (f"**did not reach the threshold {thr:g}**: the MLP still leaves its data in "
                   "the MD it drives; more rounds (`active_learning_rounds`) are needed")
    return f"Active learning: {st.get('stopped', '?')}; {frac}; {verdict}."


def report_markdown(s: dict) -> str:
    """Return ``report.md`` for the summary ``s``: our numbers beside the seed's, with caveats."""
    seed = s["seed_results"]
    pw = s["events"]["pathways"]
    m = s["model"]["metrics"].get("test", {})
    rows = []
    for p in ("A", "B", "C"):
        d = pw.get(p, {})
        ci = d.get("ci95") or [None, None]
        rows.append(f"| pathway {p} fraction | {fmt(d.get('fraction'))} "
                    f"[{fmt(ci[0])}, {fmt(ci[1])}] | {seed['pathway_fractions'][p]:.2f} |")
    b = s["barriers"]
    lines = [
        f"# Catalysis case study: CO2 reduction on Cu(111) ({s['scale']})",
        "",
        f"Reference labels: `{s['labeller']}`. Model: SchNet (schnetpack), committee of "
        f"{s['model']['committee_size']}. "
        f"Test-set errors: energy MAE {fmt(m.get('energy_mae_eV_per_atom'), '.4f')} eV/atom, "
        f"force MAE {fmt(m.get('force_mae_eV_A'), '.3f')} eV/Å.",
        "",
        "| quantity | this run | seed |",
        "|---|---|---|",
        f"| trajectories finished / run | {s['md']['n_finished']} / {s['md']['replicas']} | "
        "10 / 10 |",
        _temperature_row(s),
        f"| simulated time | {s['simulated_ps']:.1f} ps | {seed['simulated_us']:g} µs "
        f"({seed['n_trajectories']} × {seed['trajectory_us']:g} µs) |",
        f"| reaction events | {s['events']['n_events']} | {seed['n_reaction_events']} |",
        f"| C–C coupling events | {s['events']['n_coupling_events']} | not stated apart |",
        *rows,
        f"| barrier (eV), mean ± std | {fmt(b['mean_eV'])} ± {fmt(b['std_eV'])} "
        f"(n = {b['n']}) | {seed['barrier_mean_eV']:.2f} ± {seed['barrier_std_eV']:.2f} |",
        *[_lifetime_row(name, s["events"]["lifetimes"].get(name), ps)
          for name, ps in seed["lifetime_ps"].items()],
        "",
        _active_learning_line(s),
        "",
        "Species lifetimes (completed lifetimes; 95 % t interval, clipped at 0):",
        "",
        "| species | n | mean (ps) | 95 % CI (ps) |",
        "|---|---:|---:|---|",
        *[f"| {name} | {d['n']} | {fmt(d['mean_ps'], '.3f')} | "
          f"[{fmt((d['ci95_ps'] or [None])[0], '.3f')}, "
          f"{fmt((d['ci95_ps'] or [None, None])[1], '.3f')}] |"
          for name, d in s["events"]["lifetimes"].items() if d["n"] > 0],
        "",
        "Reaction network (events per edge):",
        "",
        *[f"- {' + '.join(e['reactants'])} → {' + '.join(e['products'])}: {e['count']}"
          for e in sorted(s["events"].get("network", []), key=lambda e: -e["count"])[:15]],
        "",
        f"The seed's numbers come from its own reference method, its {seed['md_system']['n_cu']}"
        f" Cu + {seed['md_system']['n_water']} H2O + CO2 system and {seed['simulated_us']:g} µs "
        "of MD; a small run on a semi-empirical reference is not expected to reproduce them. "
        "With few or no events the fractions and their 95 % (Wilson) intervals say exactly "
        "that. " + ELECTRODE_POTENTIAL_NOTE,
        "",
        "Figures: `event_timeline.png`, `active_learning.png`, "
        "`active_learning/round_*/model/member_0/parity_test.png`.",
        f"Timings (s): {json.dumps(s['timings_s'])}",
        "",
    ]
    return "\n".join(lines)
