"""common.data.export: each framework's format, read back through that framework's reader."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.cluster import Icosahedron

from common.data import (
    FORMATS,
    Dataset,
    export,
    get_labels,
    read_deepmd,
    read_export,
    read_extxyz,
    read_schnetpack,
    structure_hash,
    with_labels,
)
from common.errors import ConfigError, DataError
from common.labels import label_now

TOL = 1e-6


def emt_frame(seed: int, pt: bool = False, cluster: bool = False) -> Atoms:
    """A rattled Cu (or CuPt) cell or cluster with EMT labels on a SinglePointCalculator."""
    a = Icosahedron("Cu", 2) if cluster else bulk("Cu", "fcc", a=3.61, cubic=True) * (2, 1, 1)
    if pt:
        a[0].symbol = "Pt"
    a.rattle(0.05, seed=seed)
    return label_now(a, EMT())


@pytest.fixture
def bulk_ds() -> Dataset:
    """Periodic Cu8 and Cu7Pt frames with energy, forces and stress."""
    return Dataset.from_frames([emt_frame(i, pt=bool(i % 2)) for i in range(6)])


@pytest.fixture
def mixed_ds() -> Dataset:
    """Periodic cells (with stress) and non-periodic clusters (without)."""
    frames = [emt_frame(i, pt=bool(i % 2)) for i in range(4)]
    frames += [emt_frame(10 + i, pt=bool(i % 2), cluster=True) for i in range(3)]
    return Dataset.from_frames(frames)


def assert_same(ref: Dataset, back: Dataset, by_hash: bool = False, stress: bool = True) -> None:
    """Same frames (matched by structure hash when the order may change), labels to 1e-6."""
    assert len(back) == len(ref)
    if by_hash:
        lookup = {structure_hash(a): a for a in back}
        pairs = [(a, lookup[structure_hash(a)]) for a in ref]
    else:
        pairs = list(zip(ref, back, strict=True))
    for a, b in pairs:
        la, lb = get_labels(a), get_labels(b)
        assert a.get_chemical_symbols() == b.get_chemical_symbols()
        np.testing.assert_allclose(b.positions, a.positions, atol=TOL)
        np.testing.assert_allclose(b.cell.array, a.cell.array, atol=TOL)
        assert abs(lb["energy"] - la["energy"]) < TOL
        np.testing.assert_allclose(lb["forces"], la["forces"], atol=TOL)
        if stress and "stress" in la:
            np.testing.assert_allclose(lb["stress"], la["stress"], atol=TOL)


# -- extxyz (MACE / NequIP) ---------------------------------------------------------------------


def test_extxyz_ref_keys_round_trip(bulk_ds, tmp_path):
    p = export(bulk_ds, "extxyz", tmp_path / "train.extxyz")
    head = p.read_text().splitlines()[1]
    assert "REF_energy=" in head and "REF_forces:R:3" in head and "REF_stress=" in head
    assert " energy=" not in head and ":forces:" not in head  # no calculator keys to clash
    back = read_extxyz(p)
    assert_same(bulk_ds, back)
    assert "REF_energy" not in back[0].info and "REF_forces" not in back[0].arrays
    assert_same(bulk_ds, Dataset.read(p))  # Dataset.read understands REF_* too
    assert_same(bulk_ds, read_export("extxyz", p))


def test_extxyz_read_by_mace(mixed_ds, tmp_path):
    from common.frameworks import import_mace

    import_mace()
    from mace.data.utils import KeySpecification, load_from_xyz

    p = export(mixed_ds, "extxyz", tmp_path / "train.extxyz")
    _, configs = load_from_xyz(str(p), key_specification=KeySpecification.from_defaults())
    assert len(configs) == len(mixed_ds)
    for a, c in zip(mixed_ds, configs, strict=True):
        lab = get_labels(a)
        np.testing.assert_array_equal(c.atomic_numbers, a.numbers)
        assert abs(c.properties["energy"] - lab["energy"]) < TOL
        np.testing.assert_allclose(c.properties["forces"], lab["forces"], atol=TOL)
        if "stress" in lab:
            from ase.stress import full_3x3_to_voigt_6_stress

            s = full_3x3_to_voigt_6_stress(np.asarray(c.properties["stress"]).reshape(3, 3))
            np.testing.assert_allclose(s, lab["stress"], atol=TOL)


# -- deepmd/npy via dpdata -----------------------------------------------------------------------


def test_deepmd_round_trip_with_virials(bulk_ds, tmp_path):
    out = export(bulk_ds, "deepmd", tmp_path / "dp")
    systems = sorted(d.name for d in out.iterdir())
    assert systems == ["Cu7Pt1", "Cu8Pt0"]
    for s in systems:
        assert (out / s / "type_map.raw").read_text().split() == ["Cu", "Pt"]
        assert (out / s / "set.000" / "virial.npy").exists()
        assert not (out / s / "nopbc").exists()
    assert_same(bulk_ds, read_deepmd(out), by_hash=True)


def test_deepmd_clusters_nopbc_and_type_map(mixed_ds, tmp_path):
    out = export(mixed_ds, "deepmd", tmp_path / "dp", type_map=["Pt", "Cu", "O"])
    assert (out / "Pt0Cu13O0" / "nopbc").exists()
    assert (out / "Pt0Cu13O0" / "type_map.raw").read_text().split() == ["Pt", "Cu", "O"]
    assert not (out / "Pt0Cu13O0" / "set.000" / "virial.npy").exists()  # not every frame
    back = read_export("deepmd", out)
    assert_same(mixed_ds, back, by_hash=True, stress=False)
    assert sum(not a.pbc.any() for a in back) == 3

    # deepmd-kit's own data reader sees the same energies
    from deepmd.utils.data import DeepmdData

    d = DeepmdData(str(out / "Pt0Cu13O0"), type_map=["Pt", "Cu", "O"])
    d.add("energy", 1, atomic=False, must=True, high_prec=True)
    d.add("force", 3, atomic=True, must=True, high_prec=False)
    test = d.get_test()
    e_ref = sorted(get_labels(a)["energy"] for a in mixed_ds
                   if not a.pbc.any() and "Pt" not in a.symbols)
    np.testing.assert_allclose(np.sort(test["energy"].ravel()), e_ref, atol=TOL)


def test_deepmd_errors(mixed_ds, tmp_path):
    with pytest.raises(ConfigError, match=r"type_map.*lacks elements \['Pt'\].*fix: add Pt"):
        export(mixed_ds, "deepmd", tmp_path / "dp", type_map=["Cu"])
    export(mixed_ds, "deepmd", tmp_path / "dp")
    with pytest.raises(DataError, match="already exists"):
        export(mixed_ds, "deepmd", tmp_path / "dp")
    export(mixed_ds[:2], "deepmd", tmp_path / "dp", overwrite=True)
    assert len(read_deepmd(tmp_path / "dp")) == 2
    # --overwrite never deletes a folder that is not an earlier export
    (tmp_path / "dp" / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match="not an earlier export"):
        export(mixed_ds, "deepmd", tmp_path / "dp", overwrite=True)
    with pytest.raises(DataError, match="not an earlier export"):
        export(mixed_ds, "extxyz", tmp_path / "dp", overwrite=True)
    assert (tmp_path / "dp" / "notes.txt").exists()


# -- SchNetPack ASEAtomsData ---------------------------------------------------------------------


def test_schnetpack_round_trip(bulk_ds, tmp_path):
    from common.frameworks import import_schnetpack

    spk = import_schnetpack()
    p = export(bulk_ds, "schnetpack", tmp_path / "spk.db")
    data = spk.data.ASEAtomsData(str(p))
    assert data.units == {"energy": "eV", "forces": "eV/Ang", "stress": "eV/Ang/Ang/Ang"}
    assert data.metadata["_distance_unit"] == "Ang"
    refs = bulk_ds.reference_energies()
    assert float(data.atomrefs["energy"][29]) == pytest.approx(refs["Cu"])
    assert float(data.atomrefs["energy"][78]) == pytest.approx(refs["Pt"])
    item = data[1]
    assert item["energy"].shape == (1,) and item["forces"].shape == (8, 3)
    assert abs(float(item["energy"][0]) - get_labels(bulk_ds[1])["energy"]) < TOL
    assert_same(bulk_ds, read_schnetpack(p))
    with pytest.raises(DataError, match="already exists"):
        export(bulk_ds, "schnetpack", p)


def test_schnetpack_mixed_pbc_and_bad_suffix(mixed_ds, tmp_path):
    p = export(mixed_ds, "schnetpack", tmp_path / "spk.db", atomrefs=False)
    back = read_export("schnetpack", p)
    assert_same(mixed_ds, back, stress=False)
    assert [bool(a.pbc.any()) for a in back] == [True] * 4 + [False] * 3
    with pytest.raises(ConfigError, match=r"suffix \.db"):
        export(mixed_ds, "schnetpack", tmp_path / "spk.sqlite")


# -- dispatch and errors ---------------------------------------------------------------------------


def test_ase_db_export(bulk_ds, tmp_path):
    assert_same(bulk_ds, read_export("db", export(bulk_ds, "db", tmp_path / "x.db")))


def test_unknown_format_lists_valid_ones(bulk_ds, tmp_path):
    with pytest.raises(ConfigError) as err:
        export(bulk_ds, "xyz2", tmp_path / "x")
    for f in FORMATS:
        assert f in str(err.value)
    with pytest.raises(ConfigError, match="option not understood"):
        export(bulk_ds, "extxyz", tmp_path / "x.extxyz", type_map=["Cu"])


def test_export_refuses_missing_labels(bulk_ds, tmp_path):
    frames = list(bulk_ds)
    frames[4] = with_labels(frames[4], energy=get_labels(frames[4])["energy"])
    d = Dataset(frames, source="labels.extxyz")
    for fmt in ("extxyz", "deepmd", "schnetpack"):
        with pytest.raises(DataError, match=r"labels\.extxyz frame 4: cannot export.*forces"):
            export(d, fmt, tmp_path / f"out_{fmt}.db")


# -- CLI convert -----------------------------------------------------------------------------------


def cli(argv: list[str]) -> int:
    from common.cli.app import run_app
    from common.cli.main import app

    return run_app(app, argv)


def test_cli_convert(mixed_ds, tmp_path, capsys):
    src = str(mixed_ds.write(tmp_path / "d.extxyz"))
    outs = {"extxyz": tmp_path / "mace.extxyz", "deepmd": tmp_path / "dp",
            "schnetpack": tmp_path / "spk.db", "db": tmp_path / "ase.db"}
    for fmt, out in outs.items():
        assert cli(["dataset", "convert", src, "--to", fmt, "--out", str(out), "--json"]) == 0
        rep = json.loads(capsys.readouterr().out)
        assert rep["n_frames"] == 7 and rep["format"] == fmt
        back = read_export(fmt, out)
        assert_same(mixed_ds, back, by_hash=fmt == "deepmd", stress=fmt in ("extxyz", "db"))
    assert cli(["dataset", "convert", src, "--to", "deepmd", "--out", str(outs["deepmd"]),
                "--type-map", "Pt,Cu", "--overwrite"]) == 0
    assert "7 frames" in capsys.readouterr().out


def test_cli_convert_bad_input(mixed_ds, tmp_path, capsys):
    src = str(mixed_ds.write(tmp_path / "d.extxyz"))
    for argv, text in [
        (["--to", "lammps", "--out", str(tmp_path / "x")], "unknown format 'lammps'"),
        (["--to", "deepmd", "--out", str(tmp_path / "dp"), "--type-map", "Cu"], "lacks"),
        (["--to", "db", "--out", src], "already exists"),
    ]:
        assert cli(["dataset", "convert", src, *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("error:") and text in err
        assert "Traceback" not in err
