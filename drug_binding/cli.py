"""``mlp-drug-binding``: binding free energies by metadynamics, their validation against
experiment, and folding events of a small protein.

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
    """R², Kendall τ, RMSE and MAE of predicted against experimental ΔG, with bootstrap 95 %
    intervals (Kd or IC50 in nM are turned into ΔG = RT ln(K / 1 M))."""
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
             hill_width_nm="--hill-width-nm", bias_factor="--bias-factor")
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
    seed: opt.Seed = 0,
    json_out: opt.Json = False,
) -> None:
    """Well-tempered metadynamics along a distance CV; ΔG between the basins from the
    profile, its error from the second half, and the standard-state (1 M) ΔG_bind."""
    from drug_binding.metad import load_openmm_inputs, run_metad

    system, positions = load_openmm_inputs(system_xml, pdb)
    res = run_metad(system, positions, cv, bound, unbound, temperature_K, steps, out,
                    bias_factor=bias_factor, hill_height_kJ=hill_height_kJ,
                    hill_width_nm=hill_width_nm, pace=pace, timestep_fs=timestep_fs,
                    friction_per_ps=friction_per_ps, seed=seed, platform=platform,
                    n_blocks=blocks)
    if json_out:
        emit_json(res)
        return
    print(f"ΔG = {_g(res['delta_G_kcal_per_mol'])} ± {_g(res['delta_G_err_kcal_per_mol'])} "
          f"kcal/mol (bound - unbound, from the profile)")
    if "delta_G_bind_kcal_per_mol" in res:
        print(f"ΔG_bind = {_g(res['delta_G_bind_kcal_per_mol'])} kcal/mol (standard state 1 M)")
    print(f"{res['n_hills']} hills -> {out}")


# -- folding ------------------------------------------------------------------------------------


class Observable(StrEnum):
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
    """Folding and unfolding events (two thresholds with hysteresis, a minimum lifetime),
    folded fraction and mean first-passage times with 95 % intervals."""
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
    """The native structure, checked against the trajectory's first frame (same atoms)."""
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


def main() -> None:
    sys.exit(run_app(app))


if __name__ == "__main__":
    main()
