"""drug_binding.prepare: ligands (RDKit), GAFF2/AM1-BCC (antechamber), receptors (pdbfixer,
tleap peptides), complexes in GBn2 or TIP3P -- piece by piece."""

from __future__ import annotations

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
