"""Active learning by committee model deviation (the DP-GEN loop), resumable, framework-free.

Each round: train a committee of models on the training data, explore with MD driven by it,
select frames whose max force deviation lies in the trust window [lo, hi) (below lo the
committee agrees: nothing to learn; above hi the configuration is likely unphysical), at most
``max_new`` of them, label them with the reference method, and merge them into the training
data of the next round. The domain supplies train / load / explore / label as callables;
:class:`ActiveLearning` owns the loop, the selection and the record on disk.

Work folder
-----------
::

    workdir/active_learning.json      the settings; a rerun with other settings is refused
    workdir/round_000/state.json      stages done: trained -> explored -> selected ->
                                      labelled -> merged (written atomically after each)
    workdir/round_000/model/          what ``train`` saved (``load`` reads it back)
    workdir/round_000/explore/        the folder ``explore`` may use (MD output)
    workdir/round_000/explored.extxyz, selected.extxyz, labelled.extxyz

The training set of round ``r`` is the initial data plus the labelled frames of rounds
``< r``, read from disk, so a frame can be neither merged twice nor lost. Every file appears
whole or not at all (:mod:`common.fileio`), and a stage counts as done only once ``state.json``
says so: after a ``kill -9`` at any point, a rerun continues from the last finished stage
(a stage cut short runs again; a finished model is loaded, not retrained) and ends with the
same result as a run that was never interrupted. The last round only trains.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from common.errors import ConfigError
from common.fileio import atomic_write_atoms, atomic_write_json, atomic_write_text

__all__ = [
    "DEVIATION_KEY",
    "STAGES",
    "ActiveLearning",
    "ActiveLearningResult",
    "accurate_fraction",
    "plot_history",
    "select_candidates",
]

DEVIATION_KEY = "max_force_deviation_eV_A"
#: the stages of a round, in order
STAGES = ("trained", "explored", "selected", "labelled", "merged")
SETTINGS_FILE = "active_learning.json"
STATE_FILE = "state.json"


def select_candidates(frames: list[Atoms], lo: float, hi: float, max_new: int, seed: int = 0
                      ) -> tuple[list[Atoms], dict[str, int]]:
    """Select the frames with lo <= deviation < hi (``info[DEVIATION_KEY]``, eV/Å).

    At most ``max_new`` are taken, drawn evenly over the deviation range so that not only the worst
    frames are taken (deterministic: ``seed`` is not used).
    """
    dev = np.array([f.info.get(DEVIATION_KEY, np.nan) for f in frames], dtype=float)
    cand = np.nonzero((dev >= lo) & (dev < hi))[0]
    counts = {"accurate": int((dev < lo).sum()), "candidate": int(len(cand)),
              "failed": int((dev >= hi).sum())}
    if len(cand) > max_new:
        order = cand[np.argsort(dev[cand])]
        pick = np.linspace(0, len(order) - 1, max_new).round().astype(int)
        cand = order[np.unique(pick)]
    return [frames[i] for i in sorted(cand)], counts


@dataclass
class ActiveLearningResult:
    """What :meth:`ActiveLearning.run` ends with.

    Attributes
    ----------
    model
        The last trained model (what ``train`` or ``load`` returned).
    metrics
        The metrics ``train`` returned for it.
    data
        Its training frames (initial + every merged label).
    rounds
        Index of its round.
    history
        One dict per explored round: ``round, n_train, n_candidates, n_accurate, n_failed,
        n_selected, n_labelled, accurate_fraction, metrics``.
    stopped
        Why the loop ended: the rounds asked for were done, an exploration found nothing to
        label, or the accurate fraction reached the threshold given to :meth:`ActiveLearning.run`.
    converged
        True when it ended because the committee agreed: no candidate left, or the accurate
        fraction reached the threshold (not when candidates existed but none of their labels
        could be kept).
    """

    model: Any
    metrics: dict
    data: list[Atoms]
    rounds: int
    history: list[dict] = field(default_factory=list)
    stopped: str = ""
    converged: bool = False


def accurate_fraction(entry: dict) -> float | None:
    """Return the fraction of a round's explored frames below the trust window (accurate).

    ``entry`` is one :attr:`ActiveLearningResult.history` dict; None when nothing was explored.
    This is DP-GEN's convergence measure: the loop is done when nearly every frame the committee
    visits is one it agrees on. It is only meaningful when ``explore`` returns every frame it
    visited with its deviation, not only the flagged ones.
    """
    n = entry["n_accurate"] + entry["n_candidates"] + entry["n_failed"]
    return entry["n_accurate"] / n if n else None


def _write_frames(path: Path, frames: Sequence[Atoms]) -> None:
    if len(frames):
        atomic_write_atoms(path, list(frames), format="extxyz")
    else:
        atomic_write_text(path, "")


def _read_frames(path: Path) -> list[Atoms]:
    import ase.io

    if path.stat().st_size == 0:
        return []
    return list(ase.io.read(path, ":", format="extxyz"))


def _frames_sha(frames: Sequence[Atoms]) -> str:
    import hashlib

    from common.data.io import structure_hash

    return hashlib.sha256("".join(structure_hash(a) for a in frames).encode()).hexdigest()[:16]


class ActiveLearning:
    """A resumable active-learning loop in a work folder (see the module docstring).

    Parameters
    ----------
    workdir
        Folder of the record; a rerun with the same folder continues it.
    initial
        Labelled frames to start from (a list of Atoms or a :class:`common.data.Dataset`).
    train
        ``train(frames, folder, round) -> (model, metrics)``: fit a committee on ``frames``
        and save it in ``folder`` (which may not exist yet, or hold what a killed call left);
        ``metrics`` is a JSON-ready dict.
    load
        ``load(folder, round) -> model``: the model ``train`` saved in ``folder``.
    explore
        ``explore(model, folder, round) -> frames`` with ``info[DEVIATION_KEY]`` (eV/Å); may
        keep its own files (e.g. resumable MD) in ``folder``.
    label
        ``label(frames) -> labelled frames`` (reference energy/forces on each; may drop
        failures).
    lo, hi
        Trust window of the max force deviation (eV/Å).
    max_new
        At most this many frames labelled per round.
    on_stage
        Optional ``on_stage(round, stage, info)``, called each time a stage is recorded.
    """

    def __init__(self, workdir: str | Path, initial: Sequence[Atoms], *,
                 train: Callable[[list[Atoms], Path, int], tuple[Any, dict]],
                 load: Callable[[Path, int], Any],
                 explore: Callable[[Any, Path, int], Sequence[Atoms]],
                 label: Callable[[list[Atoms]], Sequence[Atoms]],
                 lo: float, hi: float, max_new: int,
                 on_stage: Callable[[int, str, dict], None] | None = None):
        if not 0 <= lo < hi:
            raise ConfigError(f"need 0 <= lo < hi, got lo={lo}, hi={hi} eV/Å",
                              where="active learning", fix="give a trust window, e.g. 0.3, 3.0")
        if int(max_new) < 1:
            raise ConfigError(f"max_new must be >= 1, got {max_new}", where="active learning",
                              fix="give the number of frames to label per round, e.g. 50")
        self.workdir = Path(workdir)
        self.initial = list(initial)
        self.train, self.load, self.explore, self.label = train, load, explore, label
        self.lo, self.hi, self.max_new = float(lo), float(hi), int(max_new)
        self.on_stage = on_stage

    # -- the record ---------------------------------------------------------------------------

    def round_dir(self, r: int) -> Path:
        """Folder of round ``r``."""
        return self.workdir / f"round_{r:03d}"

    def state(self, r: int) -> dict[str, dict]:
        """Return ``{stage: info}`` of the stages of round ``r`` that are done."""
        p = self.round_dir(r) / STATE_FILE
        return json.loads(p.read_text())["stages"] if p.exists() else {}

    def _record(self, r: int, stage: str, info: dict) -> dict:
        stages = {**self.state(r), stage: info}
        atomic_write_json(self.round_dir(r) / STATE_FILE, {"round": r, "stages": stages})
        if self.on_stage is not None:
            self.on_stage(r, stage, info)
        return info

    def training_data(self, r: int) -> list[Atoms]:
        """Training frames of round ``r``: initial + labelled frames of the rounds before."""
        data = list(self.initial)
        for k in range(r):
            if "merged" not in self.state(k):
                raise ConfigError(f"round {k} is not merged, so round {r} has no data yet",
                                  where=str(self.round_dir(k)), fix="run the loop")
            data += _read_frames(self.round_dir(k) / "labelled.extxyz")
        return data

    def history(self) -> list[dict]:
        """One dict per round that selected frames (see :class:`ActiveLearningResult`)."""
        out, r = [], 0
        while "selected" in (st := self.state(r)):
            sel, lab = st["selected"], st.get("labelled", {})
            entry = {"round": r, "n_train": st["trained"]["n_train"],
                     "n_candidates": sel["candidate"], "n_accurate": sel["accurate"],
                     "n_failed": sel["failed"], "n_selected": sel["n_selected"],
                     "n_labelled": lab.get("n_labelled")}
            out.append({**entry, "accurate_fraction": accurate_fraction(entry),
                        "metrics": st["trained"]["metrics"]})
            r += 1
        return out

    def _claim(self) -> None:
        """Write the settings, or refuse a folder holding a run with other settings."""
        settings = {"lo": self.lo, "hi": self.hi, "max_new": self.max_new,
                    "n_initial": len(self.initial), "initial_sha": _frames_sha(self.initial)}
        p = self.workdir / SETTINGS_FILE
        if p.exists() and json.loads(p.read_text()) != settings:
            raise ConfigError("this folder holds an active-learning run with other settings "
                              "or initial data", where=str(p),
                              fix="give a new work folder, or the same settings to continue")
        if not p.exists():
            atomic_write_json(p, settings)

    # -- the loop -------------------------------------------------------------------------------

    def run(self, rounds: int, accurate_fraction: float | None = None) -> ActiveLearningResult:
        """Run (or continue) the loop: ``rounds`` rounds of exploration, then a final training.

        Stops early when a round labels nothing (the committee agrees everywhere it went), or,
        with ``accurate_fraction`` given, when a round's explored frames are at least that
        fraction accurate (below the trust window; DP-GEN stops at e.g. 0.99): that round's
        labels are still merged and the next round's model trained on them is the result.
        ``stopped`` says which; rerunning with a larger ``rounds`` continues a loop that
        stopped because the rounds ran out, not one that converged.
        """
        if int(rounds) < 0:
            raise ConfigError(f"rounds must be >= 0, got {rounds}", where="rounds",
                              fix="give the number of exploration rounds, e.g. 3")
        if accurate_fraction is not None and not 0.0 < float(accurate_fraction) <= 1.0:
            raise ConfigError(f"accurate_fraction must be in (0, 1], got {accurate_fraction}",
                              where="accurate_fraction",
                              fix="give the fraction of accurate frames to stop at, e.g. 0.95")
        self._claim()
        r = 0
        while True:
            if r < rounds and self._went_on(r):
                if self._reached(r, accurate_fraction):
                    return self._result(r + 1, self._converged_why(r, accurate_fraction), True)
                r += 1  # a finished round: its model is not needed again
                continue
            data = self.training_data(r)
            model, metrics = self._trained(r, data)
            if r >= rounds:
                return self._result(r, f"{rounds} rounds done", False, model, metrics, data)
            if self._merged(r, model, len(data)) == 0:
                n_cand = self.state(r)["selected"]["candidate"]
                if n_cand == 0:
                    return self._result(r, f"round {r}'s exploration found nothing to label",
                                        True, model, metrics, data)
                return self._result(r, f"round {r}'s {n_cand} candidates gave no new training "
                                    "frames (every label failed or was refused)", False,
                                    model, metrics, data)
            if self._reached(r, accurate_fraction):
                return self._result(r + 1, self._converged_why(r, accurate_fraction), True)
            r += 1

    def _reached(self, r: int, threshold: float | None) -> bool:
        """Round ``r``'s exploration was at least ``threshold`` accurate."""
        if threshold is None:
            return False
        frac = next((h["accurate_fraction"] for h in self.history() if h["round"] == r), None)
        return frac is not None and frac >= float(threshold)

    def _converged_why(self, r: int, threshold: float | None) -> str:
        frac = next(h["accurate_fraction"] for h in self.history() if h["round"] == r)
        return f"round {r}'s exploration was {frac:.3f} accurate (>= {threshold})"

    def _result(self, r: int, stopped: str, converged: bool, model: Any = None,
                metrics: dict | None = None, data: list[Atoms] | None = None
                ) -> ActiveLearningResult:
        """Return the result with the model of round ``r`` (trained or loaded if not given)."""
        if model is None:
            data = self.training_data(r)
            model, metrics = self._trained(r, data)
        return ActiveLearningResult(model, dict(metrics or {}), list(data or []), r,
                                    self.history(), stopped, converged)

    def _went_on(self, r: int) -> bool:
        """Round ``r`` is merged and added labels, so the loop continued after it."""
        st = self.state(r)
        return "merged" in st and st["labelled"]["n_labelled"] > 0

    def _trained(self, r: int, data: list[Atoms]) -> tuple[Any, dict]:
        folder = self.round_dir(r) / "model"
        done = self.state(r).get("trained")
        if done is not None:
            return self.load(folder, r), done["metrics"]
        model, metrics = self.train(data, folder, r)
        self._record(r, "trained", {"n_train": len(data), "metrics": dict(metrics or {})})
        return model, dict(metrics or {})

    def _merged(self, r: int, model: Any, n_train: int) -> int:
        """Explore, select, label and merge round ``r``; returns the number of new labels."""
        d = self.round_dir(r)
        steps = {"explored": lambda: self._explore(d, model, r),
                 "selected": lambda: self._select(d), "labelled": lambda: self._label(d)}
        for stage, step in steps.items():
            if stage not in self.state(r):
                self._record(r, stage, step())
        n_new = self.state(r)["labelled"]["n_labelled"]
        if "merged" not in self.state(r):
            self._record(r, "merged", {"n_train_next": n_train + n_new})
        return n_new

    def _explore(self, d: Path, model: Any, r: int) -> dict:
        _write_frames(d / "explored.extxyz", self.explore(model, d / "explore", r))
        return {"n_frames": len(_read_frames(d / "explored.extxyz"))}

    def _select(self, d: Path) -> dict:
        picked, counts = select_candidates(_read_frames(d / "explored.extxyz"), self.lo, self.hi,
                                           self.max_new)
        _write_frames(d / "selected.extxyz", picked)
        return {**counts, "n_selected": len(picked)}

    def _label(self, d: Path) -> dict:
        selected = _read_frames(d / "selected.extxyz")
        _write_frames(d / "labelled.extxyz", self.label(selected) if selected else [])
        return {"n_labelled": len(_read_frames(d / "labelled.extxyz"))}


def plot_history(history: list[dict], path: str | Path, *, lo: float | None = None,
                 hi: float | None = None, accurate_fraction: float | None = None
                 ) -> Path | None:
    """Plot the outcome of the explorations and the training-set size per round.

    Per round of ``history`` (:attr:`ActiveLearningResult.history`): the fractions of explored
    frames accurate / candidate / failed (stacked), with the stop threshold
    ``accurate_fraction`` and the trust window [``lo``, ``hi``) when given, and the
    training-set size; saved atomically. None when nothing was explored.
    """
    if not history:
        return None
    from common.plots import pyplot, save_figure

    plt = pyplot()
    its = [h["round"] for h in history]
    n = [max(1, h["n_accurate"] + h["n_candidates"] + h["n_failed"]) for h in history]
    acc = [h["n_accurate"] / k for h, k in zip(history, n, strict=True)]
    cand = [h["n_candidates"] / k for h, k in zip(history, n, strict=True)]
    fail = [h["n_failed"] / k for h, k in zip(history, n, strict=True)]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax.bar(its, acc, label="accurate", color="tab:green")
    ax.bar(its, cand, bottom=acc, label="candidate", color="tab:orange")
    ax.bar(its, fail, bottom=[a + c for a, c in zip(acc, cand, strict=True)], label="failed",
           color="tab:red")
    if accurate_fraction:
        ax.axhline(accurate_fraction, color="k", ls="--", lw=1, label="stop threshold")
    if lo is not None and hi is not None:
        ax.set_title(f"trust window [{lo:g}, {hi:g}) eV/Å", fontsize=9)
    ax.set_xlabel("round")
    ax.set_ylabel("fraction of explored frames")
    ax.set_xticks(its)
    ax.legend(fontsize=8)
    ax2.plot(its, [h["n_train"] for h in history], "o-", label="training frames")
    ax2.plot(its, [h["n_labelled"] or 0 for h in history], "s--", label="labelled this round")
    ax2.set_xlabel("round")
    ax2.set_xticks(its)
    ax2.legend(fontsize=8)
    return save_figure(fig, path)
