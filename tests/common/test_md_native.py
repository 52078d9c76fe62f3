"""Native CPU kernels (common.md.native) against the torch and vesin code they stand in for.

Each C kernel must give what its reference gives: the same pair sets as vesin (exactly), the
same dense neighbour matrix as the torch row rewrite (exactly), the same LJ energies, forces
and virial as the torch pair kernel (to rounding: the C loop sums a row in SIMD lanes), and MD
that follows the same trajectory. Without a compiler everything falls back to torch and says
why.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, fcc111

import common.md.neighbors as nbmod
from common.md import native
from common.md.engine import MDEngine
from common.md.neighbors import NeighborList
from common.md.noise import maxwell_boltzmann
from common.md.state import BatchState
from common.potential.pair import LennardJones

torch.set_num_threads(1)
pytestmark = pytest.mark.skipif(native.load("neighbors") is None,
                                reason=f"no native kernels: {native.why_not('neighbors')}")


def systems() -> list[Atoms]:
    """Cells the pair search must get right: cubic, skewed with unwrapped atoms, a slab, a
    molecule, a cell much smaller than the cutoff (several image shells) and a lone atom."""
    rng = np.random.default_rng(0)
    ar = bulk("Ar", "fcc", a=5.26, cubic=True).repeat((2, 2, 2))
    ar.rattle(0.05, seed=1)
    skew = Atoms("Ar5", scaled_positions=rng.random((5, 3)),
                 cell=[[4.0, 0, 0], [1.7, 3.6, 0], [0.9, -1.2, 4.2]], pbc=True)
    skew.positions += rng.normal(scale=6.0, size=(5, 3))  # far outside the cell, as after MD
    slab = fcc111("Cu", (2, 2, 3), vacuum=5.0)
    slab.rattle(0.05, seed=2)
    mol = Atoms("Ar7", positions=rng.random((7, 3)) * 7.0)
    tiny = Atoms("Ar2", scaled_positions=[[0.1, 0.2, 0.3], [0.6, 0.5, 0.9]],
                 cell=[[2.1, 0, 0], [0.4, 2.3, 0], [0.2, 0.3, 2.2]], pbc=True)
    lone = Atoms("Ar", positions=[[0.3, 0.1, 0.2]], cell=[3.0, 3.1, 3.2], pbc=True)
    return [ar, skew, slab, mol, tiny, lone]


def as_set(i, j, S) -> set:
    return {(int(a), int(b), tuple(int(round(float(x))) for x in s))
            for a, b, s in zip(i, j, S, strict=True)}


@pytest.mark.parametrize("cutoff", [4.0, 9.5])
def test_brute_force_pairs_equal_vesin(cutoff):
    from vesin_torch import NeighborList as Vesin

    vesin = Vesin(cutoff=cutoff, full_list=True, sorted=True)
    for k, at in enumerate(systems()):
        st = BatchState.from_atoms([at])
        box = st.cells[0] if at.pbc.any() else torch.zeros(3, 3, dtype=torch.float64)
        got = nbmod._small_system_pairs(st.positions, box, st.pbc[0], cutoff)
        assert got is not None, k
        ref = vesin.compute(points=st.positions, box=box, periodic=st.pbc[0], quantities="ijS")
        assert as_set(*got[:3]) == as_set(*ref), f"system {k}"
        np.testing.assert_allclose(got[3].numpy(), (got[2].double() @ box).numpy(), atol=1e-12)
        assert len(got[0]) == len(ref[0])
        i = got[0].numpy()
        assert np.all(np.diff(i) >= 0)  # sorted by i, as the dense rewrite needs


def test_pair_searches_in_threads_do_not_share_a_buffer():
    """The C search releases the GIL; engines running in threads must each get their own pairs."""
    from concurrent.futures import ThreadPoolExecutor

    frames = systems()
    states = [BatchState.from_atoms([at]) for at in frames]

    def search(k):
        st = states[k]
        box = st.cells[0] if frames[k].pbc.any() else torch.zeros(3, 3, dtype=torch.float64)
        out = []
        for _ in range(30):
            i, j, S, _ = nbmod._small_system_pairs(st.positions, box, st.pbc[0], 6.0)
            out.append(as_set(i.clone(), j.clone(), S.clone()))
        return out

    alone = [search(k)[0] for k in range(len(frames))]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(search, range(len(frames))))
    for k, runs in enumerate(together):
        assert all(r == alone[k] for r in runs), k


def test_large_or_singular_systems_are_left_to_vesin():
    big = bulk("Ar", "fcc", a=5.26, cubic=True).repeat((8, 8, 8))  # 2,048 atoms: 4.2M checks
    st = BatchState.from_atoms([big])
    assert nbmod._small_system_pairs(st.positions, st.cells[0], st.pbc[0], 9.5) is None
    flat = torch.tensor([[3.0, 0, 0], [0, 3.0, 0], [0, 0, 0.0]], dtype=torch.float64)
    pos = torch.zeros(2, 3, dtype=torch.float64)
    pos[1, 0] = 1.0
    assert nbmod._small_system_pairs(pos, flat, torch.tensor([True] * 3), 2.0) is None
    # and the list of the big one still comes out right (vesin): 12 nearest neighbours each
    nl = NeighborList(3.8, skin=0.0)
    nl.update(st)
    assert len(nl.pairs()[0]) == 2048 * 12


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_stale_systems_in_c_agree_with_torch(dtype):
    """Which systems have an atom beyond skin/2 of its build position: C against torch."""
    st = BatchState.from_atoms(batch(8), dtype=dtype)
    nl = NeighborList(3.0, skin=1.0)
    nl.update(st)
    gen = torch.Generator().manual_seed(0)
    for scale in (0.2, 0.35, 0.6, 2.0):
        st.positions.copy_(nl._ref_positions
                           + scale * torch.rand(st.n_atoms, 3, generator=gen, dtype=dtype))
        disp2 = ((st.positions - nl._ref_positions) ** 2).sum(-1)
        ref = sorted({int(st.system_idx[a]) for a in torch.nonzero(disp2 > 0.25).flatten()})
        assert nl._stale_native(st, st.positions) == ref, scale
    assert 0 < len(ref) and scale == 2.0


def test_batched_search_equals_one_by_one():
    """One C call for several systems gives each the lists it gets alone (and the global atom
    indices), for a batch mixing cubic, skewed, slab, molecule and tiny cells."""
    frames = systems()
    st = BatchState.from_atoms(frames)
    nl = NeighborList(4.0, skin=0.5)
    off = st.offsets().tolist()
    todo = [0, 1, 3, 4, 5]
    got = nbmod._systems_pairs(st, todo, off, 4.5)
    assert got is not None
    for k, s in enumerate(todo):
        alone = nl._build_system(st, s, off[s], off[s + 1])
        assert as_set(*got[k][:3]) == as_set(*alone[:3]), s
        assert torch.equal(got[k][0], alone[0]) and torch.equal(got[k][1], alone[1]), s
        assert torch.equal(got[k][3], alone[3]), s  # same order, same offsets
    big = BatchState.from_atoms([frames[0], bulk("Ar", "fcc", a=5.26, cubic=True)
                                 .repeat((8, 8, 8))])
    assert nbmod._systems_pairs(big, [0, 1], big.offsets().tolist(), 9.5) is None  # vesin


def batch(n=6, seed=0) -> list[Atoms]:
    out = []
    for r in range(n):
        at = bulk("Ar", "fcc", a=5.26, cubic=True).repeat((2, 2, 2))
        at.rattle(0.03, seed=seed + r)
        at.set_velocities(maxwell_boltzmann(at.get_masses(), 40.0, r))
        out.append(at)
    return out


def test_dense_rows_rewrite_equals_torch_rewrite(monkeypatch):
    st = BatchState.from_atoms(batch())
    lists = []
    for use_native in (True, False):
        if not use_native:
            monkeypatch.setattr(NeighborList, "_update_dense_native", lambda *a: False)
        nl = NeighborList(8.5, skin=1.0)
        nl.update(st)
        nl.dense(st)
        first = [t.clone() for t in (*nl.dense(st), nl._dense_shifts)]
        st.positions[40] += 0.8  # system 1 passes skin/2: only its rows are rewritten
        assert nl.update(st) == [1]
        lists.append((first, [t.clone() for t in (*nl.dense(st), nl._dense_shifts)]))
        st.positions[40] -= 0.8
    for a, b in zip(lists[0], lists[1], strict=True):
        for x, y in zip(a, b, strict=True):
            assert torch.equal(torch.nan_to_num(x, nan=-7.0), torch.nan_to_num(y, nan=-7.0))


@pytest.mark.parametrize("dtype,rtol", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
def test_lj_native_kernel_equals_torch_kernel(dtype, rtol):
    frames = batch(4)
    frames.append(fcc111("Cu", (2, 2, 3), vacuum=5.0))  # a slab: stress with a cell, pbc z off
    frames[-1].set_chemical_symbols(["Ar"] * len(frames[-1]))
    st = BatchState.from_atoms(frames, dtype=dtype)
    pot = LennardJones(epsilon=0.0104, sigma=3.4, rc=8.5)
    pot.energy_per_atom = -0.01
    nl = NeighborList(pot.cutoff, skin=0.5)
    nbr, offs = nl.dense(st) if nl.update(st) is not None else None
    c = pot._native_kernel(st.positions, nbr, offs, virial=True)
    assert c is not None
    e_t, f_t, d, du_r = pot._dense_terms(st.positions, nbr, offs)
    w_t = 0.5 * torch.einsum("anK,bnK->nab", d, d * du_r).reshape(-1, 9)
    for got, ref in zip(c, (e_t, f_t, w_t), strict=True):
        scale = float(ref.abs().max())
        assert float((got - ref).abs().max()) <= rtol * scale, (got - ref).abs().max()
    no_w = pot._native_kernel(st.positions, nbr, offs, virial=False)
    assert no_w[2] is None and torch.equal(no_w[1], c[1])
    # the whole potential through the engine's call, native against torch
    out_c = pot(st, nl, compute_stress=True)
    pot.native = False
    out_t = pot(st, nl, compute_stress=True)
    for key in ("energy", "forces", "stress"):
        scale = float(out_t[key].abs().max())
        assert float((out_c[key] - out_t[key]).abs().max()) <= rtol * scale, key


def test_autograd_through_positions_uses_torch():
    st = BatchState.from_atoms(batch(1))
    pot = LennardJones(epsilon=0.0104, sigma=3.4, rc=8.5)
    nl = NeighborList(pot.cutoff, skin=0.5)
    nl.update(st)
    nbr, offs = nl.dense(st)
    pos = st.positions.clone().requires_grad_(True)
    assert pot._native_kernel(pos, nbr, offs, virial=False) is None
    e, f = pot._dense_forces(pos, nbr, offs)
    (g,) = torch.autograd.grad(e.sum(), pos)
    assert torch.allclose(-g, f, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_guard_fast_path_in_c_agrees_with_torch(dtype):
    """Fine, and each way of not being fine (a position NaN, a force over the limit, a system
    too hot, an energy NaN), with a fixed atom in the degrees of freedom; the C pass and the
    torch expressions must agree, and the guard must name the right system either way."""
    from ase.constraints import FixAtoms

    from common.md.guard import BlowUpGuard

    frames = batch(3)
    frames[2].set_constraint(FixAtoms(indices=[0, 1]))
    st = BatchState.from_atoms(frames, dtype=dtype)
    forces = torch.randn(st.n_atoms, 3, dtype=dtype) * 0.01
    energy = torch.zeros(3, dtype=dtype)
    guard = BlowUpGuard(max_force_eV_A=1.0, max_temperature_K=400.0)
    t = guard._temperature_K(st)
    assert float(t.max()) < 400 and float(t.min()) > 5  # the starting replicas: fine

    def torch_fine(st, f, e):
        temp = guard._temperature_K(st)
        return bool((f.abs().max() <= guard.max_force_eV_A) & torch.isfinite(st.positions.sum())
                    & torch.isfinite(e.sum()) & (temp.max() <= guard.max_temperature_K))

    cases = {"fine": (None, None)}
    cases["position NaN"] = ("pos", 40)
    cases["force"] = ("force", 70)
    cases["hot"] = ("hot", 1)
    cases["energy NaN"] = ("energy", 2)
    for name, (what, k) in cases.items():
        s2 = BatchState.from_atoms(frames, dtype=dtype)
        f2, e2 = forces.clone(), energy.clone()
        if what == "pos":
            s2.positions[k, 1] = float("nan")
        elif what == "force":
            f2[k, 2] = -3.0
        elif what == "hot":
            s2.velocities[s2.system_idx == k] *= 10.0  # 100x the temperature
        elif what == "energy":
            e2[k] = float("inf")
        got = guard._native_fine(s2, f2, e2)
        assert got is not None
        assert got == torch_fine(s2, f2, e2) == (what is None), name
        bad = guard.check(s2, f2, e2)
        assert (bad is None) == (what is None), name
        if what is not None:
            assert bad[0] == (k if what in ("hot", "energy") else int(s2.system_idx[k])), name


def run_md(steps=40, seed=0):
    st = BatchState.from_atoms(batch(4, seed=seed))
    eng = MDEngine(LennardJones(epsilon=0.0104, sigma=3.4, rc=8.5), st, ensemble="nvt",
                   timestep_fs=5.0, temperature_K=40.0, skin=1.0)
    eng.run(steps)
    return st.positions.clone(), eng.neighbors.n_builds


def test_md_with_native_kernels_follows_the_torch_trajectory(monkeypatch):
    """40 Langevin steps (same noise): the trajectories agree to rounding, grown by the MD's
    chaos from ~1e-16 to well under 1e-9 Å at this length."""
    pos_c, builds_c = run_md()
    monkeypatch.setenv("MLP_CASES_NATIVE", "0")
    native.reset()
    try:
        pos_t, builds_t = run_md()
        assert native.why_not("pair_lj") == "switched off by MLP_CASES_NATIVE=0"
    finally:
        monkeypatch.delenv("MLP_CASES_NATIVE")
        native.reset()
    assert builds_c == builds_t
    assert float((pos_c - pos_t).abs().max()) < 1e-9


def test_without_compiler_md_falls_back_and_says_why(monkeypatch, tmp_path):
    monkeypatch.setenv("MLP_CASES_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    native.reset()
    try:
        pos, _ = run_md(steps=5)
        assert torch.isfinite(pos).all()
        assert "no C compiler" in native.why_not("pair_lj")
        assert native.status().startswith("off, MD runs on torch kernels")  # mlp-cases doctor
        assert not (tmp_path / "cache" / "native").exists() or \
            not list((tmp_path / "cache" / "native").glob("*.so"))
    finally:
        monkeypatch.delenv("CC")
        native.reset()


def test_libraries_are_compiled_once_into_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("MLP_CASES_CACHE", str(tmp_path))
    native.reset()
    try:
        libs = ", ".join(native.LIBRARIES)
        assert native.status().startswith(f"on ({libs}; cached in {tmp_path}")
        built = list((tmp_path / "native").glob("pair_lj-*.so"))
        assert len(built) == 1
        stamp = built[0].stat().st_mtime_ns
        native.reset()
        assert native.load("pair_lj") is not None  # found in the cache, not rebuilt
        assert built[0].stat().st_mtime_ns == stamp
        # one library per C file, no temporary left behind
        names = sorted(p.name.split("-")[0] for p in (tmp_path / "native").iterdir())
        assert names == sorted(native.LIBRARIES)
    finally:
        monkeypatch.delenv("MLP_CASES_CACHE")
        native.reset()
