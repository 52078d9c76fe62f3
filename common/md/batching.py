"""Choosing how many systems to put in one batch.

Batching pays on a GPU and for cheap potentials; for a large MLP on a few CPU cores one big
batch can be slower than a loop (memory traffic, cache misses). So the batch size is measured,
not guessed: a few real MD steps are timed at batch sizes 1, 2, 4, ... n and the fastest (in
replica-steps per second) is used. Batch size 1 is always a candidate, so the choice is never
slower than running the systems one by one (up to timing noise of the short trial).
"""

from __future__ import annotations

import time
from collections.abc import Callable


def candidate_sizes(n: int) -> list[int]:
    """Return the batch sizes to try: 1, 2, 4, ... below ``n``, then ``n`` itself."""
    sizes, b = [], 1
    while b < n:
        sizes.append(b)
        b *= 2
    sizes.append(n)
    return sizes


def choose_batch_size(make_engine: Callable[[list[int]], object], n_systems: int,
                      trial_steps: int = 5, candidates: list[int] | None = None
                      ) -> tuple[int, list[dict]]:
    """Time a few MD steps per candidate batch size and return the fastest size.

    ``trial_steps`` MD steps are timed per candidate batch size b on an engine made by
    ``make_engine([0, ..., b-1])`` (copies of the first b systems, nothing written). Return
    (best size, table of {batch_size, replica_steps_per_s}).
    """
    table = []
    for b in candidates or candidate_sizes(n_systems):
        eng = make_engine(list(range(b)))
        eng.run(1)  # warm-up: first neighbour list, allocations
        t0 = time.perf_counter()
        eng.run(trial_steps)
        dt = time.perf_counter() - t0
        table.append({"batch_size": b, "replica_steps_per_s": b * trial_steps / dt})
        if len(table) >= 3 and table[-1]["replica_steps_per_s"] < 0.7 * max(
                r["replica_steps_per_s"] for r in table):
            break  # clearly past the optimum: stop measuring bigger batches
    best = max(table, key=lambda r: r["replica_steps_per_s"])
    return best["batch_size"], table
