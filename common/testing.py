"""Check a model adapter against the contract of :class:`~common.potential.protocol.ModelAdapter`.

Every framework adapter (SchNet, DeePMD, TorchANI, MACE, NequIP, or a user's own) runs the same
checks, as TorchSim's ``assert_model_calculator_consistency`` does for its models::

    from common.testing import check_adapter

    report = check_adapter(SchNetAdapter, frames, tmp_path,
                           train_kwargs={"config": small_config})

The checks, each against a stated tolerance (:class:`Tolerances`):

``contract``    the adapter has the protocol's members, ``train`` takes the keywords callers
                pass, ``meta`` names the framework and agrees with ``elements``
``calculator``  the batched module == the adapter's own ASE calculator, frame by frame
``forces``      forces == -dE/dx by central differences (float64, step ``fd_step_A``)
``stress``      stress == (1/V) dE/dε by central differences of the energy under small
                symmetric strains of cell and positions (only where ``has_stress``)
``batch``       one mixed batch (different sizes, periodic + molecule) == each frame alone
``save_load``   ``load(save())`` predicts what the adapter did, and keeps its elements
``committee``   a committee saved as a committee folder and loaded by
                ``load_committee_folder`` predicts the mean of its members
``float32``     the batched module after ``.to(torch.float32)`` agrees with float64
``elements``    an element the model never saw is refused with a DataError naming it, by the
                batched module and by the calculator (skipped when ``elements`` is None)

Energies are compared per atom (eV/atom), forces per component (eV/Å), stress per component
(eV/Å^3); each number is the largest deviation found.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import Atoms

from common.errors import ConfigError, DataError

CHECKS: tuple[str, ...] = ("contract", "calculator", "forces", "stress", "batch", "save_load",
                           "committee", "float32", "elements")

#: elements tried, in order, as "never seen" in the ``elements`` check
FOREIGN_ELEMENTS: tuple[str, ...] = ("U", "H", "Xe", "He", "Ar")


@dataclass(frozen=True)
class Tolerances:
    """Largest deviation each check accepts (energies eV/atom, forces eV/Å, stress eV/Å^3).

    The finite-difference tolerances cover the O(h²) truncation error of central differences
    with h = 1e-4 Å (strain 1e-4) on smooth potentials; the float32 ones cover single
    precision on systems of a few hundred atoms; save/load, committee and batching are
    float64 computations that should agree to rounding.
    """

    contract_violations: float = 0.0
    calculator_energy_eV_per_atom: float = 1e-6
    calculator_forces_eV_A: float = 1e-5
    fd_forces_eV_A: float = 1e-4
    fd_stress_eV_A3: float = 1e-6
    batch_energy_eV_per_atom: float = 1e-9
    batch_forces_eV_A: float = 1e-8
    batch_stress_eV_A3: float = 1e-10
    save_load_energy_eV_per_atom: float = 1e-12
    save_load_forces_eV_A: float = 1e-10
    save_load_violations: float = 0.0
    committee_energy_eV_per_atom: float = 1e-12
    committee_forces_eV_A: float = 1e-10
    float32_energy_eV_per_atom: float = 1e-5
    float32_forces_eV_A: float = 5e-4
    elements_violations: float = 0.0

    def with_overrides(self, overrides: Mapping[str, float] | None) -> Tolerances:
        """Return a copy with some tolerances changed; an unknown name is a ConfigError."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides or {}) - names)
        if unknown:
            raise ConfigError(f"unknown tolerance(s) {', '.join(unknown)}", where="tolerances",
                              fix=f"use some of: {', '.join(sorted(names))}")
        return dataclasses.replace(self, **dict(overrides or {}))


class AdapterCheckFailed(AssertionError):
    """Raised by :func:`check_adapter`; ``.report`` holds every measured deviation."""

    def __init__(self, message: str, report: dict[str, Any]):
        super().__init__(message)
        self.report = report


@dataclass
class _Measure:
    name: str  # a Tolerances field
    value: float
    detail: str = ""


class _Skip(Exception):
    """A check that does not apply to this adapter (the reason is reported)."""


@dataclass
class _Context:
    adapter: Any
    members: list  # the committee for the committee check, adapter first
    committee_folder: Path | None  # written by train_committee, when the checker trained
    frames: list[Atoms]  # evaluation frames: mixed sizes, unlabelled
    workdir: Path
    fd_step_A: float
    strain_step: float
    n_fd_atoms: int


# -- entry point ---------------------------------------------------------------------------


def check_adapter(adapter: Any, frames: Iterable[Atoms], workdir: str | Path, *,
                  train_kwargs: Mapping[str, Any] | None = None, n_models: int = 2,
                  checks: Sequence[str] = CHECKS,
                  tolerances: Mapping[str, float] | Tolerances | None = None,
                  committee: Sequence[Any] | None = None, molecules: bool = True,
                  fd_step_A: float = 1e-4, strain_step: float = 1e-4, n_fd_atoms: int = 3
                  ) -> dict[str, dict[str, Any]]:
    """Run the adapter checks; raise :class:`AdapterCheckFailed` naming every failed one.

    Parameters
    ----------
    adapter : an adapter class (a committee of ``n_models`` is trained on ``frames`` with
        :func:`~common.potential.committee.train_committee` and ``train_kwargs``; the first
        member is checked) or a trained adapter instance.
    frames : labelled ASE Atoms (a Dataset works): the training data when ``adapter`` is a
        class, and the source of the evaluation frames (up to 3 sizes, plus a one-atom-smaller
        copy when all have one size, plus a non-periodic copy when ``molecules``).
    workdir : folder for the trained, saved and reloaded models.
    train_kwargs : keywords for ``train`` (``config``, ``seed``, ``device``...).
    checks : which checks to run (see :data:`CHECKS`).
    tolerances : a :class:`Tolerances`, or a dict overriding some of the defaults.
    committee : with an adapter instance, the other members of the committee saved for the
        committee check (default: a second copy of ``adapter``).
    molecules : whether the adapter takes non-periodic structures next to periodic ones.
    fd_step_A, strain_step : finite-difference steps (Å, dimensionless strain).
    n_fd_atoms : atoms per frame whose forces are checked by finite differences.

    Returns
    -------
    dict: per check, the measured deviations (keyed like :class:`Tolerances`), or
    ``{"skipped": reason}``.
    """
    tol = tolerances if isinstance(tolerances, Tolerances) else Tolerances().with_overrides(
        tolerances)
    unknown = sorted(set(checks) - set(CHECKS))
    if unknown:
        raise ConfigError(f"unknown check(s) {', '.join(unknown)}", where="checks",
                          fix=f"use some of: {', '.join(CHECKS)}")
    ctx = _context(adapter, list(frames), Path(workdir), dict(train_kwargs or {}), n_models,
                   committee, molecules, fd_step_A, strain_step, n_fd_atoms)
    report, failures = {}, []
    for name in checks:
        report[name], failed = _run_check(name, ctx, tol)
        failures += failed
    if failures:
        title = f"check_adapter({type(ctx.adapter).__name__}): {len(failures)} failure(s)"
        raise AdapterCheckFailed("\n  ".join([title, *failures]), report)
    return report


def _run_check(name: str, ctx: _Context, tol: Tolerances) -> tuple[dict[str, Any], list[str]]:
    """Run one check; return its report entry and its failure lines."""
    try:
        measures = _CHECK_FUNCTIONS[name](ctx)
    except _Skip as skip:
        return {"skipped": str(skip)}, []
    except Exception as exc:
        exc.add_note(f"(raised during check_adapter's {name!r} check)")
        raise
    entry, failed = {}, []
    for m in measures:
        entry[m.name] = m.value
        limit = getattr(tol, m.name)
        if not m.value <= limit:  # NaN fails too
            failed.append(f"{name}: {m.name} = {m.value:.3g} > {limit:.3g}"
                          + (f" ({m.detail})" if m.detail else ""))
    return entry, failed


def _context(adapter, frames, workdir, train_kwargs, n_models, committee, molecules,
             fd_step_A, strain_step, n_fd_atoms) -> _Context:
    if not frames:
        raise DataError("no frames to check the adapter on", where="frames",
                        fix="pass a few labelled structures")
    workdir.mkdir(parents=True, exist_ok=True)
    folder = None
    if inspect.isclass(adapter):
        folder, members = _train_committee(adapter, frames, workdir, train_kwargs, n_models)
    else:
        members = [adapter, *(committee or [adapter])]
    return _Context(members[0], members, folder, evaluation_frames(frames, molecules=molecules),
                    workdir, fd_step_A, strain_step, n_fd_atoms)


def _train_committee(cls, frames, workdir, train_kwargs, n_models) -> tuple[Path, list]:
    """Train ``n_models`` members with the adapter's own ``train``.

    Every 5th frame is the validation set, the rest the training set.
    """
    from common.data import Dataset
    from common.potential.committee import train_committee

    ds = Dataset.from_frames(frames)
    is_valid = np.arange(len(ds)) % 5 == 0
    folder, members = train_committee(cls, ds[~is_valid], ds[is_valid], workdir / "committee",
                                     max(n_models, 2), **train_kwargs)
    return Path(folder), list(members)


def evaluation_frames(frames: Sequence[Atoms], n_eval: int = 3, molecules: bool = True
                      ) -> list[Atoms]:
    """Unlabelled frames of at least two sizes, with a non-periodic one when ``molecules``."""
    picked, sizes = [], set()
    for a in frames:
        if len(a) not in sizes and len(picked) < n_eval:
            picked.append(_bare(a))
            sizes.add(len(a))
    if len(sizes) < 2:
        picked.append(_one_atom_fewer(picked[0]))
    if molecules and all(a.pbc.any() for a in picked):
        mol = _bare(picked[0])
        mol.pbc, mol.cell = False, np.zeros((3, 3))
        picked.append(mol)
    return picked


def _bare(a: Atoms) -> Atoms:
    b = a.copy()
    b.calc = None
    return b


def _one_atom_fewer(a: Atoms) -> Atoms:
    """Drop the last atom of ``a`` whose element occurs more than once (the elements stay)."""
    b = _bare(a)
    counts = np.bincount(b.numbers)
    candidates = [i for i in range(len(b)) if counts[b.numbers[i]] > 1]
    if not candidates:
        raise DataError("cannot make a smaller frame without losing an element",
                        where="frames", fix="pass frames of at least two different sizes")
    del b[candidates[-1]]
    return b


# -- evaluation helpers --------------------------------------------------------------------


@dataclass
class _Prediction:
    energy: np.ndarray  # (n_frames,)
    forces: list[np.ndarray]  # per frame (n_atoms, 3)
    stress: np.ndarray | None  # (n_frames, 3, 3)
    n_atoms: np.ndarray


def _predict(potential, frames: Sequence[Atoms], dtype=torch.float64) -> _Prediction:
    """One batched call on ``frames``."""
    from common.potential.protocol import evaluate

    out = evaluate(potential, list(frames), dtype=dtype)
    n = np.array([len(a) for a in frames])
    f = out["forces"].detach().cpu().double().numpy()
    stress = out.get("stress")
    return _Prediction(out["energy"].detach().cpu().double().numpy(),
                       np.split(f, np.cumsum(n)[:-1]),
                       None if stress is None else stress.detach().cpu().double().numpy(), n)


def _one_by_one(potential, frames: Sequence[Atoms]) -> _Prediction:
    parts = [_predict(potential, [a]) for a in frames]
    stress = None if parts[0].stress is None else np.concatenate([p.stress for p in parts])
    return _Prediction(np.concatenate([p.energy for p in parts]),
                       [p.forces[0] for p in parts], stress,
                       np.array([len(a) for a in frames]))


def _compare(prefix: str, a: _Prediction, b: _Prediction, stress: bool = False
             ) -> list[_Measure]:
    """Largest per-atom energy and force-component deviations (and stress) of a vs b."""
    de = np.abs(a.energy - b.energy) / a.n_atoms
    df = [np.abs(x - y).max() for x, y in zip(a.forces, b.forces, strict=True)]
    out = [_Measure(f"{prefix}_energy_eV_per_atom", float(de.max()),
                    f"worst: frame {int(de.argmax())}"),
           _Measure(f"{prefix}_forces_eV_A", float(max(df)),
                    f"worst: frame {int(np.argmax(df))}")]
    if stress and a.stress is not None and b.stress is not None:
        ds = np.abs(a.stress - b.stress).reshape(len(a.energy), -1).max(1)
        out.append(_Measure(f"{prefix}_stress_eV_A3", float(ds.max()),
                            f"worst: frame {int(ds.argmax())}"))
    return out


def _energy(potential, atoms: Atoms) -> float:
    return float(_predict(potential, [atoms]).energy[0])


# -- the checks ----------------------------------------------------------------------------


def _check_contract(ctx: _Context) -> list[_Measure]:
    """Members of the protocol, train keywords, meta keys."""
    from common.potential.protocol import TRAIN_KEYWORDS

    a, problems = ctx.adapter, []
    members = ("name", "meta", "elements", "train", "load", "save", "calculator", "batched")
    problems += [f"no {m!r}" for m in members if not hasattr(a, m)]
    if hasattr(a, "train"):
        params = inspect.signature(a.train).parameters
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            problems += [f"train() takes no {k}=" for k in TRAIN_KEYWORDS if k not in params]
    meta = getattr(a, "meta", None)
    if not isinstance(meta, dict) or not isinstance(meta.get("framework"), str):
        problems.append("meta['framework'] is not a string")
    elif hasattr(a, "elements") and _symbols(meta.get("elements")) != _symbols(a.elements):
        problems.append(f"meta['elements'] {meta.get('elements')} != elements {a.elements}")
    return [_Measure("contract_violations", float(len(problems)), "; ".join(problems))]


def _symbols(x) -> tuple[str, ...] | None:
    return None if not x else tuple(x)


def _check_calculator(ctx: _Context) -> list[_Measure]:
    """Batched module (one frame at a time) vs the adapter's ASE calculator."""
    energies, forces = [], []
    for a in ctx.frames:
        b = _bare(a)
        b.calc = ctx.adapter.calculator()
        energies.append(b.get_potential_energy())
        forces.append(np.asarray(b.get_forces(), dtype=float))
    calc = _Prediction(np.array(energies), forces, None, np.array([len(a) for a in ctx.frames]))
    return _compare("calculator", calc, _one_by_one(ctx.adapter.batched(), ctx.frames))


def _check_forces(ctx: _Context) -> list[_Measure]:
    """F = -dE/dx by central differences on a few atoms of the first two frames."""
    pot, h = ctx.adapter.batched(), ctx.fd_step_A
    worst, where = 0.0, ""
    for k, a in enumerate(ctx.frames[:2]):
        forces = _predict(pot, [a]).forces[0]
        for i in np.unique(np.linspace(0, len(a) - 1, ctx.n_fd_atoms).round().astype(int)):
            for c in range(3):
                fd = -(_energy(pot, _moved(a, i, c, h)) - _energy(pot, _moved(a, i, c, -h))) / (
                    2 * h)
                err = abs(fd - forces[i, c])
                if err > worst or np.isnan(err):
                    worst = err
                    where = (f"frame {k} atom {int(i)} {'xyz'[c]}: F = {forces[i, c]:.6g}, "
                             f"-dE/dx = {fd:.6g} eV/Å")
    return [_Measure("fd_forces_eV_A", float(worst), where)]


def _moved(a: Atoms, i: int, c: int, step: float) -> Atoms:
    b = _bare(a)
    b.positions[i, c] += step
    return b


def _check_stress(ctx: _Context) -> list[_Measure]:
    """Check the stress against (1/V) dE/dε by central differences of symmetric strains.

    ASE's sign convention.
    """
    pot = ctx.adapter.batched()
    if not pot.has_stress:
        raise _Skip("the batched module does not claim stress (has_stress is False)")
    periodic = [a for a in ctx.frames if a.pbc.any() and abs(a.cell.volume) > 0]
    if not periodic:
        raise _Skip("no periodic frame among the frames")
    a = periodic[0]
    model = _predict(pot, [a]).stress[0]
    fd = np.zeros((3, 3))
    for p in range(3):
        for q in range(p, 3):
            e_plus = _energy(pot, _strained(a, p, q, ctx.strain_step))
            e_minus = _energy(pot, _strained(a, p, q, -ctx.strain_step))
            fd[p, q] = fd[q, p] = (e_plus - e_minus) / (2 * ctx.strain_step * a.cell.volume)
    err = np.abs(model - fd)
    p, q = np.unravel_index(int(err.argmax()), err.shape)
    return [_Measure("fd_stress_eV_A3", float(err.max()),
                     f"component {'xyz'[p]}{'xyz'[q]}: stress = {model[p, q]:.6g}, "
                     f"(1/V) dE/dε = {fd[p, q]:.6g} eV/Å^3")]


def _strained(a: Atoms, p: int, q: int, eps: float) -> Atoms:
    """Return ``a`` with cell and positions under the symmetric strain ε_pq = ε_qp = eps/2.

    On the diagonal the strain is eps; r -> r (1 + ε).
    """
    strain = np.eye(3)
    strain[p, q] += eps / 2
    strain[q, p] += eps / 2
    b = _bare(a)
    b.set_cell(a.cell.array @ strain, scale_atoms=True)
    return b


def _check_batch(ctx: _Context) -> list[_Measure]:
    """All evaluation frames in one batch vs each alone."""
    pot = ctx.adapter.batched()
    return _compare("batch", _predict(pot, ctx.frames), _one_by_one(pot, ctx.frames),
                    stress=pot.has_stress)


def _check_save_load(ctx: _Context) -> list[_Measure]:
    """Check that a saved and reloaded adapter predicts the same and keeps its elements.

    The reloaded adapter is ``type(adapter).load(adapter.save(path))``.
    """
    path = ctx.adapter.save(ctx.workdir / "check_saved") or ctx.workdir / "check_saved"
    again = type(ctx.adapter).load(path)
    out = _compare("save_load", _predict(again.batched(), ctx.frames),
                   _predict(ctx.adapter.batched(), ctx.frames))
    kept = _symbols(getattr(again, "elements", None)) == _symbols(
        getattr(ctx.adapter, "elements", None))
    out.append(_Measure("save_load_violations", 0.0 if kept else 1.0,
                        "" if kept else f"elements {getattr(ctx.adapter, 'elements', None)} "
                        f"came back as {getattr(again, 'elements', None)}"))
    return out


def _check_committee(ctx: _Context) -> list[_Measure]:
    """Check that a committee loaded from its committee folder == the mean of its members."""
    from common.potential.committee import load_committee_folder

    folder = ctx.committee_folder or _save_committee(ctx)
    loaded = _predict(load_committee_folder(folder), ctx.frames)
    parts = [_predict(m.batched(), ctx.frames) for m in ctx.members]
    mean = _Prediction(np.mean([p.energy for p in parts], axis=0),
                       [np.mean(fs, axis=0) for fs in zip(*(p.forces for p in parts),
                                                          strict=True)],
                       None, parts[0].n_atoms)
    return _compare("committee", loaded, mean)


def _save_committee(ctx: _Context) -> Path:
    from common.potential.committee import save_committee_folder

    folder = ctx.workdir / "check_committee"
    dirs = [m.save(folder / f"member_{k}") or folder / f"member_{k}"
            for k, m in enumerate(ctx.members)]
    return Path(save_committee_folder(folder, dirs, framework=type(ctx.adapter).name))


def _check_float32(ctx: _Context) -> list[_Measure]:
    """Compare the batched module after ``.to(torch.float32)`` with float64."""
    pot64 = ctx.adapter.batched()
    pot32 = copy.deepcopy(pot64).to(torch.float32)
    return _compare("float32", _predict(pot32, ctx.frames, dtype=torch.float32),
                    _predict(pot64, ctx.frames))


def _check_elements(ctx: _Context) -> list[_Measure]:
    """Check that a frame with an element the model never saw is refused.

    The refusal is a DataError naming it, from the batched module (as structure 1 of a batch)
    and from the calculator.
    """
    from ase.data import atomic_numbers

    known = getattr(ctx.adapter, "elements", None)
    if known is None:
        raise _Skip("the model takes any element (elements is None)")
    foreign = next(s for s in FOREIGN_ELEMENTS if s not in known)
    bad = _bare(ctx.frames[0])
    bad.numbers[-1] = atomic_numbers[foreign]
    problems = [p for p in (
        _refusal(lambda: _predict(ctx.adapter.batched(), [ctx.frames[0], bad]), foreign,
                 "the batched module", "structure 1"),
        _refusal(lambda: _calc_energy(ctx.adapter, bad), foreign, "the calculator", None),
    ) if p]
    return [_Measure("elements_violations", float(len(problems)), "; ".join(problems))]


def _calc_energy(adapter, atoms: Atoms) -> float:
    atoms.calc = adapter.calculator()
    return atoms.get_potential_energy()


def _refusal(run: Callable[[], Any], symbol: str, who: str, where: str | None) -> str:
    """'' if ``run`` raises a DataError naming ``symbol`` (and ``where``), else the problem."""
    try:
        run()
    except DataError as exc:
        text = str(exc)
        if not re.search(rf"\b{symbol}\b", text) or (where and where not in text):
            return f"{who}'s DataError does not name {symbol} and {where}: {text}"
        return ""
    except Exception as exc:  # a framework error, not ours
        return f"{who} raised {type(exc).__name__} instead of a DataError: {exc}"
    return f"{who} ran on {symbol} without a word"


_CHECK_FUNCTIONS: dict[str, Callable[[_Context], list[_Measure]]] = {
    "contract": _check_contract, "calculator": _check_calculator, "forces": _check_forces,
    "stress": _check_stress, "batch": _check_batch, "save_load": _check_save_load,
    "committee": _check_committee, "float32": _check_float32, "elements": _check_elements,
}
