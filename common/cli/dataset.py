"""``mlp-cases dataset``: inspect, validate, split and convert labelled data files."""

from __future__ import annotations

from pathlib import Path

import typer

from common.cli.app import emit_json, new_app
from common.errors import ConfigError

app = new_app("Labelled data: inspect, validate, split and convert (extxyz, ASE db, deepmd...).")

_FILE_HELP = "any ASE-readable file (extxyz, OUTCAR, vasprun.xml, .db...) or a deepmd/npy folder"


def _parse_list(text: str | None, what: str) -> list[str] | None:
    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise ConfigError(f"empty {what} list", where=f"--{what}",
                          fix="give comma-separated values, e.g. Cu,Pt")
    return items


def _parse_fractions(text: str) -> tuple[float, float, float]:
    try:
        vals = tuple(float(t) for t in text.split(","))
    except ValueError:
        vals = ()
    if len(vals) != 3:
        raise ConfigError(f"cannot read fractions {text!r}", where="--fractions",
                          fix="give three comma-separated numbers summing to 1, e.g. 0.8,0.1,0.1")
    return vals  # type: ignore[return-value]


@app.command()
def inspect(
    file: Path = typer.Argument(..., help=_FILE_HELP),
    json_out: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Frames, atoms, elements, energy and force statistics, reference atomic energies."""
    from common.data import Dataset

    st = Dataset.read(file).stats()
    if json_out:
        emit_json(st)
        return
    from rich.console import Console
    from rich.table import Table

    def num(x: float | None, fmt: str = ".4g") -> str:
        return "n/a" if x is None else format(x, fmt)

    table = Table(title=f"{file}")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_row("frames", str(st["n_frames"]))
    table.add_row("atoms (total)", str(st["n_atoms"]))
    table.add_row("elements", ", ".join(f"{e} ({st['element_counts'][e]})"
                                        for e in st["elements"]))
    table.add_row("frames with energy / forces / stress",
                  f"{st['n_energy']} / {st['n_forces']} / {st['n_stress']}")
    epa = st["energy_per_atom_eV"]
    if epa:
        table.add_row("energy per atom mean ± std (eV)", f"{epa['mean']:.5g} ± {epa['std']:.3g}")
        table.add_row("energy per atom min .. max (eV)", f"{epa['min']:.5g} .. {epa['max']:.5g}")
    table.add_row("force rms component (eV/Å)", num(st["force_rms_eV_A"]))
    table.add_row("force max |F| (eV/Å)", num(st["force_max_eV_A"]))
    for e, v in st["reference_energies_eV"].items():
        table.add_row(f"reference energy {e} (eV)", f"{v:.6g}")
    table.add_row("reference fit rmse (eV/atom)", num(st["reference_rmse_eV_per_atom"]))
    Console().print(table)


@app.command()
def validate(
    file: Path = typer.Argument(..., help=_FILE_HELP),
    max_force: float = typer.Option(50.0, "--max-force", help="largest allowed |F|, eV/Å"),
    min_distance: float = typer.Option(0.5, "--min-distance",
                                       help="smallest allowed interatomic distance, Å"),
    elements: str | None = typer.Option(None, "--elements",
                                        help="allowed elements, comma-separated (e.g. Cu,Pt)"),
    require: str = typer.Option("energy,forces", "--require",
                                help="labels every frame needs (energy,forces,stress)"),
    json_out: bool = typer.Option(False, "--json", help="print every problem as JSON"),
) -> None:
    """Check labels, NaN/inf, absurd forces, overlapping atoms, duplicates, unknown elements.

    On failure, one `error:` line names the first bad frame (exit 2); with --json every
    problem is also printed as JSON on stdout first.
    """
    from common.data import Dataset
    from common.data.dataset import summarize_problems
    from common.errors import DataError

    ds = Dataset.read(file)
    found = ds.problems(max_force_eV_A=max_force, min_distance_A=min_distance,
                        elements=_parse_list(elements, "elements"),
                        require=_parse_list(require, "require") or ())
    if json_out:
        emit_json({"file": str(file), "ok": not found, "n_frames": len(ds),
                   "n_bad_frames": len({p.frame for p in found}),
                   "problems": [p.as_dict() for p in found]})
    if found:
        what, kw = summarize_problems(found, len(ds))
        raise DataError(what, **kw)
    if not json_out:
        typer.echo(f"{file}: {len(ds)} frames ok")


@app.command()
def split(
    file: Path = typer.Argument(..., help=_FILE_HELP),
    out: Path = typer.Option(..., "--out", help="folder for train/valid/test.extxyz"),
    fractions: str = typer.Option("0.8,0.1,0.1", "--fractions",
                                  help="train,valid,test fractions summing to 1"),
    seed: int = typer.Option(0, "--seed", help="random seed of the split"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace existing split files"),
    json_out: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Seeded random train/valid/test split written as extxyz files (empty parts skipped)."""
    from common.data import Dataset
    from common.data.dataset import check_overwrite

    ds = Dataset.read(file)
    train, valid, test = ds.split(_parse_fractions(fractions), seed)
    parts = {"train": train, "valid": valid, "test": test}
    paths = {name: out / f"{name}.extxyz" for name in parts}
    for name, p in paths.items():  # check all before writing any
        if len(parts[name]):
            check_overwrite(p, overwrite)
    written: dict[str, dict] = {}
    for name, part in parts.items():
        if len(part):
            part.write(paths[name], overwrite=overwrite)
            written[name] = {"path": str(paths[name]), "n_frames": len(part)}
        else:
            written[name] = {"path": None, "n_frames": 0}
    if json_out:
        emit_json({"file": str(file), "seed": seed, "splits": written})
    else:
        for name, w in written.items():
            typer.echo(f"{name}: {w['n_frames']} frames" + (f" -> {w['path']}" if w["path"]
                                                           else " (not written)"))


@app.command()
def convert(
    file: Path = typer.Argument(..., help=_FILE_HELP),
    to: str = typer.Option(..., "--to", help="extxyz | deepmd | schnetpack | db"),
    out: Path = typer.Option(..., "--out", help="output file (.extxyz, .db) or folder (deepmd)"),
    type_map: str | None = typer.Option(None, "--type-map",
                                        help="deepmd only: element order, e.g. Cu,Pt"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing output"),
    json_out: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Write the data in a framework's own format, with that framework's own writer.

    extxyz: REF_energy/REF_forces/REF_stress keys for MACE and NequIP; deepmd: deepmd/npy
    system folders via dpdata; schnetpack: ASEAtomsData database; db: ASE database.
    """
    from common.data import FORMATS, Dataset, export

    if to not in FORMATS:
        raise ConfigError(f"unknown format {to!r}", where="--to",
                          fix=f"choose one of {', '.join(FORMATS)}")
    opts: dict = {"overwrite": overwrite}
    if type_map is not None:
        if to != "deepmd":
            raise ConfigError("--type-map applies to --to deepmd only", where="--type-map",
                              fix="drop --type-map")
        opts["type_map"] = _parse_list(type_map, "type-map")
    ds = Dataset.read(file)
    path = export(ds, to, out, **opts)
    if json_out:
        emit_json({"file": str(file), "format": to, "out": str(path), "n_frames": len(ds)})
    else:
        typer.echo(f"{len(ds)} frames -> {path} ({to})")
