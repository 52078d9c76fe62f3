"""Committees of models: mean prediction and the DP-GEN model deviation.

Committees are called ensembles in much of the MLP literature; "committee" here, because
"ensemble" is the thermodynamic one.

For M models predicting forces F_m on atom i, the force deviation of atom i is
``sqrt(mean_m |F_m,i - <F_i>|^2)`` and the system's ``max_force_deviation`` is its maximum over
atoms (DP-GEN's ``max_devi_f``). This number drives active learning and uncertainty flags in
every domain.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from common.md.neighbors import NeighborList
from common.md.state import BatchState
from common.potential.model_folder import META, write_model_meta
from common.potential.protocol import BatchedPotential


def force_deviation(forces: torch.Tensor, system_idx: torch.Tensor, n_systems: int
                    ) -> dict[str, torch.Tensor]:
    """Model deviation from stacked forces (M, n_atoms, 3).

    Returns per-atom ``atom_force_deviation`` (n_atoms,) and per-system
    ``max_force_deviation``, ``min_force_deviation``, ``mean_force_deviation`` (eV/Å).
    """
    mean = forces.mean(0)
    dev = torch.sqrt(((forces - mean) ** 2).sum(-1).mean(0))  # (n_atoms,)
    mx = torch.zeros(n_systems, dtype=dev.dtype, device=dev.device
                     ).scatter_reduce_(0, system_idx, dev, "amax", include_self=False)
    mn = torch.zeros(n_systems, dtype=dev.dtype, device=dev.device
                     ).scatter_reduce_(0, system_idx, dev, "amin", include_self=False)
    counts = torch.bincount(system_idx, minlength=n_systems).to(dev.dtype)
    avg = torch.zeros(n_systems, dtype=dev.dtype, device=dev.device
                      ).index_add_(0, system_idx, dev) / counts
    return {"atom_force_deviation": dev, "max_force_deviation": mx,
            "min_force_deviation": mn, "mean_force_deviation": avg}


class Committee(BatchedPotential):
    """A committee of batched potentials: every member runs on the same batch.

    It returns the mean energy/forces plus ``max_force_deviation`` (per system) and
    ``energy_std_per_atom`` (eV/atom).
    """

    def __init__(self, members: Sequence[BatchedPotential]):
        super().__init__()
        if len(members) < 2:
            raise ValueError("a committee needs at least two models")
        self.members = torch.nn.ModuleList(members)
        self.cutoff = max(m.cutoff for m in members)
        self.has_stress = all(m.has_stress for m in members)
        self.needs_grad = any(m.needs_grad for m in members)

    def forward(self, state: BatchState, neighbors: NeighborList,
                compute_stress: bool = False) -> dict[str, torch.Tensor]:
        """Return the members' mean prediction with the force and energy deviations."""
        outs = [m(state, neighbors, compute_stress=compute_stress) for m in self.members]
        energies = torch.stack([o["energy"] for o in outs])
        forces = torch.stack([o["forces"] for o in outs])
        result = {"energy": energies.mean(0), "forces": forces.mean(0)}
        result.update(force_deviation(forces, state.system_idx, state.n_systems))
        n_atoms = state.atoms_per_system().to(energies.dtype)
        result["energy_std_per_atom"] = energies.std(0, unbiased=False) / n_atoms
        if compute_stress and self.has_stress:
            result["stress"] = torch.stack([o["stress"] for o in outs]).mean(0)
        return result




def save_committee_folder(path, member_dirs: Sequence, framework: str, extra: dict | None = None):
    """Record a committee.

    ``path/mlp-cases-model.json`` lists the member model folders (relative to ``path``) and the
    framework that trained them.
    """
    from pathlib import Path

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    members = [str(Path(m).resolve().relative_to(path.resolve())) for m in member_dirs]
    write_model_meta(path, {"framework": "committee", "member_framework": framework,
                            "members": members, **(extra or {})})
    return path


def load_committee_folder(path, device: str = "cpu") -> Committee:
    """Load a committee folder written by :func:`train_committee` (every member)."""
    import json
    from pathlib import Path

    from common.potential.registry import load_saved

    path = Path(path)
    meta = json.loads((path / META).read_text())
    return Committee([load_saved(path / m, device=device) for m in meta["members"]])


def train_committee(adapter_cls, train, valid, workdir, n_models: int, config=None,
                    seed: int = 0, init_from=None, parallel: int = 1, **train_kw):
    """Train a committee of ``n_models`` members into ``workdir``; return (folder, members).

    The members are trained with ``adapter_cls.train`` (seeds seed, seed+1, ...) in
    ``workdir/member_k``, and the committee folder records them, their metrics and their common
    elements. ``init_from``: a committee folder written here before (e.g. the last
    active-learning round's); member k continues from its ``member_k`` through the adapter's
    ``train(init_from=...)``. ``parallel`` > 1 trains that many members side by side, each in its
    own process with ``cpu_count // parallel`` torch threads, and loads them back with
    ``adapter_cls.load``: the same members as one by one (same seeds, same data), in less wall
    time for an adapter that trains in-process on few threads.
    """
    from pathlib import Path

    workdir = Path(workdir)
    dirs = [workdir / f"member_{k}" for k in range(n_models)]
    kws = [train_kw if init_from is None else
           {**train_kw, "init_from": Path(init_from) / f"member_{k}"} for k in range(n_models)]
    parallel = max(1, min(int(parallel), n_models))
    if parallel == 1:
        members = [adapter_cls.train(train, valid, d, config=config, seed=seed + k, **kw)
                   for k, (d, kw) in enumerate(zip(dirs, kws, strict=True))]
    else:
        import multiprocessing
        import os
        from concurrent.futures import ProcessPoolExecutor

        threads = max(1, (os.cpu_count() or 1) // parallel)
        with ProcessPoolExecutor(parallel, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_set_threads, initargs=(threads,)) as pool:
            jobs = [pool.submit(_train_member, adapter_cls, train, valid, d, config, seed + k,
                                kw) for k, (d, kw) in enumerate(zip(dirs, kws, strict=True))]
            for job in jobs:
                job.result()  # a member's error is raised here, as it would be one by one
        members = [adapter_cls.load(d) for d in dirs]
    elements = {getattr(m, "elements", None) for m in members}
    common = elements.pop() if len(elements) == 1 else None
    save_committee_folder(workdir, dirs, framework=adapter_cls.name,
                         extra={"metrics": [getattr(m, "meta", {}).get("metrics")
                                            for m in members],
                                "elements": None if common is None else list(common)})
    return workdir, members


def _set_threads(n: int) -> None:
    torch.set_num_threads(n)


def _train_member(adapter_cls, train, valid, folder, config, seed, kw) -> None:
    """Train one member in a worker process (its model is loaded back from ``folder``)."""
    adapter_cls.train(train, valid, folder, config=config, seed=seed, **kw)
