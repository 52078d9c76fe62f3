"""The seed's drug-binding workflow end to end, at a chosen scale.

receptor (a PDB through pdbfixer, or a short peptide built offline by tleap) + ligand library
(SMILES) -> GAFF2/AM1-BCC parameters, complexes in implicit GBn2 -> ligand conformers by
high-temperature GAFF2 MD in vacuum -> GFN2-xTB labels (``common.labels``, cached) -> an
ANI-architecture model trained on them (:class:`drug_binding.model.ANIAdapter`) -> ML/MM
binding-stability screening of every ligand (:mod:`drug_binding.screening`, through
``common.sweep``) -> well-tempered metadynamics of the best ``n_best`` on the ML/MM System,
as independent walkers through ``common.sweep`` (:func:`metad_walker`, each
:func:`drug_binding.metad.run_metad`) -> profiles, ΔG and ΔG_bind with errors (the spread
over walkers, :func:`combine_walkers`; one walker: its block analysis) -> validation
against experimental ΔG when the config names a table with it -> report.md, summary.json,
figures. A ligand that falls apart under the ML potential (a ligand bond past
:data:`drug_binding.screening.MAX_BOND_A`) is reported as such in the screening table and not
ranked; a metadynamics walker whose ligand falls apart is stopped by a guard and left out of
the ΔG (counted in ``n_walkers_failed``).

The tiny scale is a host--guest system with measured affinities, so that the whole chain down to
the validation table runs in minutes: alpha-cyclodextrin (GAFF2 with the benchmark set's
charges) and three 1-alkylammonium guests in their bound poses (``data/cd_set1``: Mobley and
Gilson's CD Set 1, calorimetric ΔG of Rekharsky et al. 1997), a tiny ANI trained on GFN2-xTB
frames of the guests and refined by two rounds of active learning, implicit OBC2, 3
metadynamics walkers of 6 ps per guest where the seed ran a microsecond; its report says what
such short walkers can and cannot measure. The ``toy`` scale is the earlier
tiny system (a capped tripeptide, four aromatic ligands, no experiment). The seed's published
numbers are printed beside ours for orientation only. Every stage is resumable: a rerun with
the same ``outdir`` reuses the complexes, labels, model, screening results and metadynamics.

    from drug_binding import case_study
    summary = case_study.run("tiny", "runs/drug_binding_tiny")
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from common.case_study import StageClock, claim_outdir, fmt, json_plain
from common.config import ConfigSchema
from common.fileio import atomic_write_atoms, atomic_write_json, atomic_write_text
from drug_binding.active_learning import ALSettings
from drug_binding.metad import combine_walkers, plot_walkers

__all__ = ["combine_walkers", "ligand_inputs", "load_case_config", "metad_walker",
           "plot_walkers", "run", "walker_funnel"]

CONFIGS = Path(__file__).parent / "configs"
#: data files shipped with the package (a config's relative file path not found from the current
#: folder is looked for here): ``cd_set1/`` holds alpha-cyclodextrin and guests of Mobley and
#: Gilson's benchmark sets with measured binding free energies (see its README.md)
DATA = Path(__file__).parent / "data"
#: training frames with an atomic force above this (eV/Å) are dropped (clashes)
MAX_FORCE_EV_A = 50.0

#: the seed's published results (case study 3; for comparison only)
SEED_RESULTS = {
    "target": "SARS-CoV-2 Mpro (PDB 6LU7)",
    "n_docked": 100000,
    "n_screened_mlmm": 1000,
    "n_validated": 20,
    "metad_per_compound_ns": 1000.0,
    "r2_ani_metad": 0.82,
    "rmse_ani_metad_kcal_per_mol": 1.2,
    "r2_mmgbsa": "0.5-0.6",
    "rmse_mmgbsa_kcal_per_mol": 2.5,
    "best_compound": "Compound-42",
    "best_dG_kcal_per_mol": -12.3,
    "best_IC50_nM": 8.0,
}


@dataclass(frozen=True)
class SamplingSettings(ConfigSchema):
    """Training conformers: GAFF2 MD frames of each ligand alone, and noisy copies of them.

    ``frames_per_ligand`` frames from GAFF2 Langevin MD of each ligand alone in vacuum at
    ``temperature_K``, one every ``every_steps`` steps of 1 fs, and for each noise level in
    ``rattle_A`` (Å per coordinate; a number or a list, 0: none) a copy of each with that Gaussian
    noise. The distorted copies teach the model that stretched bonds cost energy: without them the
    tiny model let ligands fall apart in ML/MM MD.
    """

    frames_per_ligand: int
    temperature_K: float
    every_steps: int
    rattle_A: float | list[float]


@dataclass(frozen=True)
class ScreenSettings(ConfigSchema):
    """ML/MM screening MD per ligand."""

    steps: int
    temperature_K: float
    timestep_fs: float
    report_every: int


@dataclass(frozen=True)
class MetadSettings(ConfigSchema):
    """Well-tempered metadynamics of the ``n_best`` screened ligands.

    The CV is the distance between the ligand's heavy-atom centre of mass and the pocket residue's
    side chain (nm).

    ``walkers`` independent runs per ligand (different seeds, same start), each ``steps``
    long, as ``common.sweep`` tasks; with two or more, ΔG is their mean and its error the
    standard error over walkers; with one, the error is that run's block analysis
    (``n_blocks`` blocks of its second half). ``upper_wall_nm``: the CV's upper wall (null:
    the top of the unbound basin). ``hydrogen_mass_amu``: hydrogen mass repartitioning for
    a longer time step (null: real masses); free energies do not depend on masses.
    """

    n_best: int
    steps: int
    temperature_K: float
    timestep_fs: float
    pace: int
    hill_height_kJ: float
    hill_width_nm: float
    bias_factor: float
    bound_nm: list[float]
    unbound_nm: list[float]
    n_blocks: int
    walkers: int = 1
    upper_wall_nm: float | None = None
    hydrogen_mass_amu: float | None = None
    funnel: dict[str, Any] | None = None


#: keys of :class:`FunnelSettings` (the ``metad.funnel`` entry)
@dataclass(frozen=True)
class FunnelSettings(ConfigSchema):
    """The ``metad.funnel`` entry: a funnel restraint in every walker (:mod:`drug_binding.funnel`).

    Cylinder radius ``radius_nm``, cone half-angle ``angle_deg``, cone-cylinder junction
    ``z_cc_nm`` and limits ``z_nm`` along the axis (nm), wall constant ``k_kJ_per_nm2``. The
    funnel's ligand and origin groups are the CV's (ligand heavy atoms, pocket side chains), so
    ΔG_bind uses the funnel's accessible volume of the unbound basin. The axis runs from the
    pocket's centre towards the centroid of the receptor's Cα atoms within ``rim_nm`` of it that lie
    more than ``rim_out_nm`` further out than the pocket centre along the line from the receptor's
    centre through the pocket (the pocket's outer rim) -- a simplification of choosing the axis by
    eye along the exit path, as Limongelli et al. do.
    """

    radius_nm: float
    angle_deg: float
    z_cc_nm: float
    z_nm: list[float]
    k_kJ_per_nm2: float = 5000.0
    rim_nm: float = 1.2
    rim_out_nm: float = 0.2


#: optional keys left out of the run folder's stamp while unset, so that folders made before
#: they existed still resume (as catalysis.case_study does)
_OPTIONAL_KEYS = ("solvent", "start_minimization", "active_learning")
_OPTIONAL_METAD_KEYS = ("funnel",)


@dataclass(frozen=True)
class CaseConfig(ConfigSchema):
    """The keys of ``configs/case_*.json``.

    ``receptor``: ``{"peptide": "TRP GLY TRP"}`` (built by tleap), ``{"pdb": FILE}``
    (through pdbfixer; a FILE not found as given is looked for in the benchmark set's folder when
    the ligands come from one) or ``{"host": FILE.mol2}`` (a host molecule with its partial
    charges, GAFF2, residue 1: host--guest binding); ``pocket_residue``: residue number (PDB
    numbering; 1 for a host), or a list of them, whose side chains (Cα for glycine; a host's
    heavy atoms) define the site and the CV; ``site_offset_A``: a
    SMILES ligand's centre is put this far from that side chain's centre, along its ring normal
    (away from the receptor's centre; unused for ligands with given poses).
    ``ligands``: ``{name: SMILES}``, ``{name: {"file": FILE}}`` (an SDF/MOL/MOL2 pose in the
    site, kept), or ``{"benchmark": SET, "subset": [names]}`` /
    ``{"benchmark": SET, "n": k}`` -- ligands of a JACS benchmark set
    (:func:`drug_binding.validation.benchmark_set`) with their given poses in the pocket (``n``:
    ``k`` ligands spread evenly over the set's experimental ΔG range; neither: all).
    ``experimental``: ``{"table": CSV, "source": TEXT}`` (``name`` + one of
    ``dG_exp_kcal_per_mol``/``Kd_nM``/``IC50_nM``), ``{"benchmark": SET}`` (the set's
    experimental ΔG, joined by ligand name), or null. Relative file paths not found from the
    current folder are looked for in the package's data folder (:data:`DATA`).
    ``solvent``: the complexes' implicit solvent, ``gbn2`` (default) or ``obc2``.
    ``start_minimization``: what the screening MD and the metadynamics walkers minimise their
    start on, ``mlmm`` (default: the ML/MM energy) or ``mm`` (the MM force field; for a model
    trained on little data, see :func:`drug_binding.mlmm.relax_start`).
    ``active_learning``: refine the model by a committee's active learning on each ligand's own
    MD (:mod:`drug_binding.active_learning`; null: one model trained on the sampled conformers).
    With it, the screening and metadynamics use the final committee's first member.
    """

    scale: str
    receptor: dict[str, str]
    pocket_residue: int | list[int]
    site_offset_A: float
    ligands: dict[str, Any]
    charge_method: str
    labeller: dict[str, Any]
    sampling: SamplingSettings
    ani: str
    screening: ScreenSettings
    metad: MetadSettings
    cluster: str | None
    experimental: dict[str, str] | None = None
    ani_overrides: dict[str, Any] = field(default_factory=dict)
    solvent: str | None = None
    start_minimization: str | None = None
    active_learning: ALSettings | None = None


def load_case_config(scale: str | Path) -> dict[str, Any]:
    """Load ``tiny``, ``paper``, ``jacs``, ``jacs_short`` or a JSON file as a checked dict.

    The file is checked against :class:`CaseConfig`, and the ``ligands``, ``solvent``,
    ``start_minimization`` and ``metad.funnel`` entries too (a bad one is a one-line
    ConfigError naming it).
    """
    from common.config import load_json_config
    from common.errors import ConfigError

    cfg = load_json_config(scale, CONFIGS, "case", what="case-study config", where="--scale",
                           schema=CaseConfig).to_dict()
    if cfg["metad"].get("funnel") is not None:
        cfg["metad"]["funnel"] = FunnelSettings.from_dict(
            cfg["metad"]["funnel"], where=str(scale), section="metad.funnel").to_dict()
    if cfg.get("active_learning") is not None:
        ALSettings.from_dict(cfg["active_learning"]).check()
    if cfg.get("solvent") not in (None, "gbn2", "obc2"):
        raise ConfigError(f"solvent {cfg['solvent']!r}", where="solvent",
                          fix="give gbn2 or obc2 (implicit solvents of the case study)")
    if cfg.get("start_minimization") not in (None, "mlmm", "mm"):
        raise ConfigError(f"start_minimization {cfg['start_minimization']!r}",
                          where="start_minimization", fix="give mlmm or mm")
    ligand_inputs(cfg)  # checks the ligands entry (the benchmark set is read only if named)
    return cfg


def _stamped(cfg: dict[str, Any]) -> dict[str, Any]:
    """Return the config as stamped in the run folder: unset optional keys left out."""
    out = {k: v for k, v in cfg.items() if v is not None or k not in _OPTIONAL_KEYS}
    out["metad"] = {k: v for k, v in cfg["metad"].items()
                    if v is not None or k not in _OPTIONAL_METAD_KEYS}
    return out


def ligand_inputs(cfg: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Return ``{name: {"smiles": S}}`` or ``{name: {"sdf": FILE, "record": name}}`` per ligand.

    ``cfg["ligands"]`` is ``{name: SMILES}`` or a benchmark entry (see :class:`CaseConfig`).
    With ``n``, the set's ligands are sorted by experimental ΔG and ``n`` of them taken at
    evenly spaced ranks (first and last included), so that a small subset spans the range.
    """
    from common.errors import ConfigError

    lig = cfg["ligands"]
    if "benchmark" not in lig:
        bad = [k for k, v in lig.items() if not isinstance(v, str)
               and not (isinstance(v, dict) and set(v) == {"file"} and isinstance(v["file"], str))]
        if bad or not lig:
            raise ConfigError(f"ligand {bad[0] if bad else ''!r} is not a SMILES string",
                              where="ligands", fix='give {"name": "SMILES", ...}, '
                              '{"name": {"file": "pose.sdf"}, ...} or '
                              '{"benchmark": "mcl1", "n": 3}')
        return {name: ({"smiles": v} if isinstance(v, str) else
                       {"sdf": str(data_file(v["file"], f"ligands.{name}")), "record": None})
                for name, v in lig.items()}
    unknown = sorted(set(lig) - {"benchmark", "subset", "n"})
    if unknown or ("subset" in lig and "n" in lig):
        raise ConfigError(f"ligands entry {sorted(lig)}", where="ligands",
                          fix='give {"benchmark": SET} with either "subset": [names] or "n": k')
    n = lig.get("n")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ConfigError(f"ligands.n = {n!r}", where="ligands.n", fix="give a whole number >= 1")
    subset = lig.get("subset")
    if subset is not None and (not isinstance(subset, list) or not subset
                               or not all(isinstance(x, str) for x in subset)):
        raise ConfigError(f"ligands.subset = {subset!r}", where="ligands.subset",
                          fix='give a list of ligand names, e.g. ["26", "48"]')
    return _benchmark_ligands(str(lig["benchmark"]), subset, n)


def data_file(path: str | Path, where: str) -> Path:
    """Return a config's file: as given when it exists, else in :data:`DATA` (DataError if none)."""
    from common.errors import DataError

    p = Path(path)
    if p.is_file():
        return p
    if not p.is_absolute() and (DATA / p).is_file():
        return DATA / p
    raise DataError(f"file {str(path)!r} not found", where=where,
                    fix=f"give a path from the current folder or one under {DATA}")


def _benchmark_ligands(name: str, subset: list[str] | None, n: int | None
                       ) -> dict[str, dict[str, str]]:
    from common.errors import ConfigError
    from drug_binding.validation import benchmark_files, benchmark_set

    rows = benchmark_set(name)
    sdf = str(benchmark_files(name)["ligands_sdf"])
    names = [r["name"] for r in rows]
    if subset is not None:
        missing = [x for x in subset if x not in names]
        if missing:
            raise ConfigError(f"ligand(s) {missing} not in benchmark set {name!r}",
                              where="ligands.subset", fix=f"choose from {names[:8]} ...")
        chosen = list(subset)
    elif n is not None:
        order = sorted(rows, key=lambda r: r["dG_exp_kcal_per_mol"])
        idx = np.unique(np.round(np.linspace(0, len(order) - 1, min(n, len(order)))).astype(int))
        chosen = [order[i]["name"] for i in idx]
    else:
        chosen = names
    return {x: {"sdf": sdf, "record": x} for x in chosen}


def run(scale: str = "tiny", outdir: str | Path = "runs/drug_binding", seed: int = 0,
        progress: bool = True) -> dict[str, Any]:
    """Run the case study; returns the summary (also ``outdir/summary.json``)."""
    import torch

    cfg = load_case_config(scale)
    out = Path(outdir)
    claim_outdir(out, {"config": _stamped(cfg), "seed": seed})
    # one thread for torch and OpenMM's CPU platform (see drug_binding.mlmm)
    os.environ.setdefault("OPENMM_CPU_THREADS", "1")
    torch.set_num_threads(1)
    clock = StageClock(cpu=True)
    with clock("prepare_s"):
        complexes = _prepare(cfg, out, seed)
    with clock("label_s"):
        data, label_report = _label(cfg, out, complexes, seed, progress)
    starts = data.pop("starts")
    al = None
    with clock("train_s"):
        if cfg.get("active_learning"):
            al = _active_learning(cfg, out, data, starts, seed, progress)
            model = al["members"][0]
        else:
            model = _train(cfg, out, data, seed)
    with clock("screen_s"):
        scr = _screen(cfg, out, complexes, model.path, seed, progress)
    with clock("metad_s"):
        metad = _metad(cfg, out, complexes, model.path, scr["ranking"], seed, progress)
    validation = _validate(cfg, out, metad)
    summary = {
        "scale": cfg["scale"], "seed": seed,
        "receptor": cfg["receptor"], "ligands": cfg["ligands"],
        "solvent": cfg.get("solvent") or "gbn2", "funnel": cfg["metad"].get("funnel"),
        "labels": label_report,
        "dataset": {k: len(v) for k, v in data.items()},
        "model": {"framework": "torchani (ANI-2x architecture, trained here)",
                  "config": cfg["ani"], "metrics": model.meta.get("metrics", {}),
                  "folder": str(model.path)},
        "active_learning": None if al is None else {
            k: al[k] for k in ("history", "stopped", "converged", "rounds", "n_train", "plot")},
        "screening": [{k: r[k] for k in ("rank", "name", "mean_rmsd_A", "sem_rmsd_A",
                                         "max_rmsd_A", "residence_time_ps", "escaped",
                                         "contacts", "steps_per_s")}
                      for r in scr["ranking"]],
        "screening_fell_apart": [{k: r.get(k) for k in ("name", "step", "max_bond_A",
                                                         "bond_atoms", "message")}
                                 for r in scr["fell_apart"]],
        "screening_failures": scr["failures"],
        "metad": metad,
        "validation": validation,
        "seed_results": SEED_RESULTS,
        "timings_s": clock.t,
    }
    atomic_write_json(out / "summary.json", summary, default=json_plain)
    atomic_write_text(out / "report.md", report_markdown(summary))
    return summary


# -- stages -------------------------------------------------------------------------------------


def _receptor(cfg: dict, out: Path):
    """Return the receptor: a prepared PDB path, or a host's LigandParams (``{"host": MOL2}``)."""
    from common.errors import ConfigError
    from drug_binding import prepare as P

    rec = cfg["receptor"]
    if "host" in rec:
        mol = P.host_from_file(data_file(rec["host"], "receptor.host"))
        return P.parametrize_ligand(mol, out / "host", charge_method="given",
                                    resname=P.HOST_RESNAME)
    path = out / "receptor.pdb"
    if path.is_file():
        return path
    if "peptide" in rec:
        return P.build_peptide(rec["peptide"], path)
    if "pdb" in rec:
        return P.fix_receptor(_receptor_file(cfg), path, ph=float(rec.get("ph", 7.0)))
    raise ConfigError(f"receptor {rec} names neither a peptide, a pdb nor a host",
                      where="receptor", fix='give {"peptide": "TRP GLY TRP"}, {"pdb": '
                      '"protein.pdb"} or {"host": "host.mol2"}')


def _receptor_file(cfg: dict) -> Path:
    """Return the receptor PDB of the config: as given, else in the ligands' benchmark folder."""
    path = Path(cfg["receptor"]["pdb"])
    bench = cfg["ligands"].get("benchmark")
    if not path.is_file() and bench and not path.is_absolute():
        from drug_binding.validation import benchmark_files

        there = benchmark_files(str(bench))["folder"] / path
        if there.is_file():
            return there
    return path  # fix_receptor names it when it is missing


def _pocket(topology, resnum: int | list[int]) -> list[int]:
    """Side-chain heavy atoms of residue ``resnum`` (or of each of a list; Cα for glycine)."""
    from common.errors import ConfigError

    if isinstance(resnum, list | tuple):
        return [i for r in resnum for i in _pocket(topology, r)]
    backbone = {"N", "CA", "C", "O"}
    for res in topology.residues():
        if int(res.id) == int(resnum):
            idx = [a.index for a in res.atoms()
                   if a.element.symbol != "H" and (a.name not in backbone
                                                   or (res.name == "GLY" and a.name == "CA"))]
            if idx:
                return idx
    raise ConfigError(f"no residue {resnum} with a side chain in the receptor",
                      where="pocket_residue", fix="give the number of a residue of the receptor")


def _site(receptor_pdb: Path, resnum: int, offset_A: float) -> np.ndarray:
    """Return the pocket point near a residue's side chain.

    It lies ``offset_A`` from the side chain's centre along the normal of its best-fit plane, on the
    side away from the receptor's centre.
    """
    from openmm import app, unit

    pdb = app.PDBFile(str(receptor_pdb))
    xyz = np.asarray(pdb.getPositions(asNumpy=True).value_in_unit(unit.angstrom))
    sc = xyz[_pocket(pdb.topology, resnum)]
    c = sc.mean(0)
    normal = np.linalg.svd(sc - c)[2][-1]
    if np.dot(normal, c - xyz.mean(0)) < 0:
        normal = -normal
    return c + offset_A * normal


def _prepare(cfg: dict, out: Path, seed: int) -> dict[str, Any]:
    """Receptor, ligands (SMILES placed at the site, or given poses), GAFF2/AM1-BCC, complexes.

    The complexes are in the config's implicit solvent (GBn2 unless ``solvent`` says OBC2).
    """
    from common.errors import ConfigError
    from drug_binding import prepare as P

    rec = _receptor(cfg, out)
    host = rec if isinstance(rec, P.LigandParams) else None
    solvent = cfg.get("solvent") or "gbn2"
    inputs = ligand_inputs(cfg)
    if any("smiles" in v for v in inputs.values()):
        if host is not None:
            raise ConfigError("a SMILES guest with a host receptor: its pose in the cavity is "
                              "not built here", where="ligands",
                              fix='give each guest as {"file": "guest.mol2"} with its pose')
        site = _site(rec, cfg["pocket_residue"], cfg["site_offset_A"])
        xyz = P._pdb_xyz_A(rec)
    complexes = {}
    for k, (name, spec) in enumerate(inputs.items()):
        folder = out / "complexes" / name
        if (folder / "prepare.json").is_file():
            complexes[name] = P.Complex.load(folder)
            continue
        if "smiles" in spec:
            mol = P.place_ligand(P.ligand_from_smiles(spec["smiles"], seed=seed + k, name=name),
                                 site, xyz, seed=seed + k)
        else:  # a given pose in the pocket, kept
            mol = P.ligand_from_file(spec["sdf"], record=spec["record"])
        params = P.parametrize_ligand(mol, folder / "ligand", charge_method=cfg["charge_method"])
        P.assemble_complex(None, params, folder / "vacuum", solvent="vacuum")
        complexes[name] = P.assemble_complex(None if host else rec, params, folder,
                                             solvent=solvent, host=host)
    return complexes


def _sample_ligand(cx, n: int, temperature_K: float, every: int, seed: int):
    """Conformers of the ligand alone (GAFF2, vacuum, Langevin at ``temperature_K``)."""
    import openmm as mm
    from ase import Atoms
    from openmm import unit

    from drug_binding import prepare as P

    vac = P.Complex.load(Path(cx.folder) / "vacuum")
    system, top, pos = P.create_system(vac, constraints=None)
    integ = mm.LangevinMiddleIntegrator(temperature_K, 5.0, 0.001)
    integ.setRandomNumberSeed(seed + 1)
    ctx = mm.Context(system, integ, mm.Platform.getPlatformByName("Reference"))
    ctx.setPositions(pos * unit.nanometer)
    mm.LocalEnergyMinimizer.minimize(ctx, 1.0, 500)
    ctx.setVelocitiesToTemperature(temperature_K, seed + 1)
    numbers = [a.element.atomic_number for a in top.atoms()]
    frames = []
    for _ in range(n):
        integ.step(every)
        x = ctx.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(
            unit.angstrom)
        a = Atoms(numbers=numbers, positions=np.asarray(x))
        a.info["charge"] = int(cx.ligand["charge"])
        frames.append(a)
    return frames


def _rattled(frames, sigma_A: float, seed: int):
    rng = np.random.default_rng(seed)
    out = []
    for a in frames:
        b = a.copy()
        b.positions = b.positions + rng.normal(0.0, sigma_A, b.positions.shape)
        out.append(b)
    return out


def _label(cfg: dict, out: Path, complexes: dict, seed: int, progress: bool):
    from common.data import Dataset
    from common.labels import LabellerSpec, label_structures, labelled_frames

    s = cfg["sampling"]
    frames = []
    starts = []
    for k, cx in enumerate(complexes.values()):
        frames += _sample_ligand(cx, s["frames_per_ligand"], s["temperature_K"],
                                 s["every_steps"], seed + 17 * k)
        # the ligand's first GAFF2 frame starts its active-learning exploration, if any
        starts.append(frames[-s["frames_per_ligand"]].copy())
    levels = s["rattle_A"] if isinstance(s["rattle_A"], list) else [s["rattle_A"]]
    md_frames = list(frames)
    for k, sigma in enumerate(levels):  # level k: its own stream (level 0 as before)
        if sigma > 0:
            frames += _rattled(md_frames, sigma, seed + 7919 * k)
    atomic_write_atoms(out / "sampled_conformers.extxyz", frames)
    lab = dict(cfg["labeller"])
    spec = LabellerSpec(lab.pop("name"), lab)
    db = out / "labels.db"
    report = label_structures(frames, spec, db, progress=progress, source="ligand conformers",
                              cluster="serial")
    done = [a for a in labelled_frames(frames, spec, db) if a is not None]
    # a rattled copy can put two atoms too close: such frames teach nothing about MD
    kept = [a for a in done
            if np.linalg.norm(a.get_forces(), axis=1).max() <= MAX_FORCE_EV_A]
    report = report.to_dict()
    report["n_dropped_large_force"] = len(done) - len(kept)
    data = Dataset.from_frames(kept).validate(max_force_eV_A=MAX_FORCE_EV_A)
    train, valid, test = data.split((0.8, 0.1, 0.1), seed=seed)
    return {"train": train, "valid": valid, "test": test, "starts": starts}, report


def _train(cfg: dict, out: Path, data: dict, seed: int):
    from common.potential.model_folder import META
    from drug_binding.model import ANIAdapter, load_config

    folder = out / "model"
    if (folder / META).is_file():
        return ANIAdapter.load(folder)
    ani_cfg = load_config(cfg["ani"], **cfg["ani_overrides"])
    tmp = out / "model.partial"
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    ANIAdapter.train(data["train"], data["valid"], tmp, config=ani_cfg, seed=seed,
                     test=data["test"])
    os.replace(tmp, folder)  # the finished model appears whole
    return ANIAdapter.load(folder)


def _active_learning(cfg: dict, out: Path, data: dict, starts: list, seed: int,
                     progress: bool) -> dict:
    """Refine the ANI model by a committee's active learning on the ligands' own MD."""
    from common.labels import LabellerSpec
    from drug_binding.active_learning import run_active_learning
    from drug_binding.model import load_config

    lab = dict(cfg["labeller"])
    spec = LabellerSpec(lab.pop("name"), lab)
    return run_active_learning(
        starts, data["train"], data["valid"], data["test"], out / "active_learning",
        settings=cfg["active_learning"], ani_config=load_config(cfg["ani"], **cfg["ani_overrides"]),
        labeller=spec, db=out / "labels.db", max_force_eV_A=MAX_FORCE_EV_A, seed=seed,
        progress=progress)


def _screen(cfg: dict, out: Path, complexes: dict, model_dir: Path, seed: int,
            progress: bool) -> dict:
    from drug_binding.screening import plot_screening, screen

    s = cfg["screening"]
    res = screen({n: cx.folder for n, cx in complexes.items()}, model_dir, out / "screening",
                 steps=s["steps"], temperature_K=s["temperature_K"],
                 timestep_fs=s["timestep_fs"], report_every=s["report_every"], seed=seed,
                 cluster=cfg["cluster"] or None, progress=progress,
                 minimize_on=cfg.get("start_minimization") or "mlmm")
    if not res["ranking"]:
        from common.errors import SimulationError

        raise SimulationError("every ligand's screening MD failed: "
                              + "; ".join([*res["failures"].values(),
                                           *(f"{r['name']}: {r['message']}"
                                             for r in res["fell_apart"])])[:300],
                              where=str(out / "screening"), fix="see the failures; rerun")
    try:
        plot_screening(res, out / "screening.png")
    except Exception as exc:  # a figure must never cost the numbers
        print(f"warning: no screening figure ({exc})")
    return res


def metad_walker(name: str, complex_dir: str, model_dir: str, out: str,
                 pocket_residue: int | list[int], settings: dict[str, Any], seed: int,
                 minimize_on: str = "mlmm") -> dict[str, Any]:
    """Run one metadynamics walker of a prepared complex (a ``common.sweep`` task).

    The ML/MM System (hydrogen masses repartitioned when ``settings`` say so) is minimised from the
    prepared pose (on the ML/MM energy, or with ``minimize_on="mm"`` on the MM force field:
    :func:`drug_binding.mlmm.relax_start`), then :func:`drug_binding.metad.run_metad` runs into
    ``out``. Returns the walker's ΔG's, basin crossings and profile (kcal/mol); a walker whose
    ligand falls apart under the ML potential is stopped by a guard and returns ``{"status":
    "fell_apart", "step", "message"}`` (kept by the sweep, so a rerun does not repeat it).
    """
    from openmm import unit

    from drug_binding import mlmm
    from drug_binding import prepare as P
    from drug_binding.metad import run_metad
    from drug_binding.screening import LigandBroken, ligand_bond_guard

    m = settings
    cx = P.Complex.load(complex_dir)
    system, top, pos = P.create_system(cx, hydrogen_mass_amu=m.get("hydrogen_mass_amu"))
    mixed = mlmm.mlmm_system(system, top, cx.ligand_atoms, model_dir)
    sim = mlmm.simulation(mixed, top, pos, m["temperature_K"], m["timestep_fs"])
    mlmm.relax_start(sim, system, 200, on=minimize_on)
    pos = sim.context.getState(getPositions=True).getPositions(asNumpy=True)
    pos = np.asarray(pos.value_in_unit(unit.nanometer))
    atoms = list(top.atoms())
    lig_h = [i for i in cx.ligand_atoms if atoms[i].element.symbol != "H"]
    pocket = _pocket(top, pocket_residue)
    cv = f"distance:{','.join(map(str, lig_h))}:{','.join(map(str, pocket))}"
    funnel = (None if not m.get("funnel") else
              walker_funnel(m["funnel"], top, pos, lig_h, pocket, cx.receptor_atoms))
    try:
        res = run_metad(mixed, pos, cv, m["bound_nm"],
                        m["unbound_nm"], m["temperature_K"], m["steps"], out,
                        bias_factor=m["bias_factor"], hill_height_kJ=m["hill_height_kJ"],
                        hill_width_nm=m["hill_width_nm"], pace=m["pace"],
                        timestep_fs=m["timestep_fs"], seed=seed, n_blocks=m["n_blocks"],
                        upper_wall_nm=m.get("upper_wall_nm"), funnel=funnel,
                        guard=ligand_bond_guard(top, cx.ligand_atoms, where=f"{name} walker"))
    except LigandBroken as exc:
        return {"name": name, "seed": seed, "folder": str(out), "status": "fell_apart",
                "step": exc.step, "message": exc.what}
    keys = ("delta_G_kcal_per_mol", "delta_G_err_kcal_per_mol", "delta_G_bind_kcal_per_mol",
            "standard_state_correction_kcal_per_mol", "delta_G_reweighted_kcal_per_mol",
            "n_hills", "n_basin_transitions", "wall_time_s", "cv_spec", "bound_nm",
            "unbound_nm", "temperature_K", "profile", "convergence")
    extra = {k: res[k] for k in ("funnel", "unbound_volume_nm3", "unbound_volume_method")
             if k in res}
    return {"name": name, "seed": seed, "folder": str(out), "status": "ok",
            "simulated_ps": res["settings"]["steps"] * res["settings"]["timestep_fs"] / 1000.0,
            **{k: res.get(k) for k in keys}, **extra}


def walker_funnel(settings: dict[str, Any], topology, positions_nm: np.ndarray,
                  ligand: list[int], pocket: list[int], receptor: tuple[int, ...] | list[int]):
    """Build the :class:`~drug_binding.funnel.Funnel` of a walker from ``metad.funnel``.

    The ligand and origin groups are the CV's (``ligand`` heavy atoms, ``pocket`` atoms); the
    toward group is the pocket's outer rim, chosen at the walker's (minimised) start
    ``positions_nm``: the receptor's Cα atoms within ``rim_nm`` of the pocket centre ``A`` whose
    position along ``u`` (from the receptor's heavy-atom centroid through ``A``) exceeds ``A``'s by
    more than ``rim_out_nm``. The numbers are checked by :func:`drug_binding.funnel.parse_funnel`
    (one-line ConfigError naming the setting).
    """
    from common.errors import ConfigError
    from drug_binding.funnel import parse_funnel

    f = FunnelSettings.from_dict(settings, where="metad.funnel").to_dict()
    x = np.asarray(positions_nm, float)
    atoms = list(topology.atoms())
    heavy = [i for i in receptor if atoms[i].element.symbol != "H"]
    a = x[pocket].mean(0)
    u = a - x[heavy].mean(0)
    u /= np.linalg.norm(u)
    ca = np.array([i for i in receptor if atoms[i].name == "CA"], int)
    d = x[ca] - a if len(ca) else np.zeros((0, 3))
    rim = ca[(np.linalg.norm(d, axis=1) < f["rim_nm"]) & (d @ u > f["rim_out_nm"])]
    if not len(rim):
        raise ConfigError(f"no receptor Cα within {f['rim_nm']:g} nm of the pocket lies "
                          f"{f['rim_out_nm']:g} nm further out than its centre",
                          where="metad.funnel",
                          fix="raise rim_nm or lower rim_out_nm")
    groups = ":".join(",".join(map(str, g)) for g in (ligand, pocket, rim.tolist()))
    return parse_funnel(groups, len(x), f["radius_nm"], f["angle_deg"], f["z_cc_nm"],
                        f["z_nm"], f["k_kJ_per_nm2"])


def _metad(cfg: dict, out: Path, complexes: dict, model_dir: Path, ranking: list,
           seed: int, progress: bool = False) -> list[dict]:
    """Run the metadynamics walkers of the ``n_best`` ligands through ``common.sweep``.

    Each walker's result is saved as it finishes (a rerun runs only the missing ones); the walkers
    are combined per ligand into ``metad/<ligand>/metad.json``. Walkers whose ligand fell apart, or
    that failed, are left out and named in ``walker_failures``; a ligand with no walker left gets ΔG
    None.
    """
    from common.sweep import JsonDirStore, Task, run_tasks

    m = cfg["metad"]
    n_walk = int(m.get("walkers") or 1)
    names = [row["name"] for row in ranking[: m["n_best"]]]
    store = JsonDirStore(out / "metad" / "walkers")
    tasks = [Task(f"{name}-w{k}", metad_walker,
                  {"name": name, "complex_dir": str(complexes[name].folder),
                   "model_dir": str(model_dir), "out": str(out / "metad" / name / f"walker_{k}"),
                   "pocket_residue": cfg["pocket_residue"], "settings": dict(m),
                   "seed": seed + 1000 * k,
                   "minimize_on": cfg.get("start_minimization") or "mlmm"})
             for name in names for k in range(n_walk)]
    report = run_tasks(tasks, store, cluster=cfg["cluster"] or None, progress=progress,
                       description="metadynamics walkers")
    done = store.results()
    results = []
    for row in ranking[: m["n_best"]]:
        name = row["name"]
        keys = [f"{name}-w{k}" for k in range(n_walk)]
        walkers = [done[k] for k in keys if k in done and done[k].get("status", "ok") == "ok"]
        failures = {k: f"fell apart at step {done[k]['step']}: {done[k]['message']}"
                    for k in keys if k in done and done[k].get("status") == "fell_apart"}
        failures.update({k: v for k, v in report.failures.items() if k in keys})
        base = {"name": name, "screen_rank": row["rank"]}
        tail = {"n_walkers_failed": n_walk - len(walkers), "walker_failures": failures,
                "folder": str(out / "metad" / name)}
        if not walkers:
            results.append({**base, "delta_G_kcal_per_mol": None,
                            "delta_G_err_kcal_per_mol": None, "delta_G_bind_kcal_per_mol": None,
                            "n_walkers": 0, "walker_delta_G_kcal_per_mol": [],
                            "walker_basin_transitions": [], **tail})
            atomic_write_json(out / "metad" / name / "metad.json", results[-1],
                              default=json_plain)
            continue
        combined = {**base, **combine_walkers(walkers), **tail,
                    **{k: walkers[0][k] for k in ("unbound_volume_nm3", "unbound_volume_method")
                       if k in walkers[0]}}
        atomic_write_json(out / "metad" / name / "metad.json",
                          {**combined, "walkers": [{k: v for k, v in w.items()
                                                    if k not in ("profile", "convergence")}
                                                   for w in walkers]}, default=json_plain)
        try:
            plot_walkers(walkers, combined, out / "metad" / name / "walkers.png")
        except Exception as exc:  # a figure must never cost the numbers
            print(f"warning: no walker figure ({exc})")
        results.append(combined)
    return results


def _validate(cfg: dict, out: Path, metad: list[dict]) -> dict:
    """Predicted ΔG_bind against experiment when the config names a table; else says so."""
    exp = cfg.get("experimental")
    if not exp:
        return {"experimental_data": None,
                "note": "no experimental comparison: no measured affinities exist for these "
                        "toy peptide-ligand complexes, so R², RMSE and τ are not computed"}
    import csv

    from drug_binding.validation import benchmark_set, plot_validation, validate_table

    if "benchmark" in exp:
        rows = {r["name"]: r for r in benchmark_set(exp["benchmark"])}
        exp = {"source": f"the JACS 2015 benchmark set {exp['benchmark']!r} (Wang et al., J. Am. "
                         "Chem. Soc. 137, 2695 (2015); experimental ΔG as shipped with "
                         "openmmforcefields)", **exp}
    else:
        with open(data_file(exp["table"], "experimental.table")) as fh:
            rows = {r["name"]: r for r in csv.DictReader(fh)}
    table = []
    for m in metad:
        if m["name"] in rows and m["delta_G_bind_kcal_per_mol"] is not None:
            r = dict(rows[m["name"]])
            r["dG_pred_kcal_per_mol"] = m["delta_G_bind_kcal_per_mol"]
            table.append(r)
    if len(table) < 3:
        return {"experimental_data": exp, "note": f"only {len(table)} ligand(s) with both a "
                "prediction and a measurement: too few for R²/RMSE"}
    res = validate_table(table, 298.15)
    plot_validation(res, out / "validation.png", title="ΔG_bind")
    return {"experimental_data": exp, **res}


# -- report -------------------------------------------------------------------------------------


def _metad_meaning(s: dict) -> list[str]:
    """Say what the metadynamics number is at this run's scale (walkers, crossings, basins)."""
    done = [m for m in s["metad"] if m.get("n_walkers")]
    lines = [f"**No ΔG for {m['name']}: every walker stopped** "
             f"({'; '.join(m['walker_failures'].values())[:300]})."
             for m in s["metad"] if not m.get("n_walkers")]
    if not done:
        return lines
    m = done[0]
    cross = m["walker_basin_transitions"]
    lines += [
        f"What the number is: ΔG = G(bound) − G(unbound) from each walker's final "
        f"well-tempered profile (bound: CV {m['bound_nm'][0]:g}–{m['bound_nm'][1]:g} nm, "
        f"unbound: {m['unbound_nm'][0]:g}–{m['unbound_nm'][1]:g} nm, the CV being the distance "
        f"between the ligand's heavy-atom centre of mass and "
        f"{'the host’s heavy-atom centre of mass' if _host(s) else 'the pocket’s side chains'}), "
        f"{m['error_method']}. Basin crossings per walker: {', '.join(map(str, cross))}."]
    if _host(s):
        lines += ["", _host_guest_metad_note(s)]
    elif s["scale"] in ("tiny", "toy") and "peptide" in (s.get("receptor") or {}):
        lines.append(
            "At this scale the error bar measures how much independent "
            f"{fmt(m['simulated_ps_per_walker'], '.0f')}-ps walkers disagree, not the "
            "distance to the converged answer: each walker crosses between the basins only a "
            "few times, so the profiles are still being filled and a systematic bias common "
            "to all walkers (e.g. an unfilled basin) is not in the error. The 'unbound' basin "
            "is only 0.8–1.0 nm from the indole (so short walkers can reach it and come back): "
            "the ligand there can still touch the peptide's edge or its other residues, so "
            "F(s) + 2kT ln s is not flat in that shell and ΔG_bind's standard-state "
            "correction (which assumes it is) is formal. The paper config runs one walker of "
            "1 µs per compound with the unbound shell at 2.0–2.5 nm, real masses and 1 fs, "
            "its error from blocks of the second half — what the seed's 1 µs per compound "
            "affords. Would a longer tiny run converge? Measured once (seed 0, toluene, 3 of "
            "the walkers continued to 18 ps): ΔG(t) = −1.37 ± 0.59 kcal/mol at 6 ps, "
            "−1.01 ± 0.82 at 12 ps, +0.75 ± 0.50 at 18 ps — still drifting, and 18 ps already "
            "costs three times this run's metadynamics, past the tiny budget.")
    elif _benchmark(s):
        lines += ["", _benchmark_metad_note(s)]
    return lines


def _host_guest_metad_note(s: dict) -> str:
    """Say what short metadynamics of a host--guest pair gives (and does not)."""
    done = [m for m in s["metad"] if m.get("n_walkers")]
    cross = [x for m in done for x in m["walker_basin_transitions"]]
    stuck = [m["name"] for m in done if max(m["walker_basin_transitions"]) == 0]
    ps = done[0].get("simulated_ps_per_walker") if done else None
    m = done[0] if done else {"unbound_nm": ["?", "?"]}
    text = (f"Each walker ran {fmt(ps, '.0f')} ps (the seed: 1 µs per compound); basin "
            f"crossings per walker: {', '.join(map(str, cross)) or '—'}. A guest leaves the "
            "cavity through either rim along the host's axis; the unbound shell "
            f"({m['unbound_nm'][0]:g}–{m['unbound_nm'][1]:g} nm from the host's centre) lies "
            "clear of alpha-cyclodextrin's torus (0.79 nm high, 1.46 nm across), so "
            "ΔG_bind's standard-state term, which takes the free energy as flat over that "
            "shell, is meaningful here, unlike in the toy's 0.8–1.0 nm shell. The error bar "
            "is the spread of independent walkers, not the distance to the converged answer: "
            "a walker that crosses once has filled its profile once.")
    if stuck:
        text += (f" No walker of {', '.join(stuck)} left the cavity: its ΔG is minus the bias "
                 "piled into the bound basin so far (times γ/(γ−1)), a loose bound that grows "
                 "with the run's length, not a measurement.")
    n_zero = sum(x == 0 for x in cross)
    if n_zero and len(stuck) < len(done):
        text += (f" {n_zero} of the {len(cross)} walkers never left the cavity; the ΔG of such "
                 "a walker is minus the bias piled into the bound basin so far, so it pulls its "
                 "guest's mean down (the stronger the binder, the likelier), and the spread it "
                 "adds is in the error bar.")
    return text


def _funnel_lines(s: dict) -> list[str]:
    f = s.get("funnel")
    if not f:
        return []
    v = next((m.get("unbound_volume_nm3") for m in s["metad"] if m.get("unbound_volume_nm3")),
             None)
    return [f"Funnel restraint in every walker (cylinder radius {f['radius_nm']:g} nm, cone "
            f"half-angle {f['angle_deg']:g}°, cone–cylinder junction {f['z_cc_nm']:g} nm, axis "
            f"limits {f['z_nm'][0]:g}–{f['z_nm'][1]:g} nm; axis from the pocket centre to its "
            "outer rim): ΔG_bind's standard-state term uses the funnel's accessible volume of the "
            f"unbound basin, V_u = {fmt(v, '.3f')} nm³, instead of the spherical shell.", ""]


def _host(s: dict) -> str | None:
    """Return the host MOL2 of a host--guest run (None for a protein or peptide receptor)."""
    rec = s.get("receptor") or {}
    return str(rec["host"]) if "host" in rec else None


def _receptor_text(s: dict) -> str:
    rec = s.get("receptor") or {}
    if "host" in rec:
        return f"host `{Path(rec['host']).name}` (GAFF2 atom types, its file's partial charges)"
    if "peptide" in rec:
        return f"peptide {rec['peptide']} (tleap, ff14SB)"
    return f"`{Path(rec.get('pdb', '?')).name}` (pdbfixer, ff14SB)"


def _benchmark(s: dict) -> str | None:
    """Return the benchmark set the run's ligands come from (None for SMILES ligands)."""
    lig = s.get("ligands") or {}
    return str(lig["benchmark"]) if "benchmark" in lig else None


def _benchmark_metad_note(s: dict) -> str:
    """Say plainly what short metadynamics on a real pocket gives (and does not)."""
    done = [m for m in s["metad"] if m.get("n_walkers")]
    cross = [x for m in done for x in m["walker_basin_transitions"]]
    ps = done[0].get("simulated_ps_per_walker") if done else None
    head = (f"**Short metadynamics on a real pocket does not converge.** Each walker ran "
            f"{fmt(ps, '.1f')} ps; a ligand leaves a real pocket on the ns–µs scale (the seed "
            "ran 1 µs per compound). ")
    if cross and max(cross) == 0:
        head += ("No walker left the pocket (0 basin crossings), so the unbound basin was never "
                 "visited: its free energy is the bias-free top of the profile, and ΔG = "
                 "G(bound) − G(unbound) is minus the bias piled into the bound basin so far "
                 "(times γ/(γ−1)). It grows in size with the run's length, not with the "
                 "ligand's affinity; at most it is a loose bound (the true well is deeper "
                 "than what has been filled).")
    else:
        head += (f"Basin crossings per walker: {', '.join(map(str, cross)) or '—'}; a few "
                 "crossings do not make a converged profile.")
    if "r2" not in s.get("validation", {}):
        return head + (" No validation table: fewer than 3 ligands kept a ΔG (the others fell "
                       "apart under the ML potential, above).")
    return head + (" The validation table below therefore tests the pipeline (poses from the "
                   "benchmark, joining by ligand name, the metrics and their bootstrap), not "
                   "the accuracy of ANI + metadynamics.")


def _failed_walkers(m: dict) -> str:
    n = m.get("n_walkers_failed") or 0
    why = "; ".join(m.get("walker_failures", {}).values())[:200]
    return f" ({n} more stopped and left out: {why})" if n else ""


def report_markdown(s: dict) -> str:
    seed = s["seed_results"]
    test = s["model"]["metrics"].get("test", {})
    scr_rows = [f"| {r['rank']} | {r['name']} | {fmt(r['mean_rmsd_A'])} ± "
                f"{fmt(r['sem_rmsd_A'])} | {fmt(r['residence_time_ps'], '.1f')}"
                f"{'' if r['escaped'] else '+'} | "
                f"{', '.join(f'{k} {v:.0%}' for k, v in list(r['contacts'].items())[:4]) or '—'}"
                f" |" for r in s["screening"]]
    scr_rows += [f"| — | {r['name']} | **fell apart** under the tiny ANI at step {r['step']}"
                 f" ({r['message']}): not ranked | — | — |"
                 for r in s.get("screening_fell_apart", [])]
    scr_rows += [f"| — | {k} | **failed**: {msg[:160]} | — | — |"
                 for k, msg in s.get("screening_failures", {}).items()]
    met_rows = [f"| {m['name']} | {fmt(m['delta_G_kcal_per_mol'])} ± "
                f"{fmt(m['delta_G_err_kcal_per_mol'])} | {fmt(m['delta_G_bind_kcal_per_mol'])}"
                f" | {m['n_walkers']} × {fmt(m.get('simulated_ps_per_walker'), '.0f')} ps"
                f"{_failed_walkers(m)} | "
                f"{', '.join(fmt(x) for x in m['walker_delta_G_kcal_per_mol'])} | "
                f"{', '.join(str(x) for x in m['walker_basin_transitions'])} |"
                for m in s["metad"]]
    best = next((m for m in s["metad"] if m.get("n_walkers")),
                s["metad"][0] if s["metad"] else {})
    v = s["validation"]
    bench = _benchmark(s)
    lines = [
        f"# Drug-binding case study ({s['scale']})",
        "",
        f"Receptor: {_receptor_text(s)}. Ligands: {_ligand_text(s)}.",
        f"Reference labels: GFN2-xTB ({s['labels'].get('n_labelled', '?')} new, "
        f"{s['labels'].get('n_cached', '?')} cached); model: ANI-2x architecture trained here "
        f"on {_n_train(s)} frames (test: energy MAE "
        f"{fmt(test.get('energy_mae_eV_per_atom'), '.4f')} eV/atom, force MAE "
        f"{fmt(test.get('force_mae_eV_A'), '.3f')} eV/Å). ML/MM: ligand on ANI, receptor "
        f"{'GAFF2' if _host(s) else 'ff14SB'}, ligand–receptor GAFF2/AM1-BCC nonbonded, implicit "
        f"{ {'gbn2': 'GBn2', 'obc2': 'OBC2'}.get(s.get('solvent') or 'gbn2')} solvent.",
        *_active_learning_lines(s.get("active_learning")),
        "",
        "## Screening (ML/MM MD per ligand, ranked by ligand RMSD in the pocket)",
        "",
        "| rank | ligand | mean RMSD, 2nd half (Å) | residence (ps; + = never left) | contacts |",
        "|---:|---|---|---|---|",
        *scr_rows,
        "",
        "## Metadynamics (well-tempered, ligand–pocket centre-of-mass distance)",
        "",
        "| ligand | ΔG bound−unbound (kcal/mol) | ΔG_bind, 1 M (kcal/mol) | walkers × length "
        "| ΔG per walker | basin crossings per walker |",
        "|---|---|---|---|---|---|",
        *met_rows,
        "",
        *_metad_meaning(s),
        "",
        *_funnel_lines(s),
        "Walkers' profiles and running ΔG: `metad/<ligand>/walkers.png`; each walker's HILLS, "
        "COLVAR, fes.dat and figures: `metad/<ligand>/walker_<k>/`.",
        "",
        "## Beside the seed",
        "",
        "| quantity | this run | seed (published) |",
        "|---|---|---|",
        f"| target | {_target_text(s)} | {seed['target']} |",
        f"| compounds screened by ML/MM MD | {len(s['screening'])} | {seed['n_screened_mlmm']} "
        f"(of {seed['n_docked']:,} docked) |",
        f"| metadynamics per compound | {fmt(best.get('simulated_ps'), '.0f')} ps "
        f"({best.get('n_walkers', 1)} walkers) | "
        f"{seed['metad_per_compound_ns']:.0f} ns |",
        f"| best ΔG_bind (kcal/mol) | {fmt(best.get('delta_G_bind_kcal_per_mol'))} "
        f"({best.get('name', '—')}) | {seed['best_dG_kcal_per_mol']} ({seed['best_compound']}, "
        f"IC50 {seed['best_IC50_nM']:g} nM) |",
        f"| R² vs experiment (ANI + metad) | {fmt(v.get('r2'))} (n = {v.get('n', 0)}) "
        f"| {seed['r2_ani_metad']} (n = {seed['n_validated']}) |",
        f"| RMSE vs experiment (kcal/mol) | {fmt(v.get('rmse_kcal_per_mol'))} "
        f"| {seed['rmse_ani_metad_kcal_per_mol']} |",
        f"| MM/GBSA R² / RMSE | — | {seed['r2_mmgbsa']} / {seed['rmse_mmgbsa_kcal_per_mol']} |",
        "",
        *_validation_lines(v),
        "",
        *(_benchmark_caveats(s) if bench else _host_guest_caveats(s) if _host(s)
          else _toy_caveats()),
        "",
        f"Timings (s): {json.dumps(s['timings_s'])}",
        "",
    ]
    return "\n".join(lines)


def _n_train(s: dict) -> str:
    """Return the final model's training-set size as the report says it."""
    al = s.get("active_learning")
    if al:
        return f"{al['n_train']} ({s['dataset']['train']} sampled + active learning's)"
    return str(s["dataset"]["train"])


def _active_learning_lines(al: dict | None) -> list[str]:
    """Say what the active learning did, round by round (nothing when it did not run)."""
    if not al:
        return []
    rounds = "; ".join(
        f"round {h['round']}: {h['n_train']} training frames, "
        f"{fmt(h['accurate_fraction'], '.0%')} of the explored frames accurate, "
        f"{h['n_failed']} beyond the trust window, {h['n_labelled']} labelled"
        for h in al["history"])
    verdict = ("it converged" if al["converged"] else
               "it did **not** converge, so the model still meets frames it has not learnt")
    return ["", f"Active learning (committee MD of each ligand alone, the DP-GEN loop): "
            f"{rounds or 'no exploration'}. Final model: round {al['rounds']}, "
            f"{al['n_train']} training frames; stopped because {al['stopped']}: {verdict}."]


def _target_text(s: dict) -> str:
    bench = _benchmark(s)
    if bench:
        return f"{_receptor_text(s)} (JACS set {bench})"
    if _host(s):
        return f"host `{Path(_host(s)).name}` (host–guest, measured ΔG)"
    return f"{_receptor_text(s)} (toy)"


def _ligand_text(s: dict) -> str:
    bench = _benchmark(s)
    if not bench:
        return ", ".join(f"{k} (`{v if isinstance(v, str) else Path(v['file']).name}`)"
                         for k, v in s["ligands"].items())
    names = [r["name"] for r in s["screening"]] + [r["name"] for r in
                                                    s.get("screening_fell_apart", [])]
    names += list(s.get("screening_failures", {}))
    return (f"{len(names)} of the JACS benchmark set {bench!r}, with their given poses in the "
            f"pocket ({', '.join(names)})")


def _validation_lines(v: dict) -> list[str]:
    if v.get("experimental_data") is None:
        return [f"**Validation: {v['note']}.** The seed's R²/RMSE are listed for reference "
                "only."]
    if "r2" not in v:
        return [f"Validation against {v['experimental_data'].get('source', '?')}: "
                f"{v.get('note', '')}."]
    ci = v.get("ci95", {})

    def cell(key: str) -> str:
        lo, hi = (ci.get(key) or [None, None])[:2]
        return f"{fmt(v.get(key))} [{fmt(lo)}, {fmt(hi)}]"

    rows = [f"| {r['name']} | {fmt(r['dG_exp_kcal_per_mol'])} | "
            f"{fmt(r['dG_pred_kcal_per_mol'])} |" for r in v.get("rows", [])]
    return [f"Validation against {v['experimental_data'].get('source', '?')} (n = {v['n']}; "
            "95 % bootstrap intervals over compounds in brackets): R² "
            f"{cell('r2')} (Pearson r {cell('pearson_r')}: R² alone hides the sign), RMSE "
            f"{cell('rmse_kcal_per_mol')} kcal/mol, Kendall τ "
            f"{cell('kendall_tau')}, MAE {cell('mae_kcal_per_mol')} kcal/mol. Parity plot: "
            "`validation.png`.", "",
            "| ligand | ΔG exp (kcal/mol) | ΔG_bind predicted (kcal/mol) |", "|---|---|---|",
            *rows]


def _benchmark_caveats(s: dict) -> list[str]:
    al = s.get("active_learning")
    return [
        "What this run can and cannot show: every stage of the seed's pipeline runs on a real "
        "protein–ligand set (the benchmark's crystal-derived receptor and ligand poses, AM1-BCC, "
        "xTB labels, ANI training, ML/MM MD in OpenMM, metadynamics with the standard-state "
        "correction, the validation table against measured ΔG). It does not measure how well "
        "ANI + metadynamics predicts affinities: the metadynamics is far from converged (above), "
        "and with a handful of ligands the bootstrap intervals of R² and τ span most of their "
        "range. Simplifications: the ANI model is trained on a few hundred GFN2-xTB frames of "
        "these ligands alone (GAFF2 MD conformers and rattled copies), not ANI-2x's data; in "
        "ML/MM the ANI model gives only the ligand's internal energy, so the ligand–protein "
        "interaction is GAFF2/ff14SB with implicit solvent (mechanical embedding); "
        f"{_solvent_note(s)}one screening run per ligand; "
        + ("active learning explores each ligand alone in vacuum, not in the pocket." if al
           else "no active learning."),
        "",
        "A ligand whose bond passes 2 Å under the ML potential is stopped and reported as "
        "fallen apart (screening table, walker failures), not ranked and not in ΔG. With a "
        "model trained on a few hundred frames this is the rule for drug-size ligands, not the "
        "exception: measured on MCL1 ligands 47 and 53 alone under pure ANI MD (the model of a "
        "500-epoch training, test force MAE 0.29 eV/Å), the ligand heats to 500–1,700 K and a "
        "bond passes 2 Å within 0.2–0.3 ps even at a 0.25 fs step, while a single C–C stretch "
        "costs it +2.1 eV at 1.95 Å (GFN2-xTB +2.2 eV): the learned surface runs downhill "
        "along combined distortions away from its data, which only frames of its own MD "
        + ("fill (the active learning above)." if al else
           "(active learning, not done in this run) would fill."),
    ]


def _host_guest_caveats(s: dict) -> list[str]:
    v = s.get("validation") or {}
    n = v.get("n", 0)
    return [
        "What this run can and cannot show: every stage of the seed's pipeline runs on a "
        "host–guest system whose affinities were measured (AM1-BCC for the guests, GFN2-xTB "
        "labels, ANI training, ML/MM MD in OpenMM, metadynamics with the standard-state "
        "correction, and the validation table against calorimetry) in minutes. "
        f"With n = {n} guests and walkers of a few ps, R², τ and their bootstrap intervals "
        "test that the chain works end to end and whether the ranking comes out; they do not "
        "measure the accuracy of ANI + metadynamics (a converged host–guest ΔG takes tens of "
        "ns of sampling per guest). It says nothing about Mpro inhibitors. Simplifications: "
        "the host is GAFF2 with the benchmark set's partial charges; the solvent is implicit "
        f"{ {'gbn2': 'GBn2', 'obc2': 'OBC2'}.get(s.get('solvent') or 'gbn2')} (the set's own "
        "input files are in explicit water with salt; hydrophobic threading into the cavity is "
        "what GB with a surface-area term describes least well); in ML/MM "
        "the ANI model gives only the guest's internal energy, so the host–guest interaction "
        "that ΔG measures is GAFF2/GBn2 (mechanical embedding), as in the seed's ML/MM setup; "
        "the ANI is trained on a few hundred GFN2-xTB frames of the guests alone in vacuum.",
        "",
        "A guest whose bond passes 2 Å under the ML potential is stopped and reported as fallen "
        "apart (screening table, walker failures), not ranked and not in ΔG. Measured on this "
        "set without active learning: 7 of the 12 walkers of a model trained on 135 sampled "
        "frames fell apart (C–H and N–H bonds), 4 of 12 with 384 frames and twice the epochs "
        "(seven minutes of training); with two rounds of active learning on the guests' own MD, "
        "none of 12 in GBn2, none of 12 in OBC2 and none of 9 in the shipped tiny config. "
        + ("This run's model comes from that loop (above)." if s.get("active_learning") else
           "This run had no active learning."),
    ]


def _solvent_note(s: dict) -> str:
    if (s.get("solvent") or "gbn2") != "obc2":
        return ""
    return ("the implicit solvent is OBC2, not GBn2: on the CPU OpenMM evaluates GBn2 through a "
            "generic CustomGBForce, ~10 times slower than OBC2's dedicated force for a whole "
            "protein (measured 2.4 vs 0.23 s per force evaluation for the 2,461-atom MCL1 "
            "complex, one thread); ")


def _toy_caveats() -> list[str]:
    return [
        "What this run can and cannot show: it runs every stage of the seed's pipeline for "
        "real (AM1-BCC, xTB labels, ANI training, ML/MM MD in OpenMM, metadynamics with errors, "
        "the standard-state correction) on a toy system in minutes. It says nothing about Mpro "
        "inhibitors. Simplifications: the receptor is a tleap-built extended peptide, not a "
        "crystal pocket; ligand conformers for training come from GAFF2 MD, not active "
        "learning; one screening run per ligand; metadynamics on the best-ranked ligand(s) "
        "only; in ML/MM the ANI model gives only the ligand's internal energy, so the "
        "ligand–receptor interaction that ΔG measures is GAFF2/ff14SB/GBn2 (mechanical "
        "embedding), as in the seed's ML/MM setup.",
        "",
        "Is the tiny model trustworthy enough to rank? Only as far as the ligands stay "
        "intact: a model trained on a few hundred frames has holes (geometries where a "
        "stretched bond costs less energy than it should). Every ligand bond is checked every "
        "0.1 ps of screening MD and at every metadynamics hill; a ligand or walker whose bond "
        "passes 2 Å is stopped, reported above as fallen apart and left out of the ranking and "
        "of ΔG. Which ligand meets a hole depends on the training seed and on the MD "
        "trajectory (measured: seed 0's model broke none; seed 1's broke benzamide's C–C(=O) "
        "bond with one MD seed of three and phenol's O–H in 3 of 4 walkers; adding rattled "
        "copies at 0.25 Å fixed those but broke aniline and toluene instead). With the same "
        "seed the run repeats number for number, except that AmberTools' parmchk2 is not "
        "deterministic (in about a third of its runs it misses a look-up and guesses: "
        "aniline's GAFF2 type nv, a ring-substituent improper of 1.1 instead of 10.5 "
        "kcal/mol for aniline and phenol); drug_binding.prepare now runs it six times and "
        "keeps the output with the fewest guesses.",
    ]
