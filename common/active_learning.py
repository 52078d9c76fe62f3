"""Active learning by ensemble model deviation (the DP-GEN loop), framework-free.

Each round: explore with MD driven by the current ensemble, collect frames whose max force
deviation lies in the trust window [lo, hi) (below lo the ensemble agrees: nothing to learn;
above hi the configuration is likely unphysical), pick at most ``max_new`` of them, label them
with the reference method, add them to the training data, retrain. The domain supplies the
three steps as callables; this module owns the loop, the selection and the record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
from ase import Atoms

DEVIATION_KEY = "max_force_deviation_eV_A"


@dataclass
class RoundRecord:
    round: int
    n_train: int
    n_candidates: int
    n_accurate: int
    n_selected: int
    n_failed: int
    metrics: dict = field(default_factory=dict)


def select_candidates(frames: list[Atoms], lo: float, hi: float, max_new: int, seed: int = 0
                      ) -> tuple[list[Atoms], dict[str, int]]:
    """Frames with lo <= deviation < hi (``info[DEVIATION_KEY]``, eV/Å); at most ``max_new``,
    drawn evenly over the deviation range so that not only the worst frames are taken."""
    dev = np.array([f.info.get(DEVIATION_KEY, np.nan) for f in frames], dtype=float)
    cand = np.nonzero((dev >= lo) & (dev < hi))[0]
    counts = {"accurate": int((dev < lo).sum()), "candidate": int(len(cand)),
              "failed": int((dev >= hi).sum())}
    if len(cand) > max_new:
        order = cand[np.argsort(dev[cand])]
        pick = np.linspace(0, len(order) - 1, max_new).round().astype(int)
        cand = order[np.unique(pick)]
    return [frames[i] for i in sorted(cand)], counts


def run_active_learning(train_data, *, train: Callable, explore: Callable,
                        label: Callable, rounds: int, lo: float, hi: float, max_new: int,
                        seed: int = 0, on_round: Callable | None = None):
    """Run ``rounds`` rounds. ``train(data, round) -> (potential, metrics)``;
    ``explore(potential, round) -> frames with info[DEVIATION_KEY]``;
    ``label(frames) -> labelled frames`` (Dataset-like, may drop failures).
    Returns (final potential, data, list of RoundRecord as dicts)."""
    data = train_data
    history: list[dict] = []
    potential, metrics = train(data, 0)
    for r in range(1, rounds + 1):
        explored = explore(potential, r)
        picked, counts = select_candidates(list(explored), lo, hi, max_new, seed=seed + r)
        new = label(picked) if picked else []
        rec = RoundRecord(round=r, n_train=len(data), n_candidates=counts["candidate"],
                          n_accurate=counts["accurate"], n_selected=len(new),
                          n_failed=counts["failed"], metrics=metrics)
        history.append(asdict(rec))
        if on_round is not None:
            on_round(rec)
        if not len(new):
            break  # the ensemble agrees everywhere it went: converged
        data = data + new
        potential, metrics = train(data, r)
    return potential, data, history
