"""Shared typed options.

One flag name, one meaning, one check for each concept, in every ``mlp-*`` app.

A command takes an option by annotating a parameter with the alias and giving the default::

    from common.cli import options as opt

    def md(steps: opt.Steps = 1000, replicas: opt.Replicas = 1, json_out: opt.Json = False): ...

Numbers are range-checked by click (``--steps 0`` is a usage error, exit 2), so a command never
starts on a value it cannot use. Options whose help depends on the command (``--out``) are
made with the small factories (:func:`out_option`, :func:`seed_option`).

Defaults shared by the MD commands (see :data:`MD_DEFAULTS`): a 1 fs time step and a
Langevin friction of 1 /ps suit the generic ``mlp-cases md`` (heavy atoms, quick
thermalisation). A pipeline may differ where its physics says so and says why in its help:
``mlp-catalysis md`` uses 0.5 fs (adsorbates carry H, whose fastest vibration needs it) and
0.01 /ps (weak coupling, so the thermostat barely perturbs the reaction dynamics it counts).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from common.errors import ConfigError

#: defaults of the MD options in ``mlp-cases md`` (the reference every pipeline compares to)
MD_DEFAULTS = {"timestep_fs": 1.0, "friction_per_ps": 1.0, "temperature_K": 300.0,
               "steps": 1000, "replicas": 1, "traj_every": 10}


# -- checks (click callbacks) ---------------------------------------------------------------


def check_device(value: str) -> str:
    """Check a device: ``cpu``, ``cuda`` or ``cuda:N`` that this machine has; else a ConfigError."""
    dev = str(value).strip()
    if dev == "cpu":
        return dev
    if not (dev == "cuda" or (dev.startswith("cuda:") and dev[5:].isdigit())):
        raise ConfigError(f"unknown device {dev!r}", where="--device",
                          fix="use cpu, cuda or cuda:N")
    import torch

    if not torch.cuda.is_available():
        raise ConfigError("CUDA is not available on this machine", where="--device",
                          fix="use --device cpu, or install a CUDA build of torch on a GPU "
                              "machine")
    if ":" in dev and int(dev[5:]) >= torch.cuda.device_count():
        raise ConfigError(f"no GPU {dev} (this machine has {torch.cuda.device_count()})",
                          where="--device", fix="use cuda:0 or another existing index")
    return dev


def positive(value: float | None) -> float | None:
    """Check that an option's value is > 0 (NaN too is refused), else a usage error."""
    if value is not None and not value > 0:  # also refuses NaN
        raise typer.BadParameter(f"{value} is not > 0")
    return value


def finite(value: float | None) -> float | None:
    """Check that an option's value is a finite number, else a usage error."""
    import math

    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a finite number")
    return value


def positive_finite(value: float | None) -> float | None:
    """Check that an option's value is > 0 and finite (a temperature, K), else a usage error."""
    import math

    if value is not None and not (math.isfinite(value) and value > 0):
        raise typer.BadParameter(f"{value} is not a finite number > 0")
    return value


def parse_temperatures(value: str | None) -> list[float] | None:
    """Parse ``"300,350,400"`` into [300.0, 350.0, 400.0].

    Each must be finite and > 0 K, else a usage error (a click callback for ``--temperatures``).
    """
    import math

    if value is None:
        return None
    try:
        temps = [float(t) for t in str(value).split(",") if t.strip()]
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not comma-separated numbers (K), e.g. "
                                 "300,350,400") from None
    if not temps:
        raise typer.BadParameter("no temperature given; write e.g. 300,350,400 (K)")
    bad = [t for t in temps if not (math.isfinite(t) and t > 0)]
    if bad:
        raise typer.BadParameter(f"temperature {bad[0]:g} K is not > 0")
    return temps


def _batch_size(value: str) -> int | str:
    text = str(value).strip().lower()
    if text == "auto":
        return "auto"
    try:
        n = int(text)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a positive integer or auto") from None
    if n < 1:
        raise typer.BadParameter(f"{n} is not >= 1 (give a positive integer or auto)")
    return n


def parse_fractions(value: str) -> tuple[float, float, float]:
    """Parse ``"0.8,0.1,0.1"`` into (0.8, 0.1, 0.1): three numbers >= 0 summing to 1."""
    import math

    try:
        vals = tuple(float(t) for t in str(value).split(","))
    except ValueError:
        vals = ()
    if len(vals) != 3:
        raise ConfigError(f"cannot read fractions {value!r}", where="--fractions",
                          fix="give three comma-separated numbers summing to 1, e.g. 0.8,0.1,0.1")
    if any(not math.isfinite(v) or v < 0 for v in vals) or abs(sum(vals) - 1.0) > 1e-6:
        raise ConfigError(f"fractions {value!r} must be >= 0 and sum to 1",
                          where="--fractions", fix="give e.g. 0.8,0.1,0.1")
    return vals  # type: ignore[return-value]


def parse_params(items: list[str] | None) -> dict:
    """Parse ``["epsilon=0.01", "smooth=true"]`` into {"epsilon": 0.01, "smooth": True}."""
    out: dict = {}
    for item in items or []:
        if "=" not in item or not item.split("=", 1)[0].strip():
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


# -- choices ------------------------------------------------------------------------------


class Ensemble(StrEnum):
    """Thermodynamic ensemble of an MD run."""

    nve = "nve"
    nvt = "nvt"
    npt = "npt"


class Barostat(StrEnum):
    """Stochastic cell rescaling (Bernetti & Bussi 2020; Del Tatto et al. 2022)."""

    isotropic = "isotropic"
    orthorhombic = "orthorhombic"
    anisotropic = "anisotropic"


class TrajFormat(StrEnum):
    """File format of an MD trajectory."""

    extxyz = "extxyz"
    h5 = "h5"


class OnBlowup(StrEnum):
    """What a blow-up (NaN, huge force or temperature) does to a batched run."""

    stop = "stop"
    stop_system = "stop-system"

    @property
    def runner_value(self) -> str:
        """The value :func:`common.md.runner.run_md` takes (``on_blowup=``)."""
        return {"stop": "raise", "stop-system": "stop_system"}[self.value]


# -- factories (help depends on the command) -------------------------------------------------


def out_option(help: str, required: bool = True) -> Any:
    """Return the ``--out`` option type with the command's own description of what it writes."""
    return Annotated[Path, typer.Option("--out", help=help, metavar="PATH",
                                        show_default=not required)]


def seed_option(help: str = "random seed (the same seed gives the same numbers on CPU)") -> Any:
    """Return the ``--seed N`` option type with the given help."""
    return Annotated[int, typer.Option("--seed", help=help, metavar="N")]


def structures_argument(help: str = "structures file (extxyz, ASE db, traj, any ASE format)"
                        ) -> Any:
    """Return the ``STRUCTURES`` argument type (a structures file) with the given help."""
    return Annotated[Path, typer.Argument(help=help, metavar="STRUCTURES", show_default=False)]


def temperature_option(help: str) -> Any:
    """Return the ``--temperature-K`` option type, for a temperature that must be > 0 K.

    It is used by analyses, QCT and metadynamics.

    0 or a negative value is a usage error.
    """
    return Annotated[float | None, typer.Option("--temperature-K", callback=positive_finite,
                                                metavar="K", help=help)]


def temperatures_option(help: str) -> Any:
    """Return the ``--temperatures T1,T2,...`` option type (K, each > 0), parsed to floats."""
    return Annotated[str | None, typer.Option("--temperatures", callback=parse_temperatures,
                                              metavar="T1,T2,...", help=help)]


# -- general ------------------------------------------------------------------------------

Json = Annotated[bool, typer.Option(
    "--json", help="print one JSON object on stdout (progress and messages go to stderr)")]
Seed = seed_option()
Cluster = Annotated[str | None, typer.Option(
    "--cluster", metavar="SPEC",
    help="where sweep tasks run: leave out for a local cluster, or 'serial', a scheduler "
         "address tcp://host:port, or a dask-jobqueue YAML file (SLURM/PBS)")]
Device = Annotated[str, typer.Option(
    "--device", metavar="DEVICE", callback=check_device,
    help="torch device: cpu, cuda or cuda:N (checked before anything is written)")]
Overwrite = Annotated[bool, typer.Option(
    "--overwrite", help="replace an existing output (the old one stays until the new one is "
                        "complete)")]
Fractions = Annotated[str, typer.Option(
    "--fractions", metavar="TRAIN,VALID,TEST",
    help="train,valid,test fractions summing to 1 (a 0 skips that part)")]

DtFs = Annotated[float | None, typer.Option(
    "--dt-fs", callback=positive, metavar="FS",
    help="time between saved frames, fs (the MD --timestep-fs times --traj-every); wins over "
         "the times stored in the file")]

# -- molecular dynamics -------------------------------------------------------------------

Potential = Annotated[str, typer.Option(
    "--potential", "-p", metavar="NAME|FOLDER|MODULE:CLASS",
    help="lj, morse, an installed adapter (schnet, ...), a saved model folder, or "
         "package.module:Class, your own BatchedPotential; its parameters with --param")]
Param = Annotated[list[str] | None, typer.Option(
    "--param", metavar="NAME=VALUE",
    help="potential parameter, repeatable, e.g. --param epsilon=0.0104 --param sigma=3.4 "
         "(eV, Å); lj and morse warn about each one left at its default")]
EnsembleOpt = Annotated[Ensemble, typer.Option(
    "--ensemble", case_sensitive=False,
    help="thermodynamic ensemble: nve (velocity Verlet), nvt (Langevin BAOAB) or npt "
         "(Langevin + barostat at --pressure-bar; periodic cells)")]
TemperatureK = Annotated[float, typer.Option(
    "--temperature-K", min=0.0, callback=finite, metavar="K",
    help="target temperature (nvt, npt) and initial velocities (all), K")]
TimestepFs = Annotated[float, typer.Option(
    "--timestep-fs", callback=positive, metavar="FS",
    help="MD time step, fs (1 fs default; 0.5 fs with light atoms such as H)")]
Steps = Annotated[int, typer.Option("--steps", min=1, metavar="N", help="MD steps to run")]
Replicas = Annotated[int, typer.Option(
    "--replicas", min=1, metavar="N",
    help="independent copies of each structure, run as one batch (own seeds and velocities)")]
FrictionPerPs = Annotated[float, typer.Option(
    "--friction-per-ps", callback=positive, metavar="1/PS",
    help="Langevin friction, 1/ps (nvt, npt)")]
PressureBar = Annotated[float | None, typer.Option(
    "--pressure-bar", callback=finite, metavar="BAR",
    help="npt target pressure, bar (required with --ensemble npt, refused otherwise)")]
BarostatOpt = Annotated[Barostat, typer.Option(
    "--barostat", case_sensitive=False,
    help="npt cell moves: isotropic (liquids, gases), orthorhombic (axes change length) or "
         "anisotropic (crystals: full cell shape)")]
BarostatTauPs = Annotated[float, typer.Option(
    "--barostat-tau-ps", callback=positive, metavar="PS",
    help="npt barostat time constant, ps (how fast the volume relaxes; not what is sampled)")]
BatchSize = Annotated[str, typer.Option(
    "--batch-size", callback=_batch_size, metavar="N|auto",
    help="systems per batch, or auto (the fastest size, measured)")]
TrajEvery = Annotated[int, typer.Option(
    "--traj-every", min=1, metavar="N", help="write a trajectory frame every N steps")]
TrajFormatOpt = Annotated[TrajFormat, typer.Option(
    "--format", case_sensitive=False, help="trajectory format: extxyz or h5")]
CheckpointEvery = Annotated[int, typer.Option(
    "--checkpoint-every", min=0, metavar="N",
    help="checkpoint every N steps (0: only at the end); --restart continues from it")]
Restart = Annotated[bool, typer.Option(
    "--restart", help="continue the run in --out from its last checkpoint (same settings)")]
OnBlowupOpt = Annotated[OnBlowup, typer.Option(
    "--on-blowup", case_sensitive=False,
    help="stop: the first blow-up (NaN, huge force or temperature) stops the run; "
         "stop-system: only that replica stops, the others finish (listed in summary.json)")]
