"""``mlp-atmospheric``.

Bimolecular rate constants by quasi-classical trajectories, and their Arrhenius fits and KPP/MCM
mechanism lines.

Thin layer over :func:`atmospheric.qct.run_qct` and :func:`atmospheric.kinetics.export_kinetics`;
``--potential`` / ``--param``, ``--temperature-K``, ``--seed``, ``--device``, ``--batch-size``
and ``--json`` are the shared options of :mod:`common.cli.options`. ``qct`` counts its work in
``--trajectories`` (QCT trajectories, each with its own collision), not ``--replicas``.
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from common.cli import options as opt
from common.cli.app import emit_json, example, new_app, run_app, warn
from common.cli.flags import current_flags, param_flags, translate_text
from common.errors import ConfigError, DataError, MlpCasesError

app = new_app("mlp-atmospheric: rate constants of gas-phase reactions by quasi-classical "
              "trajectories with any potential, and their Arrhenius fits.",
              epilog=example("mlp-atmospheric qct oh.xyz isoprene.xyz --potential nequip_model/ "
                             "--temperature-K 298 --react 'add=distance:0:5<1.6' --out qct_298K/"))


class Internal(StrEnum):
    """Internal motion of each reactant at the start of a trajectory."""

    mb = "mb"
    none = "none"
    given = "given"
    qc_zpe = "qc-zpe"
    qc_thermal = "qc-thermal"


def _reactant(path: Path):
    """One structure (or several states: every frame) of a reactant file."""
    from common.data.io import read_structures

    frames = read_structures(path)
    if any(f.pbc.any() for f in frames):
        raise DataError("a periodic structure; QCT needs an isolated molecule or atom",
                        where=str(path), fix='give it without a cell (plain xyz, or extxyz with '
                                             'pbc="F F F")')
    return frames[0] if len(frames) == 1 else frames


@app.command("qct", epilog=example(
    "mlp-atmospheric qct oh.xyz isoprene.xyz --potential nequip_model/ --temperature-K 298 \\",
    "    --react 'add_C1=distance:0:5<1.6' --react 'abstraction=distance:0:12<1.1' \\",
    "    --trajectories 2000 --out qct_298K/ --json"))
@param_flags(criteria="--react", n_trajectories="--trajectories", outdir="--out")
def qct(
    a: Annotated[Path, typer.Argument(metavar="A", show_default=False,
                                      help="reactant A: a molecule or atom (xyz, extxyz, ...); "
                                           "several frames are its pre-sampled states")],
    b: Annotated[Path, typer.Argument(metavar="B", show_default=False,
                                      help="reactant B, as A; its atoms are numbered after A's")],
    potential: opt.Potential,
    temperature_K: opt.temperature_option(
        "temperature of the relative motion and the internal states, K"),
    out: opt.out_option("new output folder: qct.json, trajectories.csv, final_frames.extxyz, "
                        "runs/"),
    param: opt.Param = None,
    react: list[str] | None = typer.Option(
        None, "--react", metavar="[NAME=]distance:I:J<R",
        help="reaction criterion of a channel, repeatable: atoms I, J 0-based through A's atoms "
             "then B's, R in Å (or >R); or [NAME=]products:S1+S2. None: reactions from the "
             "bond graph alone"),
    trajectories: int = typer.Option(
        1000, "--trajectories", min=1, metavar="N",
        help="number of QCT trajectories at the final b_max (each its own collision energy, "
             "impact parameter and orientations); the error falls as 1/sqrt(N)"),
    seed: opt.seed_option("seed of every random draw (same seed, same trajectories on CPU)") = 0,
    b_max_A: float | None = typer.Option(
        None, "--b-max-A", callback=opt.positive, metavar="A",
        help="starting largest impact parameter, Å (default: half the geometric bound); grown "
             "until the outer ring stops reacting unless --fixed-b-max"),
    fixed_b_max: bool = typer.Option(False, "--fixed-b-max",
                                     help="use --b-max-A as it is, without growing it"),
    d0_A: float | None = typer.Option(
        None, "--d0-A", callback=opt.positive, metavar="A",
        help="starting centre-of-mass distance, Å (default: beyond b_max and the cutoff)"),
    internal: Internal = typer.Option(
        Internal.mb, "--internal", case_sensitive=False,
        help="internal states: mb (classical, Maxwell-Boltzmann velocities at T), none, given "
             "(the velocities stored with the reactants' frames), or quasi-classical "
             "normal-mode sampling on the potential: qc-zpe (every mode in v=0) or qc-thermal "
             "(thermal v), random phases, thermal rotation"),
    timestep_fs: Annotated[float, typer.Option(
        "--timestep-fs", callback=opt.positive, metavar="FS",
        help="NVE time step, fs (0.5 here, not 1: collisions compress bonds to H)")] = 0.5,
    max_time_fs: float | None = typer.Option(
        None, "--max-time-fs", callback=opt.positive, metavar="FS",
        help="stop an undecided trajectory here, fs (default 6 d0 / mean relative speed)"),
    device: opt.Device = "cpu",
    batch_size: opt.BatchSize = "auto",
    json_out: opt.Json = False,
) -> None:
    """Compute the thermal rate constant k(T) of A + B by quasi-classical trajectories.

    The rate comes with its binomial error and the channels (from the criteria and from the
    products' bond graphs).
    """
    from atmospheric.qct import run_qct
    from common.cli.md import parse_params, warn_default_params
    from common.potential.registry import make_potential

    params = parse_params(param)
    ra, rb = _reactant(a), _reactant(b)
    pot = make_potential(potential, params, device=device)
    warn_default_params(potential, params)
    fresh = not out.exists() or (out.is_dir() and not any(out.iterdir()))
    try:
        res = run_qct(ra, rb, pot, temperature_K, react or [], trajectories, seed, out,
                      b_max_A=b_max_A, converge_b_max=not fixed_b_max, d0_A=d0_A,
                      internal=internal.value, timestep_fs=timestep_fs,
                      max_time_fs=max_time_fs, device=device, batch_size=batch_size,
                      progress=not json_out, potential_label=f"{potential} {param or ''}")
    except MlpCasesError as exc:
        if fresh and out.is_dir():  # a refused or failed run leaves no folder to trip over
            shutil.rmtree(out, ignore_errors=True)
        if exc.where in ("A", "B"):
            exc.where = str(a if exc.where == "A" else b)
        raise
    for note in res.get("warnings", []):
        warn(translate_text(note, current_flags()) or note)
    if json_out:
        emit_json(res)
        return
    print(f"k({res['temperature_K']:g} K) = {res['rate_cm3_per_molecule_s']:.3e} ± "
          f"{res['rate_err_cm3_per_molecule_s']:.2e} cm³/molecule/s  ({res['n_reactive']} of "
          f"{res['n_trajectories']} reactive, b_max {res['b_max_A']:.3g} Å)")
    for name, ch in res["channels"].items():
        frac = "n/a" if ch["fraction"] is None else f"{ch['fraction']:.3f}"
        print(f"  {name}: {ch['n']} ({frac})")
    print(f"outputs: {out}/")


# -- tps ----------------------------------------------------------------------------------------


def _structure(path: Path):
    """Read the first frame of a structure file (its FixAtoms constraints kept)."""
    from common.data.io import read_structures

    return read_structures(path)[0]


@app.command("tps", epilog=example(
    "mlp-atmospheric tps complex.traj --potential nequip_model/ --cv distance:0:5 "
    "--state-a 2.6,4.0 --state-b 0.9,1.2 --temperature-K 298 --interfaces 2.4,2.1,1.8,1.5 "
    "--shots 400 --out tis_298K/ --json"))
@param_flags(outdir="--out", cv="--cv", state_a="--state-a", state_b="--state-b",
             interfaces="--interfaces", structure="STRUCTURE", n_interfaces="--interfaces",
             max_path_steps="--max-path-steps", flux_steps="--flux-steps",
             shots="--shots", mixing="--mixing")
def tps(
    structure: Annotated[Path, typer.Argument(
        metavar="STRUCTURE", show_default=False,
        help="starting structure, in state A (any ASE format; first frame; atoms fixed with "
             "ASE FixAtoms, e.g. in a .traj file, stay fixed)")],
    potential: opt.Potential,
    cv: Annotated[str, typer.Option(
        "--cv", metavar="distance:I:J", show_default=False,
        help="order parameter: distance between two atoms or groups' centres of mass, Å; "
             "0-based indices, e.g. distance:0,1,2:15")],
    state_a: Annotated[str, typer.Option(
        "--state-a", metavar="LO,HI", show_default=False,
        help="state A: range of the CV, Å (the structure must be in it)")],
    state_b: Annotated[str, typer.Option(
        "--state-b", metavar="LO,HI", show_default=False,
        help="state B: range of the CV, Å (disjoint from A)")],
    temperature_K: opt.temperature_option(
        "temperature of the Langevin bath and of the shooting momenta, K"),
    out: opt.out_option("new output folder: tis.json, interfaces.csv, reactive_path.extxyz"),
    param: opt.Param = None,
    friction_per_ps: float = typer.Option(
        1.0, "--friction-per-ps", min=0.0, callback=opt.finite, metavar="1/PS",
        help="Langevin friction, 1/ps; 0 runs NVE (momenta still drawn at the temperature)"),
    timestep_fs: opt.TimestepFs = 1.0,
    interfaces: str | None = typer.Option(
        None, "--interfaces", metavar="X1,X2,...",
        help="interfaces, CV values in Å from A's edge (included) towards B's edge (excluded);"
             " default: 4 evenly spaced from A's edge"),
    shots: int = typer.Option(200, "--shots", min=1, metavar="N",
                              help="two-way shooting trials per interface"),
    chains: int = typer.Option(32, "--chains", min=1, metavar="N",
                               help="independent shooting chains per interface, run as one "
                                    "batch per round (their spread gives the error)"),
    flux_replicas: int = typer.Option(16, "--flux-replicas", min=1, metavar="N",
                                      help="MD replicas in A for the flux through the first "
                                           "interface"),
    flux_steps: int = typer.Option(5000, "--flux-steps", min=2, metavar="N",
                                   help="steps of each flux replica (the first 10% not "
                                        "counted)"),
    max_path_steps: int = typer.Option(5000, "--max-path-steps", min=3, metavar="N",
                                       help="longest path, steps; longer trials are rejected"),
    mixing: float = typer.Option(1.0, "--mixing", min=0.0, max=1.0, metavar="A",
                                 help="momentum mixing of a shot: 1 redraws the momenta, "
                                      "smaller values perturb them"),
    seed: opt.seed_option("seed of every random draw (same seed, same numbers on CPU)") = 0,
    device: opt.Device = "cpu",
    batch_size: opt.BatchSize = "auto",
    json_out: opt.Json = False,
) -> None:
    """Compute k_AB (per ps) of a transition with a barrier by transition interface sampling.

    The rate constant is the flux through the first interface x crossing probabilities, with errors.
    """
    from atmospheric.tps import run_tis
    from common.cli.md import parse_params, warn_default_params
    from common.potential.registry import make_potential

    params = parse_params(param)
    at = _structure(structure)
    pot = make_potential(potential, params, device=device)
    warn_default_params(potential, params)
    fresh = not out.exists() or (out.is_dir() and not any(out.iterdir()))

    def report(i, rnd, rounds):
        if not json_out and rnd == rounds:
            print(f"interface {i}: {rounds} rounds done", file=sys.stderr)

    try:
        res = run_tis(at, pot, cv, state_a, state_b, temperature_K, out,
                      friction_per_ps=friction_per_ps, timestep_fs=timestep_fs,
                      interfaces=interfaces, shots=shots, chains=chains, seed=seed,
                      flux_replicas=flux_replicas, flux_steps=flux_steps,
                      max_path_steps=max_path_steps, mixing=mixing, device=device,
                      batch_size=batch_size, progress=report,
                      potential_label=f"{potential} {param or ''}")
    except MlpCasesError as exc:
        if fresh and out.is_dir():
            shutil.rmtree(out, ignore_errors=True)
        if exc.where == "structure":
            exc.where = str(structure)
        raise
    for note in res.get("warnings", []):
        warn(translate_text(note, current_flags()) or note)
    if json_out:
        emit_json({k: res[k] for k in _TIS_KEYS} | {k: v for k, v in res.items()
                                                   if k not in _TIS_KEYS})
        return
    err = res["rate_err_per_ps"]
    print(f"k_AB({res['temperature_K']:g} K) = {res['rate_per_ps']:.4g} ± "
          f"{'n/a' if err is None else format(err, '.2g')} /ps  (flux {res['flux_per_ps']:.4g} "
          f"/ps x P {res['crossing_probability']:.4g}; {res['n_trials']} trials, acceptance "
          f"{res['acceptance']:.2f})")
    print(f"outputs: {out}/")


_TIS_KEYS = ("method", "temperature_K", "rate_per_ps", "rate_err_per_ps", "flux_per_ps",
             "crossing_probability", "crossing_probability_err", "n_trials", "acceptance")


# -- rates --------------------------------------------------------------------------------------

_RATE, _ERR = "rate_cm3_per_molecule_s", "rate_err_cm3_per_molecule_s"


def _csv_rows(path: Path) -> list[dict]:
    """k(T) rows of a CSV table: temperature_K, rate_cm3_per_molecule_s[, its error]."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        cols = [c.strip() for c in reader.fieldnames or []]
        reader.fieldnames = cols
        if not {"temperature_K", _RATE} <= set(cols):
            raise DataError(f"missing column(s); found {cols}", where=str(path),
                            fix=f"give columns temperature_K, {_RATE} and optionally {_ERR}")
        rows = []
        for row in reader:
            where = f"{path} line {reader.line_num}"
            try:
                r = {"temperature_K": float(row["temperature_K"]), _RATE: float(row[_RATE]),
                     _ERR: float(row[_ERR]) if (row.get(_ERR) or "").strip() else None}
            except (TypeError, ValueError):
                raise DataError(f"not a number in {dict(row)}", where=where,
                                fix="give numbers in every row") from None
            rows.append({**r, "channels": {}, "n_reactive": 0})
    return rows


def _results(path: Path) -> list[dict]:
    """Read the QCT results of one input.

    A qct.json (or its folder, or `qct --json` output), a JSON list of {temperature_K, rate...}
    rows, or a CSV table.
    """
    p = path / "qct.json" if path.is_dir() else path
    if not p.is_file():
        raise DataError("file not found", where=str(p),
                        fix="give qct.json files (or `qct --out` folders) or a CSV k(T) table")
    if p.suffix.lower() == ".csv":
        return _csv_rows(p)
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"not JSON ({exc})", where=str(p),
                        fix="give qct.json files or a CSV k(T) table") from None
    items = data if isinstance(data, list) else [data]
    for r in items:
        if not (isinstance(r, dict) and "temperature_K" in r and _RATE in r):
            raise DataError(f"no temperature_K and {_RATE}", where=str(p),
                            fix="give the qct.json of `mlp-atmospheric qct`, or rows with "
                                f"temperature_K and {_RATE}")
        r.setdefault("channels", {})
        r.setdefault("n_reactive", 0)
    return items


@app.command("rates", epilog=example(
    "mlp-atmospheric rates qct_250K/ qct_298K/ qct_350K/ qct_400K/ --reactants OH,C5H8 "
    "--out kinetics/ --json"))
@param_flags(outdir="--out")
def rates(
    inputs: Annotated[list[Path], typer.Argument(
        metavar="INPUT", show_default=False,
        help="qct.json files (or `qct --out` folders), one per temperature; or a CSV/JSON k(T) "
             f"table: temperature_K, {_RATE}[, {_ERR}]")],
    out: opt.out_option("output folder: kinetics.json, rates.csv, mechanism.kpp, arrhenius.png",
                        required=False) = Path("kinetics"),
    reactants: str | None = typer.Option(
        None, "--reactants", metavar="A,B",
        help="reactant names for the mechanism (default: those the QCT runs found)"),
    modified: bool = typer.Option(False, "--modified",
                                  help="fit k = A (T/300)^n exp(-Ea/RT) (needs 3+ temperatures)"),
    json_out: opt.Json = False,
) -> None:
    """Fit Arrhenius A and Ea (kcal/mol, eV) of the total rate and of each channel.

    Also branching against T, and one KPP/MCM equation per channel.
    """
    from atmospheric.kinetics import export_kinetics

    results = [r for p in inputs for r in _results(p)]
    names = [s.strip() for s in reactants.split(",") if s.strip()] if reactants else \
        [s.strip() for s in str(results[0].get("reactants", "")).split(" + ") if s.strip()]
    if not names:
        raise ConfigError("no reactant names for the mechanism (a k(T) table does not say)",
                          where="--reactants", fix="give them, e.g. --reactants OH,C5H8")
    try:
        res = export_kinetics(out, results, names, modified=modified)
    except MlpCasesError as exc:
        if exc.where in ("results", "temperature_K", "rates", "rate_errors"):
            exc.where = ", ".join(str(p) for p in inputs)  # the data, not a Python parameter
        raise
    if json_out:
        emit_json(res)
        return
    t = res["total"]
    err = t["Ea_err_kcal_per_mol"]
    print(f"A = {t['A_cm3_per_molecule_s']:.3e} cm³/molecule/s, Ea = "
          f"{t['Ea_kcal_per_mol']:.3f} ± {'n/a' if err is None else format(err, '.3f')} kcal/mol"
          + (f", n = {t['n']:.2f}" if modified else ""))
    print("\n".join(res["mechanism"]))
    print(f"outputs: {out}/")


# -- the pipeline: build, sample, train, export, case-study --------------------------------------

_Scale = Annotated[str, typer.Option(
    "--scale", metavar="SCALE", help="tiny, paper (the seed's settings) or a case JSON file")]


def _case_cfg(scale: str, voc: str | None = None) -> dict:
    from atmospheric.case_study import load_case_config

    cfg = load_case_config(scale)
    return cfg | ({"voc": voc} if voc else {})


@app.command("build", epilog=example("mlp-atmospheric build isoprene --out oh_isoprene/"))
@param_flags(smiles="VOC")
def build_cmd(
    voc: Annotated[str, typer.Argument(metavar="VOC", show_default=False,
                                       help="propene, isoprene, toluene, or a SMILES")],
    out: opt.out_option("folder: reactants/oh.xyz, reactants/voc.xyz, reactants/channels.json"),
    seed: opt.Seed = 0,
    json_out: opt.Json = False,
) -> None:
    """Build OH and a VOC from SMILES (RDKit + MMFF), and its channels as QCT criteria.

    Channels: addition at each sp2 carbon, H-abstraction from sp3 carbons.
    """
    from atmospheric.case_study import stage_build

    res = stage_build({"voc": voc}, out, seed)
    if json_out:
        emit_json(res)
        return
    for c in res["channels"]:
        print(f"{c['name']}: " + " ".join(f"--react '{x}'" for x in c["criteria"]))
    print(f"outputs: {out}/reactants/")


@app.command("sample", epilog=example("mlp-atmospheric sample oh_isoprene/ --scale tiny"))
def sample_cmd(
    folder: Annotated[Path, typer.Argument(metavar="FOLDER", show_default=False,
                                           help="a folder written by `build`")],
    scale: _Scale = "tiny",
    seed: opt.Seed = 0,
    json_out: opt.Json = False,
) -> None:
    """Sample and label training frames -> FOLDER/data/labelled.extxyz.

    Thermal states of each reactant (Langevin MD on GFN2-xTB) and supersystem frames far apart and
    along each channel's path, labelled with GFN2-xTB (doublet, 1000 K electronic temperature;
    cached) -> FOLDER/data/labelled.extxyz.
    """
    from atmospheric.case_study import stage_label, stage_sample

    build = _read_build(folder)
    cfg = _case_cfg(scale, build["voc"])
    stage_sample(cfg, folder, seed, build)
    labelled, report = stage_label(cfg, folder)
    if json_out:
        emit_json(report)
        return
    print(f"{len(labelled)} labelled frames ({report['n_failed']} failed): "
          f"{folder}/data/labelled.extxyz")


def _read_build(folder: Path) -> dict:
    f = folder / "reactants" / "channels.json"
    if not f.is_file():
        raise DataError("no reactants/channels.json", where=str(folder),
                        fix="run `mlp-atmospheric build VOC --out FOLDER` first")
    return json.loads(f.read_text())


@app.command("train", epilog=example("mlp-atmospheric train oh_isoprene/ --scale tiny"))
def train_cmd(
    folder: Annotated[Path, typer.Argument(metavar="FOLDER", show_default=False,
                                           help="a folder with data/labelled.extxyz (`sample`)")],
    scale: _Scale = "tiny",
    seed: opt.Seed = 0,
    device: opt.Device = "cpu",
    json_out: opt.Json = False,
) -> None:
    """Train NequIP (nequip's own trainer) on the labelled frames -> FOLDER/model/.

    The model is usable as `--potential FOLDER/model`.
    """
    import ase.io

    from atmospheric.case_study import stage_train

    data = folder / "data" / "labelled.extxyz"
    if not data.is_file():
        raise DataError("no data/labelled.extxyz", where=str(folder),
                        fix="run `mlp-atmospheric sample FOLDER` first")
    model = stage_train(_case_cfg(scale), folder, ase.io.read(data, ":"), seed, device)
    if json_out:
        emit_json(model.meta)
        return
    print(f"model: {folder}/model/ (valid force MAE "
          f"{model.meta['metrics']['valid']['force_mae_eV_A']:.3f} eV/Å)")


@app.command("export", epilog=example(
    "mlp-atmospheric export kinetics/kinetics.json --out mechanism/"))
@param_flags(outdir="--out")
def export_cmd(
    kinetics: Annotated[Path, typer.Argument(metavar="KINETICS", show_default=False,
                                             help="kinetics.json written by `rates` (or its "
                                                  "folder)")],
    out: opt.out_option("folder: mechanism.kpp (KPP), mechanism.mcm (MCM/FACSIMILE), "
                        "rates.json, rates.csv"),
    json_out: opt.Json = False,
) -> None:
    """Write the fitted rates as a KPP and an MCM-style mechanism beside JSON and CSV tables.

    One equation per channel, A*EXP(-E/TEMP).
    """
    p = kinetics / "kinetics.json" if kinetics.is_dir() else kinetics
    try:
        data = json.loads(p.read_text())
        lines, total = list(data["mechanism"]), data["total"]
    except (OSError, ValueError, KeyError, TypeError):
        raise DataError("not a kinetics.json with a mechanism", where=str(p),
                        fix="give the kinetics.json that `mlp-atmospheric rates` wrote") from None
    from common.fileio import atomic_write_json, atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "mechanism.kpp", "#EQUATIONS\n" + "\n".join(lines) + "\n")
    mcm = [_mcm_line(ln) for ln in lines]
    atomic_write_text(out / "mechanism.mcm", "\n".join(mcm) + "\n")
    rows = [{"channel": n, **{k: v for k, v in ch.items() if not isinstance(v, dict | list)}}
            for n, ch in data.get("channels", {}).items()]
    atomic_write_json(out / "rates.json", {"reactants": data.get("reactants"), "total": total,
                                           "channels": rows, "mechanism": lines})
    cols = sorted({k for r in rows for k in r} - {"channel"})
    buf = ["channel," + ",".join(cols)] + [
        r["channel"] + "," + ",".join("" if r.get(c) is None else str(r[c]) for c in cols)
        for r in rows]
    atomic_write_text(out / "rates.csv", "\n".join(buf) + "\n")
    res = {"mechanism": lines, "files": [str(out / f) for f in (
        "mechanism.kpp", "mechanism.mcm", "rates.json", "rates.csv")]}
    if json_out:
        emit_json(res)
        return
    print("\n".join(lines))
    print(f"outputs: {out}/")


def _mcm_line(kpp: str) -> str:
    """``{1.} A + B = P : RATE ;`` (KPP) -> ``% RATE : A + B = P ;`` (MCM FACSIMILE)."""
    body = kpp.split("}", 1)[-1]
    equation, _, rate = body.partition(":")
    return f"% {rate.strip().rstrip(';').strip()} : {equation.strip()} ;"


@app.command("case-study", epilog=example(
    "mlp-atmospheric case-study --scale tiny --out runs/atmospheric_tiny"))
def case_study_cmd(
    scale: _Scale = "tiny",
    out: opt.out_option("output folder (summary.json, report.md, kinetics/, qct_*K/); a "
                        "rerun with the same folder resumes", required=False
                        ) = Path("runs/atmospheric"),
    seed: opt.Seed = 0,
    device: opt.Device = "cpu",
    json_out: opt.Json = False,
) -> None:
    """Run the seed's case study end to end.

    OH + VOC from SMILES, GFN2-xTB labels, NequIP, QCT k(T) with branching, Arrhenius, KPP
    mechanism, report.md.
    """
    from atmospheric import case_study

    summary = case_study.run(scale, out, seed=seed, device=device)
    if json_out:
        emit_json(summary)
        return
    for r in summary["qct"]:
        print(f"k({r['temperature_K']:g} K) = {r['rate_cm3_per_molecule_s']:.3e} ± "
              f"{r['rate_err_cm3_per_molecule_s']:.2e} cm³/molecule/s "
              f"({r['n_reactive']}/{r['n_trajectories']})")
    print(f"report: {out}/report.md")


def main() -> None:
    """Run the ``mlp-atmospheric`` command line."""
    sys.exit(run_app(app))


if __name__ == "__main__":
    main()
