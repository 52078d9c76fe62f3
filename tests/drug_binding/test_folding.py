"""Folding analysis: planted two-state series (events, persistence, hysteresis band, MFPT),
Q on a hand-built hairpin, Kabsch RMSD, and the trajectory path end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ase import Atoms
from scipy.spatial.transform import Rotation

from common.errors import ConfigError, DataError
from common.events import t_interval
from common.fileio import atomic_write_atoms
from drug_binding.folding import (
    analyse_folding,
    fold_trajectory,
    folding_states,
    fraction_native_contacts,
    kabsch_rmsd_A,
    native_contacts,
    plot_folding,
    residue_ids_from_pdb,
)

DT_FS = 10.0
#: planted dwells in frames, alternating unfolded / folded, starting unfolded
DWELLS = [120, 200, 80, 150, 100, 60, 90, 130]
Q_U, Q_F = 0.15, 0.85


def planted(seed: int = 0, noise: float = 0.03):
    """Square wave Q(t) with Gaussian noise, an in-band excursion and two short spikes.

    Dwells (frames): unfolded 0-119, folded 120-319, unfolded 320-399, folded 400-549, ...

    Returns the series, the times (fs) and the planted boundaries (frames) where the state
    changes. Noise of sd 0.03 around 0.15 / 0.85 stays > 4 sd from the thresholds 0.3 / 0.7.
    """
    levels = np.concatenate([np.full(n, Q_F if k % 2 else Q_U) for k, n in enumerate(DWELLS)])
    q = levels + np.random.default_rng(seed).normal(0.0, noise, len(levels))
    q[30:50] = 0.55 + 0.01 * np.sin(np.arange(20))  # in the band (0.3, 0.7): no event
    q[200:203] = 0.1  # 30 fs dip inside the first folded dwell
    q[350:355] = 0.9  # 50 fs spike inside the second unfolded dwell (frames 320-399)
    bounds = np.cumsum(DWELLS)[:-1]
    return q, np.arange(len(q)) * DT_FS, bounds


def test_planted_events_found_exactly():
    q, t, bounds = planted()
    res = analyse_folding(q, t, folded_threshold=0.7, unfolded_threshold=0.3, min_fs=100.0)
    assert [e["frame"] for e in res.events] == bounds.tolist()
    assert [e["kind"] for e in res.events] == ["folding", "unfolding"] * 3 + ["folding"]
    assert [e["time_fs"] for e in res.events] == (bounds * DT_FS).tolist()
    d = res.to_dict()
    assert (d["n_events"], d["n_folding"], d["n_unfolding"]) == (7, 4, 3)
    assert d["folded_fraction"] == pytest.approx(sum(DWELLS[1::2]) / sum(DWELLS))


def test_short_excursions_need_persistence():
    q, t, bounds = planted()
    # without persistence the 30 fs dip and the 50 fs spike are two extra round trips
    res = analyse_folding(q, t, 0.7, 0.3, min_fs=0.0)
    assert len(res.events) == len(bounds) + 4
    assert {200, 203, 350, 355} <= {e["frame"] for e in res.events}
    # 60 fs is enough to drop both (6 frames > 3 and 5)
    assert len(analyse_folding(q, t, 0.7, 0.3, min_fs=60.0).events) == len(bounds)


def test_noise_in_hysteresis_band_is_no_event():
    q, t, _ = planted()
    states = folding_states(q, t, 0.7, 0.3)
    assert not states[:120].any()  # the 0.55 plateau at frames 30-49 stays unfolded
    # a single threshold at 0.5 would have called it folded
    assert folding_states(q, t, 0.5 + 1e-9, 0.5)[30:50].all()


def test_mfpt_equals_planted_dwells():
    q, t, _ = planted()
    res = analyse_folding(q, t, 0.7, 0.3, min_fs=100.0)
    # complete dwells only: the first (unfolded) and the last (folded) are censored
    fold = [n * DT_FS for n in DWELLS[2:-1:2]]
    unfold = [n * DT_FS for n in DWELLS[1:-1:2]]
    assert res.folding_times_fs == fold
    assert res.unfolding_times_fs == unfold
    d = res.to_dict()
    mean, (lo, hi) = t_interval(fold)
    assert d["mfpt_folding_fs"]["mean"] == pytest.approx(np.mean(fold)) == pytest.approx(mean)
    assert d["mfpt_folding_fs"]["ci95"] == pytest.approx([max(0.0, lo), hi])
    assert d["mfpt_unfolding_fs"] == {"n": 3, "mean": pytest.approx(np.mean(unfold)),
                                      "ci95": pytest.approx([max(0.0, x) for x in
                                                             t_interval(unfold)[1]])}


def test_rmsd_direction_gives_the_same_events():
    q, t, bounds = planted()
    rmsd = 10.0 * (1.0 - q)  # folded when low
    res = analyse_folding(rmsd, t, folded_threshold=3.0, unfolded_threshold=7.0, min_fs=100.0,
                          observable="rmsd_A")
    assert [e["frame"] for e in res.events] == bounds.tolist()
    assert res.events[0]["kind"] == "folding"


def test_bad_thresholds_and_series():
    q, t, _ = planted()
    with pytest.raises(ConfigError, match="thresholds must differ"):
        folding_states(q, t, 0.5, 0.5)
    q[7] = np.nan
    with pytest.raises(DataError, match="series frame 7"):
        folding_states(q, t, 0.7, 0.3)
    with pytest.raises(DataError, match="equal length"):
        folding_states(q[:5], t, 0.7, 0.3)


# -- Q on a hand-built hairpin ------------------------------------------------------------------


def hairpin() -> tuple[Atoms, np.ndarray]:
    """Two strands of four C atoms (one residue each), 3.8 Å along, 4.0 Å apart, plus an H.

    Heavy pairs within 4.5 Å and |i - j| > 3: (0, 7) and (1, 6), both 4.0 Å; the cross
    diagonals are 5.5 Å. The H (residue 7) sits 1.5 Å from atom 0 and must not count.
    """
    xs = [0.0, 3.8, 7.6, 11.4]
    pos = [(x, 0.0, 0.0) for x in xs] + [(x, 4.0, 0.0) for x in reversed(xs)] + [(0, 1.5, 0)]
    atoms = Atoms("C8H", positions=pos)
    return atoms, np.array([1, 2, 3, 4, 5, 6, 7, 8, 8])


def test_native_contacts_of_hairpin():
    atoms, res = hairpin()
    nc = native_contacts(atoms, res)
    assert sorted(zip(nc.i.tolist(), nc.j.tolist(), strict=True)) == [(0, 7), (1, 6)]
    assert nc.r0_A == pytest.approx([4.0, 4.0])


def test_q_native_one_expanded_zero_and_half_contact():
    atoms, res = hairpin()
    nc = native_contacts(atoms, res)
    expanded = atoms.positions * 3.0
    # native: 1 / (1 + exp(5 (4 - 7.2))) = 1 - 1.1e-7; expanded x3: exp(-5 * 4.8) ~ 4e-11
    q = fraction_native_contacts(np.array([atoms.positions, expanded]), nc)
    assert q[0] == pytest.approx(1.0, abs=1e-6)
    assert q[1] == pytest.approx(0.0, abs=1e-9)
    # stretch contact (0, 7) to exactly lambda r0 = 7.2 Å: its term is 1/2 -> Q = 3/4
    half = atoms.copy()
    half.positions[7] = (0.0, 4.0, math.sqrt(7.2**2 - 16.0))
    assert fraction_native_contacts([half], nc)[0] == pytest.approx(0.75, abs=1e-6)


def test_native_contact_errors():
    atoms, res = hairpin()
    with pytest.raises(ConfigError, match="residue"):
        native_contacts(atoms)
    with pytest.raises(DataError, match="no native contacts"):
        native_contacts(atoms, np.zeros(len(atoms), dtype=int))


# -- Kabsch RMSD ----------------------------------------------------------------------------------


def test_kabsch_rotated_translated_copy_is_zero():
    rng = np.random.default_rng(1)
    ref = rng.normal(0, 5, (20, 3))
    rots = Rotation.random(4, random_state=2).as_matrix()
    frames = np.array([ref @ r.T + rng.normal(0, 10, 3) for r in rots])
    assert kabsch_rmsd_A(frames, ref) == pytest.approx(np.zeros(4), abs=1e-10)
    # a mirror image is no rotation: the det = +1 guard keeps its RMSD > 0
    assert kabsch_rmsd_A(ref * [-1, 1, 1], ref)[0] > 1.0


def test_kabsch_known_displacement():
    rng = np.random.default_rng(3)
    ref = rng.normal(0, 4, (15, 3))
    c = ref.mean(axis=0)
    # uniform expansion about the centroid: no rotation can undo it, RMSD = eps * rms radius
    eps = 0.1
    grown = c + (1 + eps) * (ref - c)
    expect = eps * math.sqrt(np.mean(np.sum((ref - c) ** 2, axis=1)))
    assert kabsch_rmsd_A(grown, ref)[0] == pytest.approx(expect, rel=1e-10)
    # random displacement: scipy's optimal rotation gives the same minimum
    moved = ref + rng.normal(0, 0.5, ref.shape)
    _, rssd = Rotation.align_vectors(ref - c, moved - moved.mean(axis=0))
    assert kabsch_rmsd_A(moved, ref)[0] == pytest.approx(rssd / math.sqrt(len(ref)), rel=1e-9)
    # atom selection
    sel = [0, 2, 4, 6, 8]
    assert kabsch_rmsd_A(grown, ref, sel)[0] == pytest.approx(
        kabsch_rmsd_A(grown[sel], ref[sel])[0])


# -- end to end --------------------------------------------------------------------------------


def test_fold_trajectory_from_files(tmp_path):
    native, res = hairpin()
    native.arrays["residuenumbers"] = res
    pdb = tmp_path / "native.pdb"
    native.write(pdb, format="proteindatabank")
    assert residue_ids_from_pdb(pdb).tolist() == res.tolist()
    pattern = [0] * 20 + [1] * 30 + [0] * 10  # expanded, native, expanded
    frames = []
    for k, f in enumerate(pattern):
        a = native.copy()
        del a.arrays["residuenumbers"]
        if not f:
            a.positions *= 3.0
        a.info["time_fs"] = 5.0 * k
        frames.append(a)
    traj = atomic_write_atoms(tmp_path / "traj.extxyz", frames)
    out = fold_trajectory(traj, pdb, min_fs=20.0)
    assert [(e["kind"], e["frame"], e["time_fs"]) for e in out.events] == [
        ("folding", 20, 100.0), ("unfolding", 50, 250.0)]
    assert out.to_dict()["mfpt_unfolding_fs"]["mean"] == 150.0
    rmsd = fold_trajectory(frames, native, observable="rmsd", folded_threshold=1.0,
                           unfolded_threshold=3.0)
    assert [e["frame"] for e in rmsd.events] == [20, 50]
    png = plot_folding(out, tmp_path / "q.png", title="hairpin")
    assert png.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ConfigError, match="unknown observable"):
        fold_trajectory(frames, native, observable="rg")
