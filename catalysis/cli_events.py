"""``mlp-catalysis events``: reaction events, C-C coupling pathways and lifetimes."""

from __future__ import annotations

from pathlib import Path

import typer

from common.cli import options as opt
from common.cli.app import emit_json, example

__all__ = ["EXAMPLE", "events"]

EXAMPLE = example("mlp-catalysis events md/traj_*.extxyz --json --plot timeline.png "
                  "> events.json")


def events(
    trajectories: list[Path] = typer.Argument(
        ..., metavar="TRAJECTORIES...", show_default=False,
        help="MD trajectories (extxyz with info time_fs, ASE .traj, ...); pooled"),
    dt_fs: float | None = typer.Option(
        None, "--dt-fs", callback=opt.positive, metavar="FS",
        help="time between saved frames, fs (the MD --timestep-fs times --traj-every); "
             "default: from the file"),
    metal: str = typer.Option("Cu", "--metal", metavar="LIST",
                              help="slab element(s), e.g. Cu or Cu,Ag"),
    min_persistence_fs: float = typer.Option(
        50.0, "--min-persistence-fs", min=0.0, metavar="FS",
        help="a bond or surface contact change counts if it lasts this long, fs (0 = all)"),
    cutoff: list[str] = typer.Option(
        [], "--cutoff", metavar="PAIR=R_ON,R_OFF",
        help="override cutoffs in Å, repeatable: --cutoff C-C=1.8,2.2 --cutoff C-Cu=2.3,2.6"),
    plot: Path | None = typer.Option(None, "--plot", metavar="FILE",
                                     help="save an event timeline figure (.png, .pdf, ...)"),
    json_out: opt.Json = False,
) -> None:
    """Find reactions and classify C-C coupling pathways, with Wilson 95 % intervals.

    Species are bonded clusters, *X = on the surface; C-C coupling is classified as A
    (*CO+*CO), B (*CO+*CHO), C (*CO+*CH2O) or other.
    """
    from catalysis.bonds import bond_criteria, surface_criteria
    from catalysis.events import analyze_trajectories, parse_metals
    from common.events import parse_cutoff_overrides

    metals = parse_metals(metal)
    overrides = parse_cutoff_overrides(cutoff, "--cutoff")
    surf = {k: v for k, v in overrides.items() if k[0] in metals or k[1] in metals}
    bond = {k: v for k, v in overrides.items() if k not in surf}
    result = analyze_trajectories(
        trajectories, dt_fs=dt_fs, criteria=bond_criteria(bond, where="--cutoff"),
        min_persistence_fs=min_persistence_fs, metal=metals,
        surface=surface_criteria(surf, where="--cutoff"))
    if plot is not None:
        from common.fileio import atomic_path

        with atomic_path(plot, keep_suffix=True) as tmp:
            result.plot(tmp)
    data = result.to_dict()
    if json_out:
        emit_json(data)
        return
    _print_tables(data, plot)


def _fmt_ci(ci: list) -> str:
    if ci[0] is None:
        return "n/a"
    return f"[{ci[0]:.3g}, {ci[1]:.3g}]"


def _print_tables(data: dict, plot: Path | None) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    n_cc = sum(v["count"] for v in data["pathways"].values())
    t = Table(title=f"C-C coupling pathways ({n_cc} events, {data['n_frames']} frames)")
    for c in ("pathway", "count", "fraction", "95 % CI (Wilson)"):
        t.add_column(c)
    for k, v in data["pathways"].items():
        frac = "n/a" if v["fraction"] is None else f"{v['fraction']:.3f}"
        t.add_row(k, str(v["count"]), frac, _fmt_ci(v["ci95"]))
    con.print(t)
    t = Table(title="reaction network (most frequent first)")
    for c in ("reactants", "products", "count"):
        t.add_column(c)
    for e in data["network"][:20]:
        t.add_row(" + ".join(e["reactants"]), " + ".join(e["products"]), str(e["count"]))
    con.print(t)
    t = Table(title="lifetimes (completed; 95 % CI Student t)")
    for c in ("species", "n", "mean (ps)", "95 % CI (ps)"):
        t.add_column(c)
    for k, v in data["lifetimes"].items():
        mean = "n/a" if v["mean_ps"] is None else f"{v['mean_ps']:.4g}"
        t.add_row(k, str(v["n"]), mean, _fmt_ci(v["ci95_ps"]))
    con.print(t)
    if plot is not None:
        con.print(f"timeline figure: {plot}")
