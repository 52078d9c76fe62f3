"""Verlet neighbour lists with a skin, per system, from vesin-torch.

Pairs are found within ``cutoff + skin`` and reused until some atom of a system has moved more
than ``skin / 2`` since that system's list was built; then only that system's list is rebuilt
(the others are kept as they are). Lists are *full* (each pair in both directions), which is
what message-passing models take. Two views are offered:

* ``pairs()`` — flat edge list (i, j, shifts, offsets, pair_system), for MLP adapters;
* ``dense()`` — a padded (n_atoms, K) neighbour matrix, for pair potentials: dense reductions
  over K are several times faster on a CPU than scattering per pair. Padding entries point an
  atom at itself with an offset far beyond any cutoff, so they contribute nothing.

Cells are taken as fixed between rebuilds (NVE/NVT); a changed cell rebuilds everything.
"""

from __future__ import annotations

import torch

from common.md.state import BatchState

_PAD_OFFSET = 1.0e4  # Å: puts padding "neighbours" far outside every cutoff


class NeighborList:
    """Full neighbour list over a :class:`BatchState`, rebuilt per system only when needed."""

    def __init__(self, cutoff: float, skin: float = 0.5):
        if not cutoff > 0:
            raise ValueError("cutoff must be > 0")
        self.cutoff = float(cutoff)
        self.skin = float(max(skin, 0.0))
        self._per_system: list = []
        self._ref_positions: torch.Tensor | None = None
        self._cells: torch.Tensor | None = None
        self._vesin = None
        self._pairs: tuple | None = None
        self._dense: tuple | None = None
        self.n_builds = 0  # systems (re)built, summed: diagnostics and tests

    # -- building -----------------------------------------------------------------------
    def _build_system(self, state: BatchState, s: int, start: int, stop: int) -> tuple:
        if self._vesin is None:
            from vesin_torch import NeighborList as VesinNL

            self._vesin = VesinNL(cutoff=self.cutoff + self.skin, full_list=True, sorted=True,
                                  n_threads=1)
        pbc = state.pbc[s].cpu()
        box = state.cells[s].detach().cpu() if bool(pbc.any()) else torch.zeros(
            3, 3, dtype=state.dtype)
        i, j, S = self._vesin.compute(points=state.positions[start:stop].detach().cpu(),
                                      box=box, periodic=pbc, quantities="ijS")
        dev, dt = state.device, state.dtype
        S = S.to(dev, dt)
        return (i.to(dev, torch.long) + start, j.to(dev, torch.long) + start, S,
                S @ state.cells[s].detach())

    def update(self, state: BatchState, force: bool = False) -> list[int]:
        """Rebuild the lists of systems whose atoms moved more than skin/2 (all of them the
        first time, when ``force``, or when the cells changed). Returns the rebuilt systems."""
        n_sys = state.n_systems
        off = state.offsets().tolist()
        if (force or self._ref_positions is None or len(self._per_system) != n_sys
                or self._ref_positions.shape != state.positions.shape
                or not torch.equal(self._cells, state.cells)):
            todo = list(range(n_sys))
            self._per_system = [None] * n_sys
            self._ref_positions = state.positions.detach().clone()
            self._cells = state.cells.detach().clone()
            self._dense = None
        else:
            disp2 = ((state.positions.detach() - self._ref_positions) ** 2).sum(-1)
            max_disp2 = torch.zeros(n_sys, dtype=disp2.dtype, device=disp2.device
                                    ).scatter_reduce_(0, state.system_idx, disp2, "amax")
            todo = torch.nonzero(max_disp2 > (0.5 * self.skin) ** 2).flatten().tolist()
            if not todo:
                return []
        for s in todo:
            self._per_system[s] = self._build_system(state, s, off[s], off[s + 1])
            self._ref_positions[off[s]:off[s + 1]] = state.positions[off[s]:off[s + 1]].detach()
        self.n_builds += len(todo)
        self._pairs = None
        if self._dense is not None:
            self._update_dense(state, todo, off)
        return todo

    # -- flat edge list -----------------------------------------------------------------
    def pairs(self) -> tuple[torch.Tensor, ...]:
        """(i, j, shifts, offsets, pair_system): r_ij = x_j - x_i + offsets (Å), shifts are
        integer cell shifts (as floats), each pair in both directions."""
        if self._pairs is None:
            parts = self._per_system
            i, j, S, off = (torch.cat([p[k] for p in parts]) if len(parts) > 1 else parts[0][k]
                            for k in range(4))
            psys = torch.cat([torch.full((len(p[0]),), s, dtype=torch.long, device=i.device)
                              for s, p in enumerate(parts)])
            self._pairs = (i, j, S, off, psys)
        return self._pairs

    def vectors(self, state: BatchState) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(i, j, r_ij) over the flat list, r_ij = x_j - x_i + offset (Å)."""
        i, j, _, off, _ = self.pairs()
        return i, j, state.positions[j] - state.positions[i] + off

    # -- dense padded matrix ------------------------------------------------------------
    def dense(self, state: BatchState) -> tuple[torch.Tensor, torch.Tensor]:
        """(nbr (n_atoms, K) neighbour indices, offsets (3, n_atoms, K) Å, structure of
        arrays). Kept up to date incrementally: a rebuild rewrites only that system's rows."""
        if self._dense is None:
            n = state.n_atoms  # K starts at 1 and grows to the largest neighbour count
            nbr = torch.arange(n, device=state.device).unsqueeze(1)
            offs = torch.full((3, n, 1), _PAD_OFFSET, dtype=state.dtype, device=state.device)
            self._dense = (nbr, offs)
            self._update_dense(state, list(range(state.n_systems)), state.offsets().tolist())
        return self._dense

    def _update_dense(self, state: BatchState, systems: list[int], off: list[int]) -> None:
        nbr, offs = self._dense
        for s in systems:
            i, j, _, o = self._per_system[s]
            a, b = off[s], off[s + 1]
            counts = torch.bincount(i - a, minlength=b - a)
            k_needed = int(counts.max()) if len(i) else 0
            if k_needed > nbr.shape[1]:  # grow K for everyone (rare)
                extra = k_needed - nbr.shape[1] + 4
                n = nbr.shape[0]
                nbr = torch.cat([nbr, torch.arange(n, device=nbr.device).unsqueeze(1).repeat(
                    1, extra)], 1)
                offs = torch.cat([offs, torch.full((3, n, extra), _PAD_OFFSET, dtype=offs.dtype,
                                                   device=offs.device)], 2)
            # reset this system's rows to padding, then fill (i sorted: slot = rank within i)
            nbr[a:b] = torch.arange(a, b, device=nbr.device).unsqueeze(1)
            offs[:, a:b] = _PAD_OFFSET
            starts = torch.cumsum(counts, 0) - counts
            slot = torch.arange(len(i), device=i.device) - starts[i - a]
            nbr[i, slot] = j
            offs[:, i, slot] = o.t()
        self._dense = (nbr, offs)

    # -- checkpointing ------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"cutoff": self.cutoff, "skin": self.skin,
                "per_system": [tuple(t.cpu() for t in p) for p in self._per_system],
                "ref_positions": self._ref_positions.cpu(), "cells": self._cells.cpu(),
                "n_builds": self.n_builds,
                "dense": None if self._dense is None else tuple(t.cpu() for t in self._dense)}

    def load_state_dict(self, d: dict, state: BatchState) -> None:
        dev = state.device
        self.cutoff, self.skin, self.n_builds = d["cutoff"], d["skin"], d["n_builds"]
        self._per_system = [tuple(t.to(dev) for t in p) for p in d["per_system"]]
        self._ref_positions = d["ref_positions"].to(dev)
        self._cells = d["cells"].to(dev)
        self._pairs = None
        self._dense = None if d["dense"] is None else tuple(t.to(dev) for t in d["dense"])
