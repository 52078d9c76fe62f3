"""The ``mlp-drug-binding`` command line.

Binding free energies by metadynamics, their validation against experiment, and folding events of a
small protein.

Thin layer over :func:`drug_binding.validation.validate_table`,
:func:`drug_binding.metad.run_metad` and :func:`drug_binding.folding.fold_trajectory`; shared
options (``--temperature-K``, ``--steps``, ``--seed``, ``--dt-fs``, ``--json``) come from
:mod:`common.cli.options`.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from common.cli import options as opt
from common.cli.app import emit_json, example, new_app, run_app
from common.cli.flags import param_flags

app = new_app("mlp-drug-binding: metadynamics binding free energies on OpenMM systems, their "
              "validation against experiment, and protein folding events.",
              epilog=example("mlp-drug-binding validate predictions.csv --json"))


def _g(x: float | None, fmt: str = ".2f") -> str:
    return "n/a" if x is None else format(x, fmt)


# -- validate -----------------------------------------------------------------------------------


@app.command("validate", epilog=example(
    "mlp-drug-binding validate predictions.csv --temperature-K 298.15 --plot parity.png --json"))
@param_flags(path_or_rows="TABLE", n_bootstrap="--bootstrap")
def validate(
    table: Annotated[Path, typer.Argument(
        metavar="TABLE", show_default=False,
        help="CSV with columns name, dG_pred_kcal_per_mol and one of dG_exp_kcal_per_mol, "
             "Kd_nM, IC50_nM")],
    temperature_K: opt.temperature_option(
        "temperature of the RT ln(Kd / 1 M) conversion, K") = 298.15,
    substrate_uM: float | None = typer.Option(
        None, "--substrate-uM", min=0.0, metavar="UM",
        help="Cheng-Prusoff: the assay's substrate concentration [S], µM (IC50 tables, with "
             "--km-uM)"),
    km_uM: float | None = typer.Option(
        None, "--km-uM", callback=opt.positive, metavar="UM",
        help="Cheng-Prusoff: the substrate's Michaelis constant Km, µM (with --substrate-uM)"),
    bootstrap: int = typer.Option(1000, "--bootstrap", min=1, metavar="N",
                                  help="bootstrap resamples for the 95 % intervals"),
    seed: opt.seed_option("seed of the bootstrap resampling") = 0,
    plot: Path | None = typer.Option(None, "--plot", metavar="FILE",
                                     help="save a parity plot (.png, .pdf, ...)"),
    json_out: opt.Json = False,
) -> None:
    """Compare predicted with experimental ΔG: R², Kendall τ, RMSE and MAE.

    Each with bootstrap 95 % intervals (Kd or IC50 in nM are turned into ΔG = RT ln(K / 1 M)).
    """
    from drug_binding.validation import plot_validation, validate_table

    res = validate_table(table, temperature_K, substrate_uM=substrate_uM, km_uM=km_uM,
                         n_bootstrap=bootstrap, seed=seed)
    if plot is not None:
        plot_validation(res, plot, title=table.stem)
    if json_out:
        emit_json(res)
        return
    print(f"{res['n']} compounds (experimental ΔG from {res['experimental_source']}, "
          f"{res['temperature_K']:g} K)")
    for key, label in (("r2", "R²"), ("kendall_tau", "Kendall τ"),
                       ("rmse_kcal_per_mol", "RMSE"), ("mae_kcal_per_mol", "MAE")):
        lo, hi = res["ci95"][key]
        print(f"  {label:10s} {_g(res[key])}  [{_g(lo)}, {_g(hi)}]")


# -- metad --------------------------------------------------------------------------------------

def _above_one(value: float) -> float:
    if not value > 1.0:  # also refuses NaN
        raise typer.BadParameter(f"{value} is not > 1")
    return value


@app.command("metad", epilog=example(
    "mlp-drug-binding metad --system complex.xml --pdb complex.pdb --cv distance:0-120:121-140 "
    "\\", "    --bound 0.2,0.6 --unbound 1.2,1.6 --temperature-K 300 --steps 5000000 "
          "--out metad/ --json"))
@param_flags(system_xml="--system", cv_spec="--cv", bound_nm="--bound", unbound_nm="--unbound",
             outdir="--out", n_blocks="--blocks", hill_height_kJ="--hill-height-kJ",
             hill_width_nm="--hill-width-nm", bias_factor="--bias-factor",
             funnel_radius_nm="--funnel-radius-nm", funnel_angle_deg="--funnel-angle-deg",
             funnel_z_cc_nm="--funnel-zcc-nm", funnel_z_nm="--funnel-z-nm",
             funnel_k_kJ_per_nm2="--funnel-k")
def metad(
    system_xml: Annotated[Path, typer.Option(
        "--system", metavar="SYSTEM.xml", show_default=False,
        help="the OpenMM System, serialized (openmm.XmlSerializer.serialize)")],
    pdb: Annotated[Path, typer.Option("--pdb", metavar="COORDS.pdb", show_default=False,
                                      help="starting coordinates of the System's atoms")],
    cv: Annotated[str, typer.Option(
        "--cv", metavar="distance:I:J", show_default=False,
        help="collective variable: distance between the centres of mass of two atom groups, "
             "0-based indices, lists or ranges (distance:0-9,12:15)")],
    bound: Annotated[str, typer.Option("--bound", metavar="LO,HI", show_default=False,
                                       help="bound basin of the CV, nm")],
    unbound: Annotated[str, typer.Option("--unbound", metavar="LO,HI", show_default=False,
                                         help="unbound basin of the CV, nm (must not overlap "
                                              "--bound); its shell volume sets the 1 M "
                                              "standard-state correction")],
    temperature_K: opt.temperature_option("temperature, K"),
    steps: opt.Steps,
    out: opt.out_option("output folder: HILLS, COLVAR, fes.dat, metad.json, figures"),
    bias_factor: float = typer.Option(10.0, "--bias-factor", callback=_above_one,
                                      metavar="GAMMA",
                                      help="well-tempered bias factor (> 1; 5-20 usual)"),
    hill_height_kJ: float = typer.Option(1.2, "--hill-height-kJ", callback=opt.positive,
                                         metavar="KJ/MOL", help="initial hill height, kJ/mol"),
    hill_width_nm: float = typer.Option(0.05, "--hill-width-nm", callback=opt.positive,
                                        metavar="NM", help="hill width σ along the CV, nm"),
    pace: int = typer.Option(500, "--pace", min=1, metavar="STEPS",
                             help="MD steps between hills"),
    timestep_fs: float = typer.Option(
        2.0, "--timestep-fs", callback=opt.positive, metavar="FS",
        help="Langevin time step, fs (2 here, not 1: OpenMM systems usually constrain the "
             "bonds to H)"),
    friction_per_ps: opt.FrictionPerPs = 1.0,
    blocks: int = typer.Option(5, "--blocks", min=2, metavar="N",
                               help="blocks over the second half of the run for the error"),
    platform: str = typer.Option(
        "CPU", "--platform", metavar="NAME",
        help="OpenMM platform: CPU, CUDA, OpenCL, or Reference (fastest for a few atoms)"),
    walkers: int = typer.Option(
        1, "--walkers", min=1, metavar="N",
        help="independent walkers (seeds SEED, SEED+1000, ...; files in OUT/walker_K/): ΔG is "
             "their mean, its error the standard error over walkers"),
    funnel: str | None = typer.Option(
        None, "--funnel", metavar="LIG:ORIGIN:TOWARD",
        help="funnel restraint (Limongelli 2013) on the ligand group's centre: the axis runs "
             "from the ORIGIN group's centre (pocket) towards the TOWARD group's (exit); groups "
             "written as in --cv. With LIG and ORIGIN the --cv groups, ΔG_bind uses the "
             "funnel's volume of the unbound basin"),
    funnel_radius_nm: float = typer.Option(
        0.1, "--funnel-radius-nm", callback=opt.positive, metavar="NM",
        help="funnel: cylinder radius R_cyl, nm"),
    funnel_angle_deg: float = typer.Option(
        30.0, "--funnel-angle-deg", min=0.0, max=89.9, metavar="DEG",
        help="funnel: half-opening angle of the cone, degrees"),
    funnel_zcc_nm: float | None = typer.Option(
        None, "--funnel-zcc-nm", callback=opt.finite, metavar="NM",
        help="funnel: where the cone meets the cylinder along the axis, nm (needed with "
             "--funnel)"),
    funnel_z_nm: str | None = typer.Option(
        None, "--funnel-z-nm", metavar="ZMIN,ZMAX",
        help="funnel: limits along the axis, nm (ZMIN may be negative; needed with --funnel)"),
    funnel_k: float = typer.Option(
        5000.0, "--funnel-k", callback=opt.positive, metavar="KJ/MOL/NM2",
        help="funnel: force constant of its walls, kJ/mol/nm²"),
    seed: opt.Seed = 0,
    json_out: opt.Json = False,
) -> None:
    """Well-tempered metadynamics along a distance CV.

    ΔG between the basins from the profile, its error from the second half (or over --walkers), and
    the standard-state (1 M) ΔG_bind; optionally inside a funnel restraint.
    """
    from drug_binding.metad import load_openmm_inputs, run_metad, run_walkers

    system, positions = load_openmm_inputs(system_xml, pdb)
    fun = _funnel(funnel, system.getNumParticles(), funnel_radius_nm, funnel_angle_deg,
                  funnel_zcc_nm, funnel_z_nm, funnel_k)
    kw = dict(bias_factor=bias_factor, hill_height_kJ=hill_height_kJ,
              hill_width_nm=hill_width_nm, pace=pace, timestep_fs=timestep_fs,
              friction_per_ps=friction_per_ps, seed=seed, platform=platform, n_blocks=blocks,
              funnel=fun)
    if walkers > 1:
        res = run_walkers(system, positions, cv, bound, unbound, temperature_K, steps, out,
                          walkers=walkers, **kw)
    else:
        res = run_metad(system, positions, cv, bound, unbound, temperature_K, steps, out, **kw)
    if json_out:
        emit_json(res)
        return
    print(f"ΔG = {_g(res['delta_G_kcal_per_mol'])} ± {_g(res['delta_G_err_kcal_per_mol'])} "
          f"kcal/mol (bound - unbound, from the profile)")
    if walkers > 1:
        print("walkers: " + ", ".join(_g(x) for x in res["walker_delta_G_kcal_per_mol"])
              + " kcal/mol (error: standard error over walkers)")
    if "delta_G_bind_kcal_per_mol" in res:
        print(f"ΔG_bind = {_g(res['delta_G_bind_kcal_per_mol'])} kcal/mol (standard state 1 M)")
    elif "standard_state_note" in res:
        print(res["standard_state_note"])
    print(f"{res['n_hills']} hills -> {out}")


def _funnel(groups, n_atoms, radius_nm, angle_deg, zcc_nm, z_nm, k):
    """Build the funnel of the --funnel* options, or None; one-line errors for a half-given one."""
    from common.errors import ConfigError
    from drug_binding.funnel import parse_funnel

    if groups is None:
        if zcc_nm is not None or z_nm is not None:
            raise ConfigError("--funnel-zcc-nm/--funnel-z-nm given without --funnel",
                              where="funnel", fix="add --funnel LIG:ORIGIN:TOWARD or drop them")
        return None
    if zcc_nm is None or z_nm is None:
        raise ConfigError("--funnel needs --funnel-zcc-nm and --funnel-z-nm", where="funnel",
                          fix="say where the cone meets the cylinder and the limits along the "
                              "axis, e.g. --funnel-zcc-nm 0.6 --funnel-z-nm -0.2,2.0")
    return parse_funnel(groups, n_atoms, radius_nm, angle_deg, zcc_nm, z_nm, k)


# -- folding ------------------------------------------------------------------------------------


class Observable(StrEnum):
    """Order parameter for ``folding``: fraction of native contacts Q or RMSD."""

    Q = "Q"
    rmsd = "rmsd"


@app.command("folding", epilog=example(
    "mlp-drug-binding folding md.extxyz --native native.pdb --observable Q --min-persistence-fs "
    "500 --json"))
@param_flags(trajectory="TRAJ", min_fs="--min-persistence-fs",
             folded_threshold="--folded", unfolded_threshold="--unfolded")
def folding(
    traj: Annotated[Path, typer.Argument(
        metavar="TRAJ", show_default=False,
        help="trajectory with the protein whole (extxyz, ASE .traj, HDF5 of mlp-cases md)")],
    native: Annotated[Path, typer.Option(
        "--native", metavar="PDB", show_default=False,
        help="native structure, same atoms in the same order (a PDB gives the residues)")],
    observable: Observable = typer.Option(
        Observable.Q, "--observable",
        help="Q (fraction of native contacts, folded when high) or rmsd (Kabsch RMSD, Å)"),
    folded: float | None = typer.Option(
        None, "--folded", callback=opt.finite, metavar="X",
        help="folded beyond this value (default Q 0.7, RMSD 2 Å)"),
    unfolded: float | None = typer.Option(
        None, "--unfolded", callback=opt.finite, metavar="X",
        help="unfolded beyond this value (default Q 0.3, RMSD 4 Å)"),
    min_persistence_fs: float = typer.Option(
        0.0, "--min-persistence-fs", min=0.0, metavar="FS",
        help="a state change counts if the new state lasts this long, fs"),
    dt_fs: opt.DtFs = None,
    plot: Path | None = typer.Option(None, "--plot", metavar="FILE",
                                     help="save the order parameter against time"),
    json_out: opt.Json = False,
) -> None:
    """Find folding and unfolding events of a small protein.

    Two thresholds with hysteresis and a minimum lifetime; reports the folded fraction and mean
    first-passage times with 95 % intervals.
    """
    from drug_binding.folding import fold_trajectory, plot_folding

    res = fold_trajectory(traj, _native(native, traj), observable=observable.value,
                          folded_threshold=folded, unfolded_threshold=unfolded,
                          min_fs=min_persistence_fs, dt_fs=dt_fs)
    if plot is not None:
        plot_folding(res, plot, title=traj.stem)
    d = res.to_dict()
    if json_out:
        emit_json(d)
        return
    print(f"{d['n_frames']} frames ({d['observable']}): folded fraction "
          f"{d['folded_fraction']:.3f}, {d['n_folding']} folding and {d['n_unfolding']} "
          "unfolding events")
    for key, label in (("mfpt_folding_fs", "folding"), ("mfpt_unfolding_fs", "unfolding")):
        m = d[key]
        print(f"  mean {label} time: {_g(m['mean'], '.4g')} fs over {m['n']} dwells, 95 % CI "
              f"[{_g(m['ci95'][0], '.4g')}, {_g(m['ci95'][1], '.4g')}]")


def _native(native: Path, traj: Path):
    """Read the native structure, checked against the trajectory's first frame (same atoms)."""
    from common.data.io import read_structures
    from common.errors import DataError
    from common.trajectory import HDF5_SUFFIXES

    ref = read_structures(native)[0]
    if traj.suffix.lower() in HDF5_SUFFIXES or not traj.is_file():
        return ref  # fold_trajectory reads (and checks) these itself
    first = read_structures(traj, index="0")[0]
    if len(first) != len(ref) or first.get_chemical_symbols() != ref.get_chemical_symbols():
        raise DataError(f"the native structure has {len(ref)} atoms "
                        f"({ref.get_chemical_formula()}), the trajectory {len(first)} "
                        f"({first.get_chemical_formula()})", where=str(native),
                        fix="give the native structure of the trajectory's atoms, same order")
    return ref


# -- prepare / train / md / screen / case-study -------------------------------------------------

_Model = Annotated[Path, typer.Option("--model", metavar="FOLDER", show_default=False,
                                      help="ANI model folder written by `train`")]


class Solvent(StrEnum):
    """Solvent model for ``prepare``: implicit GBn2 or OBC2, explicit TIP3P or vacuum."""

    gbn2 = "gbn2"
    obc2 = "obc2"
    tip3p = "tip3p"
    vacuum = "vacuum"


@app.command("prepare", epilog=example(
    "mlp-drug-binding prepare --ligand 'NC(=O)c1ccccc1' --peptide 'TRP GLY TRP' --out cx/"))
@param_flags(receptor_pdb="--receptor", workdir="--out", site_A="--site-A",
             **{"receptor_pdb/peptide/host": "--receptor/--peptide/--host"})
def prepare_cmd(
    ligand: Annotated[str, typer.Option(
        "--ligand", metavar="SMILES|FILE", show_default=False,
        help="ligand: a SMILES (embedded in 3D, placed at --site-A) or an SDF/MOL/MOL2 pose "
             "(kept)")],
    out: opt.out_option("work folder: complex.prmtop/.inpcrd/.pdb, ligand/, prepare.json"),
    receptor: Path | None = typer.Option(None, "--receptor", metavar="PDB",
                                         help="protein PDB (fixed by pdbfixer)"),
    peptide: str | None = typer.Option(None, "--peptide", metavar="'RES RES ...'",
                                       help="or a capped peptide built by tleap"),
    host: Path | None = typer.Option(None, "--host", metavar="MOL2",
                                     help="or a host molecule with its partial charges "
                                          "(GAFF2; host-guest binding, the guest's pose kept)"),
    site: str | None = typer.Option(None, "--site-A", metavar="X,Y,Z",
                                    help="where a SMILES ligand's centre goes, Å"),
    solvent: Solvent = typer.Option(Solvent.gbn2, "--solvent",
                                    help="implicit GBn2 or OBC2 (cheaper for a whole protein on "
                                         "the CPU), a TIP3P box, or vacuum"),
    ph: float = typer.Option(7.0, "--ph", min=0.0, max=14.0, metavar="PH",
                             help="pH for the receptor's hydrogens"),
    charges: str = typer.Option("bcc", "--charges", metavar="bcc|gas",
                                help="AM1-BCC (bcc) or Gasteiger (gas, quick tests only)"),
    seed: opt.Seed = 0,
    json_out: opt.Json = False,
) -> None:
    """Prepare a complex: ligand, GAFF2/AM1-BCC parameters and receptor in solvent.

    Ligand (RDKit) + GAFF2/AM1-BCC (antechamber) + receptor (pdbfixer, a peptide, or a GAFF2 host
    with its own charges) -> an AMBER complex in implicit or explicit solvent.
    """
    from drug_binding.prepare import prepare, summary_text

    site_A = None
    if site is not None:
        site_A = _floats(site, 3, "--site-A")
    cx = prepare(ligand, out, receptor_pdb=receptor, peptide=peptide, site_A=site_A,
                 solvent=solvent.value, ph=ph, seed=seed, charge_method=charges, host=host)
    if json_out:
        emit_json(cx.to_dict())
        return
    print(summary_text(cx))


def _floats(text: str, n: int, flag: str) -> list[float]:
    import math

    try:
        vals = [float(x) for x in text.split(",")]
    except ValueError:
        vals = []
    if len(vals) != n or not all(math.isfinite(v) for v in vals):
        raise typer.BadParameter(f"{text!r} is not {n} comma-separated numbers",
                                 param_hint=flag)
    return vals


@app.command("train", epilog=example(
    "mlp-drug-binding train labels.extxyz --config tiny --out model/"))
def train(
    data: Annotated[Path, typer.Argument(help="labelled structures (extxyz or ASE db)",
                                         metavar="DATA", show_default=False)],
    out: opt.out_option("model folder; it appears only when training has finished"),
    config: str = typer.Option("tiny", "--config", metavar="NAME|FILE",
                               help="tiny, paper or a JSON file of ANI settings"),
    fractions: opt.Fractions = "0.8,0.1,0.1",
    seed: opt.Seed = 0,
    device: opt.Device = "cpu",
    overwrite: opt.Overwrite = False,
    json_out: opt.Json = False,
) -> None:
    """Train an ANI-architecture model (torchani's AEV and networks) on labelled frames."""
    from common.cli.training import train_model
    from drug_binding.model import ANIAdapter, load_config

    train_model(ANIAdapter, load_config, data=data, out=out, config=config, fractions=fractions,
                seed=seed, device=device, overwrite=overwrite, json_out=json_out)


@app.command("md", epilog=example(
    "mlp-drug-binding md --complex cx/ --model model/ --steps 5000 --out md/ --json"))
@param_flags(complex_dir="--complex", model_dir="--model")
def md(
    complex_dir: Annotated[Path, typer.Option("--complex", metavar="FOLDER", show_default=False,
                                              help="folder written by `prepare`")],
    model: _Model,
    out: opt.out_option("output folder: md.pdb, final.pdb, md.json"),
    steps: opt.Steps = 1000,
    temperature_K: opt.TemperatureK = 300.0,
    timestep_fs: Annotated[float, typer.Option(
        "--timestep-fs", callback=opt.positive, metavar="FS",
        help="time step, fs (1 here: the ligand's bonds to H are not constrained under ANI)")
    ] = 1.0,
    friction_per_ps: opt.FrictionPerPs = 1.0,
    traj_every: opt.TrajEvery = 100,
    seed: opt.Seed = 0,
    json_out: opt.Json = False,
) -> None:
    """Run ML/MM Langevin MD of a prepared complex and measure the ligand in its pocket.

    The ligand is on ANI, the rest MM; the ligand's pocket metrics are its RMSD, contacts and
    residence time.
    """
    from drug_binding.screening import run_md

    res = run_md(complex_dir, model, steps, out, temperature_K=temperature_K,
                 timestep_fs=timestep_fs, friction_per_ps=friction_per_ps,
                 report_every=traj_every, seed=seed)
    if json_out:
        emit_json(res)
        return
    print(f"{res['steps']} steps ({res['steps_per_s']} steps/s): ligand RMSD "
          f"{res['mean_rmsd_A']:.2f} Å (2nd half), residence {res['residence_time_ps']:.2f} ps"
          f"{'' if res['escaped'] else '+'} -> {out}")


@app.command("screen", epilog=example(
    "mlp-drug-binding screen cx_a/ cx_b/ cx_c/ --model model/ --steps 2000 --out screen/"))
@param_flags(complexes="COMPLEX")
def screen_cmd(
    complexes: Annotated[list[Path], typer.Argument(
        metavar="COMPLEX...", show_default=False,
        help="complex folders written by `prepare` (the folder name names the ligand)")],
    model: _Model,
    out: opt.out_option("output folder: results/ (one JSON per ligand), screening.json"),
    steps: opt.Steps = 2000,
    temperature_K: opt.TemperatureK = 300.0,
    timestep_fs: float = typer.Option(1.0, "--timestep-fs", callback=opt.positive,
                                      metavar="FS", help="time step, fs"),
    traj_every: opt.TrajEvery = 100,
    cluster: str | None = typer.Option(
        None, "--cluster", metavar="WHERE",
        help="serial, a scheduler tcp://host:port, a dask-jobqueue YAML (default: local)"),
    seed: opt.Seed = 0,
    json_out: opt.Json = False,
) -> None:
    """Binding-stability screening.

    Short ML/MM MD per ligand, ranked by ligand RMSD in the pocket (contacts and residence time
    kept); a rerun skips finished ligands.
    """
    from common.errors import ConfigError
    from drug_binding.prepare import Complex
    from drug_binding.screening import screen

    names = {}
    for c in complexes:
        Complex.load(c)  # a one-line error for a folder that is not a complex
        if c.name in names:
            raise ConfigError(f"two complexes named {c.name!r}", where=str(c),
                              fix="give each complex folder its own name")
        names[c.name] = str(c)
    res = screen(names, model, out, steps, temperature_K=temperature_K,
                 timestep_fs=timestep_fs, report_every=traj_every, seed=seed,
                 cluster=cluster, progress=not json_out)
    if json_out:
        emit_json(res)
        return
    for r in res["ranking"]:
        print(f"{r['rank']:3d} {r['name']:20s} RMSD {r['mean_rmsd_A']:.2f} Å, residence "
              f"{r['residence_time_ps']:.2f} ps")
    for r in res["fell_apart"]:
        print(f"  - {r['name']:20s} fell apart at step {r['step']} (not ranked): {r['message']}")
    for k, msg in res["failures"].items():
        print(f"failed {k}: {msg}")


@app.command("case-study", epilog=example(
    "mlp-drug-binding case-study --scale tiny --out runs/drug_binding_tiny"))
def case_study_cmd(
    scale: str = typer.Option("tiny", "--scale", metavar="SCALE",
                              help="tiny (alpha-cyclodextrin and three guests with measured "
                                   "ΔG, minutes), toy (a tripeptide and four aromatics, no "
                                   "experiment), paper (the seed's settings), jacs (MCL1 from "
                                   "the JACS benchmark, hours; jacs_short: its ~55-CPU-minute "
                                   "reduction), or a JSON config"),
    out: opt.out_option("output folder (summary.json, report.md, figures)",
                        required=False) = Path("runs/drug_binding"),
    seed: opt.Seed = 0,
    json_out: opt.Json = False,
) -> None:
    """Run the seed's workflow end to end.

    Prepare, label (GFN2-xTB), train ANI, ML/MM screening, metadynamics ΔG_bind, validation, report;
    a rerun resumes.
    """
    from drug_binding import case_study

    summary = case_study.run(scale, out, seed=seed, progress=not json_out)
    if json_out:
        emit_json(summary)
        return
    print((out / "report.md").read_text())


def main() -> None:
    """Run the ``mlp-drug-binding`` command line."""
    sys.exit(run_app(app))


if __name__ == "__main__":
    main()
