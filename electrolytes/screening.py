"""Screening electrolyte compositions: the condition grid through :mod:`common.sweep`.

The grid is solvent ratio × salt molarity × additive weight percent (compositions) × temperature.
One sweep task per composition: it packs a cell (:func:`electrolytes.systems.liquid_cell`),
runs batched Langevin MD (NVT, or NPT at ``pressure_bar``) of ``replicas`` copies at every
temperature in one :func:`common.md.runner.run_md` call (resumable: a killed task continues
its MD from the last checkpoint), then analyses each trajectory: D per species, Nernst-Einstein
and Einstein-Helfand conductivity (:mod:`electrolytes.transport`), the Li+ first shell
(:mod:`electrolytes.solvation`), Arrhenius fits over the temperatures, and, with a committee,
the max force deviation along the trajectory (how far the run left the model's trust).

Tasks run on a Dask ``LocalCluster`` by default (``cluster=None``), or ``"serial"``, a
scheduler address, a dask-jobqueue YAML file (:func:`common.sweep.run_tasks`). Each finished
composition is saved at once (``outdir/results/``); a rerun skips it. The table
(``screen.csv``, ``screen.json``), the best composition (highest conductivity at the grid
temperature nearest 298.15 K) and figures (``sigma_vs_composition.png``,
``arrhenius_sigma.png``) are written from the stored results.

Simplification, named: replicas of a temperature are averaged with equal weights (errors
combined as independent); the first ``discard_fs`` of each trajectory are dropped as
equilibration.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from common.config import ConfigSchema
from common.errors import ConfigError

__all__ = ["ScreenSettings", "compositions", "load_screen_config", "run_screen",
           "screen_composition", "summarize_screen"]

CONFIGS = Path(__file__).parent / "configs"
CHARGES = {"Li": 1.0, "P": -1.0}
ROOM_K = 298.15


@dataclass(frozen=True)
class ScreenSettings(ConfigSchema):
    """The keys of ``configs/screen_*.json`` (also the ``screen`` section of a case config).

    Grid: ``solvents`` (names, e.g. ["EC", "DEC"]) in each ratio of ``ratios`` (by
    ``ratio_by``: volume or mole), × ``salt_M`` (LiPF6 mol/L) × ``additive_wt_pct`` (of
    ``additive``) × ``temperatures_K``. Cells: ``n_atoms`` (about), ``relax_molecules`` (an
    xtb method relaxing each molecule before packing, or None), ``density_g_cm3``
    (None: the ideal-mixing estimate). MD: ``replicas`` per temperature, ``steps`` of
    ``timestep_fs``, Langevin ``friction_per_ps``, a frame every ``traj_every`` steps, the
    first ``discard_fs`` dropped; NPT when ``pressure_bar`` is given. ``rank_by``:
    conductivity that picks the best composition (nernst_einstein or einstein_helfand).
    ``minimize_steps``: FIRE steps of the start cell with the model itself before the MD (0:
    none); a cell relaxed with the reference method is not at the model's minimum, and the
    difference (~2 eV in a 56-atom tiny cell) would otherwise come out as heat in the first
    ~100 fs.
    """

    solvents: list[str]
    ratios: list[list[float]]
    salt_M: list[float]
    additive_wt_pct: list[float]
    temperatures_K: list[float]
    n_atoms: int
    steps: int
    timestep_fs: float
    traj_every: int
    additive: str = "FEC"
    ratio_by: str = "volume"
    density_g_cm3: float | None = None
    relax_molecules: str | None = None
    replicas: int = 1
    friction_per_ps: float = 1.0
    discard_fs: float = 0.0
    pressure_bar: float | None = None
    rank_by: str = "nernst_einstein"
    minimize_steps: int = 0

    def check(self, where: str = "screen") -> ScreenSettings:
        """Return the settings after checking them; a bad value is a :class:`ConfigError`."""
        def need(ok: bool, what: str, fix: str) -> None:
            if not ok:
                raise ConfigError(what, where=where, fix=fix)

        need(all(len(r) == len(self.solvents) for r in self.ratios) and bool(self.ratios),
             f"every ratio needs one number per solvent ({', '.join(self.solvents)})",
             "write e.g. ratios [[1, 1], [1, 2]] for solvents [EC, DEC]")
        need(bool(self.temperatures_K) and all(t > 0 for t in self.temperatures_K),
             "temperatures_K must be temperatures > 0 K", "give e.g. [273, 313, 353]")
        need(bool(self.salt_M) and bool(self.additive_wt_pct), "salt_M and additive_wt_pct "
             "need at least one value each", "give e.g. [1.0] and [0]")
        need(self.steps >= 1 and self.traj_every >= 1 and self.timestep_fs > 0
             and self.replicas >= 1 and self.friction_per_ps > 0 and self.n_atoms >= 1,
             "steps, traj_every, timestep_fs, replicas, friction_per_ps and n_atoms must be > 0",
             "give positive values")
        need(0 <= self.discard_fs < self.steps * self.timestep_fs, "discard_fs must be >= 0 "
             "and shorter than the run", "give e.g. 10 % of steps × timestep_fs")
        need(self.minimize_steps >= 0, f"minimize_steps must be >= 0 (got "
             f"{self.minimize_steps})", "give e.g. 200, or 0 for none")
        need(self.rank_by in ("nernst_einstein", "einstein_helfand"),
             f"unknown rank_by {self.rank_by!r}", "use nernst_einstein or einstein_helfand")
        return self


def load_screen_config(scale_or_path: str | Path, **overrides: Any) -> ScreenSettings:
    """``tiny``, ``paper`` or a JSON file, checked (one-line ConfigError naming the key)."""
    from common.config import load_json_config

    cfg = load_json_config(scale_or_path, CONFIGS, "screen", what="screening config",
                           where="--config", schema=ScreenSettings, **overrides)
    return cfg.check(str(scale_or_path))


def compositions(s: ScreenSettings) -> list:
    """Return the grid's compositions (:class:`electrolytes.systems.Composition`), ratio-major."""
    from electrolytes.systems import Composition

    out = [Composition(dict(zip(s.solvents, r, strict=True)), s.ratio_by, float(c),
                       s.additive, float(w))
           for r in s.ratios for c in s.salt_M for w in s.additive_wt_pct]
    return out


def composition_key(comp) -> str:
    """File-safe key of a composition: ``EC-DEC_1-1_v_1M_FEC0``."""
    names = "-".join(comp.solvents)
    ratio = "-".join(f"{v:g}" for v in comp.solvents.values())
    return (f"{names}_{ratio}_{comp.ratio_by[0]}_{comp.salt_M:g}M_"
            f"{comp.additive}{comp.additive_wt_pct:g}")


# -- one composition (runs in a sweep worker) ---------------------------------------------------


def screen_composition(composition: dict, temperatures_K: Sequence[float], model: str,
                       md: dict, outdir: str, seed: int = 0, device: str = "cpu",
                       n_atoms: int | None = None, counts: dict | None = None,
                       density_g_cm3: float | None = None,
                       relax_molecules: str | None = None, start: str | None = None) -> dict:
    """Pack, run MD at every temperature, analyse; a JSON-ready dict (see module docstring).

    ``composition``: :meth:`Composition.to_dict`; ``model``: a saved model or committee
    folder (any adapter); ``md``: ``replicas, steps, timestep_fs, friction_per_ps,
    traj_every, discard_fs, pressure_bar``; ``counts`` instead of ``n_atoms`` fixes the
    molecules; ``start`` (a structure file, with ``counts``) is the cell to start from
    (its first frame) instead of a new packing.
    """
    import ase.io

    from common.md.runner import run_md
    from common.potential.registry import load_saved
    from electrolytes.systems import Composition, cell_composition, liquid_cell

    comp = Composition(**composition)
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    cell_path = out / "cell.extxyz"
    if cell_path.exists():
        cell = ase.io.read(cell_path)
    elif start is not None:
        from common.fileio import atomic_write_atoms

        cell = ase.io.read(start, 0)
        cell.info = {"charge": 0, "counts": dict(counts or {})}
        atomic_write_atoms(cell_path, cell, format="extxyz")
        cell = ase.io.read(cell_path)
    else:
        cell = liquid_cell(None if counts else comp, n_atoms=None if counts else n_atoms,
                           counts=counts, density_g_cm3=density_g_cm3, seed=seed,
                           relax_molecules=relax_molecules)
        from common.fileio import atomic_write_atoms

        atomic_write_atoms(cell_path, cell, format="extxyz")
    temps = [float(t) for t in temperatures_K]
    pot = load_saved(Path(model), device=device)
    if md.get("minimize_steps"):
        cell = minimized(cell, pot, int(md["minimize_steps"]), out / "cell_minimized.extxyz",
                         device)
    reps = int(md.get("replicas", 1))
    kw = {"ensemble": "nvt"}
    if md.get("pressure_bar") is not None:
        kw = {"ensemble": "npt", "pressure_bar": float(md["pressure_bar"])}
    summary = run_md([cell] * len(temps), pot, out / "md",
                     restart=(out / "md" / "run.json").exists(), temperature_K=temps,
                     friction_per_ps=md["friction_per_ps"], timestep_fs=md["timestep_fs"],
                     steps=md["steps"], replicas=reps, seed=seed, traj_every=md["traj_every"],
                     checkpoint_every=max(md["steps"] // 4, 1), progress=False,
                     on_blowup="stop_system", device=device, **kw)
    dt = md["timestep_fs"] * md["traj_every"]
    skip = int(math.ceil(md.get("discard_fs", 0.0) / dt))
    failed = {int(k) for k in summary["failed"]}
    held = held_temperatures(summary["thermo"], md.get("discard_fs", 0.0))
    runs = []
    for k, path in enumerate(summary["trajectories"]):
        t = temps[k // reps]
        if k in failed:
            runs.append({"temperature_K": t, "replica": k % reps, "failed": True})
            continue
        every = ase.io.read(path, ":")
        runs.append({"temperature_K": t, "replica": k % reps, "failed": False,
                     **held.get(k, {}), **_analyse(every[skip:], t, dt, pot),
                     **_bonds(every)})
    known = counts or cell.info.get("counts")
    actual = cell_composition(known, cell.get_volume()) if known else {}
    rows = [_row(comp, t, [r for r in runs if r["temperature_K"] == t]) for t in temps]
    return {"key": composition_key(comp), "composition": comp.to_dict(),
            "label": comp.label(), "cell": {"n_atoms": len(cell), **{
                k: actual.get(k) for k in ("counts", "salt_M", "density_g_cm3", "wt_pct")}},
            "rows": rows, "arrhenius": _arrhenius(rows),
            "md": {k: summary.get(k) for k in ("replica_steps_per_s", "batch_size",
                                               "mean_temperature_K", "mean_density_g_per_cm3")},
            "runs": runs}


def minimized(cell, pot, steps: int, path: Path, device: str = "cpu"):
    """Minimise ``cell`` by at most ``steps`` FIRE steps on ``pot`` (fixed cell, fmax 0.05 eV/Å).

    The result is written to ``path`` once and read back on a rerun.
    """
    import ase.io
    from ase.optimize import FIRE

    from common.fileio import atomic_write_atoms
    from common.potential.calculator import BatchedPotentialCalculator

    if path.exists():
        return ase.io.read(path)
    a = cell.copy()
    a.calc = BatchedPotentialCalculator(pot, device=device)
    FIRE(a, logfile=None, maxstep=0.1).run(fmax=0.05, steps=steps)
    a.calc = None
    a.info = dict(cell.info)
    atomic_write_atoms(path, a, format="extxyz")
    return ase.io.read(path)


def held_temperatures(thermo_path: str | Path, discard_fs: float = 0.0, n_blocks: int = 5
                      ) -> dict[int, dict]:
    """Return the mean kinetic temperature of each MD system, with its error and energy drift.

    Per MD system: the mean kinetic temperature after the first ``discard_fs``, its standard error
    from ``n_blocks`` consecutive blocks (the thermo samples are correlated over ~1/(2 friction))
    and the standard deviation of the samples (``md_temperature_K``, ``md_temperature_err_K``,
    ``md_temperature_std_K``), from the thermo log, so each run is checked against its own target
    (the run summary averages all runs); and the drift of the potential energy
    (``md_epot_drift_eV``: last block's mean minus the first's), which tells why a run is hotter
    than its target: a model whose potential energy keeps falling releases that energy as heat
    faster than the thermostat takes it out.
    """
    from common.md.runner import read_thermo

    cols = read_thermo(thermo_path)
    out: dict[int, dict] = {}
    keep = cols["time_ps"] >= discard_fs / 1000.0
    for s in np.unique(cols["system"]).astype(int):
        sel = (cols["system"] == s) & keep
        if sel.any():
            t, e = cols["T_K"][sel], cols["Epot_eV"][sel]
            n = max(1, len(e) // n_blocks)
            out[int(s)] = {"md_temperature_K": float(t.mean()),
                           "md_temperature_err_K": block_error(t, n_blocks),
                           "md_temperature_std_K": float(t.std()),
                           "md_epot_drift_eV": float(e[-n:].mean() - e[:n].mean())}
    return out


def block_error(x, n_blocks: int = 5) -> float | None:
    """Return the standard error of the mean of a correlated series from block means.

    The series is cut into ``n_blocks`` blocks; None with fewer samples than blocks.
    """
    x = np.asarray(x, dtype=float)
    n = len(x) // n_blocks
    if n < 1 or n_blocks < 2:
        return None
    means = x[: n * n_blocks].reshape(n_blocks, n).mean(axis=1)
    return float(means.std(ddof=1) / math.sqrt(n_blocks))


def _analyse(frames, temperature_K: float, dt_fs: float, pot) -> dict:
    """Transport, solvation and (with a committee) force deviation of one trajectory."""
    from electrolytes.solvation import solvation_shells
    from electrolytes.transport import analyse_transport

    res: dict[str, Any] = {"n_frames": len(frames)}
    try:
        tr = analyse_transport(frames, temperature_K, CHARGES, dt_fs=dt_fs, name="screen")
        d = tr.to_dict()
        res["species"] = d["species"]
        res["conductivity"] = d.get("conductivity") or {}
    except Exception as exc:  # an unanalysable run is reported, not fatal to the grid
        res["transport_error"] = str(exc).splitlines()[0]
    try:
        sol = solvation_shells(frames, "Li", dt_fs=dt_fs, where="screen").to_dict()
        res["solvation"] = {k: sol[k] for k in ("coordination", "compositions", "mean_shell",
                                                "cutoffs_A", "residence_times_ps")}
    except Exception as exc:
        res["solvation_error"] = str(exc).splitlines()[0]
    if hasattr(pot, "members"):
        res["deviation"] = _deviation(frames, pot)
    return res


def _bonds(frames) -> dict:
    """Return the covalent bonds of the run's first frame kept to its end (the whole run).

    Li+ is left out: its O/F contacts are the solvation shell, not bonds.
    """
    from common.events.bonds import bond_retention

    try:
        heavy = [k for k, z in enumerate(frames[0].numbers) if z != 3]
        return {"bonds": bond_retention(frames, heavy, where="screen")}
    except Exception as exc:  # reported, not fatal to the grid
        return {"bonds_error": str(exc).splitlines()[0]}


def _deviation(frames, pot, n: int = 20) -> dict:
    """Return the median and 90th percentile of the committee's max force deviation (eV/Å).

    They are taken over up to ``n`` frames spread along the trajectory.
    """
    from common.potential.protocol import evaluate

    idx = np.unique(np.linspace(0, len(frames) - 1, min(n, len(frames))).round().astype(int))
    out = evaluate(pot, [frames[i] for i in idx])
    dev = out["max_force_deviation"].detach().cpu().numpy()
    return {"median_eV_A": float(np.median(dev)), "p90_eV_A": float(np.percentile(dev, 90)),
            "n_frames": int(len(dev))}


def _mean_err(values: list[tuple[float | None, float | None]]) -> tuple[float | None,
                                                                          float | None]:
    vals = [(v, e) for v, e in values if v is not None and math.isfinite(v)]
    if not vals:
        return None, None
    m = float(np.mean([v for v, _ in vals]))
    errs = [e for _, e in vals if e is not None and math.isfinite(e)]
    err = float(np.sqrt(np.sum(np.square(errs))) / len(vals)) if len(errs) == len(vals) \
        else None
    return m, err


def _row(comp, t: float, runs: list[dict]) -> dict:
    ok = [r for r in runs if not r["failed"] and "species" in r]
    row: dict[str, Any] = {"composition": comp.label(), "key": composition_key(comp),
                           "ratio": ":".join(f"{v:g}" for v in comp.solvents.values()),
                           "salt_M": comp.salt_M, "additive_wt_pct": comp.additive_wt_pct,
                           "temperature_K": t, "n_replicas": len(runs), "n_analysed": len(ok)}
    for s in ("Li", "P"):
        row[f"D_{s}_cm2_per_s"], row[f"D_{s}_err_cm2_per_s"] = _mean_err(
            [(r["species"].get(s, {}).get("D_cm2_per_s"),
              r["species"].get(s, {}).get("D_err_cm2_per_s")) for r in ok])
    for kind in ("nernst_einstein", "einstein_helfand"):
        row[f"sigma_{kind}_S_per_cm"], row[f"sigma_{kind}_err_S_per_cm"] = _mean_err(
            [(r["conductivity"].get(f"{kind}_S_per_cm"),
              r["conductivity"].get(f"{kind}_err_S_per_cm")) for r in ok])
    row["haven_ratio"] = _mean_err([(r["conductivity"].get("haven_ratio"), None)
                                    for r in ok])[0]
    row["md_epot_drift_eV"] = _mean_err([(r.get("md_epot_drift_eV"), None)
                                         for r in runs if not r["failed"]])[0]
    row["md_temperature_K"], row["md_temperature_err_K"] = _mean_err(
        [(r.get("md_temperature_K"), r.get("md_temperature_err_K"))
         for r in runs if not r["failed"]])
    sol = [r["solvation"] for r in runs if "solvation" in r]
    if sol:
        shells: dict[str, float] = {}
        for s in sol:
            for name, frac in s["compositions"].items():
                shells[name] = shells.get(name, 0.0) + frac / len(sol)
        row["li_o_coordination"] = _mean_err([(s["coordination"].get("O"), None)
                                              for s in sol])[0]
        row["top_shell"] = max(shells, key=shells.get) if shells else None
        row["top_shell_fraction"] = shells.get(row["top_shell"]) if shells else None
    row["bonds_kept_final"] = _mean_err([(r["bonds"].get("kept_final"), None)
                                         for r in runs if "bonds" in r])[0]
    devs = [r["deviation"]["median_eV_A"] for r in runs if "deviation" in r]
    row["deviation_median_eV_A"] = float(np.median(devs)) if devs else None
    return row


def _arrhenius(rows: list[dict]) -> dict:
    """Ea ± err of D(Li) and of σT (both conductivities) over the rows' temperatures."""
    from electrolytes.transport import arrhenius_fit

    out: dict[str, Any] = {}
    series = {"D_Li": ("D_Li_cm2_per_s", "D_Li_err_cm2_per_s", False),
              "sigma_nernst_einstein": ("sigma_nernst_einstein_S_per_cm",
                                        "sigma_nernst_einstein_err_S_per_cm", True),
              "sigma_einstein_helfand": ("sigma_einstein_helfand_S_per_cm",
                                         "sigma_einstein_helfand_err_S_per_cm", True)}
    for name, (vk, ek, times_t) in series.items():
        pts = [(r["temperature_K"], r[vk], r[ek]) for r in rows
               if r.get(vk) is not None and r[vk] > 0]
        if len({p[0] for p in pts}) < 3:
            out[name] = None
            continue
        t = np.array([p[0] for p in pts])
        y = np.array([p[1] for p in pts]) * (t if times_t else 1.0)
        e = np.array([p[2] if p[2] is not None else np.nan for p in pts]) * (
            t if times_t else 1.0)
        f = arrhenius_fit(t, y, e)
        out[name] = {"Ea_eV": f.Ea_eV, "Ea_err_eV": f.Ea_err_eV, "prefactor": f.prefactor,
                     "chi2_reduced": None if math.isnan(f.chi2_reduced) else f.chi2_reduced}
    return out


# -- the sweep ------------------------------------------------------------------------------------


def run_screen(settings: ScreenSettings | dict, model: str | Path, outdir: str | Path, *,
               seed: int = 0, device: str = "cpu", cluster: Any = None,
               n_workers: int | None = None, progress: bool = True,
               counts: dict | None = None, start: str | None = None) -> dict:
    """Run (or continue) the screening grid; returns :func:`summarize_screen`'s dict.

    ``counts`` (molecule counts) replaces the atom count for a one-composition screen;
    ``start`` (a structure file of those counts) is then its starting cell.
    """
    from common.potential.registry import load_saved
    from common.sweep import JsonDirStore, run_tasks

    s = settings if isinstance(settings, ScreenSettings) else ScreenSettings.from_dict(settings)
    s.check()
    out = Path(outdir)
    load_saved(Path(model))  # a bad model folder fails here, before any worker starts
    md = {"replicas": s.replicas, "steps": s.steps, "timestep_fs": s.timestep_fs,
          "friction_per_ps": s.friction_per_ps, "traj_every": s.traj_every,
          "discard_fs": s.discard_fs, "pressure_bar": s.pressure_bar,
          "minimize_steps": s.minimize_steps}
    comps = compositions(s)
    if counts is not None and len(comps) != 1:
        raise ConfigError("molecule counts fix one composition, but the grid has "
                          f"{len(comps)}", where="counts",
                          fix="give one ratio, one molarity and one additive level")
    tasks = {}
    for k, comp in enumerate(comps):
        key = composition_key(comp)
        tasks[key] = (screen_composition, {
            "composition": comp.to_dict(), "temperatures_K": list(s.temperatures_K),
            "model": str(Path(model).resolve()), "md": md,
            "outdir": str((out / "runs" / key).resolve()), "seed": seed + k,
            "device": device, "n_atoms": s.n_atoms, "counts": counts,
            "density_g_cm3": s.density_g_cm3, "relax_molecules": s.relax_molecules,
            "start": start})
    store = JsonDirStore(out / "results")
    report = run_tasks(tasks, store, cluster=cluster, n_workers=n_workers, progress=progress,
                       description="screening compositions")
    summary = summarize_screen(store.results(), out, s.rank_by)
    summary["sweep"] = report.to_dict()
    return summary


def summarize_screen(results: dict[str, dict], outdir: str | Path,
                     rank_by: str = "nernst_einstein") -> dict:
    """Write the table, best composition and figures of the stored per-composition results.

    The table is ``screen.csv`` and ``screen.json``.
    """
    from common.fileio import atomic_write_json, atomic_write_text

    out = Path(outdir)
    rows = [r for res in results.values() for r in res["rows"]]
    temps = sorted({r["temperature_K"] for r in rows})
    ref_t = min(temps, key=lambda t: abs(t - ROOM_K)) if temps else None
    key = f"sigma_{rank_by}_S_per_cm"
    ranked = sorted((r for r in rows if r["temperature_K"] == ref_t and r.get(key) is not None),
                    key=lambda r: -r[key])
    best = ranked[0] if ranked else None
    summary = {"n_compositions": len(results), "n_conditions": len(rows),
               "reference_temperature_K": ref_t, "rank_by": rank_by,
               "best": None if best is None else {
                   "composition": best["composition"], "key": best["key"],
                   "sigma_S_per_cm": best[key],
                   "sigma_err_S_per_cm": best[f"sigma_{rank_by}_err_S_per_cm"],
                   "arrhenius": results[best["key"]]["arrhenius"]},
               "arrhenius": {k: r["arrhenius"] for k, r in results.items()},
               "rows": rows}
    atomic_write_json(out / "screen.json", summary)
    atomic_write_text(out / "screen.csv", _csv(rows))
    figs = {}
    try:
        figs["sigma_vs_composition"] = str(plot_sigma(rows, ref_t, rank_by,
                                                      out / "sigma_vs_composition.png"))
        figs["arrhenius"] = str(plot_arrhenius_sigma(results, rank_by,
                                                     out / "arrhenius_sigma.png"))
    except Exception as exc:  # a figure must never cost the numbers
        summary["figure_error"] = str(exc).splitlines()[0]
    summary["figures"] = figs
    atomic_write_json(out / "screen.json", summary)
    return summary


def _csv(rows: list[dict]) -> str:
    if not rows:
        return ""
    cols = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in cols})
    return buf.getvalue()


def plot_sigma(rows: list[dict], ref_t: float | None, rank_by: str, path: Path) -> Path:
    """Plot σ at the reference temperature against salt molarity.

    One line per solvent ratio and additive level.
    """
    from electrolytes.transport import _pyplot, _save

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    key = f"sigma_{rank_by}_S_per_cm"
    groups: dict[str, list[dict]] = {}
    for r in rows:
        if r["temperature_K"] == ref_t and r.get(key) is not None:
            groups.setdefault(f"{r['ratio']}, {r['additive_wt_pct']:g} wt%", []).append(r)
    for label, rs in groups.items():
        rs = sorted(rs, key=lambda r: r["salt_M"])
        err = [r.get(f"sigma_{rank_by}_err_S_per_cm") or 0.0 for r in rs]
        ax.errorbar([r["salt_M"] for r in rs], [1e3 * r[key] for r in rs],
                    yerr=[1e3 * e for e in err], fmt="o-", ms=4, capsize=2, label=label)
    ax.set(xlabel="LiPF6 (mol/L)", ylabel=f"σ {rank_by.replace('_', '-')} (mS/cm)",
           title=f"T = {ref_t:g} K" if ref_t else "")
    if groups:
        ax.legend(fontsize=7, title="solvent ratio, additive", title_fontsize=7)
    return _save(fig, path)


def plot_arrhenius_sigma(results: dict[str, dict], rank_by: str, path: Path) -> Path:
    """σT against 1000/T (log scale) for each composition, with its Arrhenius line."""
    from electrolytes.transport import _pyplot, _save

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    key = f"sigma_{rank_by}_S_per_cm"
    for res in results.values():
        pts = [(r["temperature_K"], r[key], r.get(f"sigma_{rank_by}_err_S_per_cm"))
               for r in res["rows"] if r.get(key) is not None and r[key] > 0]
        if not pts:
            continue
        t = np.array([p[0] for p in pts])
        y = np.array([p[1] for p in pts]) * t
        e = np.array([p[2] or 0.0 for p in pts]) * t
        fit = (res.get("arrhenius") or {}).get(f"sigma_{rank_by}")
        label = res["label"] + (f": Ea = {fit['Ea_eV']:.3f} ± {fit['Ea_err_eV']:.3f} eV"
                                if fit else "")
        bars = ax.errorbar(1000.0 / t, y, yerr=e, fmt="o", ms=4, capsize=2, label=label)
        if fit:
            tt = np.linspace(t.min(), t.max(), 50)
            ax.plot(1000.0 / tt, fit["prefactor"] * np.exp(-fit["Ea_eV"] / (8.617333262e-5 * tt)),
                    "-", lw=1, color=bars[0].get_color())
    ax.set_yscale("log")
    ax.set(xlabel="1000 / T (1/K)", ylabel="σT (S K/cm)")
    ax.legend(fontsize=6)
    return _save(fig, path)
