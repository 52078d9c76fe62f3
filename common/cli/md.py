"""``mlp-cases md``: batched MD of replicas of structures with any potential."""

from __future__ import annotations

from pathlib import Path

import typer

from common.cli.app import emit_json
from common.errors import ConfigError


def parse_params(items: list[str] | None) -> dict:
    """``["epsilon=0.01", "smooth=true"]`` -> {"epsilon": 0.01, "smooth": True}."""
    out: dict = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"bad parameter {item!r}", where="--param",
                              fix="write parameters as NAME=VALUE, e.g. --param epsilon=0.0104")
        k, v = item.split("=", 1)
        low = v.strip().lower()
        if low in ("true", "false"):
            out[k.strip()] = low == "true"
            continue
        try:
            out[k.strip()] = float(v)
        except ValueError:
            out[k.strip()] = v
    return out


def md(
    structures: Path = typer.Argument(..., help="structures file (extxyz, ASE db, any ASE format)"),
    potential: str = typer.Option(..., "--potential", "-p",
                                  help="lj, morse, a framework name, or a saved model folder"),
    param: list[str] = typer.Option(None, "--param", help="potential parameter NAME=VALUE"),
    ensemble: str = typer.Option("nvt", "--ensemble", help="nve or nvt (Langevin BAOAB)"),
    temperature_K: float = typer.Option(300.0, "--temperature-K",
                                        help="NVT target; initial velocities for both, K"),
    timestep_fs: float = typer.Option(1.0, "--timestep-fs", help="time step, fs"),
    steps: int = typer.Option(1000, "--steps", help="MD steps"),
    replicas: int = typer.Option(1, "--replicas", help="independent copies of each structure"),
    friction_per_ps: float = typer.Option(1.0, "--friction-per-ps", help="Langevin friction"),
    seed: int = typer.Option(0, "--seed", help="replica r uses seed + r"),
    out: Path = typer.Option(..., "--out", help="output folder (new, or with --restart)"),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda"),
    batch_size: str = typer.Option("auto", "--batch-size",
                                   help="systems per batch, or auto (measured)"),
    traj_every: int = typer.Option(10, "--traj-every", help="write a frame every N steps"),
    traj_format: str = typer.Option("extxyz", "--format", help="extxyz or h5"),
    checkpoint_every: int = typer.Option(0, "--checkpoint-every",
                                         help="checkpoint every N steps (0: only at the end)"),
    restart: bool = typer.Option(False, "--restart", help="continue the run in --out"),
    json_out: bool = typer.Option(False, "--json", help="print the summary as one JSON object"),
) -> None:
    """Run batched molecular dynamics and write trajectories, thermo log and summary.json."""
    from common.data.io import read_structures
    from common.md.runner import run_md
    from common.potential.registry import make_potential

    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("CUDA is not available on this machine", where="--device",
                              fix="use --device cpu, or install a CUDA build of torch")
    pot = make_potential(potential, parse_params(param), device=device)
    frames = read_structures(structures)
    if batch_size != "auto":
        try:
            batch_size = int(batch_size)
        except ValueError as exc:
            raise ConfigError(f"bad batch size {batch_size!r}", where="--batch-size",
                              fix="give a positive integer or auto") from exc
    summary = run_md(frames, pot, out, ensemble=ensemble, timestep_fs=timestep_fs,
                     temperature_K=temperature_K, friction_per_ps=friction_per_ps, steps=steps,
                     replicas=replicas, seed=seed, device=device, batch_size=batch_size,
                     traj_every=traj_every, traj_format=traj_format,
                     checkpoint_every=checkpoint_every or max(steps, 1), restart=restart,
                     progress=not json_out, potential_label=f"{potential} {param or ''}")
    if json_out:
        emit_json(summary)
        return
    from rich.console import Console

    con = Console()
    con.print(f"[bold]{summary['replicas']} replicas x {summary['steps']} steps[/] "
              f"({summary['ensemble']}, batch size {summary['batch_size']}, "
              f"{summary['replica_steps_per_s']:.0f} replica-steps/s)")
    con.print(f"mean temperature: {summary['mean_temperature_K']:.1f} K")
    if "energy_drift_eV_per_atom_per_ps" in summary:
        con.print(f"energy drift: {summary['energy_drift_eV_per_atom_per_ps']:.3g} eV/atom/ps")
    con.print(f"outputs: {out}/ (summary.json, thermo.dat, trajectories)")
