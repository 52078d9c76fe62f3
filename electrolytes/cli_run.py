"""The pipeline commands of ``mlp-electrolytes``.

They are build, train, md, active-learn, screen and case-study (the analyses ``transport`` and
``solvation`` live in :mod:`electrolytes.cli`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from common.cli import options as opt
from common.cli.app import emit_json, example
from common.cli.flags import param_flags
from common.errors import ConfigError

_Structures = opt.structures_argument("cells to start from (extxyz, ASE db, traj, ...)")
_Data = Annotated[Path, typer.Argument(
    metavar="DATA", show_default=False,
    help="labelled structures, energy and forces (extxyz or ASE db)")]
_Temps = opt.temperatures_option("temperatures, K, comma-separated")


def _parse_counts(text: str) -> dict[str, int]:
    """``"EC=4,DEC=2,Li=1,PF6=1"`` -> {"EC": 4, ...}."""
    out: dict[str, int] = {}
    for item in text.split(","):
        name, sep, n = item.partition("=")
        try:
            value = int(n)
        except ValueError:
            value = -1
        if not sep or not name.strip() or value < 0:
            raise ConfigError(f"bad molecule count {item!r}", where="--counts",
                              fix="write NAME=N,..., e.g. EC=4,DEC=2,Li=1,PF6=1")
        out[name.strip()] = value
    return out


@param_flags(n_atoms="--atoms", density_g_cm3="--density-g-cm3", counts="--counts",
             composition="--solvents", **{"composition/counts": "--atoms/--counts"})
def build(
    out: opt.out_option("extxyz file of the cell (replaced whole, never half-written)"),
    solvents: str = typer.Option(
        "EC:DEC=1:1", "--solvents", metavar="NAMES=RATIOS",
        help="solvents and their ratio, e.g. EC:DEC=1:2 (names: EC, DEC, FEC, DMC, EMC, PC, "
             "or SMILES)"),
    by: str = typer.Option("volume", "--by", metavar="volume|mole",
                           help="the solvent ratio is by volume or by mole"),
    salt_M: float = typer.Option(1.0, "--salt-M", min=0.0, metavar="MOL/L",
                                 help="LiPF6 molarity, mol per litre of solution"),
    additive_wt_pct: float = typer.Option(
        0.0, "--fec-wt-pct", min=0.0, max=99.9, metavar="PCT",
        help="additive (FEC) weight percent of the whole electrolyte"),
    atoms: int | None = typer.Option(None, "--atoms", min=1, metavar="N",
                                     help="about this many atoms (whole molecules)"),
    counts: str | None = typer.Option(
        None, "--counts", metavar="NAME=N,...",
        help="molecule counts instead of --atoms, e.g. EC=4,DEC=2,Li=1,PF6=1"),
    density: float | None = typer.Option(
        None, "--density-g-cm3", callback=opt.positive, metavar="G/CM3",
        help="target density (default: ideal mixing + 63 cm³/mol for LiPF6)"),
    tolerance: float = typer.Option(2.0, "--tolerance-A", callback=opt.positive,
                                    metavar="A", help="packmol's closest approach, Å"),
    seed: opt.Seed = 0,
    json_out: opt.Json = False,
) -> None:
    """Pack a periodic electrolyte cell from a composition with packmol.

    Molecules are built from SMILES with RDKit; PF6- is octahedral.
    """
    from common.fileio import atomic_write_atoms
    from electrolytes.systems import liquid_cell, parse_composition

    if (atoms is None) == (counts is None):
        raise ConfigError("give either --atoms or --counts", where="--atoms/--counts",
                          fix="e.g. --atoms 84, or --counts EC=4,DEC=2,Li=1,PF6=1")
    comp = None
    if counts is None:
        comp = parse_composition(solvents, ratio_by=by, salt_M=salt_M,
                                 additive_wt_pct=additive_wt_pct)
    cell = liquid_cell(comp, n_atoms=atoms, counts=_parse_counts(counts) if counts else None,
                       density_g_cm3=density, seed=seed, tolerance_A=tolerance)
    info = {"out": str(out), "n_atoms": len(cell), "formula": cell.get_chemical_formula(),
            "counts": cell.info["counts"], "edge_A": float(cell.cell.lengths()[0]),
            "density_g_cm3": cell.info["density_g_cm3"], "salt_M": cell.info["salt_M"],
            "composition": cell.info.get("composition")}
    cell.info = {k: v for k, v in cell.info.items() if k != "counts"}
    cell.info["counts"] = ",".join(f"{k}={n}" for k, n in info["counts"].items())
    atomic_write_atoms(out, cell, format="extxyz")
    if json_out:
        emit_json(info)
    else:
        print(f"{len(cell)} atoms ({info['counts']}), {info['edge_A']:.2f} Å cube, "
              f"{info['density_g_cm3']:.3f} g/cm³, {info['salt_M']:.2f} M LiPF6 -> {out}")


@param_flags(n_models="--committee", workdir="--out")
def train(
    data: _Data,
    out: opt.out_option("model folder (a committee folder with member_k/ for --committee "
                        "> 1); it appears only when training has finished"),
    config: str = typer.Option("tiny", "--config", metavar="NAME|FILE",
                               help="tiny, small (~20 min per model), paper "
                                    "(the seed's se_e2_a) or a JSON file of DeePMD settings"),
    committee: int = typer.Option(
        4, "--committee", min=1, metavar="N",
        help="models with seeds seed..seed+N-1 (DP-GEN's 4); their force spread drives "
             "active learning"),
    fractions: opt.Fractions = "0.8,0.1,0.1",
    seed: opt.Seed = 0,
    device: opt.Device = "cpu",
    overwrite: opt.Overwrite = False,
    json_out: opt.Json = False,
) -> None:
    """Train DeePMD (deepmd-kit's own PyTorch trainer) on a seeded train/valid/test split."""
    from common.cli.training import train_model
    from electrolytes.model import DeepMDAdapter, load_config

    train_model(DeepMDAdapter, load_config, data=data, out=out, config=config,
                committee=committee, fractions=fractions, seed=seed, device=device,
                overwrite=overwrite, json_out=json_out)


def md(
    structures: _Structures,
    potential: opt.Potential,
    out: opt.out_option("output folder: new, or the run to continue with --restart"),
    param: opt.Param = None,
    ensemble: opt.EnsembleOpt = opt.Ensemble.nvt,
    temperature_K: opt.TemperatureK = 300.0,
    temperatures: opt.temperatures_option(
        "one temperature per structure, K (instead of --temperature-K)") = None,
    pressure_bar: opt.PressureBar = None,
    barostat: opt.BarostatOpt = opt.Barostat.isotropic,
    barostat_tau_ps: opt.BarostatTauPs = 1.0,
    timestep_fs: Annotated[float, typer.Option(
        "--timestep-fs", callback=opt.positive, metavar="FS",
        help="MD time step, fs (0.5 here, not 1: the solvents carry H)")] = 0.5,
    friction_per_ps: opt.FrictionPerPs = 1.0,
    steps: opt.Steps = 1000,
    replicas: opt.Replicas = 1,
    traj_every: opt.TrajEvery = 10,
    flag_deviation: float | None = typer.Option(
        None, "--flag-deviation-eV-A", min=0.0, metavar="EV/A",
        help="committee: write frames whose max force deviation exceeds this to "
             "flagged_frames.extxyz"),
    seed: opt.seed_option("random seed; replica r uses seed + r") = 0,
    device: opt.Device = "cpu",
    batch_size: opt.BatchSize = "auto",
    traj_format: opt.TrajFormatOpt = opt.TrajFormat.extxyz,
    checkpoint_every: opt.CheckpointEvery = 0,
    restart: opt.Restart = False,
    on_blowup: opt.OnBlowupOpt = opt.OnBlowup.stop,
    json_out: opt.Json = False,
) -> None:
    """Batched NVT or NPT MD with a DeePMD model or committee folder, or any potential."""
    from common.cli.md import blowup_line
    from common.data.io import read_structures
    from common.md.runner import run_md
    from common.potential.registry import make_potential

    frames = read_structures(structures)
    temps = temperature_K if temperatures is None else temperatures
    pot = make_potential(potential, opt.parse_params(param), device=device)
    npt = {}
    if ensemble == opt.Ensemble.npt or pressure_bar is not None:
        npt = {"pressure_bar": pressure_bar, "barostat": barostat.value,
               "barostat_tau_ps": barostat_tau_ps}
    summary = run_md(frames, pot, out, ensemble=ensemble.value, temperature_K=temps,
                     friction_per_ps=friction_per_ps, timestep_fs=timestep_fs, steps=steps,
                     replicas=replicas, seed=seed, device=device, batch_size=batch_size,
                     traj_every=traj_every, traj_format=traj_format.value,
                     checkpoint_every=checkpoint_every or steps, restart=restart,
                     flag_deviation_eV_A=flag_deviation, on_blowup=on_blowup.runner_value,
                     progress=not json_out, potential_label=potential, **npt)
    if json_out:
        emit_json(summary)
    else:
        mean_t = summary.get("mean_temperature_K")
        line = (f"{summary['replicas']} systems, batch size {summary['batch_size']}, "
                f"{summary['replica_steps_per_s']:.1f} replica-steps/s, mean T "
                f"{'n/a' if mean_t is None else format(mean_t, '.1f')} K")
        if summary.get("mean_density_g_per_cm3") is not None:
            line += f", mean density {summary['mean_density_g_per_cm3']:.3f} g/cm³"
        print(f"{line} -> {out}")
        blown = blowup_line(summary)
        if blown:
            print(blown)


@param_flags(temperatures_K="--temperatures", trust_lo_eV_A="--trust-lo-eV-A",
             trust_hi_eV_A="--trust-hi-eV-A", max_new="--max-new",
             accurate_fraction="--accurate-fraction", committee_size="--committee",
             md_steps="--steps", frame_every="--frame-every", iterations="--iterations",
             db="--db", deepmd_config="--config")
def active_learn(
    structures: _Structures,
    data: _Data,
    out: opt.out_option("work folder: new, or the run to continue (same settings)"),
    temperatures: opt.temperatures_option(
        "exploration temperatures, K (every start cell at each)") = "300,400",
    iterations: int = typer.Option(2, "--iterations", min=0, metavar="N",
                                   help="explorations at most (then a last training)"),
    steps: int = typer.Option(500, "--steps", min=1, metavar="N",
                              help="MD steps of each exploration"),
    timestep_fs: Annotated[float, typer.Option(
        "--timestep-fs", callback=opt.positive, metavar="FS",
        help="MD time step, fs (0.5: the solvents carry H)")] = 0.5,
    friction_per_ps: opt.FrictionPerPs = 1.0,
    pressure_bar: opt.PressureBar = None,
    frame_every: int = typer.Option(10, "--frame-every", min=1, metavar="N",
                                    help="measure the committee deviation every N steps"),
    trust_lo: float = typer.Option(0.3, "--trust-lo-eV-A", min=0.0, metavar="EV/A",
                                   help="below: the committee agrees (accurate)"),
    trust_hi: float = typer.Option(3.0, "--trust-hi-eV-A", min=0.0, metavar="EV/A",
                                   help="at or above: likely unphysical (failed)"),
    max_new: int = typer.Option(20, "--max-new", min=1, metavar="N",
                                help="labels per iteration at most"),
    accurate_fraction: float = typer.Option(
        0.95, "--accurate-fraction", min=0.0, max=1.0, metavar="F",
        help="stop once this fraction of explored frames is accurate"),
    committee: int = typer.Option(4, "--committee", min=2, metavar="N",
                                  help="models per committee (DP-GEN's 4)"),
    config: str = typer.Option("tiny", "--config", metavar="NAME|FILE",
                               help="DeePMD settings: tiny, small, paper or a JSON file"),
    method: str = typer.Option("GFN1-xTB", "--method", metavar="NAME",
                               help="xtb method of the labels: GFN1-xTB or GFN2-xTB"),
    db: Path | None = typer.Option(None, "--db", metavar="FILE",
                                   help="label database (default OUT/labels.db)"),
    fractions: opt.Fractions = "0.8,0.1,0.1",
    cluster: str | None = typer.Option(
        None, "--cluster", metavar="SPEC",
        help="where labels run: 'serial', tcp://host:port or a dask-jobqueue YAML (default "
             "a local cluster)"),
    seed: opt.Seed = 0,
    device: opt.Device = "cpu",
    json_out: opt.Json = False,
) -> None:
    """Run the DP-GEN loop (resumable, every iteration recorded).

    Train a DeePMD committee -> explore by MD -> max force deviation -> label candidates (GFN1-xTB)
    -> retrain.
    """
    from common.data import Dataset
    from common.data.io import read_structures
    from common.labels import LabellerSpec
    from electrolytes.active_learning import ALSettings, run_active_learning
    from electrolytes.model import load_config

    settings = ALSettings(iterations=iterations, temperatures_K=list(temperatures),
                          md_steps=steps, timestep_fs=timestep_fs,
                          friction_per_ps=friction_per_ps, frame_every=frame_every,
                          trust_lo_eV_A=trust_lo, trust_hi_eV_A=trust_hi, max_new=max_new,
                          accurate_fraction=accurate_fraction, committee_size=committee,
                          pressure_bar=pressure_bar).check()
    cfg = load_config(config)
    spec = LabellerSpec("xtb", {"method": method})
    starts = read_structures(structures)
    ds = Dataset.read(data).validate(max_force_eV_A=100.0)
    tr, va, te = ds.split(opt.parse_fractions(fractions), seed=seed)
    if out.exists() and not out.is_dir():
        raise ConfigError("a file is in the way of the work folder", where=str(out),
                          fix="choose another --out")
    res = run_active_learning(out, list(tr), list(va), starts, settings, labeller=spec,
                              db=db or out / "labels.db", deepmd_config=cfg, test=list(te),
                              seed=seed, device=device, progress=not json_out,
                              label_cluster=cluster)
    result = {"model": str(res["model"]), "history": res["history"],
              "stopped": res["stopped"], "metrics": res["metrics"],
              "n_train": len(res["data"]),
              "plot": None if res["plot"] is None else str(res["plot"])}
    from common.fileio import atomic_write_json

    atomic_write_json(out / "result.json", result)
    if json_out:
        emit_json(result)
    else:
        for h in res["history"]:
            print(f"iteration {h['round']}: {h['n_train']} training frames, accurate "
                  f"{h['n_accurate']}, candidates {h['n_candidates']}, failed "
                  f"{h['n_failed']}, labelled {h['n_labelled']}")
        print(f"stopped: {res['stopped']}; final model -> {res['model']}")


@param_flags(temperatures_K="--temperatures", n_workers="--workers")
def screen(
    model: Annotated[Path, typer.Option(
        "--model", metavar="FOLDER", help="model or committee folder (any adapter)")],
    out: opt.out_option("output folder: new, or the screen to continue"),
    config: str = typer.Option("tiny", "--config", metavar="NAME|FILE",
                               help="grid and MD settings: tiny, paper (the seed's grid) or "
                                    "a JSON file"),
    temperatures: opt.temperatures_option("temperatures, K (replace the config's)") = None,
    steps: int | None = typer.Option(None, "--steps", min=1, metavar="N",
                                     help="MD steps per condition (replace the config's)"),
    cluster: str | None = typer.Option(
        None, "--cluster", metavar="SPEC",
        help="'serial', tcp://host:port or a dask-jobqueue YAML (default: a local cluster)"),
    workers: int | None = typer.Option(None, "--workers", min=1, metavar="N",
                                       help="local worker processes (default: one per core)"),
    seed: opt.Seed = 0,
    device: opt.Device = "cpu",
    json_out: opt.Json = False,
) -> None:
    """Run MD of every composition × temperature of the grid on Dask.

    Per condition: σ, D, Ea and Li+ shells; then the best composition and figures.
    """
    from electrolytes.screening import load_screen_config, run_screen

    settings = load_screen_config(config, temperatures_K=temperatures, steps=steps)
    if out.exists() and not out.is_dir():
        raise ConfigError("a file is in the way of the output folder", where=str(out),
                          fix="choose another --out")
    summary = run_screen(settings, model, out, seed=seed, device=device, cluster=cluster,
                         n_workers=workers, progress=not json_out)
    if json_out:
        emit_json({k: v for k, v in summary.items() if k != "rows"})
    else:
        best = summary["best"]
        print(f"{summary['n_conditions']} conditions ({summary['n_compositions']} "
              f"compositions) -> {out / 'screen.csv'}")
        if best:
            print(f"best at {summary['reference_temperature_K']:g} K: {best['composition']} "
                  f"(σ {best['sigma_S_per_cm']:.3g} S/cm)")
        failures = summary["sweep"]["failures"]
        for key, why in failures.items():
            print(f"failed: {key}: {why}")


def case_study_cmd(
    scale: Annotated[str, typer.Option("--scale", metavar="SCALE",
                                       help="tiny (minutes), small (~1 h; keeps the bonds), "
                                       "paper, or a JSON config")] = "tiny",
    out: opt.out_option("output folder (summary.json, report.md, figures); a rerun "
                        "continues it", required=False) = Path("runs/electrolytes"),
    seed: opt.Seed = 0,
    device: opt.Device = "cpu",
    json_out: opt.Json = False,
) -> None:
    """Run the seed workflow end to end.

    Cells, GFN1-xTB labels, DeePMD committee, active learning, MD at the grid's temperatures,
    transport, solvation, report.
    """
    from electrolytes import case_study

    summary = case_study.run(scale, out, seed=seed, progress=not json_out, device=device)
    if json_out:
        emit_json(summary)
    else:
        print((out / "report.md").read_text())


def register(app: typer.Typer) -> None:
    """Add the pipeline commands to ``app``."""
    app.command("build", epilog=example(
        "mlp-electrolytes build --solvents EC:DEC=1:1 --salt-M 1 --atoms 84 --out cell.extxyz"
    ))(build)
    app.command("train", epilog=example(
        "mlp-electrolytes train labels.extxyz --config tiny --committee 4 --out model/"))(train)
    app.command("md", epilog=example(
        "mlp-electrolytes md cell.extxyz --potential model/ --temperatures 273,313,353 \\",
        "    --steps 20000 --out md/  (add --ensemble npt --pressure-bar 1 for NPT)"))(md)
    app.command("active-learn", epilog=example(
        "mlp-electrolytes active-learn cells.extxyz labels.extxyz --temperatures 300,400 "
        "--out al/"))(active_learn)
    app.command("screen", epilog=example(
        "mlp-electrolytes screen --model model/ --config tiny --out screen/"))(screen)
    app.command("case-study", epilog=example(
        "mlp-electrolytes case-study --scale tiny --out runs/electrolytes_tiny"))(case_study_cmd)
