"""Per-system random streams for Langevin noise.

Each system owns a numpy PCG64 generator seeded with its own seed, so a system's noise does
not depend on which other systems share its batch: a batched run of N replicas reproduces N
single runs with the same seeds. Noise is drawn in blocks of ``block_steps`` steps per system
(one Python loop over systems per block, not per step); the generator states and the current
block are part of a checkpoint, so a restart continues the same streams bit for bit.
"""

from __future__ import annotations

import numpy as np
import torch


class NoiseStreams:
    """Standard normal noise, one stream per system, drawn in blocks (see the module docstring)."""

    def __init__(self, seeds: list[int], atoms_per_system: list[int], *, block_steps: int = 64,
                 device: str | torch.device = "cpu", dtype: torch.dtype = torch.float64):
        if len(seeds) != len(atoms_per_system):
            raise ValueError("one seed per system is needed")
        self.seeds = [int(s) for s in seeds]
        self.counts = [int(n) for n in atoms_per_system]
        self.block_steps = int(block_steps)
        self.device, self.dtype = device, dtype
        self.rngs = [np.random.Generator(np.random.PCG64(s)) for s in self.seeds]
        self.block: torch.Tensor | None = None
        self.pos = self.block_steps  # forces a draw on first use

    def _draw_block(self) -> None:
        parts = [rng.standard_normal((self.block_steps, n, 3)) for rng, n in
                 zip(self.rngs, self.counts, strict=True)]
        self.block = torch.as_tensor(np.concatenate(parts, axis=1), dtype=self.dtype,
                                     device=self.device)
        self.pos = 0

    def next(self) -> torch.Tensor:
        """Return standard normal noise for one step, (n_atoms, 3)."""
        if self.pos >= self.block_steps:
            self._draw_block()
        out = self.block[self.pos]
        self.pos += 1
        return out

    def state_dict(self) -> dict:
        """Return the generator states and the current block, for a checkpoint."""
        return {"seeds": self.seeds, "counts": self.counts, "block_steps": self.block_steps,
                "rng_states": [r.bit_generator.state for r in self.rngs],
                "block": None if self.block is None else self.block.cpu(), "pos": self.pos}

    def load_state_dict(self, d: dict) -> None:
        """Restore the streams saved by :meth:`state_dict`, to continue them bit for bit."""
        self.seeds, self.counts, self.block_steps = d["seeds"], d["counts"], d["block_steps"]
        self.rngs = [np.random.Generator(np.random.PCG64()) for _ in self.seeds]
        for r, st in zip(self.rngs, d["rng_states"], strict=True):
            r.bit_generator.state = st
        self.block = None if d["block"] is None else d["block"].to(self.device, self.dtype)
        self.pos = d["pos"]


def maxwell_boltzmann(masses: np.ndarray, temperature_K: float, seed: int,
                      fixed: np.ndarray | None = None) -> np.ndarray:
    """Draw velocities (Å/ASE time) at ``temperature_K`` from the system's own seed.

    The stream is separate from the Langevin noise. Fixed atoms get zero velocity; the
    centre-of-mass motion is removed when no atom is fixed.
    """
    from common.units import KB_EV_PER_K

    rng = np.random.Generator(np.random.PCG64([int(seed), 0x5EED]))
    sigma = np.sqrt(KB_EV_PER_K * temperature_K / masses)[:, None]
    v = rng.standard_normal((len(masses), 3)) * sigma
    if fixed is not None and fixed.any():
        v[fixed] = 0.0
    elif len(masses) > 1:
        v -= (masses[:, None] * v).sum(0) / masses.sum()
    return v
