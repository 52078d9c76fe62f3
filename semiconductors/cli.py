"""The ``mlp-semiconductors`` command line.

GaN structures and point defects (``build``), relaxed formation energies between the Ga-rich and
N-rich limits (``defects``), MACE training (``train``), formation energies vs μ and formation free
energies vs T (``formation``), absolute free energies of crystals by Frenkel-Ladd integration
(``ti``) and the seed's case study (``case-study``).

``ti`` is a thin layer over :func:`semiconductors.thermo.frenkel_ladd`; ``--potential`` /
``--param``,
``--temperatures``, ``--timestep-fs``, ``--seed``, ``--device``, ``--batch-size``,
``--checkpoint-every``, ``--restart`` and ``--json`` are the shared options of
:mod:`common.cli.options`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from common.cli import options as opt
from common.cli.app import emit_json, example, new_app, run_app, warn
from common.cli.flags import param_flags
from common.errors import ConfigError, DataError, MlpCasesError

app = new_app("mlp-semiconductors: wurtzite GaN and its point defects, formation energies, "
              "MACE, and free energies of crystals by thermodynamic integration (Frenkel-Ladd).",
              epilog=example("mlp-semiconductors ti gan_vacancy.extxyz --potential mace_model/ "
                             "--temperatures 300,600,900 --json"))


@app.callback()
def _group() -> None:
    # a group even with one command, so that `mlp-semiconductors ti ...` keeps its name
    pass


def default_out(structure: Path) -> Path:
    """Return the default ``--out``: ``<STRUCTURE stem>_ti/`` next to the structure file."""
    return structure.parent / f"{structure.stem}_ti"


def _check_out(out: Path, restart: bool) -> None:
    """Refuse, before any work, an output that cannot be written or would be mixed."""
    if out.exists() and not out.is_dir():
        raise ConfigError("a file is in the way of the output folder", where=str(out),
                          fix="choose another --out")
    md = out / "md"
    if not restart and md.is_dir() and any(md.iterdir()):
        raise ConfigError("a TI run is already in this folder", where=str(out),
                          fix="choose another --out, or pass --restart to continue it")


def _check_periodic(atoms, structure: Path) -> None:
    if not (atoms.pbc.all() and abs(atoms.cell.volume) > 1e-8):
        raise DataError(f"not a crystal periodic along x, y and z (pbc {atoms.pbc.tolist()})",
                        where=str(structure),
                        fix='give a bulk cell with its lattice and pbc in x, y and z (extxyz: '
                            'Lattice="..." pbc="T T T"), with or without the defect')


@app.command("ti", epilog=example(
    "mlp-semiconductors ti ar.extxyz -p lj --param epsilon=0.0104 --param sigma=3.4 "
    "--param rc=8.5 \\", "    --temperatures 10,20,40 --n-lambda 8 --steps-per-window 10000 "
                         "--out ti_ar/ --json"))
@param_flags(temperatures_K="--temperatures", outdir="--out",
             spring_eV_per_A2="--spring-eV-A2")
def ti(
    structure: opt.structures_argument("the crystal (3D-periodic cell; relaxed positions give "
                                       "the flattest integrand); its first frame is used"),
    potential: opt.Potential,
    temperatures: opt.temperatures_option("temperatures to integrate at, K (each > 0)"),
    param: opt.Param = None,
    out: Annotated[Path | None, typer.Option(
        "--out", metavar="PATH",
        help="output folder (md/, frenkel_ladd.json, dudl_vs_lambda.png); default "
             "<STRUCTURE stem>_ti/ next to the structure")] = None,
    n_lambda: int = typer.Option(8, "--n-lambda", min=2, metavar="N",
                                 help="Gauss-Legendre points on λ from Einstein crystal (0) to "
                                      "the potential (1)"),
    steps_per_window: int = typer.Option(
        10000, "--steps-per-window", min=128, metavar="N",
        help="production MD steps per (temperature, λ) window (>= 128: the error bars need "
             "blocks)"),
    equilibration_steps: int = typer.Option(
        2000, "--equilibration-steps", min=0, metavar="N",
        help="steps discarded at the start of each window"),
    spring_eV_A2: float | None = typer.Option(
        None, "--spring-eV-A2", callback=opt.positive, metavar="EV/A2",
        help="Einstein spring constant, eV/Å² (default: per element, the mean Hessian "
             "diagonal)"),
    timestep_fs: opt.TimestepFs = 1.0,
    friction_per_ps: Annotated[float, typer.Option(
        "--friction-per-ps", callback=opt.positive, metavar="1/PS",
        help="Langevin friction, 1/ps (10 here, not 1: near the lower phonon frequencies "
             "dU/dλ decorrelates fastest)")] = 10.0,
    seed: opt.seed_option("random seed; window k uses seed + k") = 0,
    device: opt.Device = "cpu",
    batch_size: opt.BatchSize = "auto",
    checkpoint_every: opt.CheckpointEvery = 0,
    restart: opt.Restart = False,
    json_out: opt.Json = False,
) -> None:
    """Compute the classical Helmholtz free energy per atom at each temperature, with its error.

    By Frenkel-Ladd integration from an Einstein crystal (all windows in one batched run).
    """
    from common.cli.md import parse_params, warn_default_params
    from common.data.io import read_structures
    from common.potential.registry import make_potential
    from semiconductors.thermo import frenkel_ladd

    out = default_out(structure) if out is None else out
    _check_out(out, restart)
    params = parse_params(param)
    atoms = read_structures(structure)[0]
    _check_periodic(atoms, structure)
    pot = make_potential(potential, params, device=device)
    warn_default_params(potential, params)
    try:
        res = frenkel_ladd(atoms, pot, temperatures, out, n_lambda=n_lambda,
                           steps_per_window=steps_per_window,
                           equilibration_steps=equilibration_steps,
                           spring_eV_per_A2=spring_eV_A2, timestep_fs=timestep_fs,
                           friction_per_ps=friction_per_ps, seed=seed, device=device,
                           batch_size=batch_size, checkpoint_every=checkpoint_every,
                           restart=restart, progress=not json_out,
                           potential_label=f"{potential} {param or ''}")
    except MlpCasesError as exc:
        if exc.where == "structure":  # name the file rather than the Python parameter
            exc.where = str(structure)
        raise
    for note in dict.fromkeys(w for r in res["results"] for w in r["warnings"]):
        warn(note)
    if json_out:
        emit_json(res)
        return
    for r in res["results"]:
        print(f"T = {r['temperature_K']:g} K: F = {r['free_energy_eV_per_atom']:.6f} ± "
              f"{r['free_energy_err_eV_per_atom']:.2g} eV/atom (springs "
              f"{r['einstein_spring_eV_per_A2']:.3g} eV/Å², {r['n_lambda']} λ points)")
    print(f"outputs: {out}/ (frenkel_ladd.json, dudl_vs_lambda.png, md/)")


# -- structures, defects, training, formation, case study ----------------------------------------
TERSOFF = "tersoff"


def _potential(name: str, param: list[str] | None, device: str):
    """Make the potential that ``--potential`` names.

    ``tersoff`` (the embedded reference, LAMMPS; ``--param backend=ase``) or anything
    ``--potential`` takes elsewhere.
    """
    from common.cli.md import parse_params, warn_default_params
    from common.potential.registry import make_potential

    params = parse_params(param)
    if name == TERSOFF:
        from semiconductors.reference import TersoffBatched

        try:
            return TersoffBatched(**params)
        except TypeError as exc:
            raise ConfigError(f"bad parameters for tersoff: {exc}", where="--param",
                              fix="tersoff takes only backend=lammps|ase") from exc
    pot = make_potential(name, params, device=device)
    warn_default_params(name, params)
    return pot


def _triple(text: str, flag: str) -> tuple[int, int, int]:
    try:
        dims = tuple(int(x) for x in text.split(","))
    except ValueError:
        dims = ()
    if len(dims) != 3 or min(dims) < 1:
        raise ConfigError(f"bad {flag} {text!r}", where=flag,
                          fix="write three positive integers, e.g. 3,3,2")
    return dims  # type: ignore[return-value]


def _site(text: str | None) -> tuple[float, float, float] | None:
    if text is None:
        return None
    import math

    try:
        xyz = tuple(float(x) for x in text.split(","))
    except ValueError:
        xyz = ()
    if len(xyz) != 3 or not all(math.isfinite(v) for v in xyz):
        raise ConfigError(f"bad --site {text!r}", where="--site",
                          fix="write x,y,z in Å, e.g. 3.2,1.8,4.0")
    return xyz  # type: ignore[return-value]


def _read_host(path: Path):
    from common.data.io import read_structures
    from semiconductors.systems import check_wurtzite

    atoms = read_structures(path)[0]
    check_wurtzite(atoms, where=str(path))
    return atoms


def _kinds(text: str) -> list[str]:
    from semiconductors.systems import DEFECT_KINDS

    kinds = [k.strip() for k in text.split(",") if k.strip()]
    bad = [k for k in kinds if k not in DEFECT_KINDS]
    if bad or not kinds:
        raise ConfigError(f"unknown defect {bad[0] if bad else text!r}", where="--defects",
                          fix=f"use some of {','.join(DEFECT_KINDS)}")
    return kinds


_Host = Annotated[Path, typer.Argument(
    help="perfect wurtzite GaN supercell (from `build`); its first frame is used",
    metavar="HOST", show_default=False)]
_GaPhase = Annotated[str, typer.Option(
    "--ga-phase", metavar="PHASE", help="Ga-rich reservoir: alpha, bcc, fcc or lowest")]
_ChemPotentials = Annotated[Path | None, typer.Option(
    "--chemical-potentials", metavar="FILE",
    help="reuse the chemical_potentials.json of an earlier `defects` run with the same "
         "potential (else computed: relaxed GaN, Ga metal, N2)")]
_Lattice = Annotated[str, typer.Option(
    "--lattice", metavar="seed|tersoff|A,C",
    help="wurtzite lattice: seed (a 3.189, c 5.185 Å), tersoff (relaxed with the reference), "
         "or a,c in Å")]


def _lattice(text: str) -> tuple[float, float, float]:
    import math

    from semiconductors import systems as S

    if text == "seed":
        return S.SEED_A_A, S.SEED_C_A, S.IDEAL_U
    if text == TERSOFF:
        from semiconductors.reference import TersoffGaN

        lat = S.relaxed_lattice(TersoffGaN())
        return lat["a_A"], lat["c_A"], lat["u"]
    try:
        a, c = (float(x) for x in text.split(","))
    except ValueError:
        a = c = float("nan")
    if not (math.isfinite(a) and math.isfinite(c) and a > 0 and c > 0):
        raise ConfigError(f"bad --lattice {text!r}", where="--lattice",
                          fix="write seed, tersoff, or a,c in Å (e.g. 3.189,5.185)")
    return a, c, S.IDEAL_U


@app.command("build", epilog=example(
    "mlp-semiconductors build --repeat 3,3,2 --defect V_Ga --out vga.extxyz"))
@param_flags(kind="--defect", position="--site", repeat="--repeat", host="--host",
             bilayers="--bilayers", vacuum_A="--vacuum-A", a_A="--lattice", c_A="--lattice")
def build(
    out: opt.out_option("extxyz file to write (replaced whole, never half-written)"),
    repeat: str = typer.Option("3,3,2", "--repeat", metavar="NA,NB,NC",
                               help="supercell of the 4-atom wurtzite cell (3,3,2: 72 atoms)"),
    lattice: _Lattice = "seed",
    host: Path | None = typer.Option(
        None, "--host", metavar="FILE",
        help="put the defect into this perfect wurtzite cell instead of building one"),
    defect: str | None = typer.Option(
        None, "--defect", metavar="KIND",
        help="V_Ga, V_N, Ga_N, N_Ga, Ga_i, N_i, or a complex: V_Ga+V_N, Ga_N+N_Ga, "
             "V_Ga+Ga_i (neutral, unrelaxed)"),
    site: str | None = typer.Option(
        None, "--site", metavar="X,Y,Z",
        help="Cartesian site, Å, inside the cell: where the interstitial goes, or near which "
             "atom the vacancy/antisite is made (default: the cell centre; interstitials: the "
             "largest void)"),
    index: int | None = typer.Option(None, "--index", min=0, metavar="N",
                                     help="the host atom to remove or replace"),
    slab: bool = typer.Option(False, "--slab", help="a (0001) slab of --repeat NA,NB,* "
                                                    "surface cells instead of bulk"),
    bilayers: int = typer.Option(4, "--bilayers", min=1, metavar="N",
                                 help="slab: Ga-N bilayers"),
    vacuum_A: float = typer.Option(12.0, "--vacuum-A", callback=opt.positive, metavar="A",
                                   help="slab: vacuum above, Å"),
) -> None:
    """Wurtzite GaN bulk, supercell, (0001) slab, or a cell with one point defect."""
    from common.fileio import atomic_write_atoms
    from semiconductors import systems as S

    if slab and (defect or host):
        raise ConfigError("--slab builds a clean surface", where="--slab",
                          fix="leave out --defect/--host, or drop --slab")
    if host is not None:
        cell = _read_host(host)
    else:
        a, c, u = _lattice(lattice)
        prim = S.wurtzite(a, c, u)
        dims = _triple(repeat, "--repeat")
        if slab:
            cell = S.slab_0001(prim, size=dims[:2], bilayers=bilayers, vacuum_A=vacuum_A,
                               fixed_bilayers=1 if bilayers > 1 else 0)
        else:
            cell = S.supercell(prim, dims)
    if defect is not None:
        cell = S.make_defect(cell, defect, index=index, position=_site(site))
    elif site is not None or index is not None:
        raise ConfigError("--site/--index need --defect", where="--site",
                          fix="add --defect KIND")
    atomic_write_atoms(out, cell)
    print(f"{len(cell)} atoms ({cell.get_chemical_formula()}) -> {out}")


@app.command("defects", epilog=example(
    "mlp-semiconductors defects host.extxyz -p tersoff --defects V_Ga,V_N,N_i "
    "--search-interstitials --out defects/ --json"))
@param_flags(kinds="--defects", outdir="--out", path="--chemical-potentials",
             temperature_K="--search-temperature-K", ga_phase_name="--ga-phase",
             ga_phase="--ga-phase", fmax_eV_A="--fmax-eV-A")
def defects_cmd(
    host: _Host,
    potential: opt.Potential,
    out: opt.out_option("output folder (formation_energies.json/.csv/.png, relaxed.extxyz, "
                        "chemical_potentials.json)"),
    param: opt.Param = None,
    defects: str = typer.Option("V_Ga,V_N,Ga_N,N_Ga,Ga_i,N_i", "--defects",
                                metavar="K1,K2,...", help="defects to compute"),
    search_interstitials: bool = typer.Option(
        False, "--search-interstitials",
        help="anneal-and-quench search for each interstitial (else: relaxed from the largest "
             "void)"),
    search_temperature: float = typer.Option(
        900.0, "--search-temperature-K", callback=opt.positive_finite, metavar="K",
        help="anneal temperature of the interstitial search, K"),
    anneal_steps: int = typer.Option(1000, "--anneal-steps", min=1, metavar="N",
                                     help="MD steps of each anneal"),
    ga_phase: _GaPhase = "alpha",
    chem: _ChemPotentials = None,
    fmax: float = typer.Option(0.01, "--fmax-eV-A", callback=opt.positive, metavar="EV/A",
                               help="relaxation: largest force, eV/Å"),
    seed: opt.Seed = 0,
    device: opt.Device = "cpu",
    json_out: opt.Json = False,
) -> None:
    """Compute relaxed formation energies at the Ga-rich and N-rich limits.

    μ from the same potential's Ga metal and N2.
    """
    from common.fileio import atomic_write_json
    from semiconductors import defects as D
    from semiconductors.systems import interstitial_search

    kinds = _kinds(defects)
    if out.exists() and not out.is_dir():
        raise ConfigError("a file is in the way of the output folder", where=str(out),
                          fix="choose another --out")
    cell = _read_host(host)
    pot = _potential(potential, param, device)
    mu = D.read_chemical_potentials(chem) if chem else D.chemical_potentials(
        pot, ga_phase_name=ga_phase)
    atomic_write_json(out / "chemical_potentials.json", mu)
    inter = {}
    if search_interstitials:
        for k in kinds:
            if k in ("Ga_i", "N_i"):
                inter[k] = interstitial_search(cell, k[:-2], pot, out / "interstitials" / k,
                                               temperature_K=search_temperature,
                                               anneal_steps=anneal_steps, seed=seed,
                                               fmax_eV_A=fmax)["lowest"]
    res = D.formation_energies(cell, pot, mu, kinds=kinds, interstitials=inter,
                               fmax_eV_A=fmax, outdir=out)
    if json_out:
        emit_json({"defects": D.table_rows(res),
                   "formation_enthalpy_eV": mu["formation_enthalpy_eV"],
                   "limits": mu["limits"], "outdir": str(out)})
        return
    print(f"ΔH_f(GaN) = {mu['formation_enthalpy_eV']:.3f} eV (Ga: {mu['ga_phase']})")
    for r in D.table_rows(res):
        print(f"{r['defect']:>9}: {r['E_f_Ga_rich_eV']:8.3f} eV (Ga-rich)  "
              f"{r['E_f_N_rich_eV']:8.3f} eV (N-rich)")
    print(f"outputs: {out}/")


@app.command("train", epilog=example(
    "mlp-semiconductors train labels.extxyz --config tiny --committee 2 --out model/"))
@param_flags(n_models="--committee", workdir="--out")
def train(
    data: Annotated[Path, typer.Argument(help="labelled structures (extxyz or ASE db)",
                                         metavar="DATA", show_default=False)],
    out: opt.out_option("model folder; it appears only when training has finished"),
    config: str = typer.Option("tiny", "--config", metavar="tiny|paper|FILE",
                               help="MACE config: tiny, paper (the seed's) or a JSON file"),
    committee: int = typer.Option(1, "--committee", min=1, metavar="N",
                                  help="train N models (seeds seed..seed+N-1) as a committee"),
    fractions: opt.Fractions = "0.8,0.1,0.1",
    seed: opt.Seed = 0,
    device: opt.Device = "cpu",
    overwrite: opt.Overwrite = False,
    json_out: opt.Json = False,
) -> None:
    """Train MACE (mace's own mace_run_train) on a seeded train/valid/test split."""
    from common.cli.training import train_model
    from semiconductors.model import MACEAdapter, load_config, train_committee

    train_model(MACEAdapter, load_config, data=data, out=out, config=config,
                committee=committee, fractions=fractions, seed=seed, device=device,
                overwrite=overwrite, json_out=json_out, train_committee=train_committee)


@app.command("formation", epilog=example(
    "mlp-semiconductors formation host.extxyz -p tersoff --defect V_Ga "
    "--temperatures 300,900 --out vga/ --json"))
@param_flags(temperatures_K="--temperatures", outdir="--out", n_lambda="--n-lambda",
             kinds="--defect", kind="--defect", ga_phase_name="--ga-phase",
             path="--chemical-potentials")
def formation(
    host: _Host,
    potential: opt.Potential,
    out: opt.out_option("output folder (formation.json, ti_perfect/, ti_defect/)"),
    defect: str = typer.Option(..., "--defect", metavar="KIND",
                               help="V_Ga, V_N, Ga_N, N_Ga, Ga_i, N_i, V_Ga+V_N, Ga_N+N_Ga or "
                                    "V_Ga+Ga_i"),
    param: opt.Param = None,
    temperatures: opt.temperatures_option(
        "also the formation free energy at these temperatures, K (Frenkel-Ladd of the "
        "perfect and the defective cell)") = None,
    n_mu: int = typer.Option(11, "--n-mu", min=2, metavar="N",
                             help="points from the N-rich to the Ga-rich limit"),
    ga_phase: _GaPhase = "alpha",
    chem: _ChemPotentials = None,
    n_lambda: int = typer.Option(8, "--n-lambda", min=2, metavar="N",
                                 help="TI: Gauss-Legendre λ points"),
    steps_per_window: int = typer.Option(10000, "--steps-per-window", min=128, metavar="N",
                                         help="TI: production steps per window"),
    equilibration_steps: int = typer.Option(2000, "--equilibration-steps", min=0,
                                            metavar="N", help="TI: steps discarded per window"),
    timestep_fs: opt.TimestepFs = 1.0,
    seed: opt.Seed = 0,
    device: opt.Device = "cpu",
    json_out: opt.Json = False,
) -> None:
    """Compute formation energies vs Δμ_Ga and, with --temperatures, free energies vs T.

    The formation energy vs Δμ_Ga between the N-rich and Ga-rich limits and, with
    --temperatures, the formation free energy vs T with error bars (μ_Ga of the 0 K metal, μ_N =
    F(GaN, T) − μ_Ga per formula unit).
    """
    from common.fileio import atomic_write_json
    from semiconductors import defects as D
    from semiconductors import systems as S
    from semiconductors.defects import LIMITS, composition_change
    from semiconductors.thermo import formation_free_energy, frenkel_ladd

    kind = _kinds(defect)
    if len(kind) != 1:
        raise ConfigError("one defect at a time", where="--defect", fix="give one KIND")
    if out.exists() and not out.is_dir():
        raise ConfigError("a file is in the way of the output folder", where=str(out),
                          fix="choose another --out")
    cell = _read_host(host)
    pot = _potential(potential, param, device)
    mu = D.read_chemical_potentials(chem) if chem else D.chemical_potentials(
        pot, ga_phase_name=ga_phase)
    res = D.formation_energies(cell, pot, mu, kinds=kind)
    row = res["defects"][0]
    x, y = D.formation_vs_mu(row, mu, n_mu)
    result = {"defect": kind[0], "E_f_Ga_rich_eV": row["E_f_Ga_rich_eV"],
              "E_f_N_rich_eV": row["E_f_N_rich_eV"],
              "formation_enthalpy_eV": mu["formation_enthalpy_eV"],
              "vs_mu": [{"delta_mu_Ga_eV": float(a), "E_f_eV": float(b)}
                        for a, b in zip(x, y, strict=True)]}
    if temperatures:
        perfect = S.relax(cell, pot, 1e-3)
        defective = S.relax(S.make_defect(cell, kind[0]), pot, 1e-3)
        kw = dict(n_lambda=n_lambda, steps_per_window=steps_per_window,
                  equilibration_steps=equilibration_steps, timestep_fs=timestep_fs,
                  seed=seed, device=device, progress=not json_out)
        fp = frenkel_ladd(perfect, pot, temperatures, out / "ti_perfect", **kw)
        fd = frenkel_ladd(defective, pot, temperatures, out / "ti_defect", **kw)
        dn = composition_change(defective, perfect)
        rows = []
        for rp, rd in zip(fp["results"], fd["results"], strict=True):
            entry = {"temperature_K": rp["temperature_K"]}
            g = 2.0 * rp["free_energy_eV_per_atom"]
            for lim in LIMITS:
                m = mu["limits"][lim]
                mus = {"Ga": m["Ga"], "N": g - m["Ga"]} if lim == "Ga-rich" else \
                    {"N": m["N"], "Ga": g - m["N"]}
                (f,) = formation_free_energy(defective, {"results": [rd]}, perfect,
                                             {"results": [rp]}, chemical_potentials_eV=mus)
                key = lim.replace("-", "_")
                entry[f"F_f_{key}_eV"] = f["formation_free_energy_eV"]
                entry[f"F_f_{key}_err_eV"] = f["formation_free_energy_err_eV"]
            rows.append(entry)
        result["dn"] = dn
        result["vs_temperature"] = rows
    atomic_write_json(out / "formation.json", result)
    if json_out:
        emit_json(result)
        return
    print(f"{kind[0]}: E_f = {row['E_f_Ga_rich_eV']:.3f} eV (Ga-rich), "
          f"{row['E_f_N_rich_eV']:.3f} eV (N-rich)")
    for r in result.get("vs_temperature", []):
        print(f"T = {r['temperature_K']:g} K: F_f = {r['F_f_Ga_rich_eV']:.3f} ± "
              f"{r['F_f_Ga_rich_err_eV']:.3f} (Ga-rich), {r['F_f_N_rich_eV']:.3f} ± "
              f"{r['F_f_N_rich_err_eV']:.3f} eV (N-rich)")
    print(f"outputs: {out}/")


@app.command("growth", epilog=example(
    "mlp-semiconductors growth --temperatures 900,1100 --flux-ratios 0.8,1.0,1.2 "
    "--atoms 18 --out growth/ --json"))
@param_flags(temperatures_K="--temperatures", flux_ratios="--flux-ratios",
             flux_ratio="--flux-ratios", outdir="--out", n_atoms="--atoms",
             steps_per_atom="--steps-per-atom")
def growth_cmd(
    out: opt.out_option("output folder (growth_map.json/.png, points/, runs/); a rerun skips "
                        "finished points"),
    temperatures: opt.temperatures_option("substrate temperatures, K (each > 0)") = None,
    flux_ratios: str = typer.Option("0.8,1.0,1.2", "--flux-ratios", metavar="R1,R2,...",
                                    help="Ga/N flux ratios (each > 0)"),
    potential: str = typer.Option(
        TERSOFF, "--potential", "-p", metavar="tersoff|FOLDER",
        help="tersoff (the reference, LAMMPS) or a saved model folder"),
    size: str = typer.Option("2,2", "--size", metavar="NA,NB", help="surface cell repeats"),
    bilayers: int = typer.Option(4, "--bilayers", min=2, metavar="N",
                                 help="substrate Ga-N bilayers (bottom one fixed)"),
    n_atoms: int = typer.Option(8, "--atoms", min=1, metavar="N",
                                help="atoms deposited at each grid point"),
    steps_per_atom: int = typer.Option(300, "--steps-per-atom", min=1, metavar="N",
                                       help="MD steps after each deposited atom"),
    cluster: str | None = typer.Option(
        None, "--cluster", metavar="serial|ADDRESS|FILE",
        help="where the grid points run (default: a local Dask cluster)"),
    seed: opt.Seed = 0,
    json_out: opt.Json = False,
) -> None:
    """Tiny deposition of Ga and N on (0001) over a (temperature, Ga/N) grid.

    Defects per nm² by site occupation and coordination, and the grid point with the fewest.
    """
    import math

    from semiconductors import systems as S
    from semiconductors.growth import growth_map

    if not temperatures:
        raise ConfigError("no temperature given", where="--temperatures",
                          fix="give substrate temperatures in K, e.g. 900,1100")
    try:
        ratios = [float(x) for x in flux_ratios.split(",") if x.strip()]
    except ValueError:
        ratios = []
    if not ratios or not all(math.isfinite(r) and r > 0 for r in ratios):
        raise ConfigError(f"bad --flux-ratios {flux_ratios!r}: each must be a number > 0",
                          where="--flux-ratios", fix="e.g. 0.8,1.0,1.2")
    if out.exists() and not out.is_dir():
        raise ConfigError("a file is in the way of the output folder", where=str(out),
                          fix="choose another --out")
    if potential != TERSOFF and not Path(potential).is_dir():
        raise ConfigError(f"unknown potential {potential!r}", where="--potential",
                          fix="give tersoff or the folder of a trained model")
    dims = _triple(f"{size},1", "--size")
    from semiconductors.reference import TersoffGaN

    lat = S.relaxed_lattice(TersoffGaN())
    sub = S.slab_0001(S.wurtzite(lat["a_A"], lat["c_A"], lat["u"]), size=dims[:2],
                      bilayers=bilayers, vacuum_A=15.0)
    res = growth_map(sub, temperatures, ratios, out, potential=potential, seed=seed,
                     cluster=cluster, progress=not json_out, n_atoms=n_atoms,
                     steps_per_atom=steps_per_atom)
    if json_out:
        emit_json({**res, "points": [{k: v for k, v in p.items() if k != "off_site_atoms"}
                                     for p in res["points"]]})
        return
    for p in res["points"]:
        print(f"T = {p['temperature_K']:g} K, Ga/N = {p['flux_ratio']:g}: "
              f"{p['per_nm2']['total']:.2f} defects/nm² ({p['composition']})")
    best = res["optimum"]
    print(f"fewest defects: T = {best['temperature_K']:g} K, Ga/N = {best['flux_ratio']:g} "
          f"-> {out}/growth_map.png")


@app.command("case-study", epilog=example(
    "mlp-semiconductors case-study --scale tiny --out runs/semiconductors_tiny"))
def case_study_cmd(
    scale: str = typer.Option("tiny", "--scale", metavar="tiny|paper|FILE",
                              help="tiny (minutes on 2 cores), paper (the seed's settings) or "
                                   "a JSON file of the same keys"),
    out: opt.out_option("output folder (summary.json, report.md, figures); a rerun "
                        "continues it", required=False) = Path("runs/semiconductors"),
    seed: opt.Seed = 0,
    device: opt.Device = "cpu",
    json_out: opt.Json = False,
) -> None:
    """Run the seed workflow.

    Reference labels, MACE, formation energies and free energies vs T of V_Ga, with the reference
    beside the model.
    """
    from semiconductors import case_study

    if out.exists() and not out.is_dir():
        raise ConfigError("a file is in the way of the output folder", where=str(out),
                          fix="choose another --out")
    summary = case_study.run(scale, out, seed=seed, progress=not json_out, device=device)
    if json_out:
        emit_json(summary)
    else:
        print((out / "report.md").read_text())


def main() -> None:
    """Run the ``mlp-semiconductors`` command line."""
    sys.exit(run_app(app))


if __name__ == "__main__":
    main()
