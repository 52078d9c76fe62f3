"""``mlp-catalysis``: CO2 reduction on Cu(111) with SchNet, from slabs to pathway fractions.

Options shared with the other ``mlp-*`` apps come from :mod:`common.cli.options` (one flag name
per concept: ``--replicas``, ``--traj-every``, ``--timestep-fs``, ``--device``...). Where this
pipeline's default differs from ``mlp-cases md`` the help says why.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from catalysis.cli_events import EXAMPLE as EVENTS_EXAMPLE
from catalysis.cli_events import events
from common.cli import options as opt
from common.cli.app import emit_json, example, new_app, run_app
from common.cli.flags import param_flags
from common.errors import ConfigError

app = new_app("mlp-catalysis: SchNet MD of CO2 reduction on Cu(111) and its reaction events.",
              epilog=example("mlp-catalysis case-study --scale tiny --out runs/catalysis_tiny"))
app.command("events", epilog=EVENTS_EXAMPLE)(events)

_Structures = opt.structures_argument("starting structures (extxyz, ASE db, traj, ...)")
_Model = Annotated[Path, typer.Option(
    "--model", metavar="FOLDER", help="model or committee folder written by `train`")]
_Config = Annotated[str, typer.Option(
    "--config", metavar="NAME|FILE", help="tiny, paper or a JSON file of SchNet settings")]
_Scale = Annotated[str, typer.Option("--scale", metavar="SCALE",
                                     help="tiny, medium, paper (the seed's settings), or a "
                                          "JSON config")]


def _parse_counts(items: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        name, _, n = item.partition(":")
        try:
            out[name] = int(n or 1)
        except ValueError as exc:
            raise ConfigError(f"bad adsorbate count {item!r}", where="--adsorbate",
                              fix="write SPECIES or SPECIES:COUNT, e.g. --adsorbate CO:2") from exc
    return out


def _parse_size(size: str) -> tuple[int, int, int]:
    try:
        dims = tuple(int(x) for x in size.split(","))
    except ValueError:
        dims = ()
    if len(dims) != 3:
        raise ConfigError(f"bad --size {size!r}", where="--size", fix="write a,b,layers")
    return dims  # type: ignore[return-value]


def _parse_range(text: str) -> tuple[float, float]:
    """Parse ``"0.02,0.15"`` into (0.02, 0.15); anything but two finite numbers is a usage error."""
    import math

    try:
        lo, hi = (float(x) for x in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not MIN,MAX (two numbers, Å)") from None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise typer.BadParameter(f"{text!r} is not two finite numbers")
    return lo, hi


@app.command("build", epilog=example(
    "mlp-catalysis build --size 4,6,4 --adsorbate CO:2 --adsorbate CHO:1 --out slab.extxyz"))
@param_flags(species="--adsorbate", place_many="--adsorbate", n_water="--water",
             water_layer="--water")
def build(
    out: opt.out_option("extxyz file to write (replaced whole, never half-written)"),
    size: str = typer.Option("4,6,4", "--size", metavar="A,B,LAYERS",
                             help="slab repeats a,b,layers (96 atoms)"),
    fixed_layers: int = typer.Option(2, "--fixed-layers", min=0, metavar="N",
                                     help="bottom layers held fixed"),
    vacuum_A: float = typer.Option(10.0, "--vacuum-A", min=0.0, metavar="A",
                                   help="vacuum above the slab, Å"),
    adsorbate: list[str] = typer.Option([], "--adsorbate", metavar="SPECIES[:COUNT]",
                                        help="adsorbate on a random free site, repeatable"),
    coverage_ML: float | None = typer.Option(
        None, "--coverage-ML", metavar="ML",
        help="total coverage in monolayers; the --adsorbate counts become weights"),
    min_separation_A: float = typer.Option(2.5, "--min-separation-A", metavar="A",
                                           help="closest approach of two adsorbates, Å"),
    water: int = typer.Option(0, "--water", min=0, metavar="N",
                              help="water molecules above the surface"),
    seed: opt.Seed = 0,
) -> None:
    """Build a Cu(111) slab with adsorbates on random free sites."""
    from catalysis import systems
    from common.fileio import atomic_write_atoms

    dims = _parse_size(size)
    # an orthogonal (111) cell needs an even second repeat; otherwise the 60-degree cell
    slab = systems.cu111_slab(size=dims, vacuum_A=vacuum_A, fixed_layers=fixed_layers,
                              orthogonal=dims[1] % 2 == 0)
    if adsorbate:
        slab = systems.place_many(slab, _parse_counts(adsorbate), coverage_ML=coverage_ML,
                                  min_separation_A=min_separation_A, seed=seed)
    if water:
        slab = systems.water_layer(slab, n_water=water, seed=seed)
    atomic_write_atoms(out, slab)
    print(f"{len(slab)} atoms ({slab.get_chemical_formula()}) -> {out}")


@app.command("sample", epilog=example(
    "mlp-catalysis sample slab.extxyz --n 200 --out samples.extxyz"))
def sample(
    structures: _Structures,
    out: opt.out_option("extxyz file to write (replaced whole, never half-written)"),
    n: int = typer.Option(50, "--n", min=1, metavar="N", help="configurations to make"),
    rattle_A: str = typer.Option("0.02,0.15", "--rattle-A", metavar="MIN,MAX",
                                 help="min,max rattle amplitude, Å"),
    strategy: str = typer.Option("rattle", "--strategy", metavar="NAME",
                                 help="rattle or displace"),
    seed: opt.Seed = 0,
) -> None:
    """Training configurations by rattling (and displacing adsorbates)."""
    from catalysis import systems
    from common.data.io import read_structures
    from common.fileio import atomic_write_atoms

    lo, hi = _parse_range(rattle_A)
    frames = systems.sample_configurations(read_structures(structures), n, rattle_A=(lo, hi),
                                           seed=seed, strategy=strategy)
    atomic_write_atoms(out, frames)
    print(f"{len(frames)} configurations -> {out}")


@app.command("train", epilog=example(
    "mlp-catalysis train labels.db --config tiny --committee 2 --out model/"))
@param_flags(n_models="--committee", workdir="--out")
def train(
    data: Annotated[Path, typer.Argument(help="labelled structures (extxyz or ASE db)",
                                         metavar="DATA", show_default=False)],
    out: opt.out_option("model folder; it appears only when training has finished"),
    config: _Config = "tiny",
    committee: int = typer.Option(
        1, "--committee", min=1, metavar="N",
        help="train N models (seeds seed..seed+N-1) as a committee whose force spread flags "
             "uncertain frames in md"),
    fractions: opt.Fractions = "0.8,0.1,0.1",
    seed: opt.Seed = 0,
    device: opt.Device = "cpu",
    overwrite: opt.Overwrite = False,
    json_out: opt.Json = False,
) -> None:
    """Train SchNet (schnetpack's own trainer) on a seeded train/valid/test split."""
    from catalysis.model import SchNetAdapter, load_config
    from common.cli.training import train_model

    train_model(SchNetAdapter, load_config, data=data, out=out, config=config,
                committee=committee, fractions=fractions, seed=seed, device=device,
                overwrite=overwrite, json_out=json_out)


@app.command("md", epilog=example(
    "mlp-catalysis md slab.extxyz --model model/ --replicas 10 --steps 2000 --out md/ \\",
    "    --flag-deviation-eV-A 0.3 --on-blowup stop-system"))
def md(
    structures: _Structures,
    model: _Model,
    out: opt.out_option("output folder: new, or the run to continue with --restart"),
    replicas: Annotated[int, typer.Option(
        "--replicas", min=1, metavar="N",
        help="independent copies of each structure (10 by default here: pathway fractions "
             "need many events)")] = 10,
    temperature_K: opt.TemperatureK = 300.0,
    friction_per_ps: Annotated[float, typer.Option(
        "--friction-per-ps", callback=opt.positive, metavar="1/PS",
        help="Langevin friction, 1/ps (0.01 here, not 1: weak coupling barely perturbs the "
             "reaction dynamics being counted)")] = 0.01,
    timestep_fs: Annotated[float, typer.Option(
        "--timestep-fs", callback=opt.positive, metavar="FS",
        help="MD time step, fs (0.5 here, not 1: the adsorbates carry H)")] = 0.5,
    steps: opt.Steps = 1000,
    traj_every: opt.TrajEvery = 10,
    flag_deviation: float | None = typer.Option(
        None, "--flag-deviation-eV-A", min=0.0, metavar="EV/A",
        help="committee: write frames whose force spread exceeds this to flagged_frames.extxyz"),
    seed: opt.seed_option("random seed; replica r uses seed + r") = 0,
    device: opt.Device = "cpu",
    batch_size: opt.BatchSize = "auto",
    traj_format: opt.TrajFormatOpt = opt.TrajFormat.extxyz,
    checkpoint_every: opt.CheckpointEvery = 0,
    restart: opt.Restart = False,
    on_blowup: opt.OnBlowupOpt = opt.OnBlowup.stop,
    json_out: opt.Json = False,
) -> None:
    """Batched Langevin MD of the replicas with the trained SchNet (or committee)."""
    from common.cli.md import blowup_line
    from common.data.io import read_structures
    from common.md.runner import run_md
    from common.potential.registry import load_saved

    frames = read_structures(structures)
    summary = run_md(frames, load_saved(model, device=device), out,
                     ensemble="nvt", temperature_K=temperature_K,
                     friction_per_ps=friction_per_ps, timestep_fs=timestep_fs, steps=steps,
                     replicas=replicas, seed=seed, device=device, batch_size=batch_size,
                     traj_every=traj_every, traj_format=traj_format.value,
                     checkpoint_every=checkpoint_every or steps, restart=restart,
                     flag_deviation_eV_A=flag_deviation, on_blowup=on_blowup.runner_value,
                     progress=not json_out, potential_label=str(model))
    if json_out:
        emit_json(summary)
    else:
        mean_t = summary.get("mean_temperature_K")
        print(f"{summary['replicas']} trajectories, batch size {summary['batch_size']}, "
              f"{summary['replica_steps_per_s']:.1f} replica-steps/s, mean T "
              f"{'n/a' if mean_t is None else format(mean_t, '.1f')} K -> {out}")
        blown = blowup_line(summary)
        if blown:
            print(blown)


@app.command("barriers", epilog=example(
    "mlp-catalysis barriers events.json --model model/member_0 --out barriers.json"))
def barriers(
    events_json: Annotated[Path, typer.Argument(
        help="output of `mlp-catalysis events --json`", metavar="EVENTS_JSON",
        show_default=False)],
    model: _Model,
    out: opt.out_option("JSON file of the barriers", required=False) = Path("barriers.json"),
    pathway_only: bool = typer.Option(True, "--coupling-only/--all-events",
                                      help="only C-C coupling events, or every event"),
    max_events: int = typer.Option(50, "--max-events", min=1, metavar="N",
                                   help="at most this many events (in file order)"),
    n_images: int = typer.Option(5, "--images", min=1, metavar="N",
                                 help="NEB images between the end points"),
    fmax: float = typer.Option(0.05, "--fmax-eV-A", callback=opt.positive, metavar="EV/A",
                               help="NEB convergence: largest force, eV/Å"),
    json_out: opt.Json = False,
) -> None:
    """CI-NEB barrier of each detected event with the trained potential."""
    import ase.io

    from catalysis.barriers import event_barriers
    from common.fileio import atomic_write_json
    from common.potential.calculator import BatchedPotentialCalculator
    from common.potential.registry import load_saved

    try:
        ev = json.loads(events_json.read_text())["events"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError("not an events JSON file", where=str(events_json),
                          fix="give the output of `mlp-catalysis events --json`") from exc
    if pathway_only:
        ev = [e for e in ev if e.get("pathway") is not None]
    ev = ev[:max_events]
    pot = load_saved(model)
    frames = {e["trajectory"]: ase.io.read(e["trajectory"], ":") for e in ev}
    res = event_barriers(frames, ev, lambda: BatchedPotentialCalculator(pot),
                         n_images=n_images, fmax_eV_A=fmax)
    atomic_write_json(out, res)
    if json_out:
        emit_json(res)
    else:
        print(f"{res['n']} converged barriers: mean {res['mean_eV']} eV, std {res['std_eV']} eV"
              f" -> {out}")


@app.command("case-study", epilog=example(
    "mlp-catalysis case-study --scale tiny --out runs/catalysis_tiny"))
def case_study_cmd(
    scale: _Scale = "tiny",
    out: opt.out_option("output folder (summary.json, report.md, figures)",
                        required=False) = Path("runs/catalysis"),
    seed: opt.Seed = 0,
    device: opt.Device = "cpu",
    estimate: Annotated[bool, typer.Option(
        "--estimate", help="run nothing: time a few production-MD steps of the config's "
                           "system and committee here and project the MD's wall time "
                           "(e.g. --scale paper --estimate for the seed's 10 us)")] = False,
    estimate_steps: Annotated[int, typer.Option(
        "--estimate-steps", min=1, help="steps timed by --estimate")] = 3,
    json_out: opt.Json = False,
) -> None:
    """Run the seed workflow end to end: build, sample, label, train, MD, events, barriers."""
    from catalysis import case_study

    if estimate:
        est = case_study.estimate_md_wall_time(scale, steps=estimate_steps, device=device)
        if json_out:
            emit_json(est)
        else:
            print(f"{est['scale']}: {est['n_trajectories']} trajectories x "
                  f"{est['steps_per_trajectory']:,} steps of {est['atoms_per_system']} atoms, "
                  f"committee of {est['committee_size']} on {est['device']}: "
                  f"{est['seconds_per_step_all_trajectories']:.3g} s per step (measured) -> "
                  f"{est['projected_wall_time_h']:,.0f} h ({est['projected_wall_time_days']:,.1f}"
                  f" days) for the MD; the seed: {est['seed_gpu_wall_time_h']:.0f} h on "
                  f"{est['seed_gpu']}.")
            print(est["note"])
        return
    summary = case_study.run(scale, out, seed=seed, progress=not json_out, device=device)
    if json_out:
        emit_json(summary)
    else:
        print((out / "report.md").read_text())


@app.command("fidelity", epilog=example(
    "mlp-catalysis fidelity --scale emt --out runs/fidelity_emt --json"))
def fidelity_cmd(
    scale: Annotated[str, typer.Option("--scale", metavar="SCALE",
                                       help="emt (minutes), xtb (an hour or more), or a JSON "
                                            "config")] = "emt",
    out: opt.out_option("output folder (fidelity.json, events, figures)",
                        required=False) = Path("runs/fidelity"),
    seed: opt.Seed = 0,
    cluster: opt.Cluster = None,
    json_out: opt.Json = False,
) -> None:
    """Check whether the MLP's events agree with direct reference MD from the same start."""
    from catalysis import fidelity

    result = fidelity.run_fidelity(scale, out, seed=seed, progress=not json_out,
                                   cluster=cluster)
    if json_out:
        emit_json(result)
    else:
        print("\n".join(fidelity.summary_lines(result)))


def main() -> None:
    """Run the ``mlp-catalysis`` command line."""
    sys.exit(run_app(app))


if __name__ == "__main__":
    main()
