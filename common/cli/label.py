r"""``mlp-cases label``: label structures with a reference calculator, cached in an ASE db.

    mlp-cases label structs.extxyz --calc xtb --db labels.db
    mlp-cases label mols.extxyz --calc pyscf --method b3lyp --basis def2-svp --db labels.db
    mlp-cases label slab.extxyz --calc xtb --method GFN1-xTB --electronic-temperature-K 2000 \
        --db labels.db --cluster slurm.yaml

A rerun with the same inputs labels only the structures the database does not hold yet.
"""

from __future__ import annotations

from pathlib import Path

import typer

from common.cli import options as opt
from common.cli.app import emit_json, example
from common.errors import MlpCasesError

EXAMPLE = example("mlp-cases label samples.extxyz --calc xtb --method GFN1-xTB --db labels.db")


def label(
    structures: Path = typer.Argument(..., help="structures to label (extxyz, ASE db, traj, ...)",
                                      metavar="STRUCTURES", show_default=False),
    calc: str = typer.Option(
        ..., "--calc", metavar="NAME|MODULE:ATTR",
        help="emt, xtb, pyscf, or module:attr (your ASE calculator)"
    ),
    db: str = typer.Option(
        ..., "--db", metavar="FILE|URL",
        help="label database: SQLite file (e.g. labels.db), or a postgresql:// URL (needs the "
        "psycopg2 driver, not installed by scripts/install_env.sh); checked before labelling",
    ),
    method: str | None = typer.Option(
        None,
        "--method",
        help="xtb: GFN2-xTB (default) or GFN1-xTB; pyscf: hf, pbe (default), b3lyp, ...",
    ),
    charge: int | None = typer.Option(
        None, "--charge", metavar="E", help="total charge in e (atoms.info['charge'] wins)"
    ),
    multiplicity: int | None = typer.Option(
        None, "--multiplicity", min=1, metavar="2S+1",
        help="spin multiplicity 2S+1 (atoms.info['multiplicity'] wins)",
    ),
    basis: str | None = typer.Option(
        None, "--basis", metavar="NAME", help="pyscf basis (default def2-svp)"
    ),
    electronic_temperature_K: float | None = typer.Option(
        None, "--electronic-temperature-K", min=0.0, metavar="K",
        help="xtb electronic temperature in K (default 300)",
    ),
    workers: int | None = typer.Option(
        None, "--workers", min=1, metavar="N", help="worker processes (default: one per CPU core)"
    ),
    cluster: str | None = typer.Option(
        None,
        "--cluster",
        metavar="SPEC",
        help="'serial', a scheduler address tcp://host:port, or a dask-jobqueue YAML file",
    ),
    json_out: opt.Json = False,
) -> None:
    """Label every structure (energy, forces, stress) with a reference calculator.

    A progress bar shows on stderr (in a terminal); a rerun labels only what the database
    lacks.
    """
    from common.data.io import read_structures
    from common.labels import LabellerSpec, label_structures

    options = {
        "method": (method, "--method"),
        "charge": (charge, "--charge"),
        "multiplicity": (multiplicity, "--multiplicity"),
        "basis": (basis, "--basis"),
        "electronic_temperature_K": (electronic_temperature_K, "--electronic-temperature-K"),
    }
    params = {k: v for k, (v, _) in options.items() if v is not None}
    try:
        spec = LabellerSpec(calc, params).normalized()
    except MlpCasesError as exc:
        _rename_option(exc, options)
        raise
    frames = read_structures(structures)
    report = label_structures(
        frames, spec, db, cluster=cluster, n_workers=workers, progress=True, source=str(structures)
    )
    summary = {
        "structures": str(structures),
        "labeller": spec.label(),
        "n_total": report.n_total,
        "n_unique": report.n_unique,
        "n_cached": report.n_cached,
        "n_labelled": report.n_labelled,
        "n_failed": report.n_failed,
        "failures": {str(k): v for k, v in report.failures.items()},
        "db": report.db,
    }
    if json_out:
        emit_json(summary)
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"labelled {structures} with {spec.label()}")
        table.add_column("structures", justify="right")
        table.add_column("unique", justify="right")
        table.add_column("cached", justify="right")
        table.add_column("labelled", justify="right")
        table.add_column("failed", justify="right")
        table.add_column("database")
        table.add_row(
            str(report.n_total),
            str(report.n_unique),
            str(report.n_cached),
            str(report.n_labelled),
            str(report.n_failed),
            report.db,
        )
        Console().print(table)
    if report.failures:
        shown = list(report.failures.values())[:3]
        more = len(report.failures) - len(shown)
        frames_txt = ", ".join(str(i) for i in report.failures)
        raise MlpCasesError(
            f"{report.n_failed} of {report.n_total} structures failed (frames {frames_txt}): "
            + "; ".join(shown)
            + (f"; and {more} more" if more > 0 else ""),
            where=str(structures),
            fix="see each message; the others are stored, and rerunning the same command "
            "retries only the failed frames",
        )


def _rename_option(exc: MlpCasesError, options: dict[str, tuple[object, str]]) -> None:
    """Name the CLI option (``--basis``) instead of the parameter (``'basis'``) in the error."""
    for name, (_, flag) in options.items():
        if exc.what.startswith(f"parameter {name!r}"):
            exc.where = flag
            exc.args = (exc.one_line(),)
            return
