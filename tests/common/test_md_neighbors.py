"""Neighbour lists (common.md.neighbors.NeighborList: C brute force for small cells, vesin-torch
for large ones) against ASE's, and the skin.

Pairs are compared as exact sets of (i, j, cell shift): both libraries find every image within
the cutoff, so for random positions (no distance within ~1e-12 Å of the cutoff) the sets must
be identical, not just close.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, fcc111
from ase.neighborlist import neighbor_list

from common.md.neighbors import NeighborList
from common.md.state import BatchState
from common.potential.pair import LennardJones
from common.potential.protocol import evaluate

torch.set_num_threads(1)


def small_triclinic() -> Atoms:
    """3 atoms in a skewed ~3 Å cell, positions *not* wrapped into the cell (as after MD)."""
    rng = np.random.default_rng(0)
    cell = np.array([[3.0, 0.0, 0.0], [1.2, 2.8, 0.0], [0.7, -0.9, 3.1]])
    at = Atoms("Ar3", scaled_positions=rng.random((3, 3)), cell=cell, pbc=True)
    at.positions += rng.normal(scale=2.0, size=(3, 3))
    return at


def slab() -> Atoms:
    at = fcc111("Cu", (2, 2, 3), vacuum=5.0)
    at.rattle(0.05, seed=2)
    return at


def molecule() -> Atoms:
    rng = np.random.default_rng(3)
    return Atoms("Ar6", positions=rng.random((6, 3)) * 6.0)


def pair_set(i, j, S) -> set:
    return {(int(a), int(b), tuple(int(round(float(x))) for x in s))
            for a, b, s in zip(i, j, S, strict=True)}


def vesin_sets(frames, cutoff, skin=0.0) -> list[set]:
    state = BatchState.from_atoms(frames)
    nl = NeighborList(cutoff, skin=skin)
    nl.update(state)
    i, j, S, off, psys = nl.pairs()
    # r_ij = x_j - x_i + offsets must equal the shift times the cell
    np.testing.assert_allclose(off.numpy(), (S.unsqueeze(1) @ state.cells[psys]).squeeze(1),
                               atol=1e-12)
    starts = state.offsets().tolist()
    out = []
    for s in range(len(frames)):
        m = psys == s
        assert bool(((i[m] >= starts[s]) & (i[m] < starts[s + 1])).all())
        assert bool(((j[m] >= starts[s]) & (j[m] < starts[s + 1])).all())
        out.append(pair_set(i[m] - starts[s], j[m] - starts[s], S[m]))
    return out


@pytest.mark.parametrize("cutoff", [2.0, 4.0, 6.5])
def test_pairs_equal_ase_multiple_images(cutoff):
    """Cutoffs from below to more than twice the cell's shortest height: every periodic image
    within the cutoff is found (an atom even sees its own images), in a batch with a slab and
    a molecule so the per-system index offsets are exercised."""
    frames = [small_triclinic(), slab(), molecule()]
    got = vesin_sets(frames, cutoff)
    for at, g in zip(frames, got, strict=True):
        ref = pair_set(*neighbor_list("ijS", at, cutoff))
        assert g == ref
    assert any(i == j for i, j, _ in got[0]) == (cutoff > 2.5)  # self-images at large cutoff
    if cutoff > 4:
        assert len(got[0]) > 27  # several images of each of the 9 ordered atom pairs


def test_pairs_slab_no_images_along_vacuum():
    at = slab()
    got = vesin_sets([at], 6.0)[0]
    assert got == pair_set(*neighbor_list("ijS", at, 6.0))
    assert all(s[2] == 0 for _, _, s in got)
    assert any(s[0] != 0 or s[1] != 0 for _, _, s in got)


def test_skin_pairs_within_cutoff_plus_skin():
    at = small_triclinic()
    assert vesin_sets([at], 3.0, skin=0.7)[0] == pair_set(*neighbor_list("ijS", at, 3.7))


# ------------------------------------------------------------------------------------------
def _lj_state():
    a = bulk("Ar", "fcc", a=5.26, cubic=True).repeat((2, 2, 2))
    a.rattle(0.05, seed=1)
    b = fcc111("Ar", (2, 2, 3), a=5.26, vacuum=6.0)
    b.rattle(0.05, seed=2)
    return [a, b]


def _forces(pot, state, nl):
    with torch.no_grad():
        return pot(state, nl)


def test_no_rebuild_below_half_skin_and_forces_exact():
    """Moving every atom by less than skin/2 keeps the lists (update returns [], n_builds
    unchanged) and the forces equal a fresh evaluation: no pair can have entered the cutoff
    (each distance changed by < skin)."""
    skin = 1.0
    frames = _lj_state()
    pot = LennardJones(0.0104, 3.40, rc=8.5)
    state = BatchState.from_atoms(frames)
    nl = NeighborList(pot.cutoff, skin=skin)
    assert nl.update(state) == [0, 1]
    builds = nl.n_builds
    assert builds == 2
    rng = np.random.default_rng(7)
    d = rng.normal(size=(state.n_atoms, 3))
    d *= (0.49 * skin * rng.random((state.n_atoms, 1))) / np.linalg.norm(d, axis=1,
                                                                       keepdims=True)
    state.positions += torch.as_tensor(d)
    assert nl.update(state) == []
    assert nl.n_builds == builds
    out = _forces(pot, state, nl)
    moved = state.to_atoms()
    fresh = evaluate(pot, moved)
    np.testing.assert_allclose(out["forces"].numpy(), fresh["forces"].numpy(), atol=1e-12)
    np.testing.assert_allclose(out["energy"].numpy(), fresh["energy"].numpy(), atol=1e-12)


def test_only_the_moved_system_rebuilds():
    """One atom of system 1 moved by more than skin/2 -> only system 1 is rebuilt; it is moved
    into a crowded spot so the dense matrix must grow; forces still equal a fresh evaluation."""
    skin = 0.6
    frames = _lj_state()
    pot = LennardJones(0.0104, 3.40, rc=8.5)
    state = BatchState.from_atoms(frames)
    nl = NeighborList(pot.cutoff, skin=skin)
    nl.update(state)
    _forces(pot, state, nl)  # builds the dense view
    k_before = nl.dense(state)[0].shape[1]
    n0 = len(frames[0])
    # an atom of the slab's top layer moved down to the middle of the slab (> skin/2)
    top = n0 + int(np.argmax(frames[1].positions[:, 2]))
    state.positions[top, 2] -= 2.0
    state.positions[n0:n0 + 1] += 0.2 * skin  # another atom of system 1, below skin/2
    assert nl.update(state) == [1]
    assert nl.n_builds == 3
    assert nl.update(state) == []  # reference positions were reset for system 1
    out = _forces(pot, state, nl)
    fresh = evaluate(pot, state.to_atoms())
    np.testing.assert_allclose(out["forces"].numpy(), fresh["forces"].numpy(), atol=1e-12)
    np.testing.assert_allclose(out["energy"].numpy(), fresh["energy"].numpy(), atol=1e-12)
    assert nl.dense(state)[0].shape[1] >= k_before
    # now system 0 only
    state.positions[3, 0] += 0.4
    assert nl.update(state) == [0]
    assert nl.n_builds == 4
    out = _forces(pot, state, nl)
    fresh = evaluate(pot, state.to_atoms())
    np.testing.assert_allclose(out["forces"].numpy(), fresh["forces"].numpy(), atol=1e-12)


def test_cell_change_rebuilds_all():
    frames = _lj_state()
    state = BatchState.from_atoms(frames)
    nl = NeighborList(8.5, skin=1.0)
    nl.update(state)
    state.cells[0] *= 1.01
    assert nl.update(state) == [0, 1]
