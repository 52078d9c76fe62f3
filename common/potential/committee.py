"""Committees of models: mean prediction and the DP-GEN model deviation.

Committees are called ensembles in much of the MLP literature; "committee" here, because
"ensemble" is the thermodynamic one.

For M models predicting forces F_m on atom i, the force deviation of atom i is
``sqrt(mean_m |F_m,i - <F_i>|^2)`` and the system's ``max_force_deviation`` is its maximum over
atoms (DP-GEN's ``max_devi_f``). This number drives active learning and uncertainty flags in
every domain.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch

from common.errors import ConfigError
from common.md.neighbors import NeighborList
from common.md.state import BatchState
from common.potential.model_folder import read_model_meta, write_model_meta
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
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    members = [str(Path(m).resolve().relative_to(path.resolve())) for m in member_dirs]
    write_model_meta(path, {"framework": "committee", "member_framework": framework,
                            "members": members, **(extra or {})})
    return path


def committee_members(path) -> list[Path]:
    """Return the member folders of a committee folder, in the order it records them.

    They are read from its ``mlp-cases-model.json`` (``members``, relative to ``path``, as
    :func:`save_committee_folder` wrote them); a folder that is not a committee folder is a
    one-line ConfigError.
    """
    path = Path(path)
    try:
        meta = read_model_meta(path, "committee", "committee")
    except ConfigError:
        meta = read_model_meta(path, "ensemble", "committee")  # folders saved before 0.2
    return [path / m for m in meta["members"]]


def load_committee_folder(path, device: str = "cpu") -> Committee:
    """Load a committee folder written by :func:`train_committee` (every member)."""
    from common.potential.registry import load_saved

    return Committee([load_saved(m, device=device) for m in committee_members(path)])


def train_committee(adapter_cls, train, valid, workdir, n_models: int, config=None,
                    seed: int = 0, init_from=None, parallel: int = 1, **train_kw):
    """Train a committee of ``n_models`` members into ``workdir``; return (folder, members).

    The members are trained with ``adapter_cls.train`` (seeds seed, seed+1, ...) in
    ``workdir/member_k``, and the committee folder records them, their metrics and their common
    elements. ``init_from``: a committee folder of ``n_models`` members written here before
    (e.g. the last active-learning round's); member k continues from the k-th member that
    folder records, through the adapter's ``train(init_from=...)``; another member count is a
    ConfigError raised before anything trains.

    ``parallel`` > 1 trains that many members side by side; the members are the same as one by
    one (same seeds, same data, same folders):

    * an adapter whose trainer runs in a child process (class attribute
      ``trains_in_subprocess = True``, see :class:`~common.potential.protocol.ModelAdapter`)
      trains them in threads of this process, each with ``threads=cpu_count // parallel``
      when its ``train`` takes ``threads``;
    * any other adapter trains each in its own process with ``cpu_count // parallel`` torch
      threads, and the members are loaded back with ``adapter_cls.load``: less wall time for
      an adapter that trains in-process on few threads.
    """
    workdir = Path(workdir)
    dirs = [workdir / f"member_{k}" for k in range(n_models)]
    kws = [dict(train_kw) for _ in range(n_models)]
    if init_from is not None:
        for kw, start in zip(kws, _members_to_continue(init_from, n_models), strict=True):
            kw["init_from"] = start
    parallel = max(1, min(int(parallel), n_models))
    if parallel == 1:
        members = [adapter_cls.train(train, valid, d, config=config, seed=seed + k, **kw)
                   for k, (d, kw) in enumerate(zip(dirs, kws, strict=True))]
    elif getattr(adapter_cls, "trains_in_subprocess", False):
        members = _train_in_threads(adapter_cls, train, valid, dirs, config, seed, kws,
                                    parallel)
    else:
        import multiprocessing
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


def _members_to_continue(init_from, n_models: int) -> list[Path]:
    """Return the members recorded in the committee folder ``init_from``, ``n_models`` of them."""
    members = committee_members(init_from)
    if len(members) != n_models:
        raise ConfigError(f"the committee to continue from has {len(members)} members, not "
                          f"{n_models}", where=str(init_from),
                          fix=f"continue with {len(members)} members, or train from scratch "
                              "(no init_from)")
    return members


def _train_in_threads(adapter_cls, train, valid, dirs, config, seed, kws, parallel) -> list:
    """Train members side by side in ``parallel`` threads; return them in member order.

    Each thread waits for the adapter's own child process, so a thread per member costs
    nothing; ``threads`` (the child's OpenMP/torch threads) is given when ``train`` takes it
    and the caller did not.
    """
    from concurrent.futures import ThreadPoolExecutor

    if _takes(adapter_cls.train, "threads"):
        threads = max(1, (os.cpu_count() or 1) // parallel)
        kws = [{"threads": threads, **kw} for kw in kws]
    with ThreadPoolExecutor(parallel, thread_name_prefix="committee-member") as pool:
        jobs = [pool.submit(adapter_cls.train, train, valid, d, config=config, seed=seed + k,
                            **kw) for k, (d, kw) in enumerate(zip(dirs, kws, strict=True))]
        return [job.result() for job in jobs]  # a member's error is raised here


def _takes(func, name: str) -> bool:
    """Whether ``func`` has a parameter called ``name`` (not merely ``**kwargs``)."""
    import inspect

    param = inspect.signature(func).parameters.get(name)
    return param is not None and param.kind in (param.POSITIONAL_OR_KEYWORD,
                                                 param.KEYWORD_ONLY)


def _set_threads(n: int) -> None:
    torch.set_num_threads(n)


def _train_member(adapter_cls, train, valid, folder, config, seed, kw) -> None:
    """Train one member in a worker process (its model is loaded back from ``folder``)."""
    adapter_cls.train(train, valid, folder, config=config, seed=seed, **kw)
