"""The seed's GaN workflow end to end, at a chosen scale, with the reference beside the model.

reference lattice and chemical potentials (Tersoff GaN, LAMMPS) -> perfect and point-defect
cells sampled across temperatures (rattle + short MD with the reference) plus Ga metal and N2
(so the model has its own chemical potentials) -> labels (``common.labels``, cached) -> MACE
(mace's own trainer; a committee when ``committee_size`` > 1) -> interstitial search
(anneal-and-quench, with the reference) -> relaxed formation energies at the Ga-rich and
N-rich limits with MACE **and** with the reference -> Frenkel–Ladd free energies vs T of the
perfect and the defective cell with MACE **and** with the reference (one batched job each,
MBAR cross-check; optionally each temperature at its own lattice from NPT MD with the
reference, ``ti.thermal_expansion``) -> formation free energy vs T with error bars -> growth
on (0001) over a (T, Ga/N) grid with the defect-density map (``growth``) -> report.md,
summary.json, figures.

    from semiconductors import case_study
    summary = case_study.run("tiny", "runs/semiconductors_tiny")

Every stage is resumable: a rerun with the same ``outdir`` reuses what is on disk.

Simplifications (also in report.md): neutral defects only; the TI cells at the reference's 0 K
lattice, or with ``ti.thermal_expansion`` at the reference's NPT lattice of each temperature
(the same lattice for MACE, and the defective cell at the perfect crystal's); the formation
free energy uses μ_Ga of the Ga
metal at 0 K (static energy) and μ_N from μ_Ga + μ_N = F(GaN, T) per formula unit, so the
host's vibrational free energy is in it but the Ga reservoir's is not; interstitials are
searched with the reference and MACE relaxes the reference's lowest structure (unless
``model_interstitial_search``); the dislocation (:mod:`semiconductors.dislocation`) is not part
of the case study; the growth map is a toy (a few atoms deposited in picoseconds, Tersoff
blind to stacking faults) and cannot locate the seed's window.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.case_study import StageClock, claim_outdir, json_plain
from common.config import ConfigSchema
from common.fileio import atomic_write_json, atomic_write_text

CONFIGS = Path(__file__).parent / "configs"

#: the seed's published numbers (for comparison only; a tiny run on Tersoff labels cannot
#: reproduce them -- the seed's reference was DFT, its cells 512 atoms, its runs 100 ps)
SEED_RESULTS = {
    "lattice_A": {"a": 3.189, "c": 5.185},
    "V_Ga_formation_eV": {"300": 1.8, "1200": 1.2},
    "growth_optimum": {"temperature_C": [900, 950], "Ga_N_ratio": 0.95},
    "growth_conventional": {"temperature_C": [1100, 1200], "Ga_N_ratio": 1.2},
    "dislocation_density_per_cm2": {"conventional": 8e8, "optimised": 7e7},
    "mace_accuracy": {"energy_meV_per_atom": 5.0, "forces_eV_A": 0.02},
}


@dataclass(frozen=True)
class TrainingSettings(ConfigSchema):
    """Training configurations.

    Perfect and ``defects`` cells of ``repeat`` 4-atom cells, each at every temperature,
    ``frames_per_cell`` frames from ``md_steps`` of MD after a strain in ±``strain`` and a rattle;
    ``element_frames`` rattled Ga metal (α, bcc) and N2 frames of each kind (the model's own
    chemical potentials).
    """

    repeat: tuple[int, int, int]
    defects: tuple[str, ...]
    temperatures_K: tuple[float, ...]
    frames_per_cell: int
    md_steps: int
    strain: float
    element_frames: int
    split: tuple[float, float, float]


@dataclass(frozen=True)
class DefectSettings(ConfigSchema):
    """Formation energies.

    ``kinds`` in a ``repeat`` supercell, positions relaxed to ``fmax_eV_A`` or ``max_relax_steps``;
    interstitial search at ``search_temperature_K`` (``anneal_steps`` x ``replicas`` per start),
    with the reference, and with the model when ``model_interstitial_search``.
    """

    repeat: tuple[int, int, int]
    kinds: tuple[str, ...]
    fmax_eV_A: float
    max_relax_steps: int
    search_temperature_K: float
    anneal_steps: int
    replicas: int
    model_interstitial_search: bool


@dataclass(frozen=True)
class TISettings(ConfigSchema):
    """Frenkel–Ladd of the perfect ``repeat`` cell and of it with ``defect``."""

    repeat: tuple[int, int, int]
    defect: str
    temperatures_K: tuple[float, ...]
    n_lambda: int
    steps_per_window: int
    equilibration_steps: int
    timestep_fs: float
    friction_per_ps: float
    #: each temperature at its own lattice from NPT MD of the perfect cell (reference
    #: potential, ``npt_steps`` of which ``npt_equilibration_steps`` discarded)
    thermal_expansion: bool = False
    npt_steps: int = 2000
    npt_equilibration_steps: int = 500


@dataclass(frozen=True)
class GrowthSettings(ConfigSchema):
    """Growth-map settings of the case study.

    Deposition on a (0001) slab of ``size`` surface cells and ``bilayers`` bilayers over the
    (``temperatures_K``, ``flux_ratios``) grid (:func:`semiconductors.growth.growth_map`),
    ``n_atoms`` deposited per point with ``steps_per_atom`` MD steps each; ``potential``:
    "tersoff" (the reference) or "mace" (the trained model).
    """

    size: tuple[int, int]
    bilayers: int
    temperatures_K: tuple[float, ...]
    flux_ratios: tuple[float, ...]
    n_atoms: int
    steps_per_atom: int
    kinetic_energy_eV: float
    potential: str


@dataclass(frozen=True)
class CaseConfig(ConfigSchema):
    """The keys of ``configs/case_*.json``.

    ``labeller``: ``{"name": ..., **options}`` (:mod:`common.labels`; the reference, Tersoff GaN, by
    default); ``lattice``: ``"potential"`` (relaxed with the reference) or ``"seed"`` (a 3.189, c
    5.185 Å); ``mace`` names a MACE config (``configs/mace_*.json``), ``mace_overrides`` replaces
    some of its values; ``ga_phase``: the Ga-rich reservoir (alpha, bcc, fcc or lowest).
    """

    scale: str
    labeller: dict[str, Any]
    lattice: str
    ga_phase: str
    training: TrainingSettings
    mace: str
    mace_overrides: dict[str, Any]
    committee_size: int
    defects: DefectSettings
    ti: TISettings
    growth: GrowthSettings


def load_case_config(scale: str | Path) -> dict[str, Any]:
    """``tiny``, ``paper`` (the seed's) or a JSON file, checked against :class:`CaseConfig`."""
    from common.config import load_json_config
    from common.errors import ConfigError
    from semiconductors.systems import DEFECT_KINDS

    cfg = load_json_config(scale, CONFIGS, "case", what="case-study config", where="--scale",
                           schema=CaseConfig).to_dict()
    where = str(scale)
    kinds = [*cfg["training"]["defects"], *cfg["defects"]["kinds"], cfg["ti"]["defect"]]
    bad = [k for k in kinds if k not in DEFECT_KINDS]
    if bad:
        raise ConfigError(f"unknown defect {bad[0]!r}", where=where,
                          fix=f"use some of {', '.join(DEFECT_KINDS)}")
    if cfg["lattice"] not in ("potential", "seed"):
        raise ConfigError(f"lattice {cfg['lattice']!r} unknown", where=where,
                          fix="use potential or seed")
    temps = [*cfg["training"]["temperatures_K"], *cfg["ti"]["temperatures_K"],
             cfg["defects"]["search_temperature_K"], *cfg["growth"]["temperatures_K"]]
    if not all(math.isfinite(t) and t > 0 for t in temps):
        raise ConfigError("every temperature must be > 0 K", where=where,
                          fix="give temperatures in K, e.g. 300, 600, 900")
    if cfg["growth"]["potential"] not in ("tersoff", "mace"):
        raise ConfigError(f"growth potential {cfg['growth']['potential']!r} unknown",
                          where=where, fix="use tersoff or mace")
    if not all(math.isfinite(r) and r > 0 for r in cfg["growth"]["flux_ratios"]):
        raise ConfigError("every Ga/N flux ratio must be > 0", where=where,
                          fix="e.g. growth.flux_ratios [0.8, 1.0, 1.2]")
    if cfg["ti"]["n_lambda"] < 2:
        raise ConfigError("the λ grid needs at least 2 points", where=where,
                          fix="ti.n_lambda >= 2")
    return cfg


def _cached_json(path: Path, compute):
    """Return the JSON at ``path`` if it is there, else ``compute()`` written there atomically."""
    if path.exists():
        return json.loads(path.read_text())
    value = compute()
    atomic_write_json(path, value, default=json_plain)
    return json.loads(path.read_text())


def run(scale: str = "tiny", outdir: str | Path = "runs/semiconductors", seed: int = 0,
        progress: bool = True, device: str = "cpu") -> dict:
    """Run the case study; returns the summary (also ``outdir/summary.json``)."""
    import torch

    from common.labels import LabellerSpec
    from semiconductors import defects as D
    from semiconductors import systems as S
    from semiconductors.reference import TersoffBatched

    torch.set_num_threads(1)  # many small systems: one thread each is fastest (2 cores)
    cfg = load_case_config(scale)
    out = Path(outdir)
    claim_outdir(out, {"config": cfg, "seed": seed})
    clock = StageClock()
    ref = TersoffBatched()
    lab = dict(cfg["labeller"])
    spec = LabellerSpec(lab.pop("name"), lab)

    # 1. the reference's lattice and chemical potentials
    with clock("reference_s"):
        mu_ref = _cached_json(out / "reference" / "chemical_potentials.json",
                              lambda: D.chemical_potentials(ref, ga_phase_name=cfg["ga_phase"]))
        lat = mu_ref["gan"] if cfg["lattice"] == "potential" else {
            "a_A": S.SEED_A_A, "c_A": S.SEED_C_A, "u": S.IDEAL_U}
        prim = S.wurtzite(lat["a_A"], lat["c_A"], lat["u"])

    # 2-3. sample across temperatures with the reference, label, split
    with clock("sample_label_s"):
        data = _dataset(cfg["training"], prim, ref, spec, out, seed, progress)
    # 4. MACE
    with clock("train_s"):
        model, metrics = _model(cfg, data, out / "model", seed, device, progress)
    mace = model.batched() if hasattr(model, "batched") else model

    # 5. formation energies, MACE and reference side by side
    dcfg = cfg["defects"]
    host = S.supercell(prim, dcfg["repeat"])
    with clock("interstitials_s"):
        inter_ref = _interstitials(host, ref, dcfg, out / "interstitials" / "tersoff", seed)
        inter_mace = (_interstitials(host, mace, dcfg, out / "interstitials" / "mace", seed)
                      if dcfg["model_interstitial_search"] else inter_ref)
    with clock("formation_s"):
        mu_mace = _cached_json(out / "formation" / "mace_chemical_potentials.json",
                               lambda: D.chemical_potentials(mace,
                                                             ga_phase_name=cfg["ga_phase"]))
        form = {}
        for name, pot, mu, inter in (("tersoff", ref, mu_ref, inter_ref),
                                     ("mace", mace, mu_mace, inter_mace)):
            form[name] = _cached_json(
                out / "formation" / name / "formation_energies.json",
                lambda pot=pot, mu=mu, inter=inter, name=name: D.formation_energies(
                    host, pot, mu, kinds=dcfg["kinds"], fmax_eV_A=dcfg["fmax_eV_A"],
                    max_steps=dcfg["max_relax_steps"], interstitials=inter,
                    outdir=out / "formation" / name))
        D.plot_formation({"MACE": form["mace"], "Tersoff": form["tersoff"]},
                         out / "formation_energies.png")

    # 6. free energies vs T and the formation free energy
    with clock("ti_s"):
        ti = _free_energies(cfg["ti"], prim, {"tersoff": ref, "mace": mace}, form, out, seed,
                            device, progress)
    _plot_free_energy(ti, out / "formation_free_energy.png")

    # 7. growth over a (T, Ga/N) grid, the defect-density map
    with clock("growth_s"):
        growth = _growth(cfg["growth"], prim, out, seed, progress)

    summary = {
        "scale": cfg["scale"], "seed": seed, "labeller": spec.key(),
        "lattice": lat, "dataset": data["counts"], "formation_cell_atoms": len(host),
        "model": {"framework": "mace-torch", "config": cfg["mace"],
                  "committee_size": cfg["committee_size"], "metrics": metrics},
        "chemical_potentials": {"tersoff": _mu_brief(mu_ref), "mace": _mu_brief(mu_mace)},
        "formation_energies": {name: D.table_rows(f) for name, f in form.items()},
        "interstitial_search": {"tersoff": _search_brief(inter_ref, out, "tersoff"),
                                "mace": (_search_brief(inter_mace, out, "mace")
                                         if dcfg["model_interstitial_search"] else
                                         "relaxed from the reference's lowest structures")},
        "free_energies": ti,
        "growth": growth,
        "seed_results": SEED_RESULTS,
        "timings_s": clock.t,
    }
    atomic_write_json(out / "summary.json", summary, default=json_plain)
    atomic_write_text(out / "report.md", report_markdown(summary))
    return summary


# -- stages -------------------------------------------------------------------------------------
def _element_frames(n: int, seed: int) -> list:
    """Rattled Ga metal (α-Ga, bcc; strained ±3 %) and N2 molecules (bond 1.0-1.3 Å)."""
    import numpy as np
    from ase import Atoms

    from semiconductors.defects import ga_phase

    rng = np.random.default_rng(seed + 7)
    frames = []
    for k in range(n):
        for phase in ("alpha", "bcc"):
            a = ga_phase(phase).repeat((1, 1, 1) if phase == "alpha" else (2, 2, 2))
            a.set_cell(a.cell.array * (1 + rng.uniform(-0.03, 0.03)), scale_atoms=True)
            a.positions += rng.normal(0, 0.05, a.positions.shape)
            a.info = {"source": f"Ga {phase}", "temperature_K": 0.0}
            frames.append(a)
        r = 1.0 + 0.3 * k / max(1, n - 1)
        frames.append(Atoms("N2", positions=[[5, 5, 5], [5, 5, 5 + r]], cell=[10, 10, 10],
                            pbc=False, info={"source": "N2", "temperature_K": 0.0}))
    return frames


def _dataset(t: dict, prim, ref, spec, out: Path, seed: int, progress: bool) -> dict:
    """Sample, label and split the frames (``dataset/*.extxyz``), resumable."""
    import ase.io

    from common.data import Dataset
    from common.labels import label_structures, labelled_frames
    from semiconductors import systems as S

    folder = out / "dataset"
    names = ("train", "valid", "test")
    if all((folder / f"{n}.extxyz").exists() for n in names):
        parts = {n: ase.io.read(folder / f"{n}.extxyz", ":") for n in names}
    else:
        host = S.supercell(prim, t["repeat"])
        # defects relaxed with the reference first: an unrelaxed interstitial in a small,
        # strained and rattled cell can start with forces the MD guard stops
        cells = [host] + [S.relax(S.make_defect(host, k), ref, 0.05) for k in t["defects"]]
        frames = S.training_configurations(cells, ref, t["temperatures_K"], out / "sampling",
                                           frames_per_cell=t["frames_per_cell"],
                                           md_steps=t["md_steps"], strain=t["strain"],
                                           seed=seed, progress=progress)
        frames += _element_frames(t["element_frames"], seed)
        label_structures(frames, spec, out / "labels.db", cluster="serial", progress=progress,
                         source="sampled configurations")
        done = [a for a in labelled_frames(frames, spec, out / "labels.db") if a is not None]
        data = Dataset.from_frames(done).validate(max_force_eV_A=100.0)
        split = data.split(tuple(t["split"]), seed=seed)
        for n, part in zip(names, split, strict=True):
            part.write(folder / f"{n}.extxyz", overwrite=True)
        parts = {n: list(p) for n, p in zip(names, split, strict=True)}
    counts = {n: len(p) for n, p in parts.items()}
    by_source: dict[str, int] = {}
    for p in parts.values():
        for a in p:
            s = str(a.info.get("source", "?"))
            by_source[s] = by_source.get(s, 0) + 1
    counts["by_source"] = by_source
    return {**parts, "counts": counts}


def _model(cfg: dict, data: dict, folder: Path, seed: int, device: str, progress: bool):
    """Train the MACE (or committee), or load it from ``folder`` when it is there."""
    from common.data import Dataset
    from common.fileio import atomic_dir
    from common.potential.committee import Committee
    from common.potential.model_folder import META
    from semiconductors.model import MACEAdapter, load_config, train_committee

    n = int(cfg["committee_size"])
    if not (folder / META).exists():
        mcfg = load_config(cfg["mace"], **cfg["mace_overrides"])
        train, valid, test = (Dataset.from_frames(data[k]) for k in ("train", "valid", "test"))
        with atomic_dir(folder) as tmp:
            if n > 1:
                train_committee(train, valid, tmp, n, config=mcfg, seed=seed, test=test,
                                device=device)
            else:
                MACEAdapter.train(train, valid, tmp, config=mcfg, seed=seed, test=test,
                                  device=device, progress=progress)
    meta = json.loads((folder / META).read_text())
    if n > 1:
        members = [MACEAdapter.load(folder / m, device=device) for m in meta["members"]]
        return Committee([m.batched() for m in members]), members[0].meta.get("metrics", {})
    model = MACEAdapter.load(folder, device=device)
    return model, model.meta.get("metrics", {})


def _interstitials(host, pot, d: dict, folder: Path, seed: int) -> dict:
    """Find the lowest structure of each interstitial kind in ``d["kinds"]`` (search per kind)."""
    from semiconductors.systems import interstitial_search

    out = {}
    for kind in d["kinds"]:
        if kind in ("Ga_i", "N_i"):
            res = interstitial_search(host, kind[:-2], pot, folder / kind,
                                      temperature_K=d["search_temperature_K"],
                                      anneal_steps=d["anneal_steps"], replicas=d["replicas"],
                                      fmax_eV_A=d["fmax_eV_A"], seed=seed)
            out[kind] = res["lowest"]
    return out


def _search_brief(inter: dict, out: Path, name: str) -> dict:
    brief = {}
    for kind in inter:
        res = json.loads((out / "interstitials" / name / kind / "search.json").read_text())
        brief[kind] = {k: res[k] for k in ("lowest_from", "spread_quench_eV", "spread_all_eV",
                                           "improved_by_anneal_eV")}
        brief[kind]["n_starts"] = len(res["starts"])
    return brief


def _mu_brief(mu: dict) -> dict:
    return {"a_A": mu["gan"]["a_A"], "c_A": mu["gan"]["c_A"],
            "E_GaN_eV_per_formula": mu["gan"]["energy_eV_per_formula"],
            "Ga_phase": mu["ga_phase"], "mu_Ga_metal_eV": mu["mu_Ga_metal_eV"],
            "N2_eV": mu["n2"]["energy_eV"], "N2_bond_A": mu["n2"]["bond_A"],
            "formation_enthalpy_eV": mu["formation_enthalpy_eV"]}


def _free_energies(t: dict, prim, pots: dict, form: dict, out: Path, seed: int, device: str,
                   progress: bool) -> dict:
    """Run Frenkel–Ladd of the perfect and the defective cell with each potential.

    Also the formation free energy vs T at both limits.
    """
    from semiconductors import systems as S
    from semiconductors.defects import LIMITS, composition_change
    from semiconductors.thermo import (
        formation_free_energy,
        frenkel_ladd,
        frenkel_ladd_expanded,
        thermal_expansion,
    )

    host = S.supercell(prim, t["repeat"])
    result = {"cell_atoms": len(host), "defect": t["defect"], "potentials": {}}
    expansion = None
    if t["thermal_expansion"]:  # NPT of the perfect cell with the reference, every potential
        expansion = _cached_json(out / "ti" / "thermal_expansion.json", lambda: {
            "results": thermal_expansion(
                host, pots["tersoff"], t["temperatures_K"], out / "ti" / "npt",
                steps=t["npt_steps"], equilibration_steps=t["npt_equilibration_steps"],
                seed=seed, device=device)["results"]})
        result["thermal_expansion"] = expansion["results"]
    ti_kw = dict(n_lambda=t["n_lambda"], steps_per_window=t["steps_per_window"],
                 equilibration_steps=t["equilibration_steps"], timestep_fs=t["timestep_fs"],
                 friction_per_ps=t["friction_per_ps"], seed=seed, device=device,
                 checkpoint_every=t["steps_per_window"], progress=progress)
    for name, pot in pots.items():
        cells = {"perfect": S.relax(host, pot, 1e-3),
                 "defect": S.relax(S.make_defect(host, t["defect"]), pot, 1e-3)}
        runs = {}
        for cname, cell in cells.items():
            folder = out / "ti" / f"{name}_{cname}"
            def run(cell=cell, folder=folder, pot=pot, name=name):
                if expansion is None:
                    return _ti_brief(frenkel_ladd(
                        cell, pot, t["temperatures_K"], folder, **ti_kw,
                        restart=(folder / "md" / "run.json").exists(), potential_label=name))
                return _ti_brief(frenkel_ladd_expanded(cell, pot, expansion, folder, **ti_kw,
                                                       restart=True, potential_label=name))

            runs[cname] = _cached_json(folder / "result.json", run)
        mu = form[name]["chemical_potentials"]
        dn = composition_change(cells["defect"], cells["perfect"])
        static = (cells["defect"].info["energy_eV"] - cells["perfect"].info["energy_eV"])
        rows = []
        for r in runs["perfect"]["results"]:
            temp = r["temperature_K"]
            g_gan = 2.0 * r["free_energy_eV_per_atom"]  # per formula unit, at this T
            row = {"temperature_K": temp}
            for lim in LIMITS:
                mu_ga = mu["limits"][lim]["Ga"]  # 0 K reservoir (see the module docstring)
                mus = {"Ga": mu_ga, "N": g_gan - mu_ga} if lim == "Ga-rich" else \
                    {"N": mu["limits"][lim]["N"], "Ga": g_gan - mu["limits"][lim]["N"]}
                (f,) = formation_free_energy(
                    cells["defect"], {"results": [x for x in runs["defect"]["results"]
                                                  if x["temperature_K"] == temp]},
                    cells["perfect"], {"results": [r]}, chemical_potentials_eV=mus)
                key = lim.replace("-", "_")
                row[f"F_f_{key}_eV"] = f["formation_free_energy_eV"]
                row[f"F_f_{key}_err_eV"] = f["formation_free_energy_err_eV"]
            rows.append(row)
        static_f = {lim.replace("-", "_"): static - sum(n * mu["limits"][lim][s]
                                                        for s, n in dn.items() if n)
                    for lim in LIMITS}
        result["potentials"][name] = {"runs": runs, "formation_free_energy": rows,
                                      "static_formation_energy_eV": static_f}
    return result


def _ti_brief(res: dict) -> dict:
    keep = ("temperature_K", "free_energy_eV_per_atom", "free_energy_err_eV_per_atom",
            "einstein_spring_eV_per_A2", "n_lambda", "lattice_energy_eV_per_atom", "warnings",
            "a_A", "c_A")
    mds = res["md"] if isinstance(res["md"], list) else [res["md"]]
    speeds = [m.get("replica_steps_per_s") for m in mds if m.get("replica_steps_per_s")]
    return {"results": [{**{k: r[k] for k in keep if k in r},
                         "mbar": {k: r["mbar"].get(k) for k in (
                             "free_energy_eV_per_atom", "free_energy_err_eV_per_atom",
                             "ti_minus_mbar_sigma", "min_neighbour_overlap", "error")
                             if k in r["mbar"]}} for r in res["results"]],
            "replica_steps_per_s": float(sum(speeds) / len(speeds)) if speeds else None}


def _growth(g: dict, prim, out: Path, seed: int, progress: bool) -> dict:
    """Run the growth map (resumable through its sweep store) in ``out/growth``."""
    from semiconductors import systems as S
    from semiconductors.growth import growth_map

    substrate = S.slab_0001(prim, size=g["size"], bilayers=g["bilayers"], vacuum_A=15.0)
    potential = "tersoff" if g["potential"] == "tersoff" else str(out / "model")
    res = growth_map(substrate, g["temperatures_K"], g["flux_ratios"], out / "growth",
                     potential=potential, seed=seed, cluster="serial", progress=progress,
                     n_atoms=g["n_atoms"], steps_per_atom=g["steps_per_atom"],
                     kinetic_energy_eV=g["kinetic_energy_eV"])
    keep = ("temperature_K", "flux_ratio", "per_nm2", "vacancies", "antisites", "off_site",
            "wrong_bonds", "under_coordinated", "n2_molecules", "film_bilayers", "composition")
    return {"potential": g["potential"], "substrate_atoms": len(substrate),
            "optimum": res["optimum"],
            "points": [{k: p[k] for k in keep if k in p} for p in res["points"]]}


def _plot_free_energy(ti: dict, path: Path) -> None:
    from common.plots import pyplot, save_figure

    plt = pyplot()

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for k, (name, p) in enumerate(ti["potentials"].items()):
        for j, lim in enumerate(("Ga_rich", "N_rich")):
            rows = p["formation_free_energy"]
            ax.errorbar([r["temperature_K"] for r in rows], [r[f"F_f_{lim}_eV"] for r in rows],
                        yerr=[r[f"F_f_{lim}_err_eV"] for r in rows], capsize=3, marker="os"[k],
                        ls="-" if k == 0 else "--", color=f"C{j}",
                        label=f"{ti['defect']} {lim.replace('_', '-')} ({name})")
    ax.set_xlabel("temperature (K)")
    ax.set_ylabel("formation free energy (eV)")
    ax.legend(fontsize=7)
    save_figure(fig, path)


# -- report ---------------------------------------------------------------------------------------
def _f(x, spec=".2f"):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    return format(x, spec)


def report_markdown(s: dict) -> str:
    """Return ``report.md`` of the case study from its summary ``s``."""
    seed = s["seed_results"]
    m = s["model"]["metrics"].get("test", {})
    fe = s["formation_energies"]
    tersoff = {r["defect"]: r for r in fe["tersoff"]}
    rows = []
    for r in fe["mace"]:
        t = tersoff[r["defect"]]
        rows.append(f"| {r['defect']} | {_f(r['E_f_Ga_rich_eV'])} | {_f(t['E_f_Ga_rich_eV'])} "
                    f"| {_f(r['E_f_Ga_rich_eV'] - t['E_f_Ga_rich_eV'], '+.2f')} | "
                    f"{_f(r['E_f_N_rich_eV'])} | {_f(t['E_f_N_rich_eV'])} | "
                    f"{_f(r['E_f_N_rich_eV'] - t['E_f_N_rich_eV'], '+.2f')} |")
    ti = s["free_energies"]
    pm, pt = ti["potentials"]["mace"], ti["potentials"]["tersoff"]
    trows = []
    for a, b in zip(pm["formation_free_energy"], pt["formation_free_energy"], strict=True):
        trows.append(
            f"| {a['temperature_K']:.0f} | {_f(a['F_f_Ga_rich_eV'])} ± "
            f"{_f(a['F_f_Ga_rich_err_eV'], '.2f')} | {_f(b['F_f_Ga_rich_eV'])} ± "
            f"{_f(b['F_f_Ga_rich_err_eV'], '.2f')} | {_f(a['F_f_N_rich_eV'])} ± "
            f"{_f(a['F_f_N_rich_err_eV'], '.2f')} | {_f(b['F_f_N_rich_eV'])} ± "
            f"{_f(b['F_f_N_rich_err_eV'], '.2f')} |")
    frows = []
    for name, p in ti["potentials"].items():
        for r in p["runs"]["perfect"]["results"]:
            mb = r["mbar"]
            frows.append(f"| {name} | perfect | {r['temperature_K']:.0f} | "
                         f"{_f(r['free_energy_eV_per_atom'], '.5f')} ± "
                         f"{_f(r['free_energy_err_eV_per_atom'], '.5f')} | "
                         f"{_f(mb.get('free_energy_eV_per_atom'), '.5f')} ± "
                         f"{_f(mb.get('free_energy_err_eV_per_atom'), '.5f')} |")
    mu = s["chemical_potentials"]
    v_ga = s["seed_results"]["V_Ga_formation_eV"]
    g = s.get("growth")
    grows = [f"| {p['temperature_K']:.0f} ({p['temperature_K'] - 273.15:.0f} °C) | "
             f"{p['flux_ratio']:g} | {_f(p['per_nm2']['total'], '.2f')} | "
             f"{p.get('vacancies', '—')} | {p.get('antisites', '—')} | "
             f"{p.get('off_site', '—')} | {p.get('wrong_bonds', '—')} | "
             f"{p.get('under_coordinated', '—')} | {p.get('composition', '—')} |"
             for p in (g["points"] if g else [])]
    opt = g["optimum"] if g else None
    ours_growth = (f"fewest defects at {opt['temperature_K']:.0f} K "
                   f"({opt['temperature_K'] - 273.15:.0f} °C), Ga/N = {opt['flux_ratio']:g} "
                   f"({_f(opt['defects_per_nm2'], '.2f')} per nm²; toy, see below)"
                   if opt else "not run")
    expansion = ti.get("thermal_expansion")
    a0, c0 = s["lattice"]["a_A"], s["lattice"]["c_A"]
    xrows = [f"| {r['temperature_K']:.0f} | {_f(r['a_A'], '.4f')} ± {_f(r['a_err_A'], '.4f')} "
             f"| {_f(r['c_A'], '.4f')} ± {_f(r['c_err_A'], '.4f')} | "
             f"{_f((r['a_A'] / a0) ** 2 * r['c_A'] / c0, '.4f')} |"
             for r in (expansion or [])]
    lines = [
        f"# Semiconductors case study: point defects in wurtzite GaN ({s['scale']})",
        "",
        f"Reference labels: `{s['labeller']}` (Tersoff GaN, Nord et al. 2003, through LAMMPS). "
        f"Model: MACE (mace-torch's own trainer, config `{s['model']['config']}`, committee "
        f"of {s['model']['committee_size']}) trained on {s['dataset']['train']} frames "
        f"({json.dumps(s['dataset']['by_source'])}). Test-set errors: energy RMSE "
        f"{_f(_milli(m.get('energy_rmse_eV_per_atom')), '.1f')} meV/atom, "
        f"force RMSE {_f(m.get('force_rmse_eV_A'), '.3f')} eV/Å (seed: "
        f"{seed['mace_accuracy']['energy_meV_per_atom']} meV/atom, "
        f"{seed['mace_accuracy']['forces_eV_A']} eV/Å).",
        "",
        "## Lattice and chemical potentials (each potential its own)",
        "",
        "| | MACE | Tersoff | seed |",
        "|---|---|---|---|",
        f"| a (Å) | {_f(mu['mace']['a_A'], '.4f')} | {_f(mu['tersoff']['a_A'], '.4f')} | "
        f"{seed['lattice_A']['a']} |",
        f"| c (Å) | {_f(mu['mace']['c_A'], '.4f')} | {_f(mu['tersoff']['c_A'], '.4f')} | "
        f"{seed['lattice_A']['c']} |",
        f"| ΔH_f(GaN) (eV), Ga = {mu['tersoff']['Ga_phase']} | "
        f"{_f(mu['mace']['formation_enthalpy_eV'], '.3f')} | "
        f"{_f(mu['tersoff']['formation_enthalpy_eV'], '.3f')} | — |",
        f"| N2 bond (Å) | {_f(mu['mace']['N2_bond_A'], '.3f')} | "
        f"{_f(mu['tersoff']['N2_bond_A'], '.3f')} | — |",
        "",
        f"Every cell is built at one lattice for both potentials, a = "
        f"{_f(s['lattice']['a_A'], '.4f')} Å, c = {_f(s['lattice']['c_A'], '.4f')} Å (config "
        "`lattice`; MACE's own minimum is in the table), and relaxed at fixed cell.",
        "",
        f"## Relaxed neutral formation energies (eV), {s['formation_cell_atoms']}-atom cells",
        "",
        "| defect | MACE Ga-rich | Tersoff Ga-rich | Δ | MACE N-rich | Tersoff N-rich | Δ |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        "Δ = MACE − Tersoff: the model's error on the quantity itself, not only on forces.",
        "Interstitials: " + json.dumps(s["interstitial_search"]),
        "",
        f"## Formation free energy of {ti['defect']} vs T (eV, Frenkel–Ladd of "
        f"{ti['cell_atoms']}-atom cells, ± 1 SE)",
        "",
        "| T (K) | MACE Ga-rich | Tersoff Ga-rich | MACE N-rich | Tersoff N-rich |",
        "|---|---|---|---|---|",
        *trows,
        "",
        f"Static (0 K, relaxed, same cell): MACE {json.dumps(_round(pm['static_formation_energy_eV']))}"  # noqa: E501
        f", Tersoff {json.dumps(_round(pt['static_formation_energy_eV']))}.",
        "",
        "| potential | cell | T (K) | F TI (eV/atom) | F MBAR (eV/atom) |",
        "|---|---|---|---|---|",
        *frows,
        "",
        *(["Lattice of each temperature (NPT MD of the perfect TI cell with Tersoff; both "
           "potentials' TI cells use it):", "",
           "| T (K) | a (Å) | c (Å) | V/V(0 K) |", "|---|---|---|---|", *xrows, "",
           "This Tersoff parameterisation barely expands (LAMMPS's own fix npt gave V/V0 "
           "1.0048 at 300 K and 1.0001 at 1200 K on 192 atoms); on cells this small the NPT "
           "means carry their standard errors, so the lattice effect on F is within the TI "
           "error bars here.", ""] if expansion else
          ["All TI cells at the 0 K lattice (ti.thermal_expansion off).", ""]),
        *([f"## Growth on (0001): defects after deposition ({g['potential']}, "
           f"{g['substrate_atoms']}-atom substrate)", "",
           "| T (K) | Ga/N | defects per nm² | vacancies | antisites | off-site | wrong bonds | "
           "under-coordinated | composition |", "|---|---|---|---|---|---|---|---|---|",
           *grows, "",
           "Map: `growth/growth_map.png` (the star marks the fewest defects). The grid holds "
           "the seed's optimum (~1200 K, Ga/N 0.95) and conventional (~1450 K, Ga/N 1.2) "
           "conditions at a toy scale: a few atoms deposited in picoseconds on a few-nm² "
           "slab, bare Ga and N atoms, a potential blind to stacking faults. The counts are "
           "small integers; which point has the fewest is noise at this size, not a "
           "growth window (every point uses the same random numbers, so with a handful of "
           "atoms two ratios can even draw the same sequence of species).", ""] if g else []),
        "## Beside the seed",
        "",
        "| quantity | this run | seed |",
        "|---|---|---|",
        f"| V_Ga formation (free) energy, 300 K (eV) | {_at(pm, 300)} (MACE), {_at(pt, 300)} "
        f"(Tersoff) | {v_ga['300']} |",
        f"| V_Ga formation (free) energy, 1200 K (eV) | {_at(pm, 1200)} (MACE), "
        f"{_at(pt, 1200)} (Tersoff) | {v_ga['1200']} |",
        f"| growth optimum | {ours_growth} | "
        f"{seed['growth_optimum']['temperature_C'][0]}–"
        f"{seed['growth_optimum']['temperature_C'][1]} °C, Ga/N = "
        f"{seed['growth_optimum']['Ga_N_ratio']} (conventional "
        f"{seed['growth_conventional']['temperature_C'][0]}–"
        f"{seed['growth_conventional']['temperature_C'][1]} °C, Ga/N = "
        f"{seed['growth_conventional']['Ga_N_ratio']}) |",
        f"| dislocation density (cm⁻²) | not computed | "
        f"{seed['dislocation_density_per_cm2']['conventional']:.0e} → "
        f"{seed['dislocation_density_per_cm2']['optimised']:.0e} |",
        "",
        "## What this run can and cannot show",
        "",
        "- The reference is an empirical Tersoff potential, not the seed's DFT: its neutral "
        "V_Ga (≈ 5.7 eV Ga-rich) is far from the seed's 1.8 eV, which is a different physical "
        "model (DFT, and probably a charged defect at some Fermi level). The comparison that "
        "this run can make honestly is MACE against its own reference (the Δ columns).",
        "- Tersoff GaN has nearest-neighbour interactions only: wurtzite and zincblende have "
        "the same energy, so stacking faults and polytypes are invisible to it and to a model "
        "trained on it.",
        "- Neutral defects only; the TI cells at the 0 K lattice or (ti.thermal_expansion) at "
        "Tersoff's NPT lattice of each temperature, the same for MACE and for the defective "
        "cell; formation free energies take μ_Ga from the Ga metal's "
        "0 K energy and μ_N = F(GaN, T) − μ_Ga (Ga-rich) or μ_N = E(N2)/2 (N-rich): the host's "
        "vibrations are included, the reservoirs' vibrational and gas entropies are not.",
        f"- TI cells are small ({ti['cell_atoms']} atoms) and the windows short: the error bars "
        "are statistical only, not the finite-size error. The MBAR column uses the same samples.",
        f"- A tiny MACE ({s['dataset']['train']} training frames, minutes of training) is far "
        "from the seed's 5 meV/atom and 0.02 eV/Å: its formation energies can be off by eV, "
        "most for the defects least represented in its data, and its chemical potentials come "
        "from the handful of Ga-metal and N2 frames it saw.",
        "- The complexes (Ga_N+N_Ga: a Ga–N bond with its atoms swapped; V_Ga+Ga_i: the Ga "
        "moved to a void >= 3.5 Å away) keep the composition, so their formation energies do "
        "not depend on μ. The c-axis screw dislocation is not in this run "
        "(`semiconductors.dislocation`: Burgers circuit, ln R energy); no dislocation density "
        "can come from a toy deposition.",
        "",
        "Figures: `formation_energies.png`, `formation_free_energy.png`, "
        "`growth/growth_map.png`, "
        "`ti/*/dudl_vs_lambda.png`, `model/parity_test.png`.",
        f"Timings (s): {json.dumps(s['timings_s'])}",
        "",
    ]
    return "\n".join(lines)


def _milli(x):
    return None if x is None else 1000.0 * x


def _round(d: dict) -> dict:
    return {k: round(v, 3) for k, v in d.items()}


def _at(p: dict, temperature: float) -> str:
    for r in p["formation_free_energy"]:
        if abs(r["temperature_K"] - temperature) < 1e-6:
            return (f"{_f(r['F_f_Ga_rich_eV'])} ± {_f(r['F_f_Ga_rich_err_eV'])} / "
                    f"{_f(r['F_f_N_rich_eV'])} ± {_f(r['F_f_N_rich_err_eV'])} (Ga-/N-rich)")
    return "not run at this T"
