"""Verlet neighbour lists with a skin, per system, from vesin-torch (or, for small cells, C).

Pairs are found within ``cutoff + skin`` and reused until some atom of a system has moved more
than ``skin / 2`` since that system's list was built; then only that system's list is rebuilt
(the others are kept as they are). Lists are *full* (each pair in both directions), which is
what message-passing models take. Two views are offered:

* ``pairs()`` — flat edge list (i, j, shifts, offsets, pair_system), for MLP adapters;
* ``dense()`` — a padded (n_atoms, K) neighbour matrix, for pair potentials: dense reductions
  over K are several times faster on a CPU than scattering per pair. Padding entries point an
  atom at itself with an offset far beyond any cutoff, so they contribute nothing.

By default a changed cell rebuilds everything (NVE/NVT, or a user editing the cell). With
``follow_cell=True`` (NPT, where the cell changes every step) the pair list is kept when the cell
changes: offsets are recomputed from the integer shifts (S @ cell) and a system is rebuilt only
when the list may miss a pair. With h0 the cell of the last build and h the current one, atoms
are compared in the frame of the build (x' = x h^-1 h0, displacement d = max |x' - x_build|); a
pair beyond rc + skin at the build is beyond rc now as long as
(rc + skin - 2 d) * s_min(h0^-1 h) >= rc, s_min the smallest singular value, bounded from below
(cheaply, and tightly for small strains) by 1 / (1 + |h^-1 h0 - 1|_F). Without a cell change this
is the usual d <= skin / 2.

A small system (up to ~2 million pair-image checks: ~250 atoms in a cell as wide as the cutoff)
is searched by brute force in C (``neighbors.c`` in :mod:`common.md.native`): ~90 µs for 32
atoms where vesin's cell list pays ~500 µs of setup per call. Both give the same pairs (tested);
vesin takes the larger systems, and all of them where no C compiler is found.
"""

from __future__ import annotations

import ctypes

import torch

from common.md.state import BatchState, cell_inv, squared_norms

_PAD_OFFSET = 1.0e4  # Å: puts padding "neighbours" far outside every cutoff
#: largest brute-force search (pairs x periodic images tried) left to ``neighbors.c``
MAX_BRUTE_FORCE_CHECKS = 2_000_000


class NeighborList:
    """Full neighbour list over a :class:`BatchState`, rebuilt per system only when needed."""

    def __init__(self, cutoff: float, skin: float = 0.5, follow_cell: bool = False):
        if not cutoff > 0:
            raise ValueError("cutoff must be > 0")
        self.cutoff = float(cutoff)
        self.skin = float(max(skin, 0.0))
        self.follow_cell = bool(follow_cell)
        self._per_system: list = []
        self._ref_positions: torch.Tensor | None = None
        self._cells: torch.Tensor | None = None  # cells the offsets were computed for
        self._ref_cells: torch.Tensor | None = None  # cell of each system's last build
        self._dense_shifts: torch.Tensor | None = None  # (3, n, K), NaN on padding
        self._vesin = None
        self._pairs: tuple | None = None
        self._dense: tuple | None = None
        self.n_builds = 0  # systems (re)built, summed: diagnostics and tests

    # -- building -----------------------------------------------------------------------
    def _build_system(self, state: BatchState, s: int, start: int, stop: int) -> tuple:
        pbc = state.pbc[s].cpu()
        box = state.cells[s].detach().cpu() if bool(pbc.any()) else torch.zeros(
            3, 3, dtype=state.dtype)
        points = state.positions[start:stop].detach().cpu()
        dev, dt = state.device, state.dtype
        found = _small_system_pairs(points, box, pbc, self.cutoff + self.skin)
        if found is None:
            if self._vesin is None:
                from vesin_torch import NeighborList as VesinNL

                self._vesin = VesinNL(cutoff=self.cutoff + self.skin, full_list=True,
                                      sorted=True, n_threads=1)
            i, j, S = self._vesin.compute(points=points, box=box, periodic=pbc, quantities="ijS")
            S = S.to(dev, dt)
            offsets = S @ state.cells[s].detach()
        else:  # the C search gives the offsets too (no BLAS call for a 3x3 product)
            i, j, S, offsets = found
            S, offsets = S.to(dev, dt), offsets.to(dev, dt)
        return i.to(dev, torch.long) + start, j.to(dev, torch.long) + start, S, offsets

    def update(self, state: BatchState, force: bool = False) -> list[int]:
        """Rebuild the lists of systems whose atoms moved more than skin/2; return those systems.

        All systems are rebuilt the first time, when ``force``, or when the cells changed and
        ``follow_cell`` is off.
        """
        n_sys = state.n_systems
        cells_changed = self._cells is not None and not torch.equal(self._cells, state.cells)
        if (force or self._ref_positions is None or len(self._per_system) != n_sys
                or self._ref_positions.shape != state.positions.shape
                or (cells_changed and not self.follow_cell)):
            todo = list(range(n_sys))
            self._per_system = [None] * n_sys
            self._ref_positions = state.positions.detach().clone()
            self._cells = state.cells.detach().clone()
            self._ref_cells = self._cells.clone()
            self._dense = self._dense_shifts = None
        else:
            if cells_changed:
                self._follow(state)
            todo = self._stale_systems(state)
            if not todo:
                return []
        off = state.offsets().tolist()
        built = _systems_pairs(state, todo, off, self.cutoff + self.skin)
        for k, s in enumerate(todo):
            self._per_system[s] = built[k] if built is not None else \
                self._build_system(state, s, off[s], off[s + 1])
            self._ref_positions[off[s]:off[s + 1]] = state.positions[off[s]:off[s + 1]].detach()
            self._ref_cells[s] = state.cells[s].detach()
        self.n_builds += len(todo)
        self._pairs = None
        if self._dense is not None:
            self._update_dense(state, todo, off)
        return todo

    def _stale_systems(self, state: BatchState) -> list[int]:
        """Systems whose list may miss a pair now (criterion in the module docstring)."""
        n_sys = state.n_systems
        pos = state.positions.detach()
        # cells move only under NPT (follow_cell); NVE/NVT skip the strain terms entirely
        moved = (self._ref_cells != state.cells).flatten(1).any(-1) if self.follow_cell \
            else None
        any_moved = moved is not None and bool(moved.any())
        if any_moved:
            eye = torch.eye(3, dtype=pos.dtype, device=pos.device).expand(n_sys, 3, 3)
            safe = torch.where(moved[:, None, None], state.cells.detach(), eye)
            ref = torch.where(moved[:, None, None], self._ref_cells, eye)
            to_ref = cell_inv(safe) @ ref  # h^-1 h0
            pos = torch.einsum("na,nab->nb", pos, to_ref[state.system_idx])
            s_min = 1.0 / (1.0 + torch.linalg.matrix_norm(to_ref - eye))  # <= s_min(h0^-1 h)
        if not any_moved:
            found = self._stale_native(state, pos)  # one C pass on a CPU
            if found is not None:
                return found
            if not bool(squared_norms(pos - self._ref_positions).max()
                        > (0.5 * self.skin) ** 2):
                return []  # the common case, with one synchronisation
        disp2 = squared_norms(pos - self._ref_positions)
        max_disp2 = torch.zeros(n_sys, dtype=disp2.dtype, device=disp2.device
                                ).scatter_reduce_(0, state.system_idx, disp2, "amax")
        stale = max_disp2 > (0.5 * self.skin) ** 2
        if any_moved:
            reach = (self.cutoff + self.skin - 2.0 * torch.sqrt(max_disp2)) * s_min
            stale = torch.where(moved, ~(reach >= self.cutoff), stale)  # NaN: rebuild
        return torch.nonzero(stale).flatten().tolist()

    def _stale_native(self, state: BatchState, pos: torch.Tensor) -> list[int] | None:
        """Systems with an atom beyond skin/2 of its build position, by ``stale_systems`` (C).

        None where it cannot run (not a CPU, no native library).
        """
        ref, idx, dt = self._ref_positions, state.system_idx, pos.dtype
        fn = _native_fn("stale_systems_f64" if dt == torch.float64 else
                        "stale_systems_f32" if dt == torch.float32 else "")
        if (fn is None or pos.device.type != "cpu" or ref.dtype != dt or idx.dtype != torch.int64
                or not (pos.is_contiguous() and ref.is_contiguous() and idx.is_contiguous())):
            return None
        n_sys = state.n_systems
        out = torch.empty(n_sys, dtype=torch.int64)
        found = fn(pos.shape[0], pos.data_ptr(), ref.data_ptr(), idx.data_ptr(), n_sys,
                   (0.5 * self.skin) ** 2, out.data_ptr())
        return out[:found].tolist() if found else []

    def _follow(self, state: BatchState) -> None:
        """Recompute every pair's offset (S @ cell) for the new cells, after the cells changed."""
        self._cells = state.cells.detach().clone()
        self._pairs = None
        if self._dense is not None:
            nbr, _ = self._dense
            offs = torch.einsum("anK,nab->bnK", self._dense_shifts,
                                self._cells[state.system_idx])
            # contiguous: the C kernels read the (3, n, K) layout as laid out in memory
            self._dense = (nbr, torch.nan_to_num(offs, nan=_PAD_OFFSET).contiguous())

    # -- flat edge list -----------------------------------------------------------------
    def pairs(self) -> tuple[torch.Tensor, ...]:
        """Return the flat edge list (i, j, shifts, offsets, pair_system).

        The pair vector is r_ij = x_j - x_i + offsets (Å); shifts are integer cell shifts (as
        floats); each pair is listed in both directions.
        """
        if self._pairs is None:
            parts = self._per_system
            i, j, S, off = (torch.cat([p[k] for p in parts]) if len(parts) > 1 else parts[0][k]
                            for k in range(4))
            psys = torch.cat([torch.full((len(p[0]),), s, dtype=torch.long, device=i.device)
                              for s, p in enumerate(parts)])
            if self.follow_cell:  # the cells may have changed since some systems were built
                off = torch.einsum("pa,pab->pb", S, self._cells[psys])
            self._pairs = (i, j, S, off, psys)
        return self._pairs

    def vectors(self, state: BatchState) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(i, j, r_ij) over the flat list, r_ij = x_j - x_i + offset (Å)."""
        i, j, _, off, _ = self.pairs()
        return i, j, state.positions[j] - state.positions[i] + off

    # -- dense padded matrix ------------------------------------------------------------
    def dense(self, state: BatchState) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the padded neighbour matrix: nbr (n_atoms, K) and offsets (3, n_atoms, K), Å.

        ``nbr`` holds neighbour indices; the layout is a structure of arrays. The matrix is kept up
        to date incrementally: a rebuild rewrites only that system's rows.
        """
        if self._dense is None:
            n = state.n_atoms  # K starts at 1 and grows to the largest neighbour count
            nbr = torch.arange(n, device=state.device, dtype=torch.int32).unsqueeze(1)
            offs = torch.full((3, n, 1), _PAD_OFFSET, dtype=state.dtype, device=state.device)
            self._dense = (nbr, offs)
            self._dense_shifts = torch.full_like(offs, float("nan"))
            self._update_dense(state, list(range(state.n_systems)), state.offsets().tolist())
        return self._dense

    def _update_dense(self, state: BatchState, systems: list[int], off: list[int]) -> None:
        """Rewrite the rows of ``systems`` (ascending) from their pair lists.

        Neighbour indices are int32 (half the memory traffic of int64 in the pair kernel). On a
        CPU each system's rows are rewritten by ``dense_rows`` in ``neighbors.c``; elsewhere by
        the torch code below, all systems in one pass.
        """
        if self._update_dense_native(systems, off):
            return
        nbr, offs = self._dense
        shifts = self._dense_shifts
        parts = [self._per_system[s] for s in systems]
        # pairs are sorted by i within a system and systems ascend, so i is sorted overall
        i, j, S, o = (torch.cat([p[k] for p in parts]) if len(parts) > 1 else parts[0][k]
                      for k in range(4))
        n = nbr.shape[0]
        counts = torch.bincount(i, minlength=n)
        k_needed = int(counts.max()) if len(i) else 0
        if k_needed > nbr.shape[1]:  # grow K for everyone (rare)
            self._grow(k_needed)
            nbr, offs = self._dense
            shifts = self._dense_shifts
        # reset these systems' rows to padding, then fill (slot = rank of a pair within its i)
        rows = torch.cat([torch.arange(off[s], off[s + 1], device=nbr.device) for s in systems])
        nbr[rows] = rows.to(nbr.dtype).unsqueeze(1)
        offs[:, rows] = _PAD_OFFSET
        shifts[:, rows] = float("nan")
        starts = torch.cumsum(counts, 0) - counts
        slot = torch.arange(len(i), device=i.device) - starts[i]
        nbr[i, slot] = j.to(nbr.dtype)
        offs[:, i, slot] = o.t()
        shifts[:, i, slot] = S.t()

    def _grow(self, k_needed: int) -> None:
        """Widen the dense matrix to at least ``k_needed`` columns (with a little room)."""
        nbr, offs = self._dense
        shifts = self._dense_shifts
        n = nbr.shape[0]
        extra = k_needed - nbr.shape[1] + 4
        pad = torch.arange(n, device=nbr.device, dtype=nbr.dtype).unsqueeze(1)
        nbr = torch.cat([nbr, pad.repeat(1, extra)], 1)
        offs = torch.cat([offs, torch.full((3, n, extra), _PAD_OFFSET, dtype=offs.dtype,
                                           device=offs.device)], 2)
        shifts = torch.cat([shifts, torch.full((3, n, extra), float("nan"),
                                               dtype=offs.dtype, device=offs.device)], 2)
        self._dense = (nbr, offs)
        self._dense_shifts = shifts

    def _update_dense_native(self, systems: list[int], off: list[int]) -> bool:
        """Rewrite the systems' rows with ``dense_rows`` (C); False where it cannot run."""
        nbr, offs = self._dense
        fn = _native_fn("dense_rows_f64" if offs.dtype == torch.float64 else
                        "dense_rows_f32" if offs.dtype == torch.float32 else "")
        if (fn is None or nbr.device.type != "cpu" or not nbr.is_contiguous()
                or not offs.is_contiguous() or not self._dense_shifts.is_contiguous()):
            return False
        for s in systems:
            i, j, S, o = self._per_system[s]
            if not all(t.is_contiguous() for t in (i, j, S, o)):
                return False
            while True:
                nbr, offs = self._dense
                n, k = nbr.shape
                k_needed = fn(n, k, off[s], off[s + 1], len(i), i.data_ptr(), j.data_ptr(),
                              S.data_ptr(), o.data_ptr(), nbr.data_ptr(), offs.data_ptr(),
                              self._dense_shifts.data_ptr(), _PAD_OFFSET)
                if k_needed <= k:
                    break
                self._grow(k_needed)
        return True

    # -- checkpointing ------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Return the lists, reference positions and cells for a checkpoint."""
        return {"cutoff": self.cutoff, "skin": self.skin, "follow_cell": self.follow_cell,
                # copies: a system's lists may be views into a larger search buffer
                "per_system": [tuple(t.to("cpu", copy=True) for t in p)
                               for p in self._per_system],
                "ref_positions": self._ref_positions.cpu(), "cells": self._cells.cpu(),
                "ref_cells": self._ref_cells.cpu(), "n_builds": self.n_builds,
                "dense": None if self._dense is None else tuple(t.cpu() for t in self._dense),
                "dense_shifts": None if self._dense_shifts is None
                else self._dense_shifts.cpu()}

    def load_state_dict(self, d: dict, state: BatchState) -> None:
        """Restore the lists saved by :meth:`state_dict` onto ``state``'s device."""
        dev = state.device
        self.cutoff, self.skin, self.n_builds = d["cutoff"], d["skin"], d["n_builds"]
        self._per_system = [tuple(t.to(dev) for t in p) for p in d["per_system"]]
        self._ref_positions = d["ref_positions"].to(dev)
        self._cells = d["cells"].to(dev)
        self._ref_cells = d.get("ref_cells", d["cells"]).to(dev)
        self.follow_cell = d.get("follow_cell", self.follow_cell)
        self._pairs = None
        self._dense = None if d["dense"] is None else tuple(t.to(dev) for t in d["dense"])
        shifts = d.get("dense_shifts")
        self._dense_shifts = None if shifts is None else shifts.to(dev)
        if self._dense is not None and self._dense_shifts is None:  # an older checkpoint
            self._dense = None


def _systems_pairs(state: BatchState, systems: list[int], off: list[int],
                   cutoff: float) -> list[tuple] | None:
    """Each system's (i, j, S, offsets) by one C brute-force search over all of ``systems``.

    The same lists as vesin gives one system at a time (tested), for the cost of one call (a
    rebuild step of a large batch rebuilds a few replicas at once). None when some system is too
    large for brute force or has a singular cell, on a GPU, or without a native library: vesin
    then searches them one by one.
    """
    fn = _native_fn("pairs_systems")
    if fn is None or state.device.type != "cpu":
        return None
    return _search(fn, state.positions.detach(), state.cells.detach(), state.pbc, systems, off,
                   cutoff, state.dtype)


def _small_system_pairs(points: torch.Tensor, box: torch.Tensor, pbc: torch.Tensor,
                        cutoff: float) -> tuple | None:
    """(i, j, S, offsets) of one system by the C brute-force search, or None (vesin then).

    ``points`` (n, 3), ``box`` (3, 3) and ``pbc`` (3,) of that one system; see
    :func:`_systems_pairs`.
    """
    fn = _native_fn("pairs_systems")
    if fn is None:
        return None
    found = _search(fn, points, box.unsqueeze(0), pbc.unsqueeze(0), [0], [0, points.shape[0]],
                    cutoff, points.dtype)
    return None if found is None else found[0]


def _search(fn, pos, cells, pbc, systems, off, cutoff, dtype) -> list[tuple] | None:
    """Call ``pairs_systems`` (C) and split its lists per system; None if it declined."""
    f64 = torch.float64
    pos = (pos if pos.dtype == f64 else pos.to(f64)).contiguous()
    cells = (cells if cells.dtype == f64 else cells.to(f64)).contiguous()
    per = pbc.to(torch.int32).contiguous()
    n_sel = len(systems)
    sel = (ctypes.c_int64 * n_sel)(*systems)
    start = (ctypes.c_int64 * len(off))(*off)
    counts = (ctypes.c_int64 * n_sel)()
    cap = 160 * sum(off[s + 1] - off[s] for s in systems)  # a dense liquid or solid at ~10 Å
    while True:
        i = torch.empty(cap, dtype=torch.int64)
        j = torch.empty(cap, dtype=torch.int64)
        S = torch.empty(cap, 3, dtype=f64)
        o = torch.empty(cap, 3, dtype=f64)
        total = fn(n_sel, sel, start, pos.data_ptr(), cells.data_ptr(), per.data_ptr(),
                   float(cutoff), float(MAX_BRUTE_FORCE_CHECKS), i.data_ptr(), j.data_ptr(),
                   S.data_ptr(), o.data_ptr(), cap, counts)
        if total < 0:  # too large for brute force, or a singular cell
            return None
        if total <= cap:
            break
        cap = int(total)
    if dtype != f64:
        S, o = S.to(dtype), o.to(dtype)
    sizes = list(counts)
    return list(zip(*(t[:total].split(sizes) for t in (i, j, S, o)), strict=True))


def _native_fn(name: str):
    """Return the ctypes function ``name`` of ``neighbors.c`` (None without a native library)."""
    from common.md import native

    if not name:
        return None
    p, i64, d = ctypes.c_void_p, ctypes.c_int64, ctypes.c_double
    if name == "pairs_systems":
        return native.function("neighbors", name,
                               (i64, p, p, p, p, p, d, d, p, p, p, p, i64, p), i64)
    if name.startswith("stale_systems"):
        return native.function("neighbors", name, (i64, p, p, p, i64, d, p), i64)
    return native.function("neighbors", name, (i64, i64, i64, i64, i64, p, p, p, p, p, p, p, d),
                           i64)
