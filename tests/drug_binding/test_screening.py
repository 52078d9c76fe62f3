"""The screening analysis on made-up trajectories with known answers: pocket RMSD after a
Kabsch fit on the receptor, contacts per residue, residence time, the ranking, and the check
that a ligand whose bonds break is reported as such and not ranked."""

from __future__ import annotations

import math

import numpy as np
import pytest

from common.errors import SimulationError
from drug_binding import screening as S

app = pytest.importorskip("openmm.app")

# the ligand's heavy-atom displacement along x in the receptor's frame, per frame (Å)
SHIFTS = np.array([0.0, 0.2, 0.4, 1.0, 2.0, 3.0, 4.0, 5.5, 6.5, 7.0, 0.3, 8.0])
DT_PS = 0.1


def _topology():
    """Receptor: three residues (ALA1 at x = -4, GLY2 far above, SER3 at x = +12 Å, each with
    two heavy atoms and an H); ligand LIG4: three heavy atoms and an H."""
    top = app.Topology()
    chain = top.addChain()
    el = app.Element.getBySymbol
    xyz = []
    for resname, heavy in (("ALA", [(-4, 0, 0), (-5.5, 0, 0)]),
                           ("GLY", [(0, 10, 0), (0, 10, 3)]),
                           ("SER", [(12, 0, 0), (13.5, 0, 1)])):
        res = top.addResidue(resname, chain)
        for k, p in enumerate(heavy):
            top.addAtom(f"C{k}", el("C"), res)
            xyz.append(p)
        top.addAtom("H", el("H"), res)
        xyz.append((heavy[0][0], heavy[0][1] - 1.0, heavy[0][2]))
    lig = top.addResidue("LIG", chain)
    atoms = [top.addAtom(n, el(e), lig) for n, e in (("C1", "C"), ("C2", "C"), ("N1", "N"),
                                                      ("H1", "H"))]
    xyz += [(0, 0, 0), (1.5, 0, 0), (0.75, 1.3, 0), (0, -1.0, 0)]
    top.addBond(atoms[0], atoms[1])
    top.addBond(atoms[1], atoms[2])
    top.addBond(atoms[0], atoms[3])
    return top, np.asarray(xyz, float), np.arange(9), np.arange(9, 13)


def _rotation(rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q @ np.diag(np.sign(np.diag(r)))
    return q if np.linalg.det(q) > 0 else -q


def _frames(seed=0):
    """Each frame: the ligand moved by SHIFTS[k] along x in the receptor frame, its H and the
    receptor's H jiggled (H atoms must not count), then the whole complex turned and moved
    at random (the Kabsch fit on the receptor must undo it)."""
    top, ref, rec, lig = _topology()
    rng = np.random.default_rng(seed)
    h = [a.index for a in top.atoms() if a.element.symbol == "H"]
    frames = []
    for k, d in enumerate(SHIFTS):
        x = ref.copy()
        x[lig] += [d, 0.0, 0.0]
        if k:
            x[h] += rng.normal(0.0, 0.5, (len(h), 3))
            x = x @ _rotation(rng).T + rng.normal(0.0, 20.0, 3)
        frames.append(x)
    return top, np.asarray(frames), rec, lig


def test_kabsch_undoes_a_rigid_motion():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(10, 3))
    b = a @ _rotation(rng).T + [3.0, -2.0, 7.0]
    np.testing.assert_allclose(S.kabsch_superpose(b, a, np.arange(10)), a, atol=1e-10)


def test_pocket_metrics_have_the_known_answers():
    top, frames, rec, lig = _frames()
    res = S._analyse(frames, top, lig, rec, DT_PS, contact_A=4.5, escape_A=5.0)
    assert res["n_frames"] == len(SHIFTS)
    # a pure translation of the heavy atoms by d: RMSD = centre shift = d
    np.testing.assert_allclose(res["rmsd_A"], SHIFTS, atol=1e-8)
    np.testing.assert_allclose(res["centre_shift_A"], SHIFTS, atol=1e-8)
    half = SHIFTS[len(SHIFTS) // 2:]
    assert res["mean_rmsd_A"] == pytest.approx(half.mean(), abs=1e-8)
    assert res["sem_rmsd_A"] == pytest.approx(half.std(ddof=1) / math.sqrt(len(half)),
                                              abs=1e-8)
    assert res["max_rmsd_A"] == pytest.approx(8.0)
    # first frame past 5 Å: k = 7 (5.5 Å), although the ligand comes back at k = 10
    assert res["escaped"] and res["residence_time_ps"] == pytest.approx(7 * DT_PS)
    # ALA1's C0 at x = -4: within 4.5 Å of the ligand's C1 while d < 0.5 (k = 0, 1, 2, 10);
    # SER3's C0 at x = 12: within 4.5 Å of C2 (x = 1.5 + d) while d > 6 (k = 8, 9, 11);
    # GLY2 never; the H atoms (jiggled, 1 Å off) never count
    assert res["contacts"] == {"ALA1": pytest.approx(4 / 12), "SER3": pytest.approx(3 / 12)}
    assert list(res["contacts"]) == ["ALA1", "SER3"]  # most frequent first


def test_a_ligand_that_stays_has_the_run_as_residence_time():
    top, frames, rec, lig = _frames()
    res = S._analyse(frames[:7], top, lig, rec, DT_PS, contact_A=4.5, escape_A=5.0)
    assert not res["escaped"] and res["residence_time_ps"] == pytest.approx(6 * DT_PS)
    res = S._analyse(frames, top, lig, rec, DT_PS, contact_A=4.5, escape_A=10.0)
    assert not res["escaped"]


def test_ranking_by_rmsd_then_residence_and_broken_ligands_left_out():
    results = {
        "a": {"name": "a", "status": "ok", "mean_rmsd_A": 2.0, "residence_time_ps": 1.0},
        "b": {"name": "b", "status": "ok", "mean_rmsd_A": 1.0, "residence_time_ps": 0.5},
        "c": {"name": "c", "status": "ok", "mean_rmsd_A": 2.0, "residence_time_ps": 1.5},
        "d": {"name": "d", "status": "fell_apart", "step": 300, "message": "bond"},
        "e": {"name": "e", "mean_rmsd_A": 3.0, "residence_time_ps": 1.5},  # older results
    }
    ranked = S.rank(results)
    assert [(r["rank"], r["name"]) for r in ranked] == [(1, "b"), (2, "c"), (3, "a"), (4, "e")]
    assert [r["name"] for r in S.fell_apart(results)] == ["d"]


def test_broken_bond_and_nan_are_reported_with_the_step():
    top, frames, rec, lig = _frames()
    bonds = S.ligand_bonds(top, lig)
    assert sorted(map(tuple, bonds.tolist())) == [(9, 10), (9, 12), (10, 11)]
    x = frames[0].copy()
    S._check_intact(x, bonds, 0, "test")  # intact: no error
    x[11] += [0.0, 1.0, 0.0]  # N1 pulled 1 Å further from C2: 1.5 -> ~2.4 Å
    with pytest.raises(S.LigandBroken) as e:
        S._check_intact(x, bonds, 40, "test")
    assert e.value.step == 40 and e.value.atoms == [10, 11]
    assert e.value.bond_A == pytest.approx(np.linalg.norm(x[11] - x[10]))
    assert isinstance(e.value, SimulationError) and "fell apart" in str(e.value)
    x[0, 0] = np.nan
    with pytest.raises(S.LigandBroken) as e:
        S._check_intact(x, bonds, 50, "test")
    assert math.isnan(e.value.bond_A) and "NaN" in str(e.value)
    guard = S.ligand_bond_guard(top, lig, where="walker")
    guard(frames[3] / 10.0, 7)  # nm in; intact
    far = frames[3].copy()
    far[12] += [5.0, 0.0, 0.0]  # the H flies off its carbon
    with pytest.raises(S.LigandBroken):
        guard(far / 10.0, 8)


def test_screen_reports_a_broken_ligand_and_ranks_the_rest(tmp_path, monkeypatch):
    """screen() through common.sweep (serial): the ligand whose run raises LigandBroken is
    kept as ``fell_apart`` (with its step and bond), not ranked and not retried on a rerun."""
    calls = []

    def fake_run_md(complex_dir, model_dir, steps, out, **kw):
        calls.append(complex_dir)
        if complex_dir == "cx_bad":
            raise S.LigandBroken("the ligand fell apart under the ML potential by step 700 "
                                 "(bond 3-9 at 2.31 Å)", step=700, bond_A=2.31, atoms=[3, 9])
        rmsd = {"cx_a": 1.0, "cx_b": 0.5}[complex_dir]
        return {"mean_rmsd_A": rmsd, "residence_time_ps": 1.0, "escaped": False,
                "rmsd_A": [0.0, rmsd], "centre_shift_A": [0.0, 0.1], "dt_ps": 0.1}

    monkeypatch.setattr(S, "run_md", fake_run_md)
    res = S.screen({"a": "cx_a", "bad": "cx_bad", "b": "cx_b"}, "model", tmp_path, steps=10,
                   cluster="serial")
    assert [r["name"] for r in res["ranking"]] == ["b", "a"] and res["failures"] == {}
    (bad,) = res["fell_apart"]
    assert (bad["name"], bad["status"], bad["step"], bad["max_bond_A"], bad["bond_atoms"]) == (
        "bad", "fell_apart", 700, 2.31, [3, 9])
    again = S.screen({"a": "cx_a", "bad": "cx_bad", "b": "cx_b"}, "model", tmp_path, steps=10,
                     cluster="serial")
    assert len(calls) == 3 and again["fell_apart"] == res["fell_apart"]

