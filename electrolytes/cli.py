"""Command line ``mlp-electrolytes``: EC/DEC + LiPF6 electrolytes with DeePMD.

From a composition to Li+ transport: ``build`` (packmol cells), ``train`` (DeePMD committee), ``md``
(NVT/NPT with any potential), ``active-learn`` (DP-GEN loop, resumable), ``screen`` (the condition
grid on Dask), ``transport`` and ``solvation`` (analyses of trajectories made by any code) and
``case-study``.

Thin layer over the package's modules; the options shared with the other ``mlp-*`` apps
(``--dt-fs``, ``--temperature-K``, ``--temperatures``, ``--steps``, ``--json``...) come from
:mod:`common.cli.options`.
"""

from __future__ import annotations

import math
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from common.cli import options as opt
from common.cli.app import emit_json, example, new_app, run_app, warn
from common.cli.flags import param_flags
from common.errors import ConfigError

app = new_app("mlp-electrolytes: EC/DEC + LiPF6 electrolytes with DeePMD: cells, training, "
              "active learning, MD, screening, and transport and solvation of MD trajectories "
              "(extxyz, ASE traj, HDF5 of mlp-cases md, ...).",
              epilog=example("mlp-electrolytes case-study --scale tiny --out "
                             "runs/electrolytes_tiny"))

class SigmaKind(StrEnum):
    """Which conductivity the Arrhenius fit of σT uses."""

    einstein_helfand = "einstein-helfand"
    nernst_einstein = "nernst-einstein"


_Traj = Annotated[list[Path], typer.Argument(
    metavar="TRAJ", show_default=False,
    help="trajectories with their periodic box (extxyz, ASE .traj, HDF5 of mlp-cases md); "
         "one run each, evenly spaced frames")]


def parse_charges(items: list[str] | None) -> dict[str, float]:
    """``["Li=1", "P=-1"]`` -> {"Li": 1.0, "P": -1.0}; a ConfigError naming ``--charge``."""
    out: dict[str, float] = {}
    for item in items or []:
        el, sep, q = item.partition("=")
        try:
            value = float(q)
        except ValueError:
            value = math.nan
        if not sep or not el.strip() or not math.isfinite(value):
            raise ConfigError(f"bad charge {item!r}", where="--charge",
                              fix="write ELEMENT=CHARGE in e, e.g. --charge Li=1 --charge P=-1")
        out[el.strip()] = value
    return out


def parse_window(text: str) -> tuple[float, float]:
    """``"0.1,0.5"`` -> (0.1, 0.5): fractions 0 <= start < end <= 1 of the run."""
    try:
        f0, f1 = (float(v) for v in text.split(","))
    except ValueError:
        f0 = f1 = math.nan
    if not 0.0 <= f0 < f1 <= 1.0:
        raise ConfigError(f"bad fit window {text!r}", where="--window",
                          fix="give START,END as fractions of the run, 0 <= START < END <= 1, "
                              "e.g. 0.1,0.5")
    return f0, f1


def _temperatures(temperature_K: float | None, temperatures: list[float] | None):
    if (temperature_K is None) == (temperatures is None):
        what = "no temperature given" if temperature_K is None else "two temperature options"
        raise ConfigError(what, where="--temperature-K/--temperatures",
                          fix="give --temperature-K T (every trajectory) or --temperatures "
                              "T1,T2,... (one per trajectory), not both")
    return temperature_K if temperatures is None else temperatures


def _g(x: float | None, fmt: str = ".3g") -> str:
    return "n/a" if x is None else format(x, fmt)


def transport_lines(report: dict) -> list[str]:
    """Return the readable table of a transport report."""
    lines = []
    for run in report["runs"]:
        lines.append(f"{run['trajectory']}  T = {run['temperature_K']:g} K")
        for s, d in run["species"].items():
            lines.append(f"  D({s}) = {_g(d['D_cm2_per_s'])} ± {_g(d['D_err_cm2_per_s'])} "
                         f"cm²/s  ({d['n_atoms']} atoms)")
        c = run["conductivity"]
        if c:
            lines.append(f"  σ Nernst-Einstein  = {_g(c['nernst_einstein_S_per_cm'])} ± "
                         f"{_g(c['nernst_einstein_err_S_per_cm'])} S/cm")
            lines.append(f"  σ Einstein-Helfand = {_g(c['einstein_helfand_S_per_cm'])} ± "
                         f"{_g(c['einstein_helfand_err_S_per_cm'])} S/cm  (Haven ratio "
                         f"{_g(c['haven_ratio'])})")
    arr = report.get("arrhenius")
    if arr:
        lines.append("Arrhenius")
        for s, f in arr["D"].items():
            lines.append(f"  D({s}): Ea = {_g(f['Ea_eV'], '.4f')} ± {_g(f['Ea_err_eV'], '.4f')} "
                         f"eV, D0 = {_g(f['prefactor_cm2_per_s'])} cm²/s")
        if arr.get("conductivity"):
            f = arr["conductivity"]
            lines.append(f"  σT: Ea = {_g(f['Ea_eV'], '.4f')} ± {_g(f['Ea_err_eV'], '.4f')} eV, "
                         f"A = {_g(f['prefactor_S_K_per_cm'])} S K/cm")
    return lines


@app.command("transport", epilog=example(
    "mlp-electrolytes transport md_300K.extxyz md_350K.extxyz md_400K.extxyz --dt-fs 10 \\",
    "    --temperatures 300,350,400 --charge Li=1 --charge P=-1 --plots figs/ --json"))
@param_flags(paths_or_frames="TRAJ", temperatures_K="--temperatures", charges="--charge",
             n_blocks="--blocks", plots_dir="--plots", arrhenius_conductivity="--arrhenius")
def transport(
    traj: _Traj,
    dt_fs: opt.DtFs = None,
    temperature_K: opt.temperature_option(
        "temperature of every trajectory, K (or --temperatures, one per trajectory)") = None,
    temperatures: opt.temperatures_option(
        "one temperature per trajectory, in the same order, K; three or more distinct ones "
        "add an Arrhenius fit") = None,
    charge: list[str] | None = typer.Option(
        None, "--charge", metavar="EL=Q",
        help="charge of an element in e, repeatable: --charge Li=1 --charge P=-1 (P standing "
             "for PF6-); elements without one get a D but no share of the conductivity"),
    species: list[str] | None = typer.Option(
        None, "--species", metavar="EL",
        help="analyse only these elements, repeatable (default: every element)"),
    window: str = typer.Option(
        "0.1,0.5", "--window", metavar="START,END",
        help="MSD fit window as fractions of the run's duration"),
    blocks: int = typer.Option(
        5, "--blocks", min=2, metavar="N",
        help="contiguous blocks for the block errors (collective conductivity)"),
    remove_drift: bool = typer.Option(
        False, "--remove-drift", help="subtract the centre-of-mass drift of the whole system"),
    arrhenius: SigmaKind = typer.Option(
        SigmaKind.einstein_helfand, "--arrhenius", case_sensitive=False,
        help="conductivity the σT Arrhenius fit uses: einstein-helfand (collective) or "
             "nernst-einstein"),
    plots: Path | None = typer.Option(
        None, "--plots", metavar="DIR",
        help="write MSD plots (and Arrhenius plots with 3+ temperatures) into this folder"),
    json_out: opt.Json = False,
) -> None:
    """Compute self-diffusion D, conductivity, Haven ratio and Arrhenius Ea.

    Self-diffusion D per element (MSD by FFT), Nernst-Einstein and Einstein-Helfand conductivity
    with the Haven ratio, and Arrhenius Ea over temperatures.
    """
    from electrolytes.transport import transport_report

    temps = _temperatures(temperature_K, temperatures)
    report, notes = transport_report(
        [str(p) for p in traj], temps, parse_charges(charge), dt_fs,
        window=parse_window(window), n_blocks=blocks, species=species or None,
        remove_drift=remove_drift, arrhenius_conductivity=arrhenius.name, plots_dir=plots)
    for note in notes:
        warn(note)
    if json_out:
        emit_json(report)
    else:
        print("\n".join(transport_lines(report)))


def _frames_and_dt(path: Path, dt_fs: float | None):
    """Return the frames of ``path`` and the time step to use.

    The time step is ``--dt-fs``, else the file's own when the frames carry no times.
    """
    from common.trajectory import load_trajectory

    frames, file_dt = load_trajectory(path)
    if dt_fs is None and file_dt and not any(k in frames[0].info for k in ("time_fs", "time")):
        dt_fs = file_dt
    return frames, dt_fs


def solvation_lines(d: dict) -> list[str]:
    """Return the readable lines of a solvation report."""
    lines = [f"{d['center']}: first-shell cutoffs "
             + ", ".join(f"{e} {_g(r, '.2f')} Å" for e, r in d["cutoffs_A"].items()),
             "coordination: " + ", ".join(f"{e} {_g(n, '.2f')}"
                                          for e, n in d["coordination"].items())]
    lines += [f"  {name}: {frac:.3f}" for name, frac in list(d["compositions"].items())[:10]]
    lines += [f"residence time {m}: {_g(t)} ps" for m, t in d["residence_times_ps"].items()]
    return lines


@app.command("solvation", epilog=example(
    "mlp-electrolytes solvation md_300K.extxyz --center Li --dt-fs 10 --plot rdf.png --json"))
@param_flags(ligands="--ligand", frames="TRAJ")
def solvation(
    traj: Annotated[Path, typer.Argument(
        metavar="TRAJ", show_default=False,
        help="periodic trajectory (extxyz, ASE .traj, HDF5 of mlp-cases md)")],
    center: str = typer.Option("Li", "--center", metavar="EL", help="cation element"),
    ligand: list[str] | None = typer.Option(
        None, "--ligand", metavar="EL",
        help="coordinating element, repeatable (default: O and F, those present)"),
    dt_fs: opt.DtFs = None,
    r_max_A: float = typer.Option(6.0, "--r-max-A", callback=opt.positive, metavar="A",
                                  help="RDF range, Å (kept under half the cell width)"),
    plot: Path | None = typer.Option(None, "--plot", metavar="FILE",
                                     help="save the RDF figure (.png, .pdf, ...)"),
    json_out: opt.Json = False,
) -> None:
    """Analyse the solvation shells of the cations.

    RDFs, first-shell cutoffs, coordination numbers, shell compositions and residence times of the
    cations.
    """
    from electrolytes.solvation import plot_rdf, solvation_shells

    frames, dt = _frames_and_dt(traj, dt_fs)
    res = solvation_shells(frames, center, ligand or None, dt_fs=dt, r_max_A=r_max_A,
                           where=str(traj))
    for note in dict.fromkeys(res.notes):
        warn(note)
    if plot is not None:
        plot_rdf(res, plot)
    if json_out:
        emit_json(res.to_dict())
    else:
        print("\n".join(solvation_lines(res.to_dict())))


from electrolytes.cli_run import register  # noqa: E402  (commands of the pipeline)

register(app)


def main() -> None:
    """Run the ``mlp-electrolytes`` command line."""
    sys.exit(run_app(app))


if __name__ == "__main__":
    main()
