"""Synthetic trajectories with known transport, and a hand-built Li+ solvation shell."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from ase import Atoms

#: 1 cm²/s in Å²/fs
CM2_PER_S_IN_A2_PER_FS = 10.0


def _wrap(x: np.ndarray, cell: np.ndarray) -> np.ndarray:
    frac = (x @ np.linalg.inv(cell)) % 1.0
    return frac @ cell


def _frames(symbols, x, cell, dt_fs: float | None) -> list[Atoms]:
    wrapped = _wrap(x, cell)
    frames = []
    for t, p in enumerate(wrapped):
        a = Atoms(symbols, positions=p, cell=cell, pbc=True)
        if dt_fs is not None:
            a.info["time_fs"] = t * dt_fs
        frames.append(a)
    return frames


def brownian(seed: int, n_frames: int, counts: dict[str, int], d_cm2_per_s: dict[str, float],
             dt_fs: float, cell, stored_dt_fs: float | None = None
             ) -> tuple[list[Atoms], np.ndarray]:
    """Free random walks (Gaussian steps, variance 2 D dt per axis) wrapped into ``cell``.

    Returns the wrapped frames (``info["time_fs"]`` every ``stored_dt_fs``, default
    ``dt_fs``) and the continuous positions ``(T, N, 3)``.
    """
    rng = np.random.default_rng(seed)
    cell = np.asarray(cell, dtype=float)
    symbols, steps = [], []
    for s, n in counts.items():
        symbols += [s] * n
        sd = np.sqrt(2.0 * d_cm2_per_s[s] * CM2_PER_S_IN_A2_PER_FS * dt_fs)
        steps.append(rng.normal(scale=sd, size=(n_frames - 1, n, 3)))
    x0 = rng.uniform(size=(len(symbols), 3)) @ cell
    x = np.concatenate([x0[None], x0 + np.cumsum(np.concatenate(steps, axis=1), axis=0)])
    return _frames(symbols, x, cell, dt_fs if stored_dt_fs is None else stored_dt_fs), x


def ion_pairs(seed: int, n_frames: int, n_pairs: int, d_own: float, d_common: float,
              dt_fs: float, cell) -> list[Atoms]:
    """Li/P pairs: each pair shares a random walk (``d_common``, cm²/s), each ion adds its own
    (``d_own``); P sits 3 Å from its Li at the start."""
    rng = np.random.default_rng(seed)
    cell = np.asarray(cell, dtype=float)

    def walk(d):
        sd = np.sqrt(2.0 * d * CM2_PER_S_IN_A2_PER_FS * dt_fs)
        steps = rng.normal(scale=sd, size=(n_frames - 1, n_pairs, 3))
        return np.concatenate([np.zeros((1, n_pairs, 3)), np.cumsum(steps, axis=0)])

    common = walk(d_common)
    x0 = rng.uniform(size=(n_pairs, 3)) @ cell
    li = x0 + common + walk(d_own)
    p = x0 + np.array([3.0, 0.0, 0.0]) + common + walk(d_own)
    return _frames(["Li"] * n_pairs + ["P"] * n_pairs, np.concatenate([li, p], axis=1), cell,
                   dt_fs)


@pytest.fixture(scope="session")
def make_brownian():
    return brownian


@pytest.fixture(scope="session")
def make_ion_pairs():
    return ion_pairs


# --------------------------------------------------------------------------------------------
# a hand-built Li+ shell: 3 EC + 1 DEC with their carbonyl O at 2.00 Å, on tetrahedral axes


@functools.cache
def _molecule(smiles: str) -> tuple[list[str], np.ndarray, int, int]:
    """Symbols, positions (Å), carbonyl O and carbonyl C of an RDKit-embedded molecule."""
    from rdkit import Chem
    from rdkit.Chem import AllChem

    m = Chem.AddHs(Chem.MolFromSmiles(smiles))
    AllChem.EmbedMolecule(m, randomSeed=7)
    AllChem.MMFFOptimizeMolecule(m)
    o = next(a for a in m.GetAtoms() if a.GetSymbol() == "O" and a.GetDegree() == 1)
    return ([a.GetSymbol() for a in m.GetAtoms()], m.GetConformer().GetPositions(),
            o.GetIdx(), o.GetNeighbors()[0].GetIdx())


def _place(mol, li: np.ndarray, u: np.ndarray, r_A: float) -> np.ndarray:
    """Positions with the carbonyl O at ``li + r_A u`` and C=O pointing at Li."""
    from scipy.spatial.transform import Rotation

    _, pos, o, c = mol
    v = pos[o] - pos[c]
    rot, _ = Rotation.align_vectors([-u], [v / np.linalg.norm(v)])
    return rot.apply(pos - pos[o]) + li + r_A * u


def li_shell(dec_away: bool = False, box_A: float = 30.0) -> Atoms:
    """Li at the box centre; EC, EC, EC, DEC with carbonyl O at 2.00 Å on tetrahedral axes;
    one more EC with its carbonyl O 7 Å away (outside the shell). ``dec_away`` moves the DEC
    8 Å further out along its axis."""
    ec, dec = _molecule("O=C1OCCO1"), _molecule("CCOC(=O)OCC")
    li = np.full(3, box_A / 2)
    tet = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3.0)
    symbols, pos = ["Li"], [li[None]]
    for mol, u in zip([ec, ec, ec, dec], tet, strict=True):
        r = 10.0 if (dec_away and mol is dec) else 2.0
        symbols += mol[0]
        pos.append(_place(mol, li, u, r))
    symbols += ec[0]
    pos.append(_place(ec, li, np.array([0.0, 0.0, 1.0]), 7.0))
    return Atoms(symbols, positions=np.concatenate(pos), cell=[box_A] * 3, pbc=True)


@pytest.fixture(scope="session")
def make_li_shell():
    return li_shell
