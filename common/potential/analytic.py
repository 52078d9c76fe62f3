"""Analytic pair potentials behind the same adapter protocol as the MLP frameworks.

``AnalyticAdapter.train`` fits the potential's parameters (and a reference energy per atom) to
a labelled Dataset by L-BFGS on energies and forces, through the same torch code the MD engine
runs. It is the smallest "trained model" the suite has: good for plumbing, demos and tests, and
a baseline an MLP has to beat on the same data.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from common.errors import ConfigError, DataError
from common.md.neighbors import NeighborList
from common.md.state import BatchState
from common.potential.model_folder import META, write_model_meta
from common.potential.pair import LennardJones, Morse, PairPotential

KINDS: dict[str, type[PairPotential]] = {"lj": LennardJones, "morse": Morse}
FITTED = {"lj": ("epsilon", "sigma"), "morse": ("epsilon", "rho0", "r0")}


class AnalyticAdapter:
    """A Lennard-Jones or Morse potential as a trainable, saveable model."""

    name: ClassVar[str] = "analytic"

    def __init__(self, kind: str, params: dict[str, Any], energy_per_atom: float = 0.0,
                 metrics: dict | None = None):
        if kind not in KINDS:
            raise ConfigError(f"unknown analytic potential {kind!r}", where="kind",
                              fix=f"use one of {', '.join(KINDS)}")
        self.kind, self.params = kind, dict(params)
        self.energy_per_atom = float(energy_per_atom)
        self.metrics = metrics or {}

    # -- protocol -------------------------------------------------------------------------
    @property
    def elements(self) -> None:
        """A pair potential takes any element."""
        return None

    @property
    def meta(self) -> dict:
        """The model folder's metadata (framework, parameters, metrics)."""
        return {"framework": self.kind, "params": self.params, "metrics": self.metrics,
                "elements": None}

    def batched(self) -> PairPotential:
        """Return the pair potential as a batched module for the MD engine."""
        pot = KINDS[self.kind](**self.params)
        pot.energy_per_atom = self.energy_per_atom
        return pot

    def calculator(self):
        """Return an ASE calculator on the batched pair potential."""
        from common.potential.calculator import BatchedPotentialCalculator

        return BatchedPotentialCalculator(self.batched())

    def save(self, path: str | Path) -> Path:
        """Write the parameters into the model folder ``path``; return the folder."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        write_model_meta(path, {"framework": self.kind, "params": self.params,
                                "energy_per_atom": self.energy_per_atom,
                                "metrics": self.metrics})
        return path

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> AnalyticAdapter:
        """Load a model folder written by :meth:`save` (a ConfigError if there is none)."""
        meta = Path(path) / META
        if not meta.exists():
            raise ConfigError("no saved model here", where=str(path),
                              fix=f"give a folder written by a train command (with {META})")
        d = json.loads(meta.read_text())
        return cls(d["framework"], d["params"], d.get("energy_per_atom", 0.0), d.get("metrics"))

    @classmethod
    def train(cls, train, valid=None, workdir: str | Path | None = None,
              config: dict | None = None, seed: int = 0, test=None, device: str = "cpu",
              progress: bool = False) -> AnalyticAdapter:
        """Fit the pair potential to ``train`` (a Dataset with energies and forces).

        ``test`` frames, when given, get their own metrics. The fit runs on the CPU (``device``
        is checked, then unused: a few parameters need no GPU); there is no progress bar to show.

        config: ``kind`` ("morse" default or "lj"), ``init`` (starting parameters, also the
        fixed ones such as cutoffs), ``force_weight`` (default 1.0; loss = MSE of energy per
        atom + force_weight * MSE of force components), ``max_iter`` (default 200).
        """
        from common.md.runner import check_device

        check_device(device)
        config = dict(config or {})
        kind = config.get("kind", "morse")
        init = dict(config.get("init", {}))
        w_f = float(config.get("force_weight", 1.0))
        frames = list(train)
        if not frames:
            raise DataError("no training frames", where="train", fix="give a labelled dataset")
        energies, forces = _targets(frames)
        torch.manual_seed(seed)
        pot = KINDS[kind](**init)
        names = FITTED[kind]
        # fit in log space: keeps every parameter positive
        logp = torch.tensor([np.log(getattr(pot, n)) for n in names], dtype=torch.float64,
                            requires_grad=True)
        n_atoms = torch.tensor([len(a) for a in frames], dtype=torch.float64)
        e0 = torch.tensor(float(np.mean(energies.numpy() / n_atoms.numpy())),
                          dtype=torch.float64, requires_grad=True)
        state = BatchState.from_atoms(frames)
        nbrs = NeighborList(pot.cutoff, skin=0.5 * pot.cutoff)  # room for the cutoff to grow
        nbrs.update(state)
        # the cutoff stays where it started (Morse defines it relative to r0)
        cut_abs = (pot.rcut1 * pot.r0, pot.rcut2 * pot.r0) if kind == "morse" else None
        opt = torch.optim.LBFGS([logp, e0], max_iter=int(config.get("max_iter", 200)),
                                line_search_fn="strong_wolfe")

        def loss_fn():
            opt.zero_grad()
            for n, v in zip(names, torch.exp(logp), strict=True):
                setattr(pot, n, v)
            if cut_abs is not None:
                pot.rcut1, pot.rcut2 = cut_abs[0] / pot.r0, cut_abs[1] / pot.r0
            _refresh(pot)
            out = pot(state, nbrs)
            e_err = (out["energy"] / n_atoms + e0 - energies / n_atoms)
            f_err = out["forces"] - forces
            loss = (e_err**2).mean() + w_f * (f_err**2).mean()
            loss.backward()
            return loss

        opt.step(loss_fn)
        params = {k: float(v.detach()) if isinstance(v, torch.Tensor) else v
                  for k, v in pot.params().items()}
        model = cls(kind, params, float(e0.detach()))
        model.metrics = {"train": model.errors(frames)}
        if valid is not None and len(valid):
            model.metrics["valid"] = model.errors(list(valid))
        if test is not None and len(test):
            model.metrics["test"] = model.errors(list(test))
        if workdir is not None:
            model.save(workdir)
        return model

    def errors(self, frames) -> dict[str, float]:
        """Energy-per-atom and force-component MAE/RMSE against the frames' labels."""
        from common.training import error_metrics

        return error_metrics(self.batched(), frames)


def _targets(frames) -> tuple[torch.Tensor, torch.Tensor]:
    from common.training import reference_arrays

    e, f, _ = reference_arrays(frames)
    return torch.as_tensor(e), torch.as_tensor(f)


def _refresh(pot: PairPotential) -> None:
    """Recompute derived constants after parameters changed (LJ's energy shift)."""
    if isinstance(pot, LennardJones):
        pot.e0 = 4 * pot.epsilon * ((pot.sigma / pot.rc) ** 12 - (pot.sigma / pot.rc) ** 6)
