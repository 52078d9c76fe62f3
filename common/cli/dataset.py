"""``mlp-cases dataset``: inspect, validate, split and convert labelled data files."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer

from common.cli import options as opt
from common.cli.app import emit_json, example, new_app
from common.cli.options import parse_fractions
from common.errors import ConfigError

app = new_app("Labelled data: inspect, validate, split and convert (extxyz, ASE db, deepmd...).",
              epilog=example("mlp-cases dataset validate labels.extxyz"))

_FILE_HELP = "any ASE-readable file (extxyz, OUTCAR, vasprun.xml, .db...) or a deepmd/npy folder"
_File = Annotated[Path, typer.Argument(help=_FILE_HELP, metavar="FILE", show_default=False)]
_REQUIRE_HELP = "labels every frame needs (energy,forces,stress)"
_SplitOut = opt.out_option("folder for train/valid/test.extxyz")
_SplitSeed = opt.seed_option("random seed of the split")
_ConvertOut = opt.out_option("output file (.extxyz, .db) or folder (deepmd)")
_To = Annotated[str, typer.Option("--to", metavar="FORMAT",
                                  help="extxyz | deepmd | schnetpack | db")]


def _parse_list(text: str | None, what: str) -> list[str] | None:
    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise ConfigError(f"empty {what} list", where=f"--{what}",
                          fix="give comma-separated values, e.g. Cu,Pt")
    return items


@app.command(epilog=example("mlp-cases dataset inspect labels.db --json"))
def inspect(file: _File, json_out: opt.Json = False) -> None:
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


@app.command(epilog=example("mlp-cases dataset validate labels.extxyz --max-force 30 --json"))
def validate(
    file: _File,
    max_force: float = typer.Option(50.0, "--max-force", min=0.0, metavar="EV/A",
                                    help="largest allowed |F|, eV/Å"),
    min_distance: float = typer.Option(0.5, "--min-distance", min=0.0, metavar="A",
                                       help="smallest allowed interatomic distance, Å"),
    elements: str | None = typer.Option(None, "--elements", metavar="LIST",
                                        help="allowed elements, comma-separated (e.g. Cu,Pt)"),
    require: str = typer.Option("energy,forces", "--require", metavar="LIST",
                                help=_REQUIRE_HELP),
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


@app.command(epilog=example("mlp-cases dataset split labels.extxyz --out data/ "
                            "--fractions 0.8,0.1,0.1 --seed 1"))
def split(
    file: _File,
    out: _SplitOut,
    fractions: opt.Fractions = "0.8,0.1,0.1",
    seed: _SplitSeed = 0,
    require: str = typer.Option("energy,forces", "--require", metavar="LIST",
                                help=_REQUIRE_HELP + "; checked, with NaN/inf, before writing "
                                "('none': split unlabelled structures)"),
    overwrite: opt.Overwrite = False,
    json_out: opt.Json = False,
) -> None:
    """Seeded random train/valid/test split written as extxyz files (empty parts skipped).

    Every frame is checked first (the labels in --require, no NaN/inf), as convert does.
    """
    from common.data import Dataset
    from common.data.dataset import check_overwrite, summarize_problems
    from common.errors import DataError
    from common.fileio import atomic_path

    ds = Dataset.read(file)
    needed = [] if require.strip().lower() == "none" else _parse_list(require, "require")
    found = ds.problems(require=needed or (), checks=("labels", "finite"))
    if found:
        what, kw = summarize_problems(found, len(ds))
        raise DataError(what, **kw)
    train, valid, test = ds.split(parse_fractions(fractions), seed)
    parts = {"train": train, "valid": valid, "test": test}
    paths = {name: out / f"{name}.extxyz" for name in parts}
    for name, p in paths.items():  # check all before writing any
        if len(parts[name]):
            check_overwrite(p, overwrite)
    written: dict[str, dict] = {}
    with contextlib.ExitStack() as stack:  # all parts are renamed into place together
        for name, part in parts.items():
            if len(part):
                tmp = stack.enter_context(atomic_path(paths[name]))
                part.write(tmp, overwrite=True, format="extxyz")
                written[name] = {"path": str(paths[name]), "n_frames": len(part)}
            else:
                written[name] = {"path": None, "n_frames": 0}
    if json_out:
        emit_json({"file": str(file), "seed": seed, "splits": written})
    else:
        for name, w in written.items():
            typer.echo(f"{name}: {w['n_frames']} frames" + (f" -> {w['path']}" if w["path"]
                                                           else " (not written)"))


@app.command(epilog=example("mlp-cases dataset convert labels.db --to deepmd --out dp/ "
                            "--type-map Cu,O,H"))
def convert(
    file: _File,
    to: _To,
    out: _ConvertOut,
    type_map: str | None = typer.Option(None, "--type-map", metavar="LIST",
                                        help="deepmd only: element order, e.g. Cu,Pt"),
    overwrite: opt.Overwrite = False,
    json_out: opt.Json = False,
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
