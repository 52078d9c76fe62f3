"""Active learning of an ANI committee on the ligands' own MD (the DP-GEN loop).

A tiny ANI trained on GAFF2 conformers and rattled copies of a drug-size ligand fits them well
and still lets the ligand fall apart within tenths of a picosecond of its own MD: that MD goes
where no training frame is (measured on the MCL1 ligands of the JACS set). The cure is the one
DP-GEN uses, through the resumable driver :class:`common.active_learning.ActiveLearning`: train
a committee of ANI models (seeds differ) -> run Langevin MD of every ligand alone in vacuum,
``replicas`` copies each, driven by the committee's mean (the engine's batched MD) -> the max
force deviation of every ``frame_every``-th frame -> candidates with ``trust_lo <= deviation <
trust_hi`` -> at most ``max_new`` of them, spread over the deviation range -> reference labels
(the case study's labeller and label database) -> retrain. From the second round on, members
continue from the last round's weights for ``retrain_epochs`` at ``retrain_lr`` (as DP-GEN
reuses its models) instead of starting over. The loop stops after ``rounds`` explorations, or
once a round's frames are ``accurate_fraction`` below the window.

Exploration is of the ligand alone: in the ML/MM system the ligand's internal energy is the ANI
model's alone (mechanical embedding, :mod:`drug_binding.mlmm`), so the intramolecular surface the
ligand explores in the pocket is the one explored here; the pocket only adds MM forces.
Simplification, named: the pocket's conformations of the ligand are not explored (they are
close to the vacuum ones at the same temperature, but not the same ensemble).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from common.config import ConfigSchema
from common.errors import ConfigError

__all__ = ["ALSettings", "run_active_learning"]


@dataclass(frozen=True)
class ALSettings(ConfigSchema):
    """The ``active_learning`` section of a case-study config.

    ``rounds``: explorations at most; ``committee_size``: ANI models per committee;
    ``temperature_K``, ``timestep_fs``, ``friction_per_ps``, ``steps``: each ligand's Langevin
    MD in vacuum, ``replicas`` copies per ligand (different noise); ``frame_every``: steps
    between the frames whose deviation is measured; ``trust_lo_eV_A``, ``trust_hi_eV_A``: the
    trust window of the max force deviation; ``max_new``: labels per round at most;
    ``accurate_fraction``: stop once this fraction of explored frames is below the window (null:
    run every round); ``retrain_epochs``, ``retrain_lr``: a member of round >= 1 continues the
    last round's member for this many epochs from this learning rate (null epochs: train anew).
    """

    rounds: int
    committee_size: int
    temperature_K: float
    timestep_fs: float
    friction_per_ps: float
    steps: int
    replicas: int
    frame_every: int
    trust_lo_eV_A: float
    trust_hi_eV_A: float
    max_new: int
    accurate_fraction: float | None = None
    retrain_epochs: int | None = None
    retrain_lr: float = 1e-3

    def check(self, where: str = "active_learning") -> ALSettings:
        """Raise a one-line ConfigError for a value no run can use."""
        for key in ("committee_size", "steps", "replicas", "frame_every", "max_new"):
            if int(getattr(self, key)) < 1:
                raise ConfigError(f"{key} must be >= 1, got {getattr(self, key)}",
                                  where=f"{where}.{key}", fix="give a positive integer")
        if self.committee_size < 2:
            raise ConfigError("a committee needs at least 2 models to measure a deviation",
                              where=f"{where}.committee_size", fix="give 2 or more")
        if self.rounds < 0:
            raise ConfigError(f"rounds must be >= 0, got {self.rounds}",
                              where=f"{where}.rounds", fix="give 0 or more")
        for key in ("temperature_K", "timestep_fs", "friction_per_ps", "retrain_lr"):
            if not float(getattr(self, key)) > 0:
                raise ConfigError(f"{key} must be > 0, got {getattr(self, key)}",
                                  where=f"{where}.{key}", fix="give a positive number")
        if self.frame_every > self.steps:
            raise ConfigError(f"frame_every ({self.frame_every}) is longer than the run "
                              f"({self.steps} steps)", where=f"{where}.frame_every",
                              fix="measure the deviation more often than once per run")
        if not 0 <= self.trust_lo_eV_A < self.trust_hi_eV_A:
            raise ConfigError(f"need 0 <= trust_lo_eV_A < trust_hi_eV_A, got "
                              f"{self.trust_lo_eV_A}, {self.trust_hi_eV_A}",
                              where=where, fix="e.g. 0.3 and 3.0 eV/Å")
        if self.retrain_epochs is not None and self.retrain_epochs < 1:
            raise ConfigError(f"retrain_epochs must be >= 1 or null, got {self.retrain_epochs}",
                              where=f"{where}.retrain_epochs", fix="give e.g. 100, or null")
        return self


def run_active_learning(starts: list[Atoms], initial, valid, test, workdir: str | Path, *,
                        settings: ALSettings | dict, ani_config: dict[str, Any], labeller,
                        db: str | Path, max_force_eV_A: float, seed: int = 0,
                        progress: bool = False) -> dict[str, Any]:
    """Run (or resume) the loop in ``workdir``; return the final committee and the record.

    Parameters
    ----------
    starts
        Each ligand alone (Atoms with ``info["charge"]``), the exploration's starting structures.
    initial, valid, test
        Labelled frames: the first round's training data, and the fixed validation and test sets.
    settings
        :class:`ALSettings` (or its dict).
    ani_config
        The ANI config dict of the first round's training (:func:`drug_binding.model.load_config`).
    labeller, db
        A :class:`common.labels.LabellerSpec` and its label database (shared with the case study's
        first labels, so a structure is never labelled twice).
    max_force_eV_A
        Labelled frames with a larger reference force are left out (atoms too close to teach MD).

    Returns
    -------
    dict
        ``model`` (folder of the final committee), ``members`` (its :class:`ANIAdapter` s),
        ``metrics`` (member 0's), ``history``, ``stopped``, ``converged``, ``rounds``,
        ``n_train`` and ``plot`` (the record's figure, or None).
    """
    import ase.io

    from common.active_learning import ActiveLearning, plot_history
    from common.data import Dataset
    from common.labels import label_structures, labelled_frames
    from common.md.runner import run_md
    from common.potential.committee import Committee, committee_members, train_committee
    from drug_binding.model import ANIAdapter

    s = (settings if isinstance(settings, ALSettings) else ALSettings.from_dict(settings)).check()
    if not starts:
        raise ConfigError("no ligand to explore", where="active learning",
                          fix="give the ligands' starting structures")
    workdir = Path(workdir)
    md_frames = [a for a in starts for _ in range(s.replicas)]
    charges = {a.get_chemical_formula(): int(a.info.get("charge", 0)) for a in starts}
    valid_ds = Dataset.from_frames(list(valid))
    retrain_cfg = None
    if s.retrain_epochs is not None:
        retrain_cfg = {**ani_config, "max_epochs": int(s.retrain_epochs), "lr": s.retrain_lr,
                       "patience": min(int(ani_config["patience"]), int(s.retrain_epochs))}

    def members_of(folder: Path) -> list[ANIAdapter]:
        return [ANIAdapter.load(m) for m in committee_members(folder)]

    def train(frames, folder, r):
        folder = Path(folder)
        data = Dataset.from_frames(frames)
        go_on = r > 0 and retrain_cfg is not None  # each member continues its namesake
        _, members = train_committee(
            ANIAdapter, data, valid_ds, folder, s.committee_size,
            config=retrain_cfg if go_on else ani_config, seed=seed + 100 * r, test=test,
            init_from=loop.round_dir(r - 1) / "model" if go_on else None,
            parallel=min(s.committee_size, os.cpu_count() or 1))  # members side by side
        return (Committee([m.batched() for m in members]), members), \
            members[0].meta.get("metrics", {})

    def load(folder, r):
        members = members_of(Path(folder))
        return Committee([m.batched() for m in members]), members

    def explore(model, folder, r):
        committee, _ = model
        run_md(md_frames, committee, folder, restart=(Path(folder) / "run.json").exists(),
               ensemble="nvt", temperature_K=s.temperature_K, friction_per_ps=s.friction_per_ps,
               timestep_fs=s.timestep_fs, steps=s.steps, seed=seed + 1000 * (r + 1),
               traj_every=0, thermo_every=s.frame_every, checkpoint_every=s.steps,
               # every measured frame with its deviation, so the accurate fraction is measured
               flag_deviation_eV_A=0.0, progress=progress, on_blowup="stop_system")
        path = Path(folder) / "flagged_frames.extxyz"
        return list(ase.io.read(path, ":")) if path.exists() else []

    def label(frames):
        for f in frames:  # what the labeller needs; MD bookkeeping goes
            f.info = {"charge": charges.get(f.get_chemical_formula(), 0)}
        label_structures(frames, labeller, db, progress=progress, cluster="serial",
                         source="active-learning frames")
        done = [a for a in labelled_frames(frames, labeller, db) if a is not None]
        return [a for a in done
                if np.linalg.norm(a.get_forces(), axis=1).max() <= max_force_eV_A]

    loop = ActiveLearning(workdir, list(initial), train=train, load=load, explore=explore,
                          label=label, lo=s.trust_lo_eV_A, hi=s.trust_hi_eV_A,
                          max_new=s.max_new)
    res = loop.run(s.rounds, accurate_fraction=s.accurate_fraction)
    plot = None
    try:
        plot = plot_history(res.history, workdir / "active_learning.png", lo=s.trust_lo_eV_A,
                            hi=s.trust_hi_eV_A, accurate_fraction=s.accurate_fraction)
    except Exception as exc:  # a figure must never cost the numbers
        print(f"warning: no active-learning figure ({exc})")
    _, members = res.model
    return {"model": loop.round_dir(res.rounds) / "model", "members": members,
            "metrics": res.metrics, "history": res.history, "stopped": res.stopped,
            "converged": res.converged, "rounds": res.rounds, "n_train": len(res.data),
            "plot": None if plot is None else str(plot)}

