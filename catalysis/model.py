"""SchNet through schnetpack.

Training with schnetpack's own data module and AtomisticTask (PyTorch Lightning), loading, the ASE
calculator (schnetpack's SpkCalculator), and the batched module the common MD engine runs (many
slabs in one batch).

schnetpack 2.1.1 needs two shims on torch 2.13; both live in ``common.frameworks``.
"""

from __future__ import annotations

import contextlib
import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from ase.calculators.calculator import all_changes

from common.config import ConfigSchema
from common.errors import ConfigError
from common.md.neighbors import NeighborList
from common.md.state import BatchState
from common.potential.model_folder import checked_model_config, read_model_meta, write_model_meta
from common.potential.protocol import BatchedPotential, check_elements, element_numbers, elements_of
from common.potential.stress import edge_vectors, energy_forces_stress

CONFIGS = Path(__file__).parent / "configs"
MODEL_FILE = "best_model"


@dataclass(frozen=True)
class SchNetConfig(ConfigSchema):
    """The keys of ``configs/schnet_*.json``.

    Architecture (features, interactions, radial basis, cutoff in Å) and training (batch size,
    learning rate, epochs, early-stopping patience, loss weights of energy and forces).
    """

    n_atom_basis: int
    n_interactions: int
    n_rbf: int
    cutoff_A: float
    batch_size: int
    lr: float
    max_epochs: int
    patience: int
    energy_weight: float
    force_weight: float


def load_config(scale_or_path: str | Path = "tiny", **overrides: Any) -> dict[str, Any]:
    """Load the SchNet hyperparameters: ``tiny``, ``paper`` (the seed's) or a JSON file.

    ``overrides`` replace single keys; a missing or unknown key is a one-line error naming it.
    """
    from common.config import load_json_config

    return load_json_config(scale_or_path, CONFIGS, "schnet", what="SchNet config",
                            schema=SchNetConfig, **overrides).to_dict()


def _checked_config(config: dict | str | None) -> dict[str, Any]:
    return checked_model_config(config, SchNetConfig, load_config)


@contextlib.contextmanager
def _inside(path: Path):
    """Change into the model folder ``path`` for the duration of the block.

    SchNetPack's data module writes 'splitting.lock' into the working directory; run it inside
    the model folder so nothing lands where the user happens to be.
    """
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def build_model(cfg: dict[str, Any]) -> torch.nn.Module:
    """Build the SchNet energy + forces model (schnetpack's NeuralNetworkPotential) for ``cfg``."""
    from common.frameworks import import_schnetpack

    spk = import_schnetpack()
    n = int(cfg["n_atom_basis"])
    cutoff = float(cfg["cutoff_A"])
    return spk.model.NeuralNetworkPotential(
        representation=spk.representation.SchNet(
            n_atom_basis=n, n_interactions=int(cfg["n_interactions"]),
            radial_basis=spk.nn.GaussianRBF(n_rbf=int(cfg["n_rbf"]), cutoff=cutoff),
            cutoff_fn=spk.nn.CosineCutoff(cutoff)),
        input_modules=[spk.atomistic.PairwiseDistances()],
        output_modules=[spk.atomistic.Atomwise(n_in=n, output_key="energy"),
                        spk.atomistic.Forces(energy_key="energy", force_key="forces")],
        postprocessors=[spk.transform.CastTo64(),
                        spk.transform.AddOffsets("energy", add_mean=True, add_atomrefs=True)])


class SchNetAdapter:
    """A trained SchNet potential (see :class:`common.potential.protocol.ModelAdapter`)."""

    name: ClassVar[str] = "schnet"

    def __init__(self, path: Path, model: torch.nn.Module, meta: dict, device: str = "cpu"):
        self.path, self.model, self.meta, self.device = Path(path), model, meta, device

    @property
    def cutoff(self) -> float:
        """Radial cutoff of the model, Å."""
        return float(self.meta["config"]["cutoff_A"])

    @property
    def elements(self) -> tuple[str, ...] | None:
        """Element symbols of the training set (None for an untrained or an old model)."""
        els = self.meta.get("elements")
        return tuple(els) if els else None

    # -- training -----------------------------------------------------------------------
    @classmethod
    def train(cls, train, valid, workdir: str | Path, config: dict | str | None = None,
              seed: int = 0, test=None, device: str = "cpu", progress: bool = False
              ) -> SchNetAdapter:
        """Train SchNet on ``train`` (early stopping on ``valid``), score it on ``test``.

        Everything schnetpack writes (its database, split file, Lightning logs, the best
        checkpoint) stays in ``workdir``; ``workdir/mlp-cases-model.json`` records the config,
        the training set's elements, the metrics and the framework. ``device`` is checked
        before anything is written.
        """
        from common.data.export import export_schnetpack
        from common.frameworks import import_schnetpack
        from common.md.runner import check_device
        from common.training import (
            check_training_data,
            error_metrics,
            parity_plot,
            seed_everything,
        )

        check_device(device)
        spk = import_schnetpack()
        import pytorch_lightning as pl
        import torchmetrics

        cfg = _checked_config(config)
        check_training_data(train, valid, test)
        workdir = Path(workdir).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        parts = [train, valid] + ([test] if test is not None and len(test) else [])
        full = parts[0]
        for p in parts[1:]:
            full = full + p
        db = export_schnetpack(full, workdir / "data.db", overwrite=True)
        n_tr, n_va = len(train), len(valid)
        np.savez(workdir / "split.npz", train_idx=np.arange(n_tr),
                 val_idx=np.arange(n_tr, n_tr + n_va),
                 test_idx=np.arange(n_tr + n_va, len(full)))
        seed_everything(seed)
        pl.seed_everything(seed, workers=True, verbose=False)
        with _inside(workdir), _quiet_lightning():
            trainer = cls._fit(spk, pl, torchmetrics, cfg, db, workdir, device, progress)
        meta = {"framework": "schnet", "config": cfg, "seed": seed,
                "elements": elements_of(train), "epochs": int(trainer.current_epoch),
                "model_file": MODEL_FILE, "n_train": n_tr, "n_valid": n_va}
        write_model_meta(workdir, meta)
        adapter = cls.load(workdir, device=device)
        metrics = {"valid": error_metrics(adapter.batched(), valid)}
        if test is not None and len(test):
            metrics["test"] = error_metrics(adapter.batched(), test)
            parity_plot(adapter.batched(), test, workdir / "parity_test.png",
                        title=f"SchNet, test set ({len(test)} frames)")
        adapter.meta["metrics"] = metrics
        write_model_meta(workdir, adapter.meta)
        return adapter

    @staticmethod
    def _fit(spk, pl, torchmetrics, cfg, db, workdir, device, progress):
        """Fit with SchNetPack's data module + AtomisticTask + a Lightning Trainer.

        Returns the trainer after fit (best checkpoint in workdir/best_model).
        """
        cutoff = float(cfg["cutoff_A"])
        dm = spk.data.AtomsDataModule(
            str(db), batch_size=int(cfg["batch_size"]), split_file=str(workdir / "split.npz"),
            transforms=[spk.transform.ASENeighborList(cutoff=cutoff),
                        spk.transform.RemoveOffsets("energy", remove_mean=True,
                                                    remove_atomrefs=True),
                        spk.transform.CastTo32()],
            property_units={"energy": "eV", "forces": "eV/Ang"}, distance_unit="Ang",
            num_workers=0, pin_memory=False)
        model = build_model(cfg)
        outputs = [
            spk.task.ModelOutput(name="energy", loss_fn=torch.nn.MSELoss(),
                                 loss_weight=float(cfg["energy_weight"]),
                                 metrics={"MAE": torchmetrics.MeanAbsoluteError()}),
            spk.task.ModelOutput(name="forces", loss_fn=torch.nn.MSELoss(),
                                 loss_weight=float(cfg["force_weight"]),
                                 metrics={"MAE": torchmetrics.MeanAbsoluteError()}),
        ]
        task = spk.task.AtomisticTask(
            model=model, outputs=outputs, optimizer_cls=torch.optim.AdamW,
            optimizer_args={"lr": float(cfg["lr"])},
            # schnetpack's own ReduceLROnPlateau passes `verbose`, which torch 2.13 removed
            scheduler_cls=torch.optim.lr_scheduler.ReduceLROnPlateau,
            scheduler_args={"factor": 0.5, "patience": max(2, int(cfg["patience"]) // 3)},
            scheduler_monitor="val_loss")
        trainer = pl.Trainer(
            max_epochs=int(cfg["max_epochs"]), default_root_dir=str(workdir),
            callbacks=[spk.train.ModelCheckpoint(model_path=str(workdir / MODEL_FILE),
                                                 save_top_k=1, monitor="val_loss"),
                       pl.callbacks.EarlyStopping(monitor="val_loss",
                                                  patience=int(cfg["patience"]))],
            logger=pl.loggers.CSVLogger(str(workdir), name="lightning_logs"),
            accelerator="gpu" if device.startswith("cuda") else "cpu", devices=1,
            enable_progress_bar=progress, enable_model_summary=False, log_every_n_steps=1)
        trainer.fit(task, datamodule=dm)
        return trainer

    # -- loading / saving ---------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> SchNetAdapter:
        """Load a SchNet model folder written by :meth:`save` (a ConfigError if incomplete)."""
        from common.frameworks import import_schnetpack

        import_schnetpack()  # registers schnetpack's classes for weights_only loading
        path = Path(path)
        meta = read_model_meta(path, cls.name, "SchNet")
        model_file = path / meta.get("model_file", MODEL_FILE)
        if not model_file.exists():
            raise ConfigError("the model file is missing", where=str(model_file),
                              fix="retrain, or copy the whole model folder")
        model = torch.load(model_file, map_location=device, weights_only=True)
        model.eval()
        return cls(path, model, meta, device)

    @classmethod
    def untrained(cls, path: str | Path, config: dict | str = "tiny", seed: int = 0,
                  elements: list[str] | None = None) -> SchNetAdapter:
        """Make a randomly initialised model and save it like a trained one.

        For speed benchmarks and plumbing tests only (its predictions mean nothing).
        ``elements``: the symbols it accepts (None: any).
        """
        cfg = _checked_config(config)
        torch.manual_seed(seed)
        meta = {"framework": "schnet", "config": cfg, "seed": seed, "trained": False,
                "elements": elements, "model_file": MODEL_FILE}
        adapter = cls(Path(path), build_model(cfg).eval(), meta)
        adapter.save(path)
        return adapter

    def save(self, path: str | Path) -> Path:
        """Write the model and its metadata into the folder ``path``; return the folder."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        torch.save(self.model, path / MODEL_FILE)
        write_model_meta(path, self.meta)
        return path

    # -- using --------------------------------------------------------------------------
    def calculator(self):
        """Return SchNetPack's own ASE calculator on this model (float64).

        It refuses elements the model was not trained on.
        """
        from common.frameworks import import_schnetpack

        spk = import_schnetpack()
        return _checked_calculator_class(spk)(
            allowed=element_numbers(self.elements),
            model_file=str(self.path / self.meta.get("model_file", MODEL_FILE)),
            neighbor_list=spk.transform.ASENeighborList(cutoff=self.cutoff),
            energy_key="energy", force_key="forces", energy_unit="eV", position_unit="Ang",
            device=self.device, dtype=torch.float64)

    def batched(self, dtype: torch.dtype = torch.float64) -> SchNetBatched:
        """Return the model as a batched potential for the MD engine."""
        return SchNetBatched(self.model, self.cutoff, dtype=dtype,
                             elements=element_numbers(self.elements))


@functools.cache
def _checked_calculator_class(spk):
    """Return a subclass of SchNetPack's SpkCalculator that refuses unseen elements.

    It refuses them before schnetpack sees them; the class is made on first use since
    schnetpack is imported lazily.
    """

    class CheckedSpkCalculator(spk.interfaces.SpkCalculator):
        def __init__(self, *args, allowed=None, **kwargs):
            super().__init__(*args, **kwargs)
            self.allowed = allowed

        def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
            if self.allowed is not None:
                a = atoms if atoms is not None else self.atoms
                check_elements(a.numbers, self.allowed,
                               structure=f"structure {a.get_chemical_formula()}")
            super().calculate(atoms, properties, system_changes)

    return CheckedSpkCalculator


class SchNetBatched(BatchedPotential):
    """A schnetpack model as a BatchedPotential.

    The engine's neighbour list (filtered to the model's cutoff) becomes schnetpack's
    ``_idx_i/_idx_j/_offsets`` inputs.

    The model's own modules give the energy (input modules, the SchNet representation, the
    atomwise energy head and the postprocessors that add the mean and atom references); its
    ``Forces`` head is skipped and forces and stress come from one autograd pass through
    :func:`common.potential.stress.energy_forces_stress`: the periodic offsets are built from
    the (strained) cells, so the strain derivative reaches every edge. This works for any
    trained model folder, also those saved before stress was supported (schnetpack's own route,
    a ``Strain`` input module with ``Forces(calc_stress=True)``, would need the model rebuilt).
    """

    needs_grad = True
    has_stress = True

    def __init__(self, model: torch.nn.Module, cutoff: float, dtype=torch.float64,
                 elements: frozenset[int] | None = None):
        super().__init__()
        import copy

        from common.frameworks import import_schnetpack

        spk = import_schnetpack()
        self.model = copy.deepcopy(model).to(dtype)
        self.model.eval()
        self._energy_heads = [m for m in self.model.output_modules
                              if not isinstance(m, spk.atomistic.Forces)]
        self.cutoff = float(cutoff)
        self.elements = elements

    def _energy(self, state: BatchState, neighbors: NeighborList) -> torch.Tensor:
        from schnetpack import properties as P

        i, j, rij, _ = edge_vectors(state, neighbors)
        keep = (rij.detach() ** 2).sum(-1) < self.cutoff**2
        i, j = i[keep], j[keep]
        offsets = rij[keep] - (state.positions[j] - state.positions[i])
        inputs = {
            P.Z: state.numbers, P.R: state.positions, P.cell: state.cells, P.pbc: state.pbc,
            P.idx_m: state.system_idx, P.n_atoms: state.atoms_per_system(),
            P.idx_i: i, P.idx_j: j, P.offsets: offsets,
        }
        for m in self.model.input_modules:
            inputs = m(inputs)
        inputs = self.model.representation(inputs)
        for m in self._energy_heads:
            inputs = m(inputs)
        inputs = self.model.postprocess(inputs)
        return inputs["energy"]

    def forward(self, state: BatchState, neighbors: NeighborList,
                compute_stress: bool = False) -> dict[str, torch.Tensor]:
        """Return energy, forces (and stress if asked) of the batch, detached."""
        out = energy_forces_stress(self._energy, state, neighbors, compute_stress=compute_stress)
        return {k: v.detach().to(state.dtype) for k, v in out.items()}


@contextlib.contextmanager
def _quiet_lightning():
    """Silence Lightning's and schnetpack's chatter during training (errors still surface).

    That is Lightning's banners, its hyperparameter warning and schnetpack's statistics
    progress bar.
    """
    import logging
    import warnings

    import schnetpack.data.stats as spk_stats

    tqdm_before = spk_stats.tqdm  # the statistics pass draws its own bar: silence it here
    spk_stats.tqdm = lambda iterable, *a, **k: iterable

    names = ("pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric",
             "pytorch_lightning.utilities.rank_zero", "lightning.pytorch.utilities.rank_zero",
             "lightning_fabric.utilities.rank_zero", "schnetpack")
    levels = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for n, lv in levels.items():
            logging.getLogger(n).setLevel(lv)
        spk_stats.tqdm = tqdm_before
