"""Bring structures to temperature before a run with a weak thermostat.

A production run with a weak Langevin friction (the catalysis seed's 0.01 ps⁻¹, chosen so the
dynamics is nearly Newtonian) cannot remove the energy a structure releases as it relaxes from
its built geometry: measured in the catalysis tiny case study, such a run held a mean 415 K for a
300 K target. The standard remedy is a thermalisation stage with a strong friction (a coupling
time of ~0.1 ps) and then the production run from where it ended, velocities included, so the
weak thermostat only has to keep a temperature that is already there.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ase import Atoms

from common.errors import ConfigError

__all__ = ["thermalize"]


def thermalize(frames: Sequence[Atoms], potential, outdir: str | Path, *, steps: int,
               temperature_K: float | Sequence[float], friction_per_ps: float = 10.0,
               timestep_fs: float = 1.0, replicas: int = 1, seed: int = 0,
               progress: bool = False, **md_kw: Any) -> tuple[list[Atoms], dict]:
    """Run strong-friction Langevin MD and return every system as it ended, with velocities.

    Parameters
    ----------
    frames, potential, outdir
        As for :func:`common.md.run_md` (the run goes into ``outdir``; a rerun with the same
        folder resumes or, when finished, only reads the result back).
    steps
        Thermalisation steps (e.g. 10 coupling times: 1 ps at 10 ps⁻¹).
    temperature_K
        Target, one value or one per structure/system (:func:`common.md.per_system_values`).
    friction_per_ps
        The strong friction of this stage (default 10 ps⁻¹, a 0.1 ps coupling time).
    timestep_fs, replicas, seed, progress
        As for :func:`common.md.run_md`.
    **md_kw
        Passed on to :func:`common.md.run_md` (``device``, ``on_blowup``, ``guard``, ...).

    Returns
    -------
    frames : list of Atoms
        One per system (``replicas`` per structure, in :func:`run_md`'s order), at the last
        step with its momenta, carrying the ``info`` of the structure it came from, so it can
        start the next run directly (:func:`run_md` keeps momenta it is given).
    summary : dict
        The run's summary; ``mean_temperature_K`` is the temperature the stage held and
        ``failed`` the systems that blew up (their frame is where they stopped).
    """
    import ase.io

    from common.md.runner import run_md

    if int(steps) < 1:
        raise ConfigError(f"thermalisation needs steps >= 1 (got {steps})",
                          where="thermalize steps", fix="give e.g. 1000 steps (1 ps at 1 fs)")
    outdir = Path(outdir)
    summary = run_md(frames, potential, outdir, ensemble="nvt", steps=int(steps),
                     temperature_K=temperature_K, friction_per_ps=friction_per_ps,
                     timestep_fs=timestep_fs, replicas=replicas, seed=seed, traj_every=0,
                     thermo_every=max(1, int(steps) // 50), checkpoint_every=int(steps),
                     restart=(outdir / "run.json").exists(), progress=progress, **md_kw)
    ended = ase.io.read(summary["final_structures"], ":")
    out = []
    for k, a in enumerate(ended):
        a.info = dict(frames[k // replicas].info)
        a.calc = None
        out.append(a)
    return out, summary
