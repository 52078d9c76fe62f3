"""TorchANI: an ANI-architecture potential trained on our labels, or the pretrained ANI-2x.

Two ways to get a model, both behind the project's model protocol
(:class:`common.potential.protocol.ModelAdapter`):

* ``ANIAdapter.train(...)`` (offline, the default): torchani's own pieces, built without
  loading any weights -- ``AEVComputer.like_2x`` (ANI-2x's radial/angular symmetry functions),
  ``ANINetworks`` (one network per element; ``ANINetworks.like_2x`` for the paper config),
  ``SelfEnergy``, assembled as ``torchani.arch.ANI`` -- and trained on the frames' labels
  (GFN2-xTB via ``common.labels`` by default, PySCF for a higher level). torchani ships no
  trainer, so the loop here is a short one in plain torch, written the way torchani's training
  examples do it: self energies fitted by linear least squares on the training set (as
  ``torchani.sae_estimation.exact_saes``), AdamW on ``loss = w_E * mean(dE^2 / sqrt(N)) +
  w_F * mean(sum |dF|^2 / N)`` (Hartree, Å, torchani's units), the learning rate halved on a
  validation plateau, early stopping on the validation loss, the best epoch kept.
* ``ANIAdapter.pretrained("ani2x")``: the published ANI-2x (8-network ensemble, ωB97X/6-31G(d))
  through torchani's own loader ``torchani.models.ANI2x``, from the state dict at
  ``$TORCHANI_DATA_DIR/StateDicts/ani2x_state_dict.pt``; Hugging Face is switched to offline
  mode for the call and an absent file is an EnvironmentProblem naming the path. Nothing is
  ever downloaded.

ASE calculator: torchani's own ``torchani.ase.Calculator`` (float64 copy of the model), refusing
elements the model does not know. Batched module: the MD engine's neighbour list becomes
torchani's ``Neighbors`` (half list) for ``ANI.compute_from_neighbors``; molecules and periodic
cells (stress by the strain derivative), forces by autograd.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from ase.calculators.calculator import all_changes
from ase.units import Hartree

from common.config import ConfigSchema
from common.errors import ConfigError, DataError, EnvironmentProblem
from common.md.neighbors import NeighborList
from common.md.state import BatchState
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
MODEL_FILE = "ani_state_dict.pt"
#: elements of the published ANI-2x, sorted by atomic number
ANI2X_ELEMENTS: tuple[str, ...] = ("H", "C", "N", "O", "F", "S", "Cl")
#: pretrained models: name -> torchani's state-dict file name
PRETRAINED: dict[str, str] = {"ani2x": "ani2x_state_dict.pt"}


@dataclass(frozen=True)
class ANIConfig(ConfigSchema):
    """The keys of ``configs/ani_*.json``.

    AEV (torchani's ``AEVComputer.like_2x`` with these values): radial and angular cutoffs
    (Å), numbers of radial shifts, angular shifts and angular sections. Networks:
    ``hidden_layers`` (sizes of every element's hidden layers; null: ANI-2x's per-element sizes,
    ``ANINetworks.like_2x``). Training: batch size (frames), AdamW learning rate and weight
    decay, maximum epochs, early-stopping patience and learning-rate plateau patience (epochs),
    weights of the energy and force losses.
    """

    radial_cutoff_A: float
    angular_cutoff_A: float
    radial_num_shifts: int
    angular_num_shifts: int
    angular_num_sections: int
    hidden_layers: list[int] | None
    batch_size: int
    lr: float
    weight_decay: float
    max_epochs: int
    patience: int
    lr_patience: int
    energy_weight: float
    force_weight: float


def load_config(scale_or_path: str | Path = "tiny", **overrides: Any) -> dict[str, Any]:
    """ANI hyperparameters.

    ``tiny``, ``paper`` or a JSON file, plus overrides; a missing, unknown or impossible key is a
    one-line ConfigError naming it.
    """
    from common.config import load_json_config

    cfg = load_json_config(scale_or_path, CONFIGS, "ani", what="ANI config", schema=ANIConfig,
                           **overrides).to_dict()
    _check_values(cfg, where=str(scale_or_path))
    return cfg


def _import_torchani():
    from common.frameworks import import_torchani

    return import_torchani()


def _checked_config(config: dict | str | Path | None) -> dict[str, Any]:
    return checked_model_config(config, ANIConfig, load_config, _check_values)


def _check_values(cfg: dict[str, Any], where: str) -> None:
    """Values the schema's types cannot catch."""
    if not 0 < cfg["angular_cutoff_A"] < cfg["radial_cutoff_A"]:
        raise ConfigError(f"angular_cutoff_A ({cfg['angular_cutoff_A']}) must be > 0 and "
                          f"smaller than radial_cutoff_A ({cfg['radial_cutoff_A']})",
                          where=where, fix="ANI-2x uses 3.5 and 5.1 Å")
    positive = ("radial_num_shifts", "angular_num_shifts", "angular_num_sections", "batch_size",
                "lr", "max_epochs", "patience", "lr_patience")
    for key in positive:
        if not cfg[key] > 0:
            raise ConfigError(f"{key} must be > 0 (got {cfg[key]})", where=where,
                              fix=f"give a positive {key}")
    if cfg["hidden_layers"] is not None and not all(n > 0 for n in cfg["hidden_layers"]):
        raise ConfigError(f"hidden_layers must be positive sizes (got {cfg['hidden_layers']})",
                          where=where, fix="e.g. [16, 8], or null for ANI-2x's sizes")


# -- the torchani model -------------------------------------------------------------------


def build_model(cfg: dict[str, Any], symbols: list[str] | tuple[str, ...],
                self_energies_Ha: list[float] | None = None) -> torch.nn.Module:
    """Build a ``torchani.arch.ANI`` for ``symbols`` (element symbols, sorted by Z).

    It has torchani's ANI-2x-style AEV computer, atomic networks and self energies (Hartree; zeros
    if None). No weights are loaded; the network weights get torchani's examples' initialisation
    (Kaiming normal, zero bias).
    """
    _import_torchani()
    from torchani.aev import AEVComputer
    from torchani.arch import ANI
    from torchani.nn import ANINetworks
    from torchani.sae import SelfEnergy

    aev = AEVComputer.like_2x(
        num_species=len(symbols), radial_cutoff=cfg["radial_cutoff_A"],
        angular_cutoff=cfg["angular_cutoff_A"], radial_num_shifts=cfg["radial_num_shifts"],
        angular_num_shifts=cfg["angular_num_shifts"],
        angular_num_sections=cfg["angular_num_sections"])
    hidden = cfg["hidden_layers"]
    if hidden is None:
        nets = ANINetworks.like_2x(symbols, in_dim=aev.out_dim)
    else:
        nets = ANINetworks.build(symbols, aev.out_dim, dims={}, default_dims=tuple(hidden),
                                 activation="celu", bias=True)
    for m in nets.modules():
        if isinstance(m, torch.nn.Linear):
            torch.nn.init.kaiming_normal_(m.weight, a=1.0)
            torch.nn.init.zeros_(m.bias)
    sae = SelfEnergy(symbols, self_energies_Ha or [0.0] * len(symbols))
    return ANI(symbols, aev_computer=aev, neural_networks=nets, energy_shifter=sae)


def fit_self_energies(frames, symbols: list[str]) -> list[float]:
    """Fit the self energies per element (Hartree) by least squares.

    The frames' energies are fitted on their element counts, as
    ``torchani.sae_estimation.exact_saes`` (minimum-norm solution when the compositions do not
    determine them all).
    """
    from common.training import reference_arrays

    energies, _, _ = reference_arrays(frames)
    counts = np.array([[a.get_chemical_symbols().count(s) for s in symbols] for a in frames],
                      dtype=float)
    solution, *_ = np.linalg.lstsq(counts, energies / Hartree, rcond=None)
    return [float(x) for x in solution]


# -- the adapter ----------------------------------------------------------------------------


class ANIAdapter:
    """A TorchANI potential (see :class:`common.potential.protocol.ModelAdapter`).

    Trained here on our labels, or the pretrained ANI-2x.
    """

    name: ClassVar[str] = "ani"

    def __init__(self, path: Path | None, model: torch.nn.Module, meta: dict,
                 device: str = "cpu"):
        self.path, self.model, self.meta, self.device = path, model, meta, device

    @property
    def cutoff(self) -> float:
        """The AEV's radial cutoff, Å."""
        return float(self.model.cutoff)

    @property
    def elements(self) -> tuple[str, ...] | None:
        """Element symbols the model knows (training set, or ANI-2x's seven)."""
        els = self.meta.get("elements")
        return tuple(els) if els else None

    # -- training -----------------------------------------------------------------------
    @classmethod
    def train(cls, train, valid, workdir: str | Path, config: dict | str | None = None,
              seed: int = 0, test=None, device: str = "cpu", progress: bool = False,
              init_from: str | Path | None = None) -> ANIAdapter:
        """Train an ANI model on ``train`` (early stopping on ``valid``), score it on ``test``.

        Parameters
        ----------
        train, valid, test : labelled frames (energy eV, forces eV/Å), e.g. Datasets.
        workdir : folder for ``ani_state_dict.pt`` (the best epoch), ``training_log.csv``
            (losses per epoch, Hartree units), ``mlp-cases-model.json`` (config, elements,
            self energies, metrics) and ``parity_test.png``.
        config : a dict, ``"tiny"``/``"paper"`` or a JSON file (see :class:`ANIConfig`).
        seed : seeds the initial weights and the batch order (same seed on CPU, same model).
        device : ``cpu``/``cuda``/``cuda:N``, checked before anything is written.
        progress : draw a progress bar over epochs.
        init_from : a model folder to continue from (its weights and self energies; same
            elements and architecture), as an active-learning round refines the last round's
            model instead of starting over.
        """
        from common.md.runner import check_device
        from common.training import check_training_data, seed_everything

        check_device(device)
        cfg = _checked_config(config)
        check_training_data(train, valid, test)
        symbols = elements_of(train)
        seed_everything(seed)
        if init_from is None:
            saes = fit_self_energies(train, symbols)
            model = build_model(cfg, symbols, saes).to(device)
        else:
            model, saes = _continued(init_from, cfg, symbols, device)
        state, log = _fit(model, train, valid, cfg, seed, device, progress)
        model.load_state_dict(state)
        workdir = Path(workdir).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        _write_log(log, workdir / "training_log.csv")
        meta = {"framework": cls.name, "config": cfg, "seed": seed, "elements": symbols,
                "self_energies_Ha": dict(zip(symbols, saes, strict=True)),
                "epochs": len(log), "best_epoch": int(np.nanargmin([r[2] for r in log])) + 1,
                "model_file": MODEL_FILE, "n_train": len(train), "n_valid": len(valid),
                "continued_from": None if init_from is None else str(init_from)}
        adapter = cls(workdir, model.eval(), meta, device)
        adapter.meta["metrics"] = _metrics(adapter, valid, test, workdir, device)
        adapter.save(workdir)
        return adapter

    # -- loading / saving ---------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> ANIAdapter:
        """Load a model folder written by ``train``/``save`` (a pretrained one reloads ANI-2x)."""
        path = Path(path)
        meta = read_model_meta(path, ANIAdapter.name, "ANI")
        if meta.get("pretrained"):
            adapter = cls.pretrained(meta["pretrained"], device=device)
            adapter.path = path
            return adapter
        model_file = path / meta.get("model_file", MODEL_FILE)
        if not model_file.exists():
            raise ConfigError("the model file is missing", where=str(model_file),
                              fix="retrain, or copy the whole model folder")
        model = build_model(meta["config"], meta["elements"])
        model.load_state_dict(torch.load(model_file, map_location="cpu", weights_only=True))
        return cls(path, model.to(device).eval(), meta, device)

    @classmethod
    def untrained(cls, path: str | Path, config: dict | str = "tiny", seed: int = 0,
                  elements: list[str] | None = None) -> ANIAdapter:
        """Return a randomly initialised model (zero self energies) saved like a trained one.

        For speed benchmarks and plumbing tests only. ``elements``: symbols it accepts (default
        ANI-2x's).
        """
        from ase.data import atomic_numbers

        cfg = _checked_config(config)
        torch.manual_seed(seed)
        symbols = sorted(elements or ANI2X_ELEMENTS, key=atomic_numbers.__getitem__)
        meta = {"framework": cls.name, "config": cfg, "seed": seed, "trained": False,
                "elements": symbols, "model_file": MODEL_FILE}
        adapter = cls(Path(path), build_model(cfg, symbols).eval(), meta)
        adapter.save(path)
        return adapter

    @classmethod
    def pretrained(cls, name: str = "ani2x", device: str = "cpu") -> ANIAdapter:
        """Load the published model ``name`` (``ani2x``) through torchani's own loader.

        It is read from the local state dict (see :func:`pretrained_path`); never downloads.

        Raises
        ------
        EnvironmentProblem
            The state dict is not on this machine (the message names where to put it) or
            torchani could not load it.
        """
        from common.md.runner import check_device

        check_device(device)
        if name not in PRETRAINED:
            raise ConfigError(f"no pretrained ANI model {name!r}", where="name",
                              fix=f"use one of {', '.join(PRETRAINED)}")
        model = _load_pretrained(name, device)
        meta = {"framework": cls.name, "pretrained": name, "elements": list(ANI2X_ELEMENTS),
                "state_dict": str(pretrained_path(name))}
        return cls(None, model, meta, device)

    def save(self, path: str | Path) -> Path:
        """Write the model folder.

        It holds torchani's state dict and ``mlp-cases-model.json`` (a pretrained model writes only
        the JSON, naming torchani's state dict).
        """
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        if not self.meta.get("pretrained"):
            torch.save(self.model.state_dict(), path / MODEL_FILE)
        write_model_meta(path, self.meta)
        return path

    # -- using --------------------------------------------------------------------------
    def calculator(self):
        """Return torchani's own ASE calculator (``torchani.ase.Calculator``) for the model.

        It runs on a float64 copy of the model and refuses elements the model does not know with a
        DataError.
        """
        _import_torchani()
        import torchani.ase

        model = copy.deepcopy(self.model).to(torch.float64).eval().requires_grad_(False)
        return _checked_calculator_class(torchani.ase.Calculator)(
            model, allowed=element_numbers(self.elements))

    def batched(self, dtype: torch.dtype = torch.float64) -> ANIBatched:
        """Return the torch module for the batched MD engine, a copy in ``dtype``.

        Its units are eV, eV/Å and eV/Å^3.
        """
        return ANIBatched(self.model, dtype=dtype, elements=element_numbers(self.elements))


# -- pretrained ANI-2x ----------------------------------------------------------------------


def pretrained_path(name: str = "ani2x") -> Path:
    """Return where torchani's loader looks for the state dict of ``name``.

    That is ``$TORCHANI_DATA_DIR/StateDicts/<file>`` (default data dir ``~/.local/share/Torchani``).
    """
    _import_torchani()
    from torchani.paths import data_dir

    return data_dir() / "StateDicts" / PRETRAINED[name]


def _load_pretrained(name: str, device: str) -> torch.nn.Module:
    """Load ``torchani.models.ANI2x`` with Hugging Face offline, after checking the file is there.

    With the file present, every branch of torchani's fetch reads it from disk.
    """
    path = pretrained_path(name)
    if not path.is_file():
        raise EnvironmentProblem(
            f"the pretrained {name} weights are not on this machine ({path.name} not found)",
            where=str(path),
            fix=f"copy torchani's {path.name} to {path.parent}/ (or point TORCHANI_DATA_DIR at "
                "the folder holding StateDicts/); nothing is downloaded -- or train an ANI "
                "model on your own labels with ANIAdapter.train")
    import torchani.models

    try:
        with _hf_offline():
            return torchani.models.ANI2x(device=device).eval()
    except Exception as exc:
        raise EnvironmentProblem(f"torchani could not load {path.name}: {exc}",
                                 where=str(path),
                                 fix="replace the file with torchani's ani2x_state_dict.pt"
                                 ) from exc


@contextlib.contextmanager
def _hf_offline():
    """Set HF_HUB_OFFLINE=1 for the duration.

    huggingface_hub reads it at import, so its module constant is set as well.
    """
    import huggingface_hub.constants as hf

    env, const = os.environ.get("HF_HUB_OFFLINE"), hf.HF_HUB_OFFLINE
    os.environ["HF_HUB_OFFLINE"], hf.HF_HUB_OFFLINE = "1", True
    try:
        yield
    finally:
        hf.HF_HUB_OFFLINE = const
        if env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = env


# -- ASE calculator -------------------------------------------------------------------------


@functools.cache
def _checked_calculator_class(base):
    """Return torchani's ASE Calculator class, made to refuse unknown elements.

    They are refused before torchani sees them: its species converter would turn them into padding
    and silently drop the atom.
    """

    class CheckedANICalculator(base):
        def __init__(self, model, allowed=None, **kwargs):
            super().__init__(model, **kwargs)
            self.allowed = allowed

        def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
            if self.allowed is not None:
                a = atoms if atoms is not None else self.atoms
                check_elements(a.numbers, self.allowed,
                               structure=f"structure {a.get_chemical_formula()}")
            super().calculate(atoms, list(properties), system_changes)

    return CheckedANICalculator


# -- batched module -------------------------------------------------------------------------


class ANIBatched(BatchedPotential):
    """A torchani ``ANI`` model as a BatchedPotential.

    All systems of the batch are one flat "molecule" for torchani; the engine's full
    neighbour list (pairs within the AEV's radial cutoff) becomes torchani's half list
    ``Neighbors(indices, distances, diff_vectors)``, so no pair crosses systems. Energies are
    torchani's atomic energies (Hartree) summed per system, in eV; forces and, for periodic
    systems, the stress by autograd (:func:`common.potential.stress.energy_forces_stress`).
    """

    needs_grad = True
    has_stress = True

    def __init__(self, model: torch.nn.Module, dtype=torch.float64,
                 elements: frozenset[int] | None = None):
        super().__init__()
        self.model = copy.deepcopy(model).to(dtype).eval().requires_grad_(False)
        self.cutoff = float(model.cutoff)
        self.elements = elements

    def forward(self, state: BatchState, neighbors: NeighborList,
                compute_stress: bool = False) -> dict[str, torch.Tensor]:
        """Return energy, forces and (with ``compute_stress``) stress of a batch of systems."""
        from common.potential.stress import energy_forces_stress

        return energy_forces_stress(self.energy, state, neighbors,
                                    compute_stress=compute_stress)

    def energy(self, state: BatchState, neighbors: NeighborList) -> torch.Tensor:
        """Energy per system (eV), differentiable in the state's positions and cells."""
        from torchani.neighbors import Neighbors

        from common.potential.stress import edge_vectors

        i, j, r, _ = edge_vectors(state, neighbors)
        keep = _half_list(i, j, neighbors.pairs()[2]) & (
            torch.linalg.vector_norm(r.detach(), dim=-1) <= self.cutoff)
        r = r[keep]
        # torchani's diff vector of pair (a, b) is x_a - x_b(image) = -r_ab
        nbrs = Neighbors(torch.stack([i[keep], j[keep]]), torch.linalg.vector_norm(r, dim=-1),
                         -r)
        elem = self.model.species_converter(state.numbers).unsqueeze(0)
        atomic = self.model.compute_from_neighbors(elem, state.positions.unsqueeze(0), nbrs,
                                                   atomic=True).energies[0]
        return sum_per_system(atomic, state.system_idx, state.n_systems) * Hartree


def _half_list(i: torch.Tensor, j: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Return a mask keeping one direction of every pair of a full list.

    It keeps i < j, and for an atom's own periodic images (i == j) the shift whose first non-zero
    component is positive.
    """
    s0, s1, s2 = shifts.unbind(-1)
    positive = (s0 > 0) | ((s0 == 0) & ((s1 > 0) | ((s1 == 0) & (s2 > 0))))
    return (i < j) | ((i == j) & positive)


# -- training loop ----------------------------------------------------------------------------


@dataclass
class _Batch:
    """Frames padded to one size (species -1 for padding), torchani's units."""

    species: torch.Tensor  # (B, A) atomic numbers
    coords: torch.Tensor  # (B, A, 3) Å
    energies: torch.Tensor  # (B,) Hartree
    forces: torch.Tensor  # (B, A, 3) Hartree/Å
    n_atoms: torch.Tensor  # (B,)
    cell: torch.Tensor | None  # (3, 3) Å, for a periodic frame (then B == 1)
    pbc: torch.Tensor | None


def _collate(frames, device: str) -> _Batch:
    from common.data.dataset import get_labels

    n = max(len(a) for a in frames)
    species = torch.full((len(frames), n), -1, dtype=torch.long)
    coords = torch.zeros(len(frames), n, 3)
    forces = torch.zeros(len(frames), n, 3)
    energies = torch.zeros(len(frames), dtype=torch.float64)
    for b, a in enumerate(frames):
        lab = get_labels(a)
        species[b, :len(a)] = torch.as_tensor(a.numbers)
        coords[b, :len(a)] = torch.as_tensor(a.positions)
        forces[b, :len(a)] = torch.as_tensor(np.asarray(lab["forces"]) / Hartree)
        energies[b] = float(lab["energy"]) / Hartree
    periodic = bool(frames[0].pbc.any())
    cell = torch.as_tensor(frames[0].cell.array, dtype=torch.float32) if periodic else None
    pbc = torch.as_tensor(frames[0].pbc) if periodic else None
    return _Batch(species.to(device), coords.to(device), energies.float().to(device),
                  forces.to(device), torch.tensor([len(a) for a in frames], device=device),
                  None if cell is None else cell.to(device), None if pbc is None else
                  pbc.to(device))


def _batches(frames, batch_size: int, device: str, rng: np.random.Generator | None
             ) -> list[_Batch]:
    """Split frames into batches: molecules padded, ``batch_size`` a batch; periodic ones singly.

    Periodic frames go one by one because torchani takes one cell per call. Shuffled when ``rng`` is
    given.
    """
    frames = list(frames)
    order = rng.permutation(len(frames)) if rng is not None else np.arange(len(frames))
    mol = [frames[k] for k in order if not frames[k].pbc.any()]
    groups = [mol[s:s + batch_size] for s in range(0, len(mol), batch_size)]
    groups += [[frames[k]] for k in order if frames[k].pbc.any()]
    if rng is not None:
        groups = [groups[k] for k in rng.permutation(len(groups))]
    return [_collate(g, device) for g in groups]


def _loss(model, batch: _Batch, cfg: dict[str, Any], create_graph: bool) -> torch.Tensor:
    """Compute the loss of torchani's examples: energy MSE over sqrt(N) plus force MSE per atom."""
    coords = batch.coords.clone().requires_grad_(True)
    energies = model((batch.species, coords), batch.cell, batch.pbc).energies
    grad = torch.autograd.grad(energies.sum(), coords, create_graph=create_graph)[0]
    n = batch.n_atoms.to(energies.dtype)
    e_loss = ((energies - batch.energies) ** 2 / n.sqrt()).mean()
    f_loss = (((-grad - batch.forces) ** 2).sum((1, 2)) / n).mean()
    return cfg["energy_weight"] * e_loss + cfg["force_weight"] * f_loss


def _valid_loss(model, batches: list[_Batch], cfg: dict[str, Any]) -> float:
    weights = np.array([len(b.energies) for b in batches], dtype=float)
    losses = [_loss(model, b, cfg, create_graph=False).detach().item() for b in batches]
    return float(np.dot(weights, losses) / weights.sum())


def _fit(model, train, valid, cfg: dict[str, Any], seed: int, device: str, progress: bool
         ) -> tuple[dict[str, torch.Tensor], list[tuple[int, float, float, float]]]:
    """Train for AdamW epochs with early stopping.

    Returns the best epoch's state dict and the log (epoch, train loss, valid loss, learning rate).
    """
    from tqdm.auto import tqdm

    rng = np.random.default_rng(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, threshold=0.0,
                                                       patience=cfg["lr_patience"])
    valid_batches = _batches(valid, cfg["batch_size"], device, None)
    best, best_epoch, best_state, log = float("inf"), 0, None, []
    for epoch in tqdm(range(1, cfg["max_epochs"] + 1), disable=not progress, desc="ANI"):
        train_losses = []
        for batch in _batches(train, cfg["batch_size"], device, rng):
            opt.zero_grad()
            loss = _loss(model, batch, cfg, create_graph=True)
            loss.backward()
            opt.step()
            train_losses.append(loss.item())
        val = _valid_loss(model, valid_batches, cfg)
        log.append((epoch, float(np.mean(train_losses)), val, opt.param_groups[0]["lr"]))
        sched.step(val)
        if val < best:
            best, best_epoch, best_state = val, epoch, copy.deepcopy(model.state_dict())
        elif epoch - best_epoch >= cfg["patience"]:
            break
    if best_state is None:
        raise DataError("training diverged: the validation loss was never finite",
                        where="training", fix="lower lr, or check the labels (Dataset.validate)")
    return best_state, log


def _continued(folder: str | Path, cfg: dict[str, Any], symbols: list[str], device: str
               ) -> tuple[torch.nn.Module, list[float]]:
    """Return a copy of the trained model in ``folder`` and its self energies, checked.

    Its elements must be the training data's and its architecture ``cfg``'s.
    """
    prev = ANIAdapter.load(folder)
    if prev.meta.get("pretrained") or prev.elements is None:
        raise ConfigError("init_from must be a model trained here, not a pretrained one",
                          where=str(folder), fix="give a folder written by ANIAdapter.train")
    if list(prev.elements) != list(symbols):
        raise ConfigError(f"the model knows {list(prev.elements)} but the training data has "
                          f"{symbols}", where=str(folder),
                          fix="continue only on data of the same elements, or train anew")
    saes = [float(prev.meta["self_energies_Ha"][e]) for e in symbols]
    model = build_model(cfg, symbols, saes)
    try:
        model.load_state_dict(prev.model.state_dict())
    except RuntimeError as exc:
        raise ConfigError("the model to continue from has another architecture "
                          f"({str(exc).splitlines()[0][:120]})", where=str(folder),
                          fix="use the same AEV and hidden_layers settings, or train anew"
                          ) from None
    return model.to(device), saes


def _write_log(log, path: Path) -> None:
    lines = ["epoch,train_loss,valid_loss,lr"] + [f"{e},{t:.8g},{v:.8g},{lr:.3g}"
                                                  for e, t, v, lr in log]
    path.write_text("\n".join(lines) + "\n")


def _metrics(adapter: ANIAdapter, valid, test, workdir: Path, device: str) -> dict[str, Any]:
    from common.training import error_metrics, parity_plot

    metrics = {"valid": error_metrics(adapter.batched(), valid, device=device)}
    if test is not None and len(test):
        metrics["test"] = error_metrics(adapter.batched(), test, device=device)
        parity_plot(adapter.batched(), test, workdir / "parity_test.png",
                    title=f"ANI, test set ({len(test)} frames)", device=device)
    return metrics
