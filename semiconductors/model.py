"""MACE through mace-torch.

Train with mace's own trainer, load, ASE calculator (mace's ``MACECalculator``), the batched module
the common MD engine runs, and committees.

* Training runs ``mace_run_train`` (``mace.cli.run_train``) in a child process on extended
  XYZ files written by :func:`common.data.export.export_extxyz` (labels under ``REF_energy``,
  ``REF_forces``, ``REF_stress``), with arguments built from the config
  (:func:`training_arguments`). The model is mace's ``ScaleShiftMACE``: isolated-atom energies
  E0 (``e0s_eV`` in the config, given explicitly -- mace's ``average`` fit is ill-conditioned
  on near-stoichiometric data such as GaN) plus scaled atomic interaction energies shifted by
  their training-set mean. The child skips one step of mace's script, the TorchScript copy
  (``mace_compiled.model``, about 6 s): nothing here loads it.
* The model folder holds mace's ``mace.model`` (``mace_stagetwo.model`` after a stage-two run),
  mace's logs and checkpoints, and ``mlp-cases-model.json`` (config, elements, metrics).
  A ``.model`` file is a pickled torch module, loaded with ``weights_only=False`` as mace's own
  calculator does: load only model folders you trust.
* The batched module gives mace's model a batch built from the engine's state and neighbour
  list (edge_index = (i, j), shifts = S h from the integer shifts and the state's cells), so
  the strain derivative reaches the edge vectors: energy per system, forces by autograd and
  the stress of periodic systems by :func:`common.potential.stress.energy_forces_stress`.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

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
NAME = "mace"  # mace's --name: files mace.model, mace_stagetwo.model
MODEL_FILE = f"{NAME}.model"
STAGE_TWO_FILE = f"{NAME}_stagetwo.model"
E0S_FITS = ("average", "estimated")  # mace's own E0 fits, allowed but not recommended
DTYPES = ("float64", "float32")
#: models in a committee (the mean and the force deviation of common.potential.committee)
COMMITTEE_SIZE = 4


@dataclass(frozen=True)
class MACEConfig(ConfigSchema):
    """The keys of ``configs/mace_*.json`` (mace_run_train's flags of the same names).

    Architecture: cutoff ``r_max_A`` (Å), ``num_channels``, ``max_L`` (message equivariance),
    ``correlation`` (body order - 1), ``num_interactions``, ``max_ell`` (spherical harmonics),
    radial basis size and cutoff polynomial order. ``e0s_eV``: isolated-atom energy per element
    symbol (eV), or ``"average"``/``"estimated"`` for mace's own fits. Training: batch sizes,
    Adam learning rate, epochs, early-stopping patience (epochs), loss weights (a zero
    ``stress_weight`` leaves stress out), exponential moving average of the weights,
    stage two (mace's SWA-style finish: from ``stage_two_from_epoch`` on, a lower learning rate
    and a higher energy weight; null: no stage two), and the dtype of training.
    """

    r_max_A: float
    num_channels: int
    max_L: int
    correlation: int
    num_interactions: int
    max_ell: int
    num_radial_basis: int
    num_cutoff_basis: int
    e0s_eV: dict[str, float] | str
    batch_size: int
    valid_batch_size: int
    lr: float
    max_num_epochs: int
    patience: int
    energy_weight: float
    forces_weight: float
    stress_weight: float
    ema: bool
    ema_decay: float
    stage_two_from_epoch: int | None
    stage_two_lr: float
    stage_two_energy_weight: float
    stage_two_forces_weight: float
    default_dtype: str


def load_config(scale_or_path: str | Path = "tiny", **overrides: Any) -> dict[str, Any]:
    """MACE hyperparameters.

    ``tiny``, ``paper`` (the seed's) or a JSON file, plus overrides; a missing, unknown or
    impossible key is a one-line ConfigError naming it.
    """
    from common.config import load_json_config

    cfg = load_json_config(scale_or_path, CONFIGS, "mace", what="MACE config",
                           schema=MACEConfig, **overrides).to_dict()
    _check_values(cfg, where=str(scale_or_path))
    return cfg


def _checked_config(config: dict | str | Path | None) -> dict[str, Any]:
    return checked_model_config(config, MACEConfig, load_config, _check_values)


def _check_values(cfg: dict[str, Any], where: str) -> None:
    """Values the schema's types cannot catch."""
    def need(ok: bool, what: str, fix: str) -> None:
        if not ok:
            raise ConfigError(what, where=where, fix=fix)

    positive = ("r_max_A", "num_channels", "correlation", "num_interactions", "max_ell",
                "num_radial_basis", "num_cutoff_basis", "batch_size", "valid_batch_size", "lr",
                "max_num_epochs", "patience", "stage_two_lr")
    for key in positive:
        need(cfg[key] > 0, f"{key} must be > 0 (got {cfg[key]})", f"give a positive {key}")
    need(cfg["max_L"] >= 0, f"max_L must be >= 0 (got {cfg['max_L']})", "give 0, 1 or 2")
    for key in ("energy_weight", "forces_weight", "stress_weight"):
        need(cfg[key] >= 0, f"{key} must be >= 0 (got {cfg[key]})", f"give {key} >= 0")
    need(0 < cfg["ema_decay"] < 1, f"ema_decay must be in (0, 1) (got {cfg['ema_decay']})",
         "mace's default is 0.99")
    need(cfg["default_dtype"] in DTYPES, f"default_dtype {cfg['default_dtype']!r} unknown",
         f"use one of {', '.join(DTYPES)}")
    e0s = cfg["e0s_eV"]
    numbers = isinstance(e0s, dict) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in e0s.values())
    need(numbers or e0s in E0S_FITS, f"e0s_eV {e0s!r} is neither a dict of "
         "element energies nor a fit mace knows", 'give {"Ga": 0.0, "N": 0.0} (eV per '
         f"isolated atom), or one of {', '.join(E0S_FITS)}")
    start = cfg["stage_two_from_epoch"]
    need(start is None or 0 < start < cfg["max_num_epochs"], f"stage_two_from_epoch {start} "
         f"is not within the {cfg['max_num_epochs']} epochs", "give an epoch in between, or "
         "null for no stage two")


# -- running mace's trainer -----------------------------------------------------------------

#: what the child process runs: mace's own ``mace_run_train`` (mace.cli.run_train.main),
#: without the TorchScript copy it would write after training (nothing here loads it)
_DRIVER = """
import sys
from e3nn.util import jit

def _not_compiled(*args, **kwargs):
    raise RuntimeError("mlp-cases loads mace.model; the TorchScript copy is skipped")

jit.compile = _not_compiled
from mace.cli.run_train import main
sys.argv = ["mace_run_train", *sys.argv[1:]]
main()
"""


def training_arguments(cfg: dict[str, Any], files: dict[str, Path], workdir: Path, seed: int,
                       device: str, symbols: list[str]) -> list[str]:
    """mace_run_train's command line for ``cfg``.

    The data ``files`` (``train``, ``valid``, optional ``test``), everything written under
    ``workdir``.
    """
    args = {
        "name": NAME, "seed": seed, "work_dir": workdir, "model_dir": workdir,
        "log_dir": workdir / "logs", "checkpoints_dir": workdir / "checkpoints",
        "results_dir": workdir / "results", "device": device.split(":")[0],
        "default_dtype": cfg["default_dtype"], "model": "ScaleShiftMACE",
        "train_file": files["train"], "valid_file": files["valid"],
        "energy_key": "REF_energy", "forces_key": "REF_forces", "stress_key": "REF_stress",
        "E0s": _e0s_argument(cfg["e0s_eV"], symbols), "r_max": cfg["r_max_A"],
        "plot": False, "pin_memory": False, "error_table": "PerAtomRMSE",
    }
    if "test" in files:
        args["test_file"] = files["test"]
    copied = ("num_channels", "max_L", "correlation", "num_interactions", "max_ell",
              "num_radial_basis", "num_cutoff_basis", "batch_size", "valid_batch_size", "lr",
              "max_num_epochs", "patience", "energy_weight", "forces_weight")
    args.update({k: cfg[k] for k in copied})
    options, flags = _optional_arguments(cfg)
    return [f"--{k}={v}" for k, v in {**args, **options}.items()] + flags


def _optional_arguments(cfg: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Return mace's options for stress in the loss, EMA and stage two.

    As (options with values, mace's store_true flags).
    """
    options, flags = {}, []
    if cfg["stress_weight"] > 0:
        options.update(loss="stress", compute_stress=True, stress_weight=cfg["stress_weight"])
    if cfg["ema"]:
        flags.append("--ema")
        options["ema_decay"] = cfg["ema_decay"]
    if cfg["stage_two_from_epoch"] is not None:
        flags.append("--stage_two")
        options.update(start_stage_two=cfg["stage_two_from_epoch"],
                       stage_two_lr=cfg["stage_two_lr"],
                       stage_two_energy_weight=cfg["stage_two_energy_weight"],
                       stage_two_forces_weight=cfg["stage_two_forces_weight"])
    return options, flags


def _e0s_argument(e0s: dict[str, float] | str, symbols: list[str]) -> str:
    """Return mace's ``--E0s`` argument.

    A fit name, or ``{Z: eV}`` for the training set's elements.
    """
    from ase.data import atomic_numbers

    if isinstance(e0s, str):
        return e0s
    missing = [s for s in symbols if s not in e0s]
    if missing:
        raise ConfigError(f"e0s_eV has no energy for {missing[0]} (the training set holds "
                          f"{', '.join(symbols)})", where="config e0s_eV",
                          fix=f"add the isolated-atom energy of {missing[0]} (eV)")
    return str({atomic_numbers[s]: float(e0s[s]) for s in symbols})


def run_mace(args: list[str], workdir: Path, device: str = "cpu", progress: bool = False,
             threads: int | None = None) -> float:
    """Run mace_run_train with ``args`` in a child process; returns the wall time (s).

    Its output goes to ``workdir/mace_train.out`` (to the terminal with ``progress``);
    ``threads`` sets the child's OpenMP/torch thread count (default: torch's own choice).

    Raises
    ------
    ConfigError
        mace failed; the message quotes its last line and names the log.
    """
    out_path = workdir / "mace_train.out"
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        out = None if progress else stack.enter_context(open(out_path, "w"))
        proc = subprocess.run([sys.executable, "-c", _DRIVER, *args], cwd=workdir,
                              env=_child_env(device, threads), stdout=out,
                              stderr=subprocess.STDOUT if out else None, check=False)
    if proc.returncode != 0 or not (workdir / MODEL_FILE).exists():
        raise ConfigError(f"MACE training failed (exit {proc.returncode}): "
                          f"{_last_line(out_path)}", where=str(out_path),
                          fix="read the log; check the config and the data")
    return time.perf_counter() - start


def _child_env(device: str, threads: int | None = None) -> dict[str, str]:
    """``cuda:N`` becomes the only visible GPU of the child (mace takes ``--device cuda``).

    ``threads`` sets its OpenMP and MKL thread counts (torch takes its own from them), so
    committee members trained side by side do not oversubscribe the cores.
    """
    env = dict(os.environ)
    if threads is not None:
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[name] = str(int(threads))
    if device.startswith("cuda:"):
        visible = env.get("CUDA_VISIBLE_DEVICES")
        ids = visible.split(",") if visible else [str(k) for k in
                                                   range(torch.cuda.device_count())]
        env["CUDA_VISIBLE_DEVICES"] = ids[int(device.split(":")[1])]
    return env


def _last_line(path: Path) -> str:
    try:
        lines = [x.strip() for x in path.read_text(errors="replace").splitlines() if x.strip()]
    except OSError:
        return "(no output written)"
    return lines[-1][-300:] if lines else "(no output)"


# -- the adapter ----------------------------------------------------------------------------


class MACEAdapter:
    """A trained MACE potential (see :class:`common.potential.protocol.ModelAdapter`)."""

    name: ClassVar[str] = "mace"
    #: ``mace_run_train`` runs in a child process: committee members train side by side in
    #: threads
    trains_in_subprocess: ClassVar[bool] = True

    def __init__(self, path: Path, model: torch.nn.Module, meta: dict, device: str = "cpu"):
        self.path, self.model, self.meta, self.device = Path(path), model, meta, device

    @property
    def cutoff(self) -> float:
        """The model's cutoff: mace's r_max, Å."""
        return float(self.model.r_max)

    @property
    def elements(self) -> tuple[str, ...] | None:
        """Element symbols of the training set, sorted by atomic number."""
        els = self.meta.get("elements")
        return tuple(els) if els else None

    # -- training -----------------------------------------------------------------------
    @classmethod
    def train(cls, train, valid, workdir: str | Path, config: dict | str | None = None,
              seed: int = 0, test=None, device: str = "cpu", progress: bool = False,
              threads: int | None = None) -> MACEAdapter:
        """Train MACE with mace_run_train on ``train``, score it on ``test``.

        Early stopping on ``valid``; ``threads``: the training process's OpenMP/torch threads
        (default: torch's own choice; committees trained side by side get their share).

        Everything mace writes stays in ``workdir``; ``workdir/mlp-cases-model.json``
        records the config, the training set's elements, the metrics (energy eV/atom, forces
        eV/Å) and the training time. ``device`` and the config are checked before anything is
        written.
        """
        from common.md.runner import check_device
        from common.training import check_training_data

        check_device(device)
        cfg = _checked_config(config)
        check_training_data(train, valid, test)
        symbols = elements_of(train)
        _e0s_argument(cfg["e0s_eV"], symbols)
        workdir = Path(workdir).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        _clear_previous_run(workdir)
        files = _export(train, valid, test, workdir)
        args = training_arguments(cfg, files, workdir, seed, device, symbols)
        seconds = run_mace(args, workdir, device=device, progress=progress, threads=threads)
        model_file = STAGE_TWO_FILE if (workdir / STAGE_TWO_FILE).exists() else MODEL_FILE
        meta = {"framework": cls.name, "config": cfg, "seed": seed, "elements": symbols,
                "model_file": model_file, "n_train": len(train), "n_valid": len(valid),
                "train_seconds": round(seconds, 1), "mace_version": _mace_version()}
        with _IN_PROCESS:  # torch.fx tracing in mace/e3nn is not thread safe
            adapter = cls(workdir, _load_model(workdir / model_file, device), meta, device)
            adapter.meta["metrics"] = _metrics(adapter, valid, test, workdir, device)
        write_model_meta(workdir, adapter.meta)
        return adapter

    # -- loading / saving ---------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> MACEAdapter:
        """Load a saved model folder (written by ``train`` or ``save``)."""
        from common.md.runner import check_device

        check_device(device)
        path = Path(path)
        meta = read_model_meta(path, MACEAdapter.name, "MACE")
        model_file = path / meta.get("model_file", MODEL_FILE)
        if not model_file.exists():
            raise ConfigError("the model file is missing", where=str(model_file),
                              fix="retrain, or copy the whole model folder")
        return cls(path, _load_model(model_file, device), meta, device)

    def save(self, path: str | Path) -> Path:
        """Write the model folder: mace's ``.model`` file and ``mlp-cases-model.json``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        torch.save(self.model, path / self.meta.get("model_file", MODEL_FILE))
        write_model_meta(path, self.meta)
        return path

    # -- using --------------------------------------------------------------------------
    def calculator(self):
        """Return mace's own ``MACECalculator`` in float64.

        It refuses elements the model was not trained on with a DataError. A float64 model
        is shared (the calculator only freezes its parameters), any other is converted on a
        copy.
        """
        base = _mace_calculator_class()
        model = self.model if _dtype_of(self.model) == torch.float64 else copy.deepcopy(
            self.model)
        return _checked_calculator_class(base)(
            models=[model], device=self.device, default_dtype="float64",
            allowed=element_numbers(self.elements))

    def batched(self, dtype: torch.dtype = torch.float64) -> MACEBatched:
        """Return the torch module for the batched MD engine (eV, eV/Å, eV/Å^3) in ``dtype``.

        It shares the adapter's model until converted (see :class:`MACEBatched`).
        """
        return MACEBatched(self.model, dtype=dtype, elements=element_numbers(self.elements))


def train_committee(train, valid, workdir: str | Path, n_models: int = COMMITTEE_SIZE,
                    config: dict | str | None = None, seed: int = 0, *, workers: int = 1,
                    **train_kw: Any) -> tuple[Path, list[MACEAdapter]]:
    """Train ``n_models`` MACE models that differ only in their seed.

    The seeds are ``seed``, ``seed + 1``, ...; the members train in ``workdir/member_k`` and the
    committee folder is recorded (:func:`common.potential.committee.train_committee`; load it
    with ``common.potential.committee.load_committee_folder``). Returns (folder, members).

    ``workers`` > 1 trains that many members at the same time (threads here, each waiting for
    its own ``mace_run_train`` process of ``cpu_count // workers`` threads); the folder is the
    same as the sequential one's.
    """
    from common.potential.committee import train_committee as train_members

    return train_members(MACEAdapter, train, valid, workdir, n_models, config=config,
                         seed=seed, parallel=workers, **train_kw)


#: serialises the in-process part of training (loading and scoring the model) when members
#: train in threads (``train_committee(workers=...)``); mace_run_train itself runs in parallel
_IN_PROCESS = threading.Lock()


def _load_model(path: Path, device: str) -> torch.nn.Module:
    """Load mace's pickled model (``weights_only=False``, as mace's calculator loads it)."""
    _import_mace()
    # unpickling imports mace's modules, one of which prints a cuequivariance notice on
    # stdout: send it to stderr, so a command's --json output stays one JSON object
    with contextlib.redirect_stdout(sys.stderr):
        model = torch.load(path, map_location=device, weights_only=False)
    return model.eval()


def _clear_previous_run(workdir: Path) -> None:
    """Remove what an earlier training in ``workdir`` left that mace would pick up.

    Its model files and its checkpoints (mace evaluates the highest-epoch checkpoint it finds).
    """
    for old in (workdir / MODEL_FILE, workdir / STAGE_TWO_FILE,
                *(workdir / "checkpoints").glob(f"{NAME}_run-*")):
        old.unlink(missing_ok=True)


def _export(train, valid, test, workdir: Path) -> dict[str, Path]:
    """Write extended XYZ files with REF_* labels (common.data.export) for mace's reader."""
    from common.data import Dataset
    from common.data.export import export_extxyz

    splits = {"train": train, "valid": valid}
    if test is not None and len(test):
        splits["test"] = test
    return {name: export_extxyz(Dataset.from_frames(list(frames)),
                                workdir / "data" / f"{name}.xyz", overwrite=True)
            for name, frames in splits.items()}


def _metrics(adapter: MACEAdapter, valid, test, workdir: Path, device: str
             ) -> dict[str, Any]:
    from common.training import error_metrics, parity_plot

    pot = adapter.batched()
    metrics = {"valid": error_metrics(pot, valid, device=device)}
    if test is not None and len(test):
        metrics["test"] = error_metrics(pot, test, device=device)
        parity_plot(pot, test, workdir / "parity_test.png",
                    title=f"MACE, test set ({len(test)} frames)", device=device)
    return metrics


def _dtype_of(model: torch.nn.Module) -> torch.dtype:
    return next(model.parameters()).dtype


def _mace_version() -> str:
    import importlib.metadata as md

    return md.version("mace-torch")


# -- ASE calculator -------------------------------------------------------------------------


def _import_mace():
    from common.frameworks import import_mace

    return import_mace()


def _mace_calculator_class():
    """Return ``mace.calculators.MACECalculator``.

    Importing it sets TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 process-wide, which is undone here (as
    ``common.frameworks.import_mace`` does for ``import mace``).
    """
    _import_mace()
    before = os.environ.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
    try:
        from mace.calculators.mace import MACECalculator
    finally:
        if before is None:
            os.environ.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)
        else:
            os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = before
    return MACECalculator


@functools.cache
def _checked_calculator_class(base):
    """Return mace's MACECalculator, refusing unseen elements before mace sees them.

    Without the check its atomic number table would fail with a bare ValueError.
    """

    class CheckedMACECalculator(base):
        def __init__(self, *args, allowed=None, **kwargs):
            with _quiet_mace():
                super().__init__(*args, **kwargs)
            self.allowed = allowed

        def calculate(self, atoms=None, properties=None, system_changes=all_changes):
            if self.allowed is not None:
                a = atoms if atoms is not None else self.atoms
                check_elements(a.numbers, self.allowed,
                               structure=f"structure {a.get_chemical_formula()}")
            super().calculate(atoms, properties, system_changes)

    return CheckedMACECalculator


@contextlib.contextmanager
def _quiet_mace():
    """Raise the root logger to ERROR while mace's calculator is made.

    mace's calculator logs its dtype choice and head at WARNING/INFO on the root logger.
    """
    import logging

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


# -- batched module -------------------------------------------------------------------------


class MACEBatched(BatchedPotential):
    """A mace model as a BatchedPotential.

    The engine's full neighbour list (pairs within r_max) becomes mace's graph:
    ``edge_index = (i, j)`` (sender, receiver), ``shifts = S h`` from the integer shifts S and
    the state's (possibly strained) cells, ``node_attrs`` one-hot over the model's atomic
    numbers, ``batch`` the system index. Energy per system (mace's E0s + interaction energy),
    forces and stress by autograd (:func:`common.potential.stress.energy_forces_stress`).

    Copying a mace model costs about a second (e3nn re-traces its generated code), so the
    module shares the model it is given when that is already in ``dtype``, and copies it
    before its first conversion (``.to(...)``, ``.float()``, ...), which therefore never
    changes the adapter's model.
    """

    needs_grad = True
    has_stress = True

    def __init__(self, model: torch.nn.Module, dtype=torch.float64,
                 elements: frozenset[int] | None = None):
        super().__init__()
        self._owns_model = _dtype_of(model) != dtype
        if self._owns_model:
            model = copy.deepcopy(model).to(dtype)
        self.model = model.eval().requires_grad_(False)
        self.cutoff = float(model.r_max)
        self.elements = elements
        zs = [int(z) for z in model.atomic_numbers]
        index = torch.full((max(zs) + 1,), -1, dtype=torch.long)
        index[zs] = torch.arange(len(zs))
        self.register_buffer("z_index", index, persistent=False)

    def _apply(self, fn, recurse=True):
        """Copy a shared model before converting it (copy on write)."""
        if not self._owns_model:
            self.model, self._owns_model = copy.deepcopy(self.model), True
        return super()._apply(fn, recurse)

    def forward(self, state: BatchState, neighbors: NeighborList,
                compute_stress: bool = False) -> dict[str, torch.Tensor]:
        """Return energy per system, forces and, if asked, the stress of the model."""
        from common.potential.stress import energy_forces_stress

        return energy_forces_stress(self.energy, state, neighbors,
                                    compute_stress=compute_stress)

    def energy(self, state: BatchState, neighbors: NeighborList) -> torch.Tensor:
        """Energy per system (eV), differentiable in the state's positions and cells."""
        i, j, shifts, _, psys = neighbors.pairs()
        offsets = torch.einsum("pa,pab->pb", shifts, state.cells[psys])
        r = state.positions[j] - state.positions[i] + offsets
        keep = torch.linalg.vector_norm(r.detach(), dim=-1) < self.cutoff
        counts = state.atoms_per_system()
        dtype = state.dtype
        data = {
            "positions": state.positions,
            "node_attrs": torch.nn.functional.one_hot(
                self.z_index[state.numbers], len(self.model.atomic_numbers)).to(dtype),
            "edge_index": torch.stack([i[keep], j[keep]]),
            "shifts": offsets[keep], "unit_shifts": shifts[keep],
            "cell": state.cells.reshape(-1, 3), "batch": state.system_idx,
            "ptr": torch.cat([counts.new_zeros(1), counts.cumsum(0)]),
            "head": torch.zeros(state.n_systems, dtype=torch.long, device=state.device),
        }
        out = self.model(data, compute_force=False, training=False)
        return out["energy"].to(dtype)
