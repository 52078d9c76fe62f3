"""One labelled-data type for every framework: a list of ASE ``Atoms`` with reference labels.

Labels live on each frame as a :class:`~ase.calculators.singlepoint.SinglePointCalculator`
(``energy`` in eV, ``forces`` in eV/Å, optional ``stress`` in eV/Å^3, ASE sign and Voigt order);
``atoms.info`` may carry ``charge`` and ``multiplicity``. A :class:`Dataset` remembers the file
it came from so that every error names the file and the frame.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, overload

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.data import atomic_numbers, chemical_symbols

from common.data.io import read_structures, structure_hash
from common.errors import ConfigError, DataError
from common.fileio import atomic_path

#: label names kept on a frame's SinglePointCalculator
LABEL_KEYS = ("energy", "forces", "stress", "free_energy")
#: info/arrays keys used by MACE/NequIP extxyz files (see common.data.export)
REF_KEYS = {"energy": "REF_energy", "forces": "REF_forces", "stress": "REF_stress"}
#: the groups of checks :meth:`Dataset.problems` can run
CHECKS = ("labels", "finite", "forces", "overlap", "duplicates", "elements")

#: info key -> ASE db key-value name ("charge" is taken by the row's sum of initial charges)
_DB_INFO_KEYS = {"charge": "total_charge", "multiplicity": "multiplicity"}

_FIXES = {
    "missing_energy": "label the frame (mlp-cases label) or drop it",
    "missing_forces": "label the frame with a calculator that gives forces, or drop it",
    "missing_stress": "label periodic frames with stress, or do not require stress",
    "bad_forces": "forces must have shape (n_atoms, 3); relabel the frame",
    "bad_stress": "stress must have 6 (Voigt) or 9 components; relabel the frame",
    "nonfinite_positions": "drop the frame; its geometry is broken (NaN/inf positions)",
    "nonfinite_energy": "drop or relabel the frame (the reference calculation failed)",
    "nonfinite_forces": "drop or relabel the frame (the reference calculation failed)",
    "nonfinite_stress": "drop or relabel the frame (the reference calculation failed)",
    "large_force": "drop the frame (likely an unconverged or exploded calculation) or raise "
                   "--max-force",
    "overlap": "drop the frame (atoms on top of each other) or lower --min-distance",
    "bad_cell": "give periodic frames a non-degenerate cell, or set pbc=False",
    "duplicate": "remove the duplicate frames (they bias training and leak across splits)",
    "unknown_element": "remove frames with elements outside the model's element list, or add "
                       "the element",
}


@dataclass(frozen=True)
class Problem:
    """One finding of :meth:`Dataset.problems`.

    Attributes
    ----------
    frame : index of the frame in this dataset (``dataset[frame]``)
    kind : short name, e.g. ``missing_forces``, ``large_force``, ``overlap``, ``duplicate``
    detail : human-readable detail with values and units
    where : the file and the frame's index in that file (``"data.extxyz frame 7"``)
    """

    frame: int
    kind: str
    detail: str
    where: str

    def as_dict(self) -> dict[str, Any]:
        """Return the problem as a plain dict (JSON-ready)."""
        return asdict(self)


def get_labels(atoms: Atoms) -> dict[str, Any]:
    """Return the reference labels stored on ``atoms`` (``energy`` eV, ``forces`` eV/Å, ``stress``).

    Reads the calculator's ``results`` directly (never recomputes, never checks the atoms'
    state), so labels survive a later change of the Atoms object.
    """
    calc = atoms.calc
    results = getattr(calc, "results", None) or {}
    return {k: results[k] for k in LABEL_KEYS if results.get(k) is not None}


def with_labels(atoms: Atoms, energy: float | None = None, forces: Any = None,
                stress: Any = None, **extra: Any) -> Atoms:
    """Return a copy of ``atoms`` carrying the given labels on a SinglePointCalculator.

    Parameters
    ----------
    energy : total energy in eV
    forces : (n_atoms, 3) forces in eV/Å
    stress : 6 (Voigt) or 3x3 stress in eV/Å^3 (ASE sign convention)
    """
    a = atoms.copy()
    a.calc = None
    results: dict[str, Any] = {}
    if energy is not None:
        results["energy"] = float(energy)
    if forces is not None:
        results["forces"] = np.array(forces, dtype=float)
    if stress is not None:
        s = np.asarray(stress, dtype=float)
        if s.shape in ((3, 3), (9,)):
            s = s.reshape(3, 3)
            s = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
        results["stress"] = s
    results.update({k: v for k, v in extra.items() if v is not None})
    if results:
        a.calc = SinglePointCalculator(a, **results)
    return a


def _frozen(atoms: Atoms, source: str | None = None, index: int | None = None) -> Atoms:
    """Return ``atoms`` with its labels on a SinglePointCalculator.

    Frames that already have one (or no labels) are returned as they are; a live calculator's
    results, or MACE/NequIP ``REF_*`` keys in ``info``/``arrays``, are copied onto one.
    """
    if not isinstance(atoms, Atoms):
        where = f"{source} frame {index}" if source else f"frame {index}"
        raise DataError(f"expected an ase.Atoms, got {type(atoms).__name__}", where=where,
                        fix="pass a list of ase.Atoms objects")
    calc = atoms.calc
    if calc is None:
        if REF_KEYS["energy"] in atoms.info or REF_KEYS["forces"] in atoms.arrays:
            a = with_labels(atoms, atoms.info.get(REF_KEYS["energy"]),
                            atoms.arrays.get(REF_KEYS["forces"]),
                            atoms.info.get(REF_KEYS["stress"]))
            a.info.pop(REF_KEYS["energy"], None)
            a.info.pop(REF_KEYS["stress"], None)
            if REF_KEYS["forces"] in a.arrays:
                del a.arrays[REF_KEYS["forces"]]
            return a
        return atoms
    if isinstance(calc, SinglePointCalculator):
        return atoms
    labels = get_labels(atoms)
    return with_labels(atoms, **labels) if labels else _without_calc(atoms)


def _without_calc(atoms: Atoms) -> Atoms:
    a = atoms.copy()
    a.calc = None
    return a


def _symbol_or_z(e: str | int) -> int:
    if isinstance(e, (int, np.integer)):
        if not 0 < int(e) < len(chemical_symbols):
            raise ConfigError(f"no element with Z={e}", where="elements",
                              fix="give element symbols such as 'Cu', 'Pt', 'H'")
        return int(e)
    if e not in atomic_numbers:
        raise ConfigError(f"unknown element symbol {e!r}", where="elements",
                          fix="give element symbols such as 'Cu', 'Pt', 'H'")
    return atomic_numbers[e]


class Dataset:
    """A list of labelled frames (ASE ``Atoms``) with the name of the file they came from.

    ``len(ds)``, iteration and ``ds[i]`` (an ``Atoms``) work like a list; ``ds[a:b]``,
    ``ds[[i, j]]`` and boolean masks give a new :class:`Dataset` that remembers the source file
    and the frames' indices in it, so errors still name the original frame.
    """

    def __init__(self, frames: Iterable[Atoms] = (), source: str | None = None,
                 source_index: Sequence[int] | None = None):
        self.source = source
        self.frames: list[Atoms] = [_frozen(a, source, i) for i, a in enumerate(frames)]
        if source_index is None:
            source_index = range(len(self.frames))
        self.source_index: list[int] = [int(i) for i in source_index]
        if len(self.source_index) != len(self.frames):
            raise ValueError("source_index must have one entry per frame")

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def read(cls, path: str | os.PathLike, index: str | int = ":",
             format: str | None = None) -> Dataset:
        """Read every frame of ``path``.

        Any ``ase.io`` format (extxyz, OUTCAR, vasprun.xml, QE output, traj...), an ASE
        database (``.db`` on SQLite, or a ``postgresql://`` URL), a deepmd/npy system folder,
        or a folder whose subfolders are deepmd/npy systems (as ``export(ds, "deepmd", ...)``
        writes them).
        MACE/NequIP ``REF_energy``/``REF_forces``/``REF_stress`` keys become labels.
        """
        spath = os.fspath(path)
        if spath.startswith(("postgresql://", "postgres://")):
            return cls(_read_db_url(spath), source=spath)
        p = Path(spath)
        if p.is_dir() and not (p / "type.raw").exists():
            systems = sorted(q.parent for q in p.glob("*/type.raw"))
            if systems:
                frames: list[Atoms] = []
                for s in systems:
                    frames.extend(read_structures(s))
                return cls(frames, source=str(p))
        frames = read_structures(p, index=index, format=format)
        if p.suffix == ".db" and index == ":":
            _restore_db_info(p, frames)
        return cls(frames, source=str(p))

    @classmethod
    def from_frames(cls, frames: Iterable[Atoms], source: str | None = None) -> Dataset:
        """Make a dataset from Atoms in memory; a live calculator's results become labels."""
        return cls(frames, source=source)

    # -- list behaviour -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.frames)

    def __iter__(self) -> Iterator[Atoms]:
        return iter(self.frames)

    @overload
    def __getitem__(self, key: int) -> Atoms: ...

    @overload
    def __getitem__(self, key: slice | Sequence[int] | np.ndarray) -> Dataset: ...

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            return self.frames[int(key)]
        if isinstance(key, slice):
            idx = list(range(len(self.frames)))[key]
        else:
            arr = np.asarray(key)
            if arr.dtype == bool:
                if arr.shape != (len(self),):
                    raise IndexError(f"boolean mask of length {arr.size} for {len(self)} frames")
                idx = np.flatnonzero(arr).tolist()
            else:
                idx = [int(i) for i in arr.reshape(-1)]
        return self._subset(idx)

    def _subset(self, idx: Sequence[int]) -> Dataset:
        ds = Dataset.__new__(Dataset)
        ds.source = self.source
        ds.frames = [self.frames[i] for i in idx]
        ds.source_index = [self.source_index[i] for i in idx]
        return ds

    def __add__(self, other: Dataset) -> Dataset:
        src = self.source if self.source == other.source else None
        ds = Dataset.__new__(Dataset)
        ds.source = src
        ds.frames = self.frames + other.frames
        ds.source_index = (self.source_index + other.source_index if src
                           else list(range(len(ds.frames))))
        return ds

    def __repr__(self) -> str:
        src = f", source={self.source!r}" if self.source else ""
        return f"Dataset({len(self)} frames{src})"

    def where(self, i: int) -> str:
        """Return ``"<file> frame <index in file>"`` for frame ``i`` of this dataset."""
        j = self.source_index[i]
        return f"{self.source} frame {j}" if self.source else f"frame {j}"

    @property
    def elements(self) -> list[str]:
        """The element symbols present, sorted by atomic number."""
        zs: set[int] = set()
        for a in self.frames:
            zs.update(int(z) for z in np.unique(a.numbers))
        return [chemical_symbols[z] if 0 <= z < len(chemical_symbols) else str(z)
                for z in sorted(zs)]

    def labels(self, i: int) -> dict[str, Any]:
        """Labels of frame ``i``: ``energy`` (eV), ``forces`` (eV/Å), ``stress`` (eV/Å^3)."""
        return get_labels(self.frames[i])

    # -- writing --------------------------------------------------------------------------------

    def write(self, path: str | os.PathLike, overwrite: bool = False,
              format: str | None = None) -> Path:
        """Write all frames with their labels.

        ``.extxyz``/``.xyz`` → extended XYZ (energy, forces, stress in ASE's keys); ``.db`` →
        ASE database (SQLite; ``charge``/``multiplicity`` kept as the key-value pairs
        ``total_charge``/``multiplicity``); any other
        suffix → ``ase.io.write`` (``format`` overrides the guess). The file is written next to
        its destination and moved into place, so a crash never leaves half a file.
        """
        p = Path(path)
        if not self.frames:
            raise DataError("nothing to write: the dataset is empty", where=str(p),
                            fix="check the input file and the split fractions")
        check_overwrite(p, overwrite)
        if p.is_dir():
            raise DataError("a folder is in the way of the output file", where=str(p),
                            fix="choose another output path")
        fmt = format or _format_for(p)
        frames = [with_labels(a, **get_labels(a)) for a in self.frames]
        try:
            with atomic_path(p) as tmp:
                if fmt == "db":
                    os.remove(tmp)  # ase.db wants to create the file itself
                    _write_db(str(tmp), frames)
                else:
                    import ase.io

                    ase.io.write(tmp, frames, format=fmt)
        except Exception as exc:
            if isinstance(exc, DataError):
                raise
            raise DataError(f"cannot write {fmt} ({type(exc).__name__}: {exc})", where=str(p),
                            fix="choose a suffix ASE writes (.extxyz, .db, .traj) or pass "
                                "`format`") from exc
        return p

    # -- validation -----------------------------------------------------------------------------

    def problems(self, max_force_eV_A: float = 50.0, min_distance_A: float = 0.5,
                 elements: Collection[str | int] | None = None,
                 require: Sequence[str] = ("energy", "forces"),
                 checks: Collection[str] = CHECKS) -> list[Problem]:
        """Every finding, in frame order (several per frame possible).

        Parameters
        ----------
        max_force_eV_A : largest allowed per-atom |F| in eV/Å
        min_distance_A : smallest allowed interatomic distance in Å (minimum image under pbc)
        elements : allowed elements (symbols or Z); ``None`` allows any real element (Z >= 1)
        require : labels every frame must have (``energy``, ``forces``, ``stress``)
        checks : which groups to run, a subset of :data:`CHECKS`
        """
        unknown = set(checks) - set(CHECKS)
        if unknown:
            raise ConfigError(f"unknown checks {sorted(unknown)}", where="checks",
                              fix=f"choose from {', '.join(CHECKS)}")
        bad_req = set(require) - {"energy", "forces", "stress"}
        if bad_req:
            raise ConfigError(f"unknown required labels {sorted(bad_req)}", where="require",
                              fix="choose from energy, forces, stress")
        allowed = None if elements is None else {_symbol_or_z(e) for e in elements}
        out: list[Problem] = []
        seen: dict[str, int] = {}
        for i, atoms in enumerate(self.frames):
            found: list[tuple[str, str]] = []
            labels = get_labels(atoms)
            n = len(atoms)
            pos_ok = bool(np.all(np.isfinite(atoms.positions)))
            forces = labels.get("forces")
            if forces is not None:
                forces = np.asarray(forces, dtype=float)
                if forces.shape != (n, 3):
                    found.append(("bad_forces", f"forces have shape {forces.shape}, "
                                                f"expected ({n}, 3)"))
                    forces = None
            stress = labels.get("stress")
            if stress is not None:
                stress = np.asarray(stress, dtype=float)
                if stress.size not in (6, 9):
                    found.append(("bad_stress", f"stress has shape {stress.shape}"))
                    stress = None
            if "labels" in checks:
                for key in require:
                    if key not in labels:
                        found.append((f"missing_{key}", f"no {key} label"))
            if "finite" in checks:
                if not pos_ok:
                    bad = np.flatnonzero(~np.all(np.isfinite(atoms.positions), axis=1))
                    found.append(("nonfinite_positions",
                                  f"{bad.size} atoms have NaN/inf positions (first: atom "
                                  f"{bad[0]})"))
                if "energy" in labels and not np.isfinite(labels["energy"]):
                    found.append(("nonfinite_energy", f"energy is {labels['energy']}"))
                if forces is not None and not np.all(np.isfinite(forces)):
                    bad = np.flatnonzero(~np.all(np.isfinite(forces), axis=1))
                    found.append(("nonfinite_forces",
                                  f"{bad.size} atoms have NaN/inf forces (first: atom {bad[0]})"))
                if stress is not None and not np.all(np.isfinite(stress)):
                    found.append(("nonfinite_stress", "stress has NaN/inf components"))
            if "forces" in checks and forces is not None and n:
                with np.errstate(invalid="ignore"):
                    fmag = np.linalg.norm(forces, axis=1)
                finite = np.isfinite(fmag)
                if finite.any() and fmag[finite].max() > max_force_eV_A:
                    k = int(np.flatnonzero(finite)[np.argmax(fmag[finite])])
                    found.append(("large_force", f"|F| = {fmag[k]:.3g} eV/Å on atom {k} "
                                                 f"(limit {max_force_eV_A:g} eV/Å)"))
            if "overlap" in checks and pos_ok and n > 0:
                found.extend(_overlap(atoms, min_distance_A))
            if "elements" in checks:
                zs = np.unique(atoms.numbers)
                bad_z = [int(z) for z in zs
                         if z <= 0 or z >= len(chemical_symbols)
                         or (allowed is not None and int(z) not in allowed)]
                if bad_z:
                    names = [chemical_symbols[z] if 0 < z < len(chemical_symbols) else f"Z={z}"
                             for z in bad_z]
                    allow = "" if allowed is None else " (allowed: {})".format(
                        ", ".join(chemical_symbols[z] for z in sorted(allowed)))
                    found.append(("unknown_element", f"elements {', '.join(names)}{allow}"))
            if "duplicates" in checks and pos_ok:
                h = structure_hash(atoms)
                if h in seen:
                    found.append(("duplicate", f"same structure as {self.where(seen[h])}"))
                else:
                    seen[h] = i
            out.extend(Problem(i, kind, detail, self.where(i)) for kind, detail in found)
        return out

    def validate(self, max_force_eV_A: float = 50.0, min_distance_A: float = 0.5,
                 elements: Collection[str | int] | None = None,
                 require: Sequence[str] = ("energy", "forces"),
                 checks: Collection[str] = CHECKS) -> Dataset:
        """Raise :class:`DataError` naming the first bad frame; return ``self`` when all is well.

        Same parameters as :meth:`problems`. The message gives the first problem, its frame
        (file and index), how many frames are bad, and the fix.
        """
        found = self.problems(max_force_eV_A, min_distance_A, elements, require, checks)
        if found:
            what, kw = summarize_problems(found, len(self))
            raise DataError(what, **kw)
        return self

    # -- splitting -----------------------------------------------------------------------------

    def split(self, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0
              ) -> tuple[Dataset, Dataset, Dataset]:
        """Seeded random (train, valid, test) split: disjoint, covering, deterministic.

        ``valid`` and ``test`` get ``round(fraction * n)`` frames, ``train`` the rest. A zero
        fraction gives an empty part; a positive fraction that would give no frame is an error.
        """
        fr = [float(f) for f in fractions]
        if len(fr) != 3:
            raise ConfigError(f"need 3 fractions (train, valid, test), got {len(fr)}",
                              where="fractions", fix="give e.g. 0.8,0.1,0.1")
        if any(f < 0 or not np.isfinite(f) for f in fr) or abs(sum(fr) - 1.0) > 1e-6:
            raise ConfigError(f"fractions {fr} must be >= 0 and sum to 1 (sum {sum(fr):g})",
                              where="fractions", fix="give e.g. 0.8,0.1,0.1")
        n = len(self)
        n_valid, n_test = round(fr[1] * n), round(fr[2] * n)
        n_train = n - n_valid - n_test
        for name, f, k in (("train", fr[0], n_train), ("valid", fr[1], n_valid),
                           ("test", fr[2], n_test)):
            if f > 0 and k <= 0:
                raise DataError(
                    f"the {name} split would be empty ({f:g} of {n} frames)",
                    where=self.source or "dataset",
                    fix=f"use more frames, or change `fractions` (a {name} fraction of 0 "
                        "skips that part)")
        perm = np.random.default_rng(seed).permutation(n)
        parts = (perm[:n_train], perm[n_train:n_train + n_valid], perm[n_train + n_valid:])
        train, valid, test = (self._subset(sorted(int(i) for i in p)) for p in parts)
        return train, valid, test

    # -- statistics ------------------------------------------------------------------------------

    def reference_energies(self) -> dict[str, float]:
        """Per-element reference ("atomic") energies in eV by least squares, E ≈ Σ_Z n_Z e_Z.

        Uses the frames with a finite energy. With too few distinct compositions the system is
        underdetermined and the minimum-norm solution is returned (e.g. one composition: the
        energy is shared in proportion to the counts).
        """
        elems = self.elements
        rows, energies = [], []
        col = {s: k for k, s in enumerate(elems)}
        for a in self.frames:
            e = get_labels(a).get("energy")
            if e is None or not np.isfinite(e):
                continue
            r = np.zeros(len(elems))
            for s in a.get_chemical_symbols():
                r[col[s]] += 1
            rows.append(r)
            energies.append(float(e))
        if not rows:
            return {}
        coef, *_ = np.linalg.lstsq(np.array(rows), np.array(energies), rcond=None)
        return {s: float(c) for s, c in zip(elems, coef, strict=True)}

    def stats(self) -> dict[str, Any]:
        """Summary numbers (units in the key names).

        Keys: ``source``, ``n_frames``, ``n_atoms`` (total), ``elements`` (by Z),
        ``element_counts`` (atoms per element), ``n_energy``/``n_forces``/``n_stress`` (frames
        with that label), ``energy_per_atom_eV`` (mean, std (population), min, max),
        ``force_rms_eV_A`` (rms over all force components), ``force_max_eV_A`` (largest
        per-atom |F|), ``reference_energies_eV`` (see :meth:`reference_energies`) and
        ``reference_rmse_eV_per_atom`` (rms per-atom residual of that fit). Non-finite labels
        are left out of the numbers.
        """
        counts: dict[str, int] = {s: 0 for s in self.elements}
        epa, fcomp, n_e, n_f, n_s = [], [], 0, 0, 0
        for a in self.frames:
            for s, c in zip(*np.unique(a.get_chemical_symbols(), return_counts=True), strict=True):
                counts[str(s)] += int(c)
            lab = get_labels(a)
            if "energy" in lab:
                n_e += 1
                if np.isfinite(lab["energy"]) and len(a):
                    epa.append(lab["energy"] / len(a))
            if "forces" in lab:
                n_f += 1
                f = np.asarray(lab["forces"], dtype=float).reshape(-1, 3)
                fcomp.append(f[np.all(np.isfinite(f), axis=1)])
            if "stress" in lab:
                n_s += 1
        out: dict[str, Any] = {
            "source": self.source,
            "n_frames": len(self),
            "n_atoms": int(sum(len(a) for a in self.frames)),
            "elements": self.elements,
            "element_counts": counts,
            "n_energy": n_e,
            "n_forces": n_f,
            "n_stress": n_s,
        }
        if epa:
            e = np.array(epa)
            out["energy_per_atom_eV"] = {"mean": float(e.mean()), "std": float(e.std()),
                                         "min": float(e.min()), "max": float(e.max())}
        else:
            out["energy_per_atom_eV"] = None
        f_all = np.concatenate(fcomp) if fcomp else np.zeros((0, 3))
        out["force_rms_eV_A"] = float(np.sqrt(np.mean(f_all**2))) if f_all.size else None
        out["force_max_eV_A"] = (float(np.linalg.norm(f_all, axis=1).max()) if f_all.size
                                 else None)
        refs = self.reference_energies()
        out["reference_energies_eV"] = refs
        out["reference_rmse_eV_per_atom"] = self._reference_rmse(refs) if refs else None
        return out

    def _reference_rmse(self, refs: dict[str, float]) -> float | None:
        res = []
        for a in self.frames:
            e = get_labels(a).get("energy")
            if e is None or not np.isfinite(e) or not len(a):
                continue
            pred = sum(refs[s] for s in a.get_chemical_symbols())
            res.append((e - pred) / len(a))
        return float(np.sqrt(np.mean(np.square(res)))) if res else None


# -- helpers --------------------------------------------------------------------------------------


def summarize_problems(found: list[Problem], n_frames: int) -> tuple[str, dict[str, str]]:
    """Return ``(what, {where, fix})`` for a DataError about the problems ``found``."""
    first = found[0]
    n_bad = len({p.frame for p in found})
    kinds = sorted({p.kind for p in found})
    what = (f"{first.kind}: {first.detail}; {n_bad} of {n_frames} frames have problems "
            f"({', '.join(kinds)})")
    fix = _FIXES.get(first.kind, "fix or drop the frame")
    if len(found) > 1:
        fix += "; `mlp-cases dataset validate FILE --json` lists every problem"
    return what, {"where": first.where, "fix": fix}


def _overlap(atoms: Atoms, min_distance_A: float) -> list[tuple[str, str]]:
    """Find atoms closer than ``min_distance_A``: an ``overlap`` (or ``bad_cell``) finding."""
    from ase.neighborlist import neighbor_list

    if min_distance_A <= 0:
        return []
    pbc = np.asarray(atoms.pbc, dtype=bool)
    if pbc.any() and np.linalg.matrix_rank(atoms.cell.array[pbc], tol=1e-6) < pbc.sum():
        return [("bad_cell", f"pbc={pbc.tolist()} but the cell is degenerate "
                             f"(lengths {np.round(atoms.cell.lengths(), 4).tolist()} Å)")]
    try:
        i, j, d = neighbor_list("ijd", atoms, min_distance_A, self_interaction=False)
    except Exception as exc:
        return [("bad_cell", f"cannot build a neighbour list ({type(exc).__name__}: {exc})")]
    if d.size == 0:
        return []
    k = int(np.argmin(d))
    n_pairs = int(np.count_nonzero(i < j)) or int(d.size)
    what = "atom" if i[k] != j[k] else "atom and its own periodic image"
    pair = f"{i[k]}-{j[k]}" if i[k] != j[k] else f"{i[k]}"
    return [("overlap", f"{what} {pair} {d[k]:.3g} Å apart ({n_pairs} pair(s) below "
                        f"{min_distance_A:g} Å)")]


def check_overwrite(p: Path, overwrite: bool) -> None:
    """Refuse to write over an existing ``p`` unless ``overwrite`` (a DataError)."""
    if p.exists() and not overwrite:
        raise DataError("output already exists", where=str(p),
                        fix="choose another path, remove it, or pass overwrite=True")


def _format_for(p: Path) -> str | None:
    suffix = p.suffix.lower()
    if suffix in (".extxyz", ".xyz"):
        return "extxyz"
    if suffix == ".db":
        return "db"
    return None


def _write_db(path: str, frames: list[Atoms]) -> None:
    import ase.db

    with ase.db.connect(path, type="db", append=False, use_lock_file=False) as db:
        for a in frames:
            kvp = {col: a.info[k] for k, col in _DB_INFO_KEYS.items()
                   if isinstance(a.info.get(k), (int, float, np.integer, np.floating))}
            db.write(a, **kvp)


def _restore_db_info(p: Path, frames: list[Atoms]) -> None:
    """Put ``charge``/``multiplicity`` key-value pairs back into ``info`` (ase.io drops them)."""
    import ase.db

    try:
        rows = list(ase.db.connect(str(p), type="db", use_lock_file=False).select())
    except Exception:
        return
    if len(rows) != len(frames):
        return
    for a, row in zip(frames, rows, strict=True):
        for k, col in _DB_INFO_KEYS.items():
            if col in row.key_value_pairs:
                a.info[k] = row.key_value_pairs[col]


def _read_db_url(url: str) -> list[Atoms]:
    import ase.db

    try:
        rows = list(ase.db.connect(url).select())
    except Exception as exc:
        raise DataError(f"cannot read the database ({type(exc).__name__}: {exc})", where=url,
                        fix="check the URL, the server and the credentials") from exc
    frames = []
    for row in rows:
        a = row.toatoms()
        for k, col in _DB_INFO_KEYS.items():
            if col in row.key_value_pairs:
                a.info[k] = row.key_value_pairs[col]
        frames.append(a)
    if not frames:
        raise DataError("database holds no structures", where=url,
                        fix="check the URL and that the database was written")
    return frames
