"""DeePMD-kit (PyTorch backend) for the electrolyte pipeline.

Training with deepmd-kit's own trainer, freezing, loading, deepmd's ASE calculator, and the batched
module the common MD engine runs.

Training writes DeePMD-kit's ``input.json`` from our config (:class:`DeepMDConfig`; se_e2_a
by default) and runs, in a child process in the model folder, what ``dp --pt train
input.json`` and ``dp --pt freeze`` run (deepmd's own command-line entry point): the child
process gets the requested device (deepmd picks its device when it is imported). The
descriptor's ``sel`` comes from deepmd's own neighbour statistics (what ``dp --pt
neighbor-stat`` computes) on the training data, times ``sel_margin`` and rounded up to a
multiple of 4, as deepmd's ``"sel": "auto"`` does.

Inference uses the frozen TorchScript model (``frozen_model.pth``) for both the ASE calculator
(``deepmd.calculator.DP``) and the batched module. The batched module calls the model's own
``forward_lower`` (the interface deepmd's LAMMPS plug-in uses) once for the whole batch: every
system of the batch and every neighbour image of the engine's neighbour list become one
"extended" frame, so systems of any sizes, molecules and periodic cells run in one call.

Precision: a DeePMD model computes in the precision it was trained with (``precision`` in the
config, float64 by default; coordinates in float64 always). The batched module accepts states
of any float dtype and returns results in the state's dtype, so ``module.to(torch.float32)``
changes its inputs and outputs, not deepmd's arithmetic.

Short-range repulsion (``zbl`` in the config, on in the tiny and paper configs): deepmd's own
DP+ZBL model (``deepmd.pt.model.model.DPZBLModel``, chosen by ``use_srtab`` in the model
section). Each atom's energy is ``(1 - w) E_DP + w E_pair + bias``, where ``E_pair`` is half
the sum of a tabulated pair energy over its neighbours and the weight ``w`` goes smoothly from
0 (deepmd's softmin distance to its neighbours above ``zbl_sw_rmax_A``) to 1 (below
``zbl_sw_rmin_A``). The table (:func:`write_zbl_table`, ``zbl_table.txt`` in the model folder,
stored inside the frozen model too) is the Ziegler-Biersack-Littmark universal screened
nuclear repulsion of each element pair. A network trained on liquid configurations has no
data at the distances where atoms overlap and may predict them low; the ZBL wall makes
such overlaps cost what nuclear repulsion costs, so MD cannot fall into them. At the
distances of the training data (w = 0) the model is the plain DP model.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import shutil
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
from common.md.state import BatchState, cell_det
from common.potential.model_folder import (
    checked_model_config,
    read_model_meta,
    write_model_meta,
)
from common.potential.protocol import (
    BatchedPotential,
    check_elements,
    element_numbers,
    elements_of,
    sum_per_system,
)

CONFIGS = Path(__file__).parent / "configs"
MODEL_FILE = "frozen_model.pth"
CHECKPOINT = "model.ckpt.pt"
INPUT = "input.json"
#: the short-range pair table (deepmd's ``use_srtab``) of a DP+ZBL model
ZBL_TABLE = "zbl_table.txt"
#: files ``save`` copies into a new model folder (those that exist)
MODEL_FILES: tuple[str, ...] = (MODEL_FILE, CHECKPOINT, INPUT, "lcurve.out", ZBL_TABLE)
#: descriptors this adapter writes: two type-resolved ones (``sel`` per element) and se_atten
#: without attention layers (mixed-type: one ``sel``, the sum over elements), which deepmd's
#: DP+ZBL model needs
DESCRIPTORS: tuple[str, ...] = ("se_e2_a", "se_e2_r", "se_atten")
PRECISIONS: tuple[str, ...] = ("float64", "float32")


@dataclass(frozen=True)
class DeepMDConfig(ConfigSchema):
    """The keys of ``configs/deepmd_*.json``.

    Descriptor: ``descriptor`` (se_e2_a or se_e2_r), cutoff ``rcut_A`` and the start of its
    smooth switching ``rcut_smth_A`` (Å), embedding-net sizes ``neuron``, ``axis_neuron``
    (se_e2_a's M2), ``type_one_side``; ``sel_margin``: sel = max neighbours of each element in
    the training data times this, rounded up to 4. Fitting net sizes ``fitting_neuron``;
    ``precision`` (float64 or float32) of both nets. Training (deepmd's own): ``numb_steps``,
    ``batch_size`` (frames, or "auto"), exponential learning rate ``start_lr`` -> ``stop_lr``
    every ``decay_steps``, loss prefactors of energy, forces and virial (``start_pref_*`` ->
    ``limit_pref_*``), ``disp_freq`` and ``save_freq`` (steps). Descriptor nets without and
    fitting nets with ResNet timesteps, as in deepmd-kit's examples.

    ``zbl``: deepmd's DP+ZBL model (see the module docstring) with the pair repulsion taking
    over between ``zbl_sw_rmax_A`` and ``zbl_sw_rmin_A`` (Å) of an atom's softmin neighbour
    distance; False: the plain DP model.
    """

    descriptor: str
    rcut_A: float
    rcut_smth_A: float
    neuron: list[int]
    axis_neuron: int
    type_one_side: bool
    sel_margin: float
    fitting_neuron: list[int]
    precision: str
    numb_steps: int
    batch_size: int | str
    start_lr: float
    stop_lr: float
    decay_steps: int
    start_pref_e: float
    limit_pref_e: float
    start_pref_f: float
    limit_pref_f: float
    start_pref_v: float
    limit_pref_v: float
    disp_freq: int
    save_freq: int
    zbl: bool = False
    zbl_sw_rmin_A: float = 0.5
    zbl_sw_rmax_A: float = 0.8


def load_config(scale_or_path: str | Path = "tiny", **overrides: Any) -> dict[str, Any]:
    """Return the DeePMD hyperparameters: ``tiny``, ``paper`` (the seed's) or a JSON file.

    ``overrides`` are applied on top; a missing, unknown or impossible key is a one-line ConfigError
    naming it.
    """
    from common.config import load_json_config

    cfg = load_json_config(scale_or_path, CONFIGS, "deepmd", what="DeePMD config",
                           schema=DeepMDConfig, **overrides).to_dict()
    _check_values(cfg, where=str(scale_or_path))
    return cfg


def _checked_config(config: dict | str | Path | None) -> dict[str, Any]:
    return checked_model_config(config, DeepMDConfig, load_config, _check_values)


def _check_values(cfg: dict[str, Any], where: str) -> None:
    """Values the schema's types cannot catch."""
    def need(ok: bool, what: str, fix: str) -> None:
        if not ok:
            raise ConfigError(what, where=where, fix=fix)

    need(cfg["descriptor"] in DESCRIPTORS, f"unknown descriptor {cfg['descriptor']!r}",
         f"use one of {', '.join(DESCRIPTORS)}")
    need(not cfg.get("zbl") or cfg["descriptor"] == "se_atten", "zbl needs the mixed-type "
         f"se_atten descriptor (got {cfg['descriptor']!r}): deepmd's PyTorch DP+ZBL model "
         "combines only mixed-type models", 'set "descriptor": "se_atten", or "zbl": false')
    need(cfg["precision"] in PRECISIONS, f"unknown precision {cfg['precision']!r}",
         f"use one of {', '.join(PRECISIONS)}")
    need(0 <= cfg["rcut_smth_A"] < cfg["rcut_A"], f"rcut_smth_A ({cfg['rcut_smth_A']}) must be "
         f">= 0 and smaller than rcut_A ({cfg['rcut_A']})", "the seed uses 0.5 and 6.0 Å")
    for key in ("axis_neuron", "numb_steps", "decay_steps", "disp_freq", "save_freq",
                "start_lr", "stop_lr"):
        need(cfg[key] > 0, f"{key} must be > 0 (got {cfg[key]})", f"give a positive {key}")
    for key in ("neuron", "fitting_neuron"):
        need(len(cfg[key]) > 0 and all(n > 0 for n in cfg[key]),
             f"{key} must be a list of positive sizes (got {cfg[key]})", "e.g. [25, 50, 100]")
    need(cfg["sel_margin"] >= 1.0, f"sel_margin must be >= 1 (got {cfg['sel_margin']})",
         "deepmd's own automatic sel uses 1.1")
    need(cfg["stop_lr"] <= cfg["start_lr"], f"stop_lr ({cfg['stop_lr']}) is larger than "
         f"start_lr ({cfg['start_lr']})", "the learning rate decays: stop_lr <= start_lr")
    need(0 < cfg.get("zbl_sw_rmin_A", 0.5) < cfg.get("zbl_sw_rmax_A", 0.8) < cfg["rcut_A"],
         f"need 0 < zbl_sw_rmin_A < zbl_sw_rmax_A < rcut_A (got {cfg.get('zbl_sw_rmin_A')}, "
         f"{cfg.get('zbl_sw_rmax_A')}, {cfg['rcut_A']})", "e.g. 0.5 and 0.8 Å: below the "
         "shortest bond, so the network alone describes the liquid")
    bs = cfg["batch_size"]
    need(bs > 0 if isinstance(bs, int) else _is_auto(bs),
         f"batch_size must be a positive number of frames or 'auto' (got {bs!r})",
         'give e.g. 1, "auto" or "auto:32"')


def _is_auto(value: str) -> bool:
    word, _, number = value.partition(":")
    return word == "auto" and (not number or number.isdigit())


# -- deepmd's input.json --------------------------------------------------------------------


def input_json(cfg: dict[str, Any], type_map: list[str], sel: list[int], seed: int,
               train_systems: list[str], valid_systems: list[str] | None = None,
               zbl_table: str = ZBL_TABLE) -> dict[str, Any]:
    """DeePMD-kit's ``input.json`` for ``cfg`` (see :class:`DeepMDConfig`).

    ``type_map``: element symbols (deepmd's atom types, in this order); ``sel``: neighbours
    kept per element; ``seed`` seeds the descriptor, the fitting net and the batch order;
    ``*_systems``: deepmd/npy system folders (relative to the model folder); ``zbl_table``:
    the pair table's path for a DP+ZBL model (written by :func:`write_zbl_table`).
    """
    training: dict[str, Any] = {
        "training_data": {"systems": list(train_systems), "batch_size": cfg["batch_size"]},
        "numb_steps": cfg["numb_steps"], "seed": seed, "disp_file": "lcurve.out",
        "disp_freq": cfg["disp_freq"], "save_freq": cfg["save_freq"],
        "save_ckpt": CHECKPOINT.removesuffix(".pt")}
    if valid_systems:
        training["validation_data"] = {"systems": list(valid_systems), "batch_size": 1,
                                       "numb_btch": 3}
    return {
        "model": model_section(cfg, type_map, sel, seed, zbl_table),
        "learning_rate": {"type": "exp", "start_lr": cfg["start_lr"],
                          "stop_lr": cfg["stop_lr"], "decay_steps": cfg["decay_steps"]},
        "loss": {"type": "ener", **{k: cfg[k] for k in (
            "start_pref_e", "limit_pref_e", "start_pref_f", "limit_pref_f", "start_pref_v",
            "limit_pref_v")}},
        "training": training,
    }


def model_section(cfg: dict[str, Any], type_map: list[str], sel: list[int], seed: int,
                  zbl_table: str = ZBL_TABLE) -> dict[str, Any]:
    """Return the ``model`` section of deepmd's input.

    It holds the descriptor and fitting net, and with ``zbl`` the pair table and its switching
    distances (deepmd's ``use_srtab``, ``sw_rmin``, ``sw_rmax``; ``smin_alpha`` is deepmd's default,
    which its PyTorch backend uses).
    """
    descriptor = {"type": cfg["descriptor"], "sel": list(sel), "rcut": cfg["rcut_A"],
                  "rcut_smth": cfg["rcut_smth_A"], "neuron": list(cfg["neuron"]),
                  "resnet_dt": False, "type_one_side": cfg["type_one_side"],
                  "precision": cfg["precision"], "seed": seed}
    if cfg["descriptor"] in ("se_e2_a", "se_atten"):
        descriptor["axis_neuron"] = cfg["axis_neuron"]
    if cfg["descriptor"] == "se_atten":  # se_e2_a's embedding with type embeddings, no attention
        descriptor.update({"sel": int(sum(sel)), "attn_layer": 0})
    section = {"type_map": list(type_map), "descriptor": descriptor,
               "fitting_net": {"neuron": list(cfg["fitting_neuron"]), "resnet_dt": True,
                               "precision": cfg["precision"], "seed": seed}}
    if cfg.get("zbl"):
        section.update({"use_srtab": str(zbl_table), "smin_alpha": 0.1,
                        "sw_rmin": float(cfg["zbl_sw_rmin_A"]),
                        "sw_rmax": float(cfg["zbl_sw_rmax_A"])})
    return section


# -- ZBL short-range repulsion ----------------------------------------------------------------

#: e^2 / (4 pi eps0), eV Å
COULOMB_EV_A = 14.399645
#: the ZBL universal screening function's coefficients and exponents (Ziegler, Biersack and
#: Littmark, The Stopping and Range of Ions in Solids, 1985)
_ZBL_C = (0.18175, 0.50986, 0.28022, 0.02817)
_ZBL_D = (3.19980, 0.94229, 0.40290, 0.20162)


def zbl_pair_energy(z1: int, z2: int, r_A):
    """Return the ZBL screened nuclear repulsion (eV) of nuclei ``z1``, ``z2`` at ``r_A`` (Å).

    The ZBL universal form: Z1 Z2 e^2 / (4 pi eps0 r) phi(r / a), a = 0.8854 a0 / (Z1^0.23 +
    Z2^0.23).
    """
    import numpy as np

    r = np.asarray(r_A, dtype=float)
    a = 0.8854 * 0.529177210903 / (z1**0.23 + z2**0.23)
    x = r / a
    phi = sum(c * np.exp(-d * x) for c, d in zip(_ZBL_C, _ZBL_D, strict=True))
    return z1 * z2 * COULOMB_EV_A / r * phi


def zbl_table(type_map: list[str], rcut_A: float, r_min_A: float = 0.01, dr_A: float = 0.005
              ):
    """Return deepmd's pair table for ``type_map``: ZBL energies switched off smoothly.

    Rows ``r, E_00, E_01, ..., E_11, ...`` (pairs i <= j in type order), r from ``r_min_A`` to
    ``rcut_A`` every ``dr_A`` (Å); each pair's ZBL energy times a smooth switch (1 - 10u^3 + 15u^4 -
    6u^5, u from 0 at rcut/2 to 1 at rcut), so the table ends at zero as deepmd wants. Switched off
    at half the cutoff, the tail changes nothing where the pair term acts (atoms closer than
    ``zbl_sw_rmax_A``) beyond a few percent of its bonded neighbours' share.
    """
    import numpy as np
    from ase.data import atomic_numbers

    r = np.arange(r_min_A, rcut_A + 0.5 * dr_A, dr_A)
    r_end = rcut_A - 2.0 * dr_A  # deepmd checks the row below rcut is zero
    u = np.clip((r - 0.5 * rcut_A) / (r_end - 0.5 * rcut_A), 0.0, 1.0)
    switch = 1.0 - 10.0 * u**3 + 15.0 * u**4 - 6.0 * u**5
    z = [atomic_numbers[s] for s in type_map]
    cols = [r] + [zbl_pair_energy(z[i], z[j], r) * switch
                  for i in range(len(z)) for j in range(i, len(z))]
    return np.column_stack(cols)


def write_zbl_table(path: str | Path, type_map: list[str], rcut_A: float) -> Path:
    """Write :func:`zbl_table` where deepmd's ``use_srtab`` reads it (atomically)."""
    import io

    import numpy as np

    from common.fileio import atomic_write_text

    buf = io.StringIO()
    np.savetxt(buf, zbl_table(type_map, rcut_A), fmt="%.10e")
    atomic_write_text(Path(path), buf.getvalue())
    return Path(path)


def sel_from_stat(max_nbor_size: list[int], margin: float) -> list[int]:
    """Return deepmd's automatic ``sel`` from the neighbour statistics.

    It is the most neighbours of each element seen in the training data, times ``margin``, rounded
    up to a multiple of 4 (at least 4, so that an element never seen as a neighbour is still kept
    when MD brings it close).
    """
    return [max(4, 4 * math.ceil(math.ceil(n * margin) / 4)) for n in max_nbor_size]


def default_sel(rcut_A: float, n_types: int) -> list[int]:
    """Return ``sel`` for a model without training data.

    It counts the atoms of a liquid of 0.1 atoms/Å^3 within ``rcut_A``, for every element.
    """
    return sel_from_stat([int(0.1 * 4.0 / 3.0 * math.pi * rcut_A**3)] * n_types, 1.0)


def neighbor_stat(system_dir: str | Path, rcut_A: float, type_map: list[str]
                  ) -> dict[str, Any]:
    """Return deepmd's neighbour statistics (``dp --pt neighbor-stat``) of ``system_dir``.

    Of the deepmd/npy systems under ``system_dir``: the shortest distance between two atoms (Å) and,
    per element of ``type_map``, the most neighbours within ``rcut_A`` any atom has.
    """
    _import_deepmd()
    from deepmd.entrypoints.neighbor_stat import neighbor_stat as dp_neighbor_stat

    with _quiet_deepmd():
        min_dist, max_size = dp_neighbor_stat(system=str(system_dir), rcut=float(rcut_A),
                                              type_map=list(type_map), backend="pytorch")
    return {"min_nbor_dist_A": float(min_dist), "max_nbor_size": [int(n) for n in max_size]}


# -- running deepmd ---------------------------------------------------------------------------

#: what the child process runs: deepmd's own command line, ``dp --pt train`` then ``freeze``
_DRIVER = ("import sys; from deepmd.main import main; "
           f"main(['--pt', 'train', '{INPUT}', '--log-path', 'dp_train.log'] + sys.argv[1:]); "
           f"main(['--pt', 'freeze', '-c', '{CHECKPOINT}', '-o', '{MODEL_FILE}'])")


def run_deepmd(workdir: Path, device: str = "cpu", progress: bool = False,
               threads: int | None = None, init_model: Path | None = None) -> float:
    """Train and freeze with deepmd-kit in ``workdir`` in a child process on ``device``.

    ``workdir`` holds ``input.json``. Returns the wall time (s). ``init_model``: a deepmd checkpoint
    whose weights and statistics start the training (``--init-model``; same type map and sel).
    deepmd's log goes to ``dp_train.log``, everything the process prints to ``dp_train.out`` (to the
    terminal with ``progress``).

    Raises
    ------
    ConfigError
        deepmd failed; the message quotes its last line and names the log.
    """
    out_path = workdir / "dp_train.out"
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        out = None if progress else stack.enter_context(open(out_path, "w"))
        extra = [] if init_model is None else ["--init-model", str(Path(init_model).resolve())]
        proc = subprocess.run([sys.executable, "-c", _DRIVER, *extra], cwd=workdir,
                              env=_child_env(device, threads), stdout=out,
                              stderr=subprocess.STDOUT if out else None, check=False)
    if proc.returncode != 0 or not (workdir / MODEL_FILE).exists():
        log = out_path if out_path.exists() else workdir / "dp_train.log"
        raise ConfigError(f"DeePMD-kit training failed (exit {proc.returncode}): "
                          f"{_last_line(log)}", where=str(log),
                          fix="read the log; check the config (input.json) and the data")
    return time.perf_counter() - start


def _child_env(device: str, threads: int | None = None) -> dict[str, str]:
    """Return the environment for deepmd's child process.

    deepmd reads its device from ``DEVICE=cpu`` or takes ``cuda:0``, so ``cuda:N`` becomes the only
    visible GPU. Its data loader reads the frames in the training process (``NUM_WORKERS=0`` unless
    set: deepmd's default of one loader process per core, up to 4, costs more than it saves on a few
    hundred frames); ``threads`` sets its OpenMP and torch thread counts (committee members trained
    side by side must not oversubscribe the cores).
    """
    env = dict(os.environ)
    env.pop("LOCAL_RANK", None)  # deepmd would start distributed training
    env.setdefault("NUM_WORKERS", "0")
    if threads is not None:
        for name in ("OMP_NUM_THREADS", "DP_INTRA_OP_PARALLELISM_THREADS"):
            env[name] = str(threads)
        env["DP_INTER_OP_PARALLELISM_THREADS"] = "1"
    if device == "cpu":
        env["DEVICE"] = "cpu"
        return env
    env.pop("DEVICE", None)
    if ":" in device:
        visible = env.get("CUDA_VISIBLE_DEVICES")
        ids = visible.split(",") if visible else [str(k) for k in
                                                   range(torch.cuda.device_count())]
        env["CUDA_VISIBLE_DEVICES"] = ids[int(device.split(":")[1])]
    return env


def _last_line(path: Path) -> str:
    try:
        lines = [x.strip() for x in path.read_text(errors="replace").splitlines() if x.strip()]
    except OSError:
        return "(no log written)"
    return lines[-1][-300:] if lines else "(empty log)"


def _import_deepmd():
    """Import deepmd's PyTorch backend without its import-time hint about thread variables.

    The import goes through common.frameworks.import_deepmd_pt.
    """
    from common.frameworks import import_deepmd_pt

    with _quiet_deepmd():
        return import_deepmd_pt()


@contextlib.contextmanager
def _quiet_deepmd():
    """Silence deepmd's info and warning lines during in-process calls.

    These are its thread and batch-size hints.
    """
    import logging

    logger = logging.getLogger("deepmd")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


# -- the adapter ------------------------------------------------------------------------------


class DeepMDAdapter:
    """A trained DeePMD potential (see :class:`common.potential.protocol.ModelAdapter`).

    It is a model folder holding deepmd's frozen model, checkpoint and input, and our metadata.
    """

    name: ClassVar[str] = "deepmd"
    #: ``dp train`` runs in a child process: committee members train side by side in threads
    trains_in_subprocess: ClassVar[bool] = True

    def __init__(self, path: Path, meta: dict, device: str = "cpu"):
        self.path, self.meta, self.device = Path(path), meta, device

    @property
    def model_file(self) -> Path:
        """The frozen TorchScript model (``dp --pt freeze``)."""
        return self.path / self.meta.get("model_file", MODEL_FILE)

    @property
    def cutoff(self) -> float:
        """The descriptor's cutoff, Å."""
        return float(self.meta["config"]["rcut_A"])

    @property
    def elements(self) -> tuple[str, ...] | None:
        """Element symbols of the model's type map (the training set's, sorted by Z)."""
        els = self.meta.get("elements")
        return tuple(els) if els else None

    # -- training -----------------------------------------------------------------------
    @classmethod
    def train(cls, train, valid, workdir: str | Path, config: dict | str | None = None,
              seed: int = 0, test=None, device: str = "cpu", progress: bool = False,
              threads: int | None = None, init_from: str | Path | None = None
              ) -> DeepMDAdapter:
        """Train with deepmd-kit on ``train``, freeze, and score on ``valid`` and ``test``.

        ``valid`` also enters deepmd's learning curve.

        Parameters
        ----------
        train, valid, test : labelled frames (energy eV, forces eV/Å, stress eV/Å^3 used as
            deepmd's virial when every frame has it), e.g. Datasets.
        workdir : the model folder: ``data/`` (deepmd/npy systems), ``input.json``,
            deepmd's checkpoints, ``lcurve.out`` and logs, ``frozen_model.pth``,
            ``mlp-cases-model.json`` (config, elements, sel, neighbour statistics, metrics)
            and ``parity_test.png``.
        config : a dict, ``"tiny"``/``"paper"`` or a JSON file (see :class:`DeepMDConfig`).
        seed : seeds deepmd's descriptor, fitting net and batch order.
        device : ``cpu``/``cuda``/``cuda:N``, checked before anything is written.
        progress : show deepmd's training log in the terminal.
        threads : OpenMP/torch threads of deepmd's process (default: deepmd's own choice).
        init_from : a model folder trained by this adapter on the same elements: training
            continues from its weights and descriptor statistics (deepmd's ``--init-model``,
            its ``sel`` kept) for ``numb_steps`` with the learning-rate schedule restarted.

        Notes
        -----
        deepmd trains for ``numb_steps`` with a decaying learning rate; it has no early
        stopping, so ``valid`` is scored, not used to stop.
        """
        from common.md.runner import check_device
        from common.training import check_training_data

        check_device(device)
        cfg = _checked_config(config)
        check_training_data(train, valid, test)
        _import_deepmd()
        workdir = Path(workdir).resolve()
        init_ckpt, init_sel = _init_checkpoint(init_from, elements_of(train))
        with _IN_PROCESS:
            inp, stat, sel = _write_input(train, valid, workdir, cfg, seed, sel=init_sel)
        seconds = run_deepmd(workdir, device, progress, threads, init_model=init_ckpt)
        meta = {"framework": cls.name, "config": cfg, "seed": seed,
                "elements": inp["model"]["type_map"], "sel": sel,
                "neighbor_stat": stat, "model_file": MODEL_FILE,
                "n_train": len(train), "n_valid": len(valid),
                "training_time_s": round(seconds, 2), "deepmd_version": _deepmd_version()}
        if init_from is not None:
            meta["init_from"] = str(Path(init_from).resolve())
        adapter = cls(workdir, meta, device)
        with _IN_PROCESS:
            adapter.meta["metrics"] = _metrics(adapter, valid, test, workdir, device)
        adapter.save(workdir)
        return adapter

    # -- loading / saving ---------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> DeepMDAdapter:
        """Load a model folder written by ``train``, ``untrained`` or ``save``."""
        from common.md.runner import check_device

        check_device(device)
        path = Path(path)
        adapter = cls(path, read_model_meta(path, DeepMDAdapter.name, "DeePMD"), device)
        if not adapter.model_file.exists():
            raise ConfigError("the frozen model is missing", where=str(adapter.model_file),
                              fix="retrain, or copy the whole model folder")
        frozen_model(adapter.model_file, device)  # fails here, not in the middle of MD
        return adapter

    @classmethod
    def untrained(cls, path: str | Path, elements: list[str], config: dict | str = "tiny",
                  seed: int = 0, sel: list[int] | None = None) -> DeepMDAdapter:
        """Build a randomly initialised deepmd model, scripted and saved like a frozen one.

        For speed benchmarks and plumbing tests only (its predictions mean nothing).

        ``elements``: the type map (sorted by Z here); ``sel``: neighbours kept per element
        (default :func:`default_sel`).
        """
        from ase.data import atomic_numbers

        cfg = _checked_config(config)
        type_map = sorted(elements, key=atomic_numbers.__getitem__)
        sel = list(sel or default_sel(cfg["rcut_A"], len(type_map)))
        _import_deepmd()
        from deepmd.pt.model.model import get_model
        from deepmd.utils.argcheck import normalize

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        table = write_zbl_table(path / ZBL_TABLE, type_map, cfg["rcut_A"]) if cfg["zbl"] \
            else None
        params = normalize(input_json(cfg, type_map, sel, seed, ["."],
                                      zbl_table=str(table)))["model"]
        torch.jit.save(torch.jit.script(get_model(params).eval()), str(path / MODEL_FILE))
        meta = {"framework": cls.name, "config": cfg, "seed": seed, "trained": False,
                "elements": type_map, "sel": sel, "model_file": MODEL_FILE}
        adapter = cls(path, meta)
        adapter.save(path)
        return adapter

    def save(self, path: str | Path) -> Path:
        """Write the model folder to ``path``.

        It holds deepmd's frozen model, checkpoint, input and learning curve (those that exist) and
        ``mlp-cases-model.json``.
        """
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        if path.resolve() != self.path.resolve():
            for name in MODEL_FILES:
                if (self.path / name).exists():
                    shutil.copyfile(self.path / name, path / name)  # follows deepmd's symlink
        write_model_meta(path, self.meta)
        return path

    # -- using --------------------------------------------------------------------------
    def calculator(self):
        """Return deepmd-kit's own ASE calculator (``deepmd.calculator.DP``) on the frozen model.

        It gives energy, forces and stress, and refuses elements outside the type map with a
        DataError. It runs on deepmd's device (CUDA when available, unless ``DEVICE=cpu`` is set).
        """
        _import_deepmd()
        from deepmd.calculator import DP

        with _quiet_deepmd():
            return _checked_calculator_class(DP)(model=str(self.model_file),
                                                 allowed=element_numbers(self.elements))

    def batched(self, dtype: torch.dtype = torch.float64) -> DeepMDBatched:
        """Return the module for the batched MD engine (results in the state's dtype)."""
        return DeepMDBatched(self.model_file).to(dtype)


#: members trained side by side (:func:`train_committee`) share this process only for deepmd's
#: child process; export, neighbour statistics and scoring (pyplot) take turns
_IN_PROCESS = threading.Lock()

#: models in a committee: DP-GEN's usual four (model deviation for active learning)
COMMITTEE_SIZE = 4


def train_committee(train, valid, workdir: str | Path, n_models: int = COMMITTEE_SIZE,
                    config: dict | str | None = None, seed: int = 0, parallel: int = 1,
                    init_from: str | Path | None = None,
                    **train_kw: Any) -> tuple[Path, list[DeepMDAdapter]]:
    """Train ``n_models`` DeePMD models that differ only in their seed, as a committee.

    The seeds are ``seed``, ``seed + 1``, ...; member k is trained in ``workdir/member_k`` and the
    committee folder is recorded (:func:`common.potential.committee.train_committee`). Returns
    (folder, members).

    ``parallel`` > 1 runs that many deepmd trainings side by side (threads here, each waiting
    for its own ``dp train`` process of ``cpu_count // parallel`` threads); the members are the
    same as trained one by one (each depends only on its seed and the data). ``init_from``: a
    committee folder of as many members; member k continues from its member k
    (:meth:`DeepMDAdapter.train`).
    """
    from common.potential.committee import train_committee as train_members

    if parallel > 1 and n_models > 1:
        _import_deepmd()  # once, before the threads
    return train_members(DeepMDAdapter, train, valid, workdir, n_models, config=config,
                         seed=seed, init_from=init_from, parallel=parallel, **train_kw)


def _deepmd_version() -> str:
    import deepmd

    return str(getattr(deepmd, "__version__", "unknown"))


def _init_checkpoint(init_from: str | Path | None, elements: list[str]
                     ) -> tuple[Path | None, list[int] | None]:
    """Return the checkpoint and sel of a model folder to continue from (None, None without one).

    A folder for other elements, or without a checkpoint, is refused.
    """
    if init_from is None:
        return None, None
    folder = Path(init_from)
    meta = read_model_meta(folder, DeepMDAdapter.name, "DeePMD")
    ckpt = folder / CHECKPOINT
    if not ckpt.exists():
        raise ConfigError("the model to continue from has no checkpoint", where=str(ckpt),
                          fix="continue from a folder written by training")
    if list(meta["elements"]) != list(elements):
        raise ConfigError(f"the model to continue from has elements {meta['elements']}, the "
                          f"data {elements}", where=str(folder),
                          fix="train from scratch when the elements change")
    return ckpt, [int(n) for n in meta["sel"]]


def _write_input(train, valid, workdir: Path, cfg: dict[str, Any], seed: int,
                 sel: list[int] | None = None
                 ) -> tuple[dict[str, Any], dict[str, Any], list[int]]:
    """Export the data and write ``workdir/input.json`` from deepmd's neighbour statistics.

    The statistics are those of the training set; type map: the training set's elements sorted by Z;
    sel from the statistics. Returns the input, the statistics and sel per element (se_atten's input
    holds their sum).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    type_map = elements_of(train)
    train_systems, valid_systems = _export(train, valid, workdir, type_map)
    stat = neighbor_stat(workdir / "data" / "train", cfg["rcut_A"], type_map)
    if sel is None:
        sel = sel_from_stat(stat["max_nbor_size"], cfg["sel_margin"])
    if cfg["zbl"]:
        write_zbl_table(workdir / ZBL_TABLE, type_map, cfg["rcut_A"])
    inp = input_json(cfg, type_map, sel, seed, train_systems, valid_systems)
    (workdir / INPUT).write_text(json.dumps(inp, indent=2))
    return inp, stat, list(sel)


def _export(train, valid, workdir: Path, type_map: list[str]) -> tuple[list[str], list[str]]:
    """Write deepmd/npy systems (dpdata, through common.data.export) under ``workdir/data``.

    Returns the training and validation system folders relative to ``workdir``.
    """
    from common.data import Dataset, export_deepmd

    folders = []
    for split, frames in (("train", train), ("valid", valid)):
        out = export_deepmd(Dataset.from_frames(list(frames)), workdir / "data" / split,
                            overwrite=True, type_map=type_map)
        folders.append(sorted(str(p.parent.relative_to(workdir))
                              for p in out.glob("*/type.raw")))
    return folders[0], folders[1]


def _metrics(adapter: DeepMDAdapter, valid, test, workdir: Path, device: str
             ) -> dict[str, Any]:
    from common.training import error_metrics, parity_plot

    pot = adapter.batched()
    metrics = {"valid": error_metrics(pot, valid, device=device)}
    if test is not None and len(test):
        metrics["test"] = error_metrics(pot, test, device=device)
        parity_plot(pot, test, workdir / "parity_test.png",
                    title=f"DeePMD, test set ({len(test)} frames)", device=device)
    return metrics


@functools.cache
def _checked_calculator_class(base):
    """Return a subclass of deepmd's DP calculator ``base`` that refuses unknown elements.

    Unknown elements are refused before deepmd sees them (it would fail with a KeyError on the
    symbol).
    """

    class CheckedDP(base):
        def __init__(self, model, allowed=None, **kwargs):
            super().__init__(model, **kwargs)
            self.allowed = allowed

        def calculate(self, atoms=None, properties=("energy", "forces", "virial"),
                      system_changes=all_changes):
            if self.allowed is not None:
                a = atoms if atoms is not None else self.atoms
                check_elements(a.numbers, self.allowed,
                               structure=f"structure {a.get_chemical_formula()}")
            super().calculate(atoms, list(properties), system_changes)

    return CheckedDP


# -- batched module ---------------------------------------------------------------------------


def frozen_model(path: str | Path, device: str | torch.device = "cpu"):
    """Return the frozen TorchScript model at ``path`` on ``device``.

    It is loaded once per file version and device, and shared: deepmd's models are only read at
    inference.
    """
    _import_deepmd()  # registers deepmd's custom ops the scripted model may call
    p = Path(path).resolve()
    try:
        return _load_frozen(str(p), p.stat().st_mtime_ns, str(torch.device(device)))
    except (RuntimeError, ValueError) as exc:
        raise ConfigError(f"cannot read the frozen DeePMD model ({exc})".splitlines()[0],
                          where=str(p), fix="retrain, or freeze again with `dp --pt freeze`"
                          ) from exc


@functools.lru_cache(maxsize=16)
def _load_frozen(path: str, mtime_ns: int, device: str):
    return torch.jit.load(path, map_location=device).eval()


class DeepMDBatched(BatchedPotential):
    """A frozen deepmd model as a BatchedPotential.

    The whole batch is one extended frame for deepmd's ``forward_lower``: local atoms are the
    state's atoms; every neighbour pair (i, j, offset) within the cutoff adds a ghost atom at
    x_j + offset that maps back to j; the neighbour list points at the ghosts, nearest first.
    Pairs never cross systems, so energies (summed atomic energies), forces (ghost forces
    added to their atoms) and virials (sum of F ⊗ x over each system's atoms and ghosts) are
    per system. Stress = -sym(virial) / V (ASE's sign, as deepmd's calculator), zero for
    systems without a cell.
    """

    needs_grad = True
    has_stress = True

    def __init__(self, model_file: str | Path):
        super().__init__()
        from ase.data import atomic_numbers

        self.model_file = Path(model_file)
        model = frozen_model(self.model_file)
        self.cutoff = float(model.get_rcut())
        type_map = list(model.get_type_map())
        self.elements = element_numbers(type_map)
        to_type = torch.full((119,), -1, dtype=torch.long)
        for t, sym in enumerate(type_map):
            to_type[atomic_numbers[sym]] = t
        self.register_buffer("type_of_z", to_type, persistent=False)

    def forward(self, state: BatchState, neighbors: NeighborList,
                compute_stress: bool = False) -> dict[str, torch.Tensor]:
        """Return the energies and forces (and stresses with ``compute_stress``) of the batch."""
        model = frozen_model(self.model_file, state.device)
        ext, ext_type, nlist, mapping = self.extended_frame(state, neighbors)
        with torch.enable_grad(), torch.jit.optimized_execution(False):
            out = model.forward_lower(ext[None], ext_type[None], nlist[None], mapping[None])
        f_ext = out["extended_force"][0].detach()
        energy = sum_per_system(out["atom_energy"][0, :, 0].detach().to(ext.dtype),
                                state.system_idx, state.n_systems)
        forces = torch.zeros_like(ext[:state.n_atoms]).index_add_(0, mapping, f_ext)
        result = {"energy": energy.to(state.dtype), "forces": forces.to(state.dtype)}
        if compute_stress:
            owner = state.system_idx[mapping]
            result["stress"] = _stress(state, f_ext, ext, owner).to(state.dtype)
        return result

    def extended_frame(self, state: BatchState, neighbors: NeighborList
                       ) -> tuple[torch.Tensor, ...]:
        """Return deepmd's lower-interface inputs for the batch.

        They are the extended coordinates (n_ext, 3) Å (float64), their types (n_ext,), the
        neighbour list (n_atoms, K) of extended indices (-1 for none, nearest first) and the
        extended-to-local map (n_ext,).
        """
        i, j, _, off, _ = neighbors.pairs()
        pos = state.positions.detach().to(torch.float64)
        r2 = (pos[j] - pos[i] + off.to(torch.float64)).square().sum(-1)
        keep = torch.nonzero(r2 < self.cutoff**2).flatten()
        keep = keep[torch.argsort(r2[keep])]
        keep = keep[torch.argsort(i[keep], stable=True)]  # by atom, nearest first
        i, j, off = i[keep], j[keep], off[keep].to(torch.float64)
        n, n_pairs = state.n_atoms, len(i)
        counts = torch.bincount(i, minlength=n)
        width = max(int(counts.max()) if n_pairs else 0, 1)
        slot = torch.arange(n_pairs, device=i.device) - (torch.cumsum(counts, 0) - counts)[i]
        nlist = torch.full((n, width), -1, dtype=torch.long, device=i.device)
        nlist[i, slot] = n + torch.arange(n_pairs, device=i.device)
        types = self.type_of_z.to(state.device)[state.numbers]
        mapping = torch.cat([torch.arange(n, device=i.device), j])
        return torch.cat([pos, pos[j] + off]), types[mapping], nlist, mapping


def _stress(state: BatchState, f_ext: torch.Tensor, ext: torch.Tensor, owner: torch.Tensor
            ) -> torch.Tensor:
    """-sym(sum F ⊗ x) / V per system (eV/Å^3); zero for a system without a cell volume."""
    per_atom = (f_ext[:, :, None] * ext[:, None, :]).reshape(-1, 9)
    virial = per_atom.new_zeros(state.n_systems, 9).index_add_(0, owner, per_atom
                                                               ).reshape(-1, 3, 3)
    vol = cell_det(state.cells.detach().to(ext.dtype)).abs()
    periodic = state.pbc.any(-1) & (vol > 0)
    safe = torch.where(periodic, vol, torch.ones_like(vol))
    stress = -0.5 * (virial + virial.transpose(1, 2)) / safe[:, None, None]
    return torch.where(periodic[:, None, None], stress, torch.zeros_like(stress))
