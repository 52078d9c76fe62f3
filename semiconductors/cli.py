"""``mlp-semiconductors``: absolute free energies of crystals (perfect or with a defect) by
Frenkel-Ladd thermodynamic integration with any potential.

Thin layer over :func:`semiconductors.thermo.frenkel_ladd`; ``--potential`` / ``--param``,
``--temperatures``, ``--timestep-fs``, ``--seed``, ``--device``, ``--batch-size``,
``--checkpoint-every``, ``--restart`` and ``--json`` are the shared options of
:mod:`common.cli.options`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from common.cli import options as opt
from common.cli.app import emit_json, example, new_app, run_app, warn
from common.cli.flags import param_flags
from common.errors import ConfigError, DataError, MlpCasesError

app = new_app("mlp-semiconductors: free energies of crystals and their defects by "
              "thermodynamic integration (Frenkel-Ladd) with any potential.",
              epilog=example("mlp-semiconductors ti gan_vacancy.extxyz --potential mace_model/ "
                             "--temperatures 300,600,900 --json"))


@app.callback()
def _group() -> None:
    # a group even with one command, so that `mlp-semiconductors ti ...` keeps its name
    pass


def default_out(structure: Path) -> Path:
    """The default ``--out``: ``<STRUCTURE stem>_ti/`` next to the structure file."""
    return structure.parent / f"{structure.stem}_ti"


def _check_out(out: Path, restart: bool) -> None:
    """Refuse, before any work, an output that cannot be written or would be mixed."""
    if out.exists() and not out.is_dir():
        raise ConfigError("a file is in the way of the output folder", where=str(out),
                          fix="choose another --out")
    md = out / "md"
    if not restart and md.is_dir() and any(md.iterdir()):
        raise ConfigError("a TI run is already in this folder", where=str(out),
                          fix="choose another --out, or pass --restart to continue it")


def _check_periodic(atoms, structure: Path) -> None:
    if not (atoms.pbc.all() and abs(atoms.cell.volume) > 1e-8):
        raise DataError(f"not a crystal periodic along x, y and z (pbc {atoms.pbc.tolist()})",
                        where=str(structure),
                        fix='give a bulk cell with its lattice and pbc in x, y and z (extxyz: '
                            'Lattice="..." pbc="T T T"), with or without the defect')


@app.command("ti", epilog=example(
    "mlp-semiconductors ti ar.extxyz -p lj --param epsilon=0.0104 --param sigma=3.4 "
    "--param rc=8.5 \\", "    --temperatures 10,20,40 --n-lambda 8 --steps-per-window 10000 "
                         "--out ti_ar/ --json"))
@param_flags(temperatures_K="--temperatures", outdir="--out",
             spring_eV_per_A2="--spring-eV-A2")
def ti(
    structure: opt.structures_argument("the crystal (3D-periodic cell; relaxed positions give "
                                       "the flattest integrand); its first frame is used"),
    potential: opt.Potential,
    temperatures: opt.temperatures_option("temperatures to integrate at, K (each > 0)"),
    param: opt.Param = None,
    out: Annotated[Path | None, typer.Option(
        "--out", metavar="PATH",
        help="output folder (md/, frenkel_ladd.json, dudl_vs_lambda.png); default "
             "<STRUCTURE stem>_ti/ next to the structure")] = None,
    n_lambda: int = typer.Option(8, "--n-lambda", min=2, metavar="N",
                                 help="Gauss-Legendre points on λ from Einstein crystal (0) to "
                                      "the potential (1)"),
    steps_per_window: int = typer.Option(
        10000, "--steps-per-window", min=128, metavar="N",
        help="production MD steps per (temperature, λ) window (>= 128: the error bars need "
             "blocks)"),
    equilibration_steps: int = typer.Option(
        2000, "--equilibration-steps", min=0, metavar="N",
        help="steps discarded at the start of each window"),
    spring_eV_A2: float | None = typer.Option(
        None, "--spring-eV-A2", callback=opt.positive, metavar="EV/A2",
        help="Einstein spring constant, eV/Å² (default: per element, the mean Hessian "
             "diagonal)"),
    timestep_fs: opt.TimestepFs = 1.0,
    friction_per_ps: Annotated[float, typer.Option(
        "--friction-per-ps", callback=opt.positive, metavar="1/PS",
        help="Langevin friction, 1/ps (10 here, not 1: near the lower phonon frequencies "
             "dU/dλ decorrelates fastest)")] = 10.0,
    seed: opt.seed_option("random seed; window k uses seed + k") = 0,
    device: opt.Device = "cpu",
    batch_size: opt.BatchSize = "auto",
    checkpoint_every: opt.CheckpointEvery = 0,
    restart: opt.Restart = False,
    json_out: opt.Json = False,
) -> None:
    """Classical Helmholtz free energy per atom at each temperature, with its error, by
    Frenkel-Ladd integration from an Einstein crystal (all windows in one batched run)."""
    from common.cli.md import parse_params, warn_default_params
    from common.data.io import read_structures
    from common.potential.registry import make_potential
    from semiconductors.thermo import frenkel_ladd

    out = default_out(structure) if out is None else out
    _check_out(out, restart)
    params = parse_params(param)
    atoms = read_structures(structure)[0]
    _check_periodic(atoms, structure)
    pot = make_potential(potential, params, device=device)
    warn_default_params(potential, params)
    try:
        res = frenkel_ladd(atoms, pot, temperatures, out, n_lambda=n_lambda,
                           steps_per_window=steps_per_window,
                           equilibration_steps=equilibration_steps,
                           spring_eV_per_A2=spring_eV_A2, timestep_fs=timestep_fs,
                           friction_per_ps=friction_per_ps, seed=seed, device=device,
                           batch_size=batch_size, checkpoint_every=checkpoint_every,
                           restart=restart, progress=not json_out,
                           potential_label=f"{potential} {param or ''}")
    except MlpCasesError as exc:
        if exc.where == "structure":  # name the file rather than the Python parameter
            exc.where = str(structure)
        raise
    for note in dict.fromkeys(w for r in res["results"] for w in r["warnings"]):
        warn(note)
    if json_out:
        emit_json(res)
        return
    for r in res["results"]:
        print(f"T = {r['temperature_K']:g} K: F = {r['free_energy_eV_per_atom']:.6f} ± "
              f"{r['free_energy_err_eV_per_atom']:.2g} eV/atom (springs "
              f"{r['einstein_spring_eV_per_A2']:.3g} eV/Å², {r['n_lambda']} λ points)")
    print(f"outputs: {out}/ (frenkel_ladd.json, dudl_vs_lambda.png, md/)")


def main() -> None:
    sys.exit(run_app(app))


if __name__ == "__main__":
    main()
