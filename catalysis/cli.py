"""``mlp-catalysis``: CO2 reduction on Cu(111) with SchNet, from slabs to pathway fractions."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from catalysis.cli_events import events
from common.cli.app import emit_json, new_app, run_app
from common.errors import ConfigError

app = new_app("mlp-catalysis: SchNet MD of CO2 reduction on Cu(111) and its reaction events.")
app.command("events")(events)


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


@app.command("build")
def build(
    out: Path = typer.Option(..., "--out", help="extxyz file to write"),
    size: str = typer.Option("4,6,4", "--size", help="slab repeats a,b,layers (96 atoms)"),
    fixed_layers: int = typer.Option(2, "--fixed-layers", help="bottom layers held fixed"),
    vacuum_A: float = typer.Option(10.0, "--vacuum-A"),
    adsorbate: list[str] = typer.Option([], "--adsorbate", help="SPECIES[:COUNT], repeatable"),
    coverage_ML: float | None = typer.Option(None, "--coverage-ML"),
    water: int = typer.Option(0, "--water", help="water molecules above the surface"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Build a Cu(111) slab with adsorbates on random free sites."""
    import ase.io

    from catalysis import systems

    try:
        dims = tuple(int(x) for x in size.split(","))
    except ValueError as exc:
        raise ConfigError(f"bad --size {size!r}", where="--size", fix="write a,b,layers") from exc
    if len(dims) != 3:
        raise ConfigError(f"bad --size {size!r}", where="--size", fix="write a,b,layers")
    # an orthogonal (111) cell needs an even second repeat; otherwise the 60-degree cell
    slab = systems.cu111_slab(size=dims, vacuum_A=vacuum_A, fixed_layers=fixed_layers,
                              orthogonal=dims[1] % 2 == 0)
    if adsorbate:
        slab = systems.place_many(slab, _parse_counts(adsorbate), coverage_ML=coverage_ML,
                                  seed=seed)
    if water:
        slab = systems.water_layer(slab, n_water=water, seed=seed)
    ase.io.write(out, slab)
    print(f"{len(slab)} atoms ({slab.get_chemical_formula()}) -> {out}")


@app.command("sample")
def sample(
    structures: Path = typer.Argument(..., help="starting structures"),
    out: Path = typer.Option(..., "--out", help="extxyz file to write"),
    n: int = typer.Option(50, "--n", help="configurations to make"),
    rattle_A: str = typer.Option("0.02,0.15", "--rattle-A", help="min,max rattle amplitude"),
    strategy: str = typer.Option("rattle", "--strategy", help="rattle or displace"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Training configurations by rattling (and displacing adsorbates)."""
    import ase.io

    from catalysis import systems
    from common.data.io import read_structures

    lo, hi = (float(x) for x in rattle_A.split(","))
    frames = systems.sample_configurations(read_structures(structures), n, rattle_A=(lo, hi),
                                           seed=seed, strategy=strategy)
    ase.io.write(out, frames)
    print(f"{len(frames)} configurations -> {out}")


@app.command("train")
def train(
    data: Path = typer.Argument(..., help="labelled structures (extxyz or ASE db)"),
    out: Path = typer.Option(..., "--out", help="model folder"),
    config: str = typer.Option("tiny", "--config", help="tiny, paper or a JSON file"),
    ensemble: int = typer.Option(1, "--ensemble", help="number of models (>1: an ensemble)"),
    seed: int = typer.Option(0, "--seed"),
    device: str = typer.Option("cpu", "--device"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Train SchNet (schnetpack's own trainer) with a seeded 80/10/10 split."""
    from catalysis.model import SchNetAdapter, load_config
    from common.data import Dataset
    from common.potential.ensemble import train_ensemble

    ds = Dataset.read(data).validate(max_force_eV_A=100.0)
    tr, va, te = ds.split((0.8, 0.1, 0.1), seed=seed)
    cfg = load_config(config)
    if ensemble > 1:
        _, members = train_ensemble(SchNetAdapter, tr, va, out, ensemble, config=cfg,
                                    seed=seed, test=te, device=device)
        metrics = [m.meta.get("metrics") for m in members]
    else:
        metrics = SchNetAdapter.train(tr, va, out, config=cfg, seed=seed, test=te,
                                      device=device, progress=not json_out).meta["metrics"]
    if json_out:
        emit_json({"model": str(out), "metrics": metrics})
    else:
        print(json.dumps(metrics, indent=2))
        print(f"model -> {out}")


@app.command("md")
def md(
    structures: Path = typer.Argument(..., help="starting structures"),
    model: Path = typer.Option(..., "--model", help="model or ensemble folder from train"),
    out: Path = typer.Option(..., "--out"),
    trajectories: int = typer.Option(10, "--trajectories", help="replicas of each structure"),
    temperature_K: float = typer.Option(300.0, "--temperature-K"),
    friction_per_ps: float = typer.Option(0.01, "--friction-per-ps"),
    timestep_fs: float = typer.Option(0.5, "--timestep-fs"),
    steps: int = typer.Option(1000, "--steps"),
    frame_every: int = typer.Option(10, "--frame-every"),
    flag_deviation: float | None = typer.Option(
        None, "--flag-deviation-eV-A", help="ensemble: write frames above this deviation"),
    seed: int = typer.Option(0, "--seed"),
    device: str = typer.Option("cpu", "--device"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Batched Langevin MD of N trajectories with the trained SchNet (or ensemble)."""
    from common.data.io import read_structures
    from common.md.runner import run_md
    from common.potential.registry import load_saved

    summary = run_md(read_structures(structures), load_saved(model, device=device), out,
                     ensemble="nvt", temperature_K=temperature_K,
                     friction_per_ps=friction_per_ps, timestep_fs=timestep_fs, steps=steps,
                     replicas=trajectories, seed=seed, device=device, traj_every=frame_every,
                     checkpoint_every=steps, flag_deviation_eV_A=flag_deviation,
                     progress=not json_out, potential_label=str(model))
    if json_out:
        emit_json(summary)
    else:
        print(f"{summary['replicas']} trajectories, batch size {summary['batch_size']}, "
              f"{summary['replica_steps_per_s']:.1f} replica-steps/s, mean T "
              f"{summary['mean_temperature_K']:.1f} K -> {out}")


@app.command("barriers")
def barriers(
    events_json: Path = typer.Argument(..., help="output of `mlp-catalysis events --json`"),
    model: Path = typer.Option(..., "--model", help="model or ensemble folder"),
    out: Path = typer.Option(Path("barriers.json"), "--out"),
    pathway_only: bool = typer.Option(True, "--coupling-only/--all-events"),
    max_events: int = typer.Option(50, "--max-events"),
    n_images: int = typer.Option(5, "--images"),
    fmax: float = typer.Option(0.05, "--fmax-eV-A"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """CI-NEB barrier of each detected event with the trained potential."""
    import ase.io

    from catalysis.barriers import event_barriers
    from common.potential.calculator import BatchedPotentialCalculator
    from common.potential.registry import load_saved

    try:
        ev = json.loads(events_json.read_text())["events"]
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError("not an events JSON file", where=str(events_json),
                          fix="give the output of `mlp-catalysis events --json`") from exc
    if pathway_only:
        ev = [e for e in ev if e.get("pathway") is not None]
    ev = ev[:max_events]
    pot = load_saved(model)
    frames = {e["trajectory"]: ase.io.read(e["trajectory"], ":") for e in ev}
    res = event_barriers(frames, ev, lambda: BatchedPotentialCalculator(pot),
                         n_images=n_images, fmax_eV_A=fmax)
    out.write_text(json.dumps(res, indent=2))
    if json_out:
        emit_json(res)
    else:
        print(f"{res['n']} converged barriers: mean {res['mean_eV']} eV, std {res['std_eV']} eV"
              f" -> {out}")


@app.command("case-study")
def case_study_cmd(
    scale: str = typer.Option("tiny", "--scale", help="tiny, paper, or a JSON config"),
    out: Path = typer.Option(Path("runs/catalysis"), "--out"),
    seed: int = typer.Option(0, "--seed"),
    device: str = typer.Option("cpu", "--device"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """The seed workflow end to end: build, sample, label, train, MD, events, barriers."""
    from catalysis import case_study

    summary = case_study.run(scale, out, seed=seed, progress=not json_out, device=device)
    if json_out:
        emit_json(summary)
    else:
        print((out / "report.md").read_text())


def main() -> None:
    sys.exit(run_app(app))


if __name__ == "__main__":
    main()
