"""common.data.Dataset: reading/writing, validation findings, splits, statistics, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.cluster import Icosahedron

from common.data import Dataset, Problem, get_labels, structure_hash, with_labels
from common.errors import ConfigError, DataError
from common.labels import label_now


def emt_frame(seed: int, pt: bool = False, cluster: bool = False) -> Atoms:
    """A rattled Cu (or CuPt) cell or cluster with EMT labels on a SinglePointCalculator."""
    a = Icosahedron("Cu", 2) if cluster else bulk("Cu", "fcc", a=3.61, cubic=True) * (2, 1, 1)
    if pt:
        a[0].symbol = "Pt"
    a.rattle(0.05, seed=seed)
    return label_now(a, EMT())


def make_frames(n: int = 8) -> list[Atoms]:
    return [emt_frame(i, pt=bool(i % 2)) for i in range(n)]


@pytest.fixture
def ds() -> Dataset:
    return Dataset.from_frames(make_frames())


def assert_same_labels(a: Atoms, b: Atoms, tol: float = 1e-6) -> None:
    la, lb = get_labels(a), get_labels(b)
    assert a.get_chemical_symbols() == b.get_chemical_symbols()
    np.testing.assert_allclose(a.positions, b.positions, atol=tol)
    assert abs(la["energy"] - lb["energy"]) < tol
    np.testing.assert_allclose(la["forces"], lb["forces"], atol=tol)
    if "stress" in la:
        np.testing.assert_allclose(la["stress"], lb["stress"], atol=tol)


# -- reading and writing ----------------------------------------------------------------------


def test_extxyz_round_trip(ds, tmp_path):
    ds.frames[2].info["charge"] = -1
    p = ds.write(tmp_path / "d.extxyz")
    back = Dataset.read(p)
    assert len(back) == len(ds) and back.source == str(p)
    for a, b in zip(ds, back, strict=True):
        assert_same_labels(a, b)
    assert back[2].info["charge"] == -1


def test_db_round_trip_keeps_labels_and_charge(ds, tmp_path):
    ds.frames[1].info.update(charge=1, multiplicity=2)
    back = Dataset.read(ds.write(tmp_path / "d.db"))
    assert len(back) == len(ds)
    for a, b in zip(ds, back, strict=True):
        assert_same_labels(a, b)
    assert back[1].info["charge"] == 1 and back[1].info["multiplicity"] == 2


def test_write_never_overwrites_silently(ds, tmp_path):
    p = ds.write(tmp_path / "d.extxyz")
    with pytest.raises(DataError, match=r"d\.extxyz: output already exists.*overwrite"):
        ds[:2].write(p)
    ds[:2].write(p, overwrite=True)
    assert len(Dataset.read(p)) == 2
    with pytest.raises(DataError, match="empty"):
        ds[:0].write(tmp_path / "e.extxyz")


def test_truncated_extxyz_names_file(ds, tmp_path):
    p = ds.write(tmp_path / "d.extxyz")
    lines = p.read_text().splitlines()
    bad = tmp_path / "trunc.extxyz"
    bad.write_text("\n".join(lines[: len(lines) - 4]) + "\n")  # last frame cut short
    with pytest.raises(DataError) as err:
        Dataset.read(bad)
    msg = str(err.value)
    assert "trunc.extxyz" in msg and "\n" not in msg and "fix:" in msg


def test_missing_file():
    with pytest.raises(DataError, match="nope.extxyz: file not found"):
        Dataset.read("nope.extxyz")


def test_indexing_and_slicing_keep_source_frames(ds, tmp_path):
    d = Dataset.read(ds.write(tmp_path / "d.extxyz"))
    assert isinstance(d[3], Atoms)
    sub = d[2:6]
    assert isinstance(sub, Dataset) and len(sub) == 4 and sub.source_index == [2, 3, 4, 5]
    assert sub.where(1).endswith("d.extxyz frame 3")
    assert d[[0, 7]].source_index == [0, 7]
    mask = np.zeros(len(d), bool)
    mask[5] = True
    assert d[mask].source_index == [5]
    assert [a is b for a, b in zip(d, d.frames, strict=True)] == [True] * len(d)


def test_from_frames_freezes_live_calculator():
    a = bulk("Cu", cubic=True)
    a.calc = EMT()
    e = a.get_potential_energy()
    d = Dataset.from_frames([a])
    assert isinstance(d[0].calc, SinglePointCalculator)
    assert get_labels(d[0])["energy"] == pytest.approx(e)
    assert a.calc.__class__ is EMT  # the caller's object is not changed


def test_deepmd_folder_reads(ds, tmp_path):
    from common.data import export

    out = export(ds, "deepmd", tmp_path / "dp")
    back = Dataset.read(out)  # folder of systems
    assert len(back) == len(ds)
    sub = sorted(p for p in out.iterdir())[0]
    assert len(Dataset.read(sub)) == 4  # one system folder


# -- validation --------------------------------------------------------------------------------


def _plant(kind: str, a: Atoms) -> Atoms:
    lab = get_labels(a)
    if kind == "missing_energy":
        return with_labels(a, forces=lab["forces"])
    if kind == "missing_forces":
        return with_labels(a, energy=lab["energy"])
    if kind == "nonfinite_positions":
        b = a.copy()
        b.positions[1, 0] = np.nan
        b.calc = SinglePointCalculator(b, **lab)
        return b
    if kind == "nonfinite_energy":
        return with_labels(a, energy=np.nan, forces=lab["forces"])
    if kind == "nonfinite_forces":
        f = lab["forces"].copy()
        f[2, 1] = np.inf
        return with_labels(a, energy=lab["energy"], forces=f)
    if kind == "large_force":
        f = lab["forces"].copy()
        f[4] = [0.0, 80.0, 0.0]
        return with_labels(a, energy=lab["energy"], forces=f, stress=lab.get("stress"))
    if kind == "overlap":  # atoms 0.16 Å apart only through the periodic boundary
        b = a.copy()
        b.positions[0] = [0.05, 0.05, 0.05]
        b.positions[1] = [b.cell[0, 0] - 0.1, 0.1, 0.05]
        b.calc = SinglePointCalculator(b, **lab)
        return b
    if kind == "unknown_element":
        b = a.copy()
        b.numbers[3] = 0  # 'X', Z = 0
        b.calc = SinglePointCalculator(b, **lab)
        return b
    raise AssertionError(kind)


KINDS = ["missing_energy", "missing_forces", "nonfinite_positions", "nonfinite_energy",
         "nonfinite_forces", "large_force", "overlap", "unknown_element"]


@pytest.mark.parametrize("kind", KINDS)
def test_each_finding_names_the_frame(kind):
    frames = make_frames(6)
    frames[3] = _plant(kind, frames[3])
    d = Dataset.from_frames(frames, source="planted.extxyz")
    found = d.problems()
    assert [p.kind for p in found] == [kind]
    assert found[0].frame == 3 and isinstance(found[0], Problem)
    with pytest.raises(DataError) as err:
        d.validate()
    msg = str(err.value)
    assert msg.startswith(f"planted.extxyz frame 3: {kind}")
    assert "1 of 6 frames" in msg and "fix:" in msg and "\n" not in msg


def test_overlap_respects_pbc_setting():
    a = _plant("overlap", emt_frame(0))
    assert [p.kind for p in Dataset.from_frames([a]).problems()] == ["overlap"]
    a.pbc = False  # without pbc the two atoms are ~7 Å apart
    assert Dataset.from_frames([a]).problems() == []


def test_duplicate_and_elements_filter():
    frames = make_frames(4)
    frames.append(frames[1].copy())
    frames[-1].calc = SinglePointCalculator(frames[-1], **get_labels(frames[1]))
    d = Dataset.from_frames(frames)
    found = d.problems(elements=["Cu"])
    kinds = {(p.frame, p.kind) for p in found}
    assert (4, "duplicate") in kinds
    assert "frame 1" in next(p.detail for p in found if p.kind == "duplicate")
    # Pt frames (1, 3, and the duplicate 4) are outside the allowed elements
    assert {f for f, k in kinds if k == "unknown_element"} == {1, 3, 4}
    with pytest.raises(DataError, match=r"^frame 1: unknown_element.*3 of 5 frames"):
        d.validate(elements=["Cu"])
    assert d.problems(elements=["Cu", "Pt"], checks=("elements",)) == []


def test_validate_through_file_and_limits(tmp_path):
    frames = make_frames(5)
    frames[2] = _plant("large_force", frames[2])
    p = Dataset.from_frames(frames).write(tmp_path / "bad.extxyz")
    d = Dataset.read(p)
    with pytest.raises(DataError, match=r"bad\.extxyz frame 2: large_force"):
        d.validate()
    assert d.validate(max_force_eV_A=100.0) is d
    assert [p.kind for p in d.problems(require=("energy", "forces", "stress"))] == ["large_force"]
    with pytest.raises(ConfigError):
        d.problems(require=("charge",))


def test_clean_dataset_validates(ds):
    assert ds.validate() is ds
    assert Dataset.from_frames([emt_frame(0, cluster=True)]).problems() == []


def test_all_problems_listed():
    frames = make_frames(6)
    frames[1] = _plant("missing_forces", frames[1])
    frames[4] = _plant("overlap", frames[4])
    found = Dataset.from_frames(frames).problems()
    assert [(p.frame, p.kind) for p in found] == [(1, "missing_forces"), (4, "overlap")]
    assert found[1].as_dict()["where"] == "frame 4"


# -- splits --------------------------------------------------------------------------------------


def test_split_deterministic_disjoint_covering():
    d = Dataset.from_frames(make_frames(20), source="x.extxyz")
    tr, va, te = d.split((0.7, 0.15, 0.15), seed=3)
    assert (len(tr), len(va), len(te)) == (14, 3, 3)
    idx = tr.source_index + va.source_index + te.source_index
    assert sorted(idx) == list(range(20))
    again = d.split((0.7, 0.15, 0.15), seed=3)
    assert [p.source_index for p in again] == [tr.source_index, va.source_index, te.source_index]
    other = d.split((0.7, 0.15, 0.15), seed=4)
    assert other[0].source_index != tr.source_index
    for part in (tr, va, te):
        for i, a in zip(part.source_index, part, strict=True):
            assert a is d[i]
    tr2, va2, te2 = d.split((0.9, 0.1, 0.0))
    assert len(te2) == 0 and len(tr2) + len(va2) == 20


def test_split_errors():
    d = Dataset.from_frames(make_frames(5), source="small.extxyz")
    with pytest.raises(ConfigError, match="sum to 1"):
        d.split((0.8, 0.1, 0.2))
    with pytest.raises(ConfigError, match="3 fractions"):
        d.split((0.8, 0.2))
    with pytest.raises(DataError, match=r"small\.extxyz: the valid split would be empty"):
        d.split((0.9, 0.05, 0.05))


# -- statistics ----------------------------------------------------------------------------------


def test_stats_against_hand_computation(ds):
    st = ds.stats()
    n_at = [len(a) for a in ds]
    e = np.array([get_labels(a)["energy"] for a in ds])
    f = np.concatenate([get_labels(a)["forces"] for a in ds])
    assert st["n_frames"] == 8 and st["n_atoms"] == sum(n_at) == 64
    assert st["elements"] == ["Cu", "Pt"]
    assert st["element_counts"] == {"Cu": 60, "Pt": 4}
    assert (st["n_energy"], st["n_forces"], st["n_stress"]) == (8, 8, 8)
    epa = e / np.array(n_at)
    assert st["energy_per_atom_eV"]["mean"] == pytest.approx(epa.mean())
    assert st["energy_per_atom_eV"]["std"] == pytest.approx(epa.std())
    assert st["energy_per_atom_eV"]["min"] == pytest.approx(epa.min())
    assert st["energy_per_atom_eV"]["max"] == pytest.approx(epa.max())
    assert st["force_rms_eV_A"] == pytest.approx(np.sqrt(np.mean(f**2)))
    assert st["force_max_eV_A"] == pytest.approx(np.linalg.norm(f, axis=1).max())
    json.dumps(st)  # plain types only


def test_reference_energies_recover_known_values():
    ref = {"Cu": -3.5, "Pt": -6.25}
    frames = []
    for n_pt in range(4):
        a = bulk("Cu", "fcc", a=3.7, cubic=True) * (2, 1, 1)
        for k in range(n_pt):
            a[k].symbol = "Pt"
        e = sum(ref[s] for s in a.get_chemical_symbols())
        a.calc = SinglePointCalculator(a, energy=e, forces=np.zeros((len(a), 3)))
        frames.append(a)
    st = Dataset.from_frames(frames).stats()
    assert st["reference_energies_eV"] == pytest.approx(ref)
    assert st["reference_rmse_eV_per_atom"] == pytest.approx(0.0, abs=1e-9)
    # one composition: minimum-norm solution = energy per atom
    one = Dataset.from_frames(frames[:1]).reference_energies()
    assert one == pytest.approx({"Cu": -3.5})


def test_structure_hash_reexported(ds):
    assert structure_hash(ds[0]) == structure_hash(ds[0].copy())


# -- CLI -----------------------------------------------------------------------------------------


def cli(argv: list[str]) -> int:
    from common.cli.app import run_app
    from common.cli.main import app

    return run_app(app, argv)


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert "Traceback" not in err
    return lines[0]


def test_cli_inspect(ds, tmp_path, capsys):
    p = str(ds.write(tmp_path / "d.extxyz"))
    assert cli(["dataset", "inspect", p, "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["n_frames"] == 8 and st["elements"] == ["Cu", "Pt"]
    assert cli(["dataset", "inspect", p]) == 0
    assert "reference energy Pt" in capsys.readouterr().out
    assert cli(["dataset", "inspect", str(tmp_path / "missing.extxyz")]) == 2
    assert "missing.extxyz: file not found" in one_error_line(capsys.readouterr().err)


def test_cli_validate(tmp_path, capsys):
    frames = make_frames(5)
    good = str(Dataset.from_frames(frames).write(tmp_path / "good.extxyz"))
    assert cli(["dataset", "validate", good]) == 0
    assert "5 frames ok" in capsys.readouterr().out
    frames[3] = _plant("large_force", frames[3])
    frames[4] = _plant("overlap", frames[4])
    bad = str(Dataset.from_frames(frames).write(tmp_path / "bad.extxyz"))
    assert cli(["dataset", "validate", bad]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "bad.extxyz frame 3: large_force" in line and "2 of 5 frames" in line
    assert cli(["dataset", "validate", bad, "--json"]) == 2
    out, err = capsys.readouterr()
    assert "frame 3: large_force" in one_error_line(err)
    rep = json.loads(out)
    assert not rep["ok"] and [(p["frame"], p["kind"]) for p in rep["problems"]] == [
        (3, "large_force"), (4, "overlap")]
    assert cli(["dataset", "validate", bad, "--max-force", "100", "--min-distance", "0.1"]) == 0
    capsys.readouterr()
    assert cli(["dataset", "validate", good, "--elements", "Cu,Xx"]) == 2
    assert "unknown element symbol 'Xx'" in one_error_line(capsys.readouterr().err)


def test_cli_split(tmp_path, capsys):
    p = str(Dataset.from_frames(make_frames(10)).write(tmp_path / "d.extxyz"))
    out = tmp_path / "splits"
    assert cli(["dataset", "split", p, "--out", str(out), "--fractions", "0.6,0.2,0.2",
                "--seed", "1", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert {k: v["n_frames"] for k, v in rep["splits"].items()} == {
        "train": 6, "valid": 2, "test": 2}
    parts = [Dataset.read(out / f"{k}.extxyz") for k in ("train", "valid", "test")]
    hashes = [structure_hash(a) for part in parts for a in part]
    assert len(set(hashes)) == 10
    assert cli(["dataset", "split", p, "--out", str(out)]) == 2  # files exist
    assert "already exists" in one_error_line(capsys.readouterr().err)
    assert cli(["dataset", "split", p, "--out", str(out), "--fractions", "0.5,0.5"]) == 2
    assert "--fractions" in one_error_line(capsys.readouterr().err)


def test_cli_split_validates_before_writing(tmp_path, capsys):
    frames = make_frames(10)
    frames[3] = with_labels(frames[3], energy=float("nan"), forces=get_labels(frames[3])["forces"])
    bad = str(Dataset.from_frames(frames).write(tmp_path / "bad.extxyz"))
    out = tmp_path / "splits"
    assert cli(["dataset", "split", bad, "--out", str(out)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "bad.extxyz frame 3" in line and "nonfinite_energy" in line
    assert not out.exists()  # nothing written, nothing for a rerun to trip over
    plain = [a.copy() for a in make_frames(10)]  # Atoms.copy drops the labels
    unlabelled = tmp_path / "plain.extxyz"
    import ase.io

    ase.io.write(unlabelled, plain)
    assert cli(["dataset", "split", str(unlabelled), "--out", str(out)]) == 2
    assert "missing_energy" in one_error_line(capsys.readouterr().err)
    assert not out.exists()
    # structures to label later may be split on purpose
    assert cli(["dataset", "split", str(unlabelled), "--out", str(out), "--require", "none",
                "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert sum(v["n_frames"] for v in rep["splits"].values()) == 10


def test_write_replaces_atomically_and_leaves_no_temporary_file(ds, tmp_path):
    p = ds.write(tmp_path / "d.extxyz")
    ds[:2].write(p, overwrite=True)
    assert len(Dataset.read(p)) == 2
    ds.write(tmp_path / "d.db")
    assert sorted(q.name for q in tmp_path.iterdir()) == ["d.db", "d.extxyz"]
