"""NequIP through nequip's own trainer: train, load, compile, ASE calculator, batched module.

* ``NequIPAdapter.train(...)`` writes nequip's Hydra config (``config.yaml``, generated from
  our keys, :class:`NequIPConfig`) next to the frames as extxyz with ``REF_*`` labels
  (``common.data.export``), and runs ``nequip-train`` in a child process: nequip's
  ``ASEDataModule``, ``NequIPGNNModel``, its Lightning module (``EMALightningModule`` when
  ``ema_decay`` is set), Lightning's checkpointing (``best.ckpt``), early stopping and
  ``ReduceLROnPlateau``. Per-element energy shifts are fitted by least squares on the training
  energies and written into the config; the energy scale and the average number of neighbours
  come from nequip's own dataset statistics.
* ``load`` rebuilds the eager model from ``best.ckpt`` with nequip's ``load_saved_model``.
* ``compile(target)`` runs ``nequip-compile --mode aotinductor`` (``target="ase"`` for the ASE
  calculator, ``"batch"`` for the batched module); ``calculator(compiled=True)`` and
  ``batched(compiled=True)`` then use the artifact. Compiling takes 30 s to minutes per target
  on a CPU; eager is the default everywhere (the MD engine gets what ``batched`` returns).
* ``calculator()`` is nequip's own ``nequip.integrations.ase.NequIPCalculator`` (eager model,
  or ``from_compiled_model``), refusing unseen elements.
* ``batched()`` runs the nequip model on the engine's batch: the full neighbour list within the
  model's cutoff becomes ``edge_index = [i, j]`` (nequip's ``[center, neighbour]``) and
  ``edge_cell_shift`` the integer shifts, with the state's cells, so nequip's own
  ``ForceStressOutput`` gives forces and the strain-derivative stress of every periodic system.

nequip keeps data in float64 whatever the model's ``model_dtype``; the batched module feeds it
float64 and returns the state's dtype (``.to(torch.float32)`` leaves the model as it is).
nequip's global state (float64 default dtype, a fixed global seed) is set once in this process
when a model is first loaded; the caller's default dtype and RNG states are restored.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import os
import shutil
import subprocess
import sys
import time
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
from common.potential.model_folder import (
    checked_model_config,
    read_model_meta,
    write_model_meta,
)
from common.potential.protocol import BatchedPotential, check_elements, element_numbers, elements_of

CONFIGS = Path(__file__).parent / "configs"
MODEL_FILE = "best.ckpt"
CONFIG_FILE = "config.yaml"
TRAIN_FILE, VALID_FILE = "train.xyz", "valid.xyz"
#: one training frame (in a periodic box) that nequip-compile traces the model with
EXAMPLE_FILE = "compile_example.xyz"
#: nequip-compile targets: name -> artifact file name
COMPILE_TARGETS: dict[str, str] = {"ase": "model.ase.nequip.pt2",
                                   "batch": "model.batch.nequip.pt2"}
#: models in a committee by default
COMMITTEE_SIZE = 4
#: the metric nequip's checkpointing, early stopping and scheduler follow
MONITOR = "val0_epoch/weighted_sum"


@dataclass(frozen=True)
class NequIPConfig(ConfigSchema):
    """The keys of ``configs/nequip_*.json`` (each becomes a key of nequip's Hydra config).

    Model (``NequIPGNNModel``): ``cutoff_A`` (r_max, Å), ``num_layers``, ``l_max``, ``parity``,
    ``num_features``, ``radial_mlp_depth``/``radial_mlp_width``, ``num_bessels``,
    ``polynomial_cutoff_p``, ``model_dtype`` (``float32``/``float64``). Training: ``batch_size``
    (frames), Adam ``lr``, ``max_epochs``, early-stopping ``patience`` (epochs),
    ``ReduceLROnPlateau`` ``lr_patience`` (epochs) and ``lr_factor``, ``ema_decay`` (null: no
    EMA of the weights), loss weights ``energy_weight`` (per-atom energy MSE) and
    ``force_weight`` (force MSE).
    """

    cutoff_A: float
    num_layers: int
    l_max: int
    parity: bool
    num_features: int
    radial_mlp_depth: int
    radial_mlp_width: int
    num_bessels: int
    polynomial_cutoff_p: int
    model_dtype: str
    batch_size: int
    lr: float
    max_epochs: int
    patience: int
    lr_patience: int
    lr_factor: float
    ema_decay: float | None
    energy_weight: float
    force_weight: float


def load_config(scale_or_path: str | Path = "tiny", **overrides: Any) -> dict[str, Any]:
    """Load NequIP hyperparameters.

    ``tiny``, ``paper`` (the seed's: 5 layers, cutoff 5 Å) or a JSON file, plus overrides; a
    missing, unknown or impossible key is a one-line ConfigError.
    """
    from common.config import load_json_config

    cfg = load_json_config(scale_or_path, CONFIGS, "nequip", what="NequIP config",
                           schema=NequIPConfig, **overrides).to_dict()
    _check_values(cfg, where=str(scale_or_path))
    return cfg


def _checked_config(config: dict | str | Path | None) -> dict[str, Any]:
    return checked_model_config(config, NequIPConfig, load_config, _check_values)


def _check_values(cfg: dict[str, Any], where: str) -> None:
    """Values the schema's types cannot catch."""
    def need(ok: bool, what: str, fix: str) -> None:
        if not ok:
            raise ConfigError(what, where=where, fix=fix)

    for key in ("cutoff_A", "num_layers", "num_features", "radial_mlp_depth",
                "radial_mlp_width", "num_bessels", "polynomial_cutoff_p", "batch_size", "lr",
                "max_epochs", "patience", "lr_patience"):
        need(cfg[key] > 0, f"{key} must be > 0 (got {cfg[key]})", f"give a positive {key}")
    need(cfg["l_max"] >= 0, f"l_max must be >= 0 (got {cfg['l_max']})", "use 1 or 2")
    need(cfg["model_dtype"] in ("float32", "float64"),
         f"model_dtype must be float32 or float64 (got {cfg['model_dtype']!r})",
         "use float64 for exact checks, float32 for speed")
    need(0 < cfg["lr_factor"] < 1, f"lr_factor must be in (0, 1) (got {cfg['lr_factor']})",
         "e.g. 0.5")
    ema = cfg["ema_decay"]
    need(ema is None or 0 < ema < 1, f"ema_decay must be in (0, 1) or null (got {ema})",
         "e.g. 0.99, or null for no EMA")
    need(cfg["energy_weight"] >= 0 and cfg["force_weight"] >= 0
         and cfg["energy_weight"] + cfg["force_weight"] > 0,
         "energy_weight and force_weight must be >= 0, not both 0", "e.g. 1.0 and 1.0")


# -- nequip's Hydra config ----------------------------------------------------------------


def nequip_config(cfg: dict[str, Any], symbols: list[str], shifts_eV: list[float], seed: int,
                  workdir: Path, device: str = "cpu", progress: bool = False
                  ) -> dict[str, Any]:
    """nequip-train's Hydra config (as a dict) for our ``cfg``.

    Parameters
    ----------
    cfg : checked :class:`NequIPConfig` values.
    symbols : element symbols (sorted by Z): nequip's type names, one type per element.
    shifts_eV : per-element energy shifts (eV/atom), in ``symbols``' order.
    seed : seeds the model's initial weights and the data order.
    workdir : absolute folder of ``train.xyz``/``valid.xyz``; nequip writes there.
    device : ``cpu``, ``cuda`` or ``cuda:N``.
    progress : Lightning's progress bar.
    """
    return {
        "run": ["train"],
        "seed": seed,
        "hydra": {"run": {"dir": str(workdir)}, "output_subdir": None},
        "data": _data_section(cfg, symbols, seed, workdir),
        "trainer": _trainer_section(cfg, workdir, device, progress),
        "training_module": _module_section(cfg, symbols, shifts_eV, seed),
    }


def _data_section(cfg, symbols, seed, workdir) -> dict[str, Any]:
    from ase.calculators.calculator import all_properties

    loader = {"_target_": "torch.utils.data.DataLoader", "batch_size": cfg["batch_size"]}
    return {
        "_target_": "nequip.data.datamodule.ASEDataModule",
        "seed": seed,
        "train_file_path": str(workdir / TRAIN_FILE),
        "val_file_path": str(workdir / VALID_FILE),
        "transforms": [
            {"_target_": "nequip.data.transforms.ChemicalSpeciesToAtomTypeMapper",
             "model_type_names": symbols,
             "chemical_species_to_atom_type_map": {s: s for s in symbols}},
            {"_target_": "nequip.data.transforms.NeighborListTransform",
             "r_max": cfg["cutoff_A"]},
        ],
        # labels only from the REF_ keys; anything else a calculator left (dipole...) is dropped
        "key_mapping": {"REF_energy": "total_energy", "REF_forces": "forces"},
        "exclude_keys": sorted(all_properties),
        "train_dataloader": {**loader, "shuffle": True},
        "val_dataloader": loader,
        "stats_manager": {"_target_": "nequip.data.CommonDataStatisticsManager",
                          "type_names": symbols},
    }


def _trainer_section(cfg, workdir, device, progress) -> dict[str, Any]:
    gpu = device.startswith("cuda")
    return {
        "_target_": "lightning.Trainer",
        "max_epochs": cfg["max_epochs"],
        "accelerator": "gpu" if gpu else "cpu",
        "devices": [int(device.split(":")[1])] if ":" in device else 1,
        "check_val_every_n_epoch": 1,
        "log_every_n_steps": 1,
        "num_sanity_val_steps": 0,
        "enable_progress_bar": progress,
        "enable_model_summary": False,
        "logger": {"_target_": "lightning.pytorch.loggers.CSVLogger",
                   "save_dir": str(workdir), "name": "lightning_logs", "version": 0},
        "callbacks": [
            {"_target_": "lightning.pytorch.callbacks.ModelCheckpoint", "monitor": MONITOR,
             "dirpath": str(workdir), "filename": Path(MODEL_FILE).stem, "save_top_k": 1},
            {"_target_": "lightning.pytorch.callbacks.EarlyStopping", "monitor": MONITOR,
             "patience": cfg["patience"], "mode": "min"},
        ],
    }


def _module_section(cfg, symbols, shifts_eV, seed) -> dict[str, Any]:
    ema = cfg["ema_decay"]
    section: dict[str, Any] = {
        "_target_": ("nequip.train.EMALightningModule" if ema is not None
                     else "nequip.train.NequIPLightningModule"),
        "loss": {"_target_": "nequip.train.EnergyForceLoss", "per_atom_energy": True,
                 "coeffs": {"total_energy": cfg["energy_weight"],
                            "forces": cfg["force_weight"]}},
        "val_metrics": {"_target_": "nequip.train.EnergyForceMetrics",
                        "coeffs": {"per_atom_energy_mae": cfg["energy_weight"],
                                   "forces_mae": cfg["force_weight"]}},
        "optimizer": {"_target_": "torch.optim.Adam", "lr": cfg["lr"]},
        "lr_scheduler": {
            "scheduler": {"_target_": "torch.optim.lr_scheduler.ReduceLROnPlateau",
                          "factor": cfg["lr_factor"], "patience": cfg["lr_patience"]},
            "monitor": MONITOR, "interval": "epoch", "frequency": 1},
        "model": _model_section(cfg, symbols, shifts_eV, seed),
    }
    if ema is not None:
        section["ema_decay"] = ema
    return section


def _model_section(cfg, symbols, shifts_eV, seed) -> dict[str, Any]:
    return {
        "_target_": "nequip.model.NequIPGNNModel",
        "seed": seed,
        "model_dtype": cfg["model_dtype"],
        "type_names": symbols,
        "r_max": cfg["cutoff_A"],
        "num_layers": cfg["num_layers"],
        "l_max": cfg["l_max"],
        "parity": cfg["parity"],
        "num_features": cfg["num_features"],
        "radial_mlp_depth": cfg["radial_mlp_depth"],
        "radial_mlp_width": cfg["radial_mlp_width"],
        "num_bessels": cfg["num_bessels"],
        "polynomial_cutoff_p": cfg["polynomial_cutoff_p"],
        "avg_num_neighbors": "${training_data_stats:num_neighbors_mean}",
        "per_type_energy_shifts": {s: float(x) for s, x in zip(symbols, shifts_eV,
                                                               strict=True)},
        "per_type_energy_scales": "${training_data_stats:forces_rms}",
    }


def fit_energy_shifts(frames, symbols: list[str]) -> list[float]:
    """Fit per-element energies (eV/atom) by least squares.

    The frames' energies are fitted on their element counts (minimum-norm solution when the
    compositions do not determine them all).
    """
    from common.training import reference_arrays

    energies, _, _ = reference_arrays(frames)
    counts = np.array([[a.get_chemical_symbols().count(s) for s in symbols] for a in frames],
                      dtype=float)
    solution, *_ = np.linalg.lstsq(counts, energies, rcond=None)
    return [float(x) for x in solution]


# -- running nequip's command-line tools ----------------------------------------------------

#: nequip's console scripts and the modules behind them (run as ``python -m``)
_MODULES = {"nequip-train": "nequip.scripts.train", "nequip-compile": "nequip.scripts.compile"}


def run_nequip(args: list[str], workdir: Path, log_name: str, what: str,
               progress: bool = False) -> float:
    """Run ``nequip-train``/``nequip-compile`` (``args[0]``) in a child process in ``workdir``.

    Output goes to ``workdir/log_name`` (the terminal with ``progress``). Returns the wall time
    (s).

    Raises
    ------
    ConfigError
        nequip failed; the message quotes the last line of its output and names the log.
    """
    module = _MODULES[args[0]]
    log = workdir / log_name
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "RANK", "WORLD_SIZE")}
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        out = None if progress else stack.enter_context(open(log, "w"))
        proc = subprocess.run([sys.executable, "-m", module, *args[1:]], cwd=workdir, env=env,
                              stdout=out, stderr=subprocess.STDOUT if out else None,
                              check=False)
    if proc.returncode != 0:
        raise ConfigError(f"{what} failed (exit {proc.returncode}): {_last_line(log)}",
                          where=str(log), fix="read the log; check the config and the data")
    return time.perf_counter() - start


def _last_line(path: Path) -> str:
    try:
        lines = [x.strip() for x in path.read_text(errors="replace").splitlines() if x.strip()]
    except OSError:
        return "(no log written)"
    return lines[-1][-300:] if lines else "(empty log)"


@contextlib.contextmanager
def _float64_default():
    """Set torch's default dtype to float64 for the duration (nequip builds its data with it)."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


@contextlib.contextmanager
def _nequip_state():
    """Initialise nequip's global state once in this process, without side effects on the caller.

    Models can only be built after it. The default dtype, the torch/numpy/random RNG states (nequip
    seeds them with 123), Lightning's seed variables and torch's tensor-sharing strategy are
    restored afterwards.
    """
    from common.frameworks import import_nequip

    import_nequip()
    from nequip.utils.global_state import set_global_state

    restore = _process_state()
    try:
        set_global_state()
        yield
    finally:
        restore()


def _process_state():
    """Return a function that puts back what nequip's ``set_global_state`` changes."""
    import random

    import torch.multiprocessing as tmp

    dtype, sharing = torch.get_default_dtype(), tmp.get_sharing_strategy()
    rngs = torch.get_rng_state(), np.random.get_state(), random.getstate()
    env = {k: os.environ.get(k) for k in ("PL_GLOBAL_SEED", "PL_SEED_WORKERS")}

    def restore() -> None:
        torch.set_default_dtype(dtype)
        tmp.set_sharing_strategy(sharing)
        torch.set_rng_state(rngs[0])
        np.random.set_state(rngs[1])
        random.setstate(rngs[2])
        for k, v in env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    return restore


# -- the adapter ------------------------------------------------------------------------------


class NequIPAdapter:
    """A trained NequIP potential (see :class:`common.potential.protocol.ModelAdapter`)."""

    name: ClassVar[str] = "nequip"

    def __init__(self, path: Path, model: torch.nn.Module, meta: dict, device: str = "cpu"):
        self.path, self.model, self.meta, self.device = Path(path), model, meta, device

    @property
    def cutoff(self) -> float:
        """Cutoff radius: nequip's r_max, Å."""
        return float(self.meta["config"]["cutoff_A"])

    @property
    def elements(self) -> tuple[str, ...] | None:
        """Element symbols of the training set (nequip's type names), sorted by Z."""
        els = self.meta.get("elements")
        return tuple(els) if els else None

    # -- training -----------------------------------------------------------------------
    @classmethod
    def train(cls, train, valid, workdir: str | Path, config: dict | str | None = None,
              seed: int = 0, test=None, device: str = "cpu", progress: bool = False
              ) -> NequIPAdapter:
        """Train NequIP with ``nequip-train`` on ``train``, early stopping on ``valid``.

        Parameters
        ----------
        train, valid, test : labelled frames (energy eV, forces eV/Å), e.g. Datasets.
        workdir : gets ``train.xyz``/``valid.xyz`` (extxyz, ``REF_*`` labels),
            ``config.yaml`` (nequip's Hydra config), ``best.ckpt`` (the best epoch),
            ``nequip_train.log`` (nequip's output; Hydra's own log is ``train.log``),
            ``lightning_logs/`` (losses per epoch), ``compile_example.xyz``,
            ``mlp-cases-model.json`` (config, elements, energy shifts, metrics) and
            ``parity_test.png`` when ``test`` is given.
        config : a dict, ``"tiny"``/``"paper"`` or a JSON file (see :class:`NequIPConfig`).
        seed : nequip's model and data seed (same seed on CPU, same model).
        device : ``cpu``/``cuda``/``cuda:N``, checked before anything is written.
        progress : show nequip's output and Lightning's progress bar.
        """
        from common.md.runner import check_device
        from common.training import check_training_data

        check_device(device)
        cfg = _checked_config(config)
        check_training_data(train, valid, test)
        symbols = elements_of(train)
        shifts = fit_energy_shifts(train, symbols)
        workdir = _prepare_workdir(workdir, train, valid, cfg)
        yaml_cfg = nequip_config(cfg, symbols, shifts, seed, workdir, device, progress)
        _write_yaml(yaml_cfg, workdir / CONFIG_FILE)
        wall = run_nequip(["nequip-train", "-cp", str(workdir), "-cn", Path(CONFIG_FILE).stem],
                          workdir, "nequip_train.log", "nequip-train", progress)
        meta = {"framework": cls.name, "config": cfg, "seed": seed, "elements": symbols,
                "per_type_energy_shifts_eV": dict(zip(symbols, shifts, strict=True)),
                "epochs": _epochs_run(workdir), "training_time_s": round(wall, 2),
                "model_file": MODEL_FILE, "n_train": len(train), "n_valid": len(valid),
                "nequip_version": _nequip_version()}
        write_model_meta(workdir, meta)
        adapter = cls.load(workdir, device=device)
        adapter.meta["metrics"] = _metrics(adapter, valid, test, workdir, device)
        write_model_meta(workdir, adapter.meta)
        return adapter

    # -- loading / saving ---------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> NequIPAdapter:
        """Load a model folder written by ``train``/``save``.

        The eager model comes from ``best.ckpt``.
        """
        from common.md.runner import check_device

        check_device(device)
        path = Path(path)
        meta = read_model_meta(path, NequIPAdapter.name, "NequIP")
        ckpt = path / meta.get("model_file", MODEL_FILE)
        if not ckpt.exists():
            raise ConfigError("the model file is missing", where=str(ckpt),
                              fix="retrain, or copy the whole model folder")
        return cls(path, load_checkpoint(ckpt, device), meta, device)

    def save(self, path: str | Path) -> Path:
        """Write the model folder.

        It holds nequip's checkpoint, the compile example, any compiled artifacts and
        ``mlp-cases-model.json``.
        """
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        files = [self.meta.get("model_file", MODEL_FILE), EXAMPLE_FILE, CONFIG_FILE,
                 *self.meta.get("compiled", {}).values()]
        for name in files:
            src = self.path / name
            if src.exists() and src.resolve() != (path / name).resolve():
                shutil.copy2(src, path / name)
        write_model_meta(path, self.meta)
        return path

    def compile(self, target: str = "ase", device: str | None = None) -> Path:
        """Compile the model with ``nequip-compile --mode aotinductor --target <target>``.

        ``target``: ``"ase"`` (single structures: :meth:`calculator` with ``compiled=True``) or
        ``"batch"`` (many systems: :meth:`batched` with ``compiled=True``). ``device``: the
        device the artifact runs on (default: the adapter's). Takes 30 s to a few minutes per
        target on a CPU. Returns the artifact's path (also recorded in ``meta["compiled"]``).
        """
        from common.md.runner import check_device

        if target not in COMPILE_TARGETS:
            raise ConfigError(f"unknown compile target {target!r}", where="target",
                              fix=f"use one of {', '.join(COMPILE_TARGETS)}")
        device = device or self.device
        check_device(device)
        data_path = _write_example_data(self.path, self.meta)
        out = COMPILE_TARGETS[target]
        args = ["nequip-compile", str(self.path / self.meta.get("model_file", MODEL_FILE)),
                out, "--mode", "aotinductor", "--device", device, "--target", target,
                "--data-path", str(data_path)]
        wall = run_nequip(args, self.path, f"nequip_compile_{target}.log", "nequip-compile")
        self.meta.setdefault("compiled", {})[target] = out
        self.meta.setdefault("compile_time_s", {})[target] = round(wall, 2)
        self.meta.setdefault("compiled_device", {})[target] = device
        write_model_meta(self.path, self.meta)
        return self.path / out

    # -- using --------------------------------------------------------------------------
    def calculator(self, compiled: bool = False):
        """Return nequip's own ASE calculator (``nequip.integrations.ase.NequIPCalculator``).

        It runs on the eager model, or on the ``ase`` artifact of :meth:`compile` with
        ``compiled``; it refuses elements the model was not trained on with a DataError.
        """
        from common.frameworks import import_nequip

        import_nequip()
        from nequip.integrations.ase import NequIPCalculator

        cls = _checked_calculator_class(NequIPCalculator)
        allowed = element_numbers(self.elements)
        if compiled:
            artifact = self._artifact("ase")
            with _nequip_state():
                return cls.from_compiled_model(str(artifact), device=self.device,
                                               chemical_species_to_atom_type_map=True,
                                               allowed=allowed)
        model = copy.deepcopy(self.model).eval()
        return cls(model=model, device=self.device, allowed=allowed,
                   transforms=_transforms(self.elements, self.cutoff))

    def batched(self, dtype: torch.dtype = torch.float64, compiled: bool = False
                ) -> NequIPBatched:
        """Return the module for the batched MD engine (eV, eV/Å, eV/Å^3 in the state's dtype).

        It wraps the eager model, or the ``batch`` artifact of :meth:`compile` with ``compiled``.
        """
        model = copy.deepcopy(self.model)
        compiled_model = None
        if compiled:
            compiled_model = load_compiled(self._artifact("batch"), self.device)
        return NequIPBatched(model, self.cutoff, self.elements, compiled=compiled_model
                             ).to(dtype)

    def _artifact(self, target: str) -> Path:
        name = self.meta.get("compiled", {}).get(target)
        if name is None or not (self.path / name).exists():
            raise ConfigError(f"no compiled {target!r} model in this folder",
                              where=str(self.path), fix=f"call compile(target={target!r}) first")
        device = self.meta.get("compiled_device", {}).get(target, "cpu")
        if torch.device(device) != torch.device(self.device):
            raise ConfigError(f"the {target!r} artifact was compiled for {device}, not "
                              f"{self.device}", where=str(self.path / name),
                              fix=f"compile(target={target!r}, device={self.device!r})")
        return self.path / name


def train_committee(train, valid, workdir: str | Path, n_models: int = COMMITTEE_SIZE,
                    config: dict | str | None = None, seed: int = 0, **train_kw: Any
                    ) -> tuple[Path, list[NequIPAdapter]]:
    """Train a committee of ``n_models`` NequIP models differing only in their seed.

    The seeds are ``seed``, ``seed + 1``, ...; each model goes to ``workdir/member_k`` and the
    committee folder is recorded (:func:`common.potential.committee.train_committee`);
    ``load_committee_folder`` gives the committee's mean and its force deviation. Returns (folder,
    members).
    """
    from common.potential.committee import train_committee as train_members

    return train_members(NequIPAdapter, train, valid, workdir, n_models, config=config,
                         seed=seed, **train_kw)


# -- helpers of train / load ------------------------------------------------------------------


def _prepare_workdir(workdir, train, valid, cfg) -> Path:
    """Create ``workdir`` with the frames as extxyz and the compile example.

    A stale checkpoint of an earlier run is removed (Lightning would write ``best-v1.ckpt``).
    """
    from common.data import Dataset
    from common.data.export import export_extxyz

    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / MODEL_FILE).unlink(missing_ok=True)
    for frames, name in ((train, TRAIN_FILE), (valid, VALID_FILE)):
        ds = frames if isinstance(frames, Dataset) else Dataset.from_frames(list(frames))
        export_extxyz(ds, workdir / name, overwrite=True)
    _write_example(train, workdir / EXAMPLE_FILE, cfg["cutoff_A"])
    return workdir


def _write_example(frames, path: Path, cutoff_A: float) -> None:
    """Write the compile example: the largest frame, unlabelled, in a periodic box.

    A molecule gets a cubic box with ``cutoff + 2 Å`` of vacuum around it: nequip-compile checks
    the stress it traces.
    """
    import ase.io

    a = max(frames, key=len).copy()
    a.calc = None
    if not a.pbc.all() or abs(a.cell.volume) < 1e-9:
        a.pbc, span = True, np.ptp(a.positions, axis=0).max()
        a.cell = np.eye(3) * (span + 2 * cutoff_A + 4.0)
        a.center()
    a.info, a.arrays = {}, {k: v for k, v in a.arrays.items() if k in ("numbers", "positions")}
    ase.io.write(path, a, format="extxyz")


def _write_yaml(cfg: dict[str, Any], path: Path) -> None:
    import yaml

    path.write_text("# written by atmospheric.model from our config; nequip-train reads it\n"
                    + yaml.safe_dump(cfg, sort_keys=False))


def _epochs_run(workdir: Path) -> int | None:
    """Epochs nequip ran (from Lightning's CSV log), or None if there is no log."""
    import csv

    log = workdir / "lightning_logs" / "version_0" / "metrics.csv"
    if not log.exists():
        return None
    with open(log) as f:
        epochs = [int(r["epoch"]) for r in csv.DictReader(f) if r.get("epoch")]
    return max(epochs) + 1 if epochs else None


def _nequip_version() -> str:
    from importlib.metadata import version

    return version("nequip")


def load_checkpoint(ckpt: str | Path, device: str = "cpu") -> torch.nn.Module:
    """Load nequip's eager model from a checkpoint (``load_saved_model``), in eval mode.

    The model is on ``device``; nequip's info lines and warnings are silenced for the call.
    """
    import logging
    import warnings

    logger = logging.getLogger("nequip")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with _nequip_state(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from nequip.model.saved_models.load_utils import load_saved_model

            model = load_saved_model(str(ckpt), compile_mode="eager")
    finally:
        logger.setLevel(level)
    return model.to(device).eval()


def load_compiled(artifact: str | Path, device: str = "cpu") -> torch.nn.Module:
    """Load a ``--target batch`` artifact of nequip-compile as nequip's dict-in/dict-out module."""
    from nequip.model.inference_models import load_compiled_model
    from nequip.scripts._compile_utils import AOTI_BATCH_TARGET, COMPILE_TARGET_DICT

    target = COMPILE_TARGET_DICT[AOTI_BATCH_TARGET]
    with _nequip_state():
        model, _ = load_compiled_model(str(artifact), device, list(target["input"]),
                                       list(target["output"]))
    return model


def _transforms(symbols, cutoff_A: float) -> list:
    """Return nequip's inference transforms: element -> type, neighbour list within r_max."""
    from nequip.data.transforms import ChemicalSpeciesToAtomTypeMapper, NeighborListTransform

    return [ChemicalSpeciesToAtomTypeMapper(model_type_names=list(symbols),
                                            chemical_species_to_atom_type_map={
                                                s: s for s in symbols}),
            NeighborListTransform(r_max=cutoff_A)]


def _write_example_data(folder: Path, meta: dict[str, Any]) -> Path:
    """Write nequip-compile's ``--data-path`` file.

    It holds the compile example as nequip's batched AtomicDataDict, saved as the buffers of a
    TorchScript module (how nequip-compile reads it). Independent of where the training data was,
    so a copied model folder compiles.
    """
    import ase.io
    from nequip.data import AtomicDataDict, from_ase

    if not (folder / EXAMPLE_FILE).exists():
        raise ConfigError("the compile example is missing", where=str(folder / EXAMPLE_FILE),
                          fix="copy the whole model folder (save() writes it)")
    atoms = ase.io.read(folder / EXAMPLE_FILE, format="extxyz")
    with _float64_default():
        data = from_ase(atoms)
        for t in _transforms(meta["elements"], float(meta["config"]["cutoff_A"])):
            data = t(data)
        data = AtomicDataDict.with_batch_(data)
    holder = torch.nn.Module()
    for k, v in data.items():
        holder.register_buffer(k, v.contiguous().clone())
    path = folder / "compile_data.pt"
    torch.jit.script(holder).save(str(path))
    return path


def _metrics(adapter: NequIPAdapter, valid, test, workdir: Path, device: str) -> dict[str, Any]:
    from common.training import error_metrics, parity_plot

    metrics = {"valid": error_metrics(adapter.batched(), valid, device=device)}
    if test is not None and len(test):
        metrics["test"] = error_metrics(adapter.batched(), test, device=device)
        parity_plot(adapter.batched(), test, workdir / "parity_test.png",
                    title=f"NequIP, test set ({len(test)} frames)", device=device)
    return metrics


# -- ASE calculator -----------------------------------------------------------------------------


@functools.cache
def _checked_calculator_class(base):
    """Subclass nequip's ASE calculator ``base`` to check elements and dtype.

    It refuses unseen elements before nequip's type mapper sees them, and builds its data in
    float64 (nequip's data dtype) whatever the caller's default dtype.
    """

    class CheckedNequIPCalculator(base):
        def __init__(self, *args, allowed=None, **kwargs):
            super().__init__(*args, **kwargs)
            self.allowed = allowed

        def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
            if self.allowed is not None:
                a = atoms if atoms is not None else self.atoms
                check_elements(a.numbers, self.allowed,
                               structure=f"structure {a.get_chemical_formula()}")
            with _float64_default():
                super().calculate(atoms, list(properties), system_changes)

    return CheckedNequIPCalculator


# -- batched module -------------------------------------------------------------------------


class NequIPBatched(BatchedPotential):
    """A nequip model as a BatchedPotential.

    The engine's full neighbour list, cut at nequip's r_max, becomes nequip's
    ``edge_index = [i, j]`` and ``edge_cell_shift = S`` (integer shifts) with the state's
    ``cell``, ``batch`` and ``num_atoms``: nequip builds r_ij = x_j - x_i + S h itself, so its
    ``ForceStressOutput`` differentiates through positions *and* cells and its stress is the
    strain derivative (zero for systems without a cell, where nequip gives NaN).

    Data go to nequip in float64 (its data dtype); the model keeps its ``model_dtype`` and
    device when the module is cast; results come in the state's dtype (a float32 state gets
    float32 results from the same model).
    ``compiled``: a ``--target batch`` AOTInductor artifact used instead of the eager model
    (a single system is run as a pair of copies, since the artifact needs at least two frames;
    a batch with fewer than two edges runs eagerly).
    """

    needs_grad = True
    has_stress = True

    def __init__(self, model: torch.nn.Module, cutoff: float, symbols,
                 compiled: torch.nn.Module | None = None):
        super().__init__()
        from ase.data import atomic_numbers

        self.model = model.eval()
        self.compiled = _Shared(compiled)  # not a submodule: an AOTI artifact is not cast
        self.cutoff = float(cutoff)
        self.elements = element_numbers(symbols)
        device = next(model.parameters()).device
        table = torch.full((119,), -1, dtype=torch.long, device=device)
        for k, s in enumerate(symbols):
            table[atomic_numbers[s]] = k
        self.register_buffer("type_of_z", table, persistent=False)

    def _apply(self, fn, recurse=True):
        """Follow device moves only.

        The nequip model keeps its ``model_dtype`` and takes float64 data; results come back in the
        state's dtype.
        """
        device = fn(torch.zeros(1, device=self.type_of_z.device)).device
        self.model._apply(lambda t: t.to(device))
        self.type_of_z = self.type_of_z.to(device)
        return self

    def forward(self, state: BatchState, neighbors: NeighborList,
                compute_stress: bool = False) -> dict[str, torch.Tensor]:
        """Return energies, forces (and stress with ``compute_stress``) in the state's dtype."""
        data = self.graph(state, neighbors)
        compiled = self.compiled.value
        if compiled is not None and data["edge_index"].shape[1] < 2:
            compiled = None  # the artifact's edge dimension starts at 2: run eagerly
        if compiled is not None and state.n_systems == 1:
            out = _first_of_pair(compiled, data, state.n_atoms)
        elif compiled is not None:
            out = compiled(data)
        else:
            with torch.enable_grad():
                out = self.model(data)
        dt = state.dtype
        result = {"energy": out["total_energy"].detach().reshape(-1).to(dt),
                  "forces": out["forces"].detach().to(dt)}
        if compute_stress:
            periodic = (state.pbc.any(-1) & (torch.linalg.det(state.cells.detach()).abs() > 0))
            stress = out["stress"].detach().reshape(-1, 3, 3)
            result["stress"] = torch.where(periodic[:, None, None], stress,
                                           torch.zeros_like(stress)).to(dt)
        return result

    def graph(self, state: BatchState, neighbors: NeighborList) -> dict[str, torch.Tensor]:
        """Build nequip's batched AtomicDataDict for ``state`` (float64, pairs within r_max)."""
        i, j, shifts, _, psys = neighbors.pairs()
        pos = state.positions.detach().to(torch.float64)
        cells = state.cells.detach().to(torch.float64)
        shifts = shifts.to(torch.float64)
        rij = pos[j] - pos[i] + torch.einsum("pa,pab->pb", shifts, cells[psys])
        keep = (rij * rij).sum(-1) < self.cutoff**2
        return {"pos": pos, "edge_index": torch.stack([i[keep], j[keep]]),
                "edge_cell_shift": shifts[keep].contiguous(), "cell": cells,
                "batch": state.system_idx, "num_atoms": state.atoms_per_system(),
                "atom_types": self.type_of_z[state.numbers]}


class _Shared:
    """Holds an object that ``copy.deepcopy`` shares instead of copying (a compiled model)."""

    def __init__(self, value):
        self.value = value

    def __deepcopy__(self, memo):
        return self


def _first_of_pair(compiled, data: dict[str, torch.Tensor], n: int) -> dict[str, torch.Tensor]:
    """Run a one-system batch as two identical systems; return the first one's results."""
    pair = {"pos": data["pos"].repeat(2, 1),
            "edge_index": torch.cat([data["edge_index"], data["edge_index"] + n], dim=1),
            "edge_cell_shift": data["edge_cell_shift"].repeat(2, 1),
            "cell": data["cell"].repeat(2, 1, 1),
            "batch": torch.cat([data["batch"], data["batch"] + 1]),
            "num_atoms": data["num_atoms"].repeat(2),
            "atom_types": data["atom_types"].repeat(2)}
    out = compiled(pair)
    return {"total_energy": out["total_energy"][:1], "forces": out["forces"][:n],
            "stress": out["stress"][:1]}
