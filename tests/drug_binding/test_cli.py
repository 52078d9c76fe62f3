"""mlp-drug-binding: the JSON contracts of `validate`, `metad` and `folding` on tiny real
inputs (a CSV, a two-particle OpenMM System, a hand-built hairpin), and the bad-input table."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from ase import Atoms

from common.cli.app import run_app
from common.cli.testing import Row, check_row, generic_rows
from drug_binding.cli import app

mm = pytest.importorskip("openmm")

METAD_KEYS = {"cv", "temperature_K", "profile", "delta_G_kcal_per_mol",
              "delta_G_err_kcal_per_mol", "delta_G_bind_kcal_per_mol"}


def _run(args, capsys):
    code = run_app(app, [str(a) for a in args])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _csv(path, header, rows):
    path.write_text("\n".join([",".join(header)] + [",".join(map(str, r)) for r in rows]) + "\n")


def _double_well(folder):
    """Particle 0 fixed, particle 1 (10 amu) in a radial double well (minima 0.35, 0.85 nm):
    the System as XML and the start as PDB."""
    from openmm import app as omm_app
    from openmm import unit

    system = mm.System()
    system.addParticle(0.0)
    system.addParticle(10.0)
    force = mm.CustomBondForce("240*((r-0.6)^2-0.0625)^2")
    force.addBond(0, 1, [])
    system.addForce(force)
    (folder / "system.xml").write_text(mm.XmlSerializer.serialize(system))
    top = omm_app.Topology()
    res = top.addResidue("LIG", top.addChain())
    for name in ("AR1", "AR2"):
        top.addAtom(name, omm_app.Element.getBySymbol("Ar"), res)
    with open(folder / "start.pdb", "w") as fh:
        omm_app.PDBFile.writeFile(top, [[0, 0, 0], [0.35, 0, 0]] * unit.nanometer, fh)
    with open(folder / "three.pdb", "w") as fh:  # one atom too many for the System
        top.addAtom("AR3", omm_app.Element.getBySymbol("Ar"), res)
        omm_app.PDBFile.writeFile(top, [[0, 0, 0], [0.35, 0, 0], [1, 0, 0]] * unit.nanometer, fh)


def _funnel_particle(folder):
    """A free particle (2) with a fixed origin (0) and axis point (1) for the funnel."""
    from openmm import app as omm_app
    from openmm import unit

    system = mm.System()
    for m in (0.0, 0.0, 2.0):
        system.addParticle(m)
    (folder / "funnel_system.xml").write_text(mm.XmlSerializer.serialize(system))
    top = omm_app.Topology()
    res = top.addResidue("LIG", top.addChain())
    for name in ("O", "T", "P"):
        top.addAtom(name, omm_app.Element.getBySymbol("Ar"), res)
    with open(folder / "funnel_start.pdb", "w") as fh:
        omm_app.PDBFile.writeFile(top, [[0, 0, 0], [0, 0, 2.0], [0, 0, 0.2]] * unit.nanometer,
                                  fh)


def _hairpin(folder):
    """Two strands of four C (one residue each) with native contacts (0, 7) and (1, 6):
    native for 30 frames between expanded stretches (20 and 10 frames), 5 fs apart."""
    import ase.io

    xs = [0.0, 3.8, 7.6, 11.4]
    native = Atoms("C8", positions=[(x, 0, 0) for x in xs] + [(x, 4.0, 0) for x in xs[::-1]])
    native.arrays["residuenumbers"] = np.arange(1, 9)
    native.write(folder / "native.pdb", format="proteindatabank")
    frames = []
    for k, f in enumerate([0] * 20 + [1] * 30 + [0] * 10):
        a = Atoms("C8", positions=native.positions * (1.0 if f else 3.0))
        a.info["time_fs"] = 5.0 * k
        frames.append(a)
    ase.io.write(folder / "hairpin.extxyz", frames)
    ase.io.write(folder / "other.extxyz", Atoms("C4", positions=native.positions[:4]))


@pytest.fixture(scope="module")
def _inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("drug_binding_cli")
    kd = [1.0, 10.0, 100.0, 1000.0, 5.0]
    pred = [-12.0, -11.1, -9.3, -8.4, -11.5]
    _csv(folder / "kd.csv", ["name", "Kd_nM", "dG_pred_kcal_per_mol"],
         [[f"L{k}", a, b] for k, (a, b) in enumerate(zip(kd, pred, strict=True))])
    _csv(folder / "ic50.csv", ["name", "IC50_nM", "dG_pred_kcal_per_mol"],
         [[f"L{k}", a, b] for k, (a, b) in enumerate(zip(kd, pred, strict=True))])
    _csv(folder / "nopred.csv", ["name", "Kd_nM"], [[f"L{k}", a] for k, a in enumerate(kd)])
    _double_well(folder)
    _funnel_particle(folder)
    _hairpin(folder)
    return folder


@pytest.fixture
def files(tmp_path, _inputs):
    shutil.copytree(_inputs, tmp_path, dirs_exist_ok=True)
    out = {p.stem: p for p in tmp_path.iterdir()}
    return {**out, "tmp": tmp_path, "missing": tmp_path / "missing.csv"}


# -- the contracts -------------------------------------------------------------------------------


def test_validate_json_is_the_functions_dict(files, capsys):
    from drug_binding.validation import validate_table

    code, out, err = _run(["validate", files["kd"], "--json", "--plot",
                           files["tmp"] / "parity.png"], capsys)
    assert code == 0 and err == "", err
    assert json.loads(out) == json.loads(json.dumps(validate_table(files["kd"])))
    assert (files["tmp"] / "parity.png").read_bytes()[:4] == b"\x89PNG"
    code, out, _ = _run(["validate", files["ic50"], "--substrate-uM", "5", "--km-uM", "5",
                         "--temperature-K", "310", "--json"], capsys)
    res = json.loads(out)
    assert res["experimental_source"] == "Cheng-Prusoff Ki" and res["temperature_K"] == 310
    code, out, _ = _run(["validate", files["kd"]], capsys)
    assert code == 0 and "RMSE" in out and "Kendall" in out


def test_metad_contract(files, capsys):
    out_dir = files["tmp"] / "metad"
    code, out, err = _run(["metad", "--system", files["system"], "--pdb", files["start"],
                           "--cv", "distance:0:1", "--bound", "0.2,0.6", "--unbound", "0.6,1.0",
                           "--temperature-K", "300", "--steps", "2000", "--pace", "50",
                           "--hill-width-nm", "0.025", "--blocks", "2", "--platform",
                           "Reference", "--seed", "3", "--out", out_dir, "--json"], capsys)
    assert code == 0, err
    res = json.loads(out)
    assert METAD_KEYS <= set(res)
    assert res["cv"] == "distance" and res["temperature_K"] == 300.0
    assert set(res["profile"]) == {"cv_nm", "free_energy_kcal_per_mol"}
    assert len(res["profile"]["cv_nm"]) == len(res["profile"]["free_energy_kcal_per_mol"])
    assert res["n_hills"] == 40 and res["settings"]["hill_width_nm"] == 0.025
    assert json.loads((out_dir / "metad.json").read_text()) == res
    assert {"HILLS", "COLVAR", "fes.dat", "metad.json"} <= {p.name for p in out_dir.iterdir()}


def test_metad_walkers_keep_the_contract(files, capsys):
    out_dir = files["tmp"] / "walkers"
    code, out, err = _run(["metad", "--system", files["system"], "--pdb", files["start"],
                           "--cv", "distance:0:1", "--bound", "0.2,0.6", "--unbound", "0.6,1.0",
                           "--temperature-K", "300", "--steps", "2000", "--pace", "50",
                           "--hill-width-nm", "0.025", "--blocks", "2", "--platform",
                           "Reference", "--seed", "3", "--walkers", "2", "--out", out_dir,
                           "--json"], capsys)
    assert code == 0, err
    res = json.loads(out)
    assert METAD_KEYS <= set(res) and res["cv"] == "distance" and res["temperature_K"] == 300
    assert len(res["profile"]["cv_nm"]) == len(res["profile"]["free_energy_kcal_per_mol"])
    a, b = res["walker_delta_G_kcal_per_mol"]
    assert res["n_walkers"] == 2 and [w["seed"] for w in res["walkers"]] == [3, 1003]
    assert res["delta_G_kcal_per_mol"] == pytest.approx((a + b) / 2)
    assert res["delta_G_err_kcal_per_mol"] == pytest.approx(abs(a - b) / 2)  # sd / sqrt(2)
    assert res["delta_G_bind_kcal_per_mol"] == pytest.approx(
        res["delta_G_kcal_per_mol"] + res["standard_state_correction_kcal_per_mol"])
    for k in range(2):
        w = json.loads((out_dir / f"walker_{k}" / "metad.json").read_text())
        assert w["delta_G_kcal_per_mol"] == pytest.approx([a, b][k])
        assert w["settings"]["openmm_seed"] == [3, 1003][k] + 1
    assert a != b  # different seeds, different runs
    assert json.loads((out_dir / "metad.json").read_text()) == res
    assert (out_dir / "walkers.png").read_bytes()[:4] == b"\x89PNG"
    code, out, _ = _run(["metad", "--system", files["system"], "--pdb", files["start"],
                         "--cv", "distance:0:1", "--bound", "0.2,0.6", "--unbound", "0.6,1.0",
                         "--temperature-K", "300", "--steps", "2000", "--pace", "50",
                         "--blocks", "2", "--platform", "Reference", "--walkers", "2",
                         "--out", files["tmp"] / "w2"], capsys)
    assert code == 0 and "walkers: " in out and "standard error over walkers" in out


def test_metad_funnel_flags(files, capsys):
    from drug_binding.funnel import Funnel

    code, out, err = _run(["metad", "--system", files["funnel_system"], "--pdb",
                           files["funnel_start"], "--cv", "distance:2:0", "--bound", "0,0.45",
                           "--unbound", "0.75,1.1", "--temperature-K", "300", "--steps", "2000",
                           "--pace", "50", "--blocks", "2", "--platform", "Reference",
                           "--funnel", "2:0:1", "--funnel-zcc-nm", "0.5", "--funnel-z-nm=-0.2,1.2",
                           "--funnel-radius-nm", "0.1", "--funnel-angle-deg", "30",
                           "--funnel-k", "4000", "--out", files["tmp"] / "funnel_out",
                           "--json"], capsys)
    assert code == 0, err
    res = json.loads(out)
    f = Funnel((2,), (0,), (1,), 0.1, 30.0, 0.5, -0.2, 1.2, 4000.0)
    assert res["funnel"] == f.to_dict()
    assert res["unbound_volume_nm3"] == pytest.approx(f.accessible_volume_nm3((0.75, 1.1), 300))
    assert METAD_KEYS <= set(res)


def test_folding_contract(files, capsys):
    code, out, err = _run(["folding", files["hairpin"], "--native", files["native"],
                           "--min-persistence-fs", "20", "--json"], capsys)
    assert code == 0, err
    d = json.loads(out)
    assert d["observable"] == "Q" and d["n_frames"] == 60
    assert [(e["kind"], e["frame"]) for e in d["events"]] == [("folding", 20), ("unfolding", 50)]
    assert d["mfpt_unfolding_fs"]["mean"] == 150.0
    code, out, err = _run(["folding", files["hairpin"], "--native", files["native"],
                           "--observable", "rmsd", "--folded", "1", "--unfolded", "3"], capsys)
    assert code == 0 and "1 folding and 1 unfolding" in out, out


# -- bad input -----------------------------------------------------------------------------------


def R(id: str, *argv: str, kind: str = "error", needles: tuple = ()) -> Row:
    return Row(id, tuple(argv), kind, tuple(needles))


def M(*extra: str, cv: str = "distance:0:1", bound: str = "0.2,0.6",
      unbound: str = "0.6,1.0") -> tuple[str, ...]:
    return ("metad", "--system", "{system}", "--pdb", "{start}", "--cv", cv, "--bound", bound,
            "--unbound", unbound, "--temperature-K", "300", "--steps", "2000", "--pace", "50",
            "--blocks", "2", "--platform", "Reference", "--out", "{tmp}/metad", *extra)


ROWS = [
    R("validate-missing-column", "validate", "{nopred}",
      needles=("nopred.csv", "missing column", "dG_pred_kcal_per_mol")),
    R("validate-missing-file", "validate", "{missing}", needles=("missing.csv", "not found")),
    R("validate-temperature-0", "validate", "{kd}", "--temperature-K", "0", kind="usage"),
    R("validate-km-without-substrate", "validate", "{ic50}", "--km-uM", "5",
      needles=("--substrate-uM", "--km-uM")),
    R("validate-cheng-prusoff-on-kd", "validate", "{kd}", "--substrate-uM", "1", "--km-uM", "5",
      needles=("IC50",)),
    R("validate-km-0", "validate", "{ic50}", "--substrate-uM", "1", "--km-uM", "0",
      kind="usage"),
    R("metad-cv-atom-out-of-range", *M(cv="distance:0:5"),
      needles=("--cv", "atom index 5", "2 atoms")),
    R("metad-cv-bad-syntax", *M(cv="angle:0:1:2"), needles=("--cv",)),
    R("metad-basins-overlap", *M(unbound="0.5,1.0"), needles=("--bound", "--unbound",
                                                               "overlaps")),
    R("metad-basin-one-number", *M(bound="0.2"), needles=("--bound",)),
    R("metad-basin-backwards", *M(unbound="1.0,0.6"), needles=("--unbound",)),
    R("metad-too-few-hills", *M("--pace", "500"), needles=("--steps", "--pace")),
    R("metad-unknown-platform", *M("--platform", "TPU"), needles=("--platform", "TPU")),
    R("metad-bias-factor-1", *M("--bias-factor", "1"), kind="usage"),
    R("metad-temperature-0", *M("--temperature-K", "0"), kind="usage"),
    R("metad-hill-width-0", *M("--hill-width-nm", "0"), kind="usage"),
    R("metad-missing-system", "metad", "--system", "{tmp}/none.xml", "--pdb", "{start}",
      "--cv", "distance:0:1", "--bound", "0.2,0.6", "--unbound", "0.6,1.0", "--temperature-K",
      "300", "--steps", "2000", "--out", "{tmp}/metad", needles=("none.xml", "not found")),
    R("metad-pdb-atom-count", "metad", "--system", "{system}", "--pdb", "{three}", "--cv",
      "distance:0:1", "--bound", "0.2,0.6", "--unbound", "0.6,1.0", "--temperature-K", "300",
      "--steps", "2000", "--out", "{tmp}/metad", needles=("3 atoms in the PDB",)),
    R("metad-system-not-xml", "metad", "--system", "{kd}", "--pdb", "{start}", "--cv",
      "distance:0:1", "--bound", "0.2,0.6", "--unbound", "0.6,1.0", "--temperature-K", "300",
      "--steps", "2000", "--out", "{tmp}/metad", needles=("kd.csv",)),
    R("metad-walkers-0", *M("--walkers", "0"), kind="usage"),
    R("metad-funnel-without-zcc", *M("--funnel", "1:0:0"), needles=("--funnel-zcc-nm",)),
    R("metad-zcc-without-funnel", *M("--funnel-zcc-nm", "0.5"), needles=("without --funnel",)),
    R("metad-funnel-two-groups", "metad", "--system", "{funnel_system}", "--pdb", "{funnel_start}",
      "--cv", "distance:2:0", "--bound", "0,0.45", "--unbound", "0.75,1.1", "--temperature-K",
      "300", "--steps", "2000", "--pace", "50", "--blocks", "2", "--out", "{tmp}/metad",
      "--funnel", "2:0", "--funnel-zcc-nm", "0.5", "--funnel-z-nm", "0,1.2",
      needles=("--funnel", "LIGAND:ORIGIN:TOWARD")),
    R("metad-funnel-index-out-of-range", "metad", "--system", "{funnel_system}", "--pdb",
      "{funnel_start}", "--cv", "distance:2:0", "--bound", "0,0.45", "--unbound", "0.75,1.1",
      "--temperature-K", "300", "--steps", "2000", "--pace", "50", "--blocks", "2", "--out",
      "{tmp}/metad", "--funnel", "2:0:7", "--funnel-zcc-nm", "0.5", "--funnel-z-nm", "0,1.2",
      needles=("--funnel", "atom index 7")),
    R("metad-funnel-z-backwards", "metad", "--system", "{funnel_system}", "--pdb", "{funnel_start}",
      "--cv", "distance:2:0", "--bound", "0,0.45", "--unbound", "0.75,1.1", "--temperature-K",
      "300", "--steps", "2000", "--pace", "50", "--blocks", "2", "--out", "{tmp}/metad",
      "--funnel", "2:0:1", "--funnel-zcc-nm", "0.5", "--funnel-z-nm", "1.2,0",
      needles=("--funnel-z-nm",)),
    R("metad-funnel-start-outside", "metad", "--system", "{funnel_system}", "--pdb",
      "{funnel_start}", "--cv", "distance:2:0", "--bound", "0,0.45", "--unbound", "0.75,1.1",
      "--temperature-K", "300", "--steps", "2000", "--pace", "50", "--blocks", "2", "--out",
      "{tmp}/metad", "--funnel", "2:0:1", "--funnel-zcc-nm", "0.1", "--funnel-z-nm", "0.5,1.2",
      needles=("--funnel", "outside the funnel")),
    R("folding-native-other-atoms", "folding", "{hairpin}", "--native", "{other}",
      needles=("other.extxyz", "8")),
    R("folding-missing-native", "folding", "{hairpin}", "--native", "{tmp}/none.pdb",
      needles=("none.pdb", "not found")),
    R("folding-equal-thresholds", "folding", "{hairpin}", "--native", "{native}", "--folded",
      "0.5", "--unfolded", "0.5", needles=("--folded",)),
    R("folding-missing-trajectory", "folding", "{tmp}/none.extxyz", "--native", "{native}",
      needles=("none.extxyz",)),
    R("folding-unknown-observable", "folding", "{hairpin}", "--native", "{native}",
      "--observable", "rg", kind="usage"),
    R("prepare-bromine", "prepare", "--ligand", "c1ccccc1Br", "--out", "{tmp}/cx",
      needles=("Br", "ANI")),
    R("prepare-phosphorus", "prepare", "--ligand", "CP(C)C", "--out", "{tmp}/cx",
      needles=("element(s) P",)),
    R("prepare-iodine", "prepare", "--ligand", "CI", "--out", "{tmp}/cx",
      needles=("element(s) I",)),
    R("prepare-bad-smiles", "prepare", "--ligand", "C1CC(", "--out", "{tmp}/cx",
      needles=("not a valid SMILES",)),
    R("prepare-undefined-stereo", "prepare", "--ligand", "CC(O)CC", "--out", "{tmp}/cx",
      needles=("undefined stereochemistry",)),
    R("prepare-missing-receptor", "prepare", "--ligand", "CO", "--receptor", "{tmp}/none.pdb",
      "--out", "{tmp}/cx", needles=("none.pdb", "not found")),
    R("prepare-site-two-numbers", "prepare", "--ligand", "CO", "--site-A", "1,2",
      "--out", "{tmp}/cx", kind="usage"),
    R("prepare-bad-solvent", "prepare", "--ligand", "CO", "--solvent", "octanol",
      "--out", "{tmp}/cx", kind="usage"),
    R("prepare-host-and-peptide", "prepare", "--ligand", "CO", "--peptide", "TRP",
      "--host", "{tmp}/h.mol2", "--out", "{tmp}/cx",
      needles=("--receptor/--peptide/--host", "more than one receptor")),
    R("prepare-host-not-mol2", "prepare", "--ligand", "CO", "--host", "{tmp}/none.pdb",
      "--out", "{tmp}/cx", needles=("none.pdb", "MOL2")),
    R("md-not-a-complex", "md", "--complex", "{tmp}", "--model", "{tmp}", "--out",
      "{tmp}/md", needles=("prepare.json",)),
    R("screen-not-a-complex", "screen", "{tmp}", "--model", "{tmp}", "--out", "{tmp}/scr",
      needles=("prepare.json",)),
    R("case-study-unknown-scale", "case-study", "--scale", "huge", "--out", "{tmp}/cs",
      needles=("--scale", "huge")),
]


@pytest.mark.parametrize("row", [pytest.param(r, id=r.id) for r in generic_rows(app) + ROWS])
def test_bad_input(row, files, capsys):
    check_row(app, row, files["tmp"], capsys, files)


def test_help_ends_with_an_example_and_every_option_has_help():
    import typer

    from common.cli.testing import _commands

    for path, cmd in _commands(typer.main.get_command(app)):
        assert all(getattr(p, "help", None) for p in cmd.params), path
        assert (cmd.epilog or "").startswith("Example:"), path
        assert len([ln for ln in cmd.epilog.splitlines() if "mlp-" in ln]) == 1, path


def test_prepare_a_guest_in_its_host(tmp_path, capsys):
    """`prepare --host`: alpha-cyclodextrin (its charges) + 1-butylammonium in its bound pose."""
    from drug_binding.case_study import DATA

    code, out, err = _run(["prepare", "--ligand", DATA / "cd_set1" / "guest-1.mol2", "--host",
                           DATA / "cd_set1" / "host-acd.mol2", "--charges", "gas", "--out",
                           tmp_path / "cx", "--json"], capsys)
    assert code == 0, err
    cx = json.loads(out)
    assert cx["receptor_atoms"] == list(range(126)) and cx["ligand_atoms"] == list(range(126, 143))
    assert cx["solvent"] == "gbn2" and (tmp_path / "cx" / "host" / "ligand.mol2").is_file()
