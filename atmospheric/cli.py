"""``mlp-atmospheric``: bimolecular rate constants by quasi-classical trajectories, and their
Arrhenius fits and KPP/MCM mechanism lines.

Thin layer over :func:`atmospheric.qct.run_qct` and :func:`atmospheric.kinetics.export_kinetics`;
``--potential`` / ``--param``, ``--temperature-K``, ``--seed``, ``--device``, ``--batch-size``
and ``--json`` are the shared options of :mod:`common.cli.options`. ``qct`` counts its work in
``--trajectories`` (QCT trajectories, each with its own collision), not ``--replicas``.
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from common.cli import options as opt
from common.cli.app import emit_json, example, new_app, run_app, warn
from common.cli.flags import current_flags, param_flags, translate_text
from common.errors import ConfigError, DataError, MlpCasesError

app = new_app("mlp-atmospheric: rate constants of gas-phase reactions by quasi-classical "
              "trajectories with any potential, and their Arrhenius fits.",
              epilog=example("mlp-atmospheric qct oh.xyz isoprene.xyz --potential nequip_model/ "
                             "--temperature-K 298 --react 'add=distance:0:5<1.6' --out qct_298K/"))


class Internal(StrEnum):
    """Internal motion of each reactant at the start of a trajectory."""

    mb = "mb"
    none = "none"
    given = "given"


def _reactant(path: Path):
    """One structure (or several states: every frame) of a reactant file."""
    from common.data.io import read_structures

    frames = read_structures(path)
    if any(f.pbc.any() for f in frames):
        raise DataError("a periodic structure; QCT needs an isolated molecule or atom",
                        where=str(path), fix='give it without a cell (plain xyz, or extxyz with '
                                             'pbc="F F F")')
    return frames[0] if len(frames) == 1 else frames


@app.command("qct", epilog=example(
    "mlp-atmospheric qct oh.xyz isoprene.xyz --potential nequip_model/ --temperature-K 298 \\",
    "    --react 'add_C1=distance:0:5<1.6' --react 'abstraction=distance:0:12<1.1' \\",
    "    --trajectories 2000 --out qct_298K/ --json"))
@param_flags(criteria="--react", n_trajectories="--trajectories", outdir="--out")
def qct(
    a: Annotated[Path, typer.Argument(metavar="A", show_default=False,
                                      help="reactant A: a molecule or atom (xyz, extxyz, ...); "
                                           "several frames are its pre-sampled states")],
    b: Annotated[Path, typer.Argument(metavar="B", show_default=False,
                                      help="reactant B, as A; its atoms are numbered after A's")],
    potential: opt.Potential,
    temperature_K: opt.temperature_option(
        "temperature of the relative motion and the internal states, K"),
    out: opt.out_option("new output folder: qct.json, trajectories.csv, final_frames.extxyz, "
                        "runs/"),
    param: opt.Param = None,
    react: list[str] | None = typer.Option(
        None, "--react", metavar="[NAME=]distance:I:J<R",
        help="reaction criterion of a channel, repeatable: atoms I, J 0-based through A's atoms "
             "then B's, R in Å (or >R); or [NAME=]products:S1+S2. None: reactions from the "
             "bond graph alone"),
    trajectories: int = typer.Option(
        1000, "--trajectories", min=1, metavar="N",
        help="number of QCT trajectories at the final b_max (each its own collision energy, "
             "impact parameter and orientations); the error falls as 1/sqrt(N)"),
    seed: opt.seed_option("seed of every random draw (same seed, same trajectories on CPU)") = 0,
    b_max_A: float | None = typer.Option(
        None, "--b-max-A", callback=opt.positive, metavar="A",
        help="starting largest impact parameter, Å (default: half the geometric bound); grown "
             "until the outer ring stops reacting unless --fixed-b-max"),
    fixed_b_max: bool = typer.Option(False, "--fixed-b-max",
                                     help="use --b-max-A as it is, without growing it"),
    d0_A: float | None = typer.Option(
        None, "--d0-A", callback=opt.positive, metavar="A",
        help="starting centre-of-mass distance, Å (default: beyond b_max and the cutoff)"),
    internal: Internal = typer.Option(
        Internal.mb, "--internal", case_sensitive=False,
        help="internal motion: mb (Maxwell-Boltzmann at T), none, or given (the velocities "
             "stored with the reactants' frames)"),
    timestep_fs: Annotated[float, typer.Option(
        "--timestep-fs", callback=opt.positive, metavar="FS",
        help="NVE time step, fs (0.5 here, not 1: collisions compress bonds to H)")] = 0.5,
    max_time_fs: float | None = typer.Option(
        None, "--max-time-fs", callback=opt.positive, metavar="FS",
        help="stop an undecided trajectory here, fs (default 6 d0 / mean relative speed)"),
    device: opt.Device = "cpu",
    batch_size: opt.BatchSize = "auto",
    json_out: opt.Json = False,
) -> None:
    """Thermal rate constant k(T) of A + B by quasi-classical trajectories, with its binomial
    error and the channels (from the criteria and from the products' bond graphs)."""
    from atmospheric.qct import run_qct
    from common.cli.md import parse_params, warn_default_params
    from common.potential.registry import make_potential

    params = parse_params(param)
    ra, rb = _reactant(a), _reactant(b)
    pot = make_potential(potential, params, device=device)
    warn_default_params(potential, params)
    fresh = not out.exists() or (out.is_dir() and not any(out.iterdir()))
    try:
        res = run_qct(ra, rb, pot, temperature_K, react or [], trajectories, seed, out,
                      b_max_A=b_max_A, converge_b_max=not fixed_b_max, d0_A=d0_A,
                      internal=internal.value, timestep_fs=timestep_fs,
                      max_time_fs=max_time_fs, device=device, batch_size=batch_size,
                      progress=not json_out, potential_label=f"{potential} {param or ''}")
    except MlpCasesError as exc:
        if fresh and out.is_dir():  # a refused or failed run leaves no folder to trip over
            shutil.rmtree(out, ignore_errors=True)
        if exc.where in ("A", "B"):
            exc.where = str(a if exc.where == "A" else b)
        raise
    for note in res.get("warnings", []):
        warn(translate_text(note, current_flags()) or note)
    if json_out:
        emit_json(res)
        return
    print(f"k({res['temperature_K']:g} K) = {res['rate_cm3_per_molecule_s']:.3e} ± "
          f"{res['rate_err_cm3_per_molecule_s']:.2e} cm³/molecule/s  ({res['n_reactive']} of "
          f"{res['n_trajectories']} reactive, b_max {res['b_max_A']:.3g} Å)")
    for name, ch in res["channels"].items():
        frac = "n/a" if ch["fraction"] is None else f"{ch['fraction']:.3f}"
        print(f"  {name}: {ch['n']} ({frac})")
    print(f"outputs: {out}/")


# -- rates --------------------------------------------------------------------------------------

_RATE, _ERR = "rate_cm3_per_molecule_s", "rate_err_cm3_per_molecule_s"


def _csv_rows(path: Path) -> list[dict]:
    """k(T) rows of a CSV table: temperature_K, rate_cm3_per_molecule_s[, its error]."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        cols = [c.strip() for c in reader.fieldnames or []]
        reader.fieldnames = cols
        if not {"temperature_K", _RATE} <= set(cols):
            raise DataError(f"missing column(s); found {cols}", where=str(path),
                            fix=f"give columns temperature_K, {_RATE} and optionally {_ERR}")
        rows = []
        for row in reader:
            where = f"{path} line {reader.line_num}"
            try:
                r = {"temperature_K": float(row["temperature_K"]), _RATE: float(row[_RATE]),
                     _ERR: float(row[_ERR]) if (row.get(_ERR) or "").strip() else None}
            except (TypeError, ValueError):
                raise DataError(f"not a number in {dict(row)}", where=where,
                                fix="give numbers in every row") from None
            rows.append({**r, "channels": {}, "n_reactive": 0})
    return rows


def _results(path: Path) -> list[dict]:
    """QCT results of one input: a qct.json (or its folder, or `qct --json` output), a JSON
    list of {temperature_K, rate...} rows, or a CSV table."""
    p = path / "qct.json" if path.is_dir() else path
    if not p.is_file():
        raise DataError("file not found", where=str(p),
                        fix="give qct.json files (or `qct --out` folders) or a CSV k(T) table")
    if p.suffix.lower() == ".csv":
        return _csv_rows(p)
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"not JSON ({exc})", where=str(p),
                        fix="give qct.json files or a CSV k(T) table") from None
    items = data if isinstance(data, list) else [data]
    for r in items:
        if not (isinstance(r, dict) and "temperature_K" in r and _RATE in r):
            raise DataError(f"no temperature_K and {_RATE}", where=str(p),
                            fix="give the qct.json of `mlp-atmospheric qct`, or rows with "
                                f"temperature_K and {_RATE}")
        r.setdefault("channels", {})
        r.setdefault("n_reactive", 0)
    return items


@app.command("rates", epilog=example(
    "mlp-atmospheric rates qct_250K/ qct_298K/ qct_350K/ qct_400K/ --reactants OH,C5H8 "
    "--out kinetics/ --json"))
@param_flags(outdir="--out")
def rates(
    inputs: Annotated[list[Path], typer.Argument(
        metavar="INPUT", show_default=False,
        help="qct.json files (or `qct --out` folders), one per temperature; or a CSV/JSON k(T) "
             f"table: temperature_K, {_RATE}[, {_ERR}]")],
    out: opt.out_option("output folder: kinetics.json, rates.csv, mechanism.kpp, arrhenius.png",
                        required=False) = Path("kinetics"),
    reactants: str | None = typer.Option(
        None, "--reactants", metavar="A,B",
        help="reactant names for the mechanism (default: those the QCT runs found)"),
    modified: bool = typer.Option(False, "--modified",
                                  help="fit k = A (T/300)^n exp(-Ea/RT) (needs 3+ temperatures)"),
    json_out: opt.Json = False,
) -> None:
    """Arrhenius A and Ea (kcal/mol, eV) of the total rate and of each channel, branching
    against T, and one KPP/MCM equation per channel."""
    from atmospheric.kinetics import export_kinetics

    results = [r for p in inputs for r in _results(p)]
    names = [s.strip() for s in reactants.split(",") if s.strip()] if reactants else \
        [s.strip() for s in str(results[0].get("reactants", "")).split(" + ") if s.strip()]
    if not names:
        raise ConfigError("no reactant names for the mechanism (a k(T) table does not say)",
                          where="--reactants", fix="give them, e.g. --reactants OH,C5H8")
    try:
        res = export_kinetics(out, results, names, modified=modified)
    except MlpCasesError as exc:
        if exc.where in ("results", "temperature_K", "rates", "rate_errors"):
            exc.where = ", ".join(str(p) for p in inputs)  # the data, not a Python parameter
        raise
    if json_out:
        emit_json(res)
        return
    t = res["total"]
    err = t["Ea_err_kcal_per_mol"]
    print(f"A = {t['A_cm3_per_molecule_s']:.3e} cm³/molecule/s, Ea = "
          f"{t['Ea_kcal_per_mol']:.3f} ± {'n/a' if err is None else format(err, '.3f')} kcal/mol"
          + (f", n = {t['n']:.2f}" if modified else ""))
    print("\n".join(res["mechanism"]))
    print(f"outputs: {out}/")


def main() -> None:
    sys.exit(run_app(app))


if __name__ == "__main__":
    main()
