"""Active learning of a DeePMD committee over electrolyte conditions (the DP-GEN loop).

Each iteration, through the resumable driver :class:`common.active_learning.ActiveLearning`:
train a committee of DeePMD models (deepmd-kit's own trainer, seeds differ) -> explore with
batched Langevin MD (NVT, or NPT at ``pressure_bar``) of every start cell at every condition
temperature, driven by the committee's mean -> the DP-GEN max force deviation of every
``frame_every``-th frame -> candidates with ``trust_lo <= deviation < trust_hi`` -> at most
``max_new`` of them, spread evenly over the deviation range (the common selection, so not only
the worst frames) -> GFN1-xTB labels (:mod:`common.labels`, cached by structure in the label
database) -> retrain. The loop stops after ``iterations`` explorations, or earlier once the
fraction of explored frames the committee already agrees on (deviation < ``trust_lo``)
reaches ``accurate_fraction``, or when an exploration finds nothing to label.

Absurd frames are refused before training: a labelled frame whose reference energy per atom is
more than ``max_energy_above_eV_per_atom`` above the lowest of the initial training frames of
the same formula (the relaxed cells), or whose largest reference force exceeds
``max_force_eV_A``, is a configuration MD at the exploration temperatures never visits (a
committee driving MD into atom overlaps finds them; GFN1-xTB puts some of them ~1,900 eV above
the relaxed 56-atom cell). Fitting them costs the model its accuracy where it matters, so they
are counted per iteration (``refused.json`` in the round folder, ``n_refused_*`` in the
history) and left out; a frame of a formula absent from the initial data is judged by its force
only.

Everything is on disk under the work folder (see :mod:`common.active_learning`), so a run
killed at any point resumes where it stopped and never labels or merges a frame twice;
``active_learning.png`` plots the record.

Simplification, named: "diverse" is the common selection's spread over the deviation range;
no structural fingerprint (e.g. descriptor-space farthest-point sampling) is used.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ase import Atoms

from common.config import ConfigSchema
from common.errors import ConfigError

__all__ = ["ALSettings", "lowest_energies",
           "refuse_absurd", "retrain_config", "run_active_learning"]

REFUSED_FILE = "refused.json"


@dataclass(frozen=True)
class ALSettings(ConfigSchema):
    """Active-learning settings (a section of the case-study config).

    ``iterations``: most explorations; ``temperatures_K``: exploration conditions (every
    start cell at each); ``md_steps``, ``timestep_fs``, ``friction_per_ps``: each exploration
    run; ``frame_every``: steps between the frames whose deviation is measured;
    ``trust_lo_eV_A``, ``trust_hi_eV_A``: the trust window; ``max_new``: labels per iteration
    at most; ``accurate_fraction``: stop once this fraction of frames is below the window;
    ``committee_size``: models per committee; ``pressure_bar``: NPT exploration when given;
    ``train_parallel``: members trained side by side; ``retrain_steps``: None retrains every
    committee from scratch (DP-GEN's default); a number continues each member from the
    previous iteration's (deepmd ``--init-model``) for that many steps, a named
    simplification that saves most of the training time of later iterations; such a
    continuation starts at ``retrain_start_lr`` with loss prefactors ``retrain_start_pref_e`` and
    ``retrain_start_pref_f`` (DP-GEN's ``training_reuse_start_lr``/``_start_pref_e``/
    ``_start_pref_f`` and their defaults), not at the from-scratch schedule's start: restarting
    that schedule (learning rate 2e-3, energy weight 0.02 against 1000 for forces) let the tiny
    committee's energies drift from 0.05 to 0.27 eV/atom in 300 steps.
    ``max_energy_above_eV_per_atom``, ``max_force_eV_A``: labelled frames above either are
    refused (see the module docstring; None switches a test off).
    """

    iterations: int
    temperatures_K: list[float]
    md_steps: int
    timestep_fs: float
    friction_per_ps: float
    frame_every: int
    trust_lo_eV_A: float
    trust_hi_eV_A: float
    max_new: int
    accurate_fraction: float
    committee_size: int
    pressure_bar: float | None = None
    train_parallel: int = 1
    retrain_steps: int | None = None
    retrain_start_lr: float = 1.0e-4
    retrain_start_pref_e: float = 0.1
    retrain_start_pref_f: float = 100.0
    max_energy_above_eV_per_atom: float | None = 0.5
    max_force_eV_A: float | None = 20.0

    def check(self, where: str = "active_learning") -> ALSettings:
        """Return the settings after checking them; a bad value is a :class:`ConfigError`."""
        def need(ok: bool, what: str, fix: str) -> None:
            if not ok:
                raise ConfigError(what, where=where, fix=fix)

        need(self.iterations >= 0, f"iterations must be >= 0 (got {self.iterations})",
             "give e.g. 2")
        need(bool(self.temperatures_K) and all(t > 0 for t in self.temperatures_K),
             f"temperatures_K must be a list of temperatures > 0 K (got {self.temperatures_K})",
             "give e.g. [300, 400]")
        need(self.md_steps >= 1 and self.frame_every >= 1 and self.timestep_fs > 0
             and self.friction_per_ps > 0, "md_steps, frame_every, timestep_fs and "
             "friction_per_ps must be > 0", "give e.g. 500, 10, 0.5, 1.0")
        need(0 <= self.trust_lo_eV_A < self.trust_hi_eV_A, "need 0 <= trust_lo_eV_A < "
             f"trust_hi_eV_A (got {self.trust_lo_eV_A}, {self.trust_hi_eV_A})",
             "DP-GEN uses e.g. 0.05 and 0.15 eV/Å for a converged model")
        need(self.max_new >= 1, f"max_new must be >= 1 (got {self.max_new})", "give e.g. 50")
        need(0 < self.accurate_fraction <= 1, "accurate_fraction must be in (0, 1] (got "
             f"{self.accurate_fraction})", "DP-GEN stops at e.g. 0.99")
        need(self.retrain_steps is None or self.retrain_steps >= 1, "retrain_steps must be "
             f">= 1 or null (got {self.retrain_steps})", "give e.g. 300, or null")
        need(self.retrain_start_lr > 0 and self.retrain_start_pref_e >= 0
             and self.retrain_start_pref_f >= 0, "retrain_start_lr must be > 0 and the "
             "retrain prefactors >= 0", "DP-GEN's defaults: 1e-4, 0.1 and 100")
        for key in ("max_energy_above_eV_per_atom", "max_force_eV_A"):
            v = getattr(self, key)
            need(v is None or v > 0, f"{key} must be > 0 or null (got {v})",
                 "e.g. 0.5 eV/atom and 20 eV/Å")
        need(self.committee_size >= 2, f"committee_size must be >= 2 (got "
             f"{self.committee_size})", "a deviation needs two models; DP-GEN uses 4")
        return self


def run_active_learning(workdir: str | Path, initial: Sequence[Atoms], valid: Sequence[Atoms],
                        starts: Sequence[Atoms], settings: ALSettings | dict, *,
                        labeller, db: str | Path, deepmd_config: dict | str = "tiny",
                        test: Sequence[Atoms] | None = None, seed: int = 0,
                        device: str = "cpu", progress: bool = False,
                        label_cluster: Any = None) -> dict:
    """Run (or resume) the loop in ``workdir``.

    Returns a dict with ``model`` (the last committee folder), ``members`` (loaded adapters),
    ``committee`` (BatchedPotential), ``metrics``, ``data`` (training frames), ``history`` (one
    entry per exploration, with ``accurate_fraction``), ``stopped`` (why) and ``plot``.

    ``labeller``: a :class:`common.labels.LabellerSpec`; ``db``: its label database (a
    relabelled structure is read from it, never recomputed); ``label_cluster``: where the
    labels run (:func:`common.sweep.run_tasks`; None: a local Dask cluster).
    """
    import ase.io

    from common.active_learning import ActiveLearning, plot_history
    from common.data import Dataset
    from common.fileio import atomic_write_json
    from common.labels import label_structures, labelled_frames
    from common.md.runner import run_md
    from common.potential.committee import committee_members
    from electrolytes.model import DeepMDAdapter, train_committee
    from electrolytes.model import _checked_config as checked_config

    s = settings if isinstance(settings, ALSettings) else ALSettings.from_dict(settings)
    s.check()
    workdir = Path(workdir)
    temps = [float(t) for t in s.temperatures_K]
    md_frames = [a for a in starts for _ in temps]
    md_temps = [t for _ in starts for t in temps]

    base_cfg = checked_config(deepmd_config)

    def train(frames, folder, r):
        cfg, init = base_cfg, None
        if r >= 1 and s.retrain_steps is not None:
            cfg = retrain_config(base_cfg, s)
            init = loop.round_dir(r - 1) / "model"
        _, members = train_committee(Dataset.from_frames(frames),
                                     Dataset.from_frames(list(valid)), folder,
                                     s.committee_size, config=cfg,
                                     seed=seed + 100 * r, test=test, device=device,
                                     parallel=s.train_parallel, init_from=init)
        return _committee(members), _mean_metrics(members)

    def load(folder, r):
        return _committee([DeepMDAdapter.load(m, device=device)
                           for m in committee_members(folder)])

    def explore(model, folder, r):
        kw = {"ensemble": "nvt"}
        if s.pressure_bar is not None:
            kw = {"ensemble": "npt", "pressure_bar": s.pressure_bar}
        run_md(md_frames, model[0], folder, restart=(Path(folder) / "run.json").exists(),
               temperature_K=md_temps, friction_per_ps=s.friction_per_ps,
               timestep_fs=s.timestep_fs, steps=s.md_steps, seed=seed + 1000 * (r + 1),
               traj_every=0, thermo_every=s.frame_every, checkpoint_every=s.md_steps,
               flag_deviation_eV_A=0.0, progress=progress, on_blowup="stop_system",
               device=device, **kw)
        path = Path(folder) / "flagged_frames.extxyz"
        return list(ase.io.read(path, ":")) if path.exists() else []

    reference = lowest_energies(initial)

    def label(frames):
        for f in frames:  # what the labeller needs; MD bookkeeping goes
            f.info = {"charge": 0}
        label_structures(frames, labeller, db, progress=progress, cluster=label_cluster,
                         source="active-learning frames")
        done = [a for a in labelled_frames(frames, labeller, db) if a is not None]
        kept, refused = refuse_absurd(done, reference, s.max_energy_above_eV_per_atom,
                                      s.max_force_eV_A)
        atomic_write_json(loop.round_dir(_labelling_round(loop)) / REFUSED_FILE, refused)
        return kept

    loop = ActiveLearning(workdir, list(initial), train=train, load=load, explore=explore,
                          label=label, lo=s.trust_lo_eV_A, hi=s.trust_hi_eV_A,
                          max_new=s.max_new)
    res = loop.run(s.iterations, accurate_fraction=s.accurate_fraction)
    history = [{**h, **_refused(loop.round_dir(h["round"]))} for h in res.history]
    plot = plot_history(history, workdir / "active_learning.png", lo=s.trust_lo_eV_A,
                        hi=s.trust_hi_eV_A, accurate_fraction=s.accurate_fraction)
    committee, members = res.model
    return {"model": loop.round_dir(res.rounds) / "model", "members": members,
            "committee": committee, "metrics": res.metrics, "data": res.data,
            "history": history, "stopped": res.stopped, "plot": plot, "rounds": res.rounds}


def retrain_config(base: dict[str, Any], settings: ALSettings) -> dict[str, Any]:
    """Return the deepmd config of a member continued from the last iteration's weights.

    ``retrain_steps`` steps from ``retrain_start_lr`` (never below the base ``stop_lr``) with
    DP-GEN's reuse prefactors; the rest of ``base`` is kept.
    """
    n = int(settings.retrain_steps)
    return {**base, "numb_steps": n, "decay_steps": min(base["decay_steps"], n),
            "save_freq": n, "disp_freq": min(base["disp_freq"], n),
            "start_lr": max(settings.retrain_start_lr, base["stop_lr"]),
            "start_pref_e": settings.retrain_start_pref_e,
            "start_pref_f": settings.retrain_start_pref_f}


def lowest_energies(frames: Sequence[Atoms]) -> dict[str, float]:
    """Return the lowest reference energy per atom (eV) of each formula among ``frames``."""
    low: dict[str, float] = {}
    for a in frames:
        f = a.get_chemical_formula()
        e = a.get_potential_energy() / len(a)
        low[f] = min(low.get(f, e), e)
    return low


def refuse_absurd(frames: Sequence[Atoms], reference: dict[str, float],
                  max_energy_above_eV_per_atom: float | None, max_force_eV_A: float | None
                  ) -> tuple[list[Atoms], dict[str, Any]]:
    """Split labelled frames into kept and refused.

    A frame is refused when the reference energy per atom lies more than
    ``max_energy_above_eV_per_atom`` above ``reference`` of its formula (:func:`lowest_energies`) or
    the largest reference force exceeds ``max_force_eV_A`` (None: that test off). Returns (kept,
    record): the counts, the bounds, and the largest excess energy (eV/atom) and force (eV/Å) seen.
    """
    import numpy as np

    kept, n_e, n_f, excess, fmax = [], 0, 0, [], []
    for a in frames:
        ref = reference.get(a.get_chemical_formula())
        de = None if ref is None else a.get_potential_energy() / len(a) - ref
        f = float(np.linalg.norm(a.get_forces(), axis=1).max())
        fmax.append(f)
        if de is not None:
            excess.append(de)
        bad_e = de is not None and max_energy_above_eV_per_atom is not None \
            and de > max_energy_above_eV_per_atom
        bad_f = max_force_eV_A is not None and f > max_force_eV_A
        n_e += bad_e
        n_f += bad_f and not bad_e
        if not (bad_e or bad_f):
            kept.append(a)
    return kept, {"n_labelled": len(frames), "n_kept": len(kept), "n_refused_energy": n_e,
                  "n_refused_force": n_f,
                  "max_energy_above_eV_per_atom": max_energy_above_eV_per_atom,
                  "max_force_eV_A": max_force_eV_A,
                  "largest_energy_above_eV_per_atom": max(excess) if excess else None,
                  "largest_force_eV_A": max(fmax) if fmax else None}


def _labelling_round(loop) -> int:
    """Return the round being labelled: the first one selected and not yet labelled."""
    r = 0
    while True:
        st = loop.state(r)
        if "selected" in st and "labelled" not in st:
            return r
        if not st:
            raise RuntimeError("no round is waiting for labels")
        r += 1


def _refused(round_dir: Path) -> dict[str, Any]:
    """Return a round's refusal record for the history (zeros when nothing was labelled)."""
    p = Path(round_dir) / REFUSED_FILE
    rec = json.loads(p.read_text()) if p.exists() else {}
    return {"n_refused_energy": rec.get("n_refused_energy", 0),
            "n_refused_force": rec.get("n_refused_force", 0),
            "largest_energy_above_eV_per_atom": rec.get("largest_energy_above_eV_per_atom"),
            "largest_force_eV_A": rec.get("largest_force_eV_A")}


def _committee(members):
    from common.potential.committee import Committee

    return Committee([m.batched() for m in members]), members


def _mean_metrics(members) -> dict:
    """Return the members' test (else validation) errors, averaged, and each member's."""
    per = [m.meta.get("metrics", {}) for m in members]
    part = "test" if all("test" in p for p in per) else "valid"
    keys = ("energy_mae_eV_per_atom", "energy_rmse_eV_per_atom", "force_mae_eV_A",
            "force_rmse_eV_A")
    mean = {k: sum(p[part][k] for p in per) / len(per) for k in keys
            if all(k in p.get(part, {}) for p in per)}
    return {"set": part, **mean, "members": per}
