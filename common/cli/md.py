"""``mlp-cases md``: batched MD of replicas of structures with any potential."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from common.cli import options as opt
from common.cli.app import emit_json, example, warn
from common.cli.options import parse_params

__all__ = ["blowup_line", "md", "md_summary_lines", "parse_params", "warn_default_params"]

EXAMPLE = example("mlp-cases md cu.extxyz -p lj --param epsilon=0.0104 --param sigma=3.4 \\",
                  "    --replicas 8 --steps 2000 --on-blowup stop-system --out md/")

_Out = opt.out_option("output folder: new, or the run to continue with --restart")
_Seed = opt.seed_option("random seed; replica r uses seed + r")
_Structures = opt.structures_argument()


def warn_default_params(potential: str, params: dict[str, Any]) -> None:
    """Say on stderr which parameters of ``lj``/``morse`` run on their built-in defaults.

    The defaults (ε = 1 eV, σ = 1 Å, ...) are reduced units, not a material.
    """
    from common.potential.registry import ANALYTIC

    if potential not in ANALYTIC:
        return
    import importlib

    module, _, attr = ANALYTIC[potential].partition(":")
    cls = getattr(importlib.import_module(module), attr)
    left = [f"{name}={p.default:g}" for name, p in inspect.signature(cls).parameters.items()
            if name not in params and isinstance(p.default, int | float)
            and not isinstance(p.default, bool)]
    if left:
        warn(f"--potential {potential}: {', '.join(left)} (built-in defaults, eV and Å: "
             f"reduced units, not a material); set them with --param NAME=VALUE")


def _num(x: Any, fmt: str) -> str:
    return "n/a" if x is None else format(x, fmt)


def blowup_line(summary: dict) -> str | None:
    """One line about the systems a blow-up stopped (``--on-blowup stop-system``), or None."""
    failed = summary.get("failed") or {}
    if not failed:
        return None
    first = next(iter(failed.values()))
    return (f"stopped after a blow-up: {len(failed)} system(s) ({first}); the others ran on; "
            "every message is in summary.json 'failed'")


def md_summary_lines(summary: dict, out: Path) -> list[str]:
    """Return the lines ``md`` prints for a run's summary (rich markup), outputs in ``out``."""
    lines = [f"[bold]{summary['replicas']} replicas x {summary['steps']} steps[/] "
             f"({summary['ensemble']}, batch size {summary['batch_size']}, "
             f"{_num(summary.get('replica_steps_per_s'), '.0f')} replica-steps/s)",
             f"mean temperature: {_num(summary.get('mean_temperature_K'), '.1f')} K"]
    if "energy_drift_eV_per_atom_per_ps" in summary:
        drift = _num(summary["energy_drift_eV_per_atom_per_ps"], ".3g")
        lines.append(f"energy drift: {drift} eV/atom/ps")
    if "mean_pressure_bar" in summary:
        lines.append(f"mean pressure: {_num(summary['mean_pressure_bar'], '.1f')} bar")
    if "mean_volume_A3" in summary:
        lines.append(f"mean volume: {_num(summary['mean_volume_A3'], '.2f')} Å^3, density "
                     f"{_num(summary.get('mean_density_g_per_cm3'), '.4f')} g/cm^3")
    blown = blowup_line(summary)
    if blown:
        lines.append(f"[red]{blown}[/]")
    lines.append(f"outputs: {out}/ (summary.json, thermo.dat, trajectories)")
    return lines


def md(
    structures: _Structures,
    potential: opt.Potential,
    out: _Out,
    param: opt.Param = None,
    ensemble: opt.EnsembleOpt = opt.Ensemble.nvt,
    temperature_K: opt.TemperatureK = 300.0,
    timestep_fs: opt.TimestepFs = 1.0,
    steps: opt.Steps = 1000,
    replicas: opt.Replicas = 1,
    friction_per_ps: opt.FrictionPerPs = 1.0,
    pressure_bar: opt.PressureBar = None,
    barostat: opt.BarostatOpt = opt.Barostat.isotropic,
    barostat_tau_ps: opt.BarostatTauPs = 1.0,
    seed: _Seed = 0,
    device: opt.Device = "cpu",
    batch_size: opt.BatchSize = "auto",
    traj_every: opt.TrajEvery = 10,
    traj_format: opt.TrajFormatOpt = opt.TrajFormat.extxyz,
    checkpoint_every: opt.CheckpointEvery = 0,
    restart: opt.Restart = False,
    on_blowup: opt.OnBlowupOpt = opt.OnBlowup.stop,
    json_out: opt.Json = False,
) -> None:
    """Run batched molecular dynamics and write trajectories, thermo log and summary.json."""
    from common.data.io import read_structures
    from common.md.runner import run_md
    from common.potential.registry import make_potential

    params = parse_params(param)
    frames = read_structures(structures)
    pot = make_potential(potential, params, device=device)
    warn_default_params(potential, params)
    summary = run_md(frames, pot, out, ensemble=ensemble.value, timestep_fs=timestep_fs,
                     temperature_K=temperature_K, friction_per_ps=friction_per_ps,
                     pressure_bar=pressure_bar, barostat=barostat.value,
                     barostat_tau_ps=barostat_tau_ps, steps=steps,
                     replicas=replicas, seed=seed, device=device, batch_size=batch_size,
                     traj_every=traj_every, traj_format=traj_format.value,
                     checkpoint_every=checkpoint_every or steps, restart=restart,
                     on_blowup=on_blowup.runner_value, progress=not json_out,
                     potential_label=f"{potential} {param or ''}")
    if json_out:
        emit_json(summary)
        return
    from rich.console import Console

    con = Console()
    for line in md_summary_lines(summary, out):
        con.print(line)
