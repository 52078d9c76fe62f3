"""Binding-stability screening.

Short ML/MM MD of each ligand in the pocket, ranked by how well the pose holds (the seed's "MLP-MD
screening of the top 1,000" step, before metadynamics).

Per ligand (one :func:`common.sweep.run_tasks` task each, its result saved the moment it
finishes, so a rerun only runs what is missing): the prepared complex (:mod:`drug_binding.prepare`)
becomes an ML/MM System (:func:`drug_binding.mlmm.mlmm_system`), is minimised, and runs Langevin
MD; every ``report_every`` steps the frame is superposed on the receptor's heavy atoms of the
first frame (Kabsch) and we record

* the ligand's heavy-atom RMSD from its starting pose in the pocket (Å; no ligand fitting, so
  a ligand that slides or turns in the pocket counts),
* receptor residues in contact (any heavy-atom pair within ``contact_A``) and the fraction of
  frames each contact is present,
* the residence time: the time until the ligand's centre leaves a sphere of ``escape_A``
  around its starting position in the receptor frame (the run's length if it never does,
  flagged ``escaped: false``).

Ligands are ranked by mean RMSD over the second half of the run (lower = more stable); ties
broken by residence time. A ligand whose own bonds break under the ML potential (a bond longer
than :data:`MAX_BOND_A`, or NaN coordinates) is not ranked: its run stops there and it is
reported as ``fell_apart`` with the step and the bond length (its RMSD would measure the
model's failure, not binding). A simplification against the seed: one short run per ligand
(no replicas), and the pocket is the prepared pose's neighbourhood.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from common.errors import SimulationError
from common.fileio import atomic_write_json

__all__ = ["MAX_BOND_A", "LigandBroken", "fell_apart", "kabsch_superpose", "ligand_bond_guard",
           "ligand_bonds", "rank", "run_md", "screen", "screen_one"]


def kabsch_superpose(mobile: np.ndarray, ref: np.ndarray, fit: np.ndarray) -> np.ndarray:
    """Superpose ``mobile`` (all atoms) on ``ref`` by its ``fit`` atoms (Kabsch, no scaling).

    ``mobile`` is moved by the rotation + translation that best superposes its ``fit`` atoms on
    ``ref``'s.
    """
    a, b = mobile[fit], ref[fit]
    ca, cb = a.mean(0), b.mean(0)
    h = (a - ca).T @ (b - cb)
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(vt.T @ u.T))
    rot = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    return (mobile - ca) @ rot.T + cb


def _heavy(topology, atoms) -> np.ndarray:
    idx = [i for i in atoms if list(topology.atoms())[i].element.symbol != "H"]
    return np.asarray(idx, int)


def _analyse(frames: np.ndarray, topology, lig: np.ndarray, rec: np.ndarray, dt_ps: float,
             contact_A: float, escape_A: float) -> dict[str, Any]:
    """Pocket metrics of frames (Å) of the complex (see the module docstring)."""
    lig_h, rec_h = _heavy(topology, lig), _heavy(topology, rec)
    ref = frames[0]
    residues = [a.residue for a in topology.atoms()]
    rmsd, dist, contacts = [], [], {}
    for x in frames:
        y = kabsch_superpose(x, ref, rec_h)
        rmsd.append(float(np.sqrt(((y[lig_h] - ref[lig_h]) ** 2).sum(1).mean())))
        dist.append(float(np.linalg.norm(y[lig_h].mean(0) - ref[lig_h].mean(0))))
        d = np.linalg.norm(y[lig_h][:, None] - y[rec_h][None], axis=-1)
        for j in np.unique(np.nonzero(d < contact_A)[1]):
            r = residues[rec_h[j]]
            contacts.setdefault(f"{r.name}{r.id}", set()).add(len(rmsd) - 1)
    n = len(frames)
    out_at = next((k for k, d in enumerate(dist) if d > escape_A), None)
    half = np.asarray(rmsd[n // 2:])
    return {
        "n_frames": n, "dt_ps": dt_ps,
        "rmsd_A": rmsd, "centre_shift_A": dist,
        "mean_rmsd_A": float(half.mean()),
        "sem_rmsd_A": float(half.std(ddof=1) / math.sqrt(len(half))) if len(half) > 1 else None,
        "max_rmsd_A": float(np.max(rmsd)),
        "residence_time_ps": (out_at if out_at is not None else n - 1) * dt_ps,
        "escaped": out_at is not None,
        "contacts": {k: len(v) / n
                     for k, v in sorted(contacts.items(), key=lambda kv: -len(kv[1]))},
    }


#: a ligand bond longer than this (Å) means the ML potential let the molecule fall apart
MAX_BOND_A = 2.0


class LigandBroken(SimulationError):
    """The ligand fell apart at ``step``: a bond longer than :data:`MAX_BOND_A`, or NaN coordinates.

    ``bond_A`` is the longest ligand bond then (NaN for NaN coordinates) and ``atoms`` its two atom
    indices (None for NaN).
    """

    def __init__(self, what: str, *, step: int, bond_A: float, atoms=None, where=None,
                 fix=None):
        self.step, self.bond_A, self.atoms = int(step), float(bond_A), atoms
        super().__init__(what, where=where, fix=fix)


def _check_intact(x: np.ndarray, bonds: np.ndarray, step: int, where) -> None:
    """Raise :class:`LigandBroken` when the ligand's coordinates (Å) are NaN or a bond is too long.

    Too long is longer than MAX_BOND_A (an ML potential extrapolating into a hole: the run's numbers
    would be meaningless).
    """
    if not np.isfinite(x).all():
        raise LigandBroken(f"coordinates became NaN by step {step}", step=step,
                           bond_A=math.nan, where=str(where),
                           fix="lower timestep_fs or retrain the model")
    if len(bonds):
        d = np.linalg.norm(x[bonds[:, 0]] - x[bonds[:, 1]], axis=-1)
        k = int(np.argmax(d))
        if d[k] > MAX_BOND_A:
            raise LigandBroken(f"the ligand fell apart under the ML potential by step {step} "
                               f"(bond {bonds[k, 0]}-{bonds[k, 1]} at {d[k]:.2f} Å)",
                               step=step, bond_A=float(d[k]),
                               atoms=[int(bonds[k, 0]), int(bonds[k, 1])], where=str(where),
                               fix="train the ANI model on more (and more distorted) "
                                   "ligand frames")


def ligand_bonds(topology, ligand_atoms) -> np.ndarray:
    """``(n_bonds, 2)`` atom indices of the bonds inside the ligand."""
    lig = set(int(i) for i in ligand_atoms)
    return np.array([(b[0].index, b[1].index) for b in topology.bonds()
                     if b[0].index in lig and b[1].index in lig], int).reshape(-1, 2)


def ligand_bond_guard(topology, ligand_atoms, where=None):
    """Return a ``guard(positions_nm, step)`` for :func:`drug_binding.metad.run_metad`.

    It raises :class:`LigandBroken` when the ligand falls apart.
    """
    bonds = ligand_bonds(topology, ligand_atoms)

    def guard(positions_nm, step: int) -> None:
        _check_intact(np.asarray(positions_nm, float) * 10.0, bonds, step, where)

    return guard


def run_md(complex_dir: str | os.PathLike, model_dir: str | os.PathLike, steps: int,
           out: str | os.PathLike, temperature_K: float = 300.0, timestep_fs: float = 1.0,
           friction_per_ps: float = 1.0, report_every: int = 100, seed: int = 0,
           threads: int = 1, minimize_steps: int = 200, platform: str = "CPU",
           minimize_on: str = "mlmm") -> dict[str, Any]:
    """Run ML/MM Langevin MD of a prepared complex and return its pocket metrics.

    Minimise (``minimize_steps`` L-BFGS iterations on the ML/MM energy, or with
    ``minimize_on="mm"`` on the MM force field: :func:`drug_binding.mlmm.relax_start`), then run
    ``steps``; writes ``md.pdb`` (frames every ``report_every`` steps, first = minimised start),
    ``final.pdb`` and ``md.json`` (pocket metrics, timings) in ``out``; returns the metrics dict.
    """
    from openmm import app, unit

    from common.fileio import atomic_path
    from drug_binding import mlmm
    from drug_binding.prepare import Complex, create_system, write_pdb

    t0 = time.perf_counter()
    out = Path(out)
    cx = Complex.load(complex_dir)
    out.mkdir(parents=True, exist_ok=True)
    system, top, pos = create_system(cx)
    mixed = mlmm.mlmm_system(system, top, cx.ligand_atoms, model_dir, threads=threads)
    sim = mlmm.simulation(mixed, top, pos, temperature_K, timestep_fs, friction_per_ps, seed,
                          platform=platform, threads=threads)
    mlmm.relax_start(sim, system, minimize_steps, on=minimize_on, threads=threads)
    sim.context.setVelocitiesToTemperature(temperature_K * unit.kelvin, int(seed) + 1)
    frames = [sim.context.getState(getPositions=True).getPositions(asNumpy=True)
              .value_in_unit(unit.angstrom)]
    lig_bonds = ligand_bonds(top, cx.ligand_atoms)
    _check_intact(frames[0], lig_bonds, 0, complex_dir)
    t_md = time.perf_counter()
    for _ in range(max(1, steps // report_every)):
        sim.step(report_every)
        st = sim.context.getState(getPositions=True, getEnergy=True)
        x = st.getPositions(asNumpy=True).value_in_unit(unit.angstrom)
        _check_intact(x, lig_bonds, sim.currentStep, complex_dir)
        frames.append(x)
    md_s = time.perf_counter() - t_md
    frames = np.asarray(frames)
    with atomic_path(out / "md.pdb") as tmp, open(tmp, "w") as fh:
        app.PDBFile.writeHeader(top, fh)
        for k, x in enumerate(frames):
            app.PDBFile.writeModel(top, x * unit.angstrom, fh, modelIndex=k + 1)
        app.PDBFile.writeFooter(top, fh)
    write_pdb(top, frames[-1] / 10.0, out / "final.pdb")
    res = _analyse(frames, top, np.asarray(cx.ligand_atoms), np.asarray(cx.receptor_atoms),
                   report_every * timestep_fs / 1000.0, contact_A=4.5, escape_A=5.0)
    res.update({"complex": str(complex_dir), "steps": int(sim.currentStep),
                "timestep_fs": timestep_fs, "temperature_K": temperature_K, "seed": seed,
                "steps_per_s": round(sim.currentStep / md_s, 1),
                "wall_s": round(time.perf_counter() - t0, 1)})
    atomic_write_json(out / "md.json", res)
    return res


def screen_one(name: str, complex_dir: str, model_dir: str, out: str, steps: int,
               temperature_K: float, timestep_fs: float, report_every: int, seed: int,
               threads: int = 1, minimize_on: str = "mlmm") -> dict[str, Any]:
    """Run one screening task (importable by the sweep's workers).

    A ligand that falls apart gives ``{"name", "status": "fell_apart", "step", "max_bond_A",
    "bond_atoms", "message"}`` (a result, kept by the sweep: the same seed would break it again),
    not an exception.
    """
    try:
        res = run_md(complex_dir, model_dir, steps, Path(out) / name,
                     temperature_K=temperature_K, timestep_fs=timestep_fs,
                     report_every=report_every, seed=seed, threads=threads,
                     minimize_on=minimize_on)
    except LigandBroken as exc:
        return {"name": name, "status": "fell_apart", "step": exc.step,
                "max_bond_A": None if math.isnan(exc.bond_A) else exc.bond_A,
                "bond_atoms": exc.atoms, "message": exc.what, "seed": seed,
                "timestep_fs": timestep_fs}
    return {"name": name, "status": "ok",
            **{k: v for k, v in res.items() if k not in ("rmsd_A", "centre_shift_A")},
            "rmsd_A": res["rmsd_A"]}


def rank(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Rank the intact ligands from most to least stable.

    The order is mean second-half RMSD up, residence time down; ligands that fell apart (``status ==
    "fell_apart"``) are left out.
    """
    rows = sorted((r for r in results.values() if r.get("status", "ok") == "ok"),
                  key=lambda r: (r["mean_rmsd_A"], -r["residence_time_ps"]))
    return [{"rank": k + 1, **r} for k, r in enumerate(rows)]


def fell_apart(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the ligands that fell apart, in input order."""
    return [r for r in results.values() if r.get("status") == "fell_apart"]


def screen(complexes: dict[str, str], model_dir: str | os.PathLike, out: str | os.PathLike,
           steps: int, temperature_K: float = 300.0, timestep_fs: float = 1.0,
           report_every: int = 100, seed: int = 0, cluster: Any = "serial",
           progress: bool = False, minimize_on: str = "mlmm") -> dict[str, Any]:
    """Screen ``{name: complex folder}`` through :func:`common.sweep.run_tasks`.

    Results go to ``out/results/``, one JSON per ligand (a rerun skips the finished ones); writes
    and returns ``screening.json`` (``ranking``; ``fell_apart``: ligands whose bonds broke, not
    ranked; ``failures``: tasks that raised).
    """
    from common.sweep import JsonDirStore, Task, run_tasks

    out = Path(out)
    store = JsonDirStore(out / "results")
    tasks = [Task(name, screen_one, {"name": name, "complex_dir": str(cdir),
                                     "model_dir": str(model_dir), "out": str(out),
                                     "steps": int(steps), "temperature_K": temperature_K,
                                     "timestep_fs": timestep_fs, "report_every": report_every,
                                     "seed": seed + k, "minimize_on": minimize_on})
             for k, (name, cdir) in enumerate(complexes.items())]
    report = run_tasks(tasks, store, cluster=cluster, progress=progress,
                       description="ML/MM screening")
    results = {k: v for k, v in store.results().items() if k in complexes}
    summary = {"ranking": rank(results), "fell_apart": fell_apart(results),
               "failures": report.failures, "sweep": report.to_dict()}
    atomic_write_json(out / "screening.json", summary)
    return summary


def plot_screening(summary: dict[str, Any], path: str | os.PathLike) -> Path:
    """Ligand RMSD against time, one line per ligand, ranked in the legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from common.fileio import atomic_path

    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    for r in summary["ranking"]:
        t = np.arange(len(r["rmsd_A"])) * r["dt_ps"]
        ax.plot(t, r["rmsd_A"], label=f"#{r['rank']} {r['name']} "
                f"({r['mean_rmsd_A']:.2f} Å)")
    ax.set(xlabel="time (ps)", ylabel="ligand RMSD in the pocket (Å)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=150)
    plt.close(fig)
    return path

